"""SVG snapshots of the Containers pane (100x30 and 160x48, fake engine): the list, the log
of the highlighted container with a search highlighted, and the diff view."""

from __future__ import annotations

import pytest

from tests.tui.app_helpers import show
from tests.tui.snapshots import SIZES, app, settle, size_ids
from tests.waiting import pilot_wait_for
from workbench.widgets.logview import LogView

pytestmark = [pytest.mark.tui, pytest.mark.usefixtures("deterministic")]


@pytest.mark.parametrize("size", SIZES, ids=size_ids)
def test_containers_logs(snap_compare, size):
    async def ready(pilot):
        pane = await show(pilot, "containers")
        await pilot_wait_for(pilot, lambda: pane.loads >= 1 and pane.container_id is not None)
        view = pane.query_one("#log-view", LogView)
        await pilot_wait_for(pilot, lambda: len(view.lines) == 30, what="the log")
        view.focus()
        await pilot.press("slash", *"error", "escape")
        await pilot_wait_for(pilot, lambda: view.current == 20)
        await settle(pilot)

    assert snap_compare(app(), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=size_ids)
def test_containers_diff(snap_compare, size):
    async def ready(pilot):
        pane = await show(pilot, "containers")
        await pilot_wait_for(pilot, lambda: pane.loads >= 1 and pane.container_id is not None)
        await pilot.press("D")
        await pilot_wait_for(pilot, lambda: pane.detail_loaded == ("diff", pane.container_id))
        await settle(pilot)

    assert snap_compare(app(), terminal_size=size, run_before=ready)
