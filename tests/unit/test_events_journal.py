"""The event journal (core/journal.py) and its reader (core/eventfeed.py): whole lines
from concurrent processes, rotation, modes, hostile lines, since/until, Docker's filters,
follow, and the CLI's line format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from core import eventfeed, journal
from core.errors import UsageError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _events(root, **kw):
    kw.setdefault("follow", False)
    return list(eventfeed.read(str(root), **kw))


def test_line_is_dockers_message_shape(tmp_path):
    journal.record(str(tmp_path), "container", "die", "c" * 64,
                   {"image": "busybox", "name": "web", "exitCode": 3, "q": 'a"\n\x01'})
    raw = (tmp_path / "events.log").read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    ev = json.loads(raw)
    assert list(ev) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time",
                        "timeNano"]
    assert ev["status"] == "die" and ev["id"] == "c" * 64 and ev["from"] == "busybox"
    assert ev["Actor"] == {"ID": "c" * 64, "Attributes": {
        "image": "busybox", "name": "web", "exitCode": "3", "q": 'a"\n\x01'}}
    assert ev["scope"] == "local" and ev["time"] == ev["timeNano"] // 10**9
    assert (os.stat(tmp_path / "events.log").st_mode & 0o777) == 0o600


def test_network_and_volume_events_have_no_legacy_fields(tmp_path):
    journal.record(str(tmp_path), "network", "create", "n1", {"name": "x", "type": "bridge"})
    journal.record(str(tmp_path), "volume", "destroy", "v1", {"driver": "local"})
    evs = _events(tmp_path)
    assert [e["Type"] for e in evs] == ["network", "volume"]
    assert not any(k in e for e in evs for k in ("status", "id", "from"))


def test_unwritable_journal_is_ignored(tmp_path):
    journal.record(str(tmp_path / "missing"), "image", "tag", "sha256:x", {})
    os.mkdir(tmp_path / "events.log")        # not a file: the write fails, quietly
    journal.record(str(tmp_path), "image", "tag", "sha256:x", {})


def test_symlinked_journal_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("")
    os.symlink(target, tmp_path / "events.log")
    journal.record(str(tmp_path), "image", "tag", "sha256:x", {})
    assert target.read_text() == ""


_WRITER = """
import sys
sys.path.insert(0, %r)
from core import journal
root, tag = sys.argv[1], sys.argv[2]
for i in range(300):
    journal.record(root, "container", "start", tag + str(i), {"pad": "x" * (i * 37 %% 5000)})
"""


def test_concurrent_writers_keep_whole_lines(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER % REPO, str(tmp_path), f"w{n}-"])
             for n in range(6)]
    for p in procs:
        assert p.wait(60) == 0
    lines = (tmp_path / "events.log").read_bytes().split(b"\n")
    assert lines[-1] == b""
    evs = [json.loads(x) for x in lines[:-1]]      # every line is whole JSON
    assert len(evs) == 6 * 300
    ids = {e["Actor"]["ID"] for e in evs}
    assert len(ids) == 6 * 300


def test_rotation_keeps_old_events_readable(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "MAX_BYTES", 4000)
    for i in range(60):
        journal.record(str(tmp_path), "volume", "create", f"v{i}", {"driver": "local"})
    assert (tmp_path / "events.log.1").exists()
    assert os.path.getsize(tmp_path / "events.log") <= 4000 + 300
    evs = _events(tmp_path, since=0)
    names = [e["Actor"]["ID"] for e in evs]
    # the rotated file and the current one, oldest first, nothing twice
    assert names == sorted(names, key=lambda n: int(n[1:]))
    assert len(names) == len(set(names)) and names[-1] == "v59"


def test_a_write_that_rotates_leaves_no_current_file_and_replay_reads_the_old(
        tmp_path, monkeypatch):
    root = str(tmp_path)
    line = journal.encode("volume", "create", "v0", {})
    monkeypatch.setattr(journal, "MAX_BYTES", 3 * len(line) - 1)
    for i in range(3):
        journal.record(root, "volume", "create", f"v{i}", {})
    # the third write passed the limit and rotated: no events.log until the next event
    assert not (tmp_path / "events.log").exists()
    assert [e["Actor"]["ID"] for e in _events(tmp_path, since=0)] == ["v0", "v1", "v2"]
    journal.record(root, "volume", "create", "v3", {})
    assert [e["Actor"]["ID"] for e in _events(tmp_path, since=0)] == ["v0", "v1", "v2", "v3"]


def test_garbage_partial_and_huge_lines_are_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(eventfeed, "MAX_LINE", 10_000)
    root = str(tmp_path)
    journal.record(root, "image", "tag", "sha256:a", {"name": "a:1"})
    with open(journal.path(root), "ab") as f:
        f.write(b"not json\n")
        f.write(b'{"Type": "image"}\n')                 # JSON, not an event
        f.write(b"[1, 2]\n\xff\xfe\n")
        f.write(b"{" * 100_000 + b"\n")                  # huge (and deeply nested)
        f.write(b'{"Type": "image", "Action": "x", "Actor": {"ID": 1, "Attributes": 5},'
                b' "timeNano": 1}\n')
        f.write(b'{"Type": "image", "Act')              # a torn write, then the next line
    journal.record(root, "image", "tag", "sha256:b", {"name": "b:1"})
    journal.record(root, "image", "tag", "sha256:c", {"name": "c:1"})
    evs = _events(tmp_path, since=0, filters=["event=tag"])
    assert [e["Actor"]["ID"] for e in evs] == ["sha256:a", "sha256:c"]


# --------------------------------------------------------------------------- times

@pytest.mark.parametrize("value, want", [
    ("1700000000", 1700000000.0),
    ("1700000000.5", 1700000000.5),
    ("10m", 1000.0 - 600),
    ("1h30m", 1000.0 - 5400),
    ("1.5s", 998.5),
    ("0s", 1000.0),
    ("0", 1000.0),
    ("2023-11-14T22:13:20Z", 1700000000.0),
    ("2023-11-14T22:13:20.25+00:00", 1700000000.25),
    ("2023-11-14T23:13:20+01:00", 1700000000.0),
])
def test_parse_time(value, want):
    assert eventfeed.parse_time(value, now=1000.0) == pytest.approx(want)


def test_parse_time_local_and_errors():
    import datetime

    local = datetime.datetime(2026, 12, 3).timestamp()
    assert eventfeed.parse_time("2026-12-03", now=0) == local
    for bad in ("", "yesterday", "10x", "2026-13-45"):
        with pytest.raises(UsageError):
            eventfeed.parse_time(bad, now=0)


def test_since_until_window(tmp_path):
    root = str(tmp_path)
    base = 1_700_000_000 * 10**9
    with open(journal.path(root), "ab") as f:
        for i in range(5):
            f.write(journal.encode("volume", "create", f"v{i}", {}, time_ns=base + i * 10**9))
    ids = [e["Actor"]["ID"] for e in _events(tmp_path, since=1_700_000_001, until="1700000003")]
    assert ids == ["v1", "v2", "v3"]
    # following with an until in the past ends at once
    assert len(list(eventfeed.read(root, since=0, until=1_700_000_001))) == 2


# --------------------------------------------------------------------------- filters

def _ev(typ, action, aid, **attrs):
    return json.loads(journal.encode(typ, action, aid, attrs))


CONTAINER = _ev("container", "start", "abc123", image="busybox:latest", name="web", app="x")
IMAGE = _ev("image", "tag", "sha256:ff", name="me/app:1")
NETWORK = _ev("network", "connect", "n1", container="abc123", name="front", type="bridge")
EXEC = _ev("container", "exec_create: sh -c ls", "abc123", image="busybox", name="web")


@pytest.mark.parametrize("filters, want", [
    (["type=container"], [CONTAINER, EXEC]),
    (["type=image", "type=network"], [IMAGE, NETWORK]),          # same key: OR
    (["type=container", "event=start"], [CONTAINER]),            # keys: AND
    (["event=exec_create"], [EXEC]),                              # Docker's prefix rule
    (["container=web"], [CONTAINER, EXEC]),
    (["container=abc"], [CONTAINER, EXEC]),                       # an ID prefix
    (["image=busybox"], [CONTAINER, EXEC]),                       # the tag stripped
    (["image=me/app"], [IMAGE]),
    (["image=sha256:ff"], [IMAGE]),
    (["network=front"], [NETWORK]),
    (["label=app"], [CONTAINER]),
    (["label=app=x"], [CONTAINER]),
    (["label=app=y"], []),
    (["label=app", "label=other"], []),                           # labels: all must match
    (["name=front"], [NETWORK]),
    (["scope=local"], [CONTAINER, IMAGE, NETWORK, EXEC]),
    ({"type": {"image": True}}, [IMAGE]),                         # the API's old form
    ({"type": ["image"], "event": ["tag"]}, [IMAGE]),
])
def test_filters(filters, want):
    f = eventfeed.parse_filters(filters)
    got = [e for e in (CONTAINER, IMAGE, NETWORK, EXEC) if eventfeed.matches(e, f)]
    assert got == want


def test_bad_filters():
    with pytest.raises(UsageError):
        eventfeed.parse_filters(["nonsense=1"])
    with pytest.raises(UsageError):
        eventfeed.parse_filters(["type"])


# --------------------------------------------------------------------------- follow

def test_follow_sees_new_events_from_another_process_and_rotation(tmp_path, monkeypatch):
    root = str(tmp_path)
    journal.record(root, "volume", "create", "old", {})
    stop = threading.Event()
    got: list[str] = []

    def reader():
        for ev in eventfeed.read(root, stop=stop):
            got.append(ev["Actor"]["ID"])
            if len(got) == 3:
                stop.set()

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.3)
    subprocess.run([sys.executable, "-c",
                    f"import sys; sys.path.insert(0, {REPO!r}); from core import journal; "
                    f"journal.record({root!r}, 'volume', 'create', 'new1', {{}})"], check=True)
    journal.record(root, "volume", "create", "new2", {})
    os.rename(journal.path(root), journal.path(root) + ".1")     # a rotation
    journal.record(root, "volume", "create", "new3", {})
    t.join(10)
    assert not t.is_alive()
    assert got == ["new1", "new2", "new3"]                       # no --since: only new ones


def test_follow_ends_when_stop_or_until(tmp_path):
    root = str(tmp_path)
    t0 = time.monotonic()
    assert list(eventfeed.read(root, stop=lambda: time.monotonic() - t0 > 0.3)) == []
    t0 = time.monotonic()
    assert list(eventfeed.read(root, until=time.time() + 0.3)) == []
    assert time.monotonic() - t0 < 5


# --------------------------------------------------------------------------- the CLI line

def test_cli_line_format(monkeypatch):
    from workbench.cli.events import format_event

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        ev = _ev("container", "start", "3f2a", name="web", image="busybox")
        ev["timeNano"] = 1_796_286_600_123_456_789
        assert format_event(ev) == ("2026-12-03T08:30:00.123456789Z container start 3f2a "
                                    "(image=busybox, name=web)")
        monkeypatch.setenv("TZ", "EST5EDT")       # local time, with its offset
        time.tzset()
        assert format_event(ev).startswith("2026-12-03T03:30:00.123456789-05:00 ")
    finally:
        monkeypatch.undo()
        time.tzset()


def test_until_alone_replays_like_docker(tmp_path):
    root = str(tmp_path)
    journal.record(root, "volume", "create", "before", {})
    assert [e["Actor"]["ID"] for e in eventfeed.read(root, until="0s")] == ["before"]


def test_deeply_nested_line_under_the_size_limit_is_skipped(tmp_path):
    root = str(tmp_path)
    with open(journal.path(root), "ab") as f:
        f.write(b"[" * 500_000 + b"\n")
        f.write(b'{"Type": "x", "Action": "y", "Actor": {"ID": "z", "Attributes": {}},'
                b' "timeNano": ' + b"9" * 5000 + b"}\n")          # an absurd integer
    journal.record(root, "volume", "create", "ok", {})
    assert [e["Actor"]["ID"] for e in _events(tmp_path, since=0)] == ["ok"]


def test_concurrent_writers_rotating_keep_whole_lines(tmp_path):
    script = _WRITER.replace("from core import journal",
                             "from core import journal; journal.MAX_BYTES = 50_000")
    procs = [subprocess.Popen([sys.executable, "-c", script % REPO, str(tmp_path), f"w{n}-"])
             for n in range(4)]
    for p in procs:
        assert p.wait(60) == 0
    seen = []
    assert (tmp_path / "events.log.1").exists()          # ~3 MB written: it rotated
    for name in ("events.log.1", "events.log"):
        # events.log is missing when the run's very last write rotated the journal
        raw = (tmp_path / name).read_bytes() if (tmp_path / name).exists() else b""
        assert raw == b"" or raw.endswith(b"\n")
        seen += [json.loads(x)["Actor"]["ID"] for x in raw.split(b"\n")[:-1]]
    assert len(seen) == len(set(seen)) > 0
    assert [e["Actor"]["ID"] for e in _events(tmp_path, since=0)] == seen
