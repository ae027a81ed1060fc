"""Output helpers for the headless CLI: Docker-style tables, sizes, times, --format."""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from core.runtime.humanize import human_duration

_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]


def confirm(warning: str, force: bool) -> bool:
    """Docker's prune prompt: ``WARNING! ...`` then ``[y/N]``, answered on a terminal.
    Without a terminal on stdin (scripts, CI) there is nobody to ask and the command goes
    ahead, as ``-f`` does."""
    if force or not sys.stdin.isatty():
        return True
    sys.stderr.write(f"WARNING! {warning}\nAre you sure you want to continue? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


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
        from datetime import timedelta

        base = base.replace(tzinfo=timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))))
    frac = float("0" + m.group(2)) if m.group(2) else 0.0
    return base.timestamp() + frac


def ago(value: str | float | None, now: float | None = None) -> str:
    t = parse_time(value)
    if t is None or t <= 0:
        return "N/A"
    now = time.time() if now is None else now
    return human_duration(max(0.0, now - t)) + " ago"


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], out=None) -> None:
    """Left-aligned columns separated by at least 3 spaces, like Docker's tabwriter."""
    out = out or sys.stdout
    rows = [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    def line(cells):
        parts = [c.ljust(widths[i]) for i, c in enumerate(cells)]
        return "   ".join(parts).rstrip()
    out.write(line(headers) + "\n")
    for r in rows:
        out.write(line(r) + "\n")


_FIELD_RE = re.compile(r"\{\{\s*(json\s+)?\.([A-Za-z0-9_.]*)\s*\}\}")


def _lookup(obj: Any, dotted: str) -> Any:
    cur = obj
    if not dotted:
        return cur
    for part in dotted.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        else:
            cur = getattr(cur, part, None)
    return cur


def render_template(template: str, obj: Any) -> str:
    """A small subset of Go templates: ``{{.Field}}``, ``{{.A.B}}``, ``{{json .X}}``, ``{{json .}}``.

    Enough for the ``--format`` uses people script with (``{{.ID}}``, ``{{.Names}}``).
    """
    template = template.replace("\\t", "\t").replace("\\n", "\n")

    def sub(m: re.Match) -> str:
        value = _lookup(obj, m.group(2))
        if m.group(1):
            return json.dumps(value)
        if value is None:
            return "<no value>"
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)

    return _FIELD_RE.sub(sub, template)


def emit_formatted(fmt: str | None, items: list[dict], headers: Sequence[str] | None = None,
                   out=None) -> bool:
    """Handle ``--format``. Returns False when the caller should print its default table.

    ``json``: one JSON object per line (as ``docker ... --format json`` does).
    ``table {{.A}}\\t{{.B}}``: a table with the given columns.
    anything else: a Go-template-lite line per item.
    """
    out = out or sys.stdout
    if not fmt or fmt == "table":
        return False
    if fmt == "json":
        for item in items:
            out.write(json.dumps(item, sort_keys=False) + "\n")
        return True
    if fmt.startswith("table "):
        tmpl = fmt[len("table "):]
        cols = [c.strip() for c in tmpl.replace("\\t", "\t").split("\t")]
        names = [(_FIELD_RE.search(c).group(2) if _FIELD_RE.search(c) else c).upper() for c in cols]
        print_table(names, [[render_template(c, it) for c in cols] for it in items], out=out)
        return True
    for item in items:
        out.write(render_template(fmt, item) + "\n")
    return True


def short_id(digest_or_id: str) -> str:
    return digest_or_id.split(":", 1)[-1][:12]
