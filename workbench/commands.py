"""The command palette's provider: every action of every pane and of the app.

Commands are collected from the live widgets, so a pane added later (or remapped keys,
or read-only mode) is reflected without editing this file: for each pane, each binding
with a description that ``check_action`` does not hide becomes "<Pane>: <description>";
choosing it switches to that pane and runs the action there, exactly as its key would.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider


def _bindings(node: Any) -> Iterator[Binding]:
    seen: set[str] = set()
    for cls in type(node).__mro__:
        for b in cls.__dict__.get("BINDINGS", []) or []:
            if not isinstance(b, Binding):
                key, action, *rest = b
                b = Binding(key, action, rest[0] if rest else "")
            if b.description and b.action not in seen:
                seen.add(b.action)
                yield b


def _visible(node: Any, action: str) -> bool:
    check = getattr(node, "check_action", None)
    if check is None:
        return True
    try:
        return check(action, ()) is not False   # False: hidden (e.g. read-only mode)
    except Exception:  # noqa: BLE001
        return True


def collect(app: Any) -> list[tuple[str, str, Any]]:
    """(title, help, callback) for every command the app offers now."""
    out: list[tuple[str, str, Any]] = []
    for pane in app.panes():
        title = getattr(pane, "PANE_TITLE", "") or pane.id
        key = getattr(pane, "PANE_KEY", "")
        out.append((f"Go to {title}", f"switch to the {title} tab (key {key})",
                    partial(app.show_pane, pane)))
        for b in _bindings(pane):
            if b.action.startswith("app."):
                continue
            if not _visible(pane, b.action):
                continue
            out.append((f"{title}: {b.description}", b.tooltip or f"key {b.key} in {title}",
                        partial(app.run_pane_action, pane, b.action)))
    for b in _bindings(app):
        if b.action in ("command_palette",):
            continue
        if not _visible(app, b.action):
            continue
        out.append((b.description, b.tooltip or f"key {b.key}",
                    partial(app.call_later, app.run_action, b.action)))
    return out


class NutshellCommands(Provider):
    """Every pane and app action, searchable by name."""

    async def discover(self) -> Hits:
        for title, help_text, callback in collect(self.app):
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in collect(self.app):
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
