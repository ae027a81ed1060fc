"""The embedded terminal: a Textual widget drawing a TerminalEmulator fed by a backend.

Data path: the backend's fd is watched with ``loop.add_reader``; a readable fd is drained until
EAGAIN (up to READ_LIMIT bytes), the bytes are decoded and parsed for at most PARSE_BUDGET seconds
per turn of the event loop; if text is left, reading pauses (the program blocks on a full PTY) and
parsing continues on the next turn, so keys and other panes are served in between. Parsing marks
screen rows dirty; at most one frame per FRAME seconds refreshes only those rows. Rows are drawn
with the Line API from a per-row cache of Strips, invalidated by the dirty set, the cursor, the
selection and the scrollback position. Nothing runs while the program is quiet: no timers, no polls.

Keys: the focused terminal takes every key, Tab, Ctrl-C, Ctrl-Z and Ctrl-D included. One chord
leaves it: Ctrl-] (``ctrl+right_square_bracket``, binding id ``terminal.leave``; the footer shows
it, ``App.set_keymap`` can change it). Shift+PgUp/PgDn and the mouse wheel scroll back through the
history unless the program asked for the mouse. Selecting text with the mouse copies it (OSC 52).
"""

from __future__ import annotations

import asyncio
import select
import time
from collections.abc import Callable, Mapping, Sequence

from rich.cells import cell_len
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Offset, Region
from textual.reactive import reactive
from textual.selection import Selection
from textual.strip import Strip
from textual.widget import Widget

from workbench.messages import AboutWidget
from workbench.terminal.backend import PtyBackend, TerminalBackend, terminal_env
from workbench.terminal.emulator import BLANK, Cell, TerminalEmulator, line_text, wcwidth
from workbench.terminal.keys import encode_focus, encode_key, encode_mouse, encode_paste

__all__ = ["Terminal", "FRAME", "PARSE_BUDGET"]

FRAME = 1 / 60  # at most one refresh per frame
FLOOD_FRAME = 1 / 20  # while output floods in (more waiting, or a backlog), frames are spaced more
FLOOD_BYTES = 256 * 1024  # this much output since the last frame counts as a flood
PARSE_BUDGET = 0.004  # seconds of parsing per event-loop turn
PARSE_BATCH = 256 * 1024  # while more output is waiting, read up to this much before parsing
LEAVE_ACTION = "leave_terminal"
WHEEL_LINES = 3


_COLOUR_CACHE: dict[str, Color | None] = {}


def _colour(name: str) -> Color | None:
    colour = _COLOUR_CACHE.get(name, False)
    if colour is False:
        colour = None if name == "default" else Color.parse(name)
        _COLOUR_CACHE[name] = colour
    return colour  # type: ignore[return-value]


_STYLE_CACHE: dict[tuple, Style] = {}


def cell_style(attrs: tuple) -> Style:
    """rich Style for Cell attributes (Cell[1:]); cached, the set in use is small."""
    style = _STYLE_CACHE.get(attrs)
    if style is None:
        fg, bg, bold, italics, underscore, strike, reverse, blink, dim = attrs
        style = Style(
            color=_colour(fg),
            bgcolor=_colour(bg),
            bold=bold or None,
            dim=dim or None,
            italic=italics or None,
            underline=underscore or None,
            strike=strike or None,
            reverse=reverse or None,
            blink=blink or None,
        )
        if len(_STYLE_CACHE) > 4096:
            _STYLE_CACHE.clear()
        _STYLE_CACHE[attrs] = style
    return style


def _flip_reverse(attrs: tuple) -> tuple:
    return attrs[:6] + (not attrs[6],) + attrs[7:]


def _cursor_attrs(attrs: tuple, focused: bool) -> tuple:
    if focused:  # a block: the cell in reverse video
        return _flip_reverse(attrs)
    return attrs[:4] + (True,) + attrs[5:]  # unfocused: underlined


def render_cells(
    line: dict | None,
    columns: int,
    cursor_x: int | None = None,
    focused: bool = True,
    span: tuple[int, int] | None = None,
    selection_style: Style | None = None,
    reverse_video: bool = False,
) -> list[Segment]:
    """Segments for one line: runs of equal attributes, wide characters once, stubs skipped.

    span is a selected (start, end) range of character offsets (end -1: to the end of line),
    which is what Textual's selection counts; the cursor cell is drawn in reverse video.
    reverse_video (DECSCNM) shows every cell with its reverse attribute flipped."""
    if isinstance(line, str):  # a history line in the default style (see emulator._bulk)
        text = line[:columns]
        if cursor_x is None and span is None:
            attrs = _flip_reverse(BLANK[1:]) if reverse_video else BLANK[1:]
            return [Segment(text.ljust(columns), cell_style(attrs))]
        line = {x: BLANK._replace(data=c) for x, c in enumerate(text)}
    default = getattr(line, "default", BLANK) if line is not None else BLANK
    get = line.get if line else None
    segments: list[Segment] = []
    append = segments.append
    run: list[str] = []
    run_attrs: tuple | None = None
    run_selected = False
    x = 0
    index = 0
    sel_start, sel_end = span if span is not None else (-1, -1)
    while x < columns:
        cell: Cell = get(x, default) if get is not None else default
        ch = cell.data
        width = 1
        if ch == "":
            ch = " "  # the stub of a wide character that was overwritten
        elif ch[0] > "\x7f" and wcwidth(ch[0]) == 2:
            if x + 1 < columns and (get(x + 1, default) if get else default).data == "":
                width = 2
            else:
                ch = " "  # a wide character cut in half
        if len(ch) > 1 and (ch[-1] == "\u200d" or cell_len(ch) != width):
            # a base with marks that rich measures otherwise than the grid (VS16 after a
            # narrow character: 2 cells to rich), or a joiner whose partner took a cell of its
            # own (rich would join it with the next cell's character): either would shift the
            # rest of the row, so the cell shows its base alone
            ch = ch.rstrip("\u200d")
            if not ch or cell_len(ch) != width:
                ch = ch[:1] if ch and cell_len(ch[:1]) == width else " " * width
        attrs = cell[1:]
        if reverse_video:
            attrs = _flip_reverse(attrs)
        if x == cursor_x:
            attrs = _cursor_attrs(attrs, focused)
        selected = span is not None and index >= sel_start and (sel_end == -1 or index < sel_end)
        if attrs != run_attrs or selected != run_selected:
            if run:
                style = cell_style(run_attrs)  # type: ignore[arg-type]
                if run_selected and selection_style is not None:
                    style = style + selection_style
                append(Segment("".join(run), style))
                run = []
            run_attrs, run_selected = attrs, selected
        run.append(ch)
        index += len(ch)
        x += width
    if run:
        style = cell_style(run_attrs)  # type: ignore[arg-type]
        if run_selected and selection_style is not None:
            style = style + selection_style
        append(Segment("".join(run), style))
    return segments


class AboutTerminal(AboutWidget):
    """A message a Terminal posts about itself (``terminal``, also its ``control``)."""

    def __init__(self, terminal: Terminal) -> None:
        super().__init__(terminal)
        self.terminal = terminal


class Terminal(Widget, can_focus=True):
    """A terminal running a backend (a host command, an exec'd PTY, a container attach)."""

    DEFAULT_CSS = """
    Terminal {
        width: 1fr;
        height: 1fr;
        background: $surface;
        color: $foreground;
        scrollbar-size: 0 0;
    }
    """

    BINDINGS = [
        Binding(
            "ctrl+right_square_bracket",
            LEAVE_ACTION,
            "Leave terminal",
            key_display="^]",
            id="terminal.leave",
            tooltip="Give the keyboard back to the app (the program keeps running)",
        ),
    ]

    ALLOW_SELECT = True

    title: reactive[str] = reactive("")
    """The program's window title (OSC 0/2), or the backend's default title."""
    dropped: reactive[int] = reactive(0)
    """Sequences the emulator could not handle and skipped (the pane shows the count)."""

    class Exited(AboutTerminal):
        """The program ended (or the attached container exited, or the attach socket closed)."""

        def __init__(self, terminal: Terminal, exit_code: int | None) -> None:
            super().__init__(terminal)
            self.exit_code = exit_code

    class Left(AboutTerminal):
        """The user pressed the leave chord; the app decides where the focus goes."""

    class TitleChanged(AboutTerminal):
        def __init__(self, terminal: Terminal, title: str) -> None:
            super().__init__(terminal)
            self.title = title

    class SequencesDropped(AboutTerminal):
        """The emulator skipped sequences it could not handle (``dropped``: how many so far);
        the terminal stays live."""

        def __init__(self, terminal: Terminal, dropped: int) -> None:
            super().__init__(terminal)
            self.dropped = dropped

    def __init__(
        self,
        command: Sequence[str] | None = None,
        *,
        backend: TerminalBackend | None = None,
        backend_factory: Callable[[int, int], TerminalBackend] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        history: int = 5000,
        exit_banner: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """Give one of: command (runs on the host under a new PTY), backend (already running,
        e.g. an AttachBackend) or backend_factory(rows, cols) (started once the size is known,
        so the program sees its real size from the first instruction)."""
        super().__init__(name=name, id=id, classes=classes)
        if sum(x is not None for x in (command, backend, backend_factory)) != 1:
            raise ValueError("Terminal needs exactly one of command, backend or backend_factory")
        if command is not None:
            argv = list(command)
            environment = terminal_env(env)

            def backend_factory(rows: int, cols: int) -> TerminalBackend:
                return PtyBackend(argv, env=environment, cwd=cwd, rows=rows, cols=cols)

        self._factory = backend_factory
        self.backend: TerminalBackend | None = backend
        self.emulator = TerminalEmulator(history=history, on_clipboard=self._program_copy, on_bell=self._bell)
        self.exit_banner = exit_banner
        self.exit_code: int | None = None
        self.exited = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd = -1
        self._reading = False
        self._writing = False
        self._eof = False
        self._parse_handle: asyncio.Handle | None = None
        self._frame_handle: asyncio.TimerHandle | None = None
        self._exit_handle: asyncio.TimerHandle | None = None
        self._exit_tries = 0
        self._last_frame = 0.0
        self._bytes_since_frame = 0
        self._flooding = False  # output kept coming faster than we parsed since the last frame
        self._unparsed = 0
        self._sent_size: tuple[int, int] | None = None
        self._strips: dict[int, Strip] = {}
        self._drawn_cursor: tuple[int, int, bool] | None = None
        self._reverse_drawn = False  # DECSCNM as the strips were last drawn
        self._scroll = 0  # lines scrolled back into history; 0 = live
        self._pushed_seen = 0
        self._mouse_buttons: set[int] = set()
        self._last_bell = 0.0
        self._sync_since: float | None = None
        self.frames = 0  # refreshes issued (for tests and benchmarks)

    # ---- lifecycle ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.backend is not None:
            self._attach_backend(self.backend)
        elif self._factory is not None:
            # a tab opened behind another never gets a size until shown: its program
            # starts anyway, at the emulator's size, and is resized when first shown
            self.call_after_refresh(self._start_unsized)

    def _start_unsized(self) -> None:
        if self.backend is None and self._factory is not None:
            self._start_backend(self.emulator.rows, self.emulator.cols)

    def on_unmount(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading and close the backend: detach an attach, hang up an exec or command."""
        self._stop_io()
        for handle in (self._parse_handle, self._frame_handle, self._exit_handle):
            if handle is not None:
                handle.cancel()
        self._parse_handle = self._frame_handle = self._exit_handle = None
        if self.backend is not None:
            try:
                self.backend.close()
            except OSError:
                pass

    def _attach_backend(self, backend: TerminalBackend) -> None:
        self.backend = backend
        if not self.title:
            self.title = backend.title
        if self.size.width and self.size.height:
            self._resize_backend(self.size.height, self.size.width)
        self._fd = backend.fileno()
        self._start_reading()

    def _resize_backend(self, rows: int, cols: int) -> None:
        """Tell the program its size (an attached container may start at any size)."""
        if self.backend is not None and not self._eof and (rows, cols) != self._sent_size:
            self._sent_size = (rows, cols)
            self.backend.resize(rows, cols)

    def _start_reading(self) -> None:
        if not self._reading and not self._eof and self._loop is not None and self._fd >= 0:
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def _pause_reading(self) -> None:
        if self._reading and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def _stop_io(self) -> None:
        self._pause_reading()
        if self._writing and self._loop is not None:
            self._loop.remove_writer(self._fd)
            self._writing = False

    def on_resize(self, event: events.Resize) -> None:
        cols, rows = self.size.width, self.size.height
        if cols <= 0 or rows <= 0:
            return
        if (rows, cols) != (self.emulator.rows, self.emulator.cols):
            self.emulator.resize(rows, cols)
        if self.backend is not None:
            self._resize_backend(rows, cols)
        elif self._factory is not None:
            self._start_backend(rows, cols)
        self._strips.clear()
        self.refresh()

    def _start_backend(self, rows: int, cols: int) -> None:
        try:
            backend = self._factory(rows, cols)
            self._sent_size = (rows, cols)
        except Exception as error:  # no such command, container not running, ...
            self.emulator.feed(f"\x1b[31m{error}\x1b[0m\r\n".encode())
            self._factory = None
            self._finish(None)
        else:
            self._attach_backend(backend)

    # ---- reading and parsing -------------------------------------------------------------------

    def _on_readable(self) -> None:
        backend = self.backend
        if backend is None:
            return
        try:
            data = backend.read_available()
        except (EOFError, OSError):
            self._on_eof()
            return
        if data:
            self._bytes_since_frame += len(data)
            self._unparsed += len(data)
            self.emulator.queue(data)
            if self._more_waiting():
                self._flooding = True
                if self._unparsed < PARSE_BATCH:
                    return  # a flood: read on next turn and parse in bigger (cheaper) batches
        if self._unparsed:
            self._unparsed = 0
            self._parse()

    def _more_waiting(self) -> bool:
        poller = select.poll()  # not select.select: fds above 1023 are fine
        poller.register(self._fd, select.POLLIN)
        try:
            return any(mask & select.POLLIN for _, mask in poller.poll(0))
        except OSError:
            return False

    def _parse(self) -> None:
        self._parse_handle = None
        more = self.emulator.process(time.monotonic() + PARSE_BUDGET)
        replies = self.emulator.take_replies()
        if replies:
            self.send(replies, user=False)
        if more:
            self._flooding = True
        self._schedule_frame()
        if more:
            # Leave the PTY full so the program waits; carry on after the loop's other work.
            self._pause_reading()
            assert self._loop is not None
            self._parse_handle = self._loop.call_soon(self._parse)
        elif self._eof:
            self._finish(None)
        else:
            self._start_reading()

    def _on_eof(self) -> None:
        self._stop_io()
        self._eof = True
        self.emulator.queue(b"", final=True)
        if self._parse_handle is None:
            self._parse()

    def _finish(self, _: object) -> None:
        """After the last output: collect the exit code (it may lag the PTY's hang-up)."""
        self._exit_handle = None
        if self.exited:
            return
        code = self.backend.exit_code if self.backend is not None else None
        if code is None and self.backend is not None and self._exit_tries < 40 and self._loop is not None:
            self._exit_tries += 1
            self._exit_handle = self._loop.call_later(0.05, self._finish, None)
            return
        self.exited = True
        self.exit_code = code
        if self.exit_banner:
            note = "exited" if code is None else f"exited with code {code}"
            self.emulator.feed(f"\r\n\x1b[0;2m[{note}]\x1b[0m".encode())
            self._schedule_frame()
        self.post_message(self.Exited(self, code))

    # ---- writing -------------------------------------------------------------------------------

    def send(self, data: bytes, user: bool = True) -> None:
        """Write bytes to the program (keys, pastes, replies). User input ends a scroll-back."""
        backend = self.backend
        if backend is None or self._eof or not data:
            return
        if user and self._scroll:
            self._set_scroll(0)
        backend.write(data)
        if getattr(backend, "pending_write", False) and not self._writing and self._loop is not None:
            self._loop.add_writer(self._fd, self._on_writable)
            self._writing = True

    def _on_writable(self) -> None:
        backend = self.backend
        flush = getattr(backend, "flush", None)
        if flush is not None:
            flush()
        if not getattr(backend, "pending_write", False) and self._loop is not None:
            self._loop.remove_writer(self._fd)
            self._writing = False

    # ---- frames --------------------------------------------------------------------------------

    def _schedule_frame(self) -> None:
        if self._frame_handle is not None or self._loop is None:
            return
        flood = self._flooding or self._bytes_since_frame >= FLOOD_BYTES
        interval = FLOOD_FRAME if flood else FRAME
        delay = max(0.0, self._last_frame + interval - time.monotonic())
        self._frame_handle = self._loop.call_later(delay, self._frame)

    def _frame(self) -> None:
        self._frame_handle = None
        now = time.monotonic()
        emulator = self.emulator
        screen = emulator.screen
        if screen.sync_output:  # the program is mid-update (mode 2026): wait, but not forever
            if self._sync_since is None:
                self._sync_since = now
            if now - self._sync_since < 0.25:
                assert self._loop is not None
                self._frame_handle = self._loop.call_later(FRAME, self._frame)
                return
        self._sync_since = None
        self._last_frame = now
        self._bytes_since_frame = 0
        self._flooding = False
        self.frames += 1
        if emulator.title and emulator.title != self.title:
            self.title = emulator.title
        if emulator.dropped != self.dropped:
            self.dropped = emulator.dropped
        if screen.reverse_video != self._reverse_drawn:
            self._reverse_drawn = screen.reverse_video
            self._invalidate_all()
        rows = emulator.take_dirty()
        pushed = screen.history_pushed
        if self._scroll:
            # Keep a scrolled-back view on the same lines while output pushes more into history.
            delta = pushed - self._pushed_seen
            self._pushed_seen = pushed
            if delta:
                self._scroll = min(self._scroll + delta, len(screen.history))
            if delta or rows:
                self._invalidate_all()
            return
        self._pushed_seen = pushed
        cursor = self._cursor_state()
        if cursor != self._drawn_cursor:
            if self._drawn_cursor is not None:
                rows.add(self._drawn_cursor[1])
            rows.add(cursor[1])
            self._drawn_cursor = cursor
        if not rows:
            return
        width = self.size.width
        strips = self._strips
        for y in rows:
            strips.pop(y, None)
        # Refresh contiguous runs of rows as regions.
        ordered = sorted(rows)
        start = prev = ordered[0]
        regions = []
        for y in ordered[1:]:
            if y != prev + 1:
                regions.append(Region(0, start, width, prev - start + 1))
                start = y
            prev = y
        regions.append(Region(0, start, width, prev - start + 1))
        self.refresh(*regions)

    def _cursor_state(self) -> tuple[int, int, bool]:
        x, y = self.emulator.cursor
        visible = self.emulator.screen.cursor_visible and self._scroll == 0
        return (x if visible else -1, y, self.has_focus)

    def _invalidate_all(self) -> None:
        self._strips.clear()
        self.refresh()

    # ---- rendering -----------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        strip = self._strips.get(y)
        if strip is None:
            strip = self._render_row(y)
            self._strips[y] = strip
        return strip

    def _render_row(self, y: int) -> Strip:
        width = self.size.width
        screen = self.emulator.screen
        history = screen.history
        scroll = self._scroll
        virtual = len(history) - scroll + y
        if virtual < len(history):
            line = history[virtual] if virtual >= 0 else None
            cursor_x = None
        else:
            line = screen.buffer.get(virtual - len(history))
            cursor_x = None
            if scroll == 0:
                cursor = self._cursor_state()
                if y == cursor[1] and cursor[0] >= 0:
                    cursor_x = cursor[0]
        span = None
        selection_style = None
        selection = self.text_selection
        if selection is not None:
            span = selection.get_span(virtual)
            if span is not None:
                selection_style = self.screen.get_component_rich_style("screen--selection")
        segments = render_cells(line, width, cursor_x, self.has_focus, span, selection_style,
                                screen.reverse_video)
        if scroll and y == 0:
            segments = self._scroll_marker(segments, width, scroll, len(history))
        strip = Strip(segments)
        if strip.cell_length != width:
            strip = strip.crop_extend(0, width, None)
        return strip.apply_offsets(0, virtual)

    def _scroll_marker(self, segments: list[Segment], width: int, scroll: int, total: int) -> list[Segment]:
        marker = f" ↑{scroll}/{total} "
        if len(marker) >= width:
            return segments
        strip = Strip(segments).crop_extend(0, width - len(marker), None)
        return [*strip, Segment(marker, Style(reverse=True, bold=True))]

    # ---- selection -----------------------------------------------------------------------------

    @property
    def allow_select(self) -> bool:
        # While the program reads the mouse, mouse drags belong to it.
        return self.ALLOW_SELECT and not self.emulator.screen.mouse_tracking

    def _virtual_line_text(self, virtual: int) -> str:
        screen = self.emulator.screen
        history = screen.history
        if virtual < len(history):
            return line_text(history[virtual], screen.columns) if virtual >= 0 else ""
        return line_text(screen.buffer.get(virtual - len(history)), screen.columns)

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        screen = self.emulator.screen
        total = len(screen.history) + screen.lines
        first = selection.start.y if selection.start is not None else 0
        last = selection.end.y if selection.end is not None else total - 1
        first, last = max(0, first), min(total - 1, last)
        if last < first:
            return None
        text = "\n".join(self._virtual_line_text(v) for v in range(first, last + 1))
        shifted = Selection(
            None if selection.start is None else Offset(selection.start.x, 0),
            None if selection.end is None else Offset(selection.end.x, selection.end.y - first),
        )
        return shifted.extract(text), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self._invalidate_all()

    # ---- scrollback ----------------------------------------------------------------------------

    def _set_scroll(self, lines: int) -> None:
        screen = self.emulator.screen
        lines = max(0, min(lines, len(screen.history)))
        if lines != self._scroll:
            self._scroll = lines
            self._pushed_seen = screen.history_pushed
            self._invalidate_all()

    def scroll_history(self, delta: int) -> None:
        """Scroll back (delta > 0) or forward through the main screen's history."""
        if not self.emulator.screen.alt_active:
            self._set_scroll(self._scroll + delta)

    @property
    def scrollback(self) -> int:
        return self._scroll

    # ---- input ---------------------------------------------------------------------------------

    def _leave_keys(self) -> set[str]:
        return {key for key, bindings in self._bindings.key_to_bindings.items()
                if any(b.action == LEAVE_ACTION for b in bindings)}

    async def on_key(self, event: events.Key) -> None:
        event.stop()
        event.prevent_default()
        key = event.key
        if key in self._leave_keys():
            self.action_leave_terminal()
            return
        screen = self.emulator.screen
        if key in ("shift+pageup", "shift+pagedown") and not screen.alt_active:
            page = max(1, self.size.height - 1)
            self.scroll_history(page if key == "shift+pageup" else -page)
            return
        data = encode_key(key, event.character, app_cursor=screen.app_cursor_keys, app_keypad=screen.app_keypad)
        if data:
            self.send(data)

    def action_leave_terminal(self) -> None:
        self.post_message(self.Left(self))
        self.screen.set_focus(None)

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        self.send(encode_paste(event.text, self.emulator.screen.bracketed_paste))

    def on_focus(self, event: events.Focus) -> None:
        if self.emulator.screen.focus_events:
            self.send(encode_focus(True), user=False)
        self._palette_hint(False)  # ctrl+p belongs to the program now
        self._schedule_frame()

    def on_blur(self, event: events.Blur) -> None:
        if self.emulator.screen.focus_events:
            self.send(encode_focus(False), user=False)
        self._palette_hint(True)
        self._schedule_frame()

    def _palette_hint(self, show: bool) -> None:
        """The footer's ``^p Palette`` while the terminal does or does not take ctrl+p."""
        from textual.widgets import Footer

        try:
            for footer in self.screen.query(Footer):
                footer.show_command_palette = show
        except Exception:  # noqa: BLE001 - no screen (unmounting): nothing to show
            pass

    def _mouse(self, kind: str, event: events.MouseEvent) -> bool:
        """Report a mouse event to the program if it asked; True if it did."""
        screen = self.emulator.screen
        if not screen.mouse_tracking or self.backend is None:
            return False
        offset = event.get_content_offset_capture(self)
        x = max(0, min(offset.x, screen.columns - 1))
        y = max(0, min(offset.y, screen.lines - 1))
        data = encode_mouse(
            kind,
            event.button,
            x,
            y,
            tracking=screen.mouse_tracking,
            sgr=screen.mouse_sgr,
            shift=event.shift,
            meta=event.meta,
            ctrl=event.ctrl,
            buttons_down=bool(self._mouse_buttons),
        )
        if data:
            self.send(data, user=False)
        return True

    def on_mouse_down(self, event: events.MouseDown) -> None:
        if self._mouse("press", event):
            self._mouse_buttons.add(event.button)
            self.capture_mouse()
            event.stop()

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._mouse_buttons or self.emulator.screen.mouse_tracking:
            self._mouse("release", event)
            self._mouse_buttons.discard(event.button)
            if not self._mouse_buttons:
                self.release_mouse()
            event.stop()
            return
        # Copy on select, as X terminals do: ctrl+c belongs to the program.
        if self.text_selection is not None:
            text = self.screen.get_selected_text()
            if text:
                self.app.copy_to_clipboard(text)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self.emulator.screen.mouse_tracking >= 1002:
            self._mouse("move", event)

    def _wheel(self, up: bool, event: events.MouseEvent) -> None:
        event.stop()
        event.prevent_default()
        if self._mouse("wheel_up" if up else "wheel_down", event):
            return
        screen = self.emulator.screen
        if screen.alt_active:
            # less, man and vi on the alternate screen: the wheel moves the cursor (as xterm's
            # alternateScroll does).
            key = encode_key("up" if up else "down", app_cursor=screen.app_cursor_keys)
            if key:
                self.send(key * WHEEL_LINES)
        else:
            self.scroll_history(WHEEL_LINES if up else -WHEEL_LINES)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._wheel(True, event)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self._wheel(False, event)

    # ---- program requests ----------------------------------------------------------------------

    def _program_copy(self, text: str) -> None:
        """OSC 52 from the program (vim, tmux): to the clipboard of the terminal we run in."""
        try:
            self.app.copy_to_clipboard(text)
        except Exception:  # no app yet (tests feeding the emulator directly)
            pass

    def _bell(self) -> None:
        now = time.monotonic()
        if now - self._last_bell > 1.0:
            self._last_bell = now
            try:
                self.app.bell()
            except Exception:
                pass

    def watch_title(self, title: str) -> None:
        self.post_message(self.TitleChanged(self, title))

    def watch_dropped(self, dropped: int) -> None:
        self.post_message(self.SequencesDropped(self, dropped))
