"""Shared set-up of the SVG snapshots of the Containers, Stats, Terminals and Learn panes:
the real workbench app (tabs, status line, footer) on the fake engine (tests/tui/fakes.py),
with nothing that depends on the clock, the host (cores) or timers.

Update after an intended UI change:
``pytest tests/tui/test_pane_*_snapshots.py --snapshot-update`` and look at the SVGs."""

from __future__ import annotations

from tests.tui.app_helpers import make_app
from tests.tui.fakes import FakeEngine
from tests.waiting import pilot_wait_for

SIZES = [(100, 30), (160, 48)]
PANES = ["containers", "stats", "terminals", "teaching"]
size_ids = lambda s: f"{s[0]}x{s[1]}"  # noqa: E731


def app(engine=None):
    engine = engine or FakeEngine(root="")  # the status line shows no root
    a = make_app(engine, panes=PANES)
    a.fake = engine
    return a


def fake(pilot) -> FakeEngine:
    return pilot.app.fake


async def show(pilot, name: str):
    app = pilot.app
    await pilot_wait_for(pilot, lambda: app.pane(name) is not None and app.pane(name).is_mounted,
                         what=f"the {name} pane")  # the workbench may mount panes lazily
    app.action_show_tab(name)
    await pilot_wait_for(pilot, lambda: app.query_one("#tabs").active == f"tab-{name}")
    return app.pane(name)


async def settle(pilot) -> None:
    for _ in range(3):
        await pilot.pause()
    await pilot.wait_for_scheduled_animations()
