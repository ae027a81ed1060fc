import json
import threading
import time

import pytest

from core.errors import UsageError
from core.runtime import logs


def _write(path, entries):
    with open(path, "a") as f:
        for stream, text, t in entries:
            f.write(json.dumps({"log": text, "stream": stream, "time": t}) + "\n")


def test_read_tail_since_until(tmp_path):
    p = tmp_path / "c-json.log"
    _write(p, [("stdout", f"line {i}\n", f"2024-01-01T00:00:0{i}.5Z") for i in range(6)])
    _write(p, [("stderr", "oops\n", "2024-01-01T00:00:09Z")])
    all_ = list(logs.read(str(p)))
    assert [e.data for e in all_][:2] == [b"line 0\n", b"line 1\n"] and all_[-1].stream == "stderr"
    assert [e.data for e in logs.read(str(p), tail=2)] == [b"line 5\n", b"oops\n"]
    assert list(logs.read(str(p), tail=0)) == []
    assert len(list(logs.read(str(p), tail=100))) == 7
    since = logs.parse_since("2024-01-01T00:00:04Z")
    assert [e.data for e in logs.read(str(p), since=since)][0] == b"line 4\n"
    until = logs.parse_since("2024-01-01T00:00:02Z")
    assert [e.data for e in logs.read(str(p), until=until)] == [b"line 0\n", b"line 1\n"]
    assert list(logs.read(str(tmp_path / "missing.log"))) == []


def test_tail_on_a_big_file(tmp_path):
    p = tmp_path / "big.log"
    _write(p, [("stdout", f"{i:06d}" + "x" * 200 + "\n", "2024-01-01T00:00:00Z")
               for i in range(2000)])
    got = [e.data[:6] for e in logs.read(str(p), tail=3)]
    assert got == [b"001997", b"001998", b"001999"]


def test_follow_until_not_running(tmp_path):
    p = tmp_path / "f.log"
    _write(p, [("stdout", "first\n", "2024-01-01T00:00:00Z")])
    running = [True]

    def writer():
        time.sleep(0.2)
        _write(p, [("stdout", "second\n", "2024-01-01T00:00:01Z")])
        time.sleep(0.1)
        _write(p, [("stdout", "last\n", "2024-01-01T00:00:02Z")])
        running[0] = False

    t = threading.Thread(target=writer)
    t.start()
    got = [e.data for e in logs.read(str(p), follow=True, running=lambda: running[0],
                                     poll_interval=0.02)]
    t.join()
    assert got == [b"first\n", b"second\n", b"last\n"]


def test_parse_since():
    now = 1_000_000.0
    assert logs.parse_since("10m", now) == now - 600
    assert logs.parse_since("1h30m", now) == now - 5400
    assert logs.parse_since("1700000000", now) == 1700000000.0
    assert logs.parse_since("2024-01-01T01:00:00+01:00") == logs.parse_since("2024-01-01T00:00:00Z")
    assert logs.parse_since(None) is None
    with pytest.raises(UsageError):
        logs.parse_since("yesterday")
