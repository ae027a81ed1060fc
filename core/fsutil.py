"""Small file-system primitives every part of the store uses: atomic writes and locks."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
from collections.abc import Iterator

TYPE_CHECKING = False   # typing is not imported at run time: ~5 ms of every `run`
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Readable(Protocol):
        """Anything with ``read(n) -> bytes``: a file, a pipe, a decompressing or
        hashing reader, a registry blob reader."""

        def read(self, n: int = ..., /) -> bytes: ...

    class Writable(Protocol):
        """Anything with ``write(data) -> int``: a file or a blob writer."""

        def write(self, data: bytes, /) -> int: ...
else:
    Readable = Writable = object    # at run time only annotations name them


_KINDS = ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"),
          (stat.S_ISFIFO, "fifo"), (stat.S_ISCHR, "char"), (stat.S_ISBLK, "block"),
          (stat.S_ISSOCK, "socket"))


def file_kind(mode: int) -> str:
    """``file``, ``dir``, ``symlink``, ``fifo``, ``char``, ``block``, ``socket`` or
    ``unknown``: what an ``st_mode`` is, by the names the build context and the layer
    tree use."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "unknown"


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mkstemp(directory: str) -> tuple[int, str]:
    """tempfile.mkstemp(prefix=".tmp-", dir=directory) without tempfile (and random):
    3 ms of every `run`. A new name, O_EXCL, mode 0600, close-on-exec; EEXIST retried."""
    for _ in range(100):
        tmp = os.path.join(directory, ".tmp-" + os.urandom(6).hex())
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600)
        except FileExistsError:
            continue
        return fd, tmp
    raise FileExistsError(f"no free temporary name in {directory}")


def atomic_write(path: str, data: bytes, mode: int = 0o644, sync: bool = True) -> None:
    """Write ``data`` to ``path`` so readers see either the old or the new file, never half.

    temp file in the same directory + fsync + rename + fsync of the directory.
    """
    directory = os.path.dirname(path) or "."
    fd, tmp = _mkstemp(directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync:
        fsync_dir(directory)


def atomic_write_json(path: str, obj: Any, sync: bool = True, indent: int | None = None) -> None:
    atomic_write(path, json.dumps(obj, indent=indent, sort_keys=False).encode() + b"\n", sync=sync)


def read_json(path: str, default: Any = None) -> Any:
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        if default is not None:
            return default
        raise


def json_records(base: str, name: str) -> Iterator[tuple[str, dict]]:
    """``(entry, parsed JSON)`` for each entry of directory ``base`` that holds a readable
    JSON object in file ``name`` (the container records: ``json_records(paths.containers,
    "config.json")``). A missing ``base`` has none; an entry whose file is missing,
    unreadable or not JSON is passed over."""
    try:
        entries = os.listdir(base)
    except FileNotFoundError:
        return
    for entry in entries:
        try:
            with open(os.path.join(base, entry, name), "rb") as f:
                doc = json.loads(f.read())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict):
            yield entry, doc


@contextlib.contextmanager
def locked(path: str, shared: bool = False) -> Iterator[int]:
    """Hold an fcntl lock on ``path`` (created if missing) for the duration of the block.

    flock locks belong to the open file description, so they are released when the
    process dies, even by kill -9: a crashed command never leaves the store locked.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def makedirs(path: str, mode: int = 0o755) -> str:
    os.makedirs(path, mode=mode, exist_ok=True)
    return path


def dir_size(path: str) -> int:
    """Bytes used by regular files under ``path`` (hardlinks counted once), no symlinks followed."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    continue
                seen.add(key)
            total += st.st_size
    return total
