"""core/timestamps.py: RFC 3339 times by arithmetic, checked, never an exception; and the
CREATED columns and image history that show them."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from core.store.image import Image
from core.timestamps import days_from_civil, parse_rfc3339
from workbench.api.shapes import unix_time
from workbench.format import ago, parse_time


def _reference(y, mo, d, h, mi, s, frac, offset_minutes) -> float:
    tz = timezone(timedelta(minutes=offset_minutes))
    return datetime(y, mo, d, h, mi, s, tzinfo=tz).timestamp() + frac


def test_every_day_from_1_to_9999_counts_as_datetime_does():
    epoch = datetime(1970, 1, 1).toordinal()
    day = datetime(1, 1, 1)
    for n in range(0, 3652059, 97):  # every 97th day of 0001-01-01 .. 9999-12-31
        d = day + timedelta(days=n)
        assert days_from_civil(d.year, d.month, d.day) == d.toordinal() - epoch, d


def test_random_times_with_fractions_and_offsets_equal_datetime():
    rng = random.Random(16)
    for _ in range(3000):
        y, mo = rng.randint(1, 9999), rng.randint(1, 12)
        d = rng.randint(1, (datetime(y + (mo == 12), mo % 12 + 1, 1) - timedelta(days=1)).day
                        if y < 9999 or mo < 12 else 31)
        h, mi, s = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
        digits = rng.choice(["", "5", "25", "123456", "123456789"])
        frac = float("0." + digits) if digits else 0.0
        off = rng.choice([0, 60, -90, 330, -720, 840])
        zone = "Z" if off == 0 and rng.random() < 0.5 else \
            f"{'+' if off >= 0 else '-'}{abs(off) // 60:02d}:{abs(off) % 60:02d}"
        text = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{'.' + digits if digits else ''}{zone}"
        if 1 < y < 9999:   # datetime cannot shift a time across year 1 or 9999
            assert parse_rfc3339(text) == pytest.approx(_reference(y, mo, d, h, mi, s, frac, off),
                                                        abs=1e-6), text


@pytest.mark.parametrize("text, expected", [
    ("1970-01-01T00:00:00Z", 0.0),
    ("2024-02-29T12:00:00.5+01:30", 1709202600.5),
    ("2000-02-29T00:00:00Z", 951782400.0),
    ("2026-12-03 08:26:20z", 1796286380.0),       # a space for T, a lower-case z
    ("2026-12-03T08:26:20+0100", 1796282780.0),   # the offset without its colon
    ("2026-12-03T08:26:20", 1796286380.0),        # no zone: UTC
    ("0001-01-01T00:00:00Z", -62135596800.0),     # Go's zero time
])
def test_times_that_are_times(text, expected):
    assert parse_rfc3339(text) == expected


@pytest.mark.parametrize("value", [
    "2020-02-30T00:00:00Z", "2021-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
    "2020-13-01T00:00:00Z", "2020-00-10T00:00:00Z", "2020-04-31T00:00:00Z",
    "2020-01-00T00:00:00Z", "2020-01-01T24:00:00Z", "2020-01-01T00:60:00Z",
    "2020-01-01T00:00:60Z", "2020-01-01T00:00:00+24:00", "2020-01-01T00:00:00+01:60",
    "2020-13-45T99:99:99Z", "2020-01-01", "2020-01-01T00:00Z", "yesterday", "",
    "2020-01-01T00:00:00Zjunk", "\uff12020-01-01T00:00:00Z", 5, 5.5, None, ["2020"], {"a": 1},
])
def test_anything_else_is_none_not_an_exception(value):
    assert parse_rfc3339(value) is None


def test_the_created_columns_show_n_a_for_a_time_that_is_not_one():
    # what a stored image from before the load-time check may still hold
    for value in ("2020-02-30T00:00:00Z", "2020-13-45T99:99:99Z", ["x"], {"a": 1}, True):
        assert parse_time(value) is None
        assert ago(value) == "N/A"
        assert unix_time(value) == 0
    assert parse_time("1700000000.5") == 1700000000.5
    assert parse_time(1700000000) == 1700000000.0
    assert ago("2026-12-03T08:26:20Z", now=1796286380.0 + 180) == "3 minutes ago"
    assert unix_time("2026-12-03T08:26:20.61Z") == 1796286380
    assert unix_time("2026-12-03T09:26:20+01:00") == 1796286380   # the offset counts


def test_an_image_history_of_the_wrong_shape_shows_what_it_can():
    cfg = {"rootfs": {"diff_ids": []}, "created": "2020-02-30T00:00:00Z",
           "history": [5, {"created": "x", "created_by": "RUN true"}, "y"]}
    img = Image(id="sha256:" + "a" * 64, manifest_digest="sha256:" + "b" * 64, manifest={},
                config=cfg)
    rows = img.history()
    assert [r["CreatedBy"] for r in rows] == ["RUN true"]
    assert ago(rows[0]["Created"]) == "N/A"
    img.config = dict(cfg, history={"not": "a list"})
    assert img.history() == []


def test_the_created_columns_import_no_datetime():
    """datetime, calendar and _strptime (with locale) cost ~3 ms of each `ps` or
    `images` that prints a CREATED column."""
    code = ("import sys, json\n"
            "from workbench.format import ago\n"
            "from workbench.api.shapes import unix_time\n"
            "ago('2026-12-03T08:26:20.123456789Z'); unix_time('2026-12-03T08:26:20Z')\n"
            "print(json.dumps({m: m in sys.modules for m in\n"
            "                  ('datetime', 'calendar', '_strptime', 'locale')}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == {"datetime": False, "calendar": False, "_strptime": False,
                                      "locale": False}
