"""The key table (workbench/keys.py): no pane binds a key twice or shadows an app key."""

from __future__ import annotations

import importlib

import pytest

from workbench import keys
from workbench.app import NutshellApp

PANE_CLASSES = {"images": "ImagesPane", "layers": "LayersPane", "containers": "ContainersPane",
                "networks": "NetworksPane", "stats": "StatsPane", "terminals": "TerminalsPane",
                "learn": "LearnPane"}


def _keys(bindings) -> list[str]:
    return [k.strip() for b in bindings for k in b.key.split(",")]


@pytest.mark.parametrize("pane", keys.panes())
def test_a_pane_binds_each_key_once_and_leaves_the_app_keys_alone(pane):
    mine = _keys(keys.pane_bindings(pane))
    assert len(mine) == len(set(mine)), f"{pane} binds a key twice: {sorted(mine)}"
    app_keys = set(_keys(b for b in NutshellApp.BINDINGS if b.id))
    assert not app_keys & set(mine), f"{pane} shadows app keys {app_keys & set(mine)}"


def test_every_pane_takes_its_bindings_from_the_table_with_unique_ids():
    ids = [b.id for pane in keys.panes() for b in keys.pane_bindings(pane)]
    assert len(ids) == len(set(ids))
    assert set(PANE_CLASSES) == set(keys.panes())
    for pane, cls in PANE_CLASSES.items():
        klass = getattr(importlib.import_module(f"workbench.panes.{pane}"), cls)
        assert [b.id for b in klass.BINDINGS] == [b.id for b in keys.pane_bindings(pane)]


def test_hidden_rows_stay_out_of_the_footer():
    shown = {b.id: b.show for b in keys.pane_bindings("images")}
    assert shown["images.pull"] is True and shown["images.rm_force"] is False
