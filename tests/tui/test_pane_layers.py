"""Layers pane on a fake engine: layer list with wasted space, per-layer and merged trees with
their marks, changes-only, sort by size, path filter, file content, wasted list, image diff."""

from __future__ import annotations

import pytest

from tests.tui.app_helpers import app_running, fill_form, make_app, screen_text, show, sync_all
from tests.tui.fakes import FIXED_NOW
from tests.waiting import pilot_wait_for
from workbench.messages import ImageSelected
from workbench.panes import base
from workbench.widgets.filetree import FileTree
from workbench.widgets.table import FilterTable

pytestmark = pytest.mark.tui

APP = "sha256:" + "c" * 64


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(base, "CLOCK", lambda: FIXED_NOW)


async def _layers_of_app(pilot, app):
    pane = await show(pilot, "layers")
    pane.post_message(ImageSelected(APP))
    await pilot_wait_for(pilot, lambda: pane.tree_data is not None and pane.tree_data.image_id == APP,
                         what="tree of me/app")
    await pilot_wait_for(pilot, lambda: pane.query_one("#layer-table", FilterTable).shown_keys[:1] == ["merged"])
    return pane


async def test_layer_list_and_wasted_summary(engine):
    async with app_running(engine, ["layers"], _layers_of_app) as (app, pilot, pane):
        table = pane.query_one("#layer-table", FilterTable)
        assert table.shown_keys == ["merged", "0", "1", "2"]
        # layer 0: old.so (50kB) deleted by layer 2, passwd (120) overwritten by 1;
        # layer 1: server (2MB) overwritten by layer 2
        tree = pane.tree_data
        assert [lc.wasted for lc in tree.layers] == [50_120, 2_000_000, 0]
        text = screen_text(app)
        assert "wasted 2.05MB" in text
        assert "COPY server config.json /app/" in text


async def test_per_layer_changes_merged_and_toggles(engine):
    async with app_running(engine, ["layers"], _layers_of_app) as (app, pilot, pane):
        tree = pane.query_one(FileTree)
        # merged view: old.so is gone
        assert "usr/lib/old.so" not in pane.current_entries()
        await pilot.press("down", "down", "down")       # layer 2
        await pilot_wait_for(pilot, lambda: pane.layer_key == "2")
        entries = pane.current_entries()
        assert entries["usr/lib/old.so"].status == "deleted"
        assert entries["app/server"].status == "modified"
        assert entries["tmp"].status == "added"
        tree.reveal("usr/lib/old.so")
        await pilot.pause()
        label = str(tree.cursor_node.label)
        assert label.startswith("- old.so") and "whiteout" in label
        # merged up to layer 2 (aggregated): everything, marks relative to layer 2
        await pilot.press("m")
        entries = pane.current_entries()
        assert entries["bin/busybox"].status == "unchanged"
        assert entries["app/server"].status == "modified"
        assert entries["usr/lib/old.so"].status == "deleted"
        # changes only
        await pilot.press("c")
        assert "bin/busybox" not in pane.current_entries()
        assert "app/server" in pane.current_entries()
        await pilot.press("c", "m")
        assert "m" not in pane.classes


async def test_sort_by_size_and_path_filter(engine):
    async with app_running(engine, ["layers"], _layers_of_app) as (app, pilot, pane):
        tree = pane.query_one(FileTree)
        assert tree.visible_paths()[:4] == ["app", "bin", "etc", "tmp"]     # by name
        await pilot.press("o")
        assert tree.visible_paths()[:2] == ["app", "bin"]                   # 2.1MB, 1.1MB
        assert tree.visible_paths()[2] == "usr"                              # 400kB before etc
        await pilot.press("f", *"pass")
        await pilot_wait_for(pilot, lambda: pane.path_filter == "pass")
        assert tree.visible_paths() == ["etc", "etc/passwd"]
        await pilot.press("escape")
        await pilot_wait_for(pilot, lambda: pane.path_filter == "")
        assert "-filtering" not in pane.classes


async def test_view_a_file_text_and_binary(engine):
    async with app_running(engine, ["layers"], _layers_of_app) as (app, pilot, pane):
        tree = pane.query_one(FileTree)
        tree.focus()
        assert tree.reveal("etc/passwd")
        await pilot.pause()
        await pilot.press("enter")
        await pilot_wait_for(pilot, lambda: len(app.screen_stack) == 2, what="viewer")
        text = app.screen.query_one("TextArea").text
        assert text.startswith("root:x:0:0")
        assert engine.called("image_file")[-1].args == (APP, "etc/passwd")
        await pilot.press("escape")
        await pilot.pause()
        assert tree.reveal("app/server")
        await pilot.pause()
        await pilot.press("v")
        await pilot_wait_for(pilot, lambda: len(app.screen_stack) == 2, what="viewer")
        assert app.screen.query_one("TextArea").text.startswith("00000000  00 01 02 03")
        assert "binary" in screen_text(app)
        await pilot.press("escape")


async def test_wasted_list(engine):
    async with app_running(engine, ["layers"], _layers_of_app) as (app, pilot, pane):
        await pilot.press("w")
        await pilot_wait_for(pilot, lambda: len(app.screen_stack) == 2)
        table = app.screen.query_one(FilterTable)
        rows = [[str(c) for c in cells] for _, cells in table.rows]
        assert rows[0][:5] == ["2MB", "/app/server", "1", "2", "overwritten"]
        assert ["50kB", "/usr/lib/old.so", "0", "2", "deleted"] in [r[:5] for r in rows]
        assert ["120B", "/etc/passwd", "0", "1", "overwritten"] in [r[:5] for r in rows]
        await pilot.press("escape")


async def test_diff_two_images(engine):
    async with app_running(engine, ["layers"], _layers_of_app) as (app, pilot, pane):
        await fill_form(pilot, "x", other="sha256:" + "b" * 64)
        await pilot_wait_for(pilot, lambda: len(app.screen_stack) == 2 and app.screen.query(FilterTable))
        assert engine.called("image_diff")[0].args == (APP, "sha256:" + "b" * 64)
        table = app.screen.query_one(FilterTable)
        got = {str(cells[1]): str(cells[0]) for _, cells in table.rows}
        assert got["/app/server"] == "removed" and got["/etc/passwd"] == "modified"
        assert "0 added" in screen_text(app)


async def test_follows_image_selection_from_images_pane(engine):
    app = make_app(engine, panes=["images", "layers"])
    async with app.run_test(size=(160, 48)) as pilot:
        images = app.pane("images")
        await pilot_wait_for(pilot, lambda: images.rows)
        await pilot.press("down")          # me/app:1.0 highlighted -> ImageSelected
        await pilot.press("2")
        layers = app.pane("layers")
        await pilot_wait_for(pilot, lambda: layers.tree_data is not None and layers.tree_data.image_id == APP)
        # hidden tab: analysis deferred until shown
        await pilot.press("1")
        await pilot.pause()
        calls = len(engine.called("image_tree"))
        await pilot.press("up")            # busybox selected while Layers is hidden
        await pilot.pause(0.2)
        assert len(engine.called("image_tree")) == calls
        await pilot.press("2")
        await pilot_wait_for(pilot, lambda: layers.tree_data.image_id == "sha256:" + "b" * 64)


async def test_slash_in_the_tree_filters_paths(engine):
    async with app_running(engine, ["layers"], _layers_of_app) as (app, pilot, pane):
        pane.query_one(FileTree).focus()
        await pilot.press("slash", *"/app")
        await pilot_wait_for(pilot, lambda: pane.path_filter == "/app")
        assert pane.query_one(FileTree).visible_paths() == ["app", "app/config.json", "app/server"]


sync_all(globals())
