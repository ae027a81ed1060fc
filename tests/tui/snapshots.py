"""Shared set-up of the SVG snapshots: the sizes, and for the Containers, Stats, Terminals
and Learn panes the real workbench app (tabs, status line, footer) on the fake engine
(tests/tui/fakes.py), with nothing that depends on the clock, the host (cores) or timers.

Update after an intended UI change:
``pytest tests/tui/test_pane_*_snapshots.py --snapshot-update`` and look at the SVGs."""

from __future__ import annotations

from tests.tui.app_helpers import make_app
from tests.tui.fakes import FakeEngine

SIZES = [(100, 30), (160, 48)]
PANES = ["containers", "stats", "terminals", "teaching"]
size_ids = lambda s: f"{s[0]}x{s[1]}"  # noqa: E731


def app(engine=None):
    engine = engine or FakeEngine(root="")  # the status line shows no root
    a = make_app(engine, panes=PANES)
    a.fake = engine
    return a


async def settle(pilot) -> None:
    for _ in range(3):
        await pilot.pause()
    await pilot.wait_for_scheduled_animations()
