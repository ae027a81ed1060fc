"""Named network namespaces: a namespace kept alive by a bind mount of its nsfs file.

A network namespace normally dies with its last process. To set one up *before* the
container's init exists (veth, address, routes), and to let `ip netns exec` and the app
find it, we pin it the way iproute2 does: bind-mount ``/proc/<tid>/ns/net`` onto an
empty file. Ours live under ``paths.netns`` (``<runtime dir>/netns/<id>``); a symlink
``/run/netns/nutshell-<id>`` makes them visible to ``ip netns list/exec``.

Creation does not fork: the calling *thread* unshares its network namespace (namespaces
are per task, so other threads are unaffected), the new namespace is bind-mounted, and
the thread returns to its original namespace with setns. That is iproute2's ``ip netns
add`` without its process, and costs well under a millisecond.

The container's init later joins the namespace with ``setns(open(path), CLONE_NEWNET)``.
Deleting is ``umount2(MNT_DETACH)`` + unlink of the file and of the symlink; when the last
process inside is gone too, the kernel frees the namespace and every interface in it
(a veth peer takes its host end with it).

Python 3.11 has no os.unshare/os.setns, so the syscalls go through ctypes.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import struct
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3)

IP_NETNS_DIR = "/run/netns"
LINK_PREFIX = "nutshell-"

_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                ctypes.c_ulong, ctypes.c_void_p]
        _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        _libc.unshare.argtypes = [ctypes.c_int]
        _libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
    return _libc


def _check(rc: int, what: str, path: str | None = None) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}", path)


def unshare(flags: int) -> None:
    _check(_c().unshare(flags), "unshare")


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    _check(_c().setns(fd, nstype), "setns")


def bind_mount(source: str, target: str) -> None:
    _check(_c().mount(source.encode(), target.encode(), None, MS_BIND, None), "mount", target)


def umount(target: str) -> bool:
    """Detach the mount on ``target``; False when nothing was mounted there."""
    rc = _c().umount2(target.encode(), MNT_DETACH | UMOUNT_NOFOLLOW)
    if rc != 0:
        e = ctypes.get_errno()
        if e in (errno.EINVAL, errno.ENOENT):
            return False
        raise OSError(e, f"umount: {os.strerror(e)}", target)
    return True


def link_path(ns_id: str) -> str:
    """The ``ip netns`` name of one of our namespaces."""
    return os.path.join(IP_NETNS_DIR, LINK_PREFIX + ns_id)


def create(path: str, ns_id: str | None = None) -> str:
    """Create a new network namespace pinned at ``path`` (an empty file is created).

    ``ns_id`` also publishes it as ``/run/netns/nutshell-<ns_id>``. The namespace has only
    a loopback device, down (see :func:`loopback_up`). Raises FileExistsError when
    ``path`` exists.
    """
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    try:
        original = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            unshare(CLONE_NEWNET)
            try:
                bind_mount("/proc/thread-self/ns/net", path)
            finally:
                setns(original)
        finally:
            os.close(original)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    if ns_id:
        _publish(path, ns_id)
    return path


def _publish(path: str, ns_id: str) -> None:
    link = link_path(ns_id)
    try:
        os.makedirs(IP_NETNS_DIR, mode=0o755, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if os.path.islink(link):
                os.unlink(link)
        os.symlink(path, link)
    except OSError:
        pass  # cosmetic: `ip netns` cannot see it, the container still works


def delete(path: str, ns_id: str | None = None) -> bool:
    """Unpin and remove a namespace file (and its /run/netns symlink). Idempotent.

    Returns True when something was removed.
    """
    removed = False
    if ns_id:
        link = link_path(ns_id)
        with contextlib.suppress(FileNotFoundError):
            if os.path.islink(link):
                os.unlink(link)
                removed = True
    if os.path.lexists(path):
        removed = umount(path) or removed
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed = True
    return removed


def is_pinned(path: str) -> bool:
    """True when ``path`` holds a live network namespace (an nsfs bind mount)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return fcntl.ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET
    except OSError:  # ENOTTY: a plain file, nothing mounted on it
        return False
    finally:
        os.close(fd)


def inode(path: str) -> int | None:
    """The namespace's inode number (what ``ls -l /proc/<pid>/ns/net`` shows)."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


@contextlib.contextmanager
def entered(path: str | None) -> Iterator[None]:
    """Run the block with the calling thread inside the network namespace at ``path``.

    Sockets created inside stay bound to that namespace after the block: that is how we
    get a netlink socket into a container without a helper process. ``None`` = no-op.
    """
    if path is None:
        yield
        return
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            setns(original)
    finally:
        os.close(original)


SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up(path: str | None = None) -> None:
    """Bring ``lo`` up in the namespace at ``path`` (or the calling thread's own).

    Two ioctls on a datagram socket: no netlink library needed, so the `--network none`
    path never imports pyroute2.
    """
    import socket

    with entered(path):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    with s:
        ifr = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifr))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def dev_counters(path: str | None = None) -> dict[str, dict[str, int]]:
    """Per-interface counters of a namespace, from its ``/proc/net/dev``.

    ``/proc/thread-self/net`` follows the reading thread's namespace, so entering the
    namespace is enough: no netlink.
    """
    with entered(path):
        with open("/proc/thread-self/net/dev", "rb") as f:
            text = f.read().decode()
    return parse_proc_net_dev(text)


def parse_proc_net_dev(text: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        v = rest.split()
        if len(v) < 16:
            continue
        out[name.strip()] = {
            "rx_bytes": int(v[0]), "rx_packets": int(v[1]), "rx_errors": int(v[2]),
            "rx_dropped": int(v[3]),
            "tx_bytes": int(v[8]), "tx_packets": int(v[9]), "tx_errors": int(v[10]),
            "tx_dropped": int(v[11]),
        }
    return out


def list_published() -> list[str]:
    """Our namespaces visible to ``ip netns`` (their ids)."""
    try:
        names = os.listdir(IP_NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n[len(LINK_PREFIX):] for n in names if n.startswith(LINK_PREFIX))
