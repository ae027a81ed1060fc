"""The VT emulator behind the embedded terminal.

pyte supplies the screen model: a sparse grid of cells per line, the cursor, margins, tab stops and
most cursor-motion and erase operations. What pyte lacks, or gets wrong for full-screen programs, is
filled in here:

- a parser of our own (regex driven, so text runs are drawn in slices, not one character at a time)
  that keeps an escape sequence split across reads, knows the ``?``/``>`` prefixes, colon
  sub-parameters (``38:2::r:g:b``), numbered OSC strings and swallows DCS/APC/PM/SOS strings (pyte
  draws their payload as text);
- UTF-8 decoded incrementally with ``errors="replace"``: a character split across reads is kept;
- the alternate screen (modes 1049, 1047, 47) with the main screen and its scrollback left intact;
- a bounded scrollback for the main screen only, fed by lines scrolled off the top;
- scroll regions that behave like xterm: pyte's DL leaves stale lines behind when the line below is
  sparse, and its LF/CUU/CUD clamp a cursor outside the region back into it;
- SU/SD (``CSI S``/``CSI T``), REP (``CSI b``), CHT/CBT, SCOSC/SCORC: ncurses uses them;
- 16, 256 and truecolour SGR in both the ``;`` and ``:`` forms, dim, and erase with the current
  background colour only (pyte copies underline/reverse into erased cells);
- modes tracked for the key and mouse encoders: DECCKM, DECKPAM, bracketed paste (2004), mouse
  reporting (9/1000/1002/1003, SGR 1006), focus events (1004), synchronized output (2026);
- DECTCEM kept outside the saved cursor (pyte's DECRC would restore a stale visibility);
- replies to DSR (5n, 6n), DA (``c``, ``>c``), DECRQM, window size (18t) and colour queries (OSC 10/11);
- titles from OSC 0/2 (and the xterm title stack, 22t/23t), OSC 52 clipboard writes (to a callback);
- a dirty set: the screen rows changed since the renderer last asked.

A fast path draws long runs of plain ASCII lines (``yes``, ``cat`` of a log): when a run scrolls the
whole screen and the whole bounded scrollback away, only its tail can still be seen, so only the tail
is built. The result is exactly what the slow path would produce.

This module imports neither Textual nor rich: the widget renders what the emulator holds.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import copy
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import NamedTuple

import pyte
from pyte import charsets as cs
from pyte import modes as mo
from pyte.screens import Margins, Savepoint, StaticDefaultDict
from wcwidth import wcwidth as _wcwidth

__all__ = ["Cell", "BLANK", "TerminalEmulator", "VTScreen", "line_text"]


class Cell(NamedTuple):
    """One character cell. Field names follow pyte's ``Char`` so pyte's own methods keep working.

    Colours are strings: ``"default"``, an ANSI name (``"red"``, ``"bright_red"``), ``"color(N)"``
    for the 256-colour palette above 15, or ``"#rrggbb"`` for truecolour.
    A wide character occupies its cell and the next one, which holds a stub with ``data == ""``.
    """

    data: str = " "
    fg: str = "default"
    bg: str = "default"
    bold: bool = False
    italics: bool = False
    underscore: bool = False
    strikethrough: bool = False
    reverse: bool = False
    blink: bool = False
    dim: bool = False


BLANK = Cell()
_DEFAULT_REST = BLANK[1:]

_ANSI_NAMES = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")
PALETTE: tuple[str, ...] = (
    _ANSI_NAMES
    + tuple(f"bright_{name}" for name in _ANSI_NAMES)
    + tuple(f"color({i})" for i in range(16, 256))
)

# Private modes handled by pyte itself (pyte stores them shifted left by 5).
_PYTE_PRIVATE = {6, 7}
_MOUSE_TRACKING = {9, 1000, 1002, 1003}
_ALT_SCREEN = {47, 1047, 1049}
# Private modes that are one boolean attribute of the screen.
_MODE_FLAGS = {1: "app_cursor_keys", 25: "cursor_visible", 2004: "bracketed_paste",
               1006: "mouse_sgr", 1004: "focus_events", 2026: "sync_output"}

_CTRL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CSI = re.compile(r"\x1b\[([\x30-\x3f]*)([\x20-\x2f]*)([\x40-\x7e])")
_SGR_TEXT = re.compile(r"\x1b\[([0-9;:]*)m([\x20-\x7e]*)")
# a CSI with C0 controls among its bytes (not ESC, CAN or SUB, which end it): xterm runs each
# control where it stands and goes on with the sequence (vttest 1-05)
_CSI_WITH_C0 = re.compile(r"\x1b\[([\x00-\x17\x19\x1c-\x1f\x30-\x3f]*)([\x00-\x17\x19\x1c-\x1f\x20-\x2f]*)"
                          r"([\x40-\x7e])")
_CSI_PREFIX_WITH_C0 = re.compile(r"\x1b\[[\x00-\x17\x19\x1c-\x1f\x30-\x3f]*[\x00-\x17\x19\x1c-\x1f\x20-\x2f]*")
_C0_IN_CSI = re.compile(r"[\x00-\x1f]")
_ANY_ESCAPE = re.compile(r"\x1b[\x20-\x2f]*[\x30-\x7e]?")
_CSI_PREFIX = re.compile(r"\x1b\[[\x30-\x3f]*[\x20-\x2f]*")
# What ends a control string: ST (ESC \ or C1 ST), also BEL for OSC only (xterm: a DCS, APC,
# PM or SOS string takes BEL as content); CAN or SUB cancel it; any other ESC aborts it and
# starts a new sequence (the string is not acted on)
_OSC_END = re.compile(r"\x07|\x1b\\?|\x9c|[\x18\x1a]")
_STRING_END = re.compile(r"\x1b\\?|\x9c|[\x18\x1a]")
_NON_PLAIN = re.compile(r"[^\x20-\x7e\r\n]")
_LONE_CR_LF = re.compile(r"\r(?!\n)|(?<!\r)\n")
_TITLE_JUNK = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# DEC special graphics as xterm draws it: pyte's table has ░ for 'h', which is ␤ (NL symbol)
_DEC_GRAPHICS = cs.VT100_MAP[: ord("h")] + "\u2424" + cs.VT100_MAP[ord("h") + 1 :]

MAX_STRING = 1 << 20  # longest OSC/DCS string kept while waiting for its terminator
MAX_CSI = 512  # a CSI longer than this is garbage, not a partial sequence
MAX_TITLE = 512
MAX_RUN = 256 * 1024  # characters of plain lines looked at per fast-path call
MAX_UNITS = 400  # lines drawn one by one per call inside a scroll region


def _wcwidth_cached() -> Callable[[str], int]:
    cache: dict[str, int] = {}

    def width(ch: str) -> int:
        w = cache.get(ch)
        if w is None:
            w = _wcwidth(ch)
            if len(cache) < 65536:
                cache[ch] = w
        return w

    return width


wcwidth = _wcwidth_cached()


class _CellFactory(dict):
    """char -> Cell with one fixed set of attributes; cells are immutable, so they are shared."""

    __slots__ = ("rest",)

    def __init__(self, rest: tuple) -> None:
        super().__init__()
        self.rest = rest

    def __missing__(self, ch: str) -> Cell:
        cell = self[ch] = Cell(ch, *self.rest)
        return cell


#: CSI finals that call one screen method with the first parameter (0 when absent)
_CSI_ONE_PARAMETER: dict[str, str] = {
    "A": "cursor_up", "B": "cursor_down", "e": "cursor_down", "C": "cursor_forward",
    "a": "cursor_forward", "D": "cursor_back", "E": "cursor_down1", "F": "cursor_up1",
    "G": "cursor_to_column", "`": "cursor_to_column", "d": "cursor_to_line",
    "J": "erase_in_display", "K": "erase_in_line", "L": "insert_lines", "M": "delete_lines",
    "@": "insert_characters", "P": "delete_characters", "X": "erase_characters",
    "S": "scroll_up", "g": "clear_tab_stop", "n": "report_device_status",
    "c": "report_device_attributes",
}

#: ESC finals that call one screen method
_ESC_METHOD: dict[str, str] = {
    "7": "save_cursor", "8": "restore_cursor", "D": "index", "M": "reverse_index",
    "H": "set_tab_stop", "c": "reset",
}


def _int(text: str, default: int = 0) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default


def line_text(line: dict | str | None, columns: int) -> str:
    """The text of a line as it is drawn: wide characters once, their stubs skipped.

    A history line may be a plain str (printable ASCII in the default style)."""
    if not line:
        return ""
    if isinstance(line, str):
        return line[:columns].rstrip()
    default = getattr(line, "default", BLANK)
    get = line.get
    out: list[str] = []
    x = 0
    while x < columns:
        cell = get(x, default)
        ch = cell.data
        if ch == "":  # a stub whose wide character was overwritten
            out.append(" ")
            x += 1
            continue
        if x + 1 < columns and get(x + 1, default).data == "" and wcwidth(ch[0]) == 2:
            out.append(ch)
            x += 2
            continue
        if wcwidth(ch[0]) == 2:  # no stub after it: the character was half overwritten
            out.append(" ")
        else:
            out.append(ch)
        x += 1
    return "".join(out).rstrip()


class TextLine:
    """A history line the plain-lines fast path made: text in one set of attributes.

    It answers the same questions as a line dict (``get``, ``default``, iteration), building
    cells only when asked, so pushing thousands of lines through history costs little."""

    __slots__ = ("text", "cells", "default")

    def __init__(self, text: str, cells: _CellFactory, default: Cell) -> None:
        self.text = text
        self.cells = cells
        self.default = default

    def get(self, x: int, default: Cell | None = None) -> Cell | None:
        if 0 <= x < len(self.text):
            return self.cells[self.text[x]]
        return default

    def __getitem__(self, x: int) -> Cell:
        cell = self.get(x)
        return self.default if cell is None else cell

    def __contains__(self, x: object) -> bool:
        return isinstance(x, int) and 0 <= x < len(self.text)

    def __iter__(self):
        return iter(range(len(self.text)))

    def __len__(self) -> int:
        return len(self.text)


class VTScreen(pyte.Screen):
    """pyte's Screen with an alternate buffer, scrollback and xterm's behaviour where pyte differs."""

    def __init__(self, columns: int, lines: int, history: int = 5000) -> None:
        # Attributes used by reset(), which pyte's __init__ calls.
        self.history: deque[dict] = deque(maxlen=max(0, history))
        self.history_pushed = 0  # lines ever pushed into history (for a scrolled-back view anchor)
        self.alt_active = False
        self._main_buffer: dict | None = None
        self._alt_buffer: dict | None = None
        self._saved_1049: Savepoint | None = None
        self._factories: dict[tuple, _CellFactory] = {}
        self._factory_attrs: Cell | None = None
        self._factory: _CellFactory | None = None
        self._xlate: str | None = None
        self.last_char = " "
        self.replies: list[str] = []
        self.title_stack: list[str] = []
        # Modes the key and mouse encoders need (raw numbers, not pyte's shifted ones).
        self.cursor_visible = True
        self.app_cursor_keys = False
        self.app_keypad = False
        self.bracketed_paste = False
        self.mouse_tracking = 0  # 0, 9, 1000, 1002 or 1003
        self.mouse_sgr = False
        self.focus_events = False
        self.sync_output = False
        self.private_modes: set[int] = set()  # other private modes, for DECRQM
        super().__init__(columns, lines)

    # ---- cells and lines -------------------------------------------------------------------

    @property
    def default_char(self) -> Cell:  # type: ignore[override]
        # DECSCNM (reverse video) is a display mode the renderer applies (``reverse_video``):
        # the cells keep their own attributes, as in xterm (pyte rewrote every cell)
        return BLANK

    @property
    def reverse_video(self) -> bool:
        """DECSCNM: the renderer shows the whole screen in reverse video."""
        return mo.DECSCNM in self.mode

    def _new_buffer(self) -> defaultdict:
        return defaultdict(lambda: StaticDefaultDict(self.default_char))

    def _new_line(self) -> StaticDefaultDict:
        return StaticDefaultDict(self.default_char)

    def _cells(self, attrs: Cell) -> _CellFactory:
        rest = attrs[1:]
        factory = self._factories.get(rest)
        if factory is None:
            if len(self._factories) > 512:
                self._factories.clear()
            factory = self._factories[rest] = _CellFactory(rest)
            self._factory_attrs = None
        return factory

    def _erase_cell(self) -> Cell:
        """What erase operations leave: blank, in the current background colour only (xterm BCE)."""
        bg = self.cursor.attrs.bg
        base = self.default_char
        return base if bg == "default" else base._replace(bg=bg)

    # ---- reset and resize --------------------------------------------------------------------

    def reset(self) -> None:
        if getattr(self, "alt_active", False):
            self.buffer = self._main_buffer  # type: ignore[assignment]
            self._main_buffer = None
            self.alt_active = False
        super().reset()
        self.g1_charset = cs.LAT1_MAP  # xterm starts G1 as ASCII too (pyte: DEC graphics)
        self.cursor.attrs = BLANK
        self.savepoints = []
        self._saved_1049 = None
        self._xlate = None
        self.cursor_visible = True
        self.app_cursor_keys = False
        self.app_keypad = False
        self.bracketed_paste = False
        self.mouse_tracking = 0
        self.mouse_sgr = False
        self.focus_events = False
        self.sync_output = False
        self.private_modes = set()

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        lines = lines or self.lines
        columns = columns or self.columns
        if lines == self.lines and columns == self.columns:
            return
        old_lines, old_columns = self.lines, self.columns
        cursor = self.cursor
        # Shrinking: keep the cursor's line on screen by scrolling the top away (into history
        # on the main screen), like xterm; lines below the cursor are dropped.
        if lines < old_lines:
            shift = max(0, cursor.y - lines + 1)
            if self.alt_active:
                self._shrink_buffer(self.buffer, shift, lines, to_history=False)
                saved = self._saved_1049
                main_shift = max(0, (saved.cursor.y if saved else 0) - lines + 1)
                self._shrink_buffer(self._main_buffer, main_shift, lines, to_history=True)
                if saved is not None:
                    saved.cursor.y -= main_shift
            else:
                self._shrink_buffer(self.buffer, shift, lines, to_history=True)
            cursor.y -= shift
        if lines < old_lines and self._alt_buffer is not None:
            self._shrink_buffer(self._alt_buffer, 0, lines, to_history=False)
        if columns < old_columns:
            for buffer in (self.buffer, self._main_buffer, self._alt_buffer):
                if buffer is None:
                    continue
                for line in buffer.values():
                    for x in [x for x in line if x >= columns]:
                        del line[x]
        elif columns > old_columns:
            self.tabstops.update(range((old_columns // 8 + 1) * 8, columns, 8))
        self.lines, self.columns = lines, columns
        self.margins = None
        cursor.x = min(cursor.x, columns - 1)
        cursor.y = min(cursor.y, lines - 1)
        if self._saved_1049 is not None:
            saved_cursor = self._saved_1049.cursor
            saved_cursor.x = min(saved_cursor.x, columns - 1)
            saved_cursor.y = max(0, min(saved_cursor.y, lines - 1))
        self.dirty.update(range(lines))

    def _shrink_buffer(self, buffer: dict | None, shift: int, lines: int, to_history: bool) -> None:
        if buffer is None:
            return
        if shift:
            for y in range(shift):
                line = buffer.pop(y, None)
                if to_history and self.history.maxlen:
                    self.history.append(line if line is not None else self._new_line())
                    self.history_pushed += 1
            for y in sorted(k for k in list(buffer) if k >= shift):
                buffer[y - shift] = buffer.pop(y)
        for y in [y for y in buffer if y >= lines]:
            del buffer[y]

    # ---- drawing -------------------------------------------------------------------------------

    def draw(self, data: str) -> None:
        if self._xlate is not None:
            data = data.translate(self._xlate)
        if data.isascii() and mo.IRM not in self.mode:
            self._draw_ascii(data)
        else:
            self._draw_wide(data)
        if data:
            self.last_char = data[-1]

    def _draw_ascii(self, data: str) -> None:
        """Printable ASCII: one cell each, written a row-slice at a time."""
        cursor = self.cursor
        columns = self.columns
        attrs = cursor.attrs
        if attrs is self._factory_attrs:
            cells = self._factory
        else:
            cells = self._factory = self._cells(attrs)
            self._factory_attrs = attrs
        x = cursor.x
        n = len(data)
        if x + n <= columns:  # the common case: it fits on the cursor's row
            line = self.buffer[cursor.y]
            if n == 1:
                line[x] = cells[data]
            else:
                line.update(zip(range(x, x + n), map(cells.__getitem__, data)))
            cursor.x = x + n
            self.dirty.add(cursor.y)
            return
        getcell = cells.__getitem__
        autowrap = mo.DECAWM in self.mode
        dirty = self.dirty
        i, n = 0, len(data)
        while i < n:
            if cursor.x >= columns:
                if autowrap:
                    dirty.add(cursor.y)
                    cursor.x = 0
                    self.index()
                else:
                    # Without autowrap every further character overwrites the last column.
                    self.buffer[cursor.y][columns - 1] = getcell(data[n - 1])
                    break
            x = cursor.x
            take = min(n - i, columns - x)
            line = self.buffer[cursor.y]
            line.update(zip(range(x, x + take), map(getcell, data[i : i + take])))
            cursor.x = x + take
            i += take
        dirty.add(cursor.y)

    def _draw_wide(self, data: str) -> None:
        """Any text: wide characters take two cells, zero-width ones join the previous cell."""
        cursor = self.cursor
        columns = self.columns
        cells = self._cells(cursor.attrs)
        stub = cells[""]
        autowrap = mo.DECAWM in self.mode
        insert = mo.IRM in self.mode
        dirty = self.dirty
        for ch in data:
            width = wcwidth(ch)
            if width < 0:
                continue  # unprintable: skip it, keep the rest (pyte drops the rest of the run)
            if width == 0:
                self._combine(ch)
                continue
            if width > columns:
                continue  # a wide character on a one-column screen has nowhere to go
            if cursor.x + width > columns:
                if autowrap:
                    dirty.add(cursor.y)
                    cursor.x = 0
                    self.index()
                else:
                    cursor.x = max(0, columns - width)
            if insert:
                self.insert_characters(width)
            line = self.buffer[cursor.y]
            line[cursor.x] = cells[ch]
            if width == 2 and cursor.x + 1 < columns:
                line[cursor.x + 1] = stub
            cursor.x += width
        dirty.add(cursor.y)

    def _combine(self, ch: str) -> None:
        """Attach a zero-width character (combining mark, ZWJ, variation selector) to the cell before."""
        cursor = self.cursor
        x, y = cursor.x - 1, cursor.y
        if x < 0:
            # at column 0 nothing precedes it on this line (a wrap leaves the cursor after the
            # character it drew), so the mark has no base: xterm drops it
            return
        line = self.buffer[y]
        if x > 0 and line[x].data == "":
            x -= 1
        cell = line[x]
        if cell.data == "":
            return
        line[x] = cell._replace(data=cell.data + ch)
        self.dirty.add(y)

    # ---- scrolling -----------------------------------------------------------------------------

    def _region(self) -> tuple[int, int]:
        margins = self.margins
        return (margins.top, margins.bottom) if margins else (0, self.lines - 1)

    def _scroll_up(self, top: int, bottom: int, count: int, to_history: bool = True) -> None:
        """Move lines top..bottom up by count; the top ones go to history if the region starts at 0."""
        buffer = self.buffer
        count = max(1, min(count, bottom - top + 1))
        if to_history and top == 0 and not self.alt_active and self.history.maxlen:
            history = self.history
            for y in range(count):
                line = buffer.pop(y, None)
                history.append(line if line is not None else self._new_line())
            self.history_pushed += count
        if top == 0 and bottom == self.lines - 1:  # the whole screen: renumber what exists
            moved = [(y - count, line) for y, line in buffer.items() if y >= count]
            buffer.clear()
            buffer.update(moved)
            self.dirty.update(range(top, bottom + 1))
        else:
            self._move_lines(top, bottom, count)
        self._paint_new_lines(range(bottom - count + 1, bottom + 1))

    def _scroll_down(self, top: int, bottom: int, count: int) -> None:
        """Move lines top..bottom down by count; blank lines appear at the top."""
        count = max(1, min(count, bottom - top + 1))
        self._move_lines(top, bottom, -count)
        self._paint_new_lines(range(top, top + count))

    def _paint_new_lines(self, rows: range) -> None:
        """Lines a scroll brings in are blank in the current background colour (xterm BCE)."""
        blank = self._erase_cell()
        if blank is not BLANK:
            for y in rows:
                self.buffer[y] = StaticDefaultDict(blank)

    def _move_lines(self, top: int, bottom: int, offset: int) -> None:
        """Each line of top..bottom takes the line ``offset`` rows below it (above when
        negative), or becomes blank where that is outside the region."""
        buffer = self.buffer
        # walk away from where the lines come from, so each is read before it is replaced
        ys = range(top, bottom + 1) if offset > 0 else range(bottom, top - 1, -1)
        for y in ys:
            src = y + offset
            if top <= src <= bottom and src in buffer:
                buffer[y] = buffer.pop(src)
            else:
                buffer.pop(y, None)
        self.dirty.update(range(top, bottom + 1))

    def index(self) -> None:
        cursor = self.cursor
        top, bottom = self._region()
        if cursor.x >= self.columns:
            cursor.x = self.columns - 1
        if cursor.y == bottom:
            self._scroll_up(top, bottom, 1)
        elif cursor.y < self.lines - 1:
            cursor.y += 1

    def reverse_index(self) -> None:
        cursor = self.cursor
        top, bottom = self._region()
        if cursor.x >= self.columns:
            cursor.x = self.columns - 1
        if cursor.y == top:
            self._scroll_down(top, bottom, 1)
        elif cursor.y > 0:
            cursor.y -= 1

    def linefeed(self) -> None:
        self.index()
        if mo.LNM in self.mode:
            self.cursor.x = 0

    def insert_lines(self, count: int | None = None) -> None:
        top, bottom = self._region()
        if top <= self.cursor.y <= bottom:
            self._scroll_down(self.cursor.y, bottom, count or 1)
            self.cursor.x = 0

    def delete_lines(self, count: int | None = None) -> None:
        top, bottom = self._region()
        if top <= self.cursor.y <= bottom:
            self._scroll_up(self.cursor.y, bottom, count or 1, to_history=False)
            self.cursor.x = 0

    def scroll_up(self, count: int | None = None) -> None:
        """SU: the region's content moves up (xterm keeps the lines if the region starts at 0)."""
        top, bottom = self._region()
        self._scroll_up(top, bottom, count or 1)

    def scroll_down(self, count: int | None = None) -> None:
        """SD: the region's content moves down."""
        top, bottom = self._region()
        self._scroll_down(top, bottom, count or 1)

    # ---- cursor motion (xterm: the region only bounds a cursor that is inside it) -------------

    def cursor_up(self, count: int | None = None) -> None:
        top, _ = self._region()
        cursor = self.cursor
        limit = top if cursor.y >= top else 0
        cursor.y = max(cursor.y - (count or 1), limit)
        cursor.x = min(cursor.x, self.columns - 1)

    def cursor_down(self, count: int | None = None) -> None:
        _, bottom = self._region()
        cursor = self.cursor
        limit = bottom if cursor.y <= bottom else self.lines - 1
        cursor.y = min(cursor.y + (count or 1), limit)
        cursor.x = min(cursor.x, self.columns - 1)

    def _row(self, line: int | None) -> int:
        """A 1-based row of CUP/VPA as a screen row: in origin mode relative to the region and
        clamped into it (pyte ignored such a CUP and asserted a region existed for VPA)."""
        y = (line or 1) - 1
        if mo.DECOM in self.mode:
            top, bottom = self._region()
            return min(top + y, bottom)
        return min(max(y, 0), self.lines - 1)

    def cursor_to_line(self, line: int | None = None) -> None:
        self.cursor.y = self._row(line)
        self.cursor.x = min(self.cursor.x, self.columns - 1)

    def cursor_position(self, line: int | None = None, column: int | None = None) -> None:
        self.cursor.y = self._row(line)
        self.cursor.x = min(max((column or 1) - 1, 0), self.columns - 1)

    def set_margins(self, top: int | None = None, bottom: int | None = None) -> None:
        """DECSTBM: a region of at least two lines, or the whole screen without parameters;
        either way the cursor goes home (pyte did not home it on a reset)."""
        t = (top or 1) - 1
        b = (bottom or self.lines) - 1
        t, b = max(0, min(t, self.lines - 1)), max(0, min(b, self.lines - 1))
        if b - t < 1:
            return  # xterm ignores a region of fewer than two lines
        self.margins = None if (t, b) == (0, self.lines - 1) else Margins(t, b)
        self.cursor_position()

    def tab_forward(self, count: int = 1) -> None:
        # a count past the line's width changes nothing more (CSI 2147483647 I froze the tab)
        for _ in range(max(1, min(count, self.columns))):
            self.tab()

    def tab_backward(self, count: int = 1) -> None:
        cursor = self.cursor
        for _ in range(max(1, min(count, self.columns))):
            stops = [s for s in self.tabstops if s < cursor.x]
            cursor.x = max(stops) if stops else 0

    def tab(self) -> None:
        cursor = self.cursor
        if cursor.x >= self.columns:
            return  # a pending wrap stays pending: the next character wraps (xterm)
        stops = [s for s in self.tabstops if s > cursor.x]
        cursor.x = min(stops) if stops else self.columns - 1
        cursor.x = min(cursor.x, self.columns - 1)

    def save_cursor(self) -> None:
        # xterm keeps one saved cursor; pyte's stack grows with every unmatched DECSC.
        super().save_cursor()
        self.savepoints = self.savepoints[-1:]

    def restore_cursor(self) -> None:
        # DECRC may be repeated, and restores the modes it saved whether they were set or not.
        if not self.savepoints:
            self.mode.discard(mo.DECOM)
            self.cursor_position()
            return
        saved = self.savepoints[-1]
        self.g0_charset, self.g1_charset, self.charset = saved.g0_charset, saved.g1_charset, saved.charset
        self._update_translation()
        (self.mode.add if saved.origin else self.mode.discard)(mo.DECOM)
        # DECAWM is saved with the cursor by pyte but xterm's DECRC does not restore it
        self.cursor = copy.copy(saved.cursor)
        self.ensure_hbounds()
        # the saved position is absolute: a region set since does not pull it in
        self.cursor.y = min(max(self.cursor.y, 0), self.lines - 1)

    def alignment_display(self) -> None:
        """DECALN: the screen full of E in the default rendition; like xterm it also resets the
        scroll region and homes the cursor (pyte left both, and kept each cell's colours)."""
        self.margins = None
        row = dict.fromkeys(range(self.columns), BLANK._replace(data="E"))
        for y in range(self.lines):
            line = self.buffer[y] = self._new_line()
            line.update(row)
        self.dirty.update(range(self.lines))
        self.cursor_position()

    # ---- erasing -----------------------------------------------------------------------------

    def erase_in_display(self, how: int = 0, *args: object, **kwargs: object) -> None:
        if how == 3:  # xterm: erase the saved lines only
            self.history.clear()
            self.history_pushed += 1  # invalidate anchors into the old history
            return
        cursor = self.cursor
        if how == 0:
            rows = range(cursor.y + 1, self.lines)
        elif how == 1:
            rows = range(cursor.y)
        elif how == 2:
            rows = range(self.lines)
        else:
            return
        blank = self._erase_cell()
        buffer = self.buffer
        for y in rows:
            if blank is BLANK:
                buffer.pop(y, None)
            else:
                buffer[y] = StaticDefaultDict(blank)
        self.dirty.update(rows)
        if how in (0, 1):
            self.erase_in_line(how)

    def erase_in_line(self, how: int = 0, private: bool = False) -> None:
        cursor = self.cursor
        columns = self.columns
        if how == 0:
            xs = range(min(cursor.x, columns), columns)
        elif how == 1:
            xs = range(0, min(cursor.x, columns - 1) + 1)
        elif how == 2:
            xs = range(columns)
        else:
            return
        self.dirty.add(cursor.y)
        blank = self._erase_cell()
        line = self.buffer[cursor.y]
        if how == 2 and blank is BLANK:
            self.buffer.pop(cursor.y, None)
            return
        if blank is getattr(line, "default", None):
            for x in xs:
                line.pop(x, None)
        else:
            for x in xs:
                line[x] = blank

    def erase_characters(self, count: int | None = None) -> None:
        cursor = self.cursor
        self.dirty.add(cursor.y)
        blank = self._erase_cell()
        line = self.buffer[cursor.y]
        for x in range(cursor.x, min(cursor.x + (count or 1), self.columns)):
            line[x] = blank

    def delete_characters(self, count: int | None = None) -> None:
        """DCH: what is right of the cursor moves left by count; blanks come in at the end."""
        self._shift_characters(count or 1)

    def insert_characters(self, count: int | None = None) -> None:
        """ICH: what is from the cursor on moves right by count; blanks fill the gap."""
        self._shift_characters(-(count or 1))

    def _shift_characters(self, offset: int) -> None:
        """Each cell from the cursor to the end of its line takes the cell ``offset`` columns
        to its right (left when negative), or a blank where that is outside the span."""
        cursor = self.cursor
        self.dirty.add(cursor.y)
        blank = self._erase_cell()
        line = self.buffer[cursor.y]
        start, columns = cursor.x, self.columns
        # walk away from where the cells come from, so each is read before it is overwritten
        xs = range(start, columns) if offset > 0 else range(columns - 1, start - 1, -1)
        for x in xs:
            src = x + offset
            line[x] = line.pop(src, line.default) if start <= src < columns else blank

    def repeat_last(self, count: int) -> None:
        """REP: draw the last graphic character count more times."""
        count = max(1, min(count, self.columns * self.lines))
        self.draw(self.last_char * count)

    # ---- alternate screen ----------------------------------------------------------------------

    def enter_alternate(self, clear: bool) -> None:
        if not self.alt_active:
            self._main_buffer = self.buffer
            # xterm keeps the alternate buffer's content between visits (mode 47 shows it again).
            self.buffer = self._alt_buffer if self._alt_buffer is not None else self._new_buffer()
            self._alt_buffer = None
            self.alt_active = True
        if clear:
            self.buffer.clear()
        self.dirty.update(range(self.lines))

    def leave_alternate(self, clear: bool = False) -> None:
        if not self.alt_active:
            return
        if clear:
            self.buffer.clear()
        self._alt_buffer = self.buffer
        self.buffer = self._main_buffer  # type: ignore[assignment]
        self._main_buffer = None
        self.alt_active = False
        self.dirty.update(range(self.lines))

    def save_cursor_1049(self) -> None:
        self._saved_1049 = Savepoint(
            copy.copy(self.cursor),
            self.g0_charset,
            self.g1_charset,
            self.charset,
            mo.DECOM in self.mode,
            mo.DECAWM in self.mode,
        )

    def restore_cursor_1049(self) -> None:
        saved = self._saved_1049
        if saved is None:
            return
        self.cursor = copy.copy(saved.cursor)
        self.g0_charset, self.g1_charset, self.charset = saved.g0_charset, saved.g1_charset, saved.charset
        self._update_translation()
        self.ensure_hbounds()
        self.ensure_vbounds()

    # ---- charsets --------------------------------------------------------------------------------

    def define_charset(self, code: str, mode: str) -> None:
        super().define_charset(code, mode)
        if self.g0_charset is cs.VT100_MAP:
            self.g0_charset = _DEC_GRAPHICS
        if self.g1_charset is cs.VT100_MAP:
            self.g1_charset = _DEC_GRAPHICS
        self._update_translation()

    def shift_in(self) -> None:
        self.charset = 0
        self._update_translation()

    def shift_out(self) -> None:
        self.charset = 1
        self._update_translation()

    def _update_translation(self) -> None:
        table = self.g1_charset if self.charset else self.g0_charset
        self._xlate = None if table is cs.LAT1_MAP else table

    # ---- modes ---------------------------------------------------------------------------------

    def set_private_modes(self, modes: list[int], on: bool) -> None:
        for mode in modes:
            if mode in _ALT_SCREEN:
                if mode == 1049:
                    if on:
                        if self.alt_active:
                            continue  # already there: xterm neither saves again nor clears
                        self.save_cursor_1049()
                        self.enter_alternate(clear=True)
                    else:
                        self.leave_alternate()
                        self.restore_cursor_1049()
                elif on:
                    self.enter_alternate(clear=False)
                else:
                    self.leave_alternate(clear=mode == 1047)
            elif mode == 1048:
                self.save_cursor_1049() if on else self.restore_cursor_1049()
            elif mode in _MODE_FLAGS:
                setattr(self, _MODE_FLAGS[mode], on)
            elif mode in _MOUSE_TRACKING:
                if on:
                    self.mouse_tracking = mode
                elif self.mouse_tracking == mode:
                    self.mouse_tracking = 0
            elif mode == 5:
                (self.mode.add if on else self.mode.discard)(mo.DECSCNM)
                self.dirty.update(range(self.lines))
            elif mode in _PYTE_PRIVATE:
                (pyte.Screen.set_mode if on else pyte.Screen.reset_mode)(self, mode, private=True)
            elif mode == 3:
                pass  # DECCOLM: xterm ignores it unless allowed; never change our width
            elif on:
                self.private_modes.add(mode)
            else:
                self.private_modes.discard(mode)

    def private_mode_state(self, mode: int) -> int:
        """DECRQM answer: 1 set, 2 reset, 0 not recognised."""
        known = {mode: getattr(self, flag) for mode, flag in _MODE_FLAGS.items()}
        known.update({
            47: self.alt_active,
            1047: self.alt_active,
            1049: self.alt_active,
            5: mo.DECSCNM in self.mode,
            6: mo.DECOM in self.mode,
            7: mo.DECAWM in self.mode,
        })
        for m in _MOUSE_TRACKING:
            known[m] = self.mouse_tracking == m
        if mode in known:
            return 1 if known[mode] else 2
        if mode in self.private_modes:
            return 1
        return 0

    # ---- SGR ---------------------------------------------------------------------------------

    def select_graphic_rendition(self, *attrs: int, **kwargs: object) -> None:  # pyte's API
        self.sgr(";".join(str(a) for a in attrs))

    def sgr(self, params: str) -> None:
        cursor = self.cursor
        if not params or params == "0":
            cursor.attrs = self.default_char
            return
        cursor.attrs = _apply_sgr(cursor.attrs, params, self.default_char)

    # ---- replies -------------------------------------------------------------------------------

    def write_process_input(self, data: str) -> None:
        self.replies.append(data)

    def report_device_status(self, mode: int = 0, private: bool = False, **kwargs: object) -> None:
        if mode == 5:
            self.replies.append("\x1b[0n")
        elif mode == 6:
            x = min(self.cursor.x, self.columns - 1) + 1
            y = self.cursor.y + 1
            if mo.DECOM in self.mode and self.margins is not None:
                y -= self.margins.top
            self.replies.append(f"\x1b[{'?' if private else ''}{y};{x}R")

    def report_device_attributes(self, mode: int = 0, **kwargs: object) -> None:
        if mode == 0:
            # VT220 with ANSI colour; xterm-like enough for termcap-less programs.
            self.replies.append("\x1b[?62;22c")

    def set_title(self, param: str) -> None:
        self.title = _TITLE_JUNK.sub("", param)[:MAX_TITLE]

    def set_icon_name(self, param: str) -> None:
        self.icon_name = _TITLE_JUNK.sub("", param)[:MAX_TITLE]


_SGR_CACHE: dict[tuple[Cell, str, Cell], Cell] = {}

#: SGR codes that set fixed values of cell attributes
_SGR_SET: dict[int, dict[str, object]] = {
    39: {"fg": "default"}, 49: {"bg": "default"},
    1: {"bold": True}, 2: {"dim": True}, 3: {"italics": True}, 4: {"underscore": True},
    21: {"underscore": True}, 5: {"blink": True}, 6: {"blink": True}, 7: {"reverse": True},
    9: {"strikethrough": True},
    22: {"bold": False, "dim": False}, 23: {"italics": False}, 24: {"underscore": False},
    25: {"blink": False}, 27: {"reverse": False}, 29: {"strikethrough": False},
}


def _colour_from(args: list[str]) -> tuple[str | None, int]:
    """Parse ``5;n`` or ``2;r;g;b`` (semicolon form). Returns (colour, arguments consumed)."""
    if not args:
        return None, 0
    kind = _int(args[0], -1)
    if kind == 5 and len(args) >= 2:
        n = _int(args[1], -1)
        return (PALETTE[n] if 0 <= n < 256 else None), 2
    if kind == 2 and len(args) >= 4:
        r, g, b = (_int(a) for a in args[1:4])
        if max(r, g, b) > 255:
            return None, 4
        return f"#{r:02x}{g:02x}{b:02x}", 4
    return None, len(args)  # malformed: the rest of the parameters are unusable


def _colour_from_colon(sub: list[str]) -> str | None:
    """Parse ``5:n``, ``2::r:g:b`` (with colour-space id) or ``2:r:g:b`` (colon form)."""
    if not sub:
        return None
    kind = _int(sub[0], -1)
    if kind == 5 and len(sub) >= 2:
        n = _int(sub[1], -1)
        return PALETTE[n] if 0 <= n < 256 else None
    if kind == 2:
        rgb = sub[2:5] if len(sub) >= 5 else sub[1:4]
        if len(rgb) < 3:
            return None
        r, g, b = (_int(a) for a in rgb)
        if max(r, g, b) > 255:
            return None
        return f"#{r:02x}{g:02x}{b:02x}"
    return None


def _apply_sgr(attrs: Cell, params: str, default: Cell) -> Cell:
    key = (attrs, params, default)
    cached = _SGR_CACHE.get(key)
    if cached is not None:
        return cached
    changes: dict[str, object] = {}
    groups = params.split(";")
    i, n = 0, len(groups)
    while i < n:
        group = groups[i]
        i += 1
        if ":" in group:
            sub = group.split(":")
            code = _int(sub[0])
            if code in (38, 48):
                colour = _colour_from_colon(sub[1:])
                if colour is not None:
                    changes["fg" if code == 38 else "bg"] = colour
            elif code == 4:
                changes["underscore"] = _int(sub[1], 1) != 0 if len(sub) > 1 else True
            continue  # 58 (underline colour) and unknown sub-parameters are ignored
        code = _int(group)
        if code == 0:
            changes = dict(zip(Cell._fields[1:], default[1:]))
        elif 30 <= code <= 37:
            changes["fg"] = _ANSI_NAMES[code - 30]
        elif 40 <= code <= 47:
            changes["bg"] = _ANSI_NAMES[code - 40]
        elif 90 <= code <= 97:
            changes["fg"] = PALETTE[code - 90 + 8]
        elif 100 <= code <= 107:
            changes["bg"] = PALETTE[code - 100 + 8]
        elif code in (38, 48, 58):
            colour, used = _colour_from(groups[i:])
            i += used
            if colour is not None and code != 58:
                changes["fg" if code == 38 else "bg"] = colour
        elif code in _SGR_SET:
            changes.update(_SGR_SET[code])
        # 8/28 (conceal), 53/55 (overline), 51-54 and fonts are ignored
    result = attrs._replace(**changes) if changes else attrs
    if len(_SGR_CACHE) > 4096:
        _SGR_CACHE.clear()
    _SGR_CACHE[key] = result
    return result


class TerminalEmulator:
    """Bytes from a program in, a screen (plus scrollback, title and modes) out.

    ``feed(data)`` parses everything at once. The widget uses ``queue(data)`` and
    ``process(deadline)`` instead, so a flood is parsed in slices between other work.
    Replies the program asked for (DSR, DA, ...) collect in ``take_replies()``.
    """

    fast_lines = True  # draw runs of plain lines in bulk (tests turn it off for a reference)

    def __init__(
        self,
        rows: int = 24,
        cols: int = 80,
        history: int = 5000,
        on_clipboard: Callable[[str], None] | None = None,
        on_bell: Callable[[], None] | None = None,
    ) -> None:
        self.screen = VTScreen(cols, rows, history=history)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._text = ""  # decoded, not yet parsed (may start with an incomplete sequence)
        self._discarding = False  # inside an over-long OSC/DCS string: drop until its end
        self.on_clipboard = on_clipboard
        self.on_bell = on_bell
        self.cwd = ""
        # Colours reported to OSC 10/11 queries (programs pick dark or light themes from them).
        self.report_fg = "rgb:d0d0/d0d0/d0d0"
        self.report_bg = "rgb:1e1e/1e1e/1e1e"
        self.bytes_fed = 0
        self.dropped = 0  # steps that raised and were skipped (shown in the terminal's status)

    # ---- input ---------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Decode and parse all of data."""
        self.queue(data)
        self.process()

    def feed_text(self, text: str) -> None:
        self._text += text
        self.process()

    def queue(self, data: bytes, final: bool = False) -> None:
        """Decode data (incrementally: a split character waits for its other bytes).

        final=True at the end of input turns a dangling partial character into U+FFFD."""
        self.bytes_fed += len(data)
        text = self._decoder.decode(data, final)
        if text:
            self._text = self._text + text if self._text else text

    def process(self, deadline: float | None = None) -> bool:
        """Parse queued text until done or time.monotonic() passes deadline.

        Returns True if it stopped for the deadline with text left to parse.
        """
        data = self._text
        if not data:
            return False
        if self._discarding:
            m = _OSC_END.search(data)
            if m is None or m.group() == "\x1b" and m.end() == len(data):
                self._text = "" if m is None else "\x1b"  # a lone ESC may begin the ST
                return False
            self._discarding = False
            data = data[m.start() if m.group() == "\x1b" else m.end() :]
        screen = self.screen
        draw = screen.draw
        draw_ascii = screen._draw_ascii
        search = _CTRL.search
        sgr_text = _SGR_TEXT.match
        sgr_cache = _SGR_CACHE
        n = len(data)
        i = 0
        steps = 0
        stopped = False
        clock = time.monotonic
        while i < n:
            at = i  # where the work of this step starts (a failed step is skipped from here)
            try:
                m = search(data, i)
                if m is None:
                    draw(data[i:])
                    i = n
                    break
                j = m.start()
                if j > i:
                    text = data[i:j]
                    if screen._xlate is None and text.isascii() and mo.IRM not in screen.mode:
                        draw_ascii(text)
                        screen.last_char = text[-1]
                    else:
                        draw(text)
                at = i = j
                c = data[j]
                if c == "\x1b":
                    # SGR and the plain text after it are most of what colourful output sends:
                    # take both in one step, without the general dispatch.
                    m = sgr_text(data, j)
                    if m is not None:
                        params = m.group(1)
                        cursor = screen.cursor
                        if not params or params == "0":
                            cursor.attrs = screen.default_char
                        else:
                            attrs = sgr_cache.get((cursor.attrs, params, screen.default_char))
                            if attrs is None:
                                screen.sgr(params)
                            else:
                                cursor.attrs = attrs
                        text = m.group(2)
                        if text:
                            if screen._xlate is None and mo.IRM not in screen.mode:
                                draw_ascii(text)
                                screen.last_char = text[-1]
                            else:
                                draw(text)
                        i = m.end()
                    else:
                        k = self._escape(data, j, n)
                        if k < 0:
                            break  # incomplete: keep it for the next read
                        i = k
                elif c == "\r":
                    if self.fast_lines and data.startswith("\r\n", j):
                        i = self._plain_lines(data, j)
                    else:
                        screen.cursor.x = 0
                        i = j + 1
                elif c == "\n" or c == "\x0b" or c == "\x0c":
                    screen.linefeed()
                    i = j + 1
                else:
                    self._control(c)
                    i = j + 1
            except Exception:  # noqa: BLE001 - no input may stop the terminal: drop what failed
                i = self._drop(data, at, n)
            steps += 1
            if deadline is not None and not steps & 31 and clock() > deadline:
                stopped = True
                break
        self._text = data[i:] if i < n else ""
        return stopped and bool(self._text)

    def _drop(self, data: str, at: int, n: int) -> int:
        """A step that raised: count it, skip the sequence (or text) it was working on, put the
        cursor back inside the screen and go on; returns where parsing resumes."""
        self.dropped += 1
        screen = self.screen
        cursor = screen.cursor
        cursor.y = min(max(cursor.y, 0), screen.lines - 1)
        cursor.x = min(max(cursor.x, 0), screen.columns)
        self._discarding = False
        if data[at] != "\x1b":
            m = _CTRL.search(data, at + 1)
            return m.start() if m else n  # text (or a control) failed: skip to what follows
        m = _CSI.match(data, at) or _CSI_WITH_C0.match(data, at) or _ANY_ESCAPE.match(data, at)
        return m.end() if m else at + 1

    # ---- controls and escapes ------------------------------------------------------------------

    def _c0(self, c: str) -> None:
        """Any C0 control, as the main loop runs it."""
        if c == "\r":
            self.screen.cursor.x = 0
        elif c in "\n\x0b\x0c":
            self.screen.linefeed()
        else:
            self._control(c)

    def _control(self, c: str) -> None:
        screen = self.screen
        if c == "\x08":
            screen.cursor_back()
        elif c == "\x09":
            screen.tab()
        elif c == "\x07":
            if self.on_bell is not None:
                self.on_bell()
        elif c == "\x0e":
            screen.shift_out()
        elif c == "\x0f":
            screen.shift_in()
        # NUL, DEL, CAN, SUB, other C0 and all C1 controls are ignored.

    def _escape(self, data: str, j: int, n: int) -> int:
        """Handle the escape sequence at data[j]; return the index after it, or -1 if incomplete."""
        if j + 1 >= n:
            return -1
        c = data[j + 1]
        screen = self.screen
        if c == "[":
            m = _CSI.match(data, j)
            if m is None:
                m = _CSI_WITH_C0.match(data, j)
                if m is not None:
                    for control in _C0_IN_CSI.findall(m.group(1) + m.group(2)):
                        self._c0(control)
                    self._csi(_C0_IN_CSI.sub("", m.group(1)), _C0_IN_CSI.sub("", m.group(2)), m.group(3))
                    return m.end()
                p = _CSI_PREFIX_WITH_C0.match(data, j)
                if p is not None and p.end() >= n and p.end() - j < MAX_CSI:
                    return -1  # may still end well in the next read
                p = _CSI_PREFIX.match(data, j)
                end = p.end() if p else j + 2
                return end  # malformed: drop what was read, parse on from the odd character
            self._csi(m.group(1), m.group(2), m.group(3))
            return m.end()
        if c == "]" or c in "P_^X":
            m = (_OSC_END if c == "]" else _STRING_END).search(data, j + 2)
            if m is None or m.group() == "\x1b" and m.end() == n:
                if n - j > MAX_STRING:
                    self._discarding = True
                    return n
                return -1  # unterminated, or an ESC that may be the start of ST
            end = m.group()
            if end == "\x1b":
                return m.start()  # aborted by another sequence, which is parsed next
            if c == "]" and end not in "\x18\x1a":
                self._osc(data[j + 2 : m.start()])
            return m.end()  # DCS, APC, PM and SOS strings are swallowed
        if c in "()*+-./":
            if j + 2 >= n:
                return -1
            if c in "()":
                screen.define_charset(data[j + 2], c)
            return j + 3
        if c in "#% ":
            if j + 2 >= n:
                return -1
            if c == "#" and data[j + 2] == "8":
                screen.alignment_display()
            return j + 3
        if c in _ESC_METHOD:
            getattr(screen, _ESC_METHOD[c])()
        elif c == "E":
            screen.cursor.x = 0
            screen.index()
        elif c == "=":
            screen.app_keypad = True
        elif c == ">":
            screen.app_keypad = False
        elif c < " " or c == "\x7f":
            return j + 1  # ESC before a control: the ESC is void, the control runs
        return j + 2

    def _csi(self, params: str, inter: str, final: str) -> None:
        screen = self.screen
        prefix = ""
        if params and params[0] in "<=>?":
            prefix, params = params[0], params[1:]
        if final == "m":
            if not prefix and not inter:
                screen.sgr(params)
            return  # CSI > Ps m (modifyOtherKeys) and others: ignored
        if inter:
            if inter == "$" and final == "p":  # DECRQM
                mode = _int(params)
                if prefix == "?":
                    state = screen.private_mode_state(mode)
                else:
                    state = {4: mo.IRM, 20: mo.LNM}.get(mode)
                    state = 0 if state is None else (1 if state in screen.mode else 2)
                screen.replies.append(f"\x1b[{prefix}{mode};{state}$y")
            elif inter == "!" and final == "p":  # DECSTR soft reset
                screen.cursor_visible = True
                screen.margins = None
                screen.mode.discard(mo.IRM)
                screen.mode.discard(mo.DECOM)
                screen.mode.add(mo.DECAWM)
                screen.app_cursor_keys = False
                screen.app_keypad = False
                screen.cursor.attrs = screen.default_char
            return  # cursor style (SP q) and the rest: ignored
        if params and not params.isascii() or any(ch in params for ch in "<=>?"):
            return  # a private marker after the first byte: xterm ignores the sequence
        args = [_int(p) for p in params.split(";")] if params else []
        p0 = args[0] if args else 0
        if prefix == "?":
            if final == "h":
                screen.set_private_modes(args, True)
            elif final == "l":
                screen.set_private_modes(args, False)
            elif final == "J":
                screen.erase_in_display(p0)
            elif final == "K":
                screen.erase_in_line(p0)
            elif final == "n":
                screen.report_device_status(p0, private=True)
            return
        if prefix == ">":
            if final == "c" and p0 == 0:
                screen.replies.append("\x1b[>1;10;0c")
            return
        if prefix:
            return
        method = _CSI_ONE_PARAMETER.get(final)
        if method is not None:
            getattr(screen, method)(p0)
        elif final == "H" or final == "f":
            screen.cursor_position(*args[:2])
        elif final == "T":
            if len(args) <= 1:
                screen.scroll_down(p0)
        elif final == "b":
            screen.repeat_last(p0 or 1)
        elif final == "r":
            screen.set_margins(*args[:2])
        elif final == "I":
            screen.tab_forward(p0 or 1)
        elif final == "Z":
            screen.tab_backward(p0 or 1)
        elif final == "h":
            for mode in args:
                if mode in (4, 20):
                    screen.set_mode(mode)
        elif final == "l":
            for mode in args:
                if mode in (4, 20):
                    screen.reset_mode(mode)
        elif final == "s":
            if not args:
                screen.save_cursor()
        elif final == "u":
            if not args:
                screen.restore_cursor()
        elif final == "t":
            self._window_op(args)

    def _window_op(self, args: list[int]) -> None:
        screen = self.screen
        op = args[0] if args else 0
        if op == 18:
            screen.replies.append(f"\x1b[8;{screen.lines};{screen.columns}t")
        elif op == 22:
            if len(screen.title_stack) < 10:
                screen.title_stack.append(screen.title)
        elif op == 23:
            if screen.title_stack:
                screen.title = screen.title_stack.pop()

    def _osc(self, body: str) -> None:
        screen = self.screen
        number, _, arg = body.partition(";")
        if number == "0":
            screen.set_title(arg)
            screen.set_icon_name(arg)
        elif number == "2":
            screen.set_title(arg)
        elif number == "1":
            screen.set_icon_name(arg)
        elif number == "7":
            self.cwd = arg[:4096]
        elif number == "52":
            _, _, payload = arg.partition(";")
            if payload and payload != "?" and self.on_clipboard is not None:
                try:
                    text = base64.b64decode(payload, validate=False).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    return
                self.on_clipboard(text)
        elif number in ("10", "11") and arg == "?":
            colour = self.report_fg if number == "10" else self.report_bg
            screen.replies.append(f"\x1b]{number};{colour}\x1b\\")

    # ---- the plain-lines fast path -----------------------------------------------------------

    def _plain_lines(self, data: str, j: int) -> int:
        """Handle ``\\r\\n`` + printable-ASCII units starting at data[j]; return where it stopped.

        At most MAX_RUN characters are looked at and at most MAX_UNITS units drawn one by one per
        call, so one call stays within a few milliseconds; the parser loop calls again."""
        screen = self.screen
        limit = min(len(data), j + MAX_RUN)
        m = _NON_PLAIN.search(data, j, limit)
        end = m.start() if m else limit
        if data[end - 1] == "\r":
            end -= 1  # the CR whose LF is beyond what we look at
        seg = data[j:end]
        crs = seg.count("\r")
        if crs != seg.count("\n") or crs != seg.count("\r\n"):
            lone = _LONE_CR_LF.search(seg)
            if lone is not None:
                end = j + lone.start()
                seg = data[j:end]
        if len(seg) <= 2:  # a lone CR LF
            screen.cursor.x = 0
            screen.linefeed()
            return j + 2
        lines = screen.lines
        if (
            screen.margins in (None, Margins(0, lines - 1))
            and mo.DECAWM in screen.mode
            and mo.IRM not in screen.mode
            and screen._xlate is None
        ):
            self._bulk(seg.split("\r\n")[1:])
            return end
        # A scroll region (or insert mode, a charset, no autowrap): the ordinary operations.
        units = seg.split("\r\n", MAX_UNITS + 1)
        if len(units) > MAX_UNITS + 1:
            units.pop()
            end = j + sum(len(text) + 2 for text in units[1:])
        cursor = screen.cursor
        index = screen.index
        draw = screen.draw
        for text in units[1:]:
            cursor.x = 0
            index()
            if text:
                draw(text)
        return end

    def _bulk(self, texts: list[str]) -> None:
        """Draw texts, each after CR LF, on a screen without a scroll region, at once.

        Exactly what index() and draw() would do one by one, but the rows scrolled off are
        handed to history as TextLines, and rows that history's bound would drop at once are
        never built: ``yes`` or ``cat big.log`` cost little more than splitting the text."""
        screen = self.screen
        lines, columns = screen.lines, screen.columns
        cursor = screen.cursor
        cells = screen._cells(cursor.attrs)
        getcell = cells.__getitem__
        default = screen.default_char
        # The rows the texts fill, in order (a text longer than the screen is wide wraps).
        if max(map(len, texts)) <= columns:
            rows = texts
        else:
            rows = []
            for text in texts:
                if len(text) <= columns:
                    rows.append(text)
                else:
                    rows.extend(text[x : x + columns] for x in range(0, len(text), columns))
        buffer = screen.buffer
        dirty = screen.dirty
        y0 = min(cursor.y, lines - 1)
        # First the cursor walks down over the existing lines below it, writing over them.
        down = min(len(rows), lines - 1 - y0)
        for r in range(down):
            row = rows[r]
            if row:
                buffer[y0 + 1 + r].update(zip(range(len(row)), map(getcell, row)))
        dirty.update(range(y0, y0 + down + 1))
        scrolls = len(rows) - down
        if scrolls > 0:
            # Then every row scrolls the screen up by one: the old screen rows, then the new
            # ones, leave at the top (into history on the main screen).
            old = [buffer.get(y) for y in range(lines)]
            fresh = rows[down:]

            def new_line(row: str) -> StaticDefaultDict:
                line = StaticDefaultDict(default)
                if row:
                    line.update(zip(range(len(row)), map(getcell, row)))
                return line

            keep = 0 if screen.alt_active else (screen.history.maxlen or 0)
            if keep:
                first = max(0, scrolls - keep)
                history = [
                    old[k] if old[k] is not None else StaticDefaultDict(default)
                    for k in range(first, min(scrolls, lines))
                ]
                new = fresh[max(0, first - lines) : max(0, scrolls - lines)]
                if default is BLANK and cursor.attrs[1:] == _DEFAULT_REST:
                    history.extend(new)  # plain text in the default style: the str is the line
                else:
                    history.extend([TextLine(row, cells, default) for row in new])
                screen.history.extend(history)
                screen.history_pushed += scrolls
            buffer.clear()
            for y in range(lines):
                k = scrolls + y
                line = old[k] if k < lines else new_line(fresh[k - lines])
                if line is not None:
                    buffer[y] = line
            cursor.y = lines - 1
            dirty.update(range(lines))
        else:
            cursor.y = y0 + down
        cursor.x = len(rows[-1])
        for text in reversed(texts):
            if text:
                screen.last_char = text[-1]
                break

    # ---- output for the renderer ---------------------------------------------------------------

    def take_dirty(self) -> set[int]:
        """Screen rows changed since the last call."""
        dirty = self.screen.dirty
        rows = {y for y in dirty if 0 <= y < self.screen.lines}
        dirty.clear()
        return rows

    def take_replies(self) -> bytes:
        replies = self.screen.replies
        if not replies:
            return b""
        data = "".join(replies).encode()
        replies.clear()
        return data

    def resize(self, rows: int, cols: int) -> None:
        self.screen.resize(max(1, rows), max(1, cols))

    @property
    def rows(self) -> int:
        return self.screen.lines

    @property
    def cols(self) -> int:
        return self.screen.columns

    @property
    def title(self) -> str:
        return self.screen.title

    @property
    def cursor(self) -> tuple[int, int]:
        """(x, y) of the cursor; x is clamped to the last column during a pending wrap."""
        c = self.screen.cursor
        return min(c.x, self.screen.columns - 1), c.y

    def display(self) -> list[str]:
        """Screen rows as text (trailing blanks stripped), as the widget draws them."""
        screen = self.screen
        buffer = screen.buffer
        return [line_text(buffer.get(y), screen.columns) for y in range(screen.lines)]

    def history_text(self) -> list[str]:
        """History lines as text; lines are dicts of cells, TextLines or (default style) str."""
        columns = self.screen.columns
        return [line_text(line, columns) for line in self.screen.history]

    def cell(self, x: int, y: int) -> Cell:
        line = self.screen.buffer.get(y)
        if line is None:
            return self.screen.default_char
        return line.get(x, line.default)
