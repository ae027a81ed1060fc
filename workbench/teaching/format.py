"""Small, pure formatting helpers (no Textual imports: unit-testable on their own)."""

from __future__ import annotations

import shlex
from typing import Iterable, Sequence

SPARK = "▁▂▃▄▅▆▇█"


def ibytes(n: float | int | None) -> str:
    """Binary units like ``docker stats`` (``12.5MiB``); ``-`` for unknown."""
    if n is None:
        return "-"
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    value = float(n)
    i = 0
    while abs(value) >= 1024 and i < len(units) - 1:
        value /= 1024
        i += 1
    if i == 0:
        return f"{int(value)}B"
    return f"{value:.3g}{units[i]}" if value < 100 else f"{value:.0f}{units[i]}"


def dbytes(n: float | int | None) -> str:
    """Decimal units like Docker's NET I/O and BLOCK I/O columns (``1.2kB``)."""
    if n is None:
        return "-"
    units = ["B", "kB", "MB", "GB", "TB"]
    value = float(n)
    i = 0
    while abs(value) >= 1000 and i < len(units) - 1:
        value /= 1000
        i += 1
    if i == 0:
        return f"{int(value)}B"
    return f"{value:.3g}{units[i]}"


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
