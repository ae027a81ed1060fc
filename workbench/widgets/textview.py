"""TextView: read-only text (a file's content, JSON, a log) with search, selection and copy.

A read-only TextArea (so the mouse selects, Ctrl-C / y copies, the keyboard moves a cursor)
plus a find bar: ``/`` opens it, Enter jumps to the next match (case-insensitive) and selects
it, ``n`` / ``N`` go to the next / previous match, Escape closes the bar. The number of
matches shows in the bar's border.

    view = TextView(id="content"); view.load_text(text)
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, TextArea
from textual.widgets.text_area import Selection


class _Area(TextArea):
    BINDINGS = [
        Binding("slash", "find", "Find", id="text.find"),
        Binding("n", "next_match", "Next", id="text.next"),
        Binding("N", "previous_match", "Previous", id="text.previous"),
        Binding("y", "copy_all", "Copy", id="text.copy"),
    ]

    def action_find(self) -> None:
        self.parent.open_find()  # type: ignore[union-attr]

    def action_next_match(self) -> None:
        self.parent.find(forward=True)  # type: ignore[union-attr]

    def action_previous_match(self) -> None:
        self.parent.find(forward=False)  # type: ignore[union-attr]

    def action_copy_all(self) -> None:
        text = self.selected_text or self.text
        self.app.copy_to_clipboard(text)
        self.app.notify(f"copied {len(text)} characters", timeout=2)


class TextView(Vertical):
    DEFAULT_CSS = """
    TextView { height: 1fr; }
    TextView > Input { display: none; height: 3; }
    TextView.-finding > Input { display: block; }
    TextView > TextArea { height: 1fr; }
    """

    def __init__(self, text: str = "", id: str | None = None, language: str | None = None) -> None:
        super().__init__(id=id)
        self._text = text
        self._language = language
        self.query_text = ""

    def compose(self) -> ComposeResult:
        yield Input(placeholder="find (Enter: next, Esc: close)")
        yield _Area(self._text, read_only=True, soft_wrap=False, show_line_numbers=True,
                    language=None)

    @property
    def area(self) -> TextArea:
        return self.query_one(_Area)

    def load_text(self, text: str) -> None:
        self._text = text
        self.area.load_text(text)

    def focus(self, scroll_visible: bool = True):  # type: ignore[override]
        self.area.focus(scroll_visible)
        return self

    def open_find(self) -> None:
        self.add_class("-finding")
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_text = event.value
        self.find(forward=True)

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_text = event.value
        count = self.count(event.value)
        event.input.border_title = f"{count} matches" if event.value else ""

    def on_key(self, event) -> None:
        if event.key == "escape" and self.query_one(Input).has_focus:
            event.stop()
            self.remove_class("-finding")
            self.area.focus()

    def count(self, needle: str) -> int:
        return self.area.text.lower().count(needle.lower()) if needle else 0

    def find(self, forward: bool = True) -> bool:
        """Select the next (previous) match after (before) the cursor; wraps around."""
        needle = self.query_text.lower()
        if not needle:
            return False
        area = self.area
        text = area.text
        low = text.lower()
        cur = area.selection.end if forward else area.selection.start
        offset = _offset(text, cur)
        if forward:
            pos = low.find(needle, offset)
            if pos < 0:
                pos = low.find(needle)
        else:
            pos = low.rfind(needle, 0, max(0, offset))
            if pos < 0:
                pos = low.rfind(needle)
        if pos < 0:
            self.app.notify(f"not found: {self.query_text}", severity="warning", timeout=2)
            return False
        start = _location(text, pos)
        end = _location(text, pos + len(needle))
        area.selection = Selection(start, end)
        area.scroll_cursor_visible(center=True)
        return True


def _offset(text: str, location: tuple[int, int]) -> int:
    row, col = location
    lines = text.split("\n")
    return sum(len(line) + 1 for line in lines[:row]) + col


def _location(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    row = before.count("\n")
    col = offset - (before.rfind("\n") + 1)
    return row, col
