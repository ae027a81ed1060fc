"""Pane: what every pane of the workbench shares (optional base class; the contract is
in workbench/messages.py and docs/app.md).

    class ImagesPane(Pane):
        PANE_TITLE = "Images"
        PANE_KEY = "1"
        WATCH = {"images", "containers"}           # EngineChanged kinds that trigger reload()
        MUTATING = {"pull", "rm"}                   # actions hidden in read-only mode
        BINDINGS = [Binding("p", "pull", "Pull", id="images.pull"), ...]

        def load(self):            # in a thread worker: call the engine, return plain data
            return self.engine.images()

        def show(self, images):    # on the UI thread: update widgets
            ...

        def action_rm(self):
            self.confirm(f"Remove image {ref}?", lambda: self.engine_action(
                f"nutshell rmi {ref}", self.engine.rmi, [ref], done="Removed {ref}"))

- ``reload()`` runs ``load()`` in an exclusive thread worker (a newer reload cancels the
  older one's result) and then ``show(result)`` on the UI thread; errors become notifications.
- ``engine_action(command, fn, *args, ...)`` runs ``fn`` in a thread worker, posts
  ``CommandRun(command)`` (``ok=False, error=...`` on failure), notifies the error with the
  CLI's one-line text, and reloads. Use it for every action that calls the engine.
- ``check_action`` hides the actions in ``MUTATING`` when ``read_only`` is set (the footer,
  the help screen and the command palette all honour it).
- ``confirm(question, then)`` asks with the shared ConfirmScreen.
"""

from __future__ import annotations

import shlex
import time
from typing import Any, Callable, ClassVar, Iterable

from textual import work
from textual.containers import Vertical
from textual.worker import Worker, WorkerState, get_current_worker

from workbench.messages import CommandRun, EngineChanged

#: the clock panes use for "5 minutes ago" (tests pin it for deterministic snapshots)
CLOCK: Callable[[], float] = time.time


def now() -> float:
    return CLOCK()


def quote(args: Iterable[str]) -> str:
    """A shell command line for the history: ``nutshell run -d --name 'my web' busybox``."""
    return " ".join(shlex.quote(a) for a in args)


def error_text(exc: BaseException) -> str:
    """The one line the CLI prints for an error (without its ``nutshell: `` prefix)."""
    from core.errors import NutshellError

    if isinstance(exc, NutshellError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == 28:
        return "no space left on device"
    return f"internal error: {type(exc).__name__}: {exc}"


class Pane(Vertical):
    """Base for panes: engine access, reload-in-a-worker, actions with their CLI command."""

    PANE_TITLE: ClassVar[str] = ""
    PANE_KEY: ClassVar[str] = ""
    WATCH: ClassVar[set[str]] = set()
    MUTATING: ClassVar[set[str]] = set()

    DEFAULT_CSS = """
    Pane { height: 1fr; }
    """

    def __init__(self, engine: Any, read_only: bool = False, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.engine = engine
        self.read_only = read_only
        self._loaded_once = False
        self._reload_pending = False

    # ------------------------------------------------------------------ reloading
    def on_mount(self) -> None:
        self.reload()

    def load(self) -> Any:  # pragma: no cover - overridden
        """Fetch what the pane shows (runs in a thread; return plain data)."""
        return None

    def show(self, data: Any) -> None:  # pragma: no cover - overridden
        """Update the widgets with what ``load`` returned (UI thread)."""

    def reload(self) -> None:
        self._reload_worker()

    @work(thread=True, exclusive=True, group="reload", exit_on_error=False)
    def _reload_worker(self) -> None:
        worker = get_current_worker()
        try:
            data = self.load()
        except Exception as exc:  # noqa: BLE001
            if not worker.is_cancelled:
                self.app.call_from_thread(self.notify_error, exc)
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show, data)

    def _show(self, data: Any) -> None:
        if not self.is_mounted:
            return
        self._loaded_once = True
        self.show(data)

    def on_engine_changed(self, message: EngineChanged) -> None:
        if not self.WATCH or message.kinds & self.WATCH:
            self.reload()

    # ------------------------------------------------------------------ actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.read_only and action in self.MUTATING:
            return False  # Textual: False hides the binding (None would show it disabled)
        return True

    def notify_error(self, exc: BaseException | str) -> None:
        text = exc if isinstance(exc, str) else error_text(exc)
        self.app.notify(text, title="nutshell", severity="error", timeout=8)

    def command_run(self, command: str, ok: bool = True, error: str | None = None) -> None:
        self.post_message(CommandRun(command, ok=ok, error=error))

    def engine_action(self, command: str, fn: Callable[..., Any], *args: Any,
                      done: str | None = None, on_done: Callable[[Any], None] | None = None,
                      reload: bool = True, on_error: Callable[[str], None] | None = None,
                      **kwargs: Any) -> Worker | None:
        """Run ``fn(*args, **kwargs)`` in a thread; history, notifications and reload.

        ``done``: a notification on success; ``on_done(result)`` / ``on_error(text)``: UI-thread
        callbacks. ``fn``'s own keyword arguments go in ``kwargs``."""
        if self.read_only:
            self.notify_error("read-only mode: no changes allowed")
            return None

        def run() -> Any:
            return fn(*args, **kwargs)

        worker = self.run_worker(run, thread=True, group="action", exit_on_error=False,
                                 description=command)
        worker._nutshell = (command, done, on_done, reload, on_error)  # type: ignore[attr-defined]
        return worker

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        meta = getattr(event.worker, "_nutshell", None)
        if meta is None:
            return
        command, done, on_done, reload, on_error = meta
        if event.state == WorkerState.SUCCESS:
            self.command_run(command)
            if done:
                self.app.notify(done, timeout=3)
            if on_done is not None:
                on_done(event.worker.result)
            if reload:
                self.reload()
        elif event.state == WorkerState.ERROR:
            err = event.worker.error
            text = error_text(err) if err is not None else "failed"
            self.command_run(command, ok=False, error=text)
            self.notify_error(text)
            if on_error is not None:
                on_error(text)
            if reload:
                self.reload()

    def confirm(self, question: str, then: Callable[[], Any], detail: str | None = None,
                yes_label: str = "Yes") -> None:
        from workbench.screens.confirm import ConfirmScreen

        def answered(ok: bool | None) -> None:
            if ok:
                then()

        self.app.push_screen(ConfirmScreen(question, detail=detail, yes_label=yes_label), answered)
