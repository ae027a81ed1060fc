"""ProgressPanel: per-item progress (one bar per layer) fed by core.events.Progress.

The engine calls the progress callback in a worker thread, often (every chunk). ``sink()``
returns a thread-safe callback that records the newest event per id and asks the UI to
redraw at most ``interval`` seconds apart, so a fast pull does not flood the event loop:

    panel.start("Pulling busybox:latest")
    worker: engine.pull(ref, progress=panel.sink())
    panel.finish("Pulled busybox:latest")     # UI thread, when the worker is done
"""

from __future__ import annotations

import threading

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from workbench.format import human_size

DONE_ACTIONS = {"Pull complete", "Already exists", "Pushed", "Layer already exists", "Done",
                "Loaded", "Download complete", "Mounted from"}


class ProgressRow(Vertical):
    DEFAULT_CSS = """
    ProgressRow { height: 1; layout: horizontal; }
    ProgressRow > .progress-label { width: 1fr; }
    ProgressRow > ProgressBar { width: 40; }
    """

    def __init__(self, ident: str) -> None:
        super().__init__()
        self.ident = ident

    def compose(self) -> ComposeResult:
        # imported with the first row, not with the Images pane (~3.5 ms of the first paint)
        from textual.widgets import ProgressBar

        yield Static(self.ident, classes="progress-label", markup=False)
        self._bar = ProgressBar(total=None, show_eta=False, show_percentage=True)
        yield self._bar

    def set(self, action: str, current: int, total: int, message: str = "") -> None:
        label = Text(f"{self.ident[:12]}  ", style="bold")
        label.append(action)
        if total:
            label.append(f"  {human_size(current)}/{human_size(total)}", style="dim")
        elif message:
            label.append(f"  {message}", style="dim")
        self.query_one(".progress-label", Static).update(label)
        bar = self._bar
        if action in DONE_ACTIONS:
            bar.update(total=1, progress=1)
        elif total:
            bar.update(total=total, progress=min(current, total))


class ProgressPanel(VerticalScroll):
    DEFAULT_CSS = """
    ProgressPanel { height: auto; max-height: 12; display: none; border-top: hkey $accent; }
    ProgressPanel.-active { display: block; }
    ProgressPanel > #progress-title { text-style: bold; height: 1; }
    """

    def __init__(self, id: str | None = None, interval: float = 0.1) -> None:
        super().__init__(id=id)
        self.interval = interval
        self._lock = threading.Lock()
        self._pending: dict[str, tuple] = {}
        self._scheduled = False
        self._rows: dict[str, ProgressRow] = {}
        self.events_seen = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="progress-title", markup=False)

    def start(self, title: str) -> None:
        for row in self._rows.values():
            row.remove()
        self._rows.clear()
        with self._lock:
            self._pending.clear()
        self.events_seen = 0
        self.query_one("#progress-title", Static).update(title)
        self.add_class("-active")

    def finish(self, title: str | None = None, keep: bool = False) -> None:
        self._flush()
        if title:
            self.query_one("#progress-title", Static).update(title)
        if not keep:
            self.set_timer(2.0, lambda: self.remove_class("-active"))

    def sink(self):
        """A thread-safe progress callback for Engine methods."""
        app = self.app

        def on_progress(ev) -> None:
            with self._lock:
                self.events_seen += 1
                self._pending[ev.id] = (ev.action, ev.current, ev.total, ev.message)
                if self._scheduled:
                    return
                self._scheduled = True
            try:
                app.call_from_thread(self._schedule)
            except RuntimeError:  # called on the UI thread itself
                self._schedule()

        return on_progress

    def _schedule(self) -> None:
        self.set_timer(self.interval, self._flush)

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._scheduled = False
        for ident, (action, current, total, message) in pending.items():
            row = self._rows.get(ident)
            if row is None:
                row = ProgressRow(ident)
                self._rows[ident] = row
                self.mount(row)
                row.call_after_refresh(row.set, action, current, total, message)
            else:
                row.set(action, current, total, message)

    @property
    def items(self) -> dict[str, ProgressRow]:
        return dict(self._rows)
