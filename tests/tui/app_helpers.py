"""Helpers for the app's Pilot tests: an app on a fake engine, waiting without sleeps."""

from __future__ import annotations

import asyncio
import functools
import inspect

from workbench.app import NutshellApp
from workbench.config import WorkbenchConfig


class RecordingApp(NutshellApp):
    """NutshellApp that also records the messages routed through it (for assertions)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.opened_terminals = []
        self.notifications_seen: list[tuple[str, str]] = []
        self.animation_level = "none"

    def on_open_terminal(self, message) -> None:  # runs besides NutshellApp.on_open_terminal
        self.opened_terminals.append((message.kind, message.target, message.title))

    def notify(self, message, *, title="", severity="information", timeout=None, markup=True):
        self.notifications_seen.append((severity, str(message)))
        return super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)


def make_app(engine, panes=None, read_only=False, watch=False, config=None,
             lazy=False) -> RecordingApp:
    """The app on ``engine``; every pane is mounted at once unless ``lazy`` (the real app
    mounts all but the first after the first frame: see test_lazy_panes_*)."""
    return RecordingApp(engine, read_only=read_only, watch=watch,
                        config=config or WorkbenchConfig(), panes=panes, lazy=lazy)


def screen_text(app) -> str:
    """Everything on screen as plain text (for assertions on what the user sees)."""
    from rich.console import Console

    console = Console(width=app.size.width, record=True, file=open("/dev/null", "w"),
                      color_system=None)
    lines = app.screen._compositor.render_update(full=True)
    console.print(lines)
    return console.export_text()


def sync(fn):
    """Run an ``async def`` test with asyncio.run (no async pytest plugin is installed)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


def sync_all(namespace: dict) -> None:
    """Wrap every ``async def test_*`` of a module with ``sync`` (call at the module's end)."""
    for name, obj in list(namespace.items()):
        if name.startswith("test_") and inspect.iscoroutinefunction(obj):
            namespace[name] = sync(obj)
