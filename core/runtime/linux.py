"""The Linux system calls Python 3.11 lacks, through ctypes.

unshare, setns, mount, umount2, pivot_root, sethostname, prctl, capget/capset and
openat2. Every wrapper raises ``OSError`` with the errno and the path involved, so a
failure in the container's init reads as "mount /proc: Permission denied", not as a
bare -1.

Only ctypes and os (and procstat, os-free) are imported here: this module is loaded in the freshly forked
container init (and in exec's child), where import time is start-up latency.
"""

from __future__ import annotations

import ctypes
import os

from .procstat import proc_start_time  # noqa: F401 - here for the init and tests

# --- namespaces (linux/sched.h) ---------------------------------------------------------
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

NS_FLAGS = {
    "ipc": CLONE_NEWIPC, "uts": CLONE_NEWUTS, "net": CLONE_NEWNET, "pid": CLONE_NEWPID,
    "mnt": CLONE_NEWNS, "cgroup": CLONE_NEWCGROUP, "user": CLONE_NEWUSER,
}

# --- mount flags (linux/mount.h) ----------------------------------------------------------
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24

MNT_FORCE = 1
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8

# --- prctl (linux/prctl.h) ----------------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# --- openat2 (linux/openat2.h) ------------------------------------------------------------
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

O_PATH = getattr(os, "O_PATH", 0o10000000)

_SYSCALLS = {
    # name: (x86_64, aarch64/generic)
    "pivot_root": (155, 41),
    "openat2": (437, 437),
    "capget": (125, 90),
    "capset": (126, 91),
    "rt_sigaction": (13, 134),
}
_GENERIC = os.uname().machine not in ("x86_64", "AMD64")


def _nr(name: str) -> int:
    return _SYSCALLS[name][1 if _GENERIC else 0]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long


def _fs(path) -> bytes | None:
    if path is None:
        return None
    return os.fsencode(path)


def _fail(what: str, path=None):
    err = ctypes.get_errno()
    if path is not None:
        raise OSError(err, f"{what} {os.fsdecode(path)}: {os.strerror(err)}")
    raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        _fail("unshare")


def setns(fd: int, nstype: int = 0) -> None:
    if _libc.setns(fd, nstype) != 0:
        _fail("setns")


def mount(source, target, fstype=None, flags: int = 0, data=None) -> None:
    if _libc.mount(_fs(source), _fs(target), _fs(fstype), flags, _fs(data)) != 0:
        _fail(f"mount {fstype or ''}".rstrip(), target)


def umount2(target, flags: int = 0) -> None:
    if _libc.umount2(_fs(target), flags) != 0:
        _fail("umount", target)


def pivot_root(new_root, put_old) -> None:
    if _libc.syscall(_nr("pivot_root"), _fs(new_root), _fs(put_old)) != 0:
        _fail("pivot_root", new_root)


def sethostname(name: str) -> None:
    b = name.encode()
    if _libc.sethostname(b, len(b)) != 0:
        _fail("sethostname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    rc = _libc.prctl(option, arg2, arg3, arg4, arg5)
    if rc < 0:
        _fail(f"prctl({option})")
    return rc


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path, flags: int, mode: int = 0, resolve: int = 0) -> int:
    """openat2(2): open ``path`` relative to ``dirfd`` under the ``resolve`` restrictions.

    With RESOLVE_IN_ROOT, ``..`` and absolute symlinks are clamped to ``dirfd``, which
    is how every mount target inside the container's rootfs is looked up.
    """
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    fd = _libc.syscall(_nr("openat2"), ctypes.c_int(dirfd), _fs(path), ctypes.byref(how),
                       ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        _fail("openat2", path)
    return fd


def default_signal_action(sig: int) -> None:
    """rt_sigaction(sig, SIG_DFL) straight to the kernel: the C library refuses to touch
    the two real-time signals it keeps for itself (32, 33), and posix_spawn leaves them
    ignored, which execve would pass on to a container."""
    zero = ctypes.create_string_buffer(32)  # handler SIG_DFL, no flags, empty mask
    if _libc.syscall(_nr("rt_sigaction"), ctypes.c_int(sig), zero, None, ctypes.c_size_t(8)) != 0:
        _fail(f"rt_sigaction({sig})")


# --- capabilities (linux/capability.h, version 3: two 32-bit words) ------------------------
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) as 64-bit masks."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    if _libc.syscall(_nr("capget"), ctypes.byref(hdr), ctypes.byref(data)) != 0:
        _fail("capget")
    eff, prm, inh = ((getattr(data[0], f) | (getattr(data[1], f) << 32))
                     for f in ("effective", "permitted", "inheritable"))
    return eff, prm, inh


def capset(effective: int, permitted: int, inheritable: int = 0) -> None:
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in (0, 1):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> (32 * i)) & 0xFFFFFFFF
    if _libc.syscall(_nr("capset"), ctypes.byref(hdr), ctypes.byref(data)) != 0:
        _fail("capset")


# --- small helpers ------------------------------------------------------------------------

def set_loopback_up() -> None:
    """Bring ``lo`` up in the current network namespace (SIOCGIFFLAGS/SIOCSIFFLAGS).
    ``_socket``, not ``socket``: socket.py imports enum and selectors, ~10 ms of a
    container's start when it is first imported here, in the init."""
    import _socket
    import fcntl
    import struct

    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), 0x8913, ifr))[1]  # SIOCGIFFLAGS
        ifr = struct.pack("16sH14x", b"lo", flags | 0x1 | 0x40)  # IFF_UP | IFF_RUNNING
        fcntl.ioctl(s.fileno(), 0x8914, ifr)  # SIOCSIFFLAGS
    finally:
        s.close()


def own_pid_namespace_for_children() -> None:
    """Point this process's future children back at its own PID namespace.

    The shim unshared CLONE_NEWPID so that its first child is the container's PID 1; once
    that init is dead, every fork() fails with ENOMEM (children would be born in a dead
    namespace). The shim's clean-up (``nft``) and restart helper need a fork."""
    try:
        if os.stat("/proc/self/ns/pid_for_children").st_ino == os.stat("/proc/self/ns/pid").st_ino:
            return
    except OSError:
        return
    fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, CLONE_NEWPID)
    finally:
        os.close(fd)
