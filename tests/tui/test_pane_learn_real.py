"""The Learn pane on a real container (root): the matrix shows the kernel's inodes, the PID
view the container's PID 1, the overlay view the whiteout it made, the cgroup view its
memory limit and the network view its veth and bridge."""

from __future__ import annotations

import asyncio
import os

import pytest
from textual.widgets import DataTable, Static

from tests.tui.app_helpers import make_app, pane_of
from tests.tui.real_containers import PREFIX, run, select_container
from tests.waiting import pilot_wait_for

pytestmark = [pytest.mark.tui, pytest.mark.integration]


def cells(table, key) -> list[str]:
    return [str(getattr(c, "plain", c)) for c in table.get_row(key)]


def test_teaching_views_of_a_real_container(real_engine):  # noqa: F811
    cid = run(real_engine, "learn", ["sh", "-c", "rm -rf /home; exec sleep 300"],
              network="default", memory=32 * 1024 * 1024, stop_timeout=1)
    pid = real_engine.container_inspect(cid)["State"]["Pid"]

    async def scenario():
        app = make_app(real_engine, panes=["containers", "teaching"])
        async with app.run_test(size=(160, 48)) as pilot:
            await select_container(pilot, app, cid)
            pane = await pane_of(pilot, app, "teaching")
            app.action_show_tab("teaching")
            await pilot_wait_for(pilot, lambda: pane.container_id == cid and "network" in pane.data,
                                 timeout=10, what="the teaching data")
            ns = pane.query_one("#learn-ns-table", DataTable)
            assert cells(ns, "net")[1] == str(os.stat(f"/proc/{pid}/ns/net").st_ino)
            assert cells(ns, "mnt")[3].strip() == "new"
            pids = pane.query_one("#learn-pid-table", DataTable)
            assert cells(pids, str(pid))[:2] == [str(pid), "1"]
            upper = pane.query_one("#learn-overlay-table", DataTable)
            await pilot_wait_for(pilot, lambda: upper.row_count > 0)
            assert cells(upper, "/home")[1] == "deleted (whiteout)"
            cg = pane.query_one("#learn-cgroup-table", DataTable)
            assert "32MiB (33554432)" == cells(cg, "memory")[2]
            link = pane.data["network"].links[0]
            diagram = str(pane.query_one("#learn-net-diagram", Static).render())
            assert f"veth {link.host_veth}" in diagram and f"bridge {link.bridge}" in diagram
            assert f"{PREFIX}-learn" in str(pane.query_one("#learn-header", Static).render())

    asyncio.run(scenario())
    real_engine.rm(cid, force=True)
