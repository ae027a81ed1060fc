"""The app frame on a fake engine: tabs and placeholders, liveness (EngineChanged from the
watcher), keymaps and themes from workbench.toml, help, the command palette, non-priority
palette/quit keys, message routing, read-only."""

from __future__ import annotations

import pytest
from textual.command import CommandPalette

from tests.tui.app_helpers import make_app, screen_text, sync_all
from tests.tui.fakes import FakeEngine
from tests.waiting import pilot_wait_for
from workbench import app as app_module
from workbench.commands import collect
from workbench.config import load_config
from workbench.messages import ContainerSelected, EngineChanged

pytestmark = pytest.mark.tui


async def test_tabs_and_keys():
    app = make_app(FakeEngine(), panes=["images", "layers", "networks"])
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot_wait_for(pilot, lambda: app.pane("images").rows)
        assert [p.id for p in app.panes()] == ["pane-images", "pane-layers", "pane-networks"]
        tabs = app.query_one("#tabs")
        for key, tab in (("2", "tab-layers"), ("4", "tab-networks"), ("1", "tab-images")):
            await pilot.press(key)
            await pilot_wait_for(pilot, lambda: tabs.active == tab, what=tab)
        app.action_show_tab("containers")     # not one of this app's panes: nothing happens
        await pilot.pause()
        assert tabs.active == "tab-images"
        # the focus follows the tab: the images table takes keys again after "1"
        await pilot.press("2", "1")
        await pilot_wait_for(pilot, lambda: app.focused is not None and
                             app.focused.parent.id == "images-table")


async def test_the_collector_is_on_once_the_first_frame_is_drawn():
    """The console script starts the workbench with the cyclic collector off
    (cli.configure_gc); the app turns it on, with the usual thresholds, after its first
    frame, so a long session does collect."""
    import gc

    before = gc.get_threshold()
    gc.disable()
    try:
        app = make_app(FakeEngine(), panes=["images"])
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot_wait_for(pilot, lambda: gc.isenabled(), what="the collector on")
            assert gc.get_threshold()[0] == 700
    finally:
        gc.enable()
        gc.set_threshold(*before)


def test_every_pane_name_has_its_class():
    for name, key, title in app_module.PANES:
        cls = app_module.pane_class(name)
        assert (str(cls.PANE_KEY), cls.PANE_TITLE) == (key, title)


async def test_liveness_reloads_panes_on_engine_changes():
    engine = FakeEngine()
    app = make_app(engine, panes=["images", "networks"], watch=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot_wait_for(pilot, lambda: app.pane("images").rows and app.pane("networks").networks)
        images_calls = len(engine.called("images"))
        net_calls = len(engine.called("networks"))
        # another process tagged an image: the watcher reports "images"
        engine._images[0].repo_tags.append("docker.io/library/other:1")
        engine.watch_queue.put(({"images"}, set()))
        await pilot_wait_for(pilot, lambda: "other:1" in app.pane("images").rows, what="other:1 listed")
        assert app.changes_seen == 1
        assert len(engine.called("images")) == images_calls + 1
        assert len(engine.called("networks")) == net_calls           # networks did not care
        engine.watch_queue.put(({"networks"}, {"abc"}))
        await pilot_wait_for(pilot, lambda: len(engine.called("networks")) == net_calls + 1)
    assert app._watch_thread is None                              # stopped on exit


async def test_keymap_and_theme_from_config(tmp_path):
    (tmp_path / "workbench.toml").write_text(
        'theme = "light"\n[keys]\n"images.pull" = "ctrl+u"\n"app.history" = ["f5", "H"]\n')
    cfg = load_config(str(tmp_path))
    assert cfg.errors == [] and cfg.theme == "nutshell-light"
    app = make_app(FakeEngine(), panes=["images"], config=cfg)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot_wait_for(pilot, lambda: app.pane("images").rows)
        assert app.theme == "nutshell-light"
        await pilot.press("p")
        await pilot.pause()
        assert len(app.screen_stack) == 1           # p no longer pulls
        await pilot.press("ctrl+u")
        await pilot_wait_for(pilot, lambda: len(app.screen_stack) == 2)
        await pilot.press("escape")
        await pilot.press("f5")
        await pilot_wait_for(pilot, lambda: type(app.screen).__name__ == "HistoryScreen")
        await pilot.press("escape")
        await pilot.press("question_mark")
        await pilot_wait_for(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
        text = screen_text(app)
        assert "^u" in text and "images.pull" in text
        await pilot.press("escape")
        await pilot.press("f2")
        assert app.theme == "nutshell-terminal"


async def test_broken_config_is_reported_not_fatal(tmp_path):
    (tmp_path / "workbench.toml").write_text('theme = \n')
    cfg = load_config(str(tmp_path))
    assert cfg.errors and cfg.theme == "nutshell-dark"
    (tmp_path / "workbench.toml").write_text('theme = "no-such-theme"\n[keys]\n"x.y" = 3\n')
    cfg = load_config(str(tmp_path))
    assert "keys.x.y" in cfg.errors[0]
    app = make_app(FakeEngine(), panes=["images"], config=cfg)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot_wait_for(pilot, lambda: app.pane("images").rows)
        assert app.theme == "nutshell-dark"
        warnings = [m for sev, m in app.notifications_seen if sev == "warning"]
        assert any("keys.x.y" in m for m in warnings) and any("no-such-theme" in m for m in warnings)


async def test_palette_offers_every_pane_action_and_runs_it():
    engine = FakeEngine()
    app = make_app(engine, panes=["images", "layers", "networks"])
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot_wait_for(pilot, lambda: app.pane("images").rows)
        titles = [t for t, _, _ in collect(app)]
        for want in ("Images: Pull", "Images: Run", "Images: Remove", "Layers: Wasted space",
                     "Layers: Diff images", "Networks: New network", "Go to Networks", "History", "Help"):
            assert want in titles, want
        await pilot.press("ctrl+p")
        await pilot_wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"new network")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot_wait_for(pilot, lambda: type(app.screen).__name__ == "FormScreen", what="create form")
        assert app.query_one("#tabs").active == "tab-networks"
        await pilot.press("escape")


async def test_read_only_palette_and_footer():
    app = make_app(FakeEngine(), panes=["images", "layers", "networks"], read_only=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot_wait_for(pilot, lambda: app.pane("images").rows)
        titles = [t for t, _, _ in collect(app)]
        assert "Images: Pull" not in titles and "Networks: New network" not in titles
        assert "Layers: Wasted space" in titles and "Images: Layers" in titles
        assert "READ-ONLY" in screen_text(app)


def test_palette_and_quit_are_not_priority_bindings():
    """A focused terminal must receive ctrl+p / ctrl+q (shell history, XON...)."""
    app = make_app(FakeEngine())
    keys = {}
    for key, bindings in app._bindings.key_to_bindings.items():
        for b in bindings:
            keys.setdefault(b.action, []).append((key, b.priority))
    assert ("ctrl+p", False) in keys["command_palette"]
    assert all(not prio for _, prio in keys["command_palette"])
    assert ("ctrl+q", False) in keys["quit"]
    assert all(not prio for _, prio in keys["quit"])


async def test_selection_is_forwarded_to_the_other_panes_only():
    seen: dict[str, list] = {}
    app = make_app(FakeEngine(), panes=["images", "layers", "networks"])
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot_wait_for(pilot, lambda: app.pane("images").rows)
        for pane in app.panes():
            seen[pane.id] = []
            pane.post_message = (lambda p: (lambda m, _orig=p.post_message: (
                seen[p.id].append(m.container_id) if isinstance(m, ContainerSelected) else None,
                _orig(m))[1]))(pane)
        networks = app.pane("networks")
        msg = ContainerSelected("c1" * 32)
        msg._sender = networks
        app.post_message(msg)
        await pilot_wait_for(pilot, lambda: app.selected_container == "c1" * 32)
        await pilot.pause()
        assert seen["pane-images"] == ["c1" * 32]
        assert seen["pane-layers"] == ["c1" * 32]
        assert seen["pane-networks"] == []


async def test_command_history_status_line_and_quit():
    engine = FakeEngine()
    app = make_app(engine, panes=["images"])
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot_wait_for(pilot, lambda: app.pane("images").rows)
        await pilot.press("t", *"z:9", "enter")
        await pilot_wait_for(pilot, lambda: app.history)
        assert "$ nutshell tag localhost/busybox:latest z:9" in screen_text(app).splitlines()[-2]
        engine.fail["tag"] = __import__("core.errors").errors.Conflict("tag z:9 exists")
        await pilot.press("t", *"z:9", "enter")
        await pilot_wait_for(pilot, lambda: len(app.history) == 2)
        assert "(failed)" in screen_text(app).splitlines()[-2]
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


def test_engine_changed_message_contract():
    m = EngineChanged({"images"}, None)
    assert m.kinds == {"images"} and m.ids == set()



async def test_switching_tabs_with_a_filter_open_stays_switched():
    """Regression: hiding a pane whose table had the focus made Textual focus the pane's
    visible filter box, and TabbedContent then switched back to that pane."""
    app = make_app(FakeEngine(), panes=["images", "layers", "containers", "networks"])
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot_wait_for(pilot, lambda: app.pane("images").rows)
        await pilot.press("slash", "b", "u", "enter")
        await pilot.pause()
        steps = [("2", "tab-layers"), ("1", "tab-images"), ("3", "tab-containers"),
                 ("1", "tab-images"), ("4", "tab-networks")]
        for key, tab in steps:
            await pilot.press(key)
            await pilot.pause(0.2)
            assert app.query_one("#tabs").active == tab
            assert app.focused is not None and app.active_pane() in app.focused.ancestors



async def test_lazy_panes_mount_after_the_first_frame_and_get_the_selection():
    engine = FakeEngine()
    app = make_app(engine, panes=["images", "layers", "networks"], lazy=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot_wait_for(pilot, lambda: app.pane("layers") is not None and app.pane("networks") is not None,
                             what="lazy panes mounted")
        images = app.pane("images")
        await pilot_wait_for(pilot, lambda: images.rows)
        await pilot.press("down")                          # me/app:1.0
        await pilot.press("2")
        layers = app.pane("layers")
        await pilot_wait_for(pilot, lambda: layers.tree_data is not None and
                             layers.tree_data.image_id == "sha256:" + "c" * 64, what="selected image")



async def test_a_tab_key_pressed_while_panes_mount_is_not_lost():
    app = make_app(FakeEngine(), panes=["images", "layers", "networks"], lazy=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("4")             # possibly before the Networks pane exists
        await pilot_wait_for(pilot, lambda: app.query_one("#tabs").active == "tab-networks")
        await pilot_wait_for(pilot, lambda: app.focused is not None and
                             app.focused.parent.id == "networks-table", what="focus in Networks")



async def test_a_late_focus_message_does_not_switch_back():
    """Regression: the first pane's start-up focus reached TabbedContent after a tab key had
    switched elsewhere, and the app jumped back to Images."""
    from textual.widgets import TabPane

    app = make_app(FakeEngine(), panes=["images", "layers", "networks"])
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot_wait_for(pilot, lambda: app.pane("images").rows)
        await pilot.press("4")
        await pilot_wait_for(pilot, lambda: app.focused is not None and app.focused.parent.id == "networks-table")
        images_tab = app.query_one("#tab-images", TabPane)
        images_tab.post_message(TabPane.Focused(images_tab))      # stale: focus is elsewhere
        await pilot.pause(0.2)
        assert app.query_one("#tabs").active == "tab-networks"
        # a real focus inside a pane still switches to it (Textual's behaviour kept)
        app.pane("images").query_one("#images-table").focus()
        await pilot_wait_for(pilot, lambda: app.query_one("#tabs").active == "tab-images")



def test_read_only_flag_reaches_the_app_and_leaves_run_alone(monkeypatch):
    import workbench.app
    import workbench.cli as cli

    seen = {}
    monkeypatch.setattr(workbench.app, "run_app",
                        lambda root=None, read_only=False: seen.update(root=root, ro=read_only) or 0)
    assert cli.main(["--root", "/tmp/x", "--read-only"]) == 0
    assert seen == {"root": "/tmp/x", "ro": True}
    assert cli.main([]) == 0 and seen["ro"] is False
    # `run --read-only` is still the container's read-only rootfs flag
    args = cli.build_parser().parse_args(["run", "--read-only", "busybox"])
    assert args.read_only is True and args.app_read_only is False




async def test_a_selection_settles_across_containers_and_stats():
    """Choosing a container in one pane while another pane's table is still announcing
    its own first row must settle on the choice: a highlight that is stale by the time it
    is handled is ignored (it used to make the Containers and Stats panes flip-flop)."""
    from workbench.widgets.table import FilterTable

    engine = FakeEngine()
    app = make_app(engine, panes=["containers", "stats"])
    async with app.run_test(size=(140, 40)) as pilot:
        containers, stats = app.pane("containers"), app.pane("stats")
        await pilot_wait_for(pilot, lambda: containers.items and stats.series, what="both lists")
        announced: list = []
        original = app.on_container_selected

        def spy(message):
            if not getattr(message, "_nutshell_forwarded", False):
                announced.append(message.container_id)
            original(message)

        app.on_container_selected = spy
        table = containers.query_one("#containers-table", FilterTable)
        ids = [k for k, _ in table.rows]
        assert len(ids) >= 2
        for target in (ids[1], ids[0], ids[1]):  # quick changes, messages still in flight
            table.select(target)
            await pilot.pause(0)
        await pilot_wait_for(pilot, lambda: containers.container_id == ids[1] == stats.container_id
                             == app.selected_container, what="the choice everywhere")
        # a highlight that arrives after the cursor moved on is ignored by both panes
        from workbench.widgets.linetable import LineTable

        stale_stats = LineTable.Highlighted(stats.query_one("#stats-table", LineTable), ids[0])
        stats.post_message(stale_stats)
        containers.post_message(FilterTable.Highlighted(table, ids[0]))
        await pilot.pause(0.3)
        assert containers.container_id == ids[1] == stats.container_id
        await pilot.pause(1.5)  # a few stats samples later, still there, and quiet
        settled = len(announced)
        await pilot.pause(1.0)
        assert containers.container_id == stats.container_id == app.selected_container == ids[1]
        assert len(announced) == settled, announced[settled:]




@pytest.mark.parametrize("name", ["nutshell-dark", "nutshell-light", "nutshell-terminal", "nord"])
async def test_start_theme_matches_the_public_theme_path(name):
    """The app applies its configured theme at start without Textual's stylesheet reparse
    (NutshellApp._start_with_theme, private Textual calls): what it leaves must be what
    ``app.theme = name`` leaves, so a Textual upgrade that changes the watcher fails here."""
    from workbench.config import WorkbenchConfig

    app = make_app(FakeEngine(), panes=["images"], config=WorkbenchConfig(theme=name))

    def state():
        bg = app.screen.styles.background
        return (app.theme, sorted(c for c in app.classes if "theme" in c or "mode" in c),
                app.get_css_variables(), [type(f).__name__ for f in app._filters], bg.rgb)

    async with app.run_test(size=(100, 30)) as pilot:
        await pilot_wait_for(pilot, lambda: app.pane("images").rows)
        at_start = state()
        app.theme = "textual-dark" if name != "textual-dark" else "nord"
        await pilot.pause()
        app.theme = name
        await pilot.pause()
        await pilot.pause()
        assert state() == at_start



async def test_footer_rebuilds_only_when_its_keys_change():
    """A tab switch moves the focus more than once; Textual's Footer rebuilt all its keys
    each time. KeyFooter rebuilds when what it shows differs, and shows the new keys."""
    from workbench.widgets.footer import KeyFooter

    app = make_app(FakeEngine(), panes=["images", "layers", "networks"])
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot_wait_for(pilot, lambda: app.pane("images").rows)
        footer = app.query_one(KeyFooter)
        await pilot.pause()
        count = {"n": 0}
        real = footer.recompose

        async def counting():
            count["n"] += 1
            await real()

        footer.recompose = counting
        shown = footer._shown
        app.refresh_bindings()               # nothing changed: no rebuild
        await pilot.pause()
        await pilot.pause()
        assert count["n"] == 0 and footer._shown == shown
        await pilot.press("4")               # the networks pane: other keys
        await pilot_wait_for(pilot, lambda: app.query_one("#tabs").active == "tab-networks")
        await pilot.pause()
        await pilot.pause()
        assert 1 <= count["n"] <= 2
        assert footer._shown != shown
        keys = {k.action for k in footer.query("FooterKey")} - {"command_palette"}
        want = {b.action for (_n, b, _e, _t) in app.screen.active_bindings.values() if b.show}
        assert keys == want



async def test_fetch_applies_the_newest_result_and_reports_failures():
    """Pane.fetch runs on the loop's executor (no Worker): a newer fetch of a group drops an
    older result still running, a failure goes to ``failed`` (or a notification), and an
    exception in ``apply`` is shown, not lost on the loop's stderr."""
    import threading

    app = make_app(FakeEngine(), panes=["images"])
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.pane("images")
        release = threading.Event()
        applied, failures = [], []
        pane.fetch(lambda: (release.wait(10), "old")[1], applied.append, group="t")
        pane.fetch(lambda: "new", applied.append, group="t")
        await pilot_wait_for(pilot, lambda: applied == ["new"], what="the newer result")
        release.set()
        await pilot.pause(0.2)
        assert applied == ["new"]                       # the older one was dropped

        def boom():
            raise RuntimeError("no such thing")

        pane.fetch(boom, applied.append, group="t", failed=failures.append)
        await pilot_wait_for(pilot, lambda: failures, what="the failure")
        assert isinstance(failures[0], RuntimeError) and applied == ["new"]

        def bad_apply(result):
            raise ValueError("apply broke")

        pane.fetch(lambda: 1, bad_apply, group="u")
        await pilot_wait_for(pilot, lambda: any("apply broke" in str(n.message)
                                                for n in app._notifications),
                             what="the apply error notified")


sync_all(globals())
