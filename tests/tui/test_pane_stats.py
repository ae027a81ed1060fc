"""The Stats pane against a fake Engine (Pilot): rows, CPU % from deltas, sparklines,
limits, selection in step, sampling only while shown, pause."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from tests.tui.app_helpers import PaneApp, sync
from tests.tui.fakes import FakeEngine
from tests.waiting import pilot_wait_for
from workbench.messages import ContainerSelected, EngineChanged
from workbench.panes.stats import StatsPane
from workbench.widgets.linetable import LineTable
from workbench.widgets.table import cell_text

pytestmark = pytest.mark.tui
PATTERN = [5, 40, 15, 70, 25, 55, 10, 90]


class ManualStats(StatsPane):
    SAMPLE_INTERVAL = 3600  # samples are taken by the test


async def sample(pilot, pane: StatsPane, n: int = 1) -> None:
    for _ in range(n):
        before = pane.samples_taken
        pane.sample()
        await pilot_wait_for(pilot, lambda: pane.samples_taken > before)


async def shown(pilot, app) -> tuple[StatsPane, LineTable]:
    """The pane and its table once the two running containers are in it."""
    table = app.pane.query_one("#stats-table", LineTable)
    await pilot_wait_for(pilot, lambda: len(table.rows) == 2)
    return app.pane, table


def text_of(pane, selector: str) -> str:
    return str(pane.query_one(selector, Static).render())


@sync
async def test_rows_cpu_memory_limits():
    engine = FakeEngine()
    app = PaneApp(lambda: ManualStats(engine, id="stats"))
    async with app.run_test(size=(160, 40)) as pilot:
        pane, table = await shown(pilot, app)
        # the exited container is not sampled
        assert {c["Names"] for c in pane.running} == {"web", "db"}
        await sample(pilot, pane, 4)
        web = engine.container("web")
        cells = [cell_text(c) for c in table.row(web)]
        # CPU % = delta cpu ns / delta wall ns * 100. The fake's samples are 1 s apart and
        # between samples k-1 and k web used PATTERN[k-1] x 10 ms: PATTERN[k-1] percent.
        n = engine.stat_counts[web]
        assert n >= 4
        assert cells[1] == f"{PATTERN[(n - 2) % 8]:.2f}%"
        assert cells[3].endswith("/ 64MiB")
        assert cells[5] == "3 / 50"
        db = engine.container("db")
        assert table.row(db)[3].plain.endswith("/ no limit")
        # the header says what 100 % means
        assert "1 core = 100 %" in text_of(pane, "#stats-header")
        # the sparkline has a block per sample but the first (no CPU delta yet)
        assert len(cell_text(table.row(web)[2]).strip()) == n - 1


@sync
async def test_rows_show_their_cells_own_styles():
    """A cell's own style (the bold name, the green sparkline) is drawn: rich renders a
    Text without spans as one unstyled segment, and the table dropped those styles until
    it applied them itself. The row under the cursor keeps the cursor's style only."""
    engine = FakeEngine()
    app = PaneApp(lambda: ManualStats(engine, id="stats"))
    async with app.run_test(size=(160, 40)) as pilot:
        pane, table = await shown(pilot, app)
        await sample(pilot, pane, 3)
        lines = table.lines
        for y in (1, 2):
            key = table.shown[y - 1]
            strip = lines.render_line(y)
            segs = [seg for seg in strip if seg.text.strip()]
            name = next(seg for seg in segs if seg.text == cell_text(table.row(key)[0]))
            spark = next(seg for seg in segs if set(seg.text) & set("▁▂▃▄▅▆▇█"))
            if y - 1 == table.cursor:
                assert name.style == spark.style        # one style: the cursor's
            else:
                assert name.style.bold and not spark.style.bold
                assert spark.style.color is not None and spark.style.color.name == "green"
            # every cell's text is on the line, in order
            text = strip.text
            at = 0
            for cell in table.row(key):
                plain = cell_text(cell).strip()
                if plain:
                    at = text.index(plain[:6], at)


@sync
async def test_selection_follows_and_announces():
    engine = FakeEngine()
    app = PaneApp(lambda: ManualStats(engine, id="stats"))
    async with app.run_test(size=(120, 36)) as pilot:
        pane, table = await shown(pilot, app)
        await sample(pilot, pane, 2)
        db = engine.container("db")
        # another pane selected db: the cursor follows, no echo back to the app
        before = list(app.selected)
        sel = ContainerSelected(db)
        pane.post_message(sel)
        await pilot_wait_for(pilot, lambda: table.selected_key == db)
        assert "db" in text_of(pane, "#stats-title")
        assert app.selected == before
        # moving the cursor here announces the container to the app
        table.focus()
        await pilot.press("up")
        await pilot_wait_for(pilot, lambda: app.selected and app.selected[-1] == engine.container("web"))


@sync
async def test_samples_only_while_visible_and_not_paused():
    engine = FakeEngine()

    class Fast(StatsPane):
        SAMPLE_INTERVAL = 0.05

    app = PaneApp(lambda: Fast(engine, id="stats"))
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.pane
        await pilot_wait_for(pilot, lambda: pane.samples_taken >= 3)
        # hidden: the timer stops
        pane.display = False
        await pilot.pause(0.1)
        assert not pane.sampling
        n = pane.samples_taken
        await pilot.pause(0.4)
        assert pane.samples_taken <= n + 1
        # shown again: it resumes
        pane.display = True
        await pilot_wait_for(pilot, lambda: pane.samples_taken >= n + 3)
        # paused with p: nothing more
        pane.query_one("#stats-table", LineTable).focus()
        await pilot.press("p")
        assert pane.paused and "PAUSED" in text_of(pane, "#stats-header")
        await pilot.pause(0.1)
        n = pane.samples_taken
        await pilot.pause(0.4)
        assert pane.samples_taken <= n + 1


@sync
async def test_engine_changed_reloads_list():
    engine = FakeEngine()
    app = PaneApp(lambda: ManualStats(engine, id="stats"))
    async with app.run_test(size=(120, 36)) as pilot:
        pane, table = await shown(pilot, app)
        engine.start("old")
        pane.post_message(EngineChanged({"containers"}, {engine.container("old")}))
        await pilot_wait_for(pilot, lambda: len(table.rows) == 3)
        engine.stop("web")
        # a container that stopped between list and sample is dropped at the next sample
        # (no EngineChanged here: the sample itself notices)
        web = engine.container("web")
        await pilot_wait_for(pilot, lambda: pane.sample() or web not in dict(table.rows))


@sync
async def test_no_containers_message():
    engine = FakeEngine(n_running=0)
    app = PaneApp(lambda: ManualStats(engine, id="stats"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        assert "no running containers" in text_of(app.pane, "#stats-title")
