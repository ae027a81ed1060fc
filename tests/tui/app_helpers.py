"""Helpers for the app's Pilot tests: the app on an engine (``make_app``), one pane alone
(``PaneApp``), what the screen shows, async tests run without a plugin."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer

from tests.waiting import pilot_wait_for
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


async def pane_of(pilot, app, name: str):
    """The app's pane ``name`` once it is mounted (the app may mount panes lazily, after its
    first frame)."""
    await pilot_wait_for(pilot, lambda: app.pane(name) is not None and app.pane(name).is_mounted,
                         what=f"the {name} pane")
    return app.pane(name)


async def show(pilot, name: str):
    """The app's pane ``name``, mounted and its tab shown."""
    app = pilot.app
    pane = await pane_of(pilot, app, name)
    app.action_show_tab(name)
    await pilot_wait_for(pilot, lambda: app.query_one("#tabs").active == f"tab-{name}")
    return pane


@contextlib.asynccontextmanager
async def app_running(engine, panes, ready, size=(160, 48), read_only=False):
    """The app on ``engine`` with ``panes``, running: yields (app, pilot, pane), the pane as
    ``ready(pilot, app)`` returns it once it is ready."""
    app = make_app(engine, panes=panes, read_only=read_only)
    async with app.run_test(size=size) as pilot:
        yield app, pilot, await ready(pilot, app)


class PaneApp(App):
    """One pane, standalone, with a Footer; records the messages panes post to the app."""

    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False)]
    CSS = "Screen { layout: vertical; }"

    def __init__(self, pane_factory, **kw) -> None:
        super().__init__(**kw)
        self.pane_factory = pane_factory
        self.commands: list = []
        self.selected: list = []
        self.terminals: list = []

    def compose(self) -> ComposeResult:
        self.pane = self.pane_factory()
        yield self.pane
        yield Footer()

    def on_mount(self) -> None:
        # what the workbench does when a pane's tab is shown
        self.call_after_refresh(self._focus_pane)

    def _focus_pane(self) -> None:
        focus_default = getattr(self.pane, "focus_default", None)
        if callable(focus_default):
            focus_default()
            return
        for widget in self.pane.query("*"):
            if widget.focusable and widget.display and widget.visible:
                widget.focus()
                return

    def on_command_run(self, message) -> None:
        self.commands.append((message.command, message.ok, message.error))

    def on_container_selected(self, message) -> None:
        self.selected.append(message.container_id)

    def on_open_terminal(self, message) -> None:
        self.terminals.append((message.kind, message.target, message.argv))
        handler = getattr(self, "route_terminal", None)
        if handler is not None:
            handler(message)


@contextlib.asynccontextmanager
async def pane_alone(pane_factory, size, ready=None):
    """``pane_factory()`` alone in a running PaneApp of ``size``: yields (app, pilot, pane),
    the pane as ``ready(pilot, app)`` returns it once it is ready (by default at once)."""
    app = PaneApp(pane_factory)
    async with app.run_test(size=size) as pilot:
        pane = await ready(pilot, app) if ready else app.pane
        yield app, pilot, pane


async def fill_form(pilot, key: str, submit: str | None = "ctrl+s", **fields) -> None:
    """Open the form that ``key`` opens, set its fields (``name=`` sets ``#field-name``) and
    press ``submit`` (None: leave the form open)."""
    await pilot.press(key)
    await pilot.pause()
    for name, value in fields.items():
        pilot.app.screen.query_one(f"#field-{name}").value = value
    if submit:
        await pilot.press(submit)


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
