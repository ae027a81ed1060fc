"""SVG snapshots of the Learn pane: every teaching view at 100x30, and the namespace matrix,
the overlay, the network diagram and the security view at 160x48 (fake engine: fixed inodes, pids, layers, limits)."""

from __future__ import annotations

import pytest

from tests.tui.app_helpers import show
from tests.tui.snapshots import app, settle, size_ids
from tests.waiting import pilot_wait_for

pytestmark = [pytest.mark.tui, pytest.mark.usefixtures("deterministic")]

VIEWS = [("namespaces", (100, 30)), ("processes", (100, 30)), ("overlay", (100, 30)),
         ("cgroup", (100, 30)), ("network", (100, 30)), ("security", (100, 30)),
         ("namespaces", (160, 48)), ("overlay", (160, 48)), ("network", (160, 48)),
         ("security", (160, 48))]


@pytest.mark.parametrize("view,size", VIEWS, ids=[f"{v}-{size_ids(s)}" for v, s in VIEWS])
def test_learn_view(snap_compare, view, size):
    async def ready(pilot):
        pane = await show(pilot, "teaching")
        await pilot_wait_for(pilot, lambda: pane.loads >= 1 and pane.data.get("namespaces") is not None)
        pane.action_show(view)
        pane.focus_default()
        await settle(pilot)

    assert snap_compare(app(), terminal_size=size, run_before=ready)
