"""A small app with terminal tabs running host commands: ``python -m workbench.terminal.demo [cmd...]``.

Without arguments it opens two shells. With a command it opens a tab for that command and a shell.
In a terminal every key goes to the program; Ctrl-] gives the keyboard back to the app, where
``n`` opens a new shell tab, ``w`` closes the current tab (hanging up its program), ``q`` quits,
and Enter, or a click, goes back into the terminal. The real workbench embeds the same widget.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, TabbedContent, TabPane, Tabs

from workbench.terminal.widget import Terminal

DEFAULT_SHELL = ["/bin/sh"]


def default_shell() -> list[str]:
    shell = os.environ.get("SHELL")
    return [shell] if shell and os.path.exists(shell) else list(DEFAULT_SHELL)


class TerminalDemo(App):
    """Terminal tabs. Keys reach the focused terminal; app keys work after Ctrl-]."""

    TITLE = "Nutshell terminals"
    ENABLE_COMMAND_PALETTE = False  # its ctrl+p would be taken from shells (history)
    BINDINGS = [
        # Textual's ctrl+q is a priority binding: it would never reach the program. Not here.
        Binding("ctrl+q", "quit", "Quit", show=False),
        Binding("q", "quit", "Quit"),
        Binding("n", "new_tab", "New shell"),
        Binding("w", "close_tab", "Close tab"),
        Binding("enter", "enter_terminal", "Into terminal"),
    ]
    CSS = """
    TabbedContent { height: 1fr; }
    TabPane { padding: 0; }
    """

    def __init__(self, commands: Sequence[Sequence[str]] | None = None, env: dict[str, str] | None = None) -> None:
        super().__init__()
        self.commands = [list(c) for c in (commands or [default_shell(), default_shell()])]
        self.env = env
        self._count = 0

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # a focused terminal takes these keys itself: do not offer them in the footer
        if action in ("quit", "new_tab", "close_tab", "enter_terminal") and \
                isinstance(self.focused, Terminal):
            return False
        return True

    def compose(self) -> ComposeResult:
        with TabbedContent(id="tabs"):
            for command in self.commands:
                yield self._pane(command)
        yield Footer()

    def _pane(self, command: Sequence[str]) -> TabPane:
        self._count += 1
        label = os.path.basename(command[0])
        if label == "busybox" and len(command) > 1:
            label = command[1]  # busybox applets: name the applet
        terminal = Terminal(command, env=self.env, id=f"term-{self._count}")
        return TabPane(label, terminal, id=f"tab-{self._count}")

    def on_mount(self) -> None:
        self.focus_active_terminal()

    @property
    def terminals(self) -> list[Terminal]:
        return list(self.query(Terminal))

    def active_terminal(self) -> Terminal | None:
        tabs = self.query_one(TabbedContent)
        pane = tabs.active_pane
        if pane is None:
            return None
        found = pane.query(Terminal)
        return found.first() if found else None

    def focus_active_terminal(self) -> None:
        terminal = self.active_terminal()
        if terminal is not None:
            terminal.focus()

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # Browsing the tab bar (after Ctrl-]) keeps the keyboard there; Enter goes in.
        if not isinstance(self.focused, Tabs):
            self.call_later(self.focus_active_terminal)

    @on(Terminal.Left)
    def _left(self, event: Terminal.Left) -> None:
        self.query_one(TabbedContent).query_one(Tabs).focus()

    @on(Terminal.TitleChanged)
    def _title(self, event: Terminal.TitleChanged) -> None:
        pane = event.terminal.parent
        if isinstance(pane, TabPane) and pane.id and event.title:
            tab = self.query_one(TabbedContent).get_tab(pane.id)
            tab.label = event.title[:30]

    @on(Terminal.Exited)
    def _exited(self, event: Terminal.Exited) -> None:
        pane = event.terminal.parent
        if isinstance(pane, TabPane) and pane.id:
            tab = self.query_one(TabbedContent).get_tab(pane.id)
            tab.label = f"{tab.label.plain} [{'' if event.exit_code is None else event.exit_code}]"

    def action_enter_terminal(self) -> None:
        self.focus_active_terminal()

    async def action_new_tab(self, command: Sequence[str] | None = None) -> None:
        tabs = self.query_one(TabbedContent)
        pane = self._pane(list(command) if command else default_shell())
        await tabs.add_pane(pane)
        tabs.active = pane.id or ""
        self.call_later(self.focus_active_terminal)

    async def action_close_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        if tabs.active:
            await tabs.remove_pane(tabs.active)  # unmounting the terminal hangs up its program
        if not self.terminals:
            self.exit()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 1 and " " in args[0]:
        args = shlex.split(args[0])
    commands = [args, default_shell()] if args else None
    TerminalDemo(commands).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
