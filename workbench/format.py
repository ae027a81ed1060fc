"""The formatters the CLI and the app share: sizes, durations, "... ago", the PORTS column,
CPU %. One of each, so ``nutshell images`` and the Images pane print the same ``5.6MB``.

Pure functions, no Textual, rich or argparse: importing this costs nothing.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

from core.durations import human_duration

__all__ = ["human_size", "human_duration", "parse_time", "ago", "ports_column", "cpu_percent"]

_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]


def human_size(size: float, precision: int = 3) -> str:
    """Docker's units.HumanSizeWithPrecision: decimal units, 3 significant digits."""
    size = float(size)
    i = 0
    while size >= 1000.0 and i < len(_UNITS) - 1:
        size /= 1000.0
        i += 1
    text = f"{size:.{precision}g}"
    if "e" in text:
        text = f"{size:.0f}"
    return f"{text}{_UNITS[i]}"


def parse_time(value: str | float | int | None) -> float | None:
    """RFC 3339 (with nanoseconds) or epoch seconds -> epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    v = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return float(v)
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", v)
    if not m:
        return None
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    tz = m.group(3) or "Z"
    if tz == "Z":
        base = base.replace(tzinfo=timezone.utc)
    else:
        sign = 1 if tz[0] == "+" else -1
        base = base.replace(tzinfo=timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))))
    frac = float("0" + m.group(2)) if m.group(2) else 0.0
    return base.timestamp() + frac


def ago(value: str | float | None, now: float | None = None) -> str:
    """``3 minutes ago`` (the CREATED columns); ``N/A`` for no time."""
    t = parse_time(value)
    if t is None or t <= 0:
        return "N/A"
    now = time.time() if now is None else now
    return human_duration(max(0.0, now - t)) + " ago"


def ports_column(engine, item: dict) -> str:
    """The PORTS column of ``ps`` (``0.0.0.0:18080->80/tcp``) for one ``engine.ps()`` item:
    empty unless the container runs with a network of its own and publishes ports. A
    column is not worth an error: any failure gives an empty cell."""
    if item.get("Networks") in ("none", "host", "") or item.get("State") != "running":
        return ""
    getter = getattr(engine, "container_ports", None)
    if getter is None:
        return ""
    try:
        ports = getter(item["Id"])
        if not ports:
            return ""
        from core.network.ports import format_ports

        return format_ports(ports)
    except Exception:  # noqa: BLE001
        return ""


def cpu_percent(cpu_ns: int | None, when: float | None,
                prev_ns: int | None, prev_when: float | None) -> float | None:
    """CPU % between two samples of a cgroup's usage counter (nanoseconds) taken at
    ``prev_when`` and ``when`` (seconds): the share of ONE core, so N busy cores show
    N x 100 %. None when there is no earlier sample to compare with; a counter that went
    back (the container restarted) counts as idle."""
    if cpu_ns is None or prev_ns is None or when is None or prev_when is None or when <= prev_when:
        return None
    return max(cpu_ns - prev_ns, 0) / ((when - prev_when) * 1e9) * 100.0
