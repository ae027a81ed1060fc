"""The Textual workbench: ``nutshell`` with no verb (``nutshell --read-only`` to look only).

Layout: a TabbedContent of panes (1 Images, 2 Layers, 3 Containers, 4 Networks, 5 Stats,
6 Terminals, 7 Learn), a status line with the last equivalent command, and the Footer.

What the app does for its panes (the contract is workbench/messages.py):

- Liveness: a daemon thread blocks in ``core.watch.Watcher.wait`` (inotify on the state
  root; no polling) and posts ``EngineChanged(kinds, ids)`` to every pane when the store or a
  container changed — from this app or from a CLI in another SSH session.
- ``CommandRun`` from any pane goes into the session's command history (``H``) and the
  status line. ``ContainerSelected`` / ``ImageSelected`` are forwarded to the other panes;
  ``OpenTerminal`` switches to the Terminals pane and hands it the request.
- Keys: bindings have ids (``app.help``, ``images.pull``...) and can be remapped in
  workbench.toml (workbench/config.py). Nothing is a priority binding: a focused terminal
  gets every key (Ctrl-P, Ctrl-Q included) until Ctrl-] gives the keyboard back.
- Read-only mode hides every mutating action (panes' ``check_action``) and the palette's.

The panes are the classes ``pane_class`` names, built in the order of ``PANES``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.lazy import Lazy
from textual.widget import Widget
from textual.widgets import TabbedContent, TabPane

from workbench.commands import NutshellCommands
from workbench.config import THEME_CYCLE, WorkbenchConfig, load_config, register_themes
from workbench.messages import CommandRun, ContainerSelected, EngineChanged, ImageSelected, OpenTerminal
from workbench.panes.base import Pane
from workbench.screens.history import HistoryEntry, HistoryScreen
from workbench.widgets.blank import BlankContainer
from workbench.widgets.footer import KeyFooter
from workbench.widgets.status import StatusLine

#: (pane name, tab key, title), in tab order; the names are the panes' ids (``pane-<name>``)
PANES: list[tuple[str, str, str]] = [
    ("images", "1", "Images"),
    ("layers", "2", "Layers"),
    ("containers", "3", "Containers"),
    ("networks", "4", "Networks"),
    ("stats", "5", "Stats"),
    ("terminals", "6", "Terminals"),
    ("teaching", "7", "Learn"),
]


def pane_class(name: str) -> type[Pane]:
    """The pane class for ``name``, its module imported on demand: ``nutshell`` with a verb
    never loads the panes, and the app imports a hidden pane's module only when it mounts
    it, after the first frame (all seven before it cost ~90 ms of the start)."""
    import importlib

    module = "learn" if name == "teaching" else name       # workbench/panes/<module>.py
    return getattr(importlib.import_module(f"workbench.panes.{module}"), module.capitalize() + "Pane")


class PaneTab(BlankContainer, TabPane):
    """A pane's tab: only the pane it holds is drawn (workbench/widgets/blank.py)."""


class MainTabs(BlankContainer, TabbedContent):
    """The pane tabs. TabbedContent switches to a pane when something in it gets the focus;
    that message can arrive after the user already switched elsewhere (the first pane takes
    the focus at start-up while a tab key is being handled) — ignore it when the focus is no
    longer in that pane."""

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        focused = self.app.focused
        if focused is None or event.tab_pane not in focused.ancestors:
            event.prevent_default()     # Textual's handler (the base class) would switch back
            event.stop()


class LazyPane(Lazy):
    """Builds and mounts its pane after the first paint (the first frame comes sooner: the
    pane's module is not even imported before), then gives it the selections it missed
    meanwhile. ``make()`` builds the pane."""

    def __init__(self, make: Callable[[], Widget]) -> None:
        self._make = make
        super().__init__(Widget())

    async def mount_composed_widgets(self, widgets: list) -> None:
        parent = self.parent
        if parent is None:
            return

        async def mount() -> None:
            pane = self._make()
            await parent.mount(pane, after=self)
            await self.remove()
            app = self.app
            if app.active_pane() is pane:      # its tab was chosen while it was mounting
                app.call_after_refresh(app._focus_active)
            if getattr(app, "selected_image", None):
                msg = ImageSelected(app.selected_image)
                msg.bubble = False
                pane.post_message(msg)
            if getattr(app, "selected_container", None):
                msg = ContainerSelected(app.selected_container)
                msg.bubble = False
                pane.post_message(msg)

        self.call_after_refresh(mount)


class NutshellApp(App):
    """The workbench. ``NutshellApp(engine, read_only=False, watch=True, config=None)``."""

    CSS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "app.tcss")  # subclasses too
    TITLE = "Nutshell"
    SUB_TITLE = "container workbench"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (130, "-wide")]
    COMMANDS = App.COMMANDS | {NutshellCommands}
    # Our own palette/quit bindings, NOT priority: a focused terminal keeps ctrl+p/ctrl+q.
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", show=False, id="app.quit"),
        Binding("q", "quit", "Quit", id="app.quit_q"),
        Binding("question_mark,f1", "help", "Help", key_display="?", id="app.help"),
        Binding("ctrl+p", "command_palette", "Palette", show=False, id="app.palette"),
        Binding("H", "history", "History", id="app.history"),
        Binding("f2", "cycle_theme", "Theme", show=False, id="app.theme"),
    ] + [
        Binding(key, f"show_tab('{name}')", title, show=False, id=f"app.tab_{name}")
        for name, key, title in PANES
    ]

    def __init__(self, engine: Any, read_only: bool = False, watch: bool = True,
                 config: WorkbenchConfig | None = None, panes: list[str] | None = None,
                 lazy: bool = True) -> None:
        super().__init__()
        self.lazy = lazy
        self.engine = engine
        self.read_only = read_only
        self.watch_enabled = watch
        self.config = config if config is not None else WorkbenchConfig()
        self.pane_names = panes or [name for name, _, _ in PANES]
        self.history: list[HistoryEntry] = []
        self.started_at = time.time()
        self.selected_container: str | None = None
        self.selected_image: str | None = None
        self._watcher = None
        self._watch_thread: threading.Thread | None = None
        self.changes_seen = 0
        register_themes(self)
        theme = self.config.theme
        if theme not in self.available_themes:
            self.config.errors.append(f"unknown theme {theme!r}")
            theme = "nutshell-dark"
        self._start_with_theme(theme)

    def _start_with_theme(self, name: str) -> None:
        """``self.theme = name`` before the app runs, less the work its watcher (Textual's
        App._watch_theme) queues for later: a reparse of the whole stylesheet, of which only
        the theme's variables matter when nothing is styled yet (~10 ms of the first paint)."""
        self.set_reactive(App.theme, name)
        dark = self.current_theme.dark
        self.update_classes({f"-theme-{name}": True, "-dark-mode": dark, "-light-mode": not dark},
                            update=False)
        self._refresh_truecolor_filter(self.ansi_theme)
        self.stylesheet.set_variables(self.get_css_variables())

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        first = True
        with MainTabs(id="tabs"):
            for name, key, title in PANES:
                if name not in self.pane_names:
                    continue
                def make(name: str = name) -> Pane:
                    return pane_class(name)(self.engine, read_only=self.read_only,
                                            id=f"pane-{name}")

                # only the first tab's pane is built before the first frame
                yield PaneTab(f"{key} {title}", make() if first or not self.lazy else LazyPane(make),
                              id=f"tab-{name}")
                first = False
        root = self.engine.paths.root
        yield StatusLine(root=root, read_only=self.read_only, id="status")
        yield KeyFooter()

    def on_mount(self) -> None:
        if self.config.keys:
            self.update_keymap(self.config.keys)
        for err in self.config.errors:
            self.notify(err, title="workbench.toml", severity="warning", timeout=10)
        if self.watch_enabled:
            self.start_watching()
        self.call_after_refresh(self._focus_active)
        # the console script starts the workbench with the collector off (cli.configure_gc)
        self.call_after_refresh(_collect_again)

    def panes(self) -> list[Any]:
        """The pane widgets, in tab order."""
        out = []
        for name in self.pane_names:
            found = self.query(f"#pane-{name}")
            if found:
                out.append(found.first())
        return out

    def pane(self, name: str) -> Any | None:
        found = self.query(f"#pane-{name}")
        return found.first() if found else None

    # ------------------------------------------------------------------ tabs and focus
    def action_show_tab(self, name: str) -> None:
        """Switch to a pane's tab (its pane may still be mounting: it gets the focus then)."""
        if name not in self.pane_names:
            return
        tabs = self.query_one("#tabs", TabbedContent)
        tab_id = f"tab-{name}"
        if tabs.active != tab_id:
            # Drop the focus first: when the old pane is hidden, Textual moves a focus it still
            # holds to a neighbour in that pane (a visible filter box, say), and a focus inside
            # a pane makes TabbedContent switch right back to it.
            pane = self.pane(name)
            if self.focused is not None and (pane is None or pane not in self.focused.ancestors_with_self):
                self.set_focus(None)
            tabs.active = tab_id
        self.call_after_refresh(self._focus_active)

    def show_pane(self, pane: Any) -> None:
        self.action_show_tab((pane.id or "").removeprefix("pane-"))

    async def run_pane_action(self, pane: Any, action: str) -> None:
        """What a palette command does: show the pane, then run the action there."""
        self.show_pane(pane)
        await pane.run_action(action)

    @on(TabbedContent.TabActivated, "#tabs")
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        from textual.widgets import Tabs

        if not isinstance(self.focused, Tabs):
            self.call_after_refresh(self._focus_active)

    def active_pane(self) -> Any | None:
        tabs = self.query_one("#tabs", TabbedContent)
        if not tabs.active:
            return None
        return self.pane(tabs.active.removeprefix("tab-"))

    def _focus_active(self) -> None:
        pane = self.active_pane()
        if pane is None:
            return
        focus_default = getattr(pane, "focus_default", None)
        if callable(focus_default):
            focus_default()
            return
        for widget in pane.query("*"):
            if widget.focusable and widget.display and widget.visible:
                widget.focus()
                return

    # ------------------------------------------------------------------ liveness
    def start_watching(self) -> None:
        """Watch the state root in a daemon thread; EngineChanged to every pane."""
        self._watcher = self.engine.watcher()
        self._watch_thread = threading.Thread(target=self._watch_loop, args=(self._watcher,),
                                              name="nutshell-watch", daemon=True)
        self._watch_thread.start()

    def _watch_loop(self, watcher) -> None:
        try:
            while True:
                changes = watcher.wait(None)
                if getattr(watcher, "_closed", False):
                    return
                if changes:
                    try:
                        self.call_from_thread(self.broadcast_change, set(changes.kinds),
                                              set(changes.ids))
                    except Exception:  # noqa: BLE001 - the app is shutting down
                        return
        finally:
            watcher.release()

    def stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        if self._watch_thread is not None:
            self._watch_thread.join(timeout=2)
            self._watch_thread = None

    def broadcast_change(self, kinds: set[str], ids: set[str] | None = None) -> None:
        """Tell every pane that the engine changed (they reload what they show)."""
        self.changes_seen += 1
        for pane in self.panes():
            msg = EngineChanged(kinds, ids)
            msg.bubble = False
            pane.post_message(msg)

    def on_unmount(self) -> None:
        self.stop_watching()

    # ------------------------------------------------------------------ messages from panes
    def on_command_run(self, message: CommandRun) -> None:
        self.history.append(HistoryEntry(time.time(), message.command, message.ok, message.error))
        status = self.query("#status")
        if status:
            status.first().show_command(message.command, message.ok)

    def _origin_pane(self, message) -> Any | None:
        node = getattr(message, "_sender", None)
        while node is not None and node is not self:
            if isinstance(getattr(node, "id", None), str) and node.id.startswith("pane-"):
                return node
            node = node.parent
        return None

    def _forward(self, message, make) -> None:
        origin = self._origin_pane(message)
        for pane in self.panes():
            if pane is origin:
                continue
            msg = make()
            msg.bubble = False
            msg._nutshell_forwarded = True
            pane.post_message(msg)

    def on_container_selected(self, message: ContainerSelected) -> None:
        if getattr(message, "_nutshell_forwarded", False):
            return
        self.selected_container = message.container_id
        self._forward(message, lambda: ContainerSelected(message.container_id))

    def on_image_selected(self, message: ImageSelected) -> None:
        if getattr(message, "_nutshell_forwarded", False):
            return
        self.selected_image = message.image_id
        self._forward(message, lambda: ImageSelected(message.image_id))

    def on_open_terminal(self, message: OpenTerminal) -> None:
        if getattr(message, "_nutshell_forwarded", False):
            return
        pane = self.pane("terminals")
        if pane is None:
            self.notify("the Terminals pane is not available", severity="warning")
            return
        self.show_pane(pane)
        fwd = OpenTerminal(message.kind, message.target, message.argv, message.title)
        fwd.bubble = False
        fwd._nutshell_forwarded = True  # type: ignore[attr-defined]
        pane.post_message(fwd)

    # ------------------------------------------------------------------ app actions
    # Keys a focused terminal takes for itself: the footer must not offer them meanwhile.
    _TERMINAL_SHADOWED = frozenset({"quit", "help", "history"})

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in self._TERMINAL_SHADOWED and self._terminal_focused():
            return False  # hidden from the footer; the key goes to the terminal
        return True

    def _terminal_focused(self) -> bool:
        # no import: the footer asks at the first frame, before the Terminals pane (and
        # pyte) is loaded; until then no terminal can have focus
        module = sys.modules.get("workbench.terminal.widget")
        return module is not None and isinstance(self.focused, module.Terminal)

    def action_help(self) -> None:
        from workbench.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_history(self) -> None:
        self.push_screen(HistoryScreen(self.history_entries()))

    def history_entries(self) -> list[HistoryEntry]:
        """This session's actions and, merged in time order, the changing requests clients
        made through the API server (``nutshell system service``) meanwhile."""
        from workbench.api import requestlog

        api = [HistoryEntry(e["time"], requestlog.describe(e), int(e.get("status") or 0) < 400,
                            None if int(e.get("status") or 0) < 400 else f"HTTP {e.get('status')}")
               for e in requestlog.read(requestlog.path_for(self.engine.paths.run),
                                        since=self.started_at)]
        return sorted([*self.history, *api], key=lambda e: e.time)

    def action_cycle_theme(self) -> None:
        names = list(THEME_CYCLE)
        nxt = names[(names.index(self.theme) + 1) % len(names)] if self.theme in names else names[0]
        self.theme = nxt
        self.notify(f"theme: {nxt}", timeout=2)

    async def action_quit(self) -> None:
        self.stop_watching()
        self.exit()


def _collect_again() -> None:
    """The first frame is drawn: the cyclic collector on, with its usual thresholds."""
    import gc

    gc.set_threshold(700, 10, 10)
    gc.enable()


def run_app(root: str | None = None, read_only: bool = False) -> int:
    from core.engine import Engine

    engine = Engine(root=root)
    app = NutshellApp(engine, read_only=read_only, config=load_config(engine.paths.config))
    app.run()
    return 0
