"""Textual input -> the bytes a program in an xterm-compatible terminal expects.

Keys follow xterm's defaults (``TERM=xterm-256color``):

- cursor keys and Home/End send ``CSI A`` .. or, in cursor-keys application mode (DECCKM),
  ``SS3 A`` ..; with modifiers they always send ``CSI 1;<m>A`` where m = 1 + shift + 2*alt +
  4*ctrl + 8*meta;
- F1-F4 send ``SS3 P``..``SS3 S`` (``CSI 1;<m>P`` modified), F5-F12 ``CSI 15~``..``CSI 24~``,
  F13-F24 are xterm's shift+F1..F12; Insert/Delete/PgUp/PgDn ``CSI 2~``/``3~``/``5~``/``6~``;
- Enter ``CR``, Tab ``HT``, Shift-Tab ``CSI Z``, Backspace ``DEL`` (0x7f; Ctrl-Backspace ``BS``),
  Escape ``ESC``; Ctrl-letters their C0 code (Ctrl-C 0x03, Ctrl-D 0x04, Ctrl-Z 0x1a), Ctrl-Space
  NUL; Alt (meta) prefixes ``ESC``;
- keypad operators in application keypad mode (DECKPAM) send ``SS3 o``/``j``/``m``/``k``/``n``..
  Textual reports keypad digits and Enter under the same names as the main keys, so only the
  operator keys it names separately (``divide``, ``multiply``, ...) can honour DECKPAM.

Paste is wrapped in ``CSI 200~``/``CSI 201~`` when the program enabled bracketed paste (2004), and
line ends become CR as in xterm. Mouse events are encoded SGR (1006) or X10 when the program enabled
reporting (9, 1000, 1002, 1003).
"""

from __future__ import annotations

__all__ = ["encode_key", "encode_paste", "encode_mouse", "encode_focus", "MouseKind"]

ESC = "\x1b"
CSI = "\x1b["
SS3 = "\x1bO"

# base name -> final byte of the CSI/SS3 form
_CURSOR = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}
_TILDE = {"insert": 2, "delete": 3, "pageup": 5, "pagedown": 6, "page_up": 5, "page_down": 6}
_F1_F4 = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}
_F5_F12 = {"f5": 15, "f6": 17, "f7": 18, "f8": 19, "f9": 20, "f10": 21, "f11": 23, "f12": 24}
# Textual's names for keypad keys it can tell apart -> (application form, numeric form)
_KEYPAD = {
    "divide": ("o", "/"),
    "multiply": ("j", "*"),
    "subtract": ("m", "-"),
    "add": ("k", "+"),
    "decimal": ("n", "."),
    "separator": ("l", ","),
    "equal": ("X", "="),
    "kp_begin": ("E", None),
}
_CTRL_SYMBOLS = {
    "space": "\x00",
    "@": "\x00",
    "at": "\x00",
    "2": "\x00",
    "left_square_bracket": "\x1b",
    "3": "\x1b",
    "backslash": "\x1c",
    "4": "\x1c",
    "right_square_bracket": "\x1d",
    "5": "\x1d",
    "circumflex_accent": "\x1e",
    "6": "\x1e",
    "underscore": "\x1f",
    "minus": "\x1f",
    "7": "\x1f",
    "8": "\x7f",
    "question_mark": "\x7f",
}
_MODIFIER_BITS = {"shift": 1, "alt": 2, "meta": 8, "ctrl": 4}


def _split(key: str) -> tuple[set[str], str]:
    """'ctrl+shift+up' -> ({'ctrl', 'shift'}, 'up'); Textual spells '+' as 'plus'."""
    parts = key.split("+")
    return set(parts[:-1]), parts[-1]


def _modifier_param(mods: set[str]) -> int:
    return 1 + sum(bit for name, bit in _MODIFIER_BITS.items() if name in mods)


def encode_key(
    key: str,
    character: str | None = None,
    *,
    app_cursor: bool = False,
    app_keypad: bool = False,
) -> bytes | None:
    """The bytes for a Textual key event, or None if the key has no terminal encoding."""
    mods, base = _split(key)
    mods.discard("super")
    mods.discard("hyper")
    alt = "alt" in mods or "meta" in mods
    param = _modifier_param(mods)

    if base in _CURSOR:
        final = _CURSOR[base]
        if param > 1:
            return f"{CSI}1;{param}{final}".encode()
        return f"{SS3 if app_cursor else CSI}{final}".encode()
    if base in _TILDE:
        code = _TILDE[base]
        return (f"{CSI}{code};{param}~" if param > 1 else f"{CSI}{code}~").encode()
    if base in _F1_F4:
        final = _F1_F4[base]
        return (f"{CSI}1;{param}{final}" if param > 1 else f"{SS3}{final}").encode()
    if base in _F5_F12:
        code = _F5_F12[base]
        return (f"{CSI}{code};{param}~" if param > 1 else f"{CSI}{code}~").encode()
    if base.startswith("f") and base[1:].isdigit() and 13 <= int(base[1:]) <= 24:
        # xterm reports shift+F1..F12 as F13..F24; encode them back the same way.
        return encode_key("+".join(sorted(mods | {"shift"})) + f"+f{int(base[1:]) - 12}")
    if base in _KEYPAD:
        app_form, numeric = _KEYPAD[base]
        if app_keypad or numeric is None:
            return f"{SS3}{app_form}".encode()
        return numeric.encode()

    prefix = ESC if alt else ""
    if base in ("enter", "return"):
        return f"{prefix}\r".encode()
    if base == "tab":
        if "shift" in mods:
            return f"{prefix}{CSI}Z".encode()
        return f"{prefix}\t".encode()
    if base == "escape":
        return f"{prefix}{ESC}".encode()
    if base == "backspace":
        return (prefix + ("\x08" if "ctrl" in mods else "\x7f")).encode()
    if "ctrl" in mods:
        if len(base) == 1 and base.isalpha():
            return f"{prefix}{chr(ord(base.lower()) & 0x1F)}".encode()
        if base in _CTRL_SYMBOLS:
            return f"{prefix}{_CTRL_SYMBOLS[base]}".encode()
        if character and len(character) == 1 and ord(character) < 0x20:
            return f"{prefix}{character}".encode()
        return None
    if base == "space":
        return f"{prefix} ".encode()

    if character and character.isprintable():
        return f"{prefix}{character}".encode()
    if character and len(character) == 1 and (ord(character) < 0x20 or character == "\x7f"):
        return f"{prefix}{character}".encode()
    if len(base) == 1:
        if "shift" in mods and base.isalpha():
            base = base.upper()
        return f"{prefix}{base}".encode()
    return None


def encode_paste(text: str, bracketed: bool) -> bytes:
    """Pasted text as the program should receive it."""
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    if bracketed:
        # A paste must not be able to end the bracket early and smuggle in keystrokes.
        text = text.replace("\x1b[201~", "")
        return f"{CSI}200~{text}{CSI}201~".encode()
    return text.encode()


def encode_focus(focused: bool) -> bytes:
    """Focus in/out report (mode 1004)."""
    return b"\x1b[I" if focused else b"\x1b[O"


MouseKind = str  # "press", "release", "move", "wheel_up", "wheel_down"


def encode_mouse(
    kind: MouseKind,
    button: int,
    x: int,
    y: int,
    *,
    tracking: int,
    sgr: bool,
    shift: bool = False,
    meta: bool = False,
    ctrl: bool = False,
    buttons_down: bool = False,
) -> bytes | None:
    """Encode a mouse event for a program that enabled mouse reporting; None if not reported.

    button is Textual's (1 left, 2 middle, 3 right, 0 none); x and y are 0-based cells.
    tracking is the enabled mode: 9 (X10: presses only), 1000 (press/release/wheel),
    1002 (and motion while a button is down), 1003 (all motion).
    """
    if not tracking:
        return None
    if kind == "move":
        if tracking == 1003 or (tracking == 1002 and buttons_down):
            pass
        else:
            return None
    if tracking == 9 and kind != "press":
        return None
    if kind in ("wheel_up", "wheel_down"):
        code = 64 if kind == "wheel_up" else 65
    elif kind == "move":
        code = 32 + (button - 1 if 1 <= button <= 3 else 3)
    elif kind == "release" and not sgr:
        code = 3  # X10 encoding cannot say which button was released
    else:
        code = button - 1 if 1 <= button <= 3 else 0
    if tracking != 9:
        code |= (4 if shift else 0) | (8 if meta else 0) | (16 if ctrl else 0)
    if sgr:
        final = "m" if kind == "release" else "M"
        return f"{CSI}<{code};{x + 1};{y + 1}{final}".encode()
    if x + 1 > 223 or y + 1 > 223:
        return None  # X10 coordinates end at 223
    return bytes((0x1B, 0x5B, 0x4D, 32 + code, 32 + x + 1, 32 + y + 1))
