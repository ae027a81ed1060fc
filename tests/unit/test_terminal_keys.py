"""Textual key, paste and mouse events -> xterm byte sequences."""

from __future__ import annotations

import pytest

from workbench.terminal.keys import encode_focus, encode_key, encode_mouse, encode_paste


@pytest.mark.parametrize(
    "key,character,expected",
    [
        ("a", "a", b"a"),
        ("A", "A", b"A"),
        ("exclamation_mark", "!", b"!"),
        ("space", " ", b" "),
        ("é", "é", "é".encode()),
        ("enter", "\r", b"\r"),
        ("tab", "\t", b"\t"),
        ("shift+tab", None, b"\x1b[Z"),
        ("escape", "\x1b", b"\x1b"),
        ("backspace", "\x7f", b"\x7f"),
        ("ctrl+backspace", None, b"\x08"),
        ("ctrl+c", None, b"\x03"),
        ("ctrl+d", None, b"\x04"),
        ("ctrl+z", None, b"\x1a"),
        ("ctrl+a", "\x01", b"\x01"),
        ("ctrl+shift+a", None, b"\x01"),
        ("ctrl+space", None, b"\x00"),
        ("ctrl+@", None, b"\x00"),
        ("ctrl+backslash", None, b"\x1c"),
        ("ctrl+underscore", None, b"\x1f"),
        ("alt+x", "x", b"\x1bx"),
        ("alt+enter", None, b"\x1b\r"),
        ("alt+backspace", None, b"\x1b\x7f"),
        ("up", None, b"\x1b[A"),
        ("down", None, b"\x1b[B"),
        ("right", None, b"\x1b[C"),
        ("left", None, b"\x1b[D"),
        ("home", None, b"\x1b[H"),
        ("end", None, b"\x1b[F"),
        ("shift+up", None, b"\x1b[1;2A"),
        ("ctrl+left", None, b"\x1b[1;5D"),
        ("ctrl+shift+right", None, b"\x1b[1;6C"),
        ("alt+up", None, b"\x1b[1;3A"),
        ("insert", None, b"\x1b[2~"),
        ("delete", None, b"\x1b[3~"),
        ("pageup", None, b"\x1b[5~"),
        ("pagedown", None, b"\x1b[6~"),
        ("ctrl+pagedown", None, b"\x1b[6;5~"),
        ("f1", None, b"\x1bOP"),
        ("f4", None, b"\x1bOS"),
        ("f5", None, b"\x1b[15~"),
        ("f12", None, b"\x1b[24~"),
        ("shift+f1", None, b"\x1b[1;2P"),
        ("ctrl+f5", None, b"\x1b[15;5~"),
        ("f13", None, b"\x1b[1;2P"),
    ],
)
def test_keys_in_normal_mode(key, character, expected):
    assert encode_key(key, character) == expected


@pytest.mark.parametrize(
    "key,expected",
    [("up", b"\x1bOA"), ("left", b"\x1bOD"), ("home", b"\x1bOH"), ("end", b"\x1bOF"), ("ctrl+up", b"\x1b[1;5A"),
     ("pageup", b"\x1b[5~")],
)
def test_cursor_keys_in_application_mode(key, expected):
    assert encode_key(key, None, app_cursor=True) == expected


def test_keypad_operators_follow_application_keypad_mode():
    assert encode_key("multiply", None) == b"*"
    assert encode_key("multiply", None, app_keypad=True) == b"\x1bOj"
    assert encode_key("subtract", None, app_keypad=True) == b"\x1bOm"


def test_keys_without_an_encoding():
    assert encode_key("ctrl+f13x", None) is None
    assert encode_key("media_play", None) is None


def test_paste_plain_and_bracketed():
    assert encode_paste("a\r\nb\nc", False) == b"a\rb\rc"
    assert encode_paste("x", True) == b"\x1b[200~x\x1b[201~"
    # A pasted end-marker cannot close the bracket early.
    assert encode_paste("evil\x1b[201~rm -rf /\n", True) == b"\x1b[200~evilrm -rf /\r\x1b[201~"


def test_focus_reports():
    assert encode_focus(True) == b"\x1b[I" and encode_focus(False) == b"\x1b[O"


def test_mouse_sgr_encoding():
    kw = dict(tracking=1000, sgr=True)
    assert encode_mouse("press", 1, 0, 0, **kw) == b"\x1b[<0;1;1M"
    assert encode_mouse("release", 1, 4, 2, **kw) == b"\x1b[<0;5;3m"
    assert encode_mouse("press", 3, 9, 9, **kw) == b"\x1b[<2;10;10M"
    assert encode_mouse("wheel_up", 0, 1, 1, **kw) == b"\x1b[<64;2;2M"
    assert encode_mouse("wheel_down", 0, 1, 1, **kw) == b"\x1b[<65;2;2M"
    assert encode_mouse("press", 1, 0, 0, ctrl=True, shift=True, **kw) == b"\x1b[<20;1;1M"


def test_mouse_x10_encoding_and_limits():
    kw = dict(tracking=1000, sgr=False)
    assert encode_mouse("press", 1, 0, 0, **kw) == b"\x1b[M !!"
    assert encode_mouse("release", 1, 2, 3, **kw) == b"\x1b[M##$"  # 32+3 (release), 32+1+x, 32+1+y
    assert encode_mouse("press", 1, 300, 0, **kw) is None  # beyond X10's 223 columns


def test_mouse_motion_depends_on_tracking_mode():
    assert encode_mouse("move", 0, 1, 1, tracking=1000, sgr=True) is None
    assert encode_mouse("move", 1, 1, 1, tracking=1002, sgr=True) is None
    assert encode_mouse("move", 1, 1, 1, tracking=1002, sgr=True, buttons_down=True) == b"\x1b[<32;2;2M"
    assert encode_mouse("move", 0, 1, 1, tracking=1003, sgr=True) == b"\x1b[<35;2;2M"
    assert encode_mouse("release", 1, 1, 1, tracking=9, sgr=False) is None
    assert encode_mouse("press", 1, 1, 1, tracking=0, sgr=True) is None
