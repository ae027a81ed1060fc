"""The only interpreter a container can ever see: a sealed view of our Python binary.

The process that calls execve for a container's payload (its init, and the child of
``exec``) is a Python process. Until execve, ``/proc/self/exe`` of that process is the
interpreter it was started from, and the kernel resolves ``/proc/self/exe`` *during*
execve, in that process: an image whose entrypoint is ``/proc/self/exe``, whose
``/bin/sh`` is a symlink to it, or whose script says ``#!/proc/self/exe`` runs our
interpreter inside the container, where its root (CAP_FOWNER) could chmod it setuid, or
change its owner or xattrs, on the host (CVE-2019-5736 is the same attack on runc).

So those processes are never started from the host's binary. They are started from one
of these, in this order of preference:

1. a **detached read-only mount** of the binary: ``open_tree(OPEN_TREE_CLONE)`` clones
   the binary's mount into a mount attached nowhere, ``mount_setattr`` makes it
   read-only (and nosuid, nodev). Executing through that handle makes
   ``/proc/self/exe`` point into the read-only mount: chmod, chown, setxattr and
   writes fail with EROFS, and no path in any namespace leads to it. No copy, no memory:
   the cost is two system calls (runc's overlayfs "exeseal" works on the same idea).
   Needs Linux >= 5.12.
2. a **sealed memfd copy** (older kernels): the binary copied into a memfd, sealed
   against writes, growing and shrinking. A container can only change its own copy.
   It costs the binary's size in memory while the process lives (a few KiB for a
   Python linked to libpython, ~7 MB for a static one).

If neither works the container is not started (never the host's binary instead).

Only the binary is exposed this way: the libraries it maps (libpython, libc) are
reachable only through /proc/<pid>/map_files, which needs CAP_SYS_ADMIN in the
initial user namespace, and after execve nothing of them is left.

``spawn(module, request, fds)`` starts ``python -I -S`` from the sealed binary, running
``module.main()``, and hands it ``request`` (a marshal-able dict) and the given fds, at
the numbers ``child_fd_numbers`` gave them, over a socket on its fd 0 (``read_request``).
It uses ``os.posix_spawn`` (vfork + exec, no Python code in the child), so callers with
threads (the app) may use it.

``prepare(module)`` starts that interpreter ahead of need: it loads what it will run and
waits on its socket, and the next ``spawn`` of ``module`` in this process hands it the
request instead of starting another. The CLI does this for ``run``, ``start`` and
``exec`` as they begin, so the sealed interpreter's start (~20 ms) runs while the CLI
imports and parses (docs/runtime.md). An interpreter prepared and never used reads end of file when this
process exits, and exits.
"""

from __future__ import annotations

import os
import sys

_SYS_OPEN_TREE = 428       # the same number on every architecture but alpha
_SYS_MOUNT_SETATTR = 442
_OPEN_TREE_CLONE = 1
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_NOSUID, _MOUNT_ATTR_NODEV = 0x1, 0x2, 0x4
_ST_RDONLY = 1

# the directory holding the ``core`` package (this file is core/runtime/start/seal.py)
_HERE = os.path.abspath(__file__)
PKG_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(_HERE))))

_sealed: dict = {}

# the last word of a sealed process's command line, until it knows its container: the
# shim (which boot.py's process becomes, without an exec) writes ``id=<container id>``
# over it (shim.show_id), so ``ps`` shows whose shim it is
ID_PLACEHOLDER = "id=" + "-" * 64


class SealError(OSError):
    pass


def interpreter() -> str:
    """The real binary of this interpreter (a venv's python is a symlink to it)."""
    return os.path.realpath(sys.executable)


def _detached_readonly(path: str) -> int:
    """An O_PATH handle on ``path`` through a read-only mount attached nowhere."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(ctypes.c_long(_SYS_OPEN_TREE), ctypes.c_int(_AT_FDCWD),
                      os.fsencode(path), ctypes.c_uint(_OPEN_TREE_CLONE | os.O_CLOEXEC))
    if fd < 0:
        err = ctypes.get_errno()
        raise SealError(err, f"open_tree {path}: {os.strerror(err)}")
    attr = (ctypes.c_uint64 * 4)(_MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID | _MOUNT_ATTR_NODEV,
                                 0, 0, 0)
    rc = libc.syscall(ctypes.c_long(_SYS_MOUNT_SETATTR), ctypes.c_int(fd), b"",
                      ctypes.c_uint(_AT_EMPTY_PATH), ctypes.byref(attr),
                      ctypes.c_size_t(ctypes.sizeof(attr)))
    if rc < 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise SealError(err, f"mount_setattr: {os.strerror(err)}")
    # trust, but verify: the handle must really be on a read-only mount now
    if not os.statvfs(f"/proc/self/fd/{fd}").f_flag & _ST_RDONLY:
        os.close(fd)
        raise SealError(0, "the detached mount is not read-only")
    return fd


def _memfd_copy(path: str) -> int:
    import fcntl

    src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
        try:
            fd = os.memfd_create("nutshell-python", flags | 0x10)  # MFD_EXEC (Linux 6.3)
        except OSError:
            fd = os.memfd_create("nutshell-python", flags)
        try:
            size = os.fstat(src).st_size
            done = 0
            while done < size:
                n = os.sendfile(fd, src, done, size - done)
                if n <= 0:
                    raise SealError(0, f"short copy of {path}")
                done += n
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK
                        | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
        except BaseException:
            os.close(fd)
            raise
        return fd
    finally:
        os.close(src)


def sealed_interpreter() -> tuple[int, str]:
    """(fd, how): a close-on-exec handle to execute instead of our interpreter, and
    ``"read-only mount"`` or ``"sealed memfd"``. Made once per process."""
    if "fd" in _sealed:
        return _sealed["fd"], _sealed["how"]
    path = interpreter()
    errors = []
    try:
        fd, how = _detached_readonly(path), "read-only mount"
    except OSError as e:
        errors.append(str(e))
        try:
            fd, how = _memfd_copy(path), "sealed memfd"
        except OSError as e2:
            errors.append(str(e2))
            from ...errors import RuntimeFailure

            raise RuntimeFailure("cannot seal the interpreter a container would see: "
                                 + "; ".join(errors),
                                 hint="Nutshell needs Linux >= 5.12 (open_tree, "
                                      "mount_setattr) or memfd sealing") from None
    _sealed.update(fd=fd, how=how)
    return fd, how


def child_fd_numbers(fds: list[int]) -> list[int]:
    """The numbers ``spawn`` gives ``fds`` in the child, in order: above every fd passed
    and the sealed handle, so that no dup2 overwrites a source still to be used. A caller
    puts them in the request it gives ``spawn``."""
    base = max([2, sealed_interpreter()[0], *fds]) + 1
    return list(range(base, base + len(fds)))


def _start(module: str) -> tuple[int, int]:
    """(pid, our end of its socket): the sealed interpreter started for ``module``, with
    the socket's other end on its fd 0; it runs ``module.main()``, which reads its
    request (``read_request``)."""
    import _socket

    sealed, _how = sealed_interpreter()
    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        actions: list[tuple] = [
            (os.POSIX_SPAWN_DUP2, theirs.fileno(), 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
        boot = (f"import sys; sys.path.insert(0, {PKG_ROOT!r}); "
                f"from {module} import main; main()")
        # argv[0] is the interpreter's usual path: it finds its standard library from it.
        # The path /proc/self/fd/N is resolved before close-on-exec closes N.
        pid = os.posix_spawn(f"/proc/self/fd/{sealed}",
                             [sys.executable, "-I", "-S", "-c", boot, ID_PLACEHOLDER],
                             dict(os.environ), file_actions=actions)
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return pid, ours.detach()


_prepared: dict[str, tuple[int, int]] = {}


def prepare(module: str) -> None:
    """Start ``module``'s sealed interpreter now, for this process's next ``spawn`` of it
    (see the module's docstring). Failures are left for ``spawn`` to meet and report."""
    if module in _prepared:
        return
    try:
        _prepared[module] = _start(module)
    except OSError:
        pass


def spawn(module: str, request: dict, fds: list[int], *, stderr_path: str | None = None) -> int:
    """Start ``module.main()`` in ``python -I -S`` run from the sealed interpreter (or
    take the one ``prepare`` started); its pid.

    The child reads ``request`` and ``fds`` from its fd 0 (``read_request``), each fd at
    ``child_fd_numbers(fds)``. Everything else of ours is close-on-exec. Standard output
    is /dev/null; standard error is appended to ``stderr_path`` (a log for tracebacks),
    else /dev/null too.
    """
    import marshal

    numbers = child_fd_numbers(fds)
    log = os.open(stderr_path or os.devnull, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                  0o640)
    try:
        data = marshal.dumps({"request": request, "numbers": numbers})
        prepared = _prepared.pop(module, None)
        if prepared is not None:
            pid, sock = prepared
            try:
                _send(sock, data, [*fds, log])
                return pid
            except OSError:         # it died meanwhile: reap it, start another
                os.waitpid(pid, 0)
        pid, sock = _start(module)
        try:
            _send(sock, data, [*fds, log])
        except OSError:
            pass                    # it died at once: the caller meets its exit status
        return pid
    finally:
        os.close(log)


def _send(sock: int, data: bytes, fds: list[int]) -> None:
    """``data`` and ``fds`` to a sealed child, then end of file; closes ``sock``."""
    import _socket

    s = _socket.socket(fileno=sock)
    try:
        rights = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds_to_bytes(fds))]
        view = memoryview(data)
        sent = s.sendmsg([view[:65536]], rights)
        view = view[sent:]
        while view:
            view = view[s.send(view[:65536]):]
        s.shutdown(_socket.SHUT_WR)
    finally:
        s.close()


def request_memfd(request: dict) -> int:
    """``request`` marshalled into a close-on-exec memfd, at offset 0 (the shim's part of a
    start travels in one: boot.hand_over)."""
    import marshal

    data = marshal.dumps(request)
    mfd = os.memfd_create("nutshell-request", os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(mfd, view):]
        os.lseek(mfd, 0, os.SEEK_SET)
    except BaseException:
        os.close(mfd)
        raise
    return mfd


def read_request() -> dict:
    """In the spawned child: the request, from fd 0 (which then becomes /dev/null). It
    comes over a socket with its fds (``spawn``), which are put at the numbers the caller
    chose, and the log fd onto standard error.

    Every fd passed to us is made close-on-exec again (dup2 cleared the flag): a
    container's payload must not inherit a sync socket or a pipe by accident. The
    process that hands one on makes that one inheritable on purpose."""
    import marshal

    mode = os.fstat(0).st_mode & 0o170000
    if mode == 0o140000:                        # a socket: spawn's
        data, fds = _receive(0)
        if not data:
            os._exit(0)                         # prepared, never used: its caller is gone
        wire = marshal.loads(data)
        numbers = wire["numbers"]
        if len(fds) != len(numbers) + 1:
            raise SystemExit(f"request came with {len(fds)} fds, not {len(numbers) + 1}")
        _place(fds, [*numbers, 2])
        request = wire["request"]
    else:
        raise SystemExit("no request on fd 0")
    close_on_exec_above(2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return request


def close_on_exec_above(low: int) -> None:
    """Make every fd above ``low`` close-on-exec. What posix_spawn gave us beyond the
    file actions is whatever the caller's own caller left inheritable (a shell's or a
    CI runner's pipe): no process of ours that execs may pass such an fd on."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > low:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass  # the directory's own fd, closed by now


def fds_to_bytes(fds: list[int]) -> bytes:
    """``fds`` as SCM_RIGHTS carries them (C ints). Not ``array``: it imports
    collections.abc, ~3 ms of the sealed interpreter's start, for this alone."""
    return b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)


def fds_from_bytes(payload: bytes) -> list[int]:
    """The fds of an SCM_RIGHTS payload (a partial int at the end is ignored)."""
    return [int.from_bytes(payload[i:i + 4], sys.byteorder, signed=True)
            for i in range(0, len(payload) - 3, 4)]


def _receive(fd: int) -> tuple[bytes, list[int]]:
    """Everything until end of file on the socket ``fd``, and the fds that came with it."""
    import _socket

    s = _socket.socket(fileno=os.dup(fd))
    chunks: list[bytes] = []
    fds: list[int] = []
    space = _socket.CMSG_SPACE(64 * 4)
    try:
        while True:
            data, anc, _flags, _addr = s.recvmsg(1 << 16, space)
            for level, kind, payload in anc:
                if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                    fds += fds_from_bytes(payload)
            if not data:
                return b"".join(chunks), fds
            chunks.append(data)
    finally:
        s.close()


def _place(fds: list[int], numbers: list[int]) -> None:
    """dup2 each of ``fds`` to its number in ``numbers`` (close-on-exec is cleared, as
    posix_spawn's dup2 leaves it), closing the received ones; safe when the two lists
    overlap."""
    import fcntl

    high = max([*numbers, *fds]) + 1
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, high) for fd in fds]
    for fd in fds:
        os.close(fd)
    for src, dst in zip(moved, numbers):
        os.dup2(src, dst)
        os.close(src)


def read_to_end(fd: int) -> bytes:
    """Everything ``fd`` gives until end of file."""
    chunks: list[bytes] = []
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            return b"".join(chunks)
        chunks.append(b)
