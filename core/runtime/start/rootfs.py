"""The container's root file system, one step per function, in the order runc does it
(libcontainer/rootfs_linux.go): propagation, overlay, /proc, /sys, /dev and its nodes,
/dev/pts, /dev/shm, /dev/mqueue, /etc files, pivot_root, then masked and read-only
paths and the read-only root.

Runs in the container's init, already inside its new mount namespace, before pivot_root.
Every mount target inside the rootfs is looked up with openat2(RESOLVE_IN_ROOT), so a
symlink in the image (``/proc -> /``, ``/dev -> /etc``) is clamped to the rootfs, and the
mount is made onto ``/proc/self/fd/N`` of the verified handle: no path is resolved twice.
The overlay is mounted inside that namespace only: when the container's last process
exits, the kernel unmounts it; the host never sees it.
"""

from __future__ import annotations

import errno
import os
import stat

from .. import linux
from ..linux import (
    MNT_DETACH,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_SLAVE,
    MS_STRICTATIME,
    O_PATH,
    RESOLVE_IN_ROOT,
    RESOLVE_NO_MAGICLINKS,
)

_RESOLVE = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS

#: mount targets this process had to create in the rootfs (relative paths). They land in
#: the container's upper dir; the init records them so commit/diff can leave them out,
#: as Docker's "init layer" does.
CREATED: list[str] = []

# (name, major, minor): runc's default devices, all 0666
DEVICES = [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
           ("urandom", 1, 9), ("tty", 5, 0)]
DEV_SYMLINKS = [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
                ("ptmx", "pts/ptmx"), ("core", "/proc/kcore")]


# --- handles inside the root -------------------------------------------------------------

def open_root(path: str) -> int:
    return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def _fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _note_created(rootfd: int, parentfd: int, rel: str) -> None:
    """Remember ``rel`` if it was made on the root file system itself (the overlay, so
    in ``upper``), not on a tmpfs we mounted (/dev, /sys/fs/cgroup)."""
    if os.fstat(parentfd).st_dev == os.fstat(rootfd).st_dev:
        CREATED.append(rel)


def open_dir_in_root(rootfd: int, rel: str, create: bool = True) -> int:
    """An O_PATH handle on directory ``rel`` inside the root, creating missing parts."""
    rel = rel.strip("/") or "."
    try:
        return linux.openat2(rootfd, rel, O_PATH | os.O_DIRECTORY, resolve=_RESOLVE)
    except FileNotFoundError:
        if not create or rel == ".":
            raise
    parent, name = os.path.split(rel)
    pfd = open_dir_in_root(rootfd, parent or ".", True)
    try:
        try:
            os.mkdir(name, 0o755, dir_fd=pfd)
            _note_created(rootfd, pfd, rel)
        except FileExistsError:
            pass
    finally:
        os.close(pfd)
    return linux.openat2(rootfd, rel, O_PATH | os.O_DIRECTORY, resolve=_RESOLVE)


def open_file_in_root(rootfd: int, rel: str, create: bool = True) -> int:
    """An O_PATH handle on a non-directory ``rel`` inside the root (created empty if missing)."""
    rel = rel.strip("/")
    try:
        fd = linux.openat2(rootfd, rel, O_PATH, resolve=_RESOLVE)
    except FileNotFoundError:
        if not create:
            raise
        parent, name = os.path.split(rel)
        pfd = open_dir_in_root(rootfd, parent or ".", True)
        try:
            os.close(linux.openat2(pfd, name, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644,
                                   resolve=_RESOLVE))
            _note_created(rootfd, pfd, rel)
        except FileExistsError:
            pass
        finally:
            os.close(pfd)
        fd = linux.openat2(rootfd, rel, O_PATH, resolve=_RESOLVE)
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EISDIR, f"mount target /{rel} is a directory")
    return fd


def mount_in_root(rootfd: int, rel: str, source, fstype, flags: int, data=None,
                  is_dir: bool = True) -> None:
    fd = open_dir_in_root(rootfd, rel) if is_dir else open_file_in_root(rootfd, rel)
    try:
        linux.mount(source, _fd_path(fd), fstype, flags, data)
    finally:
        os.close(fd)


LAYER_IMAGE_SUFFIX = "/layer.sqfs"     # core.paths.LAYER_IMAGE

# --- the steps -----------------------------------------------------------------------------

def make_mounts_private() -> None:
    """rslave on /: nothing we mount propagates to the host (runc's default)."""
    linux.mount(None, "/", None, MS_REC | MS_SLAVE)


def _escape(path: str) -> str:
    return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")


def _is_fd_path(path: str) -> bool:
    return path.startswith("/proc/self/fd/")


def mount_layer_images(lower_dirs: list[str], shared_base: str | None = None
                       ) -> tuple[list[str], list[int]]:
    """The layers stored as image files (core/store/layerimage.py), named
    ``/proc/self/fd/N`` for the overlay; directories stay as they are. Returns (lower
    dirs, fds to keep until the overlay is mounted). With ``shared_base`` (the runtime
    dir's ``layers/``), each image's one mount that every container shares
    (imagemount.shared_mount: its page cache is shared too); without, a detached mount
    of this container's own. Done before the init joins the container's cgroup, whose
    device rules would refuse the loop devices, and before it leaves the host's mount
    namespace; setuid programs and device nodes in the layers work as in directory
    layers."""
    out: list[str] = []
    fds: list[int] = []
    for p in lower_dirs:
        if not p.endswith(LAYER_IMAGE_SUFFIX):
            out.append(p)
            continue
        from core.fs.imagemount import mount_image, shared_mount

        try:
            fd = shared_mount(p, shared_base) if shared_base else mount_image(p, nodev_nosuid=False)
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        fds.append(fd)
        out.append(f"/proc/self/fd/{fd}")
    return out, fds


def mount_overlay(lower_dirs: list[str], upper: str, work: str, merged: str,
                  link_dir: str) -> None:
    """overlay on ``merged``: lower = image layers (given base first), upper/work per
    container. redirect_dir/metacopy/index off so ``upper`` alone is the change set.

    The option string is limited to a page: paths are given relative to the common
    directory we chdir into, and if that is still too long, through short symlinks
    ``link_dir/<n>`` (as containers/storage does with its ``l/`` links).
    """
    if not lower_dirs:
        raise OSError(errno.EINVAL, "no image layers to mount")
    top_first = list(reversed(lower_dirs))
    base = os.path.commonpath([upper, work, merged] + [p for p in top_first if not _is_fd_path(p)])
    rel = [p if _is_fd_path(p) else os.path.relpath(p, base) for p in top_first]
    opts_tail = (f",upperdir={_escape(os.path.relpath(upper, base))}"
                 f",workdir={_escape(os.path.relpath(work, base))}"
                 ",redirect_dir=off,metacopy=off,index=off")
    data = "lowerdir=" + ":".join(_escape(r) for r in rel) + opts_tail
    if len(data) >= 4000:
        os.makedirs(link_dir, mode=0o700, exist_ok=True)
        rel = []
        for i, p in enumerate(top_first):
            link = os.path.join(link_dir, str(i))
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(p, link)
            rel.append(os.path.relpath(link, base))
        data = "lowerdir=" + ":".join(_escape(r) for r in rel) + opts_tail
    cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(base)
        linux.mount("overlay", os.path.relpath(merged, base), "overlay", 0, data)
    finally:
        os.fchdir(cwd)
        os.close(cwd)


def mount_proc(rootfd: int) -> None:
    mount_in_root(rootfd, "proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def mount_sys(rootfd: int, writable: bool = False) -> None:
    """/sys, read-only (writable only for --privileged, as Docker)."""
    mount_in_root(rootfd, "sys", "sysfs", "sysfs",
                  MS_NOSUID | MS_NODEV | MS_NOEXEC | (0 if writable else MS_RDONLY))


def mount_cgroupfs(rootfd: int, version: str, writable: bool = False) -> None:
    """/sys/fs/cgroup, read-only (writable for --privileged), showing the container's own
    cgroup (cgroup namespace).

    v2: one cgroup2 mount. v1/hybrid: a tmpfs with one mount per hierarchy the init
    belongs to, as Docker does.
    """
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (0 if writable else MS_RDONLY)
    if version == "v2":
        mount_in_root(rootfd, "sys/fs/cgroup", "cgroup2", "cgroup2", flags)
        return
    fd = open_dir_in_root(rootfd, "sys/fs/cgroup")
    try:
        linux.mount("tmpfs", _fd_path(fd), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    "mode=755,size=64k")
    finally:
        os.close(fd)
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        _hid, ctrls, _path = line.split(":", 2)
        if ctrls == "":
            name, opts = "unified", None
            fstype = "cgroup2"
        else:
            fstype = "cgroup"
            if ctrls.startswith("name="):
                name, opts = ctrls[5:], f"none,{ctrls}"
            else:
                name, opts = ctrls, ctrls
        try:
            mount_in_root(rootfd, f"sys/fs/cgroup/{name}", "cgroup", fstype, flags, opts)
        except OSError:
            continue  # a hierarchy we may not mount here is simply not shown
    fd = open_dir_in_root(rootfd, "sys/fs/cgroup")
    try:
        linux.mount(None, _fd_path(fd), None, MS_REMOUNT | flags, "mode=755,size=64k")
    finally:
        os.close(fd)


def mount_dev(rootfd: int) -> None:
    mount_in_root(rootfd, "dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME,
                  "mode=755,size=65536k")


def create_device_nodes(rootfd: int) -> None:
    """mknod the standard character devices on the fresh /dev tmpfs and verify each."""
    dfd = linux.openat2(rootfd, "dev", os.O_RDONLY | os.O_DIRECTORY, resolve=_RESOLVE)
    try:
        old = os.umask(0)
        try:
            for name, major, minor in DEVICES:
                os.mknod(name, stat.S_IFCHR | 0o666, os.makedev(major, minor), dir_fd=dfd)
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(major, minor):
                    raise OSError(errno.EPERM, f"/dev/{name} is not the device we made")
        finally:
            os.umask(old)
        for name, target in DEV_SYMLINKS:
            os.symlink(target, name, dir_fd=dfd)
    finally:
        os.close(dfd)


def create_host_devices(rootfd: int, devices: list) -> None:
    """--privileged: the host's device nodes (security.host_devices) on the container's
    /dev tmpfs, same paths, modes and owners; the standard ones already there stay."""
    dfd = linux.openat2(rootfd, "dev", O_PATH | os.O_DIRECTORY, resolve=_RESOLVE)
    try:
        old = os.umask(0)
        try:
            for rel, mode, rdev, uid, gid in devices:
                parent, name = os.path.split(rel)
                pfd = _dev_subdir(dfd, parent)
                try:
                    os.mknod(name, mode, rdev, dir_fd=pfd)
                    os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False)
                except FileExistsError:
                    pass
                finally:
                    os.close(pfd)
        finally:
            os.umask(old)
    finally:
        os.close(dfd)


def _dev_subdir(dfd: int, rel: str) -> int:
    """A handle on /dev/``rel`` (created 0755 if missing), resolved inside /dev."""
    if not rel:
        return os.dup(dfd)
    parts = rel.split("/")
    for i in range(len(parts)):
        sub = "/".join(parts[: i + 1])
        try:
            os.mkdir(sub, 0o755, dir_fd=dfd)
        except FileExistsError:
            pass
    return linux.openat2(dfd, rel, O_PATH | os.O_DIRECTORY, resolve=_RESOLVE)


def mount_devpts(rootfd: int) -> None:
    mount_in_root(rootfd, "dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
                  "newinstance,ptmxmode=0666,mode=0620,gid=5")


def mount_shm(rootfd: int) -> None:
    mount_in_root(rootfd, "dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "mode=1777,size=65536k")


def mount_mqueue(rootfd: int) -> None:
    mount_in_root(rootfd, "dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def bind_etc_files(rootfd: int, files: dict[str, str]) -> None:
    """Bind the container's own /etc/hosts, /etc/hostname, /etc/resolv.conf over the image's."""
    for target, source in files.items():
        src = os.open(source, O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            mount_in_root(rootfd, target, _fd_path(src), None, MS_BIND, is_dir=False)
        finally:
            os.close(src)


_TMPFS_FLAGS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}
_TMPFS_CLEAR = {"rw": MS_RDONLY, "suid": MS_NOSUID, "dev": MS_NODEV, "exec": MS_NOEXEC}


def tmpfs_options(options: str, rw: bool = True) -> tuple[int, str]:
    """(mount flags, data) from Docker-style tmpfs options ("noexec,nosuid,size=64m")."""
    flags, data = 0, []
    for o in [o for o in (options or "").split(",") if o]:
        if o in _TMPFS_FLAGS:
            flags |= _TMPFS_FLAGS[o]
        elif o in _TMPFS_CLEAR:
            flags &= ~_TMPFS_CLEAR[o]
        elif o in ("rprivate", "private", "rshared", "shared", "rslave", "slave"):
            continue
        else:
            data.append(o)
    if not rw:
        flags |= MS_RDONLY
    return flags, ",".join(data)


def bind_mounts(rootfd: int, mounts: list[dict]) -> None:
    """The user's mounts, parents before children: volumes and bind mounts ({"Source",
    "Destination", "RW"}: a host path onto a target resolved in the root, read-only when
    asked) and tmpfs ({"Type": "tmpfs", "Options"})."""
    for m in sorted(mounts, key=lambda m: str(m.get("Destination", "")).rstrip("/").count("/")):
        if m.get("Type") == "tmpfs":
            flags, data = tmpfs_options(m.get("Options") or "", m.get("RW", True))
            mount_in_root(rootfd, m["Destination"], "tmpfs", "tmpfs", flags, data or None)
            continue
        src = os.open(m["Source"], O_PATH | os.O_CLOEXEC)
        try:
            is_dir = stat.S_ISDIR(os.fstat(src).st_mode)
            mount_in_root(rootfd, m["Destination"], _fd_path(src), None, MS_BIND | MS_REC,
                          is_dir=is_dir)
            if not m.get("RW", True):
                fd = (open_dir_in_root if is_dir else open_file_in_root)(rootfd, m["Destination"])
                try:
                    linux.mount(None, _fd_path(fd), None,
                                MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC)
                finally:
                    os.close(fd)
        finally:
            os.close(src)


def record_created(path: str) -> None:
    """Add the mount targets made in this start to the list file ``path`` (one relative
    path per line), so it names every one ever made for this container."""
    if not CREATED:
        return
    try:
        with open(path) as f:
            old = f.read().split("\n")
    except FileNotFoundError:
        old = []
    merged = list(dict.fromkeys([p for p in old if p] + CREATED))
    with open(path, "w") as f:
        f.write("\n".join(merged) + "\n")


def pivot_root(new_root: str) -> None:
    """pivot_root(".", ".") then detach the old root stacked beneath (runc's way, no
    temporary directory needed)."""
    oldroot = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    newroot = os.open(new_root, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(newroot)
        linux.pivot_root(".", ".")
        os.fchdir(oldroot)
        linux.mount(None, ".", None, MS_SLAVE | MS_REC)
        linux.umount2(".", MNT_DETACH)
    finally:
        os.close(oldroot)
        os.close(newroot)
    os.chdir("/")


def mask_paths(paths: list[str]) -> None:
    """Masked paths (after pivot_root): a file gets our verified /dev/null bound over it,
    a directory a read-only empty tmpfs."""
    null = os.open("/dev/null", O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(null)
        if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
            raise OSError(errno.EPERM, "/dev/null is not the null device")
        for _path, fd in _existing(paths):
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                linux.mount("tmpfs", _fd_path(fd), "tmpfs", MS_RDONLY,
                            "nr_blocks=1,nr_inodes=1")
            else:
                linux.mount(_fd_path(null), _fd_path(fd), None, MS_BIND)
    finally:
        os.close(null)


def readonly_paths(paths: list[str]) -> None:
    for path, fd in _existing(paths):
        linux.mount(_fd_path(fd), _fd_path(fd), None, MS_BIND | MS_REC)
        top = os.open(path, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)  # the new mount
        try:
            linux.mount(None, _fd_path(top), None,
                        MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        finally:
            os.close(top)


def _existing(paths: list[str]):
    """(path, O_PATH handle) for each of ``paths`` that exists (its last component not
    followed); the handle is closed when the caller asks for the next."""
    for path in paths:
        try:
            fd = os.open(path, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            continue
        try:
            yield path, fd
        finally:
            os.close(fd)


def make_root_readonly() -> None:
    linux.mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY)
