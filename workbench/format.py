"""The formatters the CLI and the app share: sizes, durations, "... ago", the PORTS column,
CPU %. One of each, so ``nutshell images`` and the Images pane print the same ``5.6MB``.
Then the panes' own: binary/decimal sizes for cgroup figures, percentages, text
sparklines, bars and charts, the equivalent ``nutshell ...`` line of an action.

Pure functions, no Textual, rich or argparse: importing this costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from core.durations import human_duration
from core.timestamps import parse_rfc3339

__all__ = ["human_size", "human_duration", "parse_time", "ago", "ports_column", "cpu_percent",
           "ibytes", "dbytes", "percent", "pct", "sparkline", "bar", "chart", "command",
           "short_id", "duration"]

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


def parse_time(value: object) -> float | None:
    """RFC 3339 (with nanoseconds) or epoch seconds -> epoch seconds; None for no time
    and for anything else (an image's ``created`` is whatever its author wrote)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    v = value.strip()
    if v.isascii() and v.replace(".", "", 1).isdigit():
        return float(v)
    return parse_rfc3339(v)


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
    try:
        ports = engine.container_ports(item["Id"])
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

SPARK = "▁▂▃▄▅▆▇█"


def _sized(n: float | int | None, base: int, units: Sequence[str], whole_from_100: bool) -> str:
    """``n`` divided by ``base`` until it is below it (or the units run out), with its
    unit: whole bytes, else 3 significant digits (no decimals from 100 on with
    ``whole_from_100``); ``-`` for unknown."""
    if n is None:
        return "-"
    value = float(n)
    i = 0
    while abs(value) >= base and i < len(units) - 1:
        value /= base
        i += 1
    if i == 0:
        return f"{int(value)}{units[0]}"
    if whole_from_100 and value >= 100:
        return f"{value:.0f}{units[i]}"
    return f"{value:.3g}{units[i]}"


def ibytes(n: float | int | None) -> str:
    """Binary units like ``docker stats`` (``12.5MiB``); ``-`` for unknown."""
    return _sized(n, 1024, ("B", "KiB", "MiB", "GiB", "TiB"), whole_from_100=True)


def dbytes(n: float | int | None) -> str:
    """Decimal units like Docker's NET I/O and BLOCK I/O columns (``1.2kB``)."""
    return _sized(n, 1000, ("B", "kB", "MB", "GB", "TB"), whole_from_100=False)


def percent(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return part * 100.0 / whole


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}%"


def sparkline(values: Sequence[float | None], width: int, top: float | None = None) -> str:
    """The last ``width`` values as block characters, scaled to ``top`` (default: their
    maximum). Missing values are blanks; a flat zero line is the lowest block."""
    vals = list(values)[-width:]
    known = [v for v in vals if v is not None]
    scale = top if top else (max(known) if known else 0.0)
    out = []
    for v in vals:
        if v is None:
            out.append(" ")
        elif scale <= 0:
            out.append(SPARK[0])
        else:
            idx = int(round(min(max(v / scale, 0.0), 1.0) * (len(SPARK) - 1)))
            out.append(SPARK[idx])
    return "".join(out).rjust(width)


def bar(fraction: float | None, width: int) -> str:
    """A horizontal gauge ``█████░░░░░`` for a fraction in [0, 1] (blank when unknown)."""
    if fraction is None:
        return "░" * width
    full = int(round(min(max(fraction, 0.0), 1.0) * width))
    return "█" * full + "░" * (width - full)


def command(*argv: str | int | None, args: Iterable[str] = ()) -> str:
    """``nutshell`` + argv, shell-quoted, None items dropped: the equivalent CLI line."""
    import shlex  # here: the CLI's hot path does not need it

    parts = ["nutshell"] + [str(a) for a in argv if a is not None] + [str(a) for a in args]
    return " ".join(shlex.quote(p) for p in parts)


def short_id(cid: str | None) -> str:
    return (cid or "")[:12]


def duration(seconds: float | None) -> str:
    """Compact duration: ``42s``, ``3m05s``, ``2h10m``, ``3d4h``."""
    if seconds is None:
        return "-"
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s // 60 % 60:02d}m"
    return f"{s // 86400}d{s // 3600 % 24}h"


def chart(values: Sequence[float | None], width: int, height: int,
          top: float | None = None) -> list[str]:
    """A ``height``-row bar chart of the last ``width`` values (eighth-block resolution),
    scaled to ``top`` (default: the maximum). Rows are returned top first."""
    vals = list(values)[-width:]
    vals = [None] * (width - len(vals)) + vals
    known = [v for v in vals if v is not None]
    scale = top if top else (max(known) if known else 0.0)
    levels = height * 8
    heights = []
    for v in vals:
        if v is None or scale <= 0:
            heights.append(0)
        else:
            heights.append(int(round(min(max(v / scale, 0.0), 1.0) * levels)))
    rows = []
    for r in range(height):
        base = (height - 1 - r) * 8
        line = []
        for h in heights:
            if h >= base + 8:
                line.append("█")
            elif h > base:
                line.append(" ▁▂▃▄▅▆▇"[h - base])
            else:
                line.append(" ")
        rows.append("".join(line))
    return rows
