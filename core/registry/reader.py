"""A blob download as a file-like reader that survives dropped connections.

``BlobReader.read(n)`` hands out the compressed blob bytes straight from the HTTP
response, so the store can hash, decompress and unpack them in one pass with no temporary
copy. When the connection drops (reset, timeout, or a body that ends before its
``Content-Length``), the reader reconnects with ``Range: bytes=N-`` where N is the number
of bytes already handed out, and carries on transparently:

* only a ``206 Partial Content`` whose ``Content-Range`` starts exactly at N is accepted
  (c/image ``docker/body_reader.go`` does the same);
* anything else (a ``200`` with the whole blob, a different range) raises
  :class:`RestartLayer`: the consumer has already used bytes 0..N-1 and cannot rewind,
  so the caller must discard its work and start the layer again from scratch;
* resumes are bounded (``RetryPolicy.max_resumes``) and spaced by ~1 s plus jitter.

The reader never hands out more than the descriptor's ``size`` bytes; the store verifies
the digest of what it got, so a truncated or tampered blob never becomes visible.
"""

from __future__ import annotations

import random
import ssl
import threading
import time

from ..errors import NotFound, RegistryError
from ..events import ProgressFn, emit
from .transport import TRANSIENT_ERRORS, ConnectionDropped, Response

PROGRESS_STEP = 256 * 1024
PROGRESS_INTERVAL = 0.1


class RestartLayer(RegistryError):
    """The download broke and cannot be resumed at the right offset: restart the layer."""


class Cancelled(RegistryError):
    """Another part of the pull failed; this download stops."""


def short_id(digest: str) -> str:
    return digest.partition(":")[2][:12]


class BlobReader:
    """``read(n)`` over a registry blob, resuming with ``Range`` after a dropped connection."""

    def __init__(self, client, repo: str, descriptor: dict, *, progress: ProgressFn = None,
                 progress_id: str | None = None, cancel: threading.Event | None = None):
        self.client = client
        self.repo = repo
        self.digest: str = descriptor["digest"]
        self.size: int = int(descriptor["size"])
        self.offset = 0
        self.resumes = 0
        self._resp: Response | None = None
        self._progress = progress
        self._pid = progress_id or short_id(self.digest)
        self._cancel = cancel
        self._last_emit = (0, 0.0)
        self._opened = False
        self._window = (time.monotonic(), 0)  # (start, offset) of the stall check's window

    # --- connection -------------------------------------------------------------------
    def _open(self) -> None:
        r = self.client.open_blob(self.repo, self.digest, self.offset)
        if self.offset == 0:
            if r.status == 200:
                cl = r.content_length
                if cl is not None and cl != self.size:
                    r.close(reuse=False)
                    raise RegistryError(f"blob {self.digest}: registry sends {cl} bytes, "
                                        f"the manifest says {self.size}")
                self._resp = r
                self._opened = True
                return
            if r.status == 404:
                r.drain()
                raise NotFound(f"blob {self.digest} not found in {self.client.domain}/{self.repo}")
            raise self.client.fail(r, f"download of blob {self.digest}")
        # a resume: only an exact 206 will do
        if r.status == 206:
            cr = (r.header("Content-Range") or "").strip()
            if cr.startswith(f"bytes {self.offset}-"):
                self._resp = r
                return
        status = r.status
        r.close(reuse=False)
        if status == 404:
            raise NotFound(f"blob {self.digest} not found in {self.client.domain}/{self.repo}")
        raise RestartLayer(f"blob {self.digest}: cannot resume at byte {self.offset} "
                           f"(registry answered {status})")

    def _dropped(self, why: str) -> None:
        if self._resp is not None:
            self._resp.close(reuse=False)
            self._resp = None
        policy = self.client.retry
        if self.resumes >= policy.max_resumes:
            raise ConnectionDropped(f"download of blob {short_id(self.digest)} failed after "
                                    f"{self.resumes} resumes at byte {self.offset} of {self.size}: {why}")
        self.resumes += 1
        emit(self._progress, self._pid, "Retrying", self.offset, self.size,
             message=f"connection lost ({why}); resuming at byte {self.offset}")
        delay = policy.resume_delay * (1 + random.random() / 2)
        if delay > 0:
            self.client.sleep(delay)

    # --- file-like --------------------------------------------------------------------
    def read(self, n: int = -1) -> bytes:
        if self._cancel is not None and self._cancel.is_set():
            raise Cancelled("pull cancelled")
        remaining = self.size - self.offset
        if remaining <= 0:
            self._finish()
            return b""
        want = remaining if n is None or n < 0 else min(n, remaining)
        if want == 0:
            return b""
        chunks: list[bytes] = []
        got = 0
        while got < want:
            if self._resp is None:
                self._open()
                self._window = (time.monotonic(), self.offset)
            resp = self._resp
            assert resp is not None          # _open() sets it or raises
            try:
                # what has arrived, not all of ``want``: a trickle must not hold the read
                # (and the stall check) for as long as it takes to fill it
                data = resp.read1(want - got)
            except (*TRANSIENT_ERRORS, ssl.SSLError, OSError) as exc:
                self._dropped(f"{type(exc).__name__}: {exc}".rstrip(": "))
                continue
            if not data:
                self._dropped("connection closed early")
                continue
            chunks.append(data)
            got += len(data)
            self.offset += len(data)
            self._report()
            stalled = self._stalled()
            if stalled:
                self._dropped(stalled)
        if self.offset >= self.size:
            self._finish()
        return b"".join(chunks)

    def _stalled(self) -> str | None:
        """Why the transfer counts as stalled (slower than the policy's ``min_rate`` over its
        ``stall_seconds``), or None; each window starts where the last one ended."""
        policy = self.client.retry
        t0, off0 = self._window
        now = time.monotonic()
        if not policy.stall_seconds or now - t0 < policy.stall_seconds:
            return None
        moved = self.offset - off0
        self._window = (now, self.offset)
        if moved < policy.min_rate * (now - t0):
            return (f"transfer stalled: {moved} bytes in {now - t0:.0f} s "
                    f"(under {policy.min_rate:.0f} bytes/s)")
        return None

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def _report(self) -> None:
        if self._progress is None:
            return
        last_off, last_t = self._last_emit
        now = time.monotonic()
        if self.offset - last_off >= PROGRESS_STEP or now - last_t >= PROGRESS_INTERVAL \
                or self.offset >= self.size:
            self._last_emit = (self.offset, now)
            emit(self._progress, self._pid, "Downloading", self.offset, self.size)

    def _finish(self) -> None:
        if self._resp is not None:
            # the body is complete: let the connection go back to the pool
            r, self._resp = self._resp, None
            r.close(reuse=True)

    def close(self) -> None:
        if self._resp is not None:
            r, self._resp = self._resp, None
            r.close(reuse=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
