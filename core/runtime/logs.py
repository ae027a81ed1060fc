"""Container logs: Docker's json-file format, one JSON object per line.

    {"log":"hello\\n","stream":"stdout","time":"2024-05-01T12:00:00.123456789Z"}

The shim appends; readers (``logs``, ``logs -f``, the app's log pane) read here.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import UsageError
from ..timestamps import parse_rfc3339


@dataclass
class LogEntry:
    """One line of a container's log: its stream, bytes and RFC 3339 time."""
    stream: str      # "stdout" | "stderr"
    data: bytes
    time: str        # RFC 3339 with nanoseconds, UTC

    @property
    def timestamp(self) -> float:
        return parse_rfc3339(self.time) or 0.0


def parse_since(value: str | None, now: float | None = None) -> float | None:
    """Docker's --since/--until: RFC 3339, a unix timestamp, or a duration (``10m``,
    ``1h30m``, ``45s``) counted back from now."""
    if value is None or value == "":
        return None
    now = time.time() if now is None else now
    v = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return float(v)
    if re.fullmatch(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+", v):
        units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
        total = sum(float(n) * units[u] for n, _f, u in re.findall(r"(\d+(\.\d+)?)(ns|us|µs|ms|s|m|h)", v))
        return now - total
    t = parse_rfc3339(v)
    if t is None and re.fullmatch(r"\d{4}-\d\d-\d\d", v):
        t = parse_rfc3339(v + "T00:00:00Z")
    if t is None:
        raise UsageError(f"invalid value for --since/--until: {value!r}")
    return t


def _parse_line(line: bytes) -> LogEntry | None:
    try:
        obj = json.loads(line)
        return LogEntry(obj.get("stream", "stdout"), obj.get("log", "").encode("utf-8", "replace"),
                        obj.get("time", ""))
    except (ValueError, AttributeError):
        return None


def _tail_offset(f, n: int) -> int:
    """Offset where the last ``n`` lines start (reading backwards in blocks)."""
    f.seek(0, os.SEEK_END)
    end = pos = f.tell()
    newlines = 0
    block = 65536
    while pos > 0:
        step = min(block, pos)
        pos -= step
        f.seek(pos)
        chunk = f.read(step)
        if pos + step == end and chunk.endswith(b"\n"):
            chunk = chunk[:-1]
        idx = len(chunk)
        while True:
            idx = chunk.rfind(b"\n", 0, idx)
            if idx < 0:
                break
            newlines += 1
            if newlines == n:
                return pos + idx + 1
    return 0


def read(path: str, *, tail: int | None = None, since: float | None = None,
         until: float | None = None, follow: bool = False,
         running: Callable[[], bool] | None = None, poll_interval: float = 0.1,
         stop: Callable[[], bool] | None = None) -> Iterator[LogEntry]:
    """Log entries, oldest first. ``tail`` keeps the last N; ``since``/``until`` filter by
    time; ``follow`` keeps reading until ``running()`` turns false (and then reads what
    the shim wrote last) or ``stop()`` turns true."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        if not follow:
            return
        while not os.path.exists(path):
            if running is None or not running() or (stop and stop()):
                return
            time.sleep(poll_interval)
        f = open(path, "rb")
    with f:
        if tail is not None and tail >= 0:
            if tail == 0:
                f.seek(0, os.SEEK_END)
            else:
                f.seek(_tail_offset(f, tail))
        buf = b""
        last_round = False
        while True:
            chunk = f.read(1 << 20)
            if chunk:
                buf += chunk
                lines = buf.split(b"\n")
                buf = lines.pop()
                for line in lines:
                    entry = _parse_line(line)
                    if entry is None:
                        continue
                    if since is not None or until is not None:
                        t = entry.timestamp
                        if since is not None and t < since:
                            continue
                        if until is not None and t > until:
                            if not follow:
                                return
                            continue
                    yield entry
                continue
            if not follow or last_round:
                return
            if stop is not None and stop():
                return
            if running is not None and not running():
                last_round = True   # one more read: the shim's final lines
                continue
            time.sleep(poll_interval)
