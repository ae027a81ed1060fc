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
import lzma
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO, cast

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


class _Prefixed:
    """``head`` then the rest of ``src``."""

    def __init__(self, head: bytes, src: Readable):
        self.head = head
        self.src = src

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n < 0:
                out, self.head = self.head + self.src.read(), b""
                return out
            out, self.head = self.head[:n], self.head[n:]
            return out
        return self.src.read(n)


class _Padded:
    """A plain tar stream completed at its end: zeros to the next 512-byte block and
    the two-block trailer. The docker CLI's ``-f -`` context (Go's tar wrapper) ends
    right after the last file's data; Go's reader takes that, Python's does not."""

    def __init__(self, src: Readable):
        self.src = src
        self.count = 0
        self.tail: bytes | None = None

    def read(self, n: int = -1) -> bytes:
        if self.tail is None:
            data = self.src.read(n)
            if data:
                self.count += len(data)
                return data
            self.tail = b"\0" * ((-self.count) % 512 + 1024)
        out = self.tail if n < 0 else self.tail[:n]
        self.tail = self.tail[len(out):]
        return out


def _plain(stream: Readable, max_bytes: int | None) -> Readable:
    """The stream decompressed (gzip, bzip2, xz), capped, and padded."""
    import bz2
    import gzip
    import lzma

    raw = _Capped(stream, max_bytes)
    head = b""
    while len(head) < 6:
        chunk = raw.read(6 - len(head))
        if not chunk:
            break
        head += chunk
    src: Readable = _Prefixed(head, raw)
    if head.startswith(b"\x1f\x8b"):
        src = _Capped(gzip.GzipFile(fileobj=cast(BinaryIO, src), mode="rb"), max_bytes)
    elif head.startswith(b"BZh"):
        src = _Capped(bz2.BZ2File(cast(BinaryIO, src), mode="rb"), max_bytes)
    elif head.startswith(b"\xfd7zXZ\x00"):
        src = _Capped(lzma.LZMAFile(cast(BinaryIO, src), mode="rb"), max_bytes)
    return _Padded(src)


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
                _plain(stream, max_bytes))
        except (CopyError, UnsafeLayer, EOFError, lzma.LZMAError) as exc:
            raise ContextError(f"invalid build context: {exc}") from None
        except OSError as exc:
            if exc.errno is not None:         # the disk, not the data (gzip/bz2 errors have none)
                raise
            raise ContextError(f"invalid build context: {exc}") from None
        finally:
            os.close(fd)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _read_in_root(context: str, rel: str, what: str) -> bytes:
    """The content of regular file ``rel`` with symlinks resolved inside ``context``
    (FileNotFoundError when there is none)."""
    root = os.open(context, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            # O_NONBLOCK: a FIFO by that name must not hang the open
            fd = openat2(root, rel, os.O_RDONLY | os.O_NONBLOCK,
                         RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                raise FileNotFoundError(rel) from None
            raise ContextError(f"cannot read the {what} {rel}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ContextError(f"the {what} {rel} is not a regular file")
            data = f.read(MAX_DOCKERFILE + 1)
    finally:
        os.close(root)
    if len(data) > MAX_DOCKERFILE:
        raise ContextError(f"the {what} {rel} is larger than {MAX_DOCKERFILE} bytes")
    return data


def read_dockerfile(context: str, name: str | None) -> tuple[str, str]:
    """(clean relative name, text) of the Dockerfile ``name`` inside ``context``; its
    ignore files are made plain files of the context (see :func:`pin_ignore_files`)."""
    raw = name or "Dockerfile"
    try:
        rel = clean_name(raw)
    except UnsafeLayer:
        raise ContextError(f"the Dockerfile {raw!r} must be a path inside the build context") from None
    if not rel:
        raise ContextError(f"the Dockerfile {raw!r} names the context itself")
    try:
        data = _read_in_root(context, rel, "Dockerfile")
    except FileNotFoundError:
        raise ContextError(f"Cannot locate specified Dockerfile: {raw}") from None
    pin_ignore_file(context)        # the builder reads it by path (Dockerfile text is given)
    return rel, data.decode("utf-8", "surrogateescape")


def pin_ignore_file(context: str) -> None:
    """The builder opens ``<context>/.dockerignore`` by path; one that is a symlink (or a
    FIFO...) would be followed on the host. It becomes a regular file with what it
    resolves to inside the context, or goes when it resolves to nothing. (``context`` is
    the private directory :func:`unpacked` made: its own path has no symlink.)"""
    rel = ".dockerignore"
    path = os.path.join(context, rel)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISDIR(st.st_mode):
        raise ContextError(f"{rel} is a directory, not an ignore file")
    try:
        data: bytes | None = _read_in_root(context, rel, "ignore file")
    except (FileNotFoundError, ContextError):
        data = None
    os.unlink(path)
    if data is not None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
