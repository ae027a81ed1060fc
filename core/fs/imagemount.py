"""Mount a layer image (a squashfs file, see core/store/layerimage.py): a loop device bound
to the file (read-only, auto-clearing), then the new mount API (``fsopen`` / ``fsconfig`` /
``fsmount``) makes a *detached* mount and hands back an fd on its root. Closing the last
fd (or the process ending) unmounts a detached mount, and the loop device then detaches
itself.

* :func:`shared_mount` — what a container's init uses: the image mounted once, at
  ``<runtime dir>/layers/<layer>.<inode>.<mtime>`` in the host's mount table, and shared
  by every container of every image that has the layer. The page cache of a file is
  per mount of an image (per superblock), so one mount per container read and
  decompressed its image's files again for each container, and kept a copy of each in
  memory per container (busybox's binary: ~8 ms of a ``run --rm ... true``). The
  directory is root's alone (the runtime dir is 0700): no other user reaches the
  setuid programs and device nodes a layer may hold. :func:`release_shared` unmounts
  (lazily: a running container keeps its layers) when the store deletes the layer.
* :func:`mount_image` — one detached mount, the caller owns the fd.
* :func:`readable` — a path this process can read a layer at: a directory layer's own
  path, or ``/proc/self/fd/N`` of an image mounted once per process (nodev, nosuid) and
  kept until :func:`release` or the end of the process.
* :func:`reading` — the same for the length of a ``with`` block only (walks, opening a
  file), so a long-lived process does not keep a mount per layer it has looked at.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat
import struct

from core.fs import mountapi as _m
from core.fs.layersweep import SHARED_LOCK  # (os only: the sweep finds stale mounts without ctypes)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import contextlib
    from collections.abc import Iterator

IMAGE_FSTYPE = "squashfs"
LOOP_CTL_GET_FREE = 0x4C82
LOOP_CONFIGURE = 0x4C0A         # Linux 5.8
LOOP_SET_FD = 0x4C00            # before 5.8: bind, then set the flags
LOOP_SET_STATUS64 = 0x4C04
LOOP_CLR_FD = 0x4C01
LO_FLAGS_READ_ONLY = 1
LO_FLAGS_AUTOCLEAR = 4
_LO_FLAGS_OFFSET = 52           # struct loop_info64: 5 u64, 3 u32, then lo_flags
_LOOP_INFO64_SIZE = 232


def is_image(path: str) -> bool:
    """True for a layer image file (a directory layer is a directory)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


_configure = {"works": True}    # False once the kernel refused LOOP_CONFIGURE (< 5.8)


def _loop_attach(image_fd: int) -> tuple[int, int]:
    """Bind a free loop device to ``image_fd`` (read-only, detached when its last user
    goes). Returns (loop fd, minor). Another process may take the device the kernel
    offered first: binding then fails with EBUSY and we ask again."""
    ctl = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
    try:
        info = bytearray(_LOOP_INFO64_SIZE)
        struct.pack_into("<I", info, _LO_FLAGS_OFFSET, LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR)
        config = struct.pack("<II", image_fd, 0) + bytes(info) + bytes(64)
        for _ in range(64):
            n = fcntl.ioctl(ctl, LOOP_CTL_GET_FREE)
            try:
                lfd = os.open(f"/dev/loop{n}", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:   # no devtmpfs node (yet): let udev catch up
                continue
            try:
                if _configure["works"]:
                    try:
                        fcntl.ioctl(lfd, LOOP_CONFIGURE, config)
                        return lfd, n
                    except OSError as exc:
                        if exc.errno not in (errno.EINVAL, errno.ENOTTY):
                            raise
                        _configure["works"] = False     # a kernel before 5.8
                _set_fd(lfd, image_fd, info)
            except OSError as exc:
                os.close(lfd)
                if exc.errno == errno.EBUSY:
                    continue
                raise
            return lfd, n
        raise OSError(errno.EBUSY, "no free loop device")
    finally:
        os.close(ctl)


def _set_fd(lfd: int, image_fd: int, info: bytearray) -> None:
    """What LOOP_CONFIGURE does in one step, in two (kernels 5.2–5.7): LOOP_SET_FD binds the
    image (read-only: both fds are), LOOP_SET_STATUS64 sets AUTOCLEAR. A process killed
    between the two leaves the device bound until ``losetup -d``; a failure of the second
    unbinds it at once."""
    fcntl.ioctl(lfd, LOOP_SET_FD, image_fd)
    try:
        fcntl.ioctl(lfd, LOOP_SET_STATUS64, bytes(info))
    except OSError:
        try:
            fcntl.ioctl(lfd, LOOP_CLR_FD, 0)
        except OSError:
            pass
        raise


def mount_image(path: str, nodev_nosuid: bool = True) -> int:
    """Mount the layer image ``path`` read-only, detached; return an fd on its root
    (O_CLOEXEC). ``nodev_nosuid=False`` for a container's own layers, whose setuid
    programs and device nodes must behave as in a directory layer."""
    image_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        lfd, minor = _loop_attach(image_fd)
    finally:
        os.close(image_fd)
    try:
        fsfd = _m._sys(_m.SYS_FSOPEN, IMAGE_FSTYPE.encode(), ctypes.c_uint(_m.FSOPEN_CLOEXEC))

        def config(cmd: int, key: bytes | None = None, value: bytes | None = None) -> None:
            _m._sys(_m.SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(cmd), key, value,
                    ctypes.c_int(0))

        try:
            try:
                config(_m.FSCONFIG_SET_FLAG, b"ro")
                config(_m.FSCONFIG_SET_STRING, b"source", f"/dev/loop{minor}".encode())
                config(_m.FSCONFIG_CMD_CREATE)
            except OSError as exc:
                raise OSError(exc.errno, f"mounting layer image {path}: {exc.strerror} "
                                         f"{_m._fs_log(fsfd)}".strip()) from None
            attrs = _m.MOUNT_ATTR_RDONLY
            if nodev_nosuid:
                attrs |= _m.MOUNT_ATTR_NODEV | _m.MOUNT_ATTR_NOSUID
            return _m._sys(_m.SYS_FSMOUNT, ctypes.c_int(fsfd), ctypes.c_uint(_m.FSMOUNT_CLOEXEC),
                           ctypes.c_uint(attrs))
        finally:
            os.close(fsfd)
    finally:
        os.close(lfd)       # the mount keeps the device; autoclear detaches it after


# --------------------------------------------------------------------------------------
# one mount per image for every container (in the host's mount table, root's alone)
# --------------------------------------------------------------------------------------


def shared_name(path: str, st: os.stat_result) -> str:
    """The directory name of the shared mount of the image ``path`` (``layers/<id>/
    layer.sqfs``): its layer id, inode and mtime, so a layer image made anew (the layer
    deleted and pulled again) is never served through the mount of the old file."""
    return f"{os.path.basename(os.path.dirname(path))}.{st.st_ino}.{st.st_mtime_ns}"


def _open_mounted(mountpoint: str, base_dev: int) -> int | None:
    """An O_PATH fd on the root of the mount at ``mountpoint``; None when nothing is
    mounted there (the directory is on ``base_dev``) or it does not exist."""
    try:
        fd = os.open(mountpoint, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    if os.fstat(fd).st_dev != base_dev:
        return fd
    os.close(fd)
    return None


def shared_mount(path: str, base: str) -> int:
    """An fd (close-on-exec) on a detached clone of the mount of the layer image ``path``
    under ``base`` (``<runtime dir>/layers``), which is mounted first when no one has.
    The clone is on the same superblock (the page cache is shared) but, being detached,
    overlayfs takes it as a lower layer in the container's new mount namespace (a mount
    of another namespace it refuses), and it stays usable if the shared mount is
    released meanwhile. Concurrent starts take turns on ``base/.lock``: one mount per
    image, never two stacked."""
    fd = _shared_root(path, base)
    try:
        return _m.clone_detached(fd)
    finally:
        os.close(fd)


def _shared_root(path: str, base: str) -> int:
    """An O_PATH fd on the root of the shared mount of ``path`` (see shared_mount)."""
    st = os.stat(path, follow_symlinks=False)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, f"not a layer image: {path}")
    mountpoint = os.path.join(base, shared_name(path, st))
    try:
        base_dev = os.stat(base).st_dev
    except FileNotFoundError:
        try:
            os.mkdir(base, 0o700)   # in the runtime dir, which is 0700 already
        except FileExistsError:
            pass                    # another start made it first
        base_dev = os.stat(base).st_dev
    fd = _open_mounted(mountpoint, base_dev)
    if fd is not None:
        return fd
    lock = os.open(os.path.join(base, SHARED_LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fd = _open_mounted(mountpoint, base_dev)
        if fd is not None:
            return fd
        try:
            os.mkdir(mountpoint, 0o700)
        except FileExistsError:
            pass
        detached = mount_image(path, nodev_nosuid=False)
        try:
            _m.move_mount(detached, mountpoint)
        finally:
            os.close(detached)
        fd = _open_mounted(mountpoint, base_dev)
        if fd is None:
            raise OSError(errno.EIO, f"mounting layer image {path}: not mounted at {mountpoint}")
        return fd
    finally:
        os.close(lock)


def release_shared(base: str, layer: str | None = None) -> list[str]:
    """Unmount the shared mounts under ``base`` (of ``layer``, a layer id or one mount's
    whole name, or all) and remove their directories; the mount points released. Lazy:
    a container started on one keeps its layers until it ends (its overlay holds a clone),
    and the loop device detaches after that."""
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return []
    names = [n for n in names if n != SHARED_LOCK
             and (layer is None or n == layer or n.startswith(layer + "."))]
    if not names:
        return []
    released = []
    lock = os.open(os.path.join(base, SHARED_LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        base_dev = os.stat(base).st_dev
        for name in names:
            mountpoint = os.path.join(base, name)
            while True:             # (a mount stacked by hand on ours goes too)
                fd = _open_mounted(mountpoint, base_dev)
                if fd is None:
                    break
                os.close(fd)
                _m.umount_detach(mountpoint)
                released.append(mountpoint)
            try:
                os.rmdir(mountpoint)
            except OSError:
                pass
    finally:
        os.close(lock)
    return released


# --------------------------------------------------------------------------------------
# one mount per image per process, for reading
# --------------------------------------------------------------------------------------

_lock = None           # a threading.Lock, made on first use (the init never needs one)
_mounted: dict[str, tuple[tuple[int, int], int]] = {}   # path -> ((dev, ino), fd)


def _get_lock():
    global _lock
    if _lock is None:
        import threading

        _lock = threading.Lock()
    return _lock


def readable(path: str) -> str:
    """A path this process can read the layer ``path`` through (a directory as is; an
    image through a per-process detached mount)."""
    try:
        st = os.stat(path)
    except OSError:
        return path
    if not stat.S_ISREG(st.st_mode):
        return path
    key = (st.st_dev, st.st_ino)
    with _get_lock():
        got = _mounted.get(path)
        if got is not None and got[0] == key:
            return f"/proc/self/fd/{got[1]}"
        if got is not None:          # replaced (a rebuilt image): drop the old mount
            os.close(got[1])
        fd = mount_image(path)
        _mounted[path] = (key, fd)
        return f"/proc/self/fd/{fd}"


def readable_all(paths: list[str]) -> list[str]:
    return [readable(p) for p in paths]


def reading(paths: list[str]) -> contextlib.AbstractContextManager[list[str]]:
    """Like :func:`readable_all`, for the length of a ``with``: an image this process has
    not mounted for good is mounted for the block only and unmounted after it (its loop
    device then detaches). For work that does not keep the paths (a walk, opening one
    file: an fd opened inside keeps its mount alive by itself), so a long-lived process
    (the app browsing layers) does not gather one mount and loop device per layer seen.
    (contextlib is imported here, not by the container's init, which loads this module:
    with functools and collections it is ~3 ms of every start.)"""
    import contextlib

    return contextlib.contextmanager(_reading)(paths)


def _reading(paths: list[str]) -> Iterator[list[str]]:
    out: list[str] = []
    ours: list[int] = []
    try:
        for p in paths:
            with _get_lock():
                got = _mounted.get(p)
            if got is not None or not is_image(p):
                out.append(readable(p))
                continue
            fd = mount_image(p)
            ours.append(fd)
            out.append(f"/proc/self/fd/{fd}")
        yield out
    finally:
        for fd in ours:
            os.close(fd)


def release(prefix: str) -> None:
    """Unmount this process's mounts of the images below ``prefix`` (before removing
    them, so their space is freed)."""
    with _get_lock():
        for path in [p for p in _mounted if p == prefix or p.startswith(prefix.rstrip("/") + "/")]:
            os.close(_mounted.pop(path)[1])


def mounted_count() -> int:
    return len(_mounted)
