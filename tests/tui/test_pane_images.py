"""Images pane on a fake engine: list, filter, details, pull/load/tag/rm/push/run, errors,
read-only. (tests/tui/test_app_integration.py runs the same actions on a real store.)"""

from __future__ import annotations

import pytest

from core.errors import NotFound
from tests.tui.app_helpers import app_running, fill_form, screen_text, sync_all
from tests.tui.fakes import FIXED_NOW
from tests.waiting import pilot_wait_for
from workbench.panes import base
from workbench.widgets.progress import ProgressPanel
from workbench.widgets.table import FilterTable

pytestmark = pytest.mark.tui


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(base, "CLOCK", lambda: FIXED_NOW)


async def _started(pilot, app):
    await pilot_wait_for(pilot, lambda: app.pane("images").rows, what="images listed")
    await pilot_wait_for(pilot, lambda: "tags" in str(app.query_one("#image-info").render()), what="details")
    return app.pane("images")


async def test_lists_images_one_row_per_tag(engine):
    async with app_running(engine, ["images"], _started) as (app, pilot, pane):
        assert list(pane.rows) == ["localhost/busybox:latest", "me/app:1.0", "me/app:latest", "dddddddddddd"]
        text = screen_text(app)
        assert "localhost/busybox" in text and "<none>" in text and "4.2MB" in text
        assert "2 hours ago" in text         # 12:00Z vs the fixed clock
        # details: history of the selected image, with the empty CMD layer
        assert "CMD [\"sh\"]" in text and "ADD layer0 /" in text


async def test_filter_and_details_follow_the_cursor(engine):
    async with app_running(engine, ["images"], _started) as (app, pilot, pane):
        await pilot.press("slash", *"app")
        await pilot_wait_for(pilot, lambda: pane.table.shown_keys == ["me/app:1.0", "me/app:latest"])
        await pilot.press("enter")      # back to the table
        await pilot_wait_for(pilot, lambda: "entrypoint /app/server" in str(app.query_one("#image-info").render()))
        assert "8080/tcp" in str(app.query_one("#image-info").render())
        await pilot.press("escape")     # clears the filter
        await pilot_wait_for(pilot, lambda: len(pane.table.shown_keys) == 4)


async def test_pull_shows_layer_progress_and_records_the_command(engine):
    async with app_running(engine, ["images"], _started) as (app, pilot, pane):
        await pilot.press("p")
        await pilot.press(*"alpine:3")
        await pilot.press("enter")
        await pilot_wait_for(pilot, lambda: engine.called("pull"), what="pull called")
        panel = app.query_one(ProgressPanel)
        await pilot_wait_for(pilot, lambda: set(panel.items) == {"aaaaaaaaaaaa", "bbbbbbbbbbbb"}, what="bars")
        await pilot_wait_for(pilot, lambda: "alpine:3" in pane.rows, what="pulled image listed")
        assert engine.called("pull")[0].args == ("alpine:3",)
        assert [h.command for h in app.history] == ["nutshell pull alpine:3"]
        assert panel.events_seen == 8
        assert "$ nutshell pull alpine:3" in screen_text(app)


async def test_pull_with_tls_off(engine):
    async with app_running(engine, ["images"], _started) as (app, pilot, pane):
        await fill_form(pilot, "p", submit=None, ref="reg:5000/x:1")
        await pilot.press("tab", "space", "ctrl+s")
        await pilot_wait_for(pilot, lambda: app.history)
        assert engine.called("pull")[0].kwargs == {"insecure": True}
        assert app.history[0].command == "nutshell pull --tls-verify=false reg:5000/x:1"


async def test_errors_are_the_cli_one_liner(engine):
    engine.fail["pull"] = NotFound("manifest unknown: nosuch:latest")
    async with app_running(engine, ["images"], _started) as (app, pilot, pane):
        await fill_form(pilot, "p", ref="nosuch")
        await pilot_wait_for(pilot, lambda: app.history)
        assert not app.history[0].ok
        assert app.history[0].error == "manifest unknown: nosuch:latest"
        assert ("error", "manifest unknown: nosuch:latest") in app.notifications_seen


async def test_tag(engine):
    async with app_running(engine, ["images"], _started) as (app, pilot, pane):
        await pilot.press("t", *"mine:2", "enter")
        await pilot_wait_for(pilot, lambda: "mine:2" in pane.rows, what="new tag listed")
        assert engine.called("tag")[0].args == ("localhost/busybox:latest", "mine:2")
        assert app.history[0].command == "nutshell tag localhost/busybox:latest mine:2"


async def test_remove_asks_first(engine):
    async with app_running(engine, ["images"], _started) as (app, pilot, pane):
        await pilot.press("down")            # me/app:1.0
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("n")               # declined: nothing happens
        await pilot.pause()
        assert not engine.called("rmi")
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await pilot_wait_for(pilot, lambda: engine.called("rmi"))
        assert engine.called("rmi")[0].args == (["me/app:1.0"],)
        assert engine.called("rmi")[0].kwargs == {"force": False}
        await pilot_wait_for(pilot, lambda: "me/app:1.0" not in pane.rows)
        await pilot.press("D", "y")          # force remove
        await pilot_wait_for(pilot, lambda: len(engine.called("rmi")) == 2)
        assert engine.called("rmi")[1].kwargs == {"force": True}
        assert [h.command.split()[:3] for h in app.history][-1] == ["nutshell", "rmi", "-f"]


async def test_check_shows_the_findings_then_offers_the_repair(engine):
    async with app_running(engine, ["images"], _started) as (app, pilot, pane):
        await pilot.press("C")
        await pilot_wait_for(pilot, lambda: "bin/sh is missing" in screen_text(app), what="findings")
        text = screen_text(app)
        assert "2 found, 0 repaired, 2 remaining" in text and "pull or load me/app:1.0 again" in text
        assert engine.called("system_check")[0].kwargs == {"repair": False}
        await pilot.press("escape")                      # closes the findings: repair 1?
        await pilot_wait_for(pilot, lambda: "Repair 1 problem?" in screen_text(app), what="offer")
        await pilot.press("y")
        await pilot_wait_for(pilot, lambda: len(engine.called("system_check")) == 2, what="repair")
        assert engine.called("system_check")[1].kwargs == {"repair": True}
        await pilot_wait_for(pilot, lambda: "unpacked it again" in screen_text(app), what="result")
        assert "1 repaired, 1 remaining" in screen_text(app)
        assert [h.command for h in app.history][-2:] == ["nutshell system check",
                                                         "nutshell system check --repair"]
        await pilot.press("escape")                      # no second offer after a repair
        await pilot.pause()
        assert [type(s).__name__ for s in app.screen_stack][1:] == []


async def test_push_to_another_destination(engine):
    async with app_running(engine, ["images"], _started) as (app, pilot, pane):
        await fill_form(pilot, "P", dest="127.0.0.1:5000/bb:1")
        await pilot_wait_for(pilot, lambda: app.history)
        assert engine.called("push")[0].args == ("localhost/busybox:latest", "127.0.0.1:5000/bb:1")
        assert app.history[0].command == "nutshell push localhost/busybox:latest 127.0.0.1:5000/bb:1"


async def test_load_an_archive(engine):
    async with app_running(engine, ["images"], _started) as (app, pilot, pane):
        await fill_form(pilot, "l", submit="enter", path="/tmp/x.tar")
        await pilot_wait_for(pilot, lambda: "loaded:latest" in pane.rows)
        assert engine.called("load")[0].args == ("/tmp/x.tar",)
        assert app.history[0].command == "nutshell load -i /tmp/x.tar"


async def test_run_form_builds_the_cli_options(engine):
    from workbench.cli import build_parser
    from workbench.runopts import run_options

    async with app_running(engine, ["images"], _started) as (app, pilot, pane):
        await fill_form(pilot, "r", submit=None, name="web", command="httpd -f -p 80",
                        env="A=1 'B=two words'", ports="8080:80", memory="64m", cpus="0.5", rm=True)
        form = app.screen
        await pilot.pause()
        preview = str(form.query_one("#form-preview").render())
        assert "nutshell run -d --rm --name web -e A=1 -e 'B=two words' -p 8080:80 -m 64m" in preview
        await pilot.press("ctrl+s")
        await pilot_wait_for(pilot, lambda: engine.called("start"))
        argv = ["run", "-d", "--rm", "--name", "web", "-e", "A=1", "-e", "B=two words", "-p", "8080:80",
                "-m", "64m", "--cpus", "0.5", "localhost/busybox:latest", "httpd", "-f", "-p", "80"]
        expected = run_options(build_parser(("containers",), only_verb="run").parse_args(argv))
        assert engine.called("create")[0].args[0] == expected
        assert expected.memory == 64 << 20 and expected.cpus == 0.5 and expected.auto_remove
        assert app.history[0].command == "nutshell " + " ".join(
            a if " " not in a else f"'{a}'" for a in argv)
        assert app.opened_terminals == []     # detached


async def test_run_form_keeps_the_command_and_buttons_in_view_on_a_short_terminal(engine):
    """On 24 rows the fields scroll, but the command preview and the buttons stay on screen
    (they used to scroll away below the fields)."""
    async with app_running(engine, ["images"], _started, size=(100, 24)) as (app, pilot, pane):
        await fill_form(pilot, "r", submit=None, name="web", command="sleep 300")
        await pilot.pause()
        form = app.screen
        screen = app.screen.region
        for ident in ("#form-preview", "#form-ok", "#field-command"):
            widget = form.query_one(ident)
            assert screen.contains_region(widget.region) and widget.region.height, ident
        assert "sleep 300" in str(form.query_one("#form-preview").render())


async def test_run_interactive_opens_an_attached_terminal(engine):
    async with app_running(engine, ["images"], _started) as (app, pilot, pane):
        await fill_form(pilot, "r", submit=None, mode="it")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot_wait_for(pilot, lambda: app.opened_terminals)
        assert app.opened_terminals == [("attach", "9" * 64, "999999999999")]
        assert app.history[0].command == "nutshell run -it localhost/busybox:latest"
        # no Terminals pane in this app: the user is told so
        assert any("Terminals pane is not available" in m for _, m in app.notifications_seen)


async def test_run_form_rejects_bad_flags(engine):
    async with app_running(engine, ["images"], _started) as (app, pilot, pane):
        await fill_form(pilot, "r", memory="lots")
        await pilot.pause()
        assert "invalid value 'lots' for --memory" in str(app.screen.query_one("#form-error").render())
        assert not engine.called("create")
        await pilot.press("escape")


async def test_enter_selects_the_image_for_layers(engine):
    async with app_running(engine, ["images", "layers"], _started) as (app, pilot, pane):
        await pilot.press("down", "enter")
        await pilot_wait_for(pilot, lambda: app.query_one("#tabs").active == "tab-layers")
        layers = app.pane("layers")
        await pilot_wait_for(pilot, lambda: layers.tree_data is not None and
                             layers.tree_data.image_id == "sha256:" + "c" * 64, what="layers of me/app")


async def test_read_only_hides_and_refuses_changes(engine):
    async with app_running(engine, ["images"], _started, read_only=True) as (app, pilot, pane):
        for key in ("p", "l", "t", "d", "P", "r"):
            await pilot.press(key)
            await pilot.pause()
            assert len(app.screen_stack) == 1, key
        text = screen_text(app)
        assert "READ-ONLY" in text
        assert "Pull" not in text.splitlines()[-1] and "Filter" in text.splitlines()[-1]
        assert not [c for c in engine.calls if c.name in ("pull", "tag", "rmi", "create", "load", "push")]


async def test_history_screen_lists_and_copies(engine):
    async with app_running(engine, ["images"], _started) as (app, pilot, pane):
        await pilot.press("t", *"a:1", "enter")
        await pilot_wait_for(pilot, lambda: app.history)
        await pilot.press("t", *"b:2", "enter")
        await pilot_wait_for(pilot, lambda: len(app.history) == 2)
        copied = []
        app.copy_to_clipboard = copied.append
        await pilot.press("H")
        await pilot.pause()
        table = app.screen.query_one(FilterTable)
        assert table.shown_keys == ["2", "1"]           # newest first
        await pilot.press("enter")
        assert copied == ["nutshell tag localhost/busybox:latest b:2"]
        await pilot.press("a")
        assert copied[-1] == ("nutshell tag localhost/busybox:latest a:1\n"
                              "nutshell tag localhost/busybox:latest b:2\n")
        await pilot.press("escape")
        assert len(app.screen_stack) == 1


sync_all(globals())
