"""LineTable: a cheap table for rows that change every second (the Stats pane).

DataTable renders every cell through rich (padding, wrapping) and drops all its caches on
any update, so refreshing 20 rows x 8 columns once a second cost ~6 % of a core at 160x48.
LineTable draws each visible row straight into one Strip of Segments (Line API): a
refresh costs what the screen shows and nothing more.

It keeps the conventions of workbench/widgets/table.py's FilterTable: ``/`` opens a filter
(all words must match), Escape clears it; ``s`` sorts by the next column, ``S`` reverses;
up/down/home/end/page keys move the cursor, a click selects; ``Highlighted(table, key)``
when the cursor moves to another row. Cells are ``Text`` (or str); ``sort_values`` give
each row's numeric sort keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input

from workbench.messages import RowMessage
from workbench.widgets.blank import BlankContainer

_PARSED_STYLES: dict[str, Style] = {}     # style string -> Style (LineTable._cell_style)


@dataclass
class Column:
    """One column of a LineTable."""
    label: str
    width: int
    justify: str = "left"


class _Lines(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {"linetable--header", "linetable--cursor"}
    DEFAULT_CSS = """
    _Lines { height: 1fr; }
    _Lines > .linetable--header { text-style: bold; background: $panel; }
    _Lines > .linetable--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold;
    }
    _Lines:blur > .linetable--cursor { background: $block-cursor-blurred-background; text-style: none; }
    """
    BINDINGS = [
        Binding("up", "move(-1)", show=False), Binding("down", "move(1)", show=False),
        Binding("pageup", "move(-10)", show=False), Binding("pagedown", "move(10)", show=False),
        Binding("home", "move(-100000)", show=False), Binding("end", "move(100000)", show=False),
        Binding("slash", "open_filter", "Filter", id="table.filter"),
        Binding("s", "sort_next", "Sort", show=False, id="table.sort"),
        Binding("S", "sort_reverse", "Reverse sort", show=False, id="table.sort_reverse"),
    ]

    _styles: tuple[Style, Style, Style] | None = None

    def owner(self) -> LineTable:
        return self.parent  # type: ignore[return-value]

    def notify_style_update(self) -> None:
        self._styles = None  # theme, focus or CSS changed: resolve the styles again
        super().notify_style_update()

    def _on_focus(self, event: events.Focus) -> None:
        self._styles = None
        super()._on_focus(event)

    def _on_blur(self, event: events.Blur) -> None:
        self._styles = None
        super()._on_blur(event)

    def styles_now(self) -> tuple[Style, Style, Style]:
        """(base, header, cursor) rich styles; resolving CSS costs more than drawing a row,
        so it is done once per style change, not once per line."""
        if self._styles is None:
            base = self.rich_style
            self._styles = (base, base + self.get_component_rich_style("linetable--header"),
                            base + self.get_component_rich_style("linetable--cursor"))
        return self._styles

    def render_line(self, y: int) -> Strip:
        owner = self.owner()
        width = self.scrollable_content_region.width
        base, header, cursor = self.styles_now()
        if y == 0:
            return owner._strip(owner._header_cells(), width, header, self.scroll_offset.x)
        index = self.scroll_offset.y + y - 1
        if index >= len(owner.shown):
            if index == 0 and owner.empty_text:
                return Strip([Segment(f" {owner.empty_text}", base + Style(dim=True))]) \
                    .extend_cell_length(width, base).crop(0, width)
            return Strip.blank(width, base)
        key = owner.shown[index]
        style = cursor if index == owner.cursor else base
        return owner._strip(owner._cells[key], width, style, self.scroll_offset.x,
                            cursor=index == owner.cursor)

    def action_move(self, delta: int) -> None:
        self.owner().move(delta)

    def action_open_filter(self) -> None:
        self.owner().open_filter()

    def action_sort_next(self) -> None:
        self.owner().sort_next()

    def action_sort_reverse(self) -> None:
        owner = self.owner()
        owner.sort_by(owner.sort_column, not owner.sort_reverse)

    def on_click(self, event: events.Click) -> None:
        owner = self.owner()
        if event.y == 0:
            owner.sort_next()
            return
        index = self.scroll_offset.y + event.y - 1
        if 0 <= index < len(owner.shown):
            owner.cursor = index
            owner._announce()
            self.refresh()


class LineTable(BlankContainer, Vertical):
    DEFAULT_CSS = """
    LineTable { height: 1fr; }
    LineTable > Input { display: none; height: 1; border: none; }
    LineTable.-filtering > Input { display: block; }
    """

    class Highlighted(RowMessage):
        """The cursor moved to a row (key None: the table is empty)."""

    def __init__(self, columns: Sequence[Column], *, id: str | None = None,
                 empty_text: str = "") -> None:
        super().__init__(id=id)
        self.columns = list(columns)
        self.keys: list[str] = []
        self._cells: dict[str, list[Text]] = {}
        self._sort_values: dict[str, list[Any]] = {}
        self.shown: list[str] = []
        self.cursor = 0
        self.filter_text = ""
        self.sort_column: int | None = None
        self.sort_reverse = False
        self.empty_text = empty_text
        self._announced: str | None = None
        self.frames = 0

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: words that must all match (Esc clears)", compact=True)
        yield _Lines()

    @property
    def lines(self) -> _Lines:
        return self.query_one(_Lines)

    def focus(self, scroll_visible: bool = True):  # type: ignore[override]
        self.lines.focus(scroll_visible)
        return self

    # ------------------------------------------------------------------ data
    def set_rows(self, rows: Sequence[tuple[str, Sequence[Any], Sequence[Any]]]) -> None:
        """Replace the rows: (key, cells, sort values); the cursor stays on its key.

        Only rows whose cells changed are redrawn; when the order stays the same and nothing
        changed (idle containers), nothing is redrawn at all."""
        keep = self.selected_key
        old_cells, old_shown = self._cells, list(self.shown)
        self.keys = [k for k, _, _ in rows]
        self._cells = {k: [c if isinstance(c, Text) else Text(str(c)) for c in cells]
                       for k, cells, _ in rows}
        self._sort_values = {k: list(v) for k, _, v in rows}
        changed = {k for k in self.keys if old_cells.get(k) != self._cells[k]}
        self._refilter(keep, changed=changed, old_shown=old_shown)

    def row(self, key: str) -> list[Text] | None:
        return self._cells.get(key)

    @property
    def rows(self) -> list[tuple[str, list[Text]]]:
        return [(k, self._cells[k]) for k in self.keys]

    @property
    def selected_key(self) -> str | None:
        if 0 <= self.cursor < len(self.shown):
            return self.shown[self.cursor]
        return None

    def select(self, key: str) -> bool:
        if key in self.shown:
            self.cursor = self.shown.index(key)
            self._announce()
            self._reveal()
            self.lines.refresh()
            return True
        return False

    def move(self, delta: int) -> None:
        if not self.shown:
            return
        self.cursor = max(0, min(len(self.shown) - 1, self.cursor + delta))
        self._announce()
        self._reveal()
        self.lines.refresh()

    def _reveal(self) -> None:
        lines = self.lines
        height = max(1, lines.scrollable_content_region.height - 1)
        if self.cursor < lines.scroll_offset.y:
            lines.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= lines.scroll_offset.y + height:
            lines.scroll_to(y=self.cursor - height + 1, animate=False)

    def _matches(self, key: str) -> bool:
        words = self.filter_text.lower().split()
        if not words:
            return True
        hay = " ".join(c.plain.lower() for c in self._cells[key])
        return all(w in hay for w in words)

    def _refilter(self, keep: str | None = None, changed: set[str] | None = None,
                  old_shown: list[str] | None = None) -> None:
        old_cursor = self.cursor
        shown = [k for k in self.keys if self._matches(k)]
        if self.sort_column is not None:
            col = self.sort_column
            shown.sort(key=lambda k: _sortable(self._sort_values[k][col]
                                               if col < len(self._sort_values[k]) else None),
                       reverse=self.sort_reverse)
        self.shown = shown
        if keep in shown:
            self.cursor = shown.index(keep)
        else:
            self.cursor = min(self.cursor, max(len(shown) - 1, 0))
        width = sum(c.width + 1 for c in self.columns)
        lines = self.lines
        size = Size(width, len(shown) + 1)
        if lines.virtual_size != size:  # a new size means a new layout: only when it changes
            lines.virtual_size = size
        if changed is not None and old_shown == shown and old_cursor == self.cursor:
            top = lines.scroll_offset.y
            dirty = [i for i, k in enumerate(shown) if k in changed]
            if dirty:
                self.frames += 1
                width = lines.size.width
                lines.refresh(*(Region(0, 1 + i - top, width, 1) for i in dirty
                                if 0 <= 1 + i - top < lines.size.height))
        else:
            self.frames += 1
            lines.refresh()
        self._announce()

    def _announce(self) -> None:
        key = self.selected_key
        if key != self._announced:
            self._announced = key
            self.post_message(self.Highlighted(self, key))

    # ------------------------------------------------------------------ drawing
    def _header_cells(self) -> list[Text]:
        out = []
        for i, c in enumerate(self.columns):
            label = c.label
            if i == self.sort_column:
                label += " ▼" if self.sort_reverse else " ▲"
            out.append(Text(label))
        return out

    def _cell_style(self, cell: Text) -> Style | None:
        """The cell's own style (``Text("x", style="green")``) as a rich Style, parsed once
        per style string."""
        got = cell.style
        if not got:
            return None
        if isinstance(got, Style):
            return got
        parsed = _PARSED_STYLES.get(got)
        if parsed is None:
            parsed = _PARSED_STYLES[got] = self.app.console.get_style(got, default=Style.null())
        return parsed

    def _strip(self, cells: list[Text], width: int, style: Style, scroll_x: int,
               cursor: bool = False) -> Strip:
        segments: list[Segment] = []
        for col, cell in zip(self.columns, cells):
            plain = cell.plain
            if not cell.spans and "\n" not in plain and cell_len(plain) <= col.width:
                # one style and short enough (most cells): one segment, no rich render
                used = cell_len(plain)
                own = self._cell_style(cell)
                body = [Segment(plain, style + own if own and not cursor else style)]
            else:
                text = cell.copy()
                text.truncate(col.width, overflow="ellipsis")
                used = text.cell_len
                # a Text without spans renders as one unstyled segment: its own style is
                # ours to apply (with spans, rich puts it under theirs)
                own = None if text.spans else self._cell_style(cell)
                body = []
                for seg in text.render(self.app.console):
                    seg_style = seg.style or own
                    body.append(Segment(seg.text, style + seg_style
                                        if seg_style and not cursor else style))
            pad = col.width - used
            # one space before each column; the padding on the side away from the text
            segments.append(Segment(" " * (1 + (pad if col.justify == "right" else 0)), style))
            segments += body
            if col.justify != "right" and pad:
                segments.append(Segment(" " * pad, style))
        strip = Strip(segments)
        strip = strip.crop(scroll_x, scroll_x + width)
        if strip.cell_length < width:
            strip = strip.extend_cell_length(width, style)
        return strip

    # ------------------------------------------------------------------ filter and sort
    def open_filter(self) -> None:
        self.add_class("-filtering")
        self.query_one(Input).focus()

    def close_filter(self, clear: bool = False) -> None:
        inp = self.query_one(Input)
        if clear:
            inp.value = ""
        if not self.filter_text:
            self.remove_class("-filtering")
        self.lines.focus()

    @on(Input.Changed)
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value
        self._refilter(self.selected_key)

    @on(Input.Submitted)
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.close_filter()

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape" and (self.query_one(Input).has_focus or self.filter_text):
            event.stop()
            self.close_filter(clear=True)

    def sort_by(self, column: int | None, reverse: bool = False) -> None:
        self.sort_column, self.sort_reverse = column, reverse
        self._refilter(self.selected_key)

    def sort_next(self) -> None:
        nxt = 0 if self.sort_column is None else (self.sort_column + 1) % len(self.columns)
        # numbers read best largest first
        self.sort_by(nxt, reverse=nxt != 0)
        self.app.notify(f"sorted by {self.columns[nxt].label}", timeout=1.5)


def _sortable(value: Any) -> tuple:
    if value is None:
        return (2, 0)
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value).lower())
