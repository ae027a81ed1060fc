"""The one safe tar extractor: layers (core/store/unpack.py), ``cp`` (core/fs/cp.py) and
a build's ``ADD archive.tar`` (core/dockerfile/builder.py) all create entries here.

core/store/tarreader.py iterates the headers (remembering none of them, with a cap on
PAX/GNU long headers, so memory stays flat whatever the archive); every entry is created
by :class:`SafeExtractor` with ``*at`` system calls relative to a directory fd opened
with ``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`` from the
destination, and the leaf itself is created with
``O_EXCL | O_NOFOLLOW``. Whatever the caller's policy, an archive cannot:

  * name anything outside the destination (absolute names, ``..``, NUL bytes, over-long
    names are refused by :func:`clean_name`);
  * write through a symlink, its own or one already there (``evil -> /etc`` then
    ``evil/passwd``);
  * hardlink to anything but a file it created itself earlier in the same archive;
  * set overlayfs' own ``trusted.overlay.*`` / ``user.overlay.*`` xattrs (they steer
    overlay redirects): they are dropped with a warning;
  * carry a PAX/GNU header larger than 1 MiB, or more entries than the cap.

What differs between callers is a policy, given by a subclass: how names map (cp's
rebase), who owns the files, what may already be in the way, what ``.wh.`` names mean,
and the wording of the errors. Modes (setuid/setgid/sticky included), mtimes, xattrs,
hardlinks, symlinks and device nodes are kept; directory modes and mtimes are applied
last, deepest first, so creating children does not disturb them.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import tarfile
from typing import TYPE_CHECKING, Any, Protocol, Union

from core.errors import UnsafeLayer
from core.fsutil import Readable

if TYPE_CHECKING:
    from core.store.tarreader import Entry

#: a tar header as tarfile or core.store.tarreader reads it (the same attribute names)
Member = Union[tarfile.TarInfo, "Entry"]


class MemberSource(Protocol):
    """What hands out the data of a regular file entry: a TarFile or a TarReader."""

    def extractfile(self, member: Any, /) -> Readable | None: ...


# --------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------
# openat2
# --------------------------------------------------------------------------------------

SYS_openat2 = 437  # the same on every architecture (added after the syscall tables merged)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

libc = ctypes.CDLL(None, use_errno=True)     # also core/fs/rootview.py's mount calls
libc.syscall.restype = ctypes.c_long


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_HAVE_OPENAT2: bool | None = None


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2). Falls back to a component-by-component O_NOFOLLOW walk on old kernels."""
    global _HAVE_OPENAT2
    if _HAVE_OPENAT2 is not False:
        how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
        fd = libc.syscall(SYS_openat2, dirfd, os.fsencode(path), ctypes.byref(how),
                           ctypes.sizeof(how))
        if fd >= 0:
            _HAVE_OPENAT2 = True
            return fd
        err = ctypes.get_errno()
        if err != errno.ENOSYS:
            raise OSError(err, os.strerror(err), path)
        _HAVE_OPENAT2 = False
    return _walk_nofollow(dirfd, path, flags)


def _walk_nofollow(dirfd: int, path: str, flags: int) -> int:
    """Pre-5.6 fallback: open each component with O_NOFOLLOW (no symlinks, no '..')."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise OSError(errno.EXDEV, "path escapes the root", path)
    cur = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dirfd)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            fl = (flags if last else os.O_PATH | os.O_DIRECTORY) | os.O_NOFOLLOW | os.O_CLOEXEC
            nxt = os.open(part, fl, dir_fd=cur)
            if not last and not stat.S_ISDIR(os.fstat(nxt).st_mode):
                os.close(nxt)
                raise OSError(errno.ELOOP, "symlink in path", path)
            os.close(cur)
            cur = nxt
        if not parts and flags != os.O_PATH | os.O_DIRECTORY:
            nxt = os.open(".", flags | os.O_CLOEXEC, dir_fd=cur)
            os.close(cur)
            cur = nxt
        return cur
    except BaseException:
        os.close(cur)
        raise


STRICT = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV
BENEATH = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS

# --------------------------------------------------------------------------------------
# names, headers, limits
# --------------------------------------------------------------------------------------

MAX_NAME = 4096
DEFAULT_MAX_ENTRIES = int(os.environ.get("NUTSHELL_MAX_LAYER_ENTRIES", 5_000_000))
CHUNK = 1 << 20
OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")


def clean_name(name: str) -> str:
    """Normalise a tar entry name to a relative path, refusing anything that escapes.

    '' means the destination itself.
    """
    s = name.rstrip("/")
    if (s and s[0] != "/" and len(s) <= 255 and s.isascii() and "\x00" not in s and "//" not in s
            and "/." not in "/" + s):
        return s            # the common case: nothing to remove, nothing to refuse
    if "\x00" in name:
        raise UnsafeLayer(f"layer entry name contains NUL: {name!r}")
    if len(name) > MAX_NAME:
        raise UnsafeLayer(f"layer entry name longer than {MAX_NAME} bytes")
    if name.startswith("/"):
        raise UnsafeLayer(f"layer entry has an absolute path: {name!r}")
    parts = []
    for p in name.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            raise UnsafeLayer(f"layer entry escapes the layer with '..': {name!r}")
        if len(os.fsencode(p)) > 255:
            raise UnsafeLayer(f"layer entry has a path component longer than 255 bytes: {name!r}")
        parts.append(p)
    return "/".join(parts)


def kind_of(m: Member) -> str:
    return ("symlink" if m.issym() else "hardlink" if m.islnk() else "file" if m.isreg()
            else "device" if (m.ischr() or m.isblk()) else "fifo" if m.isfifo() else "entry")


def mtime_ns(m: Member) -> int:
    try:
        return int(float(m.mtime) * 1_000_000_000)
    except (TypeError, ValueError, OverflowError):
        return 0


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def member_xattrs(m: Member, warnings: list[str]) -> list[tuple[str, bytes]]:
    """The xattrs an entry's PAX records give (``SCHILY.xattr.*``, ``LIBARCHIVE.xattr.*``),
    without overlayfs' own (a layer must never set them: ``trusted.overlay.*`` would be
    obeyed by the kernel), each dropped one noted in ``warnings``."""
    out = []
    for key, value in (m.pax_headers or {}).items():
        if key.startswith("SCHILY.xattr."):
            name = key[len("SCHILY.xattr."):]
            raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        elif key.startswith("LIBARCHIVE.xattr."):
            import base64
            import urllib.parse

            name = urllib.parse.unquote(key[len("LIBARCHIVE.xattr."):])
            try:
                raw = base64.b64decode(value + "=" * (-len(value) % 4))
            except Exception:  # noqa: BLE001
                continue
        else:
            continue
        if name.startswith(OVERLAY_XATTR_PREFIXES):
            warnings.append(f"dropped overlay xattr {name} on {m.name!r}")
            continue
        out.append((name, raw))
    return out


# --------------------------------------------------------------------------------------
# the extractor
# --------------------------------------------------------------------------------------


class SafeExtractor:
    """Creates the entries of a tar stream below the directory ``rootfd``, never outside.

    Feed it ``apply(tar, member)`` for each header, then ``finish()`` (directory modes
    and mtimes) and ``close()`` (the directory fds it keeps open). ``entries``, ``bytes``
    (regular file data written), ``created`` ({path: is_dir} of what this archive made),
    ``implicit`` (parents it had to create) and ``warnings`` describe the result.
    The hooks below are the policy; the defaults are a layer's.
    """

    what = "layer"                   # how errors name the archive
    resolve = STRICT                 # openat2 resolve flags below the root

    def __init__(self, rootfd: int, max_entries: int = DEFAULT_MAX_ENTRIES):
        self.rootfd = rootfd
        self.max_entries = max_entries
        self.entries = 0
        self.bytes = 0
        self.created: dict[str, bool] = {}        # path -> is_dir, made by this archive
        self.implicit: set[str] = set()
        self.dir_attrs: dict[str, tuple[int, int]] = {}   # path -> (mode, mtime_ns)
        self.warnings: list[str] = []
        self._dirfds: dict[str, int] = {}

    # -- policy hooks -----------------------------------------------------------------
    def entry_name(self, raw: str) -> str:
        """The clean relative path an entry is created at ('' = the root itself)."""
        return clean_name(raw)

    def link_target(self, raw: str) -> str:
        """The clean relative path a hardlink entry points to."""
        return clean_name(raw)

    def root_entry(self, m: Member) -> None:
        """An entry naming the root itself: only a directory may, and it sets the
        root's xattrs, mode and mtime."""
        if not m.isdir():
            raise UnsafeLayer(f"{self.what} entry {m.name!r} would replace the {self.what} "
                              f"root with a {kind_of(m)}")
        self._set_xattrs_path(self.rootfd, None, m)
        self.dir_attrs[""] = (m.mode, self.mtime_ns(m))

    def special_name(self, parent: str, base: str, m: Member, rel: str) -> bool:
        """Handle an entry whose name means something else (whiteouts); True if done."""
        return False

    def clear_slot(self, pfd: int, base: str, rel: str, m: Member) -> bool:
        """Make room for ``m`` at ``base``; True when a directory stays there for a
        directory entry (no mkdir). Default: only what this archive made can be in the
        way (the destination starts empty), and the later entry replaces it."""
        exists_is_dir = None
        if rel in self.created:
            try:
                st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
                exists_is_dir = stat.S_ISDIR(st.st_mode)
            except FileNotFoundError:
                pass
        if m.isdir():
            if exists_is_dir is False:
                self._remove(pfd, base, rel)
                return False
            return exists_is_dir is True
        if exists_is_dir is not None:
            self._remove(pfd, base, rel)
        return False

    def owner(self, m: Member) -> tuple[int, int] | None:
        """(uid, gid) to give the entry, or None to leave the creator's."""
        return m.uid, m.gid

    def mtime_ns(self, m: Member) -> int:
        return mtime_ns(m)

    def refuse_dir(self, exc: OSError, rel: str) -> None:
        """Turn an error opening or creating directory ``rel`` into the caller's error."""
        if exc.errno in (errno.ELOOP, errno.EXDEV):
            raise UnsafeLayer(f"{self.what} entry passes through a symlink at {rel!r}") from None
        if exc.errno == errno.ENOTDIR:
            raise UnsafeLayer(f"{self.what} entry needs {rel!r} to be a directory, "
                              "but it is not") from None

    def refuse_entry(self, exc: OSError, rel: str) -> None:
        """Turn an error creating entry ``rel`` into the caller's error (default: as is)."""

    def truncated(self, rel: str) -> Exception:
        return UnsafeLayer(f"{self.what} data ends inside {rel!r}")

    def bad_hardlink(self, rel: str, m: Member) -> Exception:
        return UnsafeLayer(f"{self.what} hardlink {rel!r} points to {m.linkname!r}, "
                           f"which is not a file unpacked earlier in this {self.what}")

    # -- directories --------------------------------------------------------------------
    def close(self) -> None:
        self._forget_dirs()

    def _forget_dirs(self) -> None:
        for fd in self._dirfds.values():
            os.close(fd)
        self._dirfds.clear()

    def _open_dir(self, rel: str) -> int:
        """An fd for directory ``rel`` below the root, creating missing parents 0755
        (remembered in ``implicit``). Never follows a symlink; the fd is cached."""
        if rel == "":
            return self.rootfd
        fd = self._dirfds.get(rel)
        if fd is not None:
            return fd
        parent, _, base = rel.rpartition("/")
        pfd = self._open_dir(parent)
        try:
            try:
                fd = openat2(pfd, base, os.O_PATH | os.O_DIRECTORY, self.resolve)
            except FileNotFoundError:
                os.mkdir(base, 0o755, dir_fd=pfd)
                self.implicit.add(rel)
                self.created[rel] = True
                fd = openat2(pfd, base, os.O_PATH | os.O_DIRECTORY, self.resolve)
        except OSError as exc:
            self.refuse_dir(exc, rel)
            raise
        if len(self._dirfds) > 256:
            os.close(fd)
            self._forget_dirs()
            return self._open_dir(rel)
        self._dirfds[rel] = fd
        return fd

    def _remove(self, pfd: int, base: str, rel: str) -> None:
        """Remove whatever is at ``base`` in ``pfd`` (a directory recursively)."""
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            self._forget_dirs()
            fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            try:
                _rmtree_fd(fd)
            finally:
                os.close(fd)
            os.rmdir(base, dir_fd=pfd)
            prefix = rel + "/"
            for k in [k for k in self.created if k == rel or k.startswith(prefix)]:
                del self.created[k]
            for k in [k for k in self.dir_attrs if k == rel or k.startswith(prefix)]:
                del self.dir_attrs[k]
            self.implicit = {k for k in self.implicit if not (k == rel or k.startswith(prefix))}
        else:
            os.unlink(base, dir_fd=pfd)
            self.created.pop(rel, None)

    # -- entries ------------------------------------------------------------------------
    def apply(self, tf: MemberSource, m: Member) -> None:
        self.entries += 1
        if self.entries > self.max_entries:
            raise UnsafeLayer(f"{self.what} has more than {self.max_entries} entries")
        rel = self.entry_name(m.name)
        parent, _, base = rel.rpartition("/")
        if rel == "":
            self.root_entry(m)
            return
        if self.special_name(parent, base, m, rel):
            return
        pfd = self._open_dir(parent)
        try:
            self._create(tf, m, pfd, parent, base, rel)
        except OSError as exc:
            self.refuse_entry(exc, rel)
            raise

    def _create(self, tf: MemberSource, m: Member, pfd: int, parent: str, base: str,
                rel: str) -> None:
        dir_there = self.clear_slot(pfd, base, rel, m)
        mtime = self.mtime_ns(m)
        if m.isdir():
            if not dir_there:
                os.mkdir(base, 0o700, dir_fd=pfd)
            self.implicit.discard(rel)
            self.created[rel] = True
            dfd = openat2(pfd, base, os.O_RDONLY | os.O_DIRECTORY, self.resolve)
            try:
                self._chown(dfd, m)
                self._set_xattrs_fd(dfd, m)
            finally:
                os.close(dfd)
            self.dir_attrs[rel] = (m.mode, mtime)
            return
        if m.isreg():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=pfd)
            try:
                src = tf.extractfile(m)
                assert src is not None      # a regular file entry has a data stream
                left = m.size
                while left > 0:
                    chunk = src.read(min(CHUNK, left))
                    if not chunk:
                        raise self.truncated(rel)
                    write_all(fd, chunk)
                    left -= len(chunk)
                self._chown(fd, m)
                os.chmod(fd, stat.S_IMODE(m.mode))
                self._set_xattrs_fd(fd, m)
                os.utime(fd, ns=(mtime, mtime))
                self.bytes += m.size
            finally:
                os.close(fd)
        elif m.issym():
            if not m.linkname:
                raise UnsafeLayer(f"{self.what} symlink {rel!r} has an empty target")
            os.symlink(m.linkname, base, dir_fd=pfd)
            self._chown(base, m, dir_fd=pfd)
            self._set_xattrs_path(pfd, base, m)
            os.utime(base, ns=(mtime, mtime), dir_fd=pfd, follow_symlinks=False)
        elif m.islnk():
            target = self.link_target(m.linkname)
            if not target or self.created.get(target) is not False:
                raise self.bad_hardlink(rel, m)
            tparent, _, tbase = target.rpartition("/")
            tpfd = self._open_dir(tparent)
            pfd = self._open_dir(parent)  # the cache may have been reset
            os.link(tbase, base, src_dir_fd=tpfd, dst_dir_fd=pfd, follow_symlinks=False)
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            dev = os.makedev(m.devmajor, m.devminor) if not m.isfifo() else 0
            os.mknod(base, kind | 0o600, dev, dir_fd=pfd)
            self._chown(base, m, dir_fd=pfd)
            fd = openat2(pfd, base, os.O_PATH, self.resolve)
            try:
                os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(m.mode))
            finally:
                os.close(fd)
            self._set_xattrs_path(pfd, base, m)
            os.utime(base, ns=(mtime, mtime), dir_fd=pfd, follow_symlinks=False)
        else:
            self.warnings.append(f"skipped {rel!r}: unsupported tar entry type {m.type!r}")
            return
        self.created[rel] = False

    def _chown(self, fd_or_name: int | str, m: Member, dir_fd: int | None = None) -> None:
        ids = self.owner(m)
        if ids is None:
            return
        if dir_fd is None:
            os.chown(fd_or_name, *ids)
        else:
            os.chown(fd_or_name, *ids, dir_fd=dir_fd, follow_symlinks=False)

    # -- xattrs -------------------------------------------------------------------------
    def _xattrs(self, m: Member) -> list[tuple[str, bytes]]:
        return member_xattrs(m, self.warnings)

    def _set_xattrs_fd(self, fd: int, m: Member) -> None:
        for name, value in self._xattrs(m):
            try:
                os.setxattr(fd, name, value)
            except OSError as exc:
                self.warnings.append(f"could not set xattr {name} on {m.name!r}: {exc.strerror}")

    def _set_xattrs_path(self, dirfd: int, base: str | None, m: Member) -> None:
        xs = self._xattrs(m)
        if not xs:
            return
        path = f"/proc/self/fd/{dirfd}" + (f"/{base}" if base else "")
        for name, value in xs:
            try:
                os.setxattr(path, name, value, follow_symlinks=False)
            except OSError as exc:
                self.warnings.append(f"could not set xattr {name} on {m.name!r}: {exc.strerror}")

    # -- finish -------------------------------------------------------------------------
    def finish(self, skip_missing: bool = False) -> None:
        """Directory modes and mtimes, deepest first (children no longer change them).
        ``skip_missing``: a directory that cannot be opened any more is left alone."""
        self._forget_dirs()
        for rel in sorted(self.dir_attrs, key=lambda p: p.count("/") + (1 if p else 0), reverse=True):
            mode, mtime = self.dir_attrs[rel]
            try:
                fd = openat2(self.rootfd, rel or ".", os.O_RDONLY | os.O_DIRECTORY, self.resolve)
            except OSError:
                if skip_missing:
                    continue
                raise
            try:
                os.chmod(fd, stat.S_IMODE(mode))
                os.utime(fd, ns=(mtime, mtime))
            finally:
                os.close(fd)


def _rmtree_fd(dirfd: int) -> None:
    for entry in os.scandir(dirfd):
        if entry.is_dir(follow_symlinks=False):
            fd = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=dirfd)
            try:
                _rmtree_fd(fd)
            finally:
                os.close(fd)
            os.rmdir(entry.name, dir_fd=dirfd)
        else:
            os.unlink(entry.name, dir_fd=dirfd)
