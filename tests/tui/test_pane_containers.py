"""The Containers pane against a fake Engine (Pilot): the list, selection in step, every
action with its equivalent command (confirmations for kill and rm, the commit form), exec
and attach as OpenTerminal, the log view (search, next match, tail/since, follow), inspect
and diff, errors as notifications, and read-only mode."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Static

from core.errors import Conflict
from tests.tui.app_helpers import pane_alone, sync
from tests.waiting import pilot_wait_for
from workbench.messages import ContainerSelected, EngineChanged
from workbench.panes.containers import ContainersPane
from workbench.widgets.jsontree import JsonTree
from workbench.widgets.logview import LogView
from workbench.widgets.table import FilterTable, cell_text

pytestmark = pytest.mark.tui


async def started(pilot, app) -> ContainersPane:
    pane = app.pane
    await pilot_wait_for(pilot, lambda: pane.loads >= 1 and pane.container_id is not None)
    await pilot_wait_for(pilot, lambda: isinstance(app.focused, type(pane.query_one(
        "#containers-table", FilterTable).table)))
    return pane


def containers_pane(engine, size=(120, 36), read_only=False):
    """The pane alone on ``engine``, started: ``async with`` gives (app, pilot, pane)."""
    return pane_alone(lambda: ContainersPane(engine, read_only=read_only, id="containers"), size, started)


def log_view(pane) -> LogView:
    return pane.query_one("#log-view", LogView)


@sync
async def test_list_selection_and_logs(engine):
    async with containers_pane(engine) as (app, pilot, pane):
        table = pane.query_one("#containers-table", FilterTable)
        web, db, old = (engine.container(n) for n in ("web", "db", "old"))
        assert [cell_text(c) for c in table.row(web)] == [
            "web", web[:12], "localhost/busybox:latest", "httpd -f -p 80", "running",
            "Up 5 minutes", "0.0.0.0:8080->80/tcp"]
        assert cell_text(table.row(old)[4]) == "exited"
        # the highlighted container is announced to the other panes, its log follows
        assert app.selected[-1] == web
        await pilot_wait_for(pilot, lambda: len(log_view(pane).lines) == 30)
        assert engine.has_call("logs", web, follow=True, tail=200, since=None)
        assert "following" in str(pane.query_one("#log-state", Static).render())
        # moving the cursor switches container (and log)
        await pilot.press("down")
        await pilot_wait_for(pilot, lambda: app.selected[-1] == db)
        await pilot_wait_for(pilot, lambda: log_view(pane).lines and
                             log_view(pane).lines[0][2] == "line 1 from db")
        # another pane's selection moves the cursor, without an echo
        n = len(app.selected)
        pane.post_message(ContainerSelected(old))
        await pilot_wait_for(pilot, lambda: table.selected_key == old)
        await pilot.pause(0.1)
        assert len(app.selected) == n
        # EngineChanged reloads the list
        engine.start("old")
        loads = pane.loads
        pane.post_message(EngineChanged({"containers"}, {old}))
        await pilot_wait_for(pilot, lambda: pane.loads > loads and
                             cell_text(table.row(old)[4]) == "running")


@sync
async def test_log_search_highlight_tail_since_and_follow(engine):
    async with containers_pane(engine) as (app, pilot, pane):
        view = log_view(pane)
        await pilot_wait_for(pilot, lambda: len(view.lines) == 30)
        # "/" in the list filters the list; in the log it searches the log
        view.focus()
        await pilot.press("slash")
        assert app.focused is pane.query_one("#log-search", Input)
        await pilot.press(*"error")
        assert view.search == "error" and view.matches() == [4, 20]
        assert view.current == 20  # the newest match first
        assert "2 matches" in str(pane.query_one("#log-state", Static).render())
        # the match is drawn highlighted (case-insensitive)
        line = view.render_line(20 - int(view.scroll_offset.y))
        assert any(seg.text.lower() == "error" and seg.style and seg.style.bgcolor
                   for seg in line._segments)
        await pilot.press("enter")  # next match wraps to the first
        assert view.current == 4
        await pilot.press("escape")
        assert app.focused is view
        await pilot.press("N")
        assert view.current == 20
        # --tail and --since, as the CLI takes them
        tail = pane.query_one("#log-tail", Input)
        tail.value = "5"
        since = pane.query_one("#log-since", Input)
        since.value = "10m"
        since.focus()
        await pilot.press("enter")
        web = engine.container("web")
        await pilot_wait_for(pilot, lambda: engine.has_call("logs", web, follow=True, tail=5, since="10m"))
        await pilot_wait_for(pilot, lambda: len(view.lines) == 5)
        assert ("nutshell logs -f --tail 5 --since 10m web", True, None) in app.commands
        # stop following: the reader ends
        view.focus()
        await pilot.press("f")
        await pilot_wait_for(pilot, lambda: not pane.log_running)
        assert "stopped" in str(pane.query_one("#log-state", Static).render())
        # hidden panes do not follow
        await pilot.press("f")
        await pilot_wait_for(pilot, lambda: pane.log_running)
        # following again resumes from now on: what was shown stays
        assert ("nutshell logs -f --tail 0 web", True, None) in app.commands
        assert len(view.lines) == 5
        pane.display = False
        await pilot_wait_for(pilot, lambda: not pane.log_running)


@sync
async def test_inspect_and_diff_views(engine):
    async with containers_pane(engine, (100, 30)) as (app, pilot, pane):
        web = engine.container("web")
        await pilot.press("i")
        tree = pane.query_one("#containers-inspect", JsonTree)
        await pilot_wait_for(pilot, lambda: tree.document is not None)
        assert tree.document["Id"] == web
        labels = [str(n.label.plain) for n in tree.root.children]
        assert "Name: \"/web\"" in labels and "State {4}" in labels
        assert ("nutshell inspect web", True, None) in app.commands
        await pilot.press("D")
        diff = pane.query_one("#diff-table", FilterTable)
        await pilot_wait_for(pilot, lambda: len(diff.rows) == 4)
        assert [cell_text(c) for c in diff.row("/home")] == ["D", "/home", "deleted"]
        assert [cell_text(c) for c in diff.row("/newdir")] == ["A", "/newdir", "added"]
        assert "1 added, 2 changed, 1 deleted" in str(
            pane.query_one("#containers-diff-note", Static).render())
        assert ("nutshell diff web", True, None) in app.commands


@sync
async def test_lifecycle_actions_confirmations_and_errors(engine):
    async with containers_pane(engine) as (app, pilot, pane):
        web = engine.container("web")
        await pilot.press("x")
        await pilot_wait_for(pilot, lambda: ("nutshell stop web", True, None) in app.commands)
        assert engine.has_call("stop", web)
        await pilot.press("u")
        await pilot_wait_for(pilot, lambda: ("nutshell start web", True, None) in app.commands)
        await pilot.press("r")
        await pilot_wait_for(pilot, lambda: ("nutshell restart web", True, None) in app.commands)
        # p pauses a running container and unpauses a paused one
        await pilot.press("p")
        await pilot_wait_for(pilot, lambda: ("nutshell pause web", True, None) in app.commands)
        await pilot_wait_for(pilot, lambda: pane.items[web].get("State") == "paused")
        await pilot.press("p")
        await pilot_wait_for(pilot, lambda: ("nutshell unpause web", True, None) in app.commands)
        assert engine.has_call("pause", web) and engine.has_call("unpause", web)
        # kill asks first; "n" keeps the container
        await pilot.press("K")
        await pilot_wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("n")
        await pilot.pause(0.1)
        assert not engine.called("kill")
        await pilot.press("K")
        await pilot_wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await pilot_wait_for(pilot, lambda: ("nutshell kill web", True, None) in app.commands)
        assert engine.has_call("kill", web, "KILL")
        # an engine error: the CLI's line as a notification, and in the history
        engine.fail["start"] = Conflict("cannot start: the image is gone")
        await pilot.press("u")
        await pilot_wait_for(pilot, lambda: any(n.message == "cannot start: the image is gone"
                                                 for n in app._notifications))
        assert ("nutshell start web", False, "cannot start: the image is gone") in app.commands
        # rm of a running container is rm -f, after a confirmation
        db = engine.container("db")
        pane.query_one("#containers-table", FilterTable).select(db)
        await pilot_wait_for(pilot, lambda: pane.container_id == db)
        await pilot.press("d")
        await pilot_wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        assert "RUNNING" in str(app.screen.query_one("#confirm-question", Static).render())
        await pilot.press("y")
        await pilot_wait_for(pilot, lambda: ("nutshell rm -f db", True, None) in app.commands)
        assert engine.has_call("rm", db, force=True) and db not in engine.containers
        await pilot_wait_for(pilot, lambda: db not in dict(
            pane.query_one("#containers-table", FilterTable).rows))


@sync
async def test_commit_form_exec_attach(engine):
    async with containers_pane(engine) as (app, pilot, pane):
        web = engine.container("web")
        await pilot.press("c")
        await pilot_wait_for(pilot, lambda: type(app.screen).__name__ == "FormScreen")
        await pilot.press(*"snap:v1", "tab", *"added", "space", *"notes")
        preview = str(app.screen.query_one("#form-preview", Static).render())
        assert preview == "$ nutshell commit -m 'added notes' web snap:v1"
        await pilot.press("ctrl+s")
        await pilot_wait_for(pilot, lambda: engine.called("commit"))
        call = engine.called("commit")[0]
        assert call.args == (web, "snap:v1") and call.kwargs["message"] == "added notes"
        await pilot_wait_for(pilot, lambda: (preview[2:], True, None) in app.commands)
        await pilot.press("e")
        await pilot.press("a")
        await pilot_wait_for(pilot, lambda: app.terminals == [("exec", web, None),
                                                               ("attach", web, None)])


@sync
async def test_read_only_hides_mutating_actions(engine):
    async with containers_pane(engine, read_only=True) as (app, pilot, pane):
        for key in ("x", "u", "r", "K", "d", "c", "e", "a"):
            await pilot.press(key)
        await pilot.pause(0.2)
        assert type(app.screen).__name__ not in ("ConfirmScreen", "FormScreen")
        assert not [c for c in engine.calls
                    if c.name in ("start", "stop", "restart", "kill", "rm", "commit")]
        assert app.terminals == []
        # the footer shows none of them (check_action hides them)
        shown = {key for key, b in app.screen.active_bindings.items() if b.binding.show}
        assert "l" in shown and "i" in shown
        assert not shown & {"u", "x", "r", "K", "d", "c", "e", "a"}
        # the views still work
        await pilot.press("i")
        await pilot_wait_for(pilot, lambda: pane.query_one("#containers-inspect", JsonTree).document)


def _compose(engine, cid: str, project: str, service: str, number: int = 1) -> None:
    engine.containers[cid]["Labels"] = {"com.docker.compose.project": project,
                                        "com.docker.compose.service": service,
                                        "com.docker.compose.container-number": str(number)}


def test_compose_groups_order_and_tree():
    from workbench.panes.containers import compose_groups

    def c(name, project=None, service=None, number=1):
        labels = ({"com.docker.compose.project": project, "com.docker.compose.service": service,
                   "com.docker.compose.container-number": str(number)} if project else {})
        return {"Id": name, "Labels": labels}

    items = [c("solo"), c("p_web_1", "p", "web"), c("q_db_1", "q", "db"), c("p_api_2", "p", "api", 2),
             c("p_api_1", "p", "api"), c("other")]
    assert [(i["Id"], g) for i, g in compose_groups(items)] == [
        ("p_api_1", "p ┬ api"), ("p_api_2", "  ├ api #2"), ("p_web_1", "  └ web"),
        ("q_db_1", "q ─ db"), ("solo", ""), ("other", "")]


@sync
async def test_compose_containers_are_grouped_by_project_and_service(engine):
    async with containers_pane(engine) as (app, pilot, pane):
        table = pane.query_one("#containers-table", FilterTable)
        assert [c.key for c in table.columns][0] == "name"        # no Compose project: no column
        web, db = engine.container("web"), engine.container("db")
        _compose(engine, web, "shop", "web")
        _compose(engine, db, "shop", "db")
        pane.reload()
        await pilot_wait_for(pilot, lambda: table.columns[0].key == "compose" and table.row(web)
                             and len(table.row(web)) == 8)
        assert table.shown_keys[:2] == [db, web]
        assert cell_text(table.row(db)[0]) == "shop ┬ db"
        assert cell_text(table.row(web)[0]) == "     └ web"
        assert cell_text(table.row(web)[1]) == "web"
        for cid in (web, db):
            engine.containers[cid]["Labels"] = {}
        pane.reload()
        await pilot_wait_for(pilot, lambda: table.columns[0].key == "name" and len(table.row(web)) == 7)
