"""Twelve places where the emulator differed from xterm (issue 17), each a minimal byte stream
with what xterm does (ctlseqs, and xterm's charproc.c/screen.c where ctlseqs is silent); tmux
agrees with xterm on every one. Screens are 24x80, as a terminal tab starts."""

from __future__ import annotations

import pytest

from workbench.terminal.emulator import TerminalEmulator


def feed(data: bytes, rows: int = 24, cols: int = 80) -> TerminalEmulator:
    e = TerminalEmulator(rows=rows, cols=cols)
    e.feed(data)
    return e


def where(e: TerminalEmulator, ch: str) -> tuple[int, int]:
    """(row, column), 1-based as escape sequences count, of the one cell holding ch."""
    found = [(y + 1, x + 1) for y in range(e.rows) for x in range(e.cols) if e.cell(x, y).data == ch]
    assert len(found) == 1, found
    return found[0]


def test_1_vpa_in_origin_mode_without_a_region_moves_the_cursor():
    """CSI ? 6 h then VPA with no scroll region: pyte asserted that margins exist and the
    queued input raised again on every later read. xterm: the region is the whole screen."""
    e = feed(b"\x1b[?6h\x1b[5d")
    assert e.cursor == (0, 4)
    e.feed(b"X")
    assert where(e, "X") == (5, 1)


@pytest.mark.parametrize("data, row_col", [
    # 2: DECSTBM homes the cursor, also when it resets the region
    (b"\x1b[10;10H\x1b[rX", (1, 1)),
    # 3: DECRC does not clamp the cursor into a region set after DECSC
    (b"\x1b[20;5H\x1b7\x1b[5;10r\x1b8X", (20, 5)),
    # 4: in origin mode a CUP below the region is clamped to its last row, not ignored
    (b"\x1b[5;15r\x1b[?6h\x1b[30;5HX", (15, 5)),
], ids=["2-decstbm-homes", "3-decrc-no-clamp", "4-cup-origin-clamped"])
def test_2_3_4_where_the_cursor_lands(data, row_col):
    assert where(feed(data), "X") == row_col


def test_5_decrc_restores_attributes_origin_mode_and_charsets_but_not_autowrap():
    # saved with autowrap on, bold, G0 = line drawing; then autowrap off, plain, ASCII
    e = feed(b"\x1b[1m\x1b(0\x1b7\x1b[?7l\x1b[m\x1b(B\x1b8")
    e.feed(b"q" + b"a" * 85)
    # autowrap stays off: nothing wrapped to row 2, the last column was overwritten
    assert e.display()[1] == ""
    assert e.cell(0, 0).data == "─" and e.cell(0, 0).bold  # charset and attributes restored
    assert e.cell(79, 0).data == "▒"  # 'a' in the line-drawing set


def test_6_a_second_1049h_on_the_alternate_screen_does_not_save_again():
    e = feed(b"\x1b[1;31m\x1b[?1049h\x1b[32m\x1b[5;5H\x1b[?1049h\x1b[?1049lX")
    assert where(e, "X") == (1, 1)
    assert e.cell(0, 0).fg == "red"


def test_7_a_c0_control_inside_a_csi_runs_and_the_sequence_goes_on():
    """vttest 1-05: 'CSI 2 BS C' is a backspace, then cursor forward 2."""
    e = feed(b"abcd\x1b[2\x08CX")
    # abcd leaves the cursor at column 5; BS -> 4; CUF 2 -> 6
    assert where(e, "X") == (1, 6)
    assert "[" not in e.display()[0] and "C" not in e.display()[0]


def test_8_tab_keeps_the_pending_wrap():
    e = feed(b"x" * 80 + b"\tt")
    assert e.display()[0] == "x" * 80
    assert where(e, "t") == (2, 1)


def _rows_painted(e: TerminalEmulator, rows: list[int], bg: str = "blue") -> bool:
    return all(e.cell(x, y - 1).bg == bg for y in rows for x in range(e.cols))


def test_9_lines_that_scroll_in_take_the_current_background():
    fill = b"\x1b[H" + b"\r\n".join(b"line %d" % i for i in range(1, 25))
    cases = {
        b"\x1b[10H\x1b[44m\x1b[2L": [10, 11],           # IL
        b"\x1b[10H\x1b[44m\x1b[2M": [23, 24],           # DL
        b"\x1b[44m\x1b[3S": [22, 23, 24],               # SU
        b"\x1b[44m\x1b[2T": [1, 2],                     # SD
        b"\x1b[24H\x1b[44m\n": [24],                    # LF at the bottom
        b"\x1b[H\x1b[44m\x1bM": [1],                    # RI at the top
        b"\x1b[5;10r\x1b[10H\x1b[44m\n": [10],          # LF in a region
    }
    for seq, rows in cases.items():
        e = feed(fill + seq)
        assert _rows_painted(e, rows), seq
        others = [y for y in range(1, 25) if y not in rows]
        assert not any(e.cell(70, y - 1).bg == "blue" for y in others), seq


def test_10_dec_special_graphics_h_is_the_newline_symbol():
    e = feed(b"\x1b(0h\x1b(B")
    assert e.cell(0, 0).data == "\u2424"


def test_11_a_combining_mark_at_column_0_after_a_line_that_did_not_wrap_is_dropped():
    e = feed("x\r\n\u0301y".encode())
    assert e.display()[:2] == ["x", "y"]
    assert e.cell(0, 0).data == "x"


def test_12_decscnm_is_a_display_mode_and_leaves_the_cells_alone():
    e = feed(b"\x1b[?5h\x1b[7mX\x1b[mY\x1b[?5l")
    assert e.cell(0, 0).reverse is True
    assert e.cell(1, 0).reverse is False
    e = feed(b"\x1b[?5hZ")
    assert e.screen.reverse_video is True
    assert e.cell(0, 0).reverse is False and e.cell(5, 5).reverse is False


# ---- found by the differential benchmark (tests/benchmarks/bench_terminal_diff.py) ----------


def test_control_strings_end_as_in_xterm():
    # BEL ends an OSC but is content in an APC/DCS, which only ST ends
    e = feed(b"\x1b]0;title\x07a\x1b_apc\x07still apc\x1b\\b\x1bPdcs\x07x\x1b\\c")
    assert e.display()[0] == "abc" and e.title == "title"
    # another ESC aborts the string (not acted on) and its sequence runs
    e = feed(b"\x1b]0;never\x1b[2;3HX")
    assert where(e, "X") == (2, 3) and e.title == ""
    # CAN cancels it
    e = feed(b"\x1b]0;never\x18Y")
    assert e.display()[0] == "Y" and e.title == ""
    # split across reads: the ESC of ST arrives alone
    e = feed(b"\x1b_apc\x1b")
    e.feed(b"\\Z")
    assert e.display()[0] == "Z"


def test_g1_starts_as_ascii():
    e = feed(b"\x0eqx\x0f")
    assert e.display()[0] == "qx"


def test_a_private_marker_after_the_first_parameter_byte_voids_the_sequence():
    e = feed(b"abc\x1b[;?HX")
    assert where(e, "X") == (1, 4)


def test_decaln_fills_with_e_homes_the_cursor_and_resets_the_region():
    e = feed(b"\x1b[5;10r\x1b[7;7H\x1b[41m\x1b#8")
    assert e.cursor == (0, 0) and e.screen.margins is None
    assert all(row == "E" * 80 for row in e.display())
    assert e.cell(3, 3).bg == "default"
