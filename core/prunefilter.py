"""``--filter`` of ``container prune`` and ``image prune``, as Docker reads it.

    until=<timestamp|RFC 3339|duration>   only objects created before that time
    label=<key>[=<value>]                 only objects with that label (and value)
    label!=<key>[=<value>]                only objects without it

Several filters must all hold; ``label`` given twice needs both labels. Anything else is
refused (Docker: ``invalid filter 'x'``), so a typo never widens what a prune removes.
"""

from __future__ import annotations

from .errors import UsageError

KNOWN = ("until", "label", "label!")


def parse(items: list[str] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or not key or not value.strip():
            raise UsageError(f"bad format of filter (expected name=value): {item}")
        if key not in KNOWN:
            raise UsageError(f"invalid filter '{key.rstrip('!')}'",
                             hint="prune filters: until=, label=, label!=")
        out.setdefault(key, []).append(value.strip())
    if "until" in out:
        from .runtime.logs import parse_since

        try:
            for v in out["until"]:
                parse_since(v)
        except UsageError:
            raise UsageError(f"invalid value for filter until: {out['until'][0]!r}",
                             hint="a unix timestamp, an RFC 3339 date or a duration "
                                  "such as 24h") from None
    return out


def matches(filters: dict[str, list[str]] | None, created: float | None,
            labels: dict | None, now: float | None = None) -> bool:
    """Whether an object created at ``created`` (unix time) with ``labels`` passes."""
    if not filters:
        return True
    labels = labels or {}
    if filters.get("until"):
        from .runtime.logs import parse_since

        for v in filters["until"]:
            until = parse_since(v, now)      # never None: parse() refuses an empty value
            if created is None or (until is not None and created >= until):
                return False
    for spec in filters.get("label", []):
        key, sep, value = spec.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    for spec in filters.get("label!", []):
        key, sep, value = spec.partition("=")
        if key in labels and (not sep or labels[key] == value):
            return False
    return True
