"""The Learn pane against a fake Engine (Pilot): each teaching view shows the engine's data
(matrix colours, NSpid, layers <-> lowerdir, limits beside usage, veth <-> bridge), follows
the selected container, explains a stopped container, and opens a host terminal."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Static, TabbedContent

from tests.tui.app_helpers import pane_alone, sync
from tests.waiting import pilot_wait_for
from workbench.messages import ContainerSelected, EngineChanged
from workbench.panes.learn import LearnPane, abbrev

pytestmark = pytest.mark.tui


async def loaded(pilot, app) -> LearnPane:
    """The pane once it has loaded its first container."""
    await pilot_wait_for(pilot, lambda: app.pane.loads >= 1)
    return app.pane


def learn_pane(engine, size, read_only=False):
    """The pane alone on ``engine``, loaded: ``async with`` gives (app, pilot, pane)."""
    return pane_alone(lambda: LearnPane(engine, read_only=read_only, id="learn"), size, loaded)


def text(pane, wid: str) -> str:
    return str(pane.query_one(f"#{wid}", Static).render())


def cells(table: DataTable, key: str) -> list[str]:
    return [str(getattr(c, "plain", c)) for c in table.get_row(key)]


@sync
async def test_views_show_the_engine_data(engine):
    async with learn_pane(engine, (160, 48)) as (app, pilot, pane):
        web = engine.container("web")
        assert pane.container_id == web  # the first running container, picked for the user
        assert "web" in text(pane, "learn-header") and "host PID 4000" in text(pane, "learn-header")
        # namespace matrix: 8 rows, inode columns, new vs shared badges
        ns = pane.query_one("#learn-ns-table", DataTable)
        assert ns.row_count == 8
        net = cells(ns, "net")
        assert net[1] == "4026532203" and net[2] == "4026531833" and net[3].strip() == "new"
        assert cells(ns, "user")[3].strip() == "shared: host"
        assert "has 6 of the 8 types of its own" in text(pane, "learn-ns-explain")
        assert "ls -l /proc/4000/ns" in text(pane, "learn-ns-commands")
        # PIDs: host PID <-> container PID
        await pilot.press("p")
        assert pane.query_one("#learn-tabs", TabbedContent).active == "learn-pid"
        pids = pane.query_one("#learn-pid-table", DataTable)
        assert cells(pids, "4000")[:3] == ["4000", "1", "4000 1"]
        assert cells(pids, "4007")[3:5] == ["4000", "1"]
        assert "is PID 1" in text(pane, "learn-pid-explain")
        # overlay: top-first lower dirs with their history lines, upper entries by kind
        await pilot.press("o")
        diagram = text(pane, "learn-overlay-diagram")
        assert diagram.index("RUN /bin/sh -c echo hello") < diagram.index("ADD busybox.tar /")
        assert "lower 1 top" in diagram and "lower 2 base" in diagram
        upper = pane.query_one("#learn-overlay-table", DataTable)
        assert cells(upper, "/home")[1] == "deleted (whiteout)"
        assert cells(upper, "/newdir/notes.txt")[1:] == ["added", "file", "12B"]
        assert "(1 here)" in text(pane, "learn-overlay-explain")
        # cgroups: limit file beside usage file, with the fraction used
        await pilot.press("g")
        cg = pane.query_one("#learn-cgroup-table", DataTable)
        mem = cells(cg, "memory")
        assert mem[1] == "…/memory.max" and mem[2] == "64MiB (67108864)"
        assert mem[3] == "…/memory.current" and "15.6%" in mem[5]
        assert "pids.max = 50" in text(pane, "learn-cgroup-explain")
        # network: the diagram names both ends of the veth and the bridge
        await pilot.press("w")
        d = text(pane, "learn-net-diagram")
        for needle in ("eth0 10.88.0.2/16", "veth nsv0123456789ab", "bridge nutshell0",
                       "iflink 2", "0.0.0.0:8080 → 80/tcp", "default via 10.88.0.1 dev eth0"):
            assert needle in d, needle
        assert "nsv0123456789ab" in text(pane, "learn-net-explain")
        # security: seccomp mode, what the profile refuses and why, capabilities
        await pilot.press("s")
        assert pane.query_one("#learn-tabs", TabbedContent).active == "learn-sec"
        summary = text(pane, "learn-sec-diagram")
        for needle in ("seccomp       filter", "Seccomp: 2", "profile: Docker's default",
                       "unlisted call ERRNO(EPERM)", "no_new_privs  off",
                       "capabilities: 14 of 41 (CapEff 00000000a80425fb)"):
            assert needle in summary, needle
        sec = pane.query_one("#learn-sec-table", DataTable)
        assert "allowed with CAP_SYS_ADMIN" in cells(sec, "mount")[1]
        assert "namespace flags" in cells(sec, "clone")[1]
        assert "ENOSYS" in cells(sec, "clone3")[1]
        assert "keyctl" in [str(k.value) for k in sec.rows]
        assert "/proc/kcore" in text(pane, "learn-sec-note")
        assert "keeps 14 of the 41" in text(pane, "learn-sec-explain")


@sync
async def test_follows_selection_and_explains_a_stopped_container(engine):
    async with learn_pane(engine, (100, 30)) as (app, pilot, pane):
        n = pane.loads
        db = engine.container("db")
        pane.post_message(ContainerSelected(db))
        await pilot_wait_for(pilot, lambda: pane.loads > n and pane.container_id == db)
        assert "db" in text(pane, "learn-header")
        assert app.selected == []  # following is silent
        # the exited container: no namespaces, but its overlay (upper dir) is still there
        old = engine.container("old")
        n = pane.loads
        pane.post_message(ContainerSelected(old))
        await pilot_wait_for(pilot, lambda: pane.loads > n)
        assert "is not running" in text(pane, "learn-ns-explain")
        assert "exist only while the container runs" in text(pane, "learn-ns-explain")
        assert "nothing is mounted" in text(pane, "learn-overlay-explain")
        # [ and ] step through running containers and announce the choice
        await pilot.press("right_square_bracket")
        await pilot_wait_for(pilot, lambda: app.selected and pane.container_id in
                             (engine.container("web"), engine.container("db")))


@sync
async def test_reload_on_engine_changed_and_host_terminal(engine):
    async with learn_pane(engine, (100, 30)) as (app, pilot, pane):
        n = pane.loads
        pane.post_message(EngineChanged({"images"}))
        await pilot.pause(0.2)
        assert pane.loads == n  # images do not concern this pane
        pane.post_message(EngineChanged({"containers"}, {engine.container("web")}))
        await pilot_wait_for(pilot, lambda: pane.loads == n + 1)
        await pilot.press("t")
        await pilot_wait_for(pilot, lambda: app.terminals == [("host", None, None)])

    async with learn_pane(engine, (100, 30), read_only=True) as (ro, pilot, _):
        await pilot.press("t")
        await pilot.pause(0.1)
        assert ro.terminals == []


def test_abbrev_cuts_long_ids_only():
    cid = "ab" * 32
    assert abbrev(f"/var/lib/nutshell/containers/{cid}/upper") == \
        f"/var/lib/nutshell/containers/{cid[:12]}…/upper"
    assert abbrev("nutshell0 10.88.0.1") == "nutshell0 10.88.0.1"
