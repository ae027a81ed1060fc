"""CLI verb for the event journal: ``events`` (also ``system events``).

Docker's default line (``2026-12-03T08:30:00.123456789Z container start 3f2a... (image=
busybox, name=web)``, local time, attributes sorted) or ``--format`` (``json``,
``{{json .}}``, ``{{.Type}} {{.Action}}``...). Without ``--since`` it shows only what
happens from now on; with ``--until`` it stops when that time has passed.
"""

from __future__ import annotations

import sys
import time


def register(sub, group) -> None:
    system = group("system", "Manage Nutshell")
    for s in (sub, system):
        p = s.add_parser("events", help="Get real time events from the store")
        p.add_argument("--since", help="show events since a timestamp (unix seconds, "
                                      "RFC 3339) or a duration before now (10m)")
        p.add_argument("--until", help="stream events until this timestamp or duration")
        p.add_argument("-f", "--filter", action="append", default=[],
                       help="type=, event=, container=, image=, network=, volume=, label=, "
                            "scope=, name= (same key: any; different keys: all)")
        p.add_argument("--format", help="json, or a {{.Field}} template ({{json .}})")
        p.set_defaults(func=cmd_events)


def format_time(time_nano: int) -> str:
    """Go's RFC3339NanoFixed in local time, as ``docker events`` prints it."""
    secs, frac = divmod(time_nano, 1_000_000_000)
    lt = time.localtime(secs)
    off = lt.tm_gmtoff or 0
    if off == 0:
        zone = "Z"
    else:
        sign = "+" if off > 0 else "-"
        zone = f"{sign}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", lt) + f".{frac:09d}{zone}"


def format_event(ev: dict) -> str:
    """Docker's ``prettyPrintEvent``."""
    line = f"{format_time(ev['timeNano'])} {ev['Type']} {ev['Action']} {ev['Actor']['ID']}"
    attrs = ev["Actor"].get("Attributes") or {}
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line


def cmd_events(engine, args) -> int:
    import json

    from .output import render_template

    fmt = args.format
    out = sys.stdout
    for ev in engine.events(since=args.since, until=args.until, filters=args.filter):
        if fmt == "json":
            line = json.dumps(ev)
        elif fmt:
            line = render_template(fmt, ev)
        else:
            line = format_event(ev)
        out.write(line + "\n")
        out.flush()
    return 0
