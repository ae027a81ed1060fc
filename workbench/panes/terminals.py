"""Terminals: tabs of real terminals - attached to a container, exec'd into one, or a
host command (``ip netns``, ``nutshell ps``) for teaching.

Each tab is a ``workbench.terminal.widget.Terminal`` with a backend from
``workbench/terminal/backend.py``:

- attach: ``attach_backend(engine, ref)``, the container's console through its shim.
  Closing the tab DETACHES: the container keeps running (no Ctrl-C is ever sent).
- exec:   ``exec_backend_factory(engine, ref, argv)``; without argv the first of bash, ash,
  sh that exists. Closing the tab hangs up that shell only; the container keeps running.
- host:   ``PtyBackend`` through ``Terminal(command=argv)``.

A focused terminal takes every key (Tab, Ctrl-C, Ctrl-Z, Ctrl-D included). Ctrl-] leaves
it (shown in the footer); then ``x`` closes the tab, Enter goes back in, ``h`` opens a
host shell, left/right switch tabs. The app routes ``OpenTerminal`` here.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence

from textual import on
from textual.app import ComposeResult
from textual.widgets import Static, TabbedContent, TabPane, Tabs

from workbench.format import command as nutshell_command
from workbench.keys import pane_bindings
from workbench.messages import CommandRun, OpenTerminal
from workbench.panes.base import Pane, error_text
from workbench.terminal.widget import Terminal

DROPPED = re.compile(r" \[\d+ dropped\]")
HELP = ("[b]ctrl+][/b] leave the terminal · [b]enter[/b] back in · [b]x[/b] close tab "
        "(detach; the container keeps running) · [b]h[/b] host shell · [b]←/→[/b] tabs")


def default_shell() -> list[str]:
    shell = os.environ.get("SHELL")
    return [shell] if shell and os.path.exists(shell) else ["/bin/sh"]


class TerminalsPane(Pane):
    PANE_TITLE = "Terminals"
    PANE_KEY = "6"
    MUTATING = frozenset({"host_shell"})

    DEFAULT_CSS = """
    TerminalsPane #terminals-tabs { height: 1fr; }
    TerminalsPane #terminals-empty { height: 1fr; content-align: center middle; color: $text-muted; }
    TerminalsPane.-has-tabs #terminals-empty { display: none; }
    TerminalsPane #terminals-help { height: auto; color: $text-muted; padding: 0 1; }
    """

    BINDINGS = pane_bindings("terminals")

    def __init__(self, engine, read_only: bool = False, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(engine, read_only, id=id, classes=classes)
        self._count = 0
        self._newest = ""
        self._named: set[str] = set()
        self.kinds: dict[str, tuple[str, str | None]] = {}  # tab id -> (kind, target)

    def compose(self) -> ComposeResult:
        yield TabbedContent(id="terminals-tabs")
        yield Static("No terminals yet.\n\nIn Containers (3): [b]e[/b] exec a shell, [b]a[/b] attach.\n"
                     "Here: [b]h[/b] opens a shell on the host (try [i]ip netns[/i] or "
                     "[i]nutshell ps[/i]).", id="terminals-empty")
        yield Static(HELP, id="terminals-help")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # a focused terminal takes every key: do not offer pane keys it would swallow
        if action in ("enter_terminal", "close_tab", "host_shell") and \
                isinstance(self.app.focused, Terminal):
            return False
        return super().check_action(action, parameters)

    # ------------------------------------------------------------------ queries
    @property
    def tabs(self) -> TabbedContent:
        return self.query_one("#terminals-tabs", TabbedContent)

    @property
    def terminals(self) -> list[Terminal]:
        return list(self.query(Terminal))

    def active_terminal(self) -> Terminal | None:
        pane = self.tabs.active_pane
        if pane is None:
            return None
        found = pane.query(Terminal)
        return found.first() if found else None

    def focus_default(self) -> None:
        """The workbench showed this tab: into the active terminal, else the tab bar."""
        if self.active_terminal() is not None:
            self.focus_active_terminal()
        else:
            self.tabs.query_one(Tabs).focus()

    def focus_active_terminal(self) -> None:
        terminal = self.active_terminal()
        if terminal is not None:
            terminal.focus()

    def _container_name(self, target: str | None) -> str:
        """A container's name for tab titles and commands (its id when unknown)."""
        if not target:
            return ""
        try:
            for c in self.engine.ps(all=True):
                if c.get("Id") == target or c.get("Names") == target or c.get("Id", "").startswith(target):
                    return c.get("Names") or target
        except Exception:  # noqa: BLE001 - a title is not worth an error
            pass
        return target[:12]

    # ------------------------------------------------------------------ opening
    def on_open_terminal(self, message: OpenTerminal) -> None:
        message.stop()
        self.open_terminal(message.kind, message.target, message.argv, message.title)

    def open_terminal(self, kind: str, target: str | None = None,
                      argv: Sequence[str] | None = None, title: str | None = None) -> None:
        """Open a tab: ``attach`` / ``exec`` a container, or run ``host`` argv."""
        if kind == "attach":
            self._open_attach(target or "", title)
        elif kind == "exec":
            self._open_exec(target or "", list(argv) if argv else None, title)
        elif kind == "host":
            if self.read_only:
                self.notify("read-only mode: no host terminals", severity="warning")
                return
            argv = list(argv) if argv else default_shell()
            self.call_later(self._add_tab, Terminal(argv), title or os.path.basename(argv[0]),
                            "host", None, title is not None)
        else:
            self.notify(f"unknown terminal kind {kind!r}", title="nutshell", severity="error")

    def _open_attach(self, target: str, title: str | None) -> None:
        from workbench.terminal.backend import attach_backend

        name = self._container_name(target)
        cmd = nutshell_command("attach", name)

        def connect():
            return attach_backend(self.engine, target)

        def done(backend) -> None:
            self.call_later(self._add_tab, Terminal(backend=backend), title or f"attach {name}",
                            "attach", target)

        self.perform(cmd, connect, done=done)

    def _open_exec(self, target: str, argv: list[str] | None, title: str | None) -> None:
        from workbench.terminal.backend import DEFAULT_SHELLS, exec_backend_factory

        name = self._container_name(target)
        factory = exec_backend_factory(self.engine, target, argv)
        post = self.post_message

        def start(rows: int, cols: int):
            shown = argv or ["sh"]
            try:
                backend = factory(rows, cols)
            except Exception as exc:  # noqa: BLE001 - shown in the pane by the widget
                post(CommandRun(nutshell_command("exec", "-it", name, args=shown), ok=False,
                                error=error_text(exc)))
                raise
            if argv is None:  # which shell the probe found: "ref: ash" -> /bin/ash
                base = backend.title.rsplit(": ", 1)[-1]
                shown = [next((s for s in DEFAULT_SHELLS if os.path.basename(s) == base), base)]
            post(CommandRun(nutshell_command("exec", "-it", name, args=shown)))
            return backend

        label = title or f"exec {name}" + (f" {shlex.join(argv)}" if argv else "")
        self.call_later(self._add_tab, Terminal(backend_factory=start), label, "exec", target)

    async def _add_tab(self, terminal: Terminal, label: str, kind: str, target: str | None,
                       named: bool = False) -> None:
        self._count += 1
        pane_id = f"term-{self._count}"
        if named:
            self._named.add(pane_id)
        tabs = self.tabs
        await tabs.add_pane(TabPane(label[:28], terminal, id=pane_id))
        self.kinds[pane_id] = (kind, target)
        self._newest = pane_id
        tabs.active = pane_id
        self.set_class(True, "-has-tabs")
        # the tab bar activates its first tab after a refresh: make sure the new one wins
        self.call_after_refresh(self._activate, pane_id, terminal)

    def _activate(self, pane_id: str, terminal: Terminal) -> None:
        if pane_id != self._newest:
            return  # a newer tab was opened meanwhile: it gets the focus
        if self.tabs.active != pane_id and pane_id in self.kinds:
            self.tabs.active = pane_id
        terminal.focus()

    # ------------------------------------------------------------------ terminal events
    @on(Terminal.Left)
    def _left(self, event: Terminal.Left) -> None:
        event.stop()
        self.tabs.query_one(Tabs).focus()

    @on(Terminal.TitleChanged)
    def _title(self, event: Terminal.TitleChanged) -> None:
        event.stop()
        pane = event.terminal.parent
        # a host program's window title (OSC 0/2) names its tab, unless the tab was named
        if isinstance(pane, TabPane) and pane.id and event.title and pane.id not in self._named \
                and self.kinds.get(pane.id, ("",))[0] == "host":
            self.tabs.get_tab(pane.id).label = event.title[:28]

    @on(Terminal.Exited)
    def _exited(self, event: Terminal.Exited) -> None:
        event.stop()
        pane = event.terminal.parent
        if isinstance(pane, TabPane) and pane.id:
            tab = self.tabs.get_tab(pane.id)
            code = "" if event.exit_code is None else f" {event.exit_code}"
            tab.label = f"{tab.label.plain} [exited{code}]"

    @on(Terminal.SequencesDropped)
    def _dropped(self, event: Terminal.SequencesDropped) -> None:
        # the emulator skipped sequences it could not handle: say how many in the tab's label
        event.stop()
        pane = event.terminal.parent
        if isinstance(pane, TabPane) and pane.id and event.dropped:
            tab = self.tabs.get_tab(pane.id)
            label = DROPPED.sub("", tab.label.plain)
            tab.label = f"{label} [{event.dropped} dropped]"

    @on(TabbedContent.TabActivated)
    def _activated(self, event: TabbedContent.TabActivated) -> None:
        event.stop()
        # browsing the tab bar (after ctrl+]) keeps the keyboard there; a click goes in
        if not isinstance(self.app.focused, Tabs):
            self.call_after_refresh(self.focus_active_terminal)

    # ------------------------------------------------------------------ actions
    def action_enter_terminal(self) -> None:
        self.focus_active_terminal()

    def action_host_shell(self) -> None:
        self.open_terminal("host")

    async def action_close_tab(self) -> None:
        """Close the active tab: detach an attach, hang up an exec or host command. The
        container is never stopped."""
        tabs = self.tabs
        active = tabs.active
        if not active:
            return
        terminal = self.active_terminal()
        if terminal is not None:
            terminal.close()  # detach / hang up now, not at some later unmount
        self.kinds.pop(active, None)
        await tabs.remove_pane(active)
        if not self.terminals:
            self.set_class(False, "-has-tabs")
        else:
            tabs.query_one(Tabs).focus()
