"""PaneBase: what the Containers, Stats, Terminals and Learn panes share.

A pane is built as ``Cls(engine, read_only=False, id=...)``. It never blocks the UI: every
engine call runs in a thread worker and its result comes back with ``call_from_thread``.
Every action posts ``CommandRun`` with the equivalent ``nutshell ...`` line; a failure is
shown as a notification titled "nutshell" with the line the CLI prints after ``nutshell: ``
(the same convention as workbench/panes/base.py).

Actions named in ``MUTATING`` are hidden (and refused) in read-only mode.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

from textual.widget import Widget

from workbench.messages import CommandRun, ContainerSelected


def error_text(exc: BaseException) -> str:
    """The line the CLI prints for an error, without its ``nutshell: `` prefix (the
    notification's title says "nutshell", as in the rest of the app)."""
    from core.errors import NutshellError

    if isinstance(exc, NutshellError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == 28:
        return "no space left on device"
    return f"internal error: {type(exc).__name__}: {exc}"


class PaneBase(Widget):
    """Engine + read-only plumbing for a pane (subclass it; set PANE_TITLE and PANE_KEY)."""

    PANE_TITLE: ClassVar[str] = ""
    PANE_KEY: ClassVar[str] = ""
    #: action names (without ``action_``) that change something: hidden when read-only
    MUTATING: ClassVar[frozenset[str]] = frozenset()

    DEFAULT_CSS = """
    PaneBase { height: 1fr; width: 1fr; }
    """

    def __init__(self, engine: Any, read_only: bool = False, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.engine = engine
        self.read_only = read_only
        #: the container this pane shows or acts on (kept in step by ContainerSelected)
        self.container_id: str | None = None

    # ------------------------------------------------------------------ read-only
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.read_only and action in self.MUTATING:
            return False  # hidden from the footer, the key does nothing
        return True

    # ------------------------------------------------------------------ errors
    def show_error(self, exc: BaseException) -> None:
        self.notify(error_text(exc), title="nutshell", severity="error", timeout=8)

    # ------------------------------------------------------------------ actions
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
        self.notify(text, title="nutshell", severity="error", timeout=8)
        if failed is not None:
            failed(exc)

    def load(self, fn: Callable[[], Any], apply: Callable[[Any], None],
             group: str = "load", failed: Callable[[BaseException], None] | None = None) -> None:
        """Read something in a thread worker (no CommandRun: a view, not an action) and
        ``apply`` it on the UI thread. A newer load of the same group replaces an older
        one still running (its result is dropped)."""
        token = object()
        self._load_tokens = getattr(self, "_load_tokens", {})
        self._load_tokens[group] = token

        def work() -> None:
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001
                self.app.call_from_thread(self._load_failed, group, token, exc, failed)
                return
            self.app.call_from_thread(self._load_done, group, token, result, apply)

        self.run_worker(work, thread=True, group=f"{group}-{self.id}", exit_on_error=False)

    def _load_done(self, group, token, result, apply) -> None:
        if self._load_tokens.get(group) is token and self.is_mounted:
            apply(result)

    def _load_failed(self, group, token, exc, failed) -> None:
        if self._load_tokens.get(group) is not token or not self.is_mounted:
            return
        if failed is not None:
            failed(exc)
        else:
            self.show_error(exc)

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
