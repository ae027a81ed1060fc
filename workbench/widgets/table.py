"""FilterTable: a DataTable with a ``/`` filter, sorting and copy, for every list in the app.

    from workbench.widgets.table import FilterTable, Col, SortCell

    table = FilterTable([Col("NAME", "name"), Col("SIZE", "size", justify="right")], id="things")
    table.set_rows([("id1", ["web", SortCell(2048, "2.0 KiB")]), ("id2", ["db", SortCell(10, "10 B")])])
    table.selected_key                # key of the row under the cursor ("id1"), or None

Reloading with ``set_rows`` keeps the cursor on the same key (liveness reloads do not jump).
Cells may be ``str`` (shown literally, never parsed as markup), rich ``Text``, any renderable,
or a ``SortCell(value, shown)``, which sorts by ``value`` and shows ``shown``.

Keys (when the table has focus): ``/`` opens the filter (case-insensitive; all words must
match some cell), Enter in the filter returns to the table, Escape clears it; ``y`` copies the
row key (an id) to the clipboard and ``Y`` the whole row as tab-separated text; ``s`` sorts by
the next column, ``S`` reverses. Clicking a column header sorts by it (again: reversed).

Messages (bubble to the pane): ``FilterTable.Highlighted(table, key)`` when the cursor moves to
another row, ``FilterTable.Activated(table, key)`` on Enter / double click of a row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Region
from textual.reactive import reactive
from textual.strip import Strip
from textual.widgets import DataTable, Input

from workbench.messages import RowMessage
from workbench.widgets.blank import BlankContainer


@dataclass(frozen=True)
class Col:
    """One column of a FilterTable."""
    label: str
    key: str
    width: int | None = None
    justify: str = "left"


class SortCell:
    """A cell shown as ``shown`` and sorted by ``value`` (sizes, times, percentages)."""

    __slots__ = ("value", "shown", "justify", "style")

    def __init__(self, value: Any, shown: str, justify: str = "right", style: str = "") -> None:
        self.value = value
        self.shown = shown
        self.justify = justify
        self.style = style

    def __rich__(self) -> Text:
        return Text(self.shown, justify=self.justify, style=self.style)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return self.shown

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SortCell) and (self.value, self.shown) == (other.value, other.shown)

    def __hash__(self) -> int:
        return hash((self.value, self.shown))


def cell_text(cell: Any) -> str:
    if isinstance(cell, Text):
        return cell.plain
    return str(cell)


def _sort_value(cell: Any) -> tuple:
    if isinstance(cell, SortCell):
        v = cell.value
        return (0, v) if isinstance(v, (int, float)) else (1, str(v))
    return (1, cell_text(cell).lower())


class _Table(DataTable):
    """The inner DataTable; Enter (row selection) and the header click come from DataTable."""

    BINDINGS = [
        Binding("slash", "open_filter", "Filter", id="table.filter"),
        Binding("y", "copy_key", "Copy id", show=False, id="table.copy"),
        Binding("Y", "copy_row", "Copy row", show=False, id="table.copy_row"),
        Binding("s", "sort_next", "Sort", show=False, id="table.sort"),
        Binding("S", "sort_reverse", "Reverse sort", show=False, id="table.sort_reverse"),
    ]

    _style_this_render: Style | None = None

    @property
    def rich_style(self) -> Style:
        if self._style_this_render is not None:
            return self._style_this_render
        return super().rich_style

    def render_lines(self, crop: Region) -> list[Strip]:
        # DataTable.render_line asks for rich_style on every line, and each time it is
        # computed anew from the styles of every ancestor: 60 % of drawing a table. Nothing
        # can restyle the table during one render, so compute it once per render.
        self._style_this_render = super().rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._style_this_render = None

    def action_open_filter(self) -> None:
        self._owner().open_filter()

    def action_copy_key(self) -> None:
        self._owner().copy_selected(whole_row=False)

    def action_copy_row(self) -> None:
        self._owner().copy_selected(whole_row=True)

    def action_sort_next(self) -> None:
        self._owner().sort_next()

    def action_sort_reverse(self) -> None:
        owner = self._owner()
        owner.sort_by(owner.sort_column, not owner.sort_reverse)

    def _owner(self) -> FilterTable:
        parent = self.parent
        assert isinstance(parent, FilterTable)
        return parent


class FilterTable(BlankContainer, Vertical):
    """A filterable, sortable table of rows keyed by a string id."""

    DEFAULT_CSS = """
    FilterTable { height: 1fr; }
    FilterTable > Input.filter { display: none; height: 3; border: tall $accent; }
    FilterTable.-filtering > Input.filter { display: block; }
    FilterTable > DataTable { height: 1fr; }
    """

    filter_text: reactive[str] = reactive("", init=False)

    class Highlighted(RowMessage):
        """The cursor moved to a row (key None: the table is empty)."""

    class Activated(RowMessage):
        """Enter on a row."""

    def __init__(self, columns: Sequence[Col | str], *, id: str | None = None,
                 classes: str | None = None, zebra: bool = False,
                 sort_column: str | None = None, sort_reverse: bool = False,
                 empty_text: str = "") -> None:
        super().__init__(id=id, classes=classes)
        self.columns: list[Col] = [c if isinstance(c, Col) else Col(c, c.lower()) for c in columns]
        self._rows: list[tuple[str, list[Any]]] = []
        self._shown: list[str] = []
        self._zebra = zebra
        self.sort_column: str | None = sort_column
        self.sort_reverse = sort_reverse
        self.empty_text = empty_text
        self._last_highlighted: str | None = None

    # ------------------------------------------------------------------ composition
    def compose(self) -> ComposeResult:
        # the filter's Input is made when the filter first opens: every pane's table has
        # one, and mounting them all cost ~15 ms of the app's first paint (issue 16)
        yield _Table(cursor_type="row", zebra_stripes=self._zebra)

    def on_mount(self) -> None:
        self._add_columns()
        self._refill()

    def _add_columns(self) -> None:
        for c in self.columns:
            label = Text(c.label, justify=c.justify)  # type: ignore[arg-type]
            self.table.add_column(label, key=c.key, width=c.width)

    def set_columns(self, columns: Sequence[Col | str]) -> None:
        """Change the columns (rows must then be given in the new shape with set_rows)."""
        self.columns = [c if isinstance(c, Col) else Col(c, c.lower()) for c in columns]
        if self.is_mounted:
            self.table.clear(columns=True)
            self._add_columns()

    @property
    def table(self) -> DataTable:
        return self.query_one(_Table)

    @property
    def filter_input(self) -> Input | None:
        """The filter's Input, once the filter has been opened."""
        return next(iter(self.query_children(Input)), None)

    def focus(self, scroll_visible: bool = True):  # type: ignore[override]
        self.table.focus(scroll_visible)
        return self

    # ------------------------------------------------------------------ data
    def set_rows(self, rows: Iterable[tuple[str, Sequence[Any]]]) -> None:
        """Replace all rows (key, cells); the cursor stays on the same key when it survives."""
        self._rows = [(str(k), [self._cell(c, i) for i, c in enumerate(cells)]) for k, cells in rows]
        if self.is_mounted:
            self._refill()

    def _cell(self, cell: Any, index: int) -> Any:
        if isinstance(cell, str):
            col = self.columns[index] if index < len(self.columns) else None
            return Text(cell, justify=col.justify if col else "left", no_wrap=True)  # type: ignore[arg-type]
        return cell

    @property
    def rows(self) -> list[tuple[str, list[Any]]]:
        return list(self._rows)

    @property
    def shown_keys(self) -> list[str]:
        """Keys of the rows passing the filter, in display order."""
        return list(self._shown)

    def row(self, key: str) -> list[Any] | None:
        for k, cells in self._rows:
            if k == key:
                return cells
        return None

    @property
    def selected_key(self) -> str | None:
        table = self.table
        if not self._shown or table.row_count == 0:
            return None
        idx = table.cursor_row
        if 0 <= idx < len(self._shown):
            return self._shown[idx]
        return None

    def select(self, key: str) -> bool:
        """Move the cursor to ``key``; False if it is not shown."""
        if key in self._shown:
            self.table.move_cursor(row=self._shown.index(key), animate=False)
            return True
        return False

    def _matches(self, cells: list[Any], key: str) -> bool:
        words = self.filter_text.lower().split()
        if not words:
            return True
        hay = " ".join([key.lower()] + [cell_text(c).lower() for c in cells])
        return all(w in hay for w in words)

    def _refill(self) -> None:
        table = self.table
        keep = self.selected_key or self._last_highlighted
        old_row = table.cursor_row
        rows = [(k, c) for k, c in self._rows if self._matches(c, k)]
        if self.sort_column is not None:
            idx = next((i for i, c in enumerate(self.columns) if c.key == self.sort_column), None)
            if idx is not None:
                rows.sort(key=lambda r: _sort_value(r[1][idx]) if idx < len(r[1]) else (2, ""),
                          reverse=self.sort_reverse)
        self._shown = [k for k, _ in rows]
        table.clear()
        for k, cells in rows:
            table.add_row(*cells, key=k)
        if keep in self._shown:
            table.move_cursor(row=self._shown.index(keep), animate=False)
        elif self._shown:
            table.move_cursor(row=min(max(old_row, 0), len(self._shown) - 1), animate=False)
        self.border_subtitle = (f"{len(self._shown)}/{len(self._rows)} match {self.filter_text!r}"
                                if self.filter_text else "")
        self._announce()

    def _announce(self) -> None:
        key = self.selected_key
        if key != self._last_highlighted:
            self._last_highlighted = key
            self.post_message(self.Highlighted(self, key))

    # ------------------------------------------------------------------ filter
    def open_filter(self) -> None:
        inp = self.filter_input
        if inp is None:
            inp = Input(placeholder="filter: words that must all match (Esc clears)",
                        classes="filter")
            self.mount(inp, before=self.table)
        self.add_class("-filtering")
        inp.focus()

    def close_filter(self, clear: bool = False) -> None:
        inp = self.filter_input
        if clear and inp is not None:
            inp.value = ""
        if not self.filter_text:
            self.remove_class("-filtering")
        self.table.focus()

    def watch_filter_text(self, _old: str, _new: str) -> None:
        if self.is_mounted:
            self._refill()

    @on(Input.Changed, "Input.filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value

    @on(Input.Submitted, "Input.filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.close_filter()

    def on_key(self, event) -> None:
        inp = self.filter_input
        if event.key == "escape" and inp is not None and inp.has_focus:
            event.stop()
            self.close_filter(clear=True)
        elif event.key == "escape" and self.filter_text and self.table.has_focus:
            event.stop()
            self.close_filter(clear=True)

    # ------------------------------------------------------------------ sorting
    def sort_by(self, column: str | None, reverse: bool = False) -> None:
        self.sort_column = column
        self.sort_reverse = reverse
        if self.is_mounted:
            self._refill()

    def sort_next(self) -> None:
        keys = [c.key for c in self.columns]
        if self.sort_column not in keys:
            nxt = keys[0]
        else:
            nxt = keys[(keys.index(self.sort_column) + 1) % len(keys)]
        self.sort_by(nxt, False)
        self.app.notify(f"sorted by {self._label(nxt)}", timeout=1.5)

    def _label(self, key: str) -> str:
        return next((c.label for c in self.columns if c.key == key), key)

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = event.column_key.value
        self.sort_by(key, not self.sort_reverse if key == self.sort_column else False)

    # ------------------------------------------------------------------ selection and copy
    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._announce()

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        if key is not None:
            self.post_message(self.Activated(self, key))

    def copy_selected(self, whole_row: bool = False) -> None:
        key = self.selected_key
        if key is None:
            return
        text = key
        if whole_row:
            text = "\t".join(cell_text(c) for c in self.row(key) or [])
        self.app.copy_to_clipboard(text)
        self.app.notify(f"copied: {text[:60]}", timeout=2)
