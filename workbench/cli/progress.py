"""Turning core.events.Progress streams into output.

On a terminal: rich progress bars, one per id (layer, file, step). Otherwise: one plain
line per finished item, so logs and pipes stay readable. ``quiet`` prints nothing.
Use as a context manager; pass the instance as the ``progress=`` callback.
"""

from __future__ import annotations

import sys

from core.events import Progress

# actions that only move a bar; everything else is a state change worth a line
_MOVING = {"Downloading", "Extracting", "Pushing", "Loading", "Writing", "Copying", "Compressing"}
# per-item completions that are noise in plain (non-terminal) output
_QUIET_PLAIN = {"Loaded", "Written", "Extracted", "Copied"}


class ProgressPrinter:
    def __init__(self, quiet: bool = False, stream=None, force_plain: bool = False):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = (not force_plain) and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._progress = None
        self._tasks: dict[str, int] = {}
        self._last: dict[str, str] = {}

    def __enter__(self) -> "ProgressPrinter":
        if self.tty and not self.quiet:
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress as RichProgress,
                                       TextColumn, TransferSpeedColumn)

            self._progress = RichProgress(
                TextColumn("{task.fields[id]:<12}"), TextColumn("{task.description:<18}"),
                BarColumn(bar_width=30), DownloadColumn(), TransferSpeedColumn(),
                console=Console(file=self.stream), transient=False)
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __call__(self, ev: Progress) -> None:
        if self.quiet:
            return
        if self._progress is not None:
            tid = self._tasks.get(ev.id)
            total = ev.total or None
            if tid is None:
                tid = self._progress.add_task(ev.action, id=ev.id, total=total)
                self._tasks[ev.id] = tid
            done = ev.action not in _MOVING
            self._progress.update(tid, description=ev.action, completed=ev.current if not done or ev.current else (total or 0),
                                  total=total)
            if ev.message and ev.action not in _MOVING:
                self._progress.console.print(ev.message)
            return
        if ev.action in _MOVING or ev.action in _QUIET_PLAIN:
            return
        key = f"{ev.id}:{ev.action}"
        if self._last.get(ev.id) == key:
            return
        self._last[ev.id] = key
        line = f"{ev.id}: {ev.action}" if ev.id else ev.action
        if ev.message:
            line += f" {ev.message}"
        self.stream.write(line + "\n")
        self.stream.flush()
