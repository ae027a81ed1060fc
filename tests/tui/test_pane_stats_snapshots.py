"""SVG snapshots of the Stats pane (100x30 and 160x48): 12 samples of the fake engine's
scripted counters, taken by hand (no timer), so the numbers and sparklines are fixed."""

from __future__ import annotations

import pytest

from tests.tui.app_helpers import show
from tests.tui.snapshots import SIZES, app, settle, size_ids
from tests.waiting import pilot_wait_for

pytestmark = [pytest.mark.tui, pytest.mark.usefixtures("deterministic")]


@pytest.mark.parametrize("size", SIZES, ids=size_ids)
def test_stats(snap_compare, size):
    async def ready(pilot):
        pane = await show(pilot, "stats")
        await pilot_wait_for(pilot, lambda: len(pane.series) == 2 and not pane._sampling)
        await settle(pilot)
        # start from zero: whatever the first show sampled is forgotten
        pilot.app.fake.stat_counts.clear()
        for series in pane.series.values():
            series.cpu.clear()
            series.mem.clear()
            series.last_cpu_ns = series.last_time = None
        for _ in range(12):
            n = pane.samples_taken
            pane.sample()
            await pilot_wait_for(pilot, lambda: pane.samples_taken > n)
        await settle(pilot)

    assert snap_compare(app(), terminal_size=size, run_before=ready)
