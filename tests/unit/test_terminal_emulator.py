"""The VT emulator layer: byte transcripts in, screens (text, attributes, cursor, modes) out.

Expected screens here are written by hand from xterm's documented behaviour (ctlseqs), so they
check the emulator rather than echo it. Recorded transcripts of real programs, checked against
tmux, are in test_terminal_golden.py.
"""

from __future__ import annotations

import pytest

from workbench.terminal.emulator import BLANK, PALETTE, TerminalEmulator
from workbench.terminal.keys import encode_key, encode_paste


def emu(rows: int = 5, cols: int = 20, history: int = 100) -> TerminalEmulator:
    return TerminalEmulator(rows=rows, cols=cols, history=history)


def screen_of(data: bytes, rows: int = 5, cols: int = 20) -> list[str]:
    e = emu(rows, cols)
    e.feed(data)
    return e.display()


# ---- text, wrapping, cursor ------------------------------------------------------------------


def test_text_and_newlines():
    e = emu()
    e.feed(b"one\r\ntwo\r\nthree")
    assert e.display() == ["one", "two", "three", "", ""]
    assert e.cursor == (5, 2)


def test_autowrap_with_pending_wrap_at_last_column():
    e = emu(rows=3, cols=5)
    e.feed(b"abcde")
    # The cursor waits on the last column: the next printable wraps, a CR LF does not add a row.
    assert e.display() == ["abcde", "", ""]
    assert e.cursor == (4, 0)
    e.feed(b"f")
    assert e.display() == ["abcde", "f", ""]
    e.feed(b"\r\nabcde\r\nx")
    assert e.display() == ["f", "abcde", "x"]
    assert e.history_text() == ["abcde"]


def test_no_autowrap_overwrites_last_column():
    e = emu(rows=2, cols=5)
    e.feed(b"\x1b[?7labcdefg")
    assert e.display() == ["abcdg", ""]


def test_cursor_movement_and_erase():
    e = emu(rows=4, cols=10)
    e.feed(b"0123456789\r\nabcdefghij\x1b[2;4H\x1b[K")
    assert e.display()[:2] == ["0123456789", "abc"]
    e.feed(b"\x1b[1;5H\x1b[1K")
    assert e.display()[0] == "     56789"
    e.feed(b"\x1b[2J")
    assert e.display() == ["", "", "", ""]


def test_backspace_tab_and_insert_delete_chars():
    e = emu(rows=2, cols=20)
    e.feed(b"abc\x08\x08X\tY")
    assert e.display()[0] == "aXc     Y"
    e.feed(b"\r\x1b[2@")  # insert two blanks at column 0
    assert e.display()[0] == "  aXc     Y"
    e.feed(b"\x1b[3P")  # delete three
    assert e.display()[0] == "Xc     Y"
    e.feed(b"\x1b[2X")  # erase two, cursor stays
    assert e.display()[0] == "       Y"


def test_repeat_last_character_rep():
    assert screen_of(b"ab\x1b[3b", rows=1)[0] == "abbbb"


def test_cursor_save_restore_decsc_and_scosc():
    e = emu()
    e.feed(b"\x1b[2;3H\x1b7\x1b[5;5Hx\x1b8y")
    assert e.display()[1] == "  y"
    e.feed(b"\x1b[4;1H\x1b[s\x1b[1;1H\x1b[uz")
    assert e.display()[3] == "z"


# ---- alternate screen ------------------------------------------------------------------------


def test_alternate_screen_1049_restores_main_screen_and_cursor():
    e = emu(rows=4, cols=20)
    e.feed(b"$ ls\r\nfile-a file-b\r\n$ vi")
    main = e.display()
    cursor = e.cursor
    e.feed(b"\x1b[?1049h")
    assert e.screen.alt_active
    assert e.display() == ["", "", "", ""]  # the alternate screen starts clear
    e.feed(b"\x1b[H~\r\n~\r\n~\r\n\x1b[4;1H:q")
    assert e.display() == ["~", "~", "~", ":q"]
    e.feed(b"\x1b[?1049l")
    assert not e.screen.alt_active
    assert e.display() == main
    assert e.cursor == cursor


def test_alternate_screen_keeps_history_untouched():
    e = emu(rows=3, cols=10)
    e.feed(b"1\r\n2\r\n3\r\n4\r\n")
    history = e.history_text()
    assert history == ["1", "2"]
    e.feed(b"\x1b[?1049h" + b"".join(b"alt%d\r\n" % i for i in range(20)))
    assert e.history_text() == history  # the alternate screen has no scrollback
    e.feed(b"\x1b[?1049l")
    assert e.display() == ["3", "4", ""]
    assert e.history_text() == history


def test_alternate_screen_1047_clears_on_leave_and_47_does_not():
    e = emu(rows=2, cols=10)
    e.feed(b"main")
    e.feed(b"\x1b[?47h\x1b[Halt47\x1b[?47l")
    assert e.display()[0] == "main"
    e.feed(b"\x1b[?47h")
    assert e.display()[0] == "alt47"  # 47 kept the alternate buffer
    e.feed(b"\x1b[?47l\x1b[?1047h")
    assert e.display()[0] == "alt47"
    e.feed(b"\x1b[?1047l\x1b[?47h")
    assert e.display()[0] == ""  # leaving 1047 cleared it
    e.feed(b"\x1b[?47l")
    assert e.display()[0] == "main"


def test_resize_while_on_alternate_screen_keeps_main_screen():
    e = emu(rows=4, cols=10)
    e.feed(b"a\r\nb\r\nc\r\nd")
    e.feed(b"\x1b[?1049hALT")
    e.resize(3, 8)
    e.feed(b"\x1b[?1049l")
    # The main screen lost its top line to history to keep the saved cursor's line visible.
    assert e.display() == ["b", "c", "d"]
    assert e.history_text() == ["a"]
    assert e.cursor == (1, 2)


# ---- scroll regions --------------------------------------------------------------------------


def test_scroll_region_linefeed_scrolls_only_the_region():
    e = emu(rows=5, cols=10)
    e.feed(b"top\r\nr1\r\nr2\r\nr3\r\nbottom")
    e.feed(b"\x1b[2;4r\x1b[4;1H\nnew")
    assert e.display() == ["top", "r2", "r3", "new", "bottom"]
    assert e.history_text() == []  # a region below the top line does not feed history


def test_scroll_region_reverse_index_at_top_margin():
    e = emu(rows=5, cols=10)
    e.feed(b"top\r\nr1\r\nr2\r\nr3\r\nbottom\x1b[2;4r\x1b[2;1H\x1bMnew")
    assert e.display() == ["top", "new", "r1", "r2", "bottom"]


def test_insert_and_delete_lines_inside_region():
    e = emu(rows=6, cols=10)
    e.feed(b"h\r\n1\r\n2\r\n3\r\n4\r\nfooter")
    e.feed(b"\x1b[2;5r\x1b[3;1H\x1b[L")
    assert e.display() == ["h", "1", "", "2", "3", "footer"]
    e.feed(b"\x1b[2;1H\x1b[2M")
    assert e.display() == ["h", "2", "3", "", "", "footer"]


def test_delete_lines_below_sparse_lines_leaves_no_stale_text():
    # pyte's DL skips moving a line that was never written, leaving the old text in place.
    e = emu(rows=4, cols=10)
    e.feed(b"\x1b[1;1Ha\x1b[4;1Hd\x1b[1;1H\x1b[M")
    assert e.display() == ["", "", "d", ""]


def test_linefeed_below_region_moves_down_not_into_region():
    # pyte clamps a cursor below the region back to the region's bottom.
    e = emu(rows=6, cols=10)
    e.feed(b"\x1b[1;3r\x1b[5;1Hx\ny")
    assert e.display()[4:] == ["x", " y"]
    e.feed(b"\x1b[6;1H\x1b[A\x1b[Az")
    assert e.display()[3] == "z"


def test_scroll_up_and_down_su_sd():
    e = emu(rows=4, cols=5)
    e.feed(b"a\r\nb\r\nc\r\nd\x1b[2S")
    assert e.display() == ["c", "d", "", ""]
    e.feed(b"\x1b[1T")
    assert e.display() == ["", "c", "d", ""]


def test_vi_style_scroll_with_region_and_insert_line():
    # What vi does to scroll a window up by one line above a status line.
    e = emu(rows=5, cols=10)
    e.feed(b"l1\r\nl2\r\nl3\r\nl4\r\nstatus")
    e.feed(b"\x1b[1;4r\x1b[1;1H\x1b[L\x1b[r\x1b[1;1Hl0")
    assert e.display() == ["l0", "l1", "l2", "l3", "status"]


# ---- colours and attributes ------------------------------------------------------------------


@pytest.mark.parametrize(
    "sgr,fg,bg",
    [
        (b"31", "red", "default"),
        (b"33;44", "yellow", "blue"),
        (b"91;107", "bright_red", "bright_white"),
        (b"38;5;1", "red", "default"),
        (b"38;5;9", "bright_red", "default"),
        (b"38;5;196;48;5;21", "color(196)", "color(21)"),
        (b"38;2;255;128;0", "#ff8000", "default"),
        (b"48;2;1;2;3", "default", "#010203"),
        (b"38:2::10:20:30", "#0a141e", "default"),
        (b"38:2:10:20:30", "#0a141e", "default"),
        (b"48:5:240", "default", "color(240)"),
        (b"38;2;1;2;3;1", "#010203", "default"),
        (b"31;39", "default", "default"),
    ],
)
def test_colours_16_256_truecolour(sgr, fg, bg):
    e = emu()
    e.feed(b"\x1b[" + sgr + b"mX\x1b[0mY")
    cell = e.cell(0, 0)
    assert (cell.fg, cell.bg) == (fg, bg)
    assert e.cell(1, 0)[1:] == BLANK[1:]


def test_sgr_truecolour_then_attribute_in_same_sequence():
    e = emu()
    e.feed(b"\x1b[38;2;1;2;3;1mX")
    assert e.cell(0, 0).bold


def test_palette_is_256_entries():
    assert len(PALETTE) == 256 and PALETTE[15] == "bright_white" and PALETTE[16] == "color(16)"


def test_text_attributes_and_their_resets():
    e = emu(cols=30)
    e.feed(b"\x1b[1ma\x1b[2mb\x1b[3mc\x1b[4md\x1b[7me\x1b[9mf\x1b[5mg")
    g = e.cell(6, 0)
    assert (g.bold, g.dim, g.italics, g.underscore, g.reverse, g.strikethrough, g.blink) == (True,) * 7
    e.feed(b"\x1b[22;23;24;27;29;25mh")
    assert e.cell(7, 0)[1:] == BLANK[1:]
    e.feed(b"\x1b[4:3mi\x1b[4:0mj\x1b[21mk")
    assert e.cell(8, 0).underscore and not e.cell(9, 0).underscore and e.cell(10, 0).underscore


def test_erase_uses_background_colour_only():
    e = emu(rows=2, cols=6)
    e.feed(b"\x1b[4;41mab\x1b[K")
    tail = e.cell(4, 0)
    assert tail.bg == "red" and not tail.underscore
    e.feed(b"\x1b[0m\x1b[2J")
    assert e.cell(4, 0) == BLANK


# ---- wide characters ---------------------------------------------------------------------------


def test_wide_characters_take_two_cells():
    e = emu(rows=2, cols=10)
    e.feed("中文ab😀!".encode())
    assert e.display()[0] == "中文ab😀!"
    assert e.cursor == (9, 0)
    assert e.cell(0, 0).data == "中" and e.cell(1, 0).data == ""
    assert e.cell(6, 0).data == "😀" and e.cell(8, 0).data == "!"


def test_wide_character_wraps_instead_of_splitting():
    e = emu(rows=2, cols=5)
    e.feed("abcd中".encode())
    assert e.display() == ["abcd", "中"]


def test_overwriting_half_a_wide_character_blanks_it():
    e = emu(rows=1, cols=6)
    e.feed("中文\x1b[1;2Hx".encode())
    assert e.display()[0] == " x文"


def test_combining_and_zero_width_join_the_previous_cell():
    e = emu(rows=1, cols=10)
    e.feed("e\u0301x\u200by".encode())
    assert e.cell(0, 0).data == "e\u0301"
    assert e.display()[0] == "e\u0301x\u200by"


# ---- UTF-8 and sequences split across reads --------------------------------------------------

SAMPLE = "a é € 中 😀 z\r\n\x1b[31mred\x1b[0m \x1b]2;título\x07ok".encode()


@pytest.mark.parametrize("cut", range(1, len(SAMPLE)))
def test_utf8_and_escapes_split_at_every_byte_boundary(cut):
    whole = emu(rows=3, cols=20)
    whole.feed(SAMPLE)
    split = emu(rows=3, cols=20)
    split.feed(SAMPLE[:cut])
    split.feed(SAMPLE[cut:])
    assert split.display() == whole.display()
    assert split.title == whole.title == "título"
    assert [split.cell(x, 1) for x in range(4)] == [whole.cell(x, 1) for x in range(4)]
    assert "\ufffd" not in "".join(split.display())


def test_one_byte_at_a_time():
    e = emu(rows=3, cols=20)
    for i in range(len(SAMPLE)):
        e.feed(SAMPLE[i : i + 1])
    assert e.display()[0] == "a é € 中 😀 z"


def test_invalid_utf8_becomes_replacement_character():
    e = emu()
    e.feed(b"a\xffb\xe4\xb8")
    e.queue(b"", final=True)
    e.process()
    assert e.display()[0] == "a\ufffdb\ufffd"


# ---- modes the key encoder honours -----------------------------------------------------------


def test_decckm_switches_cursor_key_encoding():
    e = emu()
    assert encode_key("up", app_cursor=e.screen.app_cursor_keys) == b"\x1b[A"
    e.feed(b"\x1b[?1h")
    assert e.screen.app_cursor_keys
    assert encode_key("up", app_cursor=e.screen.app_cursor_keys) == b"\x1bOA"
    assert encode_key("ctrl+up", app_cursor=e.screen.app_cursor_keys) == b"\x1b[1;5A"
    e.feed(b"\x1b[?1l")
    assert encode_key("left", app_cursor=e.screen.app_cursor_keys) == b"\x1b[D"


def test_application_keypad_mode():
    e = emu()
    e.feed(b"\x1b=")
    assert e.screen.app_keypad
    assert encode_key("add", app_keypad=e.screen.app_keypad) == b"\x1bOk"
    e.feed(b"\x1b>")
    assert encode_key("add", app_keypad=e.screen.app_keypad) == b"+"


def test_bracketed_paste_mode():
    e = emu()
    assert encode_paste("ls\n", e.screen.bracketed_paste) == b"ls\r"
    e.feed(b"\x1b[?2004h")
    assert encode_paste("ls\nrm -rf x\n", e.screen.bracketed_paste) == b"\x1b[200~ls\rrm -rf x\r\x1b[201~"
    e.feed(b"\x1b[?2004l")
    assert not e.screen.bracketed_paste


def test_mouse_modes_are_tracked():
    e = emu()
    e.feed(b"\x1b[?1000h\x1b[?1006h")
    assert (e.screen.mouse_tracking, e.screen.mouse_sgr) == (1000, True)
    e.feed(b"\x1b[?1002h")
    assert e.screen.mouse_tracking == 1002
    e.feed(b"\x1b[?1003h\x1b[?1003l\x1b[?1006l")
    assert (e.screen.mouse_tracking, e.screen.mouse_sgr) == (0, False)


def test_cursor_visibility_is_not_restored_by_decrc():
    e = emu()
    e.feed(b"\x1b7\x1b[?25l\x1b8")
    assert not e.screen.cursor_visible
    e.feed(b"\x1b[?25h")
    assert e.screen.cursor_visible


# ---- replies ---------------------------------------------------------------------------------


def test_device_status_and_attribute_replies():
    e = emu(rows=10, cols=40)
    e.feed(b"\x1b[5n")
    assert e.take_replies() == b"\x1b[0n"
    e.feed(b"\x1b[3;7H\x1b[6n")
    assert e.take_replies() == b"\x1b[3;7R"
    e.feed(b"\x1b[c\x1b[>c\x1b[0c")
    assert e.take_replies() == b"\x1b[?62;22c\x1b[>1;10;0c\x1b[?62;22c"
    e.feed(b"\x1b[18t")
    assert e.take_replies() == b"\x1b[8;10;40t"
    e.feed(b"\x1b[?2004h\x1b[?2004$p\x1b[?1$p\x1b[?9999$p")
    assert e.take_replies() == b"\x1b[?2004;1$y\x1b[?1;2$y\x1b[?9999;0$y"
    e.feed(b"\x1b]11;?\x07")
    assert e.take_replies().startswith(b"\x1b]11;rgb:")
    assert e.take_replies() == b""


def test_cursor_position_report_on_pending_wrap_uses_last_column():
    e = emu(rows=2, cols=5)
    e.feed(b"abcde\x1b[6n")
    assert e.take_replies() == b"\x1b[1;5R"


# ---- titles, OSC, strings --------------------------------------------------------------------


def test_titles_from_osc_0_and_2_with_bel_and_st():
    e = emu()
    e.feed(b"\x1b]0;first\x07")
    assert e.title == "first" and e.screen.icon_name == "first"
    e.feed(b"\x1b]2;second\x1b\\")
    assert e.title == "second" and e.screen.icon_name == "first"
    e.feed(b"\x1b]1;icon only\x07")
    assert e.title == "second"
    e.feed(b"\x1b[22;0t\x1b]2;vim\x07")
    assert e.title == "vim"
    e.feed(b"\x1b[23;0t")
    assert e.title == "second"


def test_osc_52_reaches_clipboard_callback():
    copied = []
    e = TerminalEmulator(rows=2, cols=10, on_clipboard=copied.append)
    e.feed(b"\x1b]52;c;aGVsbG8=\x07")
    assert copied == ["hello"]


def test_dcs_and_apc_strings_are_swallowed():
    e = emu()
    e.feed(b"a\x1bP+q544e\x1b\\b\x1b_apc payload\x1b\\c\x1b^pm\x1b\\d")
    assert e.display()[0] == "abcd"


def test_unknown_and_malformed_sequences_do_not_print_garbage():
    e = emu()
    e.feed(b"\x1b[>4;2m\x1b[?u\x1b[ q\x1b[=c\x1b[?1;2;3s\x1b[?1049;2004hx")
    assert e.display()[0] == "x"
    assert e.screen.alt_active and e.screen.bracketed_paste


def test_dec_special_graphics_line_drawing():
    e = emu(rows=1, cols=10)
    e.feed(b"\x1b(0lqk\x1b(Bq")
    assert e.display()[0] == "┌─┐q"


# ---- scrollback ------------------------------------------------------------------------------


def test_scrollback_is_bounded_and_main_screen_only():
    e = emu(rows=3, cols=10, history=5)
    e.feed(b"".join(b"line%d\r\n" % i for i in range(20)))
    assert e.history_text() == ["line13", "line14", "line15", "line16", "line17"]
    assert e.display() == ["line18", "line19", ""]


def test_erase_saved_lines_ed3():
    e = emu(rows=2, cols=10)
    e.feed(b"a\r\nb\r\nc\r\n")
    assert e.history_text()
    e.feed(b"\x1b[3J")
    assert e.history_text() == []
    assert e.display() == ["c", ""]


def test_resize_shrink_keeps_cursor_line_and_feeds_history():
    e = emu(rows=5, cols=10)
    e.feed(b"1\r\n2\r\n3\r\n4\r\n5")
    e.resize(3, 10)
    assert e.display() == ["3", "4", "5"]
    assert e.history_text() == ["1", "2"]
    e.resize(3, 4)
    e.feed(b"\r\nabcdef")
    assert e.display() == ["5", "abcd", "ef"]


def test_resize_wider_adds_tab_stops():
    e = emu(rows=1, cols=10)
    e.resize(1, 30)
    e.feed(b"\t\t\tx")
    assert e.display()[0] == " " * 24 + "x"


# ---- the plain-lines fast path is exact --------------------------------------------------------


def _reference(data: bytes, rows: int, cols: int, history: int, prefix: bytes = b"") -> TerminalEmulator:
    """The same input through the ordinary operations only (no bulk path)."""
    e = TerminalEmulator(rows=rows, cols=cols, history=history)
    e.fast_lines = False
    e.feed(prefix + data)
    return e


def _same(fast: TerminalEmulator, slow: TerminalEmulator) -> None:
    assert fast.display() == slow.display()
    assert fast.history_text() == slow.history_text()
    assert fast.cursor == slow.cursor
    assert fast.screen.history_pushed == slow.screen.history_pushed
    for y in range(fast.rows):
        assert [fast.cell(x, y) for x in range(fast.cols)] == [slow.cell(x, y) for x in range(slow.cols)]


@pytest.mark.parametrize("cols", [5, 8, 13])
def test_bulk_plain_lines_equal_line_by_line(cols):
    rows, history = 4, 30
    lines = [b"x" * (i % 20) + b"%d" % i for i in range(400)]
    data = b"prompt$ \x1b[1mbold" + b"".join(b"\r\n" + line for line in lines) + b"\x1b[0m tail"
    fast = TerminalEmulator(rows=rows, cols=cols, history=history)
    fast.feed(data)
    _same(fast, _reference(data, rows, cols, history))


def test_bulk_lines_are_exact_for_random_screens_and_runs():
    import random

    rng = random.Random(7)
    for case in range(300):
        rows, cols = rng.randint(1, 6), rng.randint(1, 9)
        history = rng.choice([0, 1, 3, 10, 50])
        prefix = b"".join(
            rng.choice([b"\x1b[%d;%dH" % (rng.randint(1, rows), rng.randint(1, cols)), b"ab", b"\x1b[41mXYZ\x1b[0m",
                        b"\r\n", b"\x1b[?1049h", b"\x1b[?1049l", b"\x1b[K", "中".encode()])
            for _ in range(rng.randint(0, 8))
        )
        units = [bytes(rng.choice(b"abc ") for _ in range(rng.randint(0, 2 * cols + 1))) for _ in range(rng.randint(1, 40))]
        data = b"".join(b"\r\n" + u for u in units) + rng.choice([b"", b"\x1b[1m!", b"\r"])
        fast = TerminalEmulator(rows=rows, cols=cols, history=history)
        fast.feed(prefix + data)
        slow = _reference(data, rows, cols, history, prefix)
        _same(fast, slow)
        assert fast.screen.alt_active == slow.screen.alt_active, case


def test_bulk_on_alternate_screen_and_exact_width_lines():
    rows, cols = 3, 4
    data = b"\x1b[?1049h" + b"".join(b"\r\n" + (b"abcd" if i % 2 else b"efghij") for i in range(300))
    fast = TerminalEmulator(rows=rows, cols=cols, history=10)
    fast.feed(data)
    _same(fast, _reference(data, rows, cols, 10))
    fast.feed(b"\x1b[?1049l")
    assert fast.display() == ["", "", ""] and fast.history_text() == []


def test_bulk_inside_a_scroll_region_uses_the_region():
    data = b"header\x1b[2;3r\x1b[3;1H" + b"".join(b"\r\nl%d" % i for i in range(50)) + b"\x1b[r"
    fast = TerminalEmulator(rows=4, cols=10, history=10)
    fast.feed(data)
    assert fast.display() == ["header", "l48", "l49", ""]
    _same(fast, _reference(data, 4, 10, 10))


# ---- budgeted parsing ------------------------------------------------------------------------


def test_process_stops_at_deadline_and_resumes():
    e = emu(rows=3, cols=30)
    data = b"".join(b"\x1b[3%dmline %d\x1b[0m\r\n" % (i % 8, i) for i in range(2000))
    e.queue(data)
    assert e.process(deadline=0.0) is True  # already past: stops after its first slice
    while e.process(deadline=None):
        pass
    assert e.display()[-2] == "line 1999"


def test_incomplete_sequence_is_kept_not_drawn():
    e = emu()
    e.queue(b"ab\x1b[3")
    assert e.process() is False
    assert e.display()[0] == "ab"
    e.feed(b"1mc")
    assert e.display()[0] == "abc" and e.cell(2, 0).fg == "red"


def test_dirty_rows_report_what_changed():
    e = emu(rows=5, cols=10)
    e.take_dirty()
    e.feed(b"\x1b[3;1Hx")
    assert e.take_dirty() == {2}
    assert e.take_dirty() == set()
    e.feed(b"\x1b[5;1H\n")
    assert e.take_dirty() == {0, 1, 2, 3, 4}
