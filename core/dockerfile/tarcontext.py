"""A build context sent as a tar stream (the Docker Engine API's ``POST /build`` body).

The stream (plain, gzip, bzip2 or xz) is unpacked into a fresh private directory by
core/fs's one safe extractor (``cp``'s policy: nothing outside the directory, no
writing through symlinks, hardlinks only to files of the same archive, capped entry
count), with a cap on the bytes read. The Dockerfile is then read *inside* that
directory with ``openat2(RESOLVE_IN_ROOT)``: a Dockerfile that is a symlink resolves as
if the context were ``/``, so ``Dockerfile -> /etc/shadow`` reads the context's own
``etc/shadow``, never the host's.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from core.errors import UnsafeLayer
from core.fs.extract import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, clean_name, openat2
from core.fsutil import Readable

from .context import ContextError

MAX_DOCKERFILE = 16 << 20


class ContextTooLarge(ContextError):
    """The context stream is larger than the cap."""


class _Capped:
    """Reads at most ``limit`` bytes of ``src``, then raises ContextTooLarge."""

    def __init__(self, src: Readable, limit: int | None):
        self.src = src
        self.limit = limit
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.src.read(n)
        self.count += len(data)
        if self.limit is not None and self.count > self.limit:
            raise ContextTooLarge(f"the build context is larger than {self.limit} bytes")
        return data


@contextmanager
def unpacked(stream: Readable, tmp_parent: str, max_bytes: int | None = None,
             max_entries: int | None = None) -> Iterator[str]:
    """The context directory the tar ``stream`` unpacks to; removed afterwards."""
    from core.fs.cp import MAX_ENTRIES, CopyError, Extractor

    os.makedirs(tmp_parent, mode=0o700, exist_ok=True)
    d = tempfile.mkdtemp(prefix="context-", dir=tmp_parent)
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            Extractor(fd, owners="self", max_entries=max_entries or MAX_ENTRIES).run(
                _Capped(stream, max_bytes))
        except (CopyError, UnsafeLayer) as exc:
            raise ContextError(f"invalid build context: {exc}") from None
        finally:
            os.close(fd)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def read_dockerfile(context: str, name: str | None) -> tuple[str, str]:
    """(clean relative name, text) of the Dockerfile ``name`` inside ``context``."""
    raw = name or "Dockerfile"
    try:
        rel = clean_name(raw)
    except UnsafeLayer:
        raise ContextError(f"the Dockerfile {raw!r} must be a path inside the build context") from None
    if not rel:
        raise ContextError(f"the Dockerfile {raw!r} names the context itself")
    root = os.open(context, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            # O_NONBLOCK: a FIFO named Dockerfile must not hang the open
            fd = openat2(root, rel, os.O_RDONLY | os.O_NONBLOCK,
                         RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                raise ContextError(f"Cannot locate specified Dockerfile: {raw}") from None
            raise ContextError(f"cannot read the Dockerfile {raw}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ContextError(f"the Dockerfile {raw} is not a regular file")
            data = f.read(MAX_DOCKERFILE + 1)
    finally:
        os.close(root)
    if len(data) > MAX_DOCKERFILE:
        raise ContextError(f"the Dockerfile {raw} is larger than {MAX_DOCKERFILE} bytes")
    return rel, data.decode("utf-8", "surrogateescape")
