"""The new mount API's system calls (``fsopen`` / ``fsconfig`` / ``fsmount`` /
``open_tree`` / ``move_mount``) and ``umount2``, through ctypes: small, so the container's init can use it
(core/fs/imagemount.py) without the imports of the rest of core.fs."""

from __future__ import annotations

import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

SYS_FSOPEN = 430
SYS_FSCONFIG = 431
SYS_FSMOUNT = 432
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429        # these numbers are the same on every architecture but alpha

FSOPEN_CLOEXEC = 0x1
FSMOUNT_CLOEXEC = 0x1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOVE_MOUNT_F_EMPTY_PATH = 0x4
OPEN_TREE_CLONE = 0x1
AT_EMPTY_PATH = 0x1000
AT_FDCWD = -100
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8


def _sys(nr: int, *args) -> int:
    r = libc.syscall(nr, *args)
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


def _fs_log(fsfd: int) -> str:
    """The messages the kernel queued on a file system context (why fsconfig failed)."""
    out = []
    for _ in range(8):
        try:
            msg = os.read(fsfd, 1024)
        except OSError:
            break
        if not msg:
            break
        out.append(msg.decode(errors="replace").strip())
    return "; ".join(out)


def clone_detached(fd: int) -> int:
    """``open_tree(fd, "", OPEN_TREE_CLONE)``: a detached copy of the mount whose root
    ``fd`` is (close-on-exec), on the same superblock. Unlike the original, it can be
    used (as an overlay's lower layer) from any mount namespace, and unmounting the
    original leaves it be."""
    return _sys(SYS_OPEN_TREE, ctypes.c_int(fd), b"",
                ctypes.c_uint(OPEN_TREE_CLONE | AT_EMPTY_PATH | os.O_CLOEXEC))


def move_mount(mount_fd: int, target: str) -> None:
    """Attach the detached mount ``mount_fd`` (from fsmount) at the directory ``target``."""
    _sys(SYS_MOVE_MOUNT, ctypes.c_int(mount_fd), b"", ctypes.c_int(AT_FDCWD),
         os.fsencode(target), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH))


def umount_detach(target: str) -> None:
    """``umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW)``: gone from the mount table at
    once; whoever still uses the mount (an overlay made on it) keeps it until done."""
    if libc.umount2(os.fsencode(target), ctypes.c_int(MNT_DETACH | UMOUNT_NOFOLLOW)) < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")
