"""The container process's terminal: a PTY from the container's own devpts (as runc
does), or the shim's (or exec caller's) pipes on 0, 1 and 2, in a new session.

The init and exec's child both call ``attach_stdio`` (through process.become); the
caller's side of exec resizes the PTY with ``set_size``. The shim resizes its master with
the same ioctl, written out there: it imports only builtin modules.

With a TTY the master travels to the parent over the sync socket (``P`` + SCM_RIGHTS);
the slave becomes the controlling terminal and, for the init, ``/dev/console``.
"""

from __future__ import annotations

import _socket
import errno
import fcntl
import os
import stat
import struct

TIOCSCTTY = 0x540E
TIOCSWINSZ = 0x5414
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441


def set_size(fd: int, rows: int, cols: int) -> None:
    """The terminal size of the PTY behind ``fd`` (master or slave)."""
    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def attach_stdio(sync_fd: int, stdio: tuple, uid: int, gid: int, *, tty: bool,
                 rows: int, cols: int, bind_dev_console: bool) -> None:
    """A new session whose 0, 1 and 2 are the console (``tty``) or ``stdio`` (fds, None:
    /dev/null), owned by the container's user."""
    os.setsid()
    if tty:
        slave = open_console(sync_fd, rows or 24, cols or 80, bind_dev_console)
        os.fchown(slave, uid, -1)
        for i in (0, 1, 2):
            os.dup2(slave, i)
        if slave > 2:
            os.close(slave)
    else:
        _stdio_onto_0_1_2(stdio, uid, gid)


def _stdio_onto_0_1_2(stdio: tuple, uid: int, gid: int) -> None:
    null = os.open("/dev/null", os.O_RDWR) if any(fd is None for fd in stdio) else -1
    targets: list[int] = [fd if fd is not None else null for fd in stdio]
    for target, fd in enumerate(targets):
        os.dup2(fd, target)
    for fd in {*targets}:
        if fd > 2:
            os.close(fd)
    for i in (0, 1, 2):
        try:
            os.fchown(i, uid, gid)
        except OSError:
            pass


def open_console(sync_fd: int, rows: int, cols: int, bind_dev_console: bool) -> int:
    """A PTY from the container's own devpts: the master goes to the parent over
    ``sync_fd`` (b"P" + SCM_RIGHTS), the slave becomes our controlling terminal and, for
    the init, /dev/console. Returns the slave."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    try:
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
        slave = os.open(f"/dev/pts/{n}", os.O_RDWR | os.O_NOCTTY)
    st = os.fstat(slave)
    if not stat.S_ISCHR(st.st_mode):
        raise OSError(errno.EPERM, "pty slave is not a character device")
    set_size(slave, rows, cols)
    if bind_dev_console:
        _bind_dev_console(slave)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, sync_fd)
    try:
        sock.sendmsg([b"P"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", master))])
    finally:
        sock.detach()
    os.close(master)
    fcntl.ioctl(slave, TIOCSCTTY, 0)
    return slave


def _bind_dev_console(slave: int) -> None:
    from .. import linux
    from . import rootfs

    root = os.open("/", os.O_PATH | os.O_CLOEXEC)
    try:
        console = rootfs.open_file_in_root(root, "dev/console")
    finally:
        os.close(root)
    try:
        linux.mount(f"/proc/self/fd/{slave}", f"/proc/self/fd/{console}", None, linux.MS_BIND)
    finally:
        os.close(console)
