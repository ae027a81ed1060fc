"""Networks pane on a fake engine: networks, subnets, members, veth <-> bridge <-> IP, and the
create / rm / prune / connect / disconnect actions with their commands."""

from __future__ import annotations

import pytest

from tests.tui.app_helpers import app_running, fill_form, screen_text, show, sync_all
from tests.tui.fakes import NETWORKED, FakeEngine
from tests.waiting import pilot_wait_for
from workbench.panes.networks import topology
from workbench.widgets.table import FilterTable

pytestmark = pytest.mark.tui

WEB, DB, CACHE = "c1" * 32, "c2" * 32, "c3" * 32


@pytest.fixture
def engine():
    return FakeEngine(containers=NETWORKED)


async def _started(pilot, app):
    pane = await show(pilot, "networks")
    await pilot_wait_for(pilot, lambda: pane.networks, what="networks listed")
    return pane


async def test_networks_members_and_topology(engine):
    async with app_running(engine, ["networks"], _started) as (app, pilot, pane):
        table = pane.query_one("#networks-table", FilterTable)
        assert table.shown_keys == ["bridge", "backend", "host", "none"]
        members = pane.query_one("#members", FilterTable)
        await pilot_wait_for(pilot, lambda: members.shown_keys == [WEB, DB])
        text = screen_text(app)
        for needle in ("10.90.0.0/16", "nsbr-1eb397f82d", "10.90.0.1", "nsv35c73887fd1", "eth0",
                       "10.90.0.2/16", "web", "10.90.0.3/16", "db"):
            assert needle in text, needle
        await pilot.press("down")      # backend: internal, db on eth1
        await pilot_wait_for(pilot, lambda: members.shown_keys == [DB])
        text = screen_text(app)
        assert "internal" in text and "eth1" in text and "10.91.0.2/24" in text
        await pilot.press("down")      # host: no bridge
        await pilot_wait_for(pilot, lambda: members.shown_keys == [])
        assert "share the host's network namespace" in screen_text(app)


def test_topology_text_lines(engine):
    net = engine.network_inspect("bridge")
    lines = topology(net).plain.splitlines()
    assert lines[0].startswith("host bridge nsbr-1eb397f82d  10.90.0.1  subnet 10.90.0.0/16")
    assert lines[1] == "  ├─ nsv35c73887fd1 ═══ eth0 10.90.0.2/16  web (c1c1c1c1c1c1)"
    assert lines[2] == "  └─ nsv9a0b1c2d3e4 ═══ eth0 10.90.0.3/16  db (c2c2c2c2c2c2)"


async def test_member_selection_is_shared(engine):
    async with app_running(engine, ["networks"], _started) as (app, pilot, pane):
        members = pane.query_one("#members", FilterTable)
        await pilot_wait_for(pilot, lambda: members.shown_keys == [WEB, DB])
        members.focus()
        await pilot.press("down")
        await pilot_wait_for(pilot, lambda: app.selected_container == DB)


async def test_create_and_remove_a_network(engine):
    async with app_running(engine, ["networks"], _started) as (app, pilot, pane):
        await fill_form(pilot, "n", name="front", subnet="10.99.0.0/24", internal=True)
        await pilot_wait_for(pilot, lambda: "front" in pane.networks, what="front listed")
        assert engine.called("network_create")[0].kwargs == {"subnet": "10.99.0.0/24", "gateway": None,
                                                              "internal": True}
        assert app.history[-1].command == "nutshell network create --subnet 10.99.0.0/24 --internal front"
        # the predefined bridge cannot be removed
        pane.query_one("#networks-table", FilterTable).select("bridge")
        await pilot.press("d")
        await pilot.pause()
        assert len(app.screen_stack) == 1 and not engine.called("network_rm")
        pane.query_one("#networks-table", FilterTable).select("front")
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await pilot_wait_for(pilot, lambda: "front" not in pane.networks)
        assert app.history[-1].command == "nutshell network rm front"


async def test_connect_disconnect_prune(engine):
    async with app_running(engine, ["networks"], _started) as (app, pilot, pane):
        pane.query_one("#networks-table", FilterTable).select("backend")
        await pilot.press("C")
        await pilot.pause()
        select = app.screen.query_one("#field-container")
        options = [value for _, value in select._options]
        assert options == [WEB, CACHE]            # db is already a member
        select.value = CACHE
        await pilot.press("ctrl+s")
        await pilot_wait_for(pilot, lambda: engine.called("network_connect"))
        assert engine.called("network_connect")[0].args == ("backend", CACHE)
        assert app.history[-1].command == "nutshell network connect backend cache"
        members = pane.query_one("#members", FilterTable)
        await pilot_wait_for(pilot, lambda: CACHE in members.shown_keys)
        members.select(CACHE)
        await pilot.press("X")
        await pilot.pause()
        await pilot.press("y")
        await pilot_wait_for(pilot, lambda: engine.called("network_disconnect"))
        assert app.history[-1].command == "nutshell network disconnect backend cache"
        await pilot.press("ctrl+x")
        await pilot.pause()
        await pilot.press("y")
        await pilot_wait_for(pilot, lambda: engine.called("network_prune"))
        assert app.history[-1].command == "nutshell network prune -f"


async def test_read_only_has_no_network_actions(engine):
    async with app_running(engine, ["networks"], _started, read_only=True) as (app, pilot, pane):
        for key in ("n", "d", "C", "X", "ctrl+x"):
            await pilot.press(key)
            await pilot.pause()
            assert len(app.screen_stack) == 1, key
        footer = screen_text(app).splitlines()[-1]
        assert "New network" not in footer and "Filter" in footer


sync_all(globals())
