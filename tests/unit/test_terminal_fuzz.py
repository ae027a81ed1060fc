"""No byte sequence may raise out of the emulator or leave its screen inconsistent.

Random bytes and escape-sequence fragments (CSI with random parameters and finals, private
modes, scroll regions, origin mode, charsets, OSC/DCS strings cut short, UTF-8 split, wide and
combining characters, C0 controls inside sequences) are fed for a fixed time from a fixed seed,
with resizes in between; after every chunk the cursor is on the screen and every row holds
exactly the screen's columns when drawn. ``tests/benchmarks/bench_terminal_fuzz.py`` runs the same for
longer and with other seeds.
"""

from __future__ import annotations

import random
import time

from workbench.terminal.emulator import TerminalEmulator, line_text
from workbench.terminal.widget import render_cells

FINALS = "@ABCDEFGHIJKLMPSTXZ`abcdefghlmnqrstux"
PRIVATE = [1, 3, 5, 6, 7, 25, 47, 1000, 1002, 1006, 1047, 1048, 1049, 2004, 2026]


def fragment(rng: random.Random) -> bytes:
    kind = rng.randrange(12)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 24)))
    if kind == 1:
        params = ";".join(str(rng.choice([0, 1, 2, 5, 24, 80, 99, 9999, 2**31]))
                          for _ in range(rng.randrange(4)))
        return f"\x1b[{rng.choice(['', '?', '>', '='])}{params}{rng.choice(['', ' ', '$', '!'])}" \
               f"{rng.choice(FINALS)}".encode()
    if kind == 2:
        modes = ";".join(str(rng.choice(PRIVATE)) for _ in range(rng.randrange(1, 3)))
        return f"\x1b[?{modes}{rng.choice('hl')}".encode()
    if kind == 3:
        return f"\x1b[{rng.randrange(0, 30)};{rng.randrange(0, 30)}r".encode()
    if kind == 4:
        return rng.choice([b"\x1b7", b"\x1b8", b"\x1bM", b"\x1bD", b"\x1bE", b"\x1bc", b"\x1b#8",
                           b"\x1b(0", b"\x1b(B", b"\x1b)0", b"\x0e", b"\x0f", b"\x1b=", b"\x1b>"])
    if kind == 5:
        return rng.choice(["中文", "e\u0301", "\u0301", "😀", "\u200d", "ｱ", "\ufe0f", "ß"]).encode() \
            * rng.randrange(1, 5)
    if kind == 6:
        text = "".join(rng.choice("abc xyz") for _ in range(rng.randrange(1, 120)))
        return text.encode()
    if kind == 7:
        return rng.choice([b"\r\n", b"\n", b"\r", b"\t", b"\b", b"\x07", b"\x0b", b"\x0c", b"\x00",
                           b"\x7f", b"\x18", b"\x1a"])
    if kind == 8:
        body = bytes(rng.randrange(0x20, 0x7f) for _ in range(rng.randrange(0, 40)))
        return rng.choice([b"\x1b]0;", b"\x1b]52;c;", b"\x1b]11;", b"\x1bP", b"\x1b_"]) + body \
            + rng.choice([b"", b"\x07", b"\x1b\\"])
    if kind == 9:
        return b"\x1b[" + bytes([rng.choice(b"0123456789;?\x08\r\n\x1b")
                                 for _ in range(rng.randrange(1, 8))]) + bytes([rng.choice(b"CHmdrJK")])
    if kind == 10:
        return f"\x1b[{rng.choice([38, 48])};{rng.choice(['5', '2', '5:', '2:'])};" \
               f"{rng.randrange(300)};{rng.randrange(300)};{rng.randrange(300)}m".encode()
    return "é中".encode()[: rng.randrange(1, 5)]  # a character cut anywhere


def check(e: TerminalEmulator) -> None:
    screen = e.screen
    rows, cols = screen.lines, screen.columns
    assert 0 <= screen.cursor.y < rows, (screen.cursor.y, rows)
    assert 0 <= screen.cursor.x <= cols, (screen.cursor.x, cols)   # == cols: a pending wrap
    assert all(0 <= y < rows for y in screen.buffer), sorted(screen.buffer)
    for y, line in screen.buffer.items():
        assert all(0 <= x < cols for x in line), (y, sorted(line))
        assert sum(seg.cell_length for seg in render_cells(line, cols)) == cols, (y, line_text(line, cols))
    assert len(e.display()) == rows


def fuzz(seed: int, seconds: float) -> tuple[int, int, int]:
    """Feed fragments for ``seconds``; returns (chunks, bytes, dropped)."""
    rng = random.Random(seed)
    e = TerminalEmulator(rows=24, cols=80, history=200)
    chunks = fed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data = b"".join(fragment(rng) for _ in range(rng.randrange(1, 12)))
        if rng.random() < 0.02:
            e.resize(rng.randrange(1, 40), rng.randrange(1, 120))
        e.feed(data)
        e.take_replies()
        e.take_dirty()
        check(e)
        chunks += 1
        fed += len(data)
    return chunks, fed, e.dropped


def test_random_bytes_and_escape_fragments_never_raise_and_keep_the_screen_consistent():
    chunks, fed, dropped = fuzz(seed=17, seconds=4.0)
    assert chunks > 200
    # every sequence the fuzzer sends is handled; a handler that raised would be counted here
    assert dropped == 0


def test_what_the_fuzzer_found():
    # CHT/CBT with a count of 2**31 looped that many times: the tab froze
    e = TerminalEmulator(rows=3, cols=10)
    e.feed(b"\x1b[2147483647I")
    assert e.cursor == (9, 0)
    e.feed(b"\x1b[2147483647Z")
    assert e.cursor == (0, 0)
    # a wide character on a one-column screen put the cursor two columns past the edge
    e = TerminalEmulator(rows=3, cols=1)
    e.feed("中x".encode())
    check(e)
    assert e.display()[0] == "x"
    # a cell whose marks rich measures otherwise than the grid (VS16 after a digit, a dangling
    # joiner) shifted the rest of its row when drawn
    e = TerminalEmulator(rows=2, cols=10)
    e.feed("5\ufe0fa\u200d\u200db".encode())
    check(e)
    assert "".join(seg.text for seg in render_cells(e.screen.buffer[0], 10)) == "5ab       "
