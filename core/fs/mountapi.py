"""The new mount API's system calls (``fsopen`` / ``fsconfig`` / ``fsmount``), through
ctypes: small, so the container's init can use it (core/fs/imagemount.py) without the
imports of the rest of core.fs."""

from __future__ import annotations

import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

SYS_FSOPEN = 430
SYS_FSCONFIG = 431
SYS_FSMOUNT = 432

FSOPEN_CLOEXEC = 0x1
FSMOUNT_CLOEXEC = 0x1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4


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
