"""Liveness: notice changes to the store and to containers made by any process.

The workbench must show what a CLI in another SSH session did within about a second,
without re-listing everything in a loop. Everything that matters is a file written
atomically (temp + rename) under the state root, so the kernel can tell us:

    $ROOT/index.json                    images (tags, new and removed images)   -> "images"
    $ROOT/containers/                   containers created or removed           -> "containers"
    $ROOT/containers/<id>/state.json    a container's state (and config.json)   -> "containers", id
    $ROOT/networks/*.json               networks                                -> "networks"
    $ROOT/networks/containers/<id>.json a container's endpoints                 -> "networks", id
    $ROOT/volumes/                      volumes created or removed              -> "volumes"

``Watcher(paths).wait(timeout)`` blocks until something changed (or the timeout), then
keeps reading for a short quiet period so a burst (``run`` writes config, state, network
records and state again) comes back as ONE ``Changes(kinds, ids)``. It uses inotify
(via ctypes: ``inotify_init1`` / ``inotify_add_watch``); when inotify is unavailable (or
``fallback=True``) it compares ``stat()`` results of the same files once a second. Either
way an idle watcher costs nothing measurable: the inotify path sleeps in ``poll()``.

Lock files (``lock``, ``oplock``, ``.lock``) and temp files are ignored: taking a lock is
not a change. ``close()`` (from any thread) wakes a blocked ``wait``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import struct
import threading
import time
from dataclasses import dataclass, field

KINDS = ("images", "containers", "networks", "volumes")

# inotify(7)
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

_DIR_MASK = (IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
             | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
_EVENT = struct.Struct("iIII")

CONTAINER_FILES = frozenset({"state.json", "config.json"})


@dataclass
class Changes:
    """What changed: ``kinds`` ⊆ KINDS, ``ids`` the container ids when known."""

    kinds: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def add(self, kind: str, ident: str | None = None) -> None:
        self.kinds.add(kind)
        if ident:
            self.ids.add(ident)

    def merge(self, other: Changes) -> None:
        self.kinds |= other.kinds
        self.ids |= other.ids


def _libc():
    # the process's own libc, as core/runtime/linux.py loads it: find_library("c") would
    # run ldconfig (~2 ms of the workbench's start, for a name the process already has)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_init1.restype = ctypes.c_int
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    libc.inotify_add_watch.restype = ctypes.c_int
    libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.inotify_rm_watch.restype = ctypes.c_int
    return libc


class Watcher:
    """Watches one state root. Not thread-safe except ``close()``; one thread calls ``wait``.

    ``quiet``: how long the stream must be silent before a burst is reported (debounce);
    ``max_delay``: the longest a burst is held back, so a busy store still refreshes.
    """

    def __init__(self, paths, fallback: bool = False, quiet: float = 0.08,
                 max_delay: float = 0.4, poll_interval: float = 1.0) -> None:
        self.paths = paths
        self.root = paths.root
        self.quiet = quiet
        self.max_delay = max_delay
        self.poll_interval = poll_interval
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._closed = False
        self._lock = threading.Lock()
        self._fd = -1
        self._wds: dict[int, tuple[str, str | None]] = {}   # wd -> (role, container id)
        self._paths_by_role: dict[tuple[str, str | None], int] = {}
        self._snapshot: dict[str, tuple] | None = None
        self._out_of_watches = False
        self.mode = "poll"
        if not fallback:
            try:
                self._start_inotify()
                self.mode = "inotify"
            except OSError:
                self._fd = -1
            if self._out_of_watches:
                self.mode = "poll"
        if self.mode == "poll":
            self._snapshot = self._stat_snapshot()

    # ------------------------------------------------------------------ public
    def wait(self, timeout: float | None = None) -> Changes:
        """Block up to ``timeout`` seconds (None: until a change or close) for changes."""
        if self._closed:
            return Changes()
        if self.mode == "inotify":
            out = self._wait_inotify(timeout)
            if not self._out_of_watches:
                return out
            self.mode = "poll"           # the inotify watch limit was reached: stat instead
            self._snapshot = self._stat_snapshot()
            out.kinds.update(KINDS)
            return out
        return self._wait_poll(timeout)

    def changes(self, timeout: float | None = None) -> set[str]:
        """The kinds that changed within ``timeout`` (empty: nothing did)."""
        return self.wait(timeout).kinds

    def close(self) -> None:
        """Stop watching; wakes a thread blocked in ``wait``. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass

    def release(self) -> None:
        """Close the file descriptors (after the waiting thread has returned)."""
        self.close()
        for fd in (self._fd, self._wake_r, self._wake_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._fd = self._wake_r = self._wake_w = -1

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    @property
    def watched(self) -> list[str]:
        """The directories currently watched (for tests and the docs)."""
        return sorted(self._path_of(role, ident) for role, ident in self._wds.values())

    # ------------------------------------------------------------------ inotify
    def _start_inotify(self) -> None:
        self._libc = _libc()
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        self._fd = fd
        self._add_all()

    def _path_of(self, role: str, ident: str | None) -> str:
        p = self.paths
        return {
            "root": self.root,
            "containers": p.containers,
            "container": p.container(ident) if ident else "",
            "networks": p.networks,
            "netcontainers": os.path.join(p.networks, "containers"),
            "volumes": p.volumes,
        }[role]

    def _add(self, role: str, ident: str | None = None) -> bool:
        key = (role, ident)
        if key in self._paths_by_role:
            return True
        path = self._path_of(role, ident)
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), _DIR_MASK)
        if wd < 0:
            e = ctypes.get_errno()
            if e in (errno.ENOENT, errno.ENOTDIR):
                return False
            if e == errno.ENOSPC:  # out of watches: fall back to stat polling
                self._out_of_watches = True
            return False
        self._wds[wd] = key
        self._paths_by_role[key] = wd
        return True

    def _add_all(self) -> None:
        """Watch every directory that exists now (the root may not exist yet)."""
        if not self._add("root"):
            return
        if self._add("containers"):
            try:
                names = os.listdir(self.paths.containers)
            except OSError:
                names = []
            for cid in names:
                if not cid.startswith("."):
                    self._add("container", cid)
        if self._add("networks"):
            self._add("netcontainers")
        self._add("volumes")

    def _forget(self, wd: int) -> None:
        key = self._wds.pop(wd, None)
        if key is not None:
            self._paths_by_role.pop(key, None)

    def _wait_inotify(self, timeout: float | None) -> Changes:
        out = Changes()
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        deadline = None if timeout is None else time.monotonic() + timeout
        first = None
        while True:
            now = time.monotonic()
            if first is None:
                # nothing yet: sleep until an event, the timeout, or (root missing) a retry
                wait = None if deadline is None else max(0.0, deadline - now)
                if "root" not in {r for r, _ in self._wds.values()}:
                    wait = self.poll_interval if wait is None else min(wait, self.poll_interval)
            else:
                # a burst started: wait for a quiet gap, at most max_delay after its start
                wait = max(0.0, min(self.quiet, first + self.max_delay - now))
            events = poller.poll(None if wait is None else int(wait * 1000) + (1 if wait else 0))
            if self._closed:
                return out
            if not events:
                if first is not None:
                    return out
                if deadline is not None and time.monotonic() >= deadline:
                    return out
                if "root" not in {r for r, _ in self._wds.values()}:
                    before = set(self._paths_by_role)
                    self._add_all()
                    if set(self._paths_by_role) != before:
                        out.kinds.update(KINDS)
                        return out
                continue
            got = self._read_events()
            if got:
                out.merge(got)
                if first is None:
                    first = time.monotonic()
            if first is not None and time.monotonic() - first >= self.max_delay:
                return out

    def _read_events(self) -> Changes:
        out = Changes()
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            if not data:
                return out
            pos = 0
            while pos + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, pos)
                pos += _EVENT.size
                raw = data[pos:pos + length].split(b"\0", 1)[0]
                pos += length
                self._event(wd, mask, os.fsdecode(raw), out)

    def _event(self, wd: int, mask: int, name: str, out: Changes) -> None:
        if mask & IN_Q_OVERFLOW:
            out.kinds.update(KINDS)
            self._add_all()
            return
        if mask & IN_IGNORED:
            self._forget(wd)
            return
        key = self._wds.get(wd)
        if key is None:
            return
        role, ident = key
        if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
            if role == "root":
                out.kinds.update(KINDS)
            elif role == "container":
                out.add("containers", ident)
            elif role in ("containers", "networks", "netcontainers", "volumes"):
                out.add("networks" if role == "netcontainers" else role)
            return
        is_dir = bool(mask & IN_ISDIR)
        if role == "root":
            if name == "index.json":
                out.add("images")
            elif is_dir and name in ("containers", "networks", "volumes") \
                    and mask & (IN_CREATE | IN_MOVED_TO):
                self._add_all()
                out.add(name)
        elif role == "containers":
            if is_dir and not name.startswith("."):
                out.add("containers", name)
                if mask & (IN_CREATE | IN_MOVED_TO):
                    self._add("container", name)
        elif role == "container":
            if name in CONTAINER_FILES:
                out.add("containers", ident)
        elif role == "networks":
            if name.endswith(".json") and not name.startswith("."):
                out.add("networks")
            elif is_dir and name == "containers" and mask & (IN_CREATE | IN_MOVED_TO):
                self._add("netcontainers")
        elif role == "netcontainers":
            if name.endswith(".json") and not name.startswith("."):
                out.add("networks", name[:-5])
        elif role == "volumes":
            if not name.startswith("."):
                out.add("volumes")

    # ------------------------------------------------------------------ stat polling
    def _stat_snapshot(self) -> dict[str, tuple]:
        snap: dict[str, tuple] = {}

        def stat(path: str) -> None:
            try:
                st = os.stat(path)
            except OSError:
                return
            snap[path] = (st.st_mtime_ns, st.st_size, st.st_ino)

        def listing(path: str) -> list[str]:
            try:
                names = sorted(n for n in os.listdir(path) if not n.startswith("."))
            except OSError:
                return []
            snap[path + "/"] = tuple(names)
            return names

        p = self.paths
        stat(p.index)
        for cid in listing(p.containers):
            for fn in CONTAINER_FILES:
                stat(os.path.join(p.containers, cid, fn))
        for fn in listing(p.networks):
            if fn.endswith(".json"):
                stat(os.path.join(p.networks, fn))
        netc = os.path.join(p.networks, "containers")
        for fn in listing(netc):
            stat(os.path.join(netc, fn))
        listing(p.volumes)
        return snap

    def _diff(self, old: dict[str, tuple], new: dict[str, tuple]) -> Changes:
        out = Changes()
        p = self.paths
        netc = os.path.join(p.networks, "containers") + "/"
        for path in set(old) | set(new):
            if old.get(path) == new.get(path):
                continue
            if path == p.index:
                out.add("images")
            elif path.startswith(netc):
                name = os.path.basename(path)
                out.add("networks", name[:-5] if name.endswith(".json") else None)
            elif path.startswith(p.containers + "/"):
                rest = path[len(p.containers) + 1:]
                out.add("containers", rest.split("/", 1)[0] or None)
            elif path == p.containers + "/":
                out.add("containers")
            elif path.startswith(p.networks + "/") or path == p.networks + "/":
                out.add("networks")
            elif path.startswith(p.volumes):
                out.add("volumes")
        return out

    def _wait_poll(self, timeout: float | None) -> Changes:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = self.poll_interval
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            poller = select.poll()
            poller.register(self._wake_r, select.POLLIN)
            poller.poll(int(wait * 1000))
            if self._closed:
                return Changes()
            new = self._stat_snapshot()
            out = self._diff(self._snapshot or {}, new)
            self._snapshot = new
            if out or (deadline is not None and time.monotonic() >= deadline):
                return out
