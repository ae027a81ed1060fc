"""SVG snapshots (pytest-textual-snapshot) of the Images, Layers and Networks panes at 100x30
(an SSH session) and 160x48, on the fake engine with a pinned clock: deterministic.

Update after an intended UI change: ``pytest tests/tui/test_app_snapshots.py --snapshot-update``
and look at the new SVGs before committing them."""

from __future__ import annotations

import pytest

from tests.tui.app_helpers import make_app, show
from tests.tui.fakes import FIXED_NOW, FakeEngine
from tests.tui.snapshots import SIZES, size_ids
from tests.waiting import pilot_wait_for
from workbench.messages import ImageSelected
from workbench.panes import base

pytestmark = pytest.mark.tui

APP = "sha256:" + "c" * 64


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(base, "CLOCK", lambda: FIXED_NOW)


def _app():
    return make_app(FakeEngine(), panes=["images", "layers", "networks"])


@pytest.mark.parametrize("size", SIZES, ids=size_ids)
def test_images_pane(snap_compare, size):
    async def ready(pilot):
        app = pilot.app
        await pilot_wait_for(pilot, lambda: app.pane("images").rows)
        await pilot.press("down")    # me/app:1.0: entrypoint, ports, 3 layers of history
        await pilot_wait_for(pilot, lambda: "entrypoint" in str(app.query_one("#image-info").render()))

    assert snap_compare(_app(), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=size_ids)
def test_layers_pane(snap_compare, size):
    async def ready(pilot):
        pane = await show(pilot, "layers")
        pane.post_message(ImageSelected(APP))
        await pilot_wait_for(pilot, lambda: pane.tree_data is not None and pane.tree_data.image_id == APP)
        await pilot.press("down", "down", "down")          # layer 2: a modify, a whiteout, an add
        await pilot_wait_for(pilot, lambda: pane.layer_key == "2")
        tree = pane.query_one("#file-tree")
        tree.reveal("usr/lib/old.so")
        tree.reveal("app/server")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=size_ids)
def test_networks_pane(snap_compare, size):
    async def ready(pilot):
        pane = await show(pilot, "networks")
        await pilot_wait_for(pilot, lambda: pane.networks)
        await pilot_wait_for(pilot, lambda: pane.query_one("#members").shown_keys)

    assert snap_compare(_app(), terminal_size=size, run_before=ready)


def test_help_screen(snap_compare):
    async def ready(pilot):
        await pilot_wait_for(pilot, lambda: pilot.app.pane("images").rows)

    assert snap_compare(_app(), terminal_size=(100, 30), run_before=ready, press=["question_mark"])
