"""Compiled filters, kept: in this process's memory, and optionally in a directory.

Compiling Docker's default profile with libseccomp takes about 10 ms (tests/benchmarks/
bench_seccomp.py); a container start needs its filter every time, so the result is kept
under a key that covers everything the BPF depends on (see ``compile.cache_key``).

The directory (the runtime's, e.g. ``$RUNTIME_DIR/seccomp``) is created 0700 and used
only when it is owned by the current euid and not writable by group or others: a
filter read from it is loaded into containers, so nobody else may write there. A
refused directory is simply not used (the filter is compiled instead). Entries are
files ``<key>.bpf``, mode 0600, written to a temporary name and renamed; each carries
a magic and the SHA-256 of the program, so a short or corrupt entry reads as a miss.
All file operations go through the directory's descriptor, with O_NOFOLLOW.
"""

from __future__ import annotations

import os
import stat

from ...paths import small_sha256

MAGIC = b"NSBPF1\n"
_DIGEST = 32
_MAX_ENTRY = len(MAGIC) + _DIGEST + 4096 * 8
_MEMORY_ENTRIES = 64

_memory: dict[str, bytes] = {}


def memory_get(key: str) -> bytes | None:
    return _memory.get(key)


def memory_put(key: str, program: bytes) -> None:
    if len(_memory) >= _MEMORY_ENTRIES:
        _memory.pop(next(iter(_memory)))
    _memory[key] = program


def clear_memory() -> None:
    _memory.clear()


def open_dir(path: str) -> int | None:
    """A descriptor of the cache directory (created 0700 if missing), or None when the
    directory is unusable or not safe to trust."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        os.close(fd)
        return None
    return fd


def _entry(key: str) -> str:
    return f"{key}.bpf"


def disk_get(dir_fd: int, key: str) -> bytes | None:
    try:
        fd = os.open(_entry(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                     dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid()
                or st.st_mode & 0o022 or st.st_size > _MAX_ENTRY):
            return None
        data = os.read(fd, _MAX_ENTRY + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    head = len(MAGIC) + _DIGEST
    if len(data) <= head or not data.startswith(MAGIC):
        return None
    program = data[head:]
    if len(program) % 8 or small_sha256(program).digest() != data[len(MAGIC):head]:
        return None
    return program


def disk_put(dir_fd: int, key: str, program: bytes) -> None:
    """Store an entry; failures only cost a later compile."""
    tmp = f".{key}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=dir_fd)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + small_sha256(program).digest() + program)
        os.rename(tmp, _entry(key), src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass


def lookup(key: str, cache_dir: str | None, make) -> bytes:
    """The program under ``key``: from memory, else from ``cache_dir`` (when it is safe to
    trust), else ``make()``'s, stored in both."""
    program = memory_get(key)
    if program is not None:
        return program
    dir_fd = open_dir(cache_dir) if cache_dir else None
    try:
        if dir_fd is not None:
            program = disk_get(dir_fd, key)
        if program is None:
            program = make()
            if dir_fd is not None:
                disk_put(dir_fd, key, program)
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
    memory_put(key, program)
    return program
