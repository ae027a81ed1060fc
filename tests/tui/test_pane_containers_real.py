"""The Containers pane on real containers (root): the list, the log (search), stop, start,
restart, kill and rm with confirmation, inspect, diff, commit - every action through the
keys, checked against the engine afterwards, each with its command in the history."""

from __future__ import annotations

import asyncio

import pytest

from tests.tui.app_helpers import make_app, pane_of
from tests.tui.real_containers import PREFIX, run, select_container, state
from tests.waiting import pilot_wait_for
from workbench.widgets.jsontree import JsonTree
from workbench.widgets.logview import LogView
from workbench.widgets.table import FilterTable, cell_text

pytestmark = [pytest.mark.tui, pytest.mark.integration]


def commands(app) -> list[str]:
    return [h.command for h in app.history if h.ok]


def test_every_action_on_a_real_container(real_engine):  # noqa: F811
    cid = run(real_engine, "life", ["sh", "-c", "echo one; echo two; echo oops >&2; "
                                    "mkdir /made-here; rm -rf /root; exec sleep 300"],
              stop_timeout=1)  # sleep as PID 1 ignores SIGTERM: do not wait 10 s
    name = f"{PREFIX}-life"

    async def scenario():
        app = make_app(real_engine, panes=["containers"], watch=True)
        async with app.run_test(size=(120, 36)) as pilot:
            pane = await select_container(pilot, app, cid)
            table = pane.query_one("#containers-table", FilterTable)
            assert cell_text(table.row(cid)[4]) == "running"
            view = pane.query_one("#log-view", LogView)
            await pilot_wait_for(pilot, lambda: [t for _, _, t in view.lines] == ["one", "two", "oops"],
                                 what="the log")
            assert view.lines[2][0] == "stderr"
            view.set_search("TWO")
            assert view.matches() == [1]
            # diff and inspect
            await pilot.press("D")
            diff = pane.query_one("#diff-table", FilterTable)
            await pilot_wait_for(pilot, lambda: "/made-here" in dict(diff.rows), what="the diff")
            assert cell_text(diff.row("/root")[0]) == "D"
            await pilot.press("i")
            tree = pane.query_one("#containers-inspect", JsonTree)
            await pilot_wait_for(pilot, lambda: tree.document and tree.document["Id"] == cid)
            # stop, start, restart: the engine's state follows
            await pilot.press("x")
            await pilot_wait_for(pilot, lambda: state(real_engine, cid) == "exited", timeout=20)
            await pilot_wait_for(pilot, lambda: cell_text(table.row(cid)[4]) == "exited",
                                 what="the list shows exited")
            await pilot.press("u")
            await pilot_wait_for(pilot, lambda: state(real_engine, cid) == "running", timeout=20)
            await pilot.press("r")
            await pilot_wait_for(pilot, lambda: f"nutshell restart {name}" in commands(app), timeout=20)
            assert state(real_engine, cid) == "running"
            # commit through the form
            await pilot.press("c")
            await pilot_wait_for(pilot, lambda: type(app.screen).__name__ == "FormScreen")
            await pilot.press(*"nsteach/committed:1", "ctrl+s")
            await pilot_wait_for(pilot, lambda: f"nutshell commit {name} nsteach/committed:1"
                                 in commands(app), timeout=30, what="the commit")
            assert real_engine.image("nsteach/committed:1").id
            # kill (confirmed), then rm (confirmed)
            await pilot.press("K")
            await pilot_wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
            await pilot.press("y")
            await pilot_wait_for(pilot, lambda: state(real_engine, cid) == "exited", timeout=20)
            # the list must have caught up, or rm would (rightly) be rm -f of a running one
            await pilot_wait_for(pilot, lambda: cell_text(table.row(cid)[4]) == "exited",
                                 what="the list shows exited after kill")
            await pilot.press("d")
            await pilot_wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
            await pilot.press("y")
            await pilot_wait_for(pilot, lambda: cid not in pane.items, timeout=20, what="removed")
            for c in (f"nutshell stop {name}", f"nutshell start {name}", f"nutshell kill {name}",
                      f"nutshell rm {name}", f"nutshell diff {name}", f"nutshell inspect {name}"):
                assert c in commands(app), c

    try:
        asyncio.run(scenario())
        assert cid not in {c["Id"] for c in real_engine.ps(all=True)}
    finally:
        try:
            real_engine.rmi(["nsteach/committed:1"])
        except Exception:  # noqa: BLE001
            pass


def test_error_is_the_cli_line(real_engine):  # noqa: F811
    cid = run(real_engine, "done", ["true"])

    async def scenario():
        app = make_app(real_engine, panes=["containers"])
        async with app.run_test(size=(100, 30)) as pilot:
            pane = await pane_of(pilot, app, "containers")
            await pilot_wait_for(pilot, lambda: cid in pane.items and
                                 pane.items[cid]["State"] == "exited" or (pane.reload() and False),
                                 timeout=10)
            pane.query_one("#containers-table", FilterTable).select(cid)
            await pilot_wait_for(pilot, lambda: pane.container_id == cid)
            await pilot.press("K")
            await pilot_wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
            await pilot.press("y")
            await pilot_wait_for(pilot, lambda: any(not h.ok for h in app.history))
            failed = next(h for h in app.history if not h.ok)
            try:
                real_engine.kill(cid)
            except Exception as exc:  # noqa: BLE001 - what the CLI would print
                expected = str(exc)
            assert failed.error == expected
            assert ("error", expected) in app.notifications_seen

    asyncio.run(scenario())
    real_engine.rm(cid, force=True)
