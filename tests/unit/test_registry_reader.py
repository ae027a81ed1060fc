"""BlobReader: transparent Range resume, RestartLayer when the registry cannot resume."""

from __future__ import annotations

import hashlib
import http.client
import threading

import pytest

from core.errors import NotFound, RegistryError
from core.registry.client import RetryPolicy
from core.registry.reader import BlobReader, Cancelled, RestartLayer
from core.registry.transport import ConnectionDropped

BLOB = bytes(range(256)) * 400  # 102400 bytes
DESC = {"digest": "sha256:" + hashlib.sha256(BLOB).hexdigest(), "size": len(BLOB)}


class FakeResponse:
    def __init__(self, status, body=b"", headers=None, fail_after=None, error=ConnectionResetError):
        self.status = status
        self.reason = "X"
        self.body = body
        self.pos = 0
        self.headers = headers or {}
        self.fail_after = fail_after
        self.error = error
        self.closed_with = None

    @property
    def content_length(self):
        v = self.headers.get("Content-Length")
        return int(v) if v is not None else None

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def read(self, n=-1):
        if self.fail_after is not None and self.pos >= self.fail_after:
            if self.error is None:
                return b""  # a clean close before Content-Length
            raise self.error(104, "Connection reset by peer") if self.error is ConnectionResetError \
                else self.error(b"")
        end = len(self.body) if n < 0 else self.pos + n
        if self.fail_after is not None:
            end = min(end, self.fail_after)
        out = self.body[self.pos:end]
        self.pos += len(out)
        return out

    read1 = read

    def close(self, reuse=True):
        self.closed_with = reuse

    def drain(self, limit=0):
        return b""


class FakeClient:
    domain = "reg.example"

    def __init__(self, script):
        self.script = list(script)   # callables offset -> FakeResponse
        self.calls = []
        self.retry = RetryPolicy(resume_delay=0.0, max_resumes=3)
        self.sleeps = []

    def sleep(self, s):
        self.sleeps.append(s)

    def open_blob(self, repo, digest, offset=0, urls=None):
        self.calls.append(offset)
        return self.script.pop(0)(offset)

    def fail(self, r, what):
        return RegistryError(f"{what}: {r.status}")


def full(status=200, fail_after=None, error=ConnectionResetError):
    return lambda off: FakeResponse(status, BLOB, {"Content-Length": str(len(BLOB))}, fail_after, error)


def partial(fail_after=None, start_override=None, status=206):
    def make(off):
        start = off if start_override is None else start_override
        body = BLOB[start:]
        return FakeResponse(status, body, {"Content-Length": str(len(body)),
                                           "Content-Range": f"bytes {start}-{len(BLOB) - 1}/{len(BLOB)}"},
                            fail_after)
    return make


def drain(reader, n=7000) -> bytes:
    out = []
    while True:
        b = reader.read(n)
        if not b:
            break
        out.append(b)
    return b"".join(out)


def test_plain_read():
    c = FakeClient([full()])
    assert drain(BlobReader(c, "r", DESC)) == BLOB
    assert c.calls == [0]


@pytest.mark.parametrize("error", [ConnectionResetError, http.client.IncompleteRead, None])
def test_resume_after_drop_uses_range_at_exact_offset(error):
    c = FakeClient([full(fail_after=30000, error=error), partial()])
    r = BlobReader(c, "r", DESC)
    data = drain(r, 10000)
    assert data == BLOB
    assert c.calls == [0, 30000]
    assert r.resumes == 1


def test_several_resumes():
    c = FakeClient([full(fail_after=1000), partial(fail_after=5000), partial()])
    assert drain(BlobReader(c, "r", DESC)) == BLOB
    assert c.calls == [0, 1000, 6000]


def test_200_on_resume_means_restart_layer():
    c = FakeClient([full(fail_after=1000), full()])
    r = BlobReader(c, "r", DESC)
    with pytest.raises(RestartLayer, match="cannot resume at byte 1000"):
        drain(r)


def test_wrong_content_range_means_restart_layer():
    c = FakeClient([full(fail_after=1000), partial(start_override=0)])
    with pytest.raises(RestartLayer):
        drain(BlobReader(c, "r", DESC))


def test_resumes_are_bounded():
    c = FakeClient([full(fail_after=10)] + [partial(fail_after=10)] * 10)
    r = BlobReader(c, "r", DESC)
    with pytest.raises(ConnectionDropped, match="after 3 resumes"):
        drain(r)
    assert len(c.calls) == 4


def test_never_reads_past_declared_size():
    longer = BLOB + b"EXTRA"
    c = FakeClient([lambda off: FakeResponse(200, longer, {})])
    assert drain(BlobReader(c, "r", DESC)) == BLOB


def test_size_mismatch_in_content_length_is_refused():
    c = FakeClient([lambda off: FakeResponse(200, BLOB, {"Content-Length": "5"})])
    with pytest.raises(RegistryError, match="sends 5 bytes"):
        BlobReader(c, "r", DESC).read(10)


def test_missing_blob_is_not_found():
    c = FakeClient([lambda off: FakeResponse(404)])
    with pytest.raises(NotFound):
        BlobReader(c, "r", DESC).read(10)


def test_lazy_open_and_cancel():
    c = FakeClient([full()])
    ev = threading.Event()
    r = BlobReader(c, "r", DESC, cancel=ev)
    assert c.calls == []  # nothing is requested until the first read
    r.read(10)
    ev.set()
    with pytest.raises(Cancelled):
        r.read(10)


def test_progress_events():
    events = []
    c = FakeClient([full()])
    drain(BlobReader(c, "r", DESC, progress=events.append), n=4096)
    assert events[-1].action == "Downloading" and events[-1].current == len(BLOB) == events[-1].total


def test_run_all_first_failure_stops_the_others():
    import time

    from core.registry.parallel import run_all

    cancel = threading.Event()
    seen = []

    def work(i):
        if i == 2:
            time.sleep(0.05)
            raise RegistryError("layer 2 broke")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:  # a long download that checks the flag
            if cancel.is_set():
                seen.append(i)
                raise Cancelled("stopped")
            time.sleep(0.01)

    t0 = time.monotonic()
    with pytest.raises(RegistryError, match="layer 2 broke"):
        run_all(work, [0, 1, 2, 3, 4], 3, cancel)
    assert time.monotonic() - t0 < 3
    # the running ones stopped; at most one more item slipped in before the queue was cancelled
    assert {0, 1} <= set(seen) and len(seen) <= 3
