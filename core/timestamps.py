"""RFC 3339 times (image configs and their history, container records, log lines) as
seconds since the epoch.

Parsed by arithmetic on the fields, without datetime, calendar or _strptime: those cost
~3 ms of every ``ps`` or ``images`` that prints a CREATED column. The fields are checked
(February 30th, hour 24 or second 60 is not a time, as Go's ``time.Parse`` refuses them):
these strings come from images anyone may have written, and a bad one is None here, never
an exception.
"""

from __future__ import annotations

from .importcost import LazyPattern

# [0-9], not \d: \d takes any script's digits (a full-width "２020"), and int() reads them
_RFC3339 = LazyPattern(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                       r"(\.[0-9]+)?(Z|z|[+-][0-9]{2}:?[0-9]{2})?\Z")
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS[month - 1]


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard
    Hinnant's ``days_from_civil``)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_rfc3339(value: object) -> float | None:
    """``2026-12-03T08:26:20.61Z`` -> seconds since the epoch; None for anything that is
    not such a time (another type, another shape, a field out of range). No zone is UTC;
    ``t`` or a space may stand for ``T``, ``z`` for ``Z``, and the offset's colon may be
    left out."""
    if not isinstance(value, str):
        return None
    m = _RFC3339.match(value.strip())
    if not m:
        return None
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    if not (1 <= mo <= 12 and 1 <= d <= days_in_month(y, mo) and h < 24 and mi < 60 and s < 60):
        return None
    t = (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
         + (float("0" + m.group(7)) if m.group(7) else 0.0))
    tz = m.group(8)
    if tz and tz not in ("Z", "z"):
        hh, mm = int(tz[1:3]), int(tz[-2:])
        if hh >= 24 or mm >= 60:
            return None
        t -= (1 if tz[0] == "+" else -1) * (hh * 3600 + mm * 60)
    return t
