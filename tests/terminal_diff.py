"""Differential testing of the embedded terminal against tmux (a reference emulator).

A case is a byte stream. It is fed to our emulator and, through ``cat`` on a raw PTY
(``stty raw -opost``: the bytes arrive as written), to a tmux pane of the same size; then
text, cursor, alternate-screen state and every cell's attributes are compared. tmux's cells are
read with ``capture-pane -e -N`` (SGR runs) and turned back into cells by a fresh emulator, as
test_terminal_golden.py does.

Streams come from two places: written by hand (``HAND``: one per feature, and the twelve
reproducers of issue 17), and recorded from real programs (``recorded()``: busybox vi, vim, less,
top and a colourful shell, tests/fixtures/terminal/*.bin). Where tmux is known to differ from
xterm, the case says so in ``TMUX_DIFFERS`` and is compared with the xterm behaviour written
in tests/unit/test_terminal_xterm.py instead.

Used by tests/unit/test_terminal_differential.py (a fast subset) and
tests/benchmarks/bench_terminal_diff.py (everything, with a score).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from workbench.terminal.emulator import TerminalEmulator

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "terminal"
ATTRS = ("fg", "bg", "bold", "italics", "underscore", "strikethrough", "reverse")
ROWS, COLS = 24, 80

FILL = b"\x1b[H" + b"\r\n".join(b"line %02d ...................." % i for i in range(1, 25))

HAND: dict[str, bytes] = {
    # the twelve reproducers of issue 17
    "vpa-origin-no-region": b"\x1b[?6h\x1b[5dX",
    "decstbm-homes": b"\x1b[10;10H\x1b[rX",
    "decrc-no-clamp": b"\x1b[20;5H\x1b7\x1b[5;10r\x1b8X",
    "cup-origin-clamped": b"\x1b[5;15r\x1b[?6h\x1b[30;5HX",
    "decrc-not-autowrap": b"\x1b[1m\x1b(0\x1b7\x1b[?7l\x1b[m\x1b(B\x1b8q" + b"a" * 85,
    "1049-twice": b"\x1b[1;31m\x1b[?1049h\x1b[32m\x1b[5;5H\x1b[?1049h\x1b[?1049lX",
    "c0-inside-csi": b"abcd\x1b[2\x08CX",
    "tab-keeps-pending-wrap": b"x" * 80 + b"\tt",
    "bce-il": FILL + b"\x1b[10H\x1b[44m\x1b[2L",
    "bce-dl": FILL + b"\x1b[10H\x1b[44m\x1b[2M",
    "bce-su": FILL + b"\x1b[44m\x1b[3S",
    "bce-sd": FILL + b"\x1b[44m\x1b[2T",
    "bce-lf": FILL + b"\x1b[24H\x1b[44m\n",
    "bce-ri": FILL + b"\x1b[H\x1b[44m\x1bM",
    "dec-graphics": b"\x1b(0`abcdefghijklmnopqrstuvwxyz{|}~\x1b(B",
    "combining-at-col-0": "x\r\n\u0301y".encode(),
    "decscnm-keeps-cells": b"\x1b[?5h\x1b[7mX\x1b[mY\x1b[?5l",
    # features
    "wrap-and-scroll": b"".join(b"%03d " % i * 7 + b"\r\n" for i in range(40)),
    "colours-16-256-rgb": b"".join(b"\x1b[%dm%d\x1b[m " % (c, c) for c in list(range(30, 38)) + list(range(90, 98)))
    + b"\r\n" + b"".join(b"\x1b[38;5;%dm#" % c for c in range(0, 256, 3))
    + b"\x1b[m\r\n\x1b[38;2;10;200;30;48;2;200;10;30mtrue\x1b[m",
    "attributes": b"\x1b[1mb\x1b[3mi\x1b[4mu\x1b[9ms\x1b[7mr\x1b[22;23;24;29;27mplain",
    "erase-with-bg": b"0123456789" * 3 + b"\x1b[1;5H\x1b[41m\x1b[K\x1b[2;1H\x1b[42m\x1b[J\x1b[m",
    "insert-delete-chars": b"abcdefghij\x1b[1;3H\x1b[2@XY\x1b[1;8H\x1b[3P",
    "scroll-region-vi": FILL + b"\x1b[5;15r\x1b[15H\n\n\x1b[5H\x1bM\x1bM\x1b[r",
    "wide-characters": "中文字符 ｱｲｳ 😀 x\r\n".encode() + "中" .encode() * 45,
    "tabs-and-backspace": b"a\tb\tc\x08\x08X\r\n\x1b[3g\x1b[1;20H\x1bH\r\tT",
    "alternate-screen": b"main\x1b[?1049h\x1b[2Jalt\x1b[?1049l after",
    "cursor-motion": b"\x1b[5;5Ha\x1b[2Ab\x1b[3Bc\x1b[10Cd\x1b[4De\x1b[Gf\x1b[7dg\x1b[2Eh\x1b[Fi",
    "repeat-rep": b"ab\x1b[5b",
    "save-restore": b"\x1b[3;7H\x1b[1;32m\x1b7\x1b[H\x1b[mplain\x1b8green",
    "ech-and-el1": b"0123456789\x1b[1;4H\x1b[3X\x1b[1;8H\x1b[1K",
}

# Where tmux is known to differ from xterm: the name -> why; compared with xterm's behaviour
# (tests/unit/test_terminal_xterm.py) rather than with tmux.
TMUX_DIFFERS: dict[str, str] = {}

# Sequences on which tmux is known to differ from xterm (and we follow xterm): a stream holding
# one is counted apart in the benchmark.
KNOWN_TMUX_DEVIATIONS = {
    # DECCOLM: tmux clears the screen and homes the cursor; xterm ignores the mode unless
    # 132-column switching is allowed (it is not by default), and so do we
    "DECCOLM (CSI ? 3 h/l)": re.compile(rb"\x1b\[\?(?:[0-9;]*;)?3(?:;[0-9;]*)?[hl]"),
    # RIS on the alternate screen: xterm's reset returns to the main screen, tmux stays
    "RIS on the alternate screen": re.compile(rb"\x1b\[\?(?:[0-9;]*;)?(?:47|1047|1049)(?:;[0-9;]*)?h.*\x1bc",
                                              re.S),
}


def known_tmux_deviation(data: bytes) -> str | None:
    for what, pattern in KNOWN_TMUX_DEVIATIONS.items():
        if pattern.search(data):
            return what
    return None


def recorded() -> dict[str, bytes]:
    """The real programs' streams (each recording's phases, concatenated)."""
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    return {f"program:{name}": b"".join((FIXTURES / f"{name}.{k}.bin").read_bytes()
                                        for k in range(1, info["phases"] + 1))
            for name, info in sorted(manifest.items())}


@dataclass
class Screen:
    text: list[str]
    cursor: tuple[int, int]
    alternate: bool
    cells: list[list[tuple]] = field(default_factory=list)
    # how many cells of each row the reference wrote out: tmux's capture-pane writes nothing
    # for the part of a line it holds as "cleared with a background colour" (erased, inserted
    # or scrolled in under BCE), so attributes are compared only where it wrote cells; the
    # BCE cases are checked against xterm's behaviour in tests/unit/test_terminal_xterm.py
    widths: list[int] = field(default_factory=list)


def cells_of(e: TerminalEmulator) -> list[list[tuple]]:
    return [[tuple(getattr(e.cell(x, y), a) for a in ATTRS) for x in range(e.cols)]
            for y in range(e.rows)]


def ours(data: bytes, rows: int = ROWS, cols: int = COLS) -> Screen:
    e = TerminalEmulator(rows=rows, cols=cols)
    e.feed(data)
    x, y = e.cursor
    return Screen([line.rstrip() for line in e.display()], (min(x, cols - 1), y),
                  e.screen.alt_active, cells_of(e))


class Tmux:
    """A private tmux server (its own socket, no user config, no status line)."""

    def __init__(self, rows: int = ROWS, cols: int = COLS) -> None:
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed")
        self.rows, self.cols = rows, cols
        self.socket = f"nsdiff-{uuid.uuid4().hex[:8]}"
        self.dir = tempfile.mkdtemp(prefix="nsdiff-")
        self.run("new-session", "-d", "-x", str(cols), "-y", str(rows), "-n", "idle", "sleep 600")
        self.run("set", "-g", "status", "off")
        self.n = 0

    def run(self, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "COLUMNS", "LINES")}
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], check=True,
                              capture_output=True, text=True, timeout=20,
                              env=dict(env, TERM="xterm-256color")).stdout

    def screen(self, data: bytes) -> Screen:
        self.n += 1
        name = f"c{self.n}"
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        self.run("new-window", "-d", "-n", name,
                 f"stty raw -echo -opost; cat {path}; tmux wait-for -S {self.socket}-{name}; exec sleep 600")
        self.run("wait-for", f"{self.socket}-{name}")
        x, y, alt = self.run("display", "-p", "-t", name,
                             "#{cursor_x},#{cursor_y},#{alternate_on}").strip().split(",")
        ansi = self.run("capture-pane", "-p", "-e", "-N", "-t", name).split("\n")[: self.rows]
        ansi += [""] * (self.rows - len(ansi))
        self.run("kill-window", "-t", name)
        # capture-pane -e writes line drawing as SO ... SI with G1 the DEC graphics set
        cells = TerminalEmulator(rows=self.rows, cols=self.cols)
        # and sets attributes only where they change, also across lines (a wrapped line's cells
        # carry on in the attributes the line above ended with)
        cells.feed(("\x1b[0m\x1b)0\x0f" + "\r\n".join(ansi)).encode())
        return Screen([line.rstrip() for line in cells.display()], (int(x), int(y)), alt == "1",
                      cells_of(cells), [self._width(line) for line in ansi])

    def _width(self, line: str) -> int:
        """How many cells of a row capture-pane wrote out."""
        e = TerminalEmulator(rows=1, cols=self.cols)
        e.feed(f"\x1b)0\x0f{line}".encode())
        return e.cursor[0]

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=20)
        shutil.rmtree(self.dir, ignore_errors=True)


def differences(a: Screen, b: Screen) -> list[str]:
    """What differs between our screen (a) and tmux's (b), one line each (empty: the same)."""
    out = []
    for y, (ta, tb) in enumerate(zip(a.text, b.text)):
        # a zero-width joiner is invisible: tmux drops one that joins nothing, we keep it in
        # the cell before; what is drawn is the same
        if ta.replace("\u200d", "") != tb.replace("\u200d", ""):
            out.append(f"row {y + 1} text: ours {ta!r} tmux {tb!r}")
    if a.cursor != b.cursor:
        out.append(f"cursor: ours {a.cursor} tmux {b.cursor}")
    if a.alternate != b.alternate:
        out.append(f"alternate screen: ours {a.alternate} tmux {b.alternate}")
    for y, (ra, rb) in enumerate(zip(a.cells, b.cells)):
        shown = b.widths[y] if b.widths else len(rb)
        for x, (ca, cb) in enumerate(zip(ra[:shown], rb[:shown])):
            if ca != cb:
                diff = [f"{n} {va!r}/{vb!r}" for n, va, vb in zip(ATTRS, ca, cb) if va != vb]
                out.append(f"row {y + 1} col {x + 1} attributes (ours/tmux): {', '.join(diff)}")
                break  # one per row is enough to read
    return out
