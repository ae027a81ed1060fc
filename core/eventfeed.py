"""Reading the event journal back: ``Engine.events`` (the journal itself: core/journal.py).

    for ev in engine.events(since="10m", filters={"type": ["container"]}, stop=done):
        ...   # Docker's events.Message dicts, oldest first, then new ones as they come

``since``/``until`` take what Docker's ``--since``/``--until`` take (see
:func:`parse_time`). Filters are Docker's (``daemon/events/filter.go``): values of one key
are OR'd, different keys AND'd, except ``label``, whose values must all match.

Following polls the journal's size every :data:`POLL` seconds (a ``stat``); a rotation
(the file renamed to ``events.log.1``) is noticed by its inode and the old file is read to
its end first. A line that is not an event (garbage, a torn write, a line longer than
:data:`MAX_LINE`) is skipped.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

from . import journal
from .errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .types import EventMessage

#: How often a follower looks for new lines.
POLL = 0.1
#: A longer line is not an event we wrote: skipped.
MAX_LINE = 1 << 20

#: The filter keys Docker's events accept that mean something here.
FILTER_KEYS = ("type", "event", "container", "image", "network", "volume", "label", "scope",
               "name")
TYPES = ("container", "image", "network", "volume")

Stop = threading.Event | Callable[[], bool] | None
Filters = Mapping[str, object] | list[str] | None

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


# --------------------------------------------------------------------------- times

def _go_duration(text: str) -> float | None:
    """Go's ``time.ParseDuration`` (``10m``, ``1h30m``, ``1.5s``, ``0``), in seconds."""
    s = text
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        return None
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def parse_time(value: str | float | int, now: float | None = None) -> float:
    """Docker's ``timetypes.GetTimestamp``: unix seconds (``1700000000``,
    ``1700000000.5``), RFC 3339 or a prefix of it (``2026-12-03``,
    ``2026-12-03T08:30:00``, local time without a zone), or a Go duration (``10m``: ten
    minutes before ``now``). Returns unix seconds."""
    now = time.time() if now is None else now
    if isinstance(value, (int, float)):
        return float(value)
    text = value.strip()
    if not text:
        raise UsageError("empty time value")
    d = _go_duration(text)
    if d is not None:
        return now - d
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        raise UsageError(f"invalid time value {value!r}",
                         hint="use unix seconds, RFC 3339 (2026-12-03T08:30:00Z) or a "
                              "duration before now (10m, 1h30m)") from None
    return dt.timestamp()


# --------------------------------------------------------------------------- filters

def parse_filters(filters: Filters) -> dict[str, list[str]]:
    """``["type=container", "event=start"]`` (the CLI's), ``{"type": ["container"]}`` or
    ``{"type": {"container": true}}`` (the API's, new and old) -> ``{key: [values]}``."""
    out: dict[str, list[str]] = {}
    if not filters:
        return out
    if isinstance(filters, Mapping):
        items: list[tuple[str, str]] = []
        for k, v in filters.items():
            if isinstance(v, str):
                items.append((k, v))
            elif isinstance(v, Mapping):
                items += [(k, x) for x, on in v.items() if on]
            else:
                items += [(k, str(x)) for x in (v or [])]  # type: ignore[attr-defined]
    else:
        items = []
        for f in filters:
            k, eq, v = f.partition("=")
            if not eq:
                raise UsageError(f"bad format of filter (expected name=value): {f}")
            items.append((k.strip(), v.strip()))
    for k, v in items:
        key = k.lower()
        if key not in FILTER_KEYS:
            raise UsageError(f"invalid filter {k!r}",
                             hint="use one of " + ", ".join(FILTER_KEYS))
        out.setdefault(key, []).append(v)
    return out


def _exact(f: dict[str, list[str]], key: str, *values: str) -> bool:
    want = f.get(key)
    return not want or any(v in want for v in values if v)


def _fuzzy(f: dict[str, list[str]], key: str, *values: str) -> bool:
    want = f.get(key)
    return not want or any(v and (v == w or v.startswith(w)) for w in want for v in values)


def _strip_tag(ref: str) -> str:
    if "@" in ref:
        return ref.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    return ref[:colon] if colon > slash else ref


def matches(ev: Mapping, f: dict[str, list[str]]) -> bool:
    """Does the event pass the parsed filters (Docker's ``events.Filter.Include``)?"""
    if not f:
        return True
    typ = str(ev.get("Type") or "")
    action = str(ev.get("Action") or "")
    actor = ev.get("Actor") or {}
    aid = str(actor.get("ID") or "")
    attrs = actor.get("Attributes") or {}
    if "event" in f:
        # "exec_create: sh -c ..." matches event=exec_create (Docker's #25798)
        if not any(action == w or (action.startswith(w + ":")) for w in f["event"]):
            return False
    if not _exact(f, "type", typ) or not _exact(f, "scope", str(ev.get("scope") or "")):
        return False
    name = str(attrs.get("name") or "")
    for key in ("container", "network", "volume"):
        if not _fuzzy(f, key, aid, name):
            return False
    if "image" in f:
        image_name = str(attrs.get("name" if typ == "image" else "image") or "")
        if not _exact(f, "image", aid, image_name, _strip_tag(aid), _strip_tag(image_name)):
            return False
    if "name" in f and not _exact(f, "name", name):
        return False
    for want in f.get("label", []):
        k, eq, v = want.partition("=")
        if k not in attrs or (eq and attrs[k] != v):
            return False
    return True


# --------------------------------------------------------------------------- reading

def _decode(raw: bytes) -> EventMessage | None:
    """One journal line -> the event, or None for anything that is not one."""
    if len(raw) > MAX_LINE:
        return None
    try:
        ev = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if (not isinstance(ev, dict) or not isinstance(ev.get("Type"), str)
            or not isinstance(ev.get("Action"), str) or not isinstance(ev.get("timeNano"), int)
            or not isinstance(ev.get("Actor"), dict)):
        return None
    actor = ev["Actor"]
    if not isinstance(actor.get("Attributes"), dict):
        actor["Attributes"] = {}
    return ev  # type: ignore[return-value]


class _Reader:
    """Whole lines from one open journal file, from where the last read stopped."""

    def __init__(self, path: str, at_end: bool):
        self.path = path
        self.f = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.ino = os.fstat(self.f.fileno()).st_ino
        self.buf = b""
        self.skipping = False      # in the middle of an over-long line
        if at_end:
            self.f.seek(0, os.SEEK_END)

    def lines(self) -> Iterator[bytes]:
        while True:
            chunk = self.f.read(1 << 16)
            if not chunk:
                return
            self.buf += chunk
            while True:
                nl = self.buf.find(b"\n")
                if nl < 0:
                    if len(self.buf) > MAX_LINE:
                        self.buf, self.skipping = b"", True
                    break
                line, self.buf = self.buf[:nl], self.buf[nl + 1:]
                if self.skipping:
                    self.skipping = False
                    continue
                yield line

    def close(self) -> None:
        self.f.close()


def _open(path: str, at_end: bool) -> _Reader | None:
    try:
        return _Reader(path, at_end)
    except OSError:
        return None


def _stopped(stop: Stop) -> bool:
    if stop is None:
        return False
    if isinstance(stop, threading.Event):
        return stop.is_set()
    return bool(stop())


def _sleep(stop: Stop, seconds: float) -> None:
    if isinstance(stop, threading.Event):
        stop.wait(seconds)
    else:
        time.sleep(seconds)


def read(root: str, since: str | float | None = None, until: str | float | None = None,
         filters: Filters = None, follow: bool = True, stop: Stop = None
         ) -> Iterator[EventMessage]:
    """The events of the journal at ``root`` (see ``Engine.events``)."""
    now = time.time()
    since_ns = None if since is None else int(parse_time(since, now) * 1e9)
    until_ns = None if until is None else int(parse_time(until, now) * 1e9)
    f = parse_filters(filters)
    path = journal.path(root)
    # Docker (loadBufferedEvents): with neither since nor until only what happens from
    # now on, unless not following
    replay = since_ns is not None or until_ns is not None or not follow

    def wanted(ev: EventMessage) -> bool:
        t = ev["timeNano"]
        return ((since_ns is None or t >= since_ns) and matches(ev, f))

    def past_until() -> bool:
        return until_ns is not None and time.time_ns() > until_ns

    def matching(lines) -> Iterator[EventMessage | None]:
        """The wanted events of ``lines``; None once one is past ``until`` (the end)."""
        for raw in lines:
            ev = _decode(raw)
            if ev is None:
                continue
            if until_ns is not None and ev["timeNano"] > until_ns:
                yield None
                return
            if wanted(ev):
                yield ev

    if replay:
        old = _open(path + ".1", at_end=False)
        if old is not None:
            try:
                for ev in matching(old.lines()):
                    if ev is None:
                        return
                    yield ev
            finally:
                old.close()
    cur = _open(path, at_end=not replay)
    try:
        while True:
            if cur is not None:
                for ev in matching(cur.lines()):
                    if ev is None:
                        return
                    yield ev
            if not follow or past_until() or _stopped(stop):
                return
            try:
                ino: int | None = os.stat(path).st_ino
            except OSError:
                ino = None
            if cur is not None and ino is not None and ino != cur.ino:
                # rotated: read the old file to its end first, then the new one from its start
                for raw in cur.lines():
                    ev = _decode(raw)
                    if ev is not None and wanted(ev) and (
                            until_ns is None or ev["timeNano"] <= until_ns):
                        yield ev
                cur.close()
                cur = None
            if cur is None and ino is not None:
                cur = _open(path, at_end=False)
                if cur is not None:
                    continue
            _sleep(stop, POLL)
    finally:
        if cur is not None:
            cur.close()
