"""StatusLine: one line above the footer — mode, root, and the last equivalent command."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    """

    last_command: reactive[str] = reactive("")
    last_ok: reactive[bool] = reactive(True)
    activity: reactive[str] = reactive("")

    def __init__(self, root: str = "", read_only: bool = False, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.root = root
        self.read_only = read_only

    def render(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        if self.read_only:
            t.append(" READ-ONLY ", style="bold reverse")
            t.append(" ")
        if self.activity:
            t.append(self.activity, style="italic")
            t.append("  ")
        if self.last_command:
            t.append("$ ", style="bold")
            t.append(self.last_command, style="" if self.last_ok else "red")
            if not self.last_ok:
                t.append("  (failed)", style="red")
        else:
            t.append(f"root {self.root}", style="dim")
        return t

    def show_command(self, command: str, ok: bool = True) -> None:
        self.last_command = command
        self.last_ok = ok
