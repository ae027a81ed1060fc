"""Output helpers for the headless CLI: Docker-style tables, --format templates, the prune
prompt. Sizes and times are in workbench/format.py (shared with the app)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence

from core.importcost import LazyPattern
from workbench.format import human_size

TYPE_CHECKING = False   # typing is not imported at run time: ~5 ms of every `run`
if TYPE_CHECKING:
    from typing import Any


def add_prune_flags(p, filters: bool = True) -> None:
    """``-f`` (see :func:`confirm`) and, with ``filters``, the ``--filter`` of
    core/prunefilter.py: what container, image and network prune accept."""
    p.add_argument("-f", "--force", action="store_true",
                   help="do not prompt for confirmation (a prompt needs a terminal on stdin)")
    if filters:
        p.add_argument("--filter", action="append", default=[], metavar="FILTER",
                       help="until=TIME|DURATION, label=KEY[=VALUE] or label!=KEY[=VALUE]; "
                            "repeatable, all must hold")


def add_inspect(group, help: str, func, objects: str = "names"):
    """An ``inspect`` parser under ``group`` calling ``func``: the objects (one or more, in
    ``args.<objects>``) and ``-f`` (a template). Returned for the flags a kind adds."""
    p = group.add_parser("inspect", help=help)
    p.add_argument(objects, nargs="+")
    p.add_argument("-f", "--format", help="a {{.Field}} template")
    p.set_defaults(func=func)
    return p


def confirm(warning: str, force: bool) -> bool:
    """Docker's prune prompt: ``WARNING! ...`` then ``[y/N]``, answered on a terminal.
    Without a terminal on stdin (scripts, CI) there is nobody to ask and the command goes
    ahead, as ``-f`` does."""
    if force or not sys.stdin.isatty():
        return True
    sys.stderr.write(f"WARNING! {warning}\nAre you sure you want to continue? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def print_pruned(title: str, removed: Iterable[str], reclaimed: int) -> None:
    """The end of a prune: ``Deleted <title>:``, one line each and a blank line when
    anything went, then ``Total reclaimed space: ...``."""
    removed = list(removed)
    if removed:
        print(f"Deleted {title}:")
        for line in removed:
            print(line)
        print()
    print(f"Total reclaimed space: {human_size(reclaimed)}")


def each(names: Iterable[str], fn, echo: bool = True) -> int:
    """A verb over several objects (``rm a b c``): ``fn(name)`` for each, printing what it
    returns (the name when that is None or True) with ``echo``; a failure prints
    ``nutshell: <error>`` and the others go on, as in Docker. 1 when any failed."""
    from core.errors import NutshellError

    failed = False
    for name in names:
        try:
            out = fn(name)
            if echo:
                print(name if out is None or out is True else out)
        except NutshellError as e:
            sys.stderr.write(f"nutshell: {e}\n")
            failed = True
    return 1 if failed else 0


def print_objects(objs: list, fmt: str | None) -> None:
    """``inspect`` output: one ``--format`` line per object, else one indented JSON array."""
    if fmt:
        for o in objs:
            print(render_template(fmt, o))
    else:
        print(json.dumps(objs, indent=4))


def print_inspected(names: Iterable[str], inspect, fmt: str | None, not_found: str) -> bool:
    """``inspect``: ``inspect(name)`` for each name, printed with :func:`print_objects`;
    then ``nutshell: <not_found with the name>`` on stderr for each one that raised
    NotFound. True when any was missing (the caller picks the exit code)."""
    from core.errors import NotFound

    objs, missing = [], []
    for n in names:
        try:
            objs.append(inspect(n))
        except NotFound:
            missing.append(n)
    print_objects(objs, fmt)
    for m in missing:
        sys.stderr.write(f"nutshell: {not_found.format(m)}\n")
    return bool(missing)


def print_listing(rows: list[dict], quiet: bool, fmt: str | None, quiet_key: str,
                  columns: Sequence[tuple[str, str]], unique: bool = False) -> None:
    """What a listing verb prints: with ``-q`` the ``quiet_key`` of each row (each value
    once when ``unique``), with ``--format`` what :func:`emit_formatted` makes of the rows,
    else a table of ``columns`` (header, key)."""
    if quiet:
        values = [r[quiet_key] for r in rows]
        for v in (dict.fromkeys(values) if unique else values):
            print(v)
        return
    if emit_formatted(fmt, rows):
        return
    print_table([h for h, _ in columns], [[r[k] for _, k in columns] for r in rows])


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


_FIELD_RE = LazyPattern(r"\{\{\s*(json\s+)?\.([A-Za-z0-9_.]*)\s*\}\}")   # only for --format


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
