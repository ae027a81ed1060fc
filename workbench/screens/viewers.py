"""Modal viewers: TextScreen (a file's content, JSON, any text; searchable, selectable) and
TableScreen (a FilterTable of rows: wasted files, an image diff...). Escape / q closes.

    self.app.push_screen(TextScreen("/etc/passwd  (layer 0, 1.2 kB)", text))
    self.app.push_screen(TableScreen("Wasted space", [Col("PATH", "path"), ...], rows, summary="..."))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Static

from workbench.widgets.table import Col, FilterTable
from workbench.widgets.textview import TextView

_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 95%; height: 90%; border: thick $primary; background: $surface; padding: 0 1;
}}
{name} .viewer-title {{ text-style: bold; color: $accent; height: auto; }}
{name} .viewer-summary {{ color: $text-muted; height: auto; }}
"""


class _Viewer(ModalScreen[str | None]):
    """A title, an optional summary line and one body widget; Escape / q closes."""

    BINDINGS = [Binding("escape,q", "close", "Close", id="viewer.close")]

    def __init__(self, title: str, summary: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.summary = summary

    def body(self) -> Widget:  # pragma: no cover - overridden
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, classes="viewer-title", markup=False)
            if self.summary:
                yield Static(self.summary, classes="viewer-summary", markup=False)
            yield self.body()

    def action_close(self) -> None:
        self.dismiss(None)


class TextScreen(_Viewer):
    DEFAULT_CSS = _CSS.format(name="TextScreen")

    def __init__(self, title: str, text: str, summary: str = "") -> None:
        super().__init__(title, summary)
        self.text = text

    def body(self) -> Widget:
        return TextView(self.text, id="viewer-text")

    def on_mount(self) -> None:
        self.query_one(TextView).focus()


class TableScreen(_Viewer):
    """Rows in a FilterTable; Enter dismisses with the row's key (None on Escape)."""

    DEFAULT_CSS = _CSS.format(name="TableScreen")

    def __init__(self, title: str, columns: Sequence[Col], rows: list[tuple[str, list[Any]]],
                 summary: str = "") -> None:
        super().__init__(title, summary)
        self.columns = list(columns)
        self.rows = rows

    def body(self) -> Widget:
        return FilterTable(self.columns, id="viewer-table")

    def on_mount(self) -> None:
        table = self.query_one(FilterTable)
        table.set_rows(self.rows)
        table.focus()

    def on_filter_table_activated(self, event: FilterTable.Activated) -> None:
        event.stop()
        self.dismiss(event.key)
