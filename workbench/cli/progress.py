"""Turning core.events.Progress streams into output.

On a terminal: rich progress bars, one per id (layer, file, step). Otherwise: one plain
line per state change of an item, so logs and pipes stay readable. ``quiet`` prints
nothing. Use as a context manager; pass the instance as the ``progress=`` callback.

- ProgressPrinter: load, save, import, commit (on stderr).
- RegistryProgress: pull and push, and ``run``/``create`` when they pull a missing image:
  Docker's pull output (``abc123def456: Pull complete``, ``Digest: ...``,
  ``Status: ...``), bars per layer (``abc123def456  Downloading  ━━━━━  3.1/9.8 MB``).
"""

from __future__ import annotations

import re
import sys
import threading
from typing import Self

from core.events import Progress

# actions that only move a bar; everything else is a state change worth a line
_MOVING = {"Downloading", "Extracting", "Pushing", "Loading", "Writing", "Copying", "Compressing"}
# per-item completions that are noise in plain (non-terminal) output
_QUIET_PLAIN = {"Loaded", "Written", "Extracted", "Copied"}
_LAYER_ID = re.compile(r"^[0-9a-f]{12}\Z")
# registry events that only move a layer's bar
_LAYER_MOVING = {"Downloading", "Pushing", "Extracting"}


def _plain_line(last: dict[str, str], ev: Progress, key: str) -> str | None:
    """``id: Action message``, unless ``key`` is what this id last printed (None then)."""
    if last.get(ev.id) == key:
        return None
    last[ev.id] = key
    line = f"{ev.id}: {ev.action}" if ev.id else ev.action
    if ev.message:
        line += f" {ev.message}"
    return line


class _Display:
    """What both printers share: on a terminal and unless ``quiet``, the rich progress
    display :meth:`_open` makes, shown from ``__enter__`` to ``__exit__``."""

    def __init__(self, stream, quiet: bool, tty: bool):
        self.stream = stream
        self.quiet = quiet
        self.tty = tty
        self._rich = None
        self._tasks: dict[str, int] = {}   # id -> its bar
        self._last: dict[str, str] = {}    # id -> what its last plain line said

    def _open(self):
        raise NotImplementedError

    def _closed(self) -> None:
        """Called once the display is gone."""

    def __enter__(self) -> Self:
        if self.tty and not self.quiet:
            self._rich = self._open()
            self._rich.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
            self._closed()


class ProgressPrinter(_Display):
    def __init__(self, quiet: bool = False, stream=None, force_plain: bool = False):
        stream = stream or sys.stderr
        super().__init__(stream, quiet,
                         (not force_plain) and hasattr(stream, "isatty") and stream.isatty())

    def _open(self):
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, TextColumn, TransferSpeedColumn
        from rich.progress import Progress as RichProgress

        return RichProgress(
            TextColumn("{task.fields[id]:<12}"), TextColumn("{task.description:<18}"),
            BarColumn(bar_width=30), DownloadColumn(), TransferSpeedColumn(),
            console=Console(file=self.stream), transient=False)

    def __call__(self, ev: Progress) -> None:
        if self.quiet:
            return
        if self._rich is not None:
            tid = self._tasks.get(ev.id)
            total = ev.total or None
            if tid is None:
                tid = self._rich.add_task(ev.action, id=ev.id, total=total)
                self._tasks[ev.id] = tid
            done = ev.action not in _MOVING
            completed = ev.current if not done or ev.current else (total or 0)
            self._rich.update(tid, description=ev.action, completed=completed,
                              total=total)
            if ev.message and ev.action not in _MOVING:
                self._rich.console.print(ev.message)
            return
        if ev.action in _MOVING or ev.action in _QUIET_PLAIN:
            return
        line = _plain_line(self._last, ev, f"{ev.id}:{ev.action}")
        if line is None:
            return
        self.stream.write(line + "\n")
        self.stream.flush()


def _header_line(ev) -> str | None:
    """Lines that are about the whole image, not a layer."""
    a = ev.action
    if a == "Pulling from":
        return f"{ev.id}: Pulling from {ev.message}"
    if a == "The push refers to repository":
        return f"The push refers to repository {ev.message}"
    if a in ("Digest", "Status"):
        return f"{a}: {ev.message}"
    if a == "Pushed manifest":
        return ev.message
    if a == "Unable to find image locally":
        return f"Unable to find image '{ev.id}' locally"
    return None


class RegistryProgress(_Display):
    """A ``progress=`` callback for pull/push; a context manager around the rich display.

    Thread-safe: pull and push report from worker threads.
    """

    def __init__(self, stream=None, quiet: bool = False, tty: bool | None = None):
        stream = stream or sys.stdout
        super().__init__(stream, quiet,
                         (hasattr(stream, "isatty") and stream.isatty()) if tty is None else tty)
        self.digest: str | None = None
        self._lock = threading.Lock()
        self._after: list[str] = []   # summary lines printed below the bars at the end

    def _open(self):
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        return Progress(
            TextColumn("{task.fields[sid]}"),
            TextColumn("{task.description:<22}"),
            BarColumn(bar_width=36),
            DownloadColumn(),
            console=Console(file=self.stream, highlight=False),
            transient=False,
            refresh_per_second=8,
        )

    def _closed(self) -> None:
        for line in self._after:
            self._write(line)
        self._after.clear()

    def _write(self, line: str, err: bool = False) -> None:
        if self._rich is not None:
            self._rich.console.print(line, markup=False)
            return
        out = sys.stderr if err else self.stream
        out.write(line + "\n")
        out.flush()

    def __call__(self, ev) -> None:
        with self._lock:
            if ev.action == "Digest":
                self.digest = ev.message
            if ev.action == "Pushed manifest":
                self.digest = ev.detail.get("digest") or self.digest
            if self.quiet:
                if ev.action == "Warning":
                    sys.stderr.write(f"WARNING: {ev.message}\n")
                return
            header = _header_line(ev)
            if header is not None:
                if self._rich is not None and ev.action in ("Digest", "Status", "Pushed manifest"):
                    self._after.append(header)  # Docker prints these under the bars
                else:
                    self._write(header)
                return
            if ev.action == "Warning":
                self._write(f"WARNING: {ev.message}", err=True)
                return
            if self._rich is not None and _LAYER_ID.match(ev.id or ""):
                self._bar(ev)
                return
            if ev.action in _LAYER_MOVING:
                return
            line = _plain_line(self._last, ev, f"{ev.action}|{ev.message}")
            if line is not None:
                self._write(line)

    def _bar(self, ev) -> None:
        tid = self._tasks.get(ev.id)
        total = ev.total or None
        desc = ev.action + (f" {ev.message}" if ev.action == "Mounted from" and ev.message else "")
        if tid is None:
            tid = self._rich.add_task(desc, sid=ev.id, total=total, completed=ev.current)
            self._tasks[ev.id] = tid
        else:
            self._rich.update(tid, description=desc, completed=ev.current,
                              **({"total": total} if total else {}))
        if ev.action == "Retrying" and ev.message:
            self._rich.console.print(f"{ev.id}: {ev.message}", markup=False)
