"""SVG snapshots of the Terminals pane (100x30 and 160x48): an attach tab (the fake echoes
what is typed) and the help line with the leave chord."""

from __future__ import annotations

import pytest

from tests.tui.app_helpers import show
from tests.tui.snapshots import SIZES, app, settle, size_ids
from tests.waiting import pilot_wait_for
from workbench.messages import OpenTerminal

pytestmark = [pytest.mark.tui, pytest.mark.usefixtures("deterministic")]


@pytest.mark.parametrize("size", SIZES, ids=size_ids)
def test_terminals_attach(snap_compare, size):
    async def ready(pilot):
        a = pilot.app
        pane = await show(pilot, "terminals")
        a.pane("containers").post_message(OpenTerminal("attach", a.fake.container("web")))
        await pilot_wait_for(pilot, lambda: len(pane.terminals) == 1)
        term = pane.terminals[0]
        await pilot_wait_for(pilot, lambda: a.focused is term)
        await pilot.press(*"echo", "space", *"hi", "enter")
        await pilot_wait_for(pilot, lambda: "echo hi" in "\n".join(term.emulator.display()))
        await settle(pilot)

    assert snap_compare(app(), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", [(100, 30)], ids=size_ids)
def test_terminals_empty(snap_compare, size):
    async def ready(pilot):
        await show(pilot, "terminals")
        await settle(pilot)

    assert snap_compare(app(), terminal_size=size, run_before=ready)
