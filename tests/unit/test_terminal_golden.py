"""Recorded transcripts of real programs replayed into the emulator, compared with tmux's screens.

tests/fixtures/terminal/record.py ran busybox vi, vim (scrolling with regions), less (colours,
reverse scrolling), top and a colourful shell under a 24x80 PTY, stored the bytes per phase, and
stored what tmux (an independent emulator) showed after each phase: text, attributes (capture-pane
-e) and cursor/alternate-screen state. Here each prefix of phases is fed to our emulator in uneven
chunks (so sequences and UTF-8 split across reads) and must give the same screen.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from workbench.terminal.emulator import TerminalEmulator

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "terminal"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
CASES = [(name, k) for name, info in sorted(MANIFEST.items()) for k in range(1, info["phases"] + 1)]
ATTRS = ("fg", "bg", "bold", "italics", "underscore", "strikethrough", "reverse")


def replay(name: str, upto: int, seed: int) -> TerminalEmulator:
    info = json.loads((FIXTURES / f"{name}.{upto}.tmux.json").read_text())
    emulator = TerminalEmulator(rows=info["rows"], cols=info["cols"])
    rng = random.Random(seed)
    for k in range(1, upto + 1):
        data = (FIXTURES / f"{name}.{k}.bin").read_bytes()
        i = 0
        while i < len(data):
            n = rng.randint(1, 200)
            emulator.feed(data[i : i + n])
            i += n
    return emulator


def tmux_screen(name: str, k: int) -> tuple[list[str], dict, TerminalEmulator]:
    info = json.loads((FIXTURES / f"{name}.{k}.tmux.json").read_text())
    text = (FIXTURES / f"{name}.{k}.tmux.txt").read_text().split("\n")[: info["rows"]]
    text += [""] * (info["rows"] - len(text))
    # tmux's cells with attributes, as SGR runs per line: read back for the attribute grid.
    ansi = (FIXTURES / f"{name}.{k}.tmux.ansi").read_text().split("\n")[: info["rows"]]
    cells = TerminalEmulator(rows=info["rows"], cols=info["cols"])
    cells.feed("\r\n".join(f"\x1b[0m{line}" for line in ansi).encode())
    return [line.rstrip() for line in text], info, cells


@pytest.mark.parametrize("name,k", CASES)
def test_replay_matches_tmux(name, k):
    expected, info, tmux_cells = tmux_screen(name, k)
    for seed in (0, 1):
        emulator = replay(name, k, seed)
        assert emulator.display() == expected
        assert emulator.screen.alt_active == info["alternate"]
        # tmux reports a pending wrap as column == cols; we report the last column.
        x, y = info["cursor"]
        assert emulator.cursor == (min(x, info["cols"] - 1), y)
        assert emulator.screen.cursor_visible == info["cursor_visible"]
    for y, line in enumerate(expected):
        for x, ch in enumerate(line):
            if ch == " ":
                continue
            ours, theirs = emulator.cell(x, y), tmux_cells.cell(x, y)
            if ours.data != theirs.data:
                continue  # a wide character's text offset; the text itself was compared above
            assert [getattr(ours, a) for a in ATTRS] == [getattr(theirs, a) for a in ATTRS], (x, y, ch)


def test_fixtures_cover_what_the_issue_asks():
    names = set(MANIFEST)
    assert {"busybox-vi", "vim-scroll", "less-colours", "top", "shell-colours"} <= names
    # vi and less leave the alternate screen in their last phase; in the middle they are on it.
    for name in ("busybox-vi", "vim-scroll", "less-colours"):
        last = MANIFEST[name]["phases"]
        assert json.loads((FIXTURES / f"{name}.{last}.tmux.json").read_text())["alternate"] is False
        assert json.loads((FIXTURES / f"{name}.2.tmux.json").read_text())["alternate"] is True
