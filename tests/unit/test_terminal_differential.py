"""The emulator against tmux, live: each hand-written case and each recorded program is fed to
both at 80x24 and must give the same text, cursor, alternate-screen state and attributes
(tests/terminal_diff.py). The full set with a score: tests/benchmarks/bench_terminal_diff.py."""

from __future__ import annotations

import shutil

import pytest

from tests.terminal_diff import HAND, TMUX_DIFFERS, Tmux, differences, ours, recorded

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

CASES = {**HAND, **recorded()}


@pytest.fixture(scope="module")
def tmux():
    t = Tmux()
    yield t
    t.close()


@pytest.mark.parametrize("name", [n for n in CASES if n not in TMUX_DIFFERS])
def test_same_screen_as_tmux(tmux, name):
    assert differences(ours(CASES[name]), tmux.screen(CASES[name])) == []
