"""Layer outputs for commit and build: the tar stream in, a compressed blob out, both
hashed (DiffID = sha256 of the tar, digest = sha256 of the blob).

Measured on this 2-core VM (tests/benchmarks/bench_commit.py, 100 MB in 5,000 files,
a third incompressible; docs/commit-volumes.md): writing the tar costs ~1 s, zlib
level 6 in the same thread adds ~4 s; the same zlib work in a second thread overlaps
with the tar walk (it releases the GIL); ``pigz`` compresses on every core in its own
process; zstd (python-zstandard, C threads) is fastest and smallest but not every
consumer reads it (Docker < 23, older registries and tools), so gzip stays the default:
through ISA-L's threaded gzip in this process (the ``isal`` package: a dependency; issue
16 asks for a binding rather than a child process), else ``pigz`` when installed, else
zlib in a worker thread. ``NUTSHELL_NO_ISAL=1`` and ``NUTSHELL_NO_PIGZ=1`` step down.

``open_output(out, compression)`` returns an object with ``write``/``close`` and the
``diff_id``, ``digest``, ``size`` (tar bytes), ``blob_size`` attributes of
core.store.tarwriter.LayerOutput.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import shutil
import subprocess
import threading
from typing import IO, BinaryIO, cast

from core.store.tarwriter import HashedOutput, LayerOutput

BATCH = 1 << 20
GZIP_LEVEL = int(os.environ.get("NUTSHELL_GZIP_LEVEL", "6"))


def pigz_path() -> str | None:
    if os.environ.get("NUTSHELL_NO_PIGZ") == "1":
        return None
    return shutil.which("pigz")


class ThreadedOutput:
    """Runs a LayerOutput (hash + compress + write) in a worker thread, fed in 1 MiB
    batches, so compression overlaps with the producer walking the tree."""

    def __init__(self, inner: LayerOutput):
        self.inner = inner
        self._q: queue.Queue = queue.Queue(maxsize=8)
        self._buf = bytearray()
        self._error: BaseException | None = None
        self._t = threading.Thread(target=self._run, name="layer-compress", daemon=True)
        self._t.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                break
            if self._error is None:
                try:
                    self.inner.write(item)
                except BaseException as e:  # noqa: BLE001 - re-raised in the producer
                    self._error = e
        if self._error is None:
            try:
                self.inner.close()
            except BaseException as e:  # noqa: BLE001
                self._error = e

    def write(self, data) -> int:
        if self._error is not None:
            raise self._error
        self._buf += data
        if len(self._buf) >= BATCH:
            self._q.put(bytes(self._buf))
            self._buf.clear()
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self._buf:
            self._q.put(bytes(self._buf))
            self._buf.clear()
        self._q.put(None)
        self._t.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        self._error = self._error or RuntimeError("aborted")
        self._q.put(None)
        self._t.join()

    diff_id = property(lambda self: self.inner.diff_id)
    digest = property(lambda self: self.inner.digest)
    size = property(lambda self: self.inner.size)
    blob_size = property(lambda self: self.inner.blob_size)


class PigzOutput(HashedOutput):
    """gzip through ``pigz -n -T`` (no name, no time: the same input gives the same blob):
    the tar is hashed here and piped in; a thread hashes what comes out and writes it."""

    def __init__(self, out: BinaryIO, level: int = GZIP_LEVEL, binary: str | None = None):
        self.out = out
        self.diff_hash = hashlib.sha256()
        self.blob_hash = hashlib.sha256()
        self.size = 0
        self.blob_size = 0
        self._buf = bytearray()
        self._error: BaseException | None = None
        self.proc = subprocess.Popen([binary or pigz_path() or "pigz", f"-{level}", "-n", "-T", "-c"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0)
        # the three pipes asked for above
        self._stdin, self._stdout, self._stderr = (cast(IO[bytes], self.proc.stdin),
                                                   cast(IO[bytes], self.proc.stdout),
                                                   cast(IO[bytes], self.proc.stderr))
        self._t = threading.Thread(target=self._pump, name="pigz-out", daemon=True)
        self._t.start()

    def _pump(self) -> None:
        try:
            while True:
                data = self._stdout.read(BATCH)
                if not data:
                    break
                self.blob_hash.update(data)
                self.blob_size += len(data)
                self.out.write(data)
        except BaseException as e:  # noqa: BLE001
            self._error = e
            self.proc.kill()

    def _send(self) -> None:
        data = bytes(self._buf)
        self._buf.clear()
        view = memoryview(data)
        try:
            while view:                   # an unbuffered pipe write may be partial
                view = view[self._stdin.write(view):]
        except BrokenPipeError:
            self._t.join()
            raise self._error or OSError("pigz exited early") from None

    def write(self, data) -> int:
        self.diff_hash.update(data)
        self.size += len(data)
        self._buf += data
        if len(self._buf) >= BATCH:
            self._send()
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self._buf:
            self._send()
        self._stdin.close()
        self._t.join()
        err = self._stderr.read().decode(errors="replace").strip()
        code = self.proc.wait()
        if self._error is not None:
            raise self._error
        if code != 0:
            raise OSError(f"pigz failed ({code}): {err}")

    def abort(self) -> None:
        self.proc.kill()
        self._t.join()
        self.proc.wait()


class _HashingSink:
    """A writable that hashes and counts what passes on to ``out`` (the blob)."""

    def __init__(self, out: BinaryIO, blob_hash):
        self.out, self.blob_hash, self.count = out, blob_hash, 0

    def write(self, data) -> int:
        self.blob_hash.update(data)
        self.count += len(data)
        self.out.write(data)
        return len(data)

    def flush(self) -> None:
        pass


class IsalOutput(HashedOutput):
    """gzip on every core in this process: ISA-L's ``igzip_threaded`` compresses 1 MiB
    blocks in C threads (the GIL released) while the tar walk goes on, and writes one
    gzip member with mtime 0 (the same input gives the same blob). Level ``GZIP_LEVEL``
    maps onto ISA-L's 0-3 (6 -> 3; ISA-L 3 compresses about as zlib 6 does, several
    times faster)."""

    def __init__(self, out: BinaryIO, level: int = GZIP_LEVEL, threads: int | None = None):
        from isal import igzip_threaded

        self.diff_hash = hashlib.sha256()
        self.blob_hash = hashlib.sha256()
        self.size = 0
        self._sink = _HashingSink(out, self.blob_hash)
        self._z = igzip_threaded.open(self._sink, "wb", compresslevel=min(3, max(0, level // 2)),
                                      threads=threads or max(1, os.cpu_count() or 1))

    @property
    def blob_size(self) -> int:
        return self._sink.count

    def write(self, data) -> int:
        # igzip_threaded gathers its own 1 MiB blocks: no batching here
        self.diff_hash.update(data)
        self.size += len(data)
        self._z.write(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._z.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._z.close()


def isal_available() -> bool:
    if os.environ.get("NUTSHELL_NO_ISAL") == "1":
        return False
    try:
        import isal.igzip_threaded  # noqa: F401
    except ImportError:
        return False
    return True


def open_output(out: BinaryIO, compression: str = "gzip", level: int | None = None,
                engine: str | None = None):
    """A layer output for ``compression`` ("gzip", "zstd", "none").

    ``engine`` forces the gzip implementation: "isal" (threads in this process), "pigz",
    "zlib" (threaded) or "zlib-inline"; by default ISA-L when importable, else pigz when
    installed, else threaded zlib.
    """
    if compression == "gzip":
        which = engine or ("isal" if isal_available() else "pigz" if pigz_path() else "zlib")
        if which == "isal":
            return IsalOutput(out, GZIP_LEVEL if level is None else level)
        if which == "pigz":
            return PigzOutput(out, GZIP_LEVEL if level is None else level)
        inner = LayerOutput(out, "gzip", GZIP_LEVEL if level is None else level)
        return inner if which == "zlib-inline" else ThreadedOutput(inner)
    if compression in ("zstd", "none"):
        return LayerOutput(out, compression, level)
    raise ValueError(f"unknown compression {compression!r} (use gzip, zstd or none)")
