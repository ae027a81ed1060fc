"""The one pane base: ``Pane`` (what every pane shares) and ``ListPane`` (a pane that shows
one loaded list and reloads it when the engine changes). The contract with the app is in
workbench/messages.py and docs/app.md.

``Pane`` (Containers, Stats, Terminals, Learn subclass it directly):

- ``engine``, ``read_only``; ``check_action`` hides the actions in ``MUTATING`` when
  ``read_only`` is set (the footer, the help screen and the command palette all honour it).
- ``engine_action(command, fn, *args, ...)`` runs ``fn`` in a thread worker, posts
  ``CommandRun(command)`` (``ok=False, error=...`` on failure), notifies the error with the
  CLI's one-line text; ``perform(command, fn, done, failed)`` is the same for an action
  whose result the pane shows itself (no reload).
- ``fetch(fn, apply, group)`` reads something in a thread worker and applies it on the UI
  thread; a newer fetch of the same group drops an older one's result.
- ``confirm(question, then)`` asks with the shared ConfirmScreen.
- ``container_id``, ``choose_container``, ``container_changed``: the selected container,
  kept in step with the other panes by ``ContainerSelected``.

``ListPane`` (Images, Layers, Networks):

    class ImagesPane(ListPane):
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
  older one's result) and then ``show(result)`` on the UI thread; errors become
  notifications. ``engine_action`` reloads after the action.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from textual import work
from textual.containers import Vertical
from textual.worker import Worker, WorkerState, get_current_worker

from workbench.messages import CommandRun, ContainerSelected, EngineChanged
from workbench.widgets.blank import BlankContainer

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


class Pane(BlankContainer, Vertical):
    """Base of every pane: engine access, read-only, actions with their CLI command,
    background reads, the selected container."""

    PANE_TITLE: ClassVar[str] = ""
    PANE_KEY: ClassVar[str] = ""
    #: action names (without ``action_``) that change something: hidden when read-only
    MUTATING: ClassVar[set[str] | frozenset[str]] = set()

    DEFAULT_CSS = """
    Pane { height: 1fr; }
    """

    def __init__(self, engine: Any, read_only: bool = False, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.engine = engine
        self.read_only = read_only
        #: the container this pane shows or acts on (kept in step by ContainerSelected)
        self.container_id: str | None = None
        self._fetch_tokens: dict[str, object] = {}

    # ------------------------------------------------------------------ actions
    def reload(self) -> None:
        """Re-read what the pane shows (panes override it; ``engine_action`` calls it)."""

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

    # ------------------------------------------------------------------ results shown here
    def perform(self, command: str, fn: Callable[[], Any],
                done: Callable[[Any], None] | None = None,
                failed: Callable[[BaseException], None] | None = None,
                note: str | None = None) -> None:
        """Run ``fn`` (an engine call) in a thread worker; afterwards, on the UI thread:
        post CommandRun(command), then ``done(result)``; on error notify the CLI's line
        and call ``failed(exc)``."""

        def work() -> None:
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001 - every failure becomes a notification
                self.app.call_from_thread(self._action_failed, command, exc, failed)
                return
            self.app.call_from_thread(self._action_done, command, result, done, note)

        self.run_worker(work, thread=True, group=f"action-{self.id}", exit_on_error=False)

    def _action_done(self, command: str, result: Any, done, note: str | None) -> None:
        self.post_message(CommandRun(command, ok=True))
        if note:
            self.notify(note, timeout=3)
        if done is not None:
            done(result)

    def _action_failed(self, command: str, exc: BaseException, failed) -> None:
        text = error_text(exc)
        self.post_message(CommandRun(command, ok=False, error=text))
        self.notify_error(text)
        if failed is not None:
            failed(exc)

    def fetch(self, fn: Callable[[], Any], apply: Callable[[Any], None],
              group: str = "load", failed: Callable[[BaseException], None] | None = None) -> None:
        """Read something in a thread (no CommandRun: a view, not an action) and ``apply``
        it on the UI thread. A newer load of the same group replaces an older one still
        running (its result is dropped).

        The thread is one of the event loop's executor, the pool Textual's thread workers
        use too, without a Worker: no Worker object, no state-change messages and no
        ``call_from_thread`` round trip in which the thread waits for the UI. The Stats pane
        fetches once a second; a Worker cost ~0.6 ms of CPU more per fetch (measured)."""
        import asyncio

        token = object()
        self._fetch_tokens[group] = token
        future = asyncio.get_running_loop().run_in_executor(None, fn)
        future.add_done_callback(lambda f: self._fetched(group, token, f, apply, failed))

    def _fetched(self, group, token, future, apply, failed) -> None:
        """The fetch's result, on the UI thread (an asyncio done-callback)."""
        if future.cancelled():
            return
        exc = future.exception()
        try:
            if exc is not None:
                self._load_failed(group, token, exc, failed)
            else:
                self._load_done(group, token, future.result(), apply)
        except Exception as bug:  # noqa: BLE001 - shown, not lost on the loop's stderr
            if self.is_mounted:
                self.notify_error(bug)

    def _load_done(self, group, token, result, apply) -> None:
        if self._fetch_tokens.get(group) is token and self.is_mounted:
            apply(result)

    def _load_failed(self, group, token, exc, failed) -> None:
        if self._fetch_tokens.get(group) is not token or not self.is_mounted:
            return
        if failed is not None:
            failed(exc)
        else:
            self.notify_error(exc)

    # ------------------------------------------------------------------ selection
    def choose_container(self, container_id: str | None, announce: bool = True) -> None:
        """Make ``container_id`` this pane's container and tell the others (once)."""
        if container_id == self.container_id:
            return
        self.container_id = container_id
        self.container_changed(container_id)
        if announce:
            message = ContainerSelected(container_id)
            message.origin = self  # so our own handler lets it bubble on to the app
            self.post_message(message)

    def container_changed(self, container_id: str | None) -> None:
        """Override: the shown container changed."""

    def on_container_selected(self, message: ContainerSelected) -> None:
        if getattr(message, "origin", None) is self:
            return  # our own announcement, on its way up to the app
        message.stop()
        if message.container_id != self.container_id:
            self.container_id = message.container_id
            self.container_changed(message.container_id)


class ListPane(Pane):
    """A pane showing one loaded list: ``load()`` in a thread, ``show(data)`` on the UI
    thread, again whenever the engine reports a change of a kind in ``WATCH``."""

    WATCH: ClassVar[set[str]] = set()

    def __init__(self, engine: Any, read_only: bool = False, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(engine, read_only, id=id, classes=classes)
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
