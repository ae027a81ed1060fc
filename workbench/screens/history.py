"""HistoryScreen (``H``): the equivalent ``nutshell ...`` command of every action performed
in this session, newest first. Enter or ``y`` copies the command to the clipboard (OSC 52),
``a`` copies them all as a shell script; the text can also be selected with the mouse."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from workbench.widgets.table import Col, FilterTable


@dataclass
class HistoryEntry:
    """One action the workbench ran, as its nutshell command line."""
    time: float
    command: str
    ok: bool = True
    error: str | None = None


class HistoryScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HistoryScreen { align: center middle; }
    HistoryScreen > Vertical {
        width: 95%; height: 85%; border: thick $primary; background: $surface; padding: 0 1;
    }
    HistoryScreen #history-hint { color: $text-muted; height: 1; }
    """

    BINDINGS = [
        Binding("escape,q", "close", "Close", id="history.close"),
        Binding("a", "copy_all", "Copy all", id="history.copy_all"),
    ]

    def __init__(self, entries: list[HistoryEntry]) -> None:
        super().__init__()
        self.entries = entries

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Equivalent commands of this session — Enter/y copies one, a copies all",
                         id="history-hint", markup=False)
            yield FilterTable([Col("TIME", "time", 8), Col("", "ok", 2), Col("COMMAND", "command")],
                              id="history-table", empty_text="no actions yet")

    def on_mount(self) -> None:
        table = self.query_one(FilterTable)
        rows = []
        n = len(self.entries)
        for i, e in enumerate(reversed(self.entries)):
            mark = Text("✓", style="green") if e.ok else Text("✗", style="red")
            cmd = Text(e.command)
            if e.error:
                cmd.append(f"   # {e.error}", style="red")
            rows.append((str(n - i), [time.strftime("%H:%M:%S", time.localtime(e.time)), mark, cmd]))
        table.set_rows(rows)
        table.focus()

    def _entry(self, key: str | None) -> HistoryEntry | None:
        if key is None:
            return None
        idx = int(key) - 1
        return self.entries[idx] if 0 <= idx < len(self.entries) else None

    @on(FilterTable.Activated)
    def _activated(self, event: FilterTable.Activated) -> None:
        entry = self._entry(event.key)
        if entry:
            self.app.copy_to_clipboard(entry.command)
            self.app.notify(f"copied: {entry.command}", timeout=2)

    def action_copy_all(self) -> None:
        text = "\n".join(e.command for e in self.entries if e.ok)
        self.app.copy_to_clipboard(text + "\n" if text else "")
        self.app.notify(f"copied {sum(1 for e in self.entries if e.ok)} commands", timeout=2)

    def action_close(self) -> None:
        self.dismiss(None)
