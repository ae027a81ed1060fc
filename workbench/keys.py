"""The app's keys: every pane's default bindings, read from one table (keys.toml).

One place to read (and test) which key does what where: ``tests/unit/test_keys.py`` checks
that no pane binds a key twice and that no pane shadows a key of the app's. The ids
(``<pane>.<name>``) are what the user's config rebinds (``[keys] "images.pull" = "ctrl+u"``,
applied with ``App.update_keymap``) and what the help screen (``?``) lists.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

from textual.binding import Binding

HIDDEN = "hidden"


@functools.cache
def _table() -> dict[str, dict[str, list[str]]]:
    with open(Path(__file__).with_name("keys.toml"), "rb") as f:
        return tomllib.load(f)


def pane_bindings(pane: str) -> list[Binding]:
    """The bindings of one pane (a table of keys.toml: "images", "containers", ...)."""
    return [Binding(keys, action, description, show=HIDDEN not in rest, id=f"{pane}.{name}")
            for name, (keys, action, description, *rest) in _table()[pane].items()]


def panes() -> list[str]:
    return list(_table())
