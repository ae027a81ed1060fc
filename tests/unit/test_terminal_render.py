"""Emulator lines -> rich Segments for the widget's Strips (no app needed)."""

from __future__ import annotations

from rich.color import Color
from rich.segment import Segment
from rich.style import Style

from workbench.terminal.emulator import TerminalEmulator
from workbench.terminal.widget import render_cells


def line_of(data: bytes, cols: int = 12, y: int = 0) -> tuple[dict | None, TerminalEmulator]:
    e = TerminalEmulator(rows=3, cols=cols)
    e.feed(data)
    return e.screen.buffer.get(y), e


def cells_width(segments: list[Segment]) -> int:
    return sum(segment.cell_length for segment in segments)


def test_every_line_is_exactly_cols_cells():
    for data in (b"", b"abc", "中文x".encode(), "中文\x1b[1;2Hx".encode(), "😀😀😀😀😀😀😀".encode(), b"x" * 30):
        line, e = line_of(data)
        assert cells_width(render_cells(line, 12)) == 12, data


def test_wide_characters_render_once_and_broken_halves_as_blanks():
    line, _ = line_of("a中b".encode())
    text = "".join(s.text for s in render_cells(line, 12))
    assert text.startswith("a中b") and len(text) == 11  # 12 cells, the wide one counts twice
    line, _ = line_of("中文\x1b[1;2Hx".encode())
    assert "".join(s.text for s in render_cells(line, 12)).startswith(" x文")


def test_colours_and_attributes_become_rich_styles():
    line, _ = line_of(b"\x1b[1;31ma\x1b[0;38;5;200mb\x1b[38;2;1;2;3;48;5;4mc\x1b[0;2;3;4;9md\x1b[0;7me")
    segments = render_cells(line, 12)
    styles = [s.style for s in segments[:5]]
    assert styles[0].bold and styles[0].color == Color.parse("red")
    assert styles[1].color == Color.parse("color(200)") and not styles[1].bold
    assert styles[2].color == Color.parse("#010203") and styles[2].bgcolor == Color.parse("blue")
    assert styles[3].dim and styles[3].italic and styles[3].underline and styles[3].strike
    assert styles[4].reverse
    assert segments[5].style.color is None and segments[5].style.bgcolor is None  # default: the widget's


def test_runs_of_equal_attributes_are_one_segment():
    line, _ = line_of(b"\x1b[32mgreen text\x1b[0m rest", cols=20)
    segments = render_cells(line, 20)
    assert [s.text for s in segments] == ["green text", " rest     "]


def test_cursor_cell_is_reversed_when_focused_underlined_when_not():
    line, e = line_of(b"abc")
    focused = render_cells(line, 6, cursor_x=1, focused=True)
    assert [s.text for s in focused] == ["a", "b", "c   "]
    assert focused[1].style.reverse and not focused[0].style.reverse
    unfocused = render_cells(line, 6, cursor_x=1, focused=False)
    assert unfocused[1].style.underline and not unfocused[1].style.reverse
    # On a reversed cell the cursor shows as normal video.
    line, e = line_of(b"\x1b[7mabc")
    assert not render_cells(line, 6, cursor_x=0)[0].style.reverse


def test_selection_span_is_styled_by_character_offsets():
    line, _ = line_of("ab中cd".encode())
    selection = Style(bgcolor="yellow")
    segments = render_cells(line, 8, span=(1, 4), selection_style=selection)
    selected = "".join(s.text for s in segments if s.style and s.style.bgcolor == Color.parse("yellow"))
    assert selected == "b中c"


def test_history_lines_kept_as_plain_text_render_too():
    e = TerminalEmulator(rows=2, cols=6, history=50)
    e.feed(b"".join(b"\r\nline%d" % i for i in range(20)))
    plain = [line for line in e.screen.history if isinstance(line, str)]
    assert plain, "the bulk path keeps default-style history lines as str"
    segments = render_cells(plain[-1], 6)
    assert "".join(s.text for s in segments) == plain[-1].ljust(6)[:6] and cells_width(segments) == 6
    assert render_cells(plain[-1], 6, cursor_x=0)[0].style.reverse


def test_reverse_video_decscnm_flips_every_cell_when_drawn_not_in_the_screen():
    line, e = line_of(b"\x1b[?5ha\x1b[7mb")
    assert e.screen.reverse_video
    plain = render_cells(line, 12)
    shown = render_cells(line, 12, reverse_video=True)
    assert [s.style.reverse for s in plain] == [None, True, None]
    assert [s.style.reverse for s in shown] == [True, None, True]   # a, b (reversed twice), blanks
    assert e.cell(0, 0).reverse is False and e.cell(1, 0).reverse is True
    assert render_cells("history", 12, reverse_video=True)[0].style.reverse is True
