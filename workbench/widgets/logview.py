"""LogView: a container's log lines, drawn with the Line API, with search highlighting.

Only the visible lines are rendered (a chatty container with 10 000 lines costs what the
screen shows). Lines from stderr are tinted; every occurrence of the search term is
highlighted, the current match in reverse; ``next_match``/``previous_match`` jump between
matching lines. While ``follow`` is on, new lines keep the view at the bottom - unless the
user scrolled up to read, as in ``less +F``.
"""

from __future__ import annotations

import re
from collections import deque

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

MAX_LINES = 10_000
HIGHLIGHT = Style(color="black", bgcolor="yellow")
CURRENT = Style(color="black", bgcolor="bright_yellow", bold=True, reverse=True)
STDERR = Style(color="red")
TIME = Style(dim=True)


class LogView(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    LogView { height: 1fr; background: $surface; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None,
                 max_lines: int = MAX_LINES) -> None:
        super().__init__(id=id, classes=classes)
        self.lines: deque[tuple[str, str, str]] = deque(maxlen=max_lines)  # (stream, time, text)
        self.search = ""
        self.show_time = False
        self.follow = True
        self.current: int | None = None  # index of the line holding the current match
        self._width = 0
        self._pattern: re.Pattern | None = None

    # ------------------------------------------------------------------ content
    def clear(self) -> None:
        self.lines.clear()
        self._width = 0
        self.current = None
        self._resize()

    def append(self, entries: list[tuple[str, str, str]]) -> None:
        """Add (stream, rfc3339 time, text) lines; text is one line without its newline."""
        at_end = self.scroll_y >= self.max_scroll_y - 1
        dropped = max(0, len(self.lines) + len(entries) - (self.lines.maxlen or 0))
        for e in entries:
            self.lines.append(e)
            self._width = max(self._width, len(e[2]) + (31 if self.show_time else 0))
        if dropped and self.current is not None:
            self.current = self.current - dropped if self.current >= dropped else None
        self._resize()
        if self.follow and at_end:
            # after the new virtual size is laid out, or the end is the old one
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True)
        self.refresh()

    def _resize(self) -> None:
        self.virtual_size = Size(self._width + 1, len(self.lines))

    @property
    def text(self) -> str:
        return "\n".join(t for _, _, t in self.lines)

    # ------------------------------------------------------------------ search
    def set_search(self, term: str) -> int:
        """Highlight ``term`` (case-insensitive, literal); returns the matching line count
        and moves to the last match (the newest)."""
        self.search = term
        self._pattern = re.compile(re.escape(term), re.IGNORECASE) if term else None
        self.current = None
        hits = self.matches()
        if hits:
            self.current = hits[-1]
            self._reveal(self.current)
        self.refresh()
        return len(hits)

    def matches(self) -> list[int]:
        if self._pattern is None:
            return []
        return [i for i, (_, _, t) in enumerate(self.lines) if self._pattern.search(t)]

    def next_match(self, forward: bool = True) -> int | None:
        hits = self.matches()
        if not hits:
            return None
        if self.current is None:
            self.current = hits[0] if forward else hits[-1]
        elif forward:
            self.current = next((h for h in hits if h > self.current), hits[0])
        else:
            self.current = next((h for h in reversed(hits) if h < self.current), hits[-1])
        self._reveal(self.current)
        self.refresh()
        return self.current

    def _reveal(self, index: int) -> None:
        height = self.scrollable_content_region.height or 1
        if not (self.scroll_y <= index < self.scroll_y + height):
            self.scroll_to(y=max(0, index - height // 2), animate=False, immediate=True)

    # ------------------------------------------------------------------ drawing
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        if index >= len(self.lines):
            return Strip.blank(width, self.rich_style)
        stream, when, text = self.lines[index]
        line = Text(no_wrap=True, end="")
        if self.show_time:
            line.append(when[:30].ljust(31), TIME)
        start = len(line)
        line.append(text, STDERR if stream == "stderr" else None)
        if self._pattern is not None:
            style = CURRENT if index == self.current else HIGHLIGHT
            for m in self._pattern.finditer(text):
                line.stylize(style, start + m.start(), start + m.end())
        segments = list(line.render(self.app.console))
        strip = Strip(segments).crop(scroll_x, scroll_x + width)
        return strip.extend_cell_length(width, self.rich_style).apply_style(self.rich_style) \
            if strip.cell_length < width else strip.apply_style(self.rich_style)


def split_entries(entries) -> list[tuple[str, str, str]]:
    """core LogEntry objects -> (stream, time, text) lines (one entry may hold several
    lines; a trailing newline ends a line, control characters other than tab are shown
    as in ``cat -v``)."""
    out = []
    for e in entries:
        data = e.data.decode("utf-8", "replace") if isinstance(e.data, bytes) else str(e.data)
        if data.endswith("\n"):
            data = data[:-1]
        for part in data.split("\n"):
            out.append((e.stream, e.time, _printable(part.rstrip("\r"))))
    return out


_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _printable(s: str) -> str:
    if "\x1b" in s:
        s = re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]", "", s)  # colour sequences: dropped
    s = s.replace("\t", "    ")
    return _CTRL.sub(lambda m: "^" + chr(ord(m.group(0)) ^ 0x40), s)


__all__ = ["LogView", "split_entries", "Segment"]
