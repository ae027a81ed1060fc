"""The Stats pane on real containers (root): a busy loop limited to half a CPU shows about
50 % (1 core = 100 %), the memory and pids limits show beside usage, and a container that
stops leaves the list."""

from __future__ import annotations

import asyncio

import pytest

from tests.tui.app_helpers import make_app, pane_of
from tests.tui.real_containers import run
from tests.waiting import pilot_wait_for
from workbench.panes import stats as stats_mod
from workbench.widgets.linetable import LineTable
from workbench.widgets.table import cell_text

pytestmark = [pytest.mark.tui, pytest.mark.integration]


def test_cpu_memory_pids_from_cgroups(real_engine, monkeypatch):  # noqa: F811
    monkeypatch.setattr(stats_mod.StatsPane, "SAMPLE_INTERVAL", 0.5)
    busy = run(real_engine, "busy", ["sh", "-c", "while :; do :; done"], cpus=0.5,
               memory=64 * 1024 * 1024, pids_limit=20, stop_timeout=1)
    idle = run(real_engine, "idle", ["sleep", "300"], stop_timeout=1)

    async def scenario():
        app = make_app(real_engine, panes=["containers", "stats"], watch=True)
        async with app.run_test(size=(160, 48)) as pilot:
            pane = await pane_of(pilot, app, "stats")
            app.action_show_tab("stats")
            table = pane.query_one("#stats-table", LineTable)
            await pilot_wait_for(pilot, lambda: busy in dict(table.rows) and idle in dict(table.rows))
            await pilot_wait_for(pilot, lambda: len(pane.series[busy].cpu) >= 5, timeout=15,
                                 what="five samples")
            recent = [v for v in list(pane.series[busy].cpu)[-3:] if v is not None]
            # throttled by cpu.max / cfs_quota to half a core: ~50 % (never 100 %)
            assert recent and all(25 <= v <= 65 for v in recent), recent
            row = [cell_text(c) for c in table.row(busy)]
            assert row[3].endswith("/ 64MiB") and row[5].endswith("/ 20")
            assert float(row[1].rstrip("%")) <= 65
            idle_cpu = [v for v in pane.series[idle].cpu if v is not None]
            assert idle_cpu and max(idle_cpu) < 5
            assert "no limit" in cell_text(table.row(idle)[3])
            # the container stops: the watcher reloads the list, the row goes
            real_engine.kill(idle)
            await pilot_wait_for(pilot, lambda: idle not in dict(table.rows), timeout=10)
            # hidden: no more samples
            app.action_show_tab("containers")
            await pilot_wait_for(pilot, lambda: not pane.sampling)
            n = pane.samples_taken
            await pilot.pause(1.5)
            assert pane.samples_taken <= n + 1

    asyncio.run(scenario())
    for cid in (busy, idle):
        real_engine.rm(cid, force=True)
