"""Write a directory tree as a layer tar (import of a directory, commit, export).

Deterministic: entries sorted by name, PAX format, integer mtimes, zero atime/ctime,
no user/group names. Hardlinks are emitted once as a file and then as links (an inode
map), xattrs as ``SCHILY.xattr.*`` records (overlay's own ``trusted.overlay.*`` are never
written). Files are opened relative to their directory fd with O_NOFOLLOW, so a tree
that changes under us (a container's upper dir) can never make us read a file outside
it through a swapped-in symlink.

With ``overlay=True`` the tree is an overlayfs upper dir and whiteouts are written back
the way image layers express them: a 0/0 character device ``x`` becomes an empty file
``.wh.x``; a directory with ``trusted.overlay.opaque=y`` gets a ``.wh..wh..opq`` entry.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..fsutil import Writable

OVERLAY_PREFIXES = ("trusted.overlay.", "user.overlay.")
CHUNK = 1 << 20


class HashedOutput:
    """``diff_id`` (sha256 of the tar written in) and ``digest`` (sha256 of the blob
    written out) of a layer output that keeps ``diff_hash`` and ``blob_hash``."""

    diff_hash: Any
    blob_hash: Any

    @property
    def diff_id(self) -> str:
        return "sha256:" + self.diff_hash.hexdigest()

    @property
    def digest(self) -> str:
        return "sha256:" + self.blob_hash.hexdigest()


class LayerOutput(HashedOutput):
    """A write-only stream: hashes the uncompressed tar (DiffID), compresses (gzip/zstd/
    none), hashes what it writes (the blob digest) and passes it on to ``out``."""

    def __init__(self, out: Writable, compression: str = "none", level: int | None = None):
        self.out = out
        self._c: Any
        self.compression = compression
        self.diff_hash = hashlib.sha256()
        self.blob_hash = hashlib.sha256()
        self.size = 0
        self.blob_size = 0
        if compression == "gzip":
            self._c = zlib.compressobj(6 if level is None else level, zlib.DEFLATED, 31)
        elif compression == "zstd":
            import zstandard

            self._c = zstandard.ZstdCompressor(level=3 if level is None else level,
                                               threads=-1).compressobj()
        elif compression == "none":
            self._c = None
        else:
            raise ValueError(f"unknown compression {compression!r}")

    def _out(self, data: bytes) -> None:
        if data:
            self.blob_hash.update(data)
            self.blob_size += len(data)
            self.out.write(data)

    def write(self, data) -> int:
        self.diff_hash.update(data)
        self.size += len(data)
        self._out(self._c.compress(bytes(data)) if self._c else bytes(data))
        return len(data)

    def close(self) -> None:
        if self._c is not None:
            self._out(self._c.flush())
            self._c = None

    def flush(self) -> None:
        pass


@dataclass
class TreeStats:
    """What a tar of a tree held: entries and bytes."""
    entries: int = 0
    bytes: int = 0


def _xattrs(path_or_fd, follow: bool = False) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    try:
        names = os.listxattr(path_or_fd, follow_symlinks=follow) if isinstance(path_or_fd, str) \
            else os.listxattr(path_or_fd)
    except OSError:
        return out
    for name in names:
        if name.startswith(OVERLAY_PREFIXES):
            continue
        try:
            out[name] = (os.getxattr(path_or_fd, name, follow_symlinks=follow)
                         if isinstance(path_or_fd, str) else os.getxattr(path_or_fd, name))
        except OSError:
            pass
    return out


def _pax(xattrs: dict[str, bytes]) -> dict[str, str]:
    return {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()}


def write_tree(root: str, out, overlay: bool = False, prefix: str = "",
               filter: Callable[[str], bool] | None = None,
               on_entry: Callable[[str, int], None] | None = None,
               top: str | None = None) -> TreeStats:
    """Write the tree under ``root`` as a tar into ``out`` (any object with write()).

    ``filter(relpath) -> bool`` may skip entries (True keeps). Paths in the tar are
    relative (``etc/passwd``, directories ``etc/``), prefixed by ``prefix``. ``top``:
    also write ``root`` itself first, as the directory entry ``top/`` (cp's archives).
    """
    stats = TreeStats()
    inodes: dict[tuple[int, int], str] = {}
    tf = _open_writer(out)
    rootfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if top is not None:
            _add_dir(rootfd, "", top, os.fstat(rootfd), tf, inodes, stats, overlay, prefix,
                     filter, None)
        else:
            _walk(rootfd, "", tf, inodes, stats, overlay, prefix, filter, on_entry)
    finally:
        os.close(rootfd)
        tf.close()
    return stats


def write_entry_at(dirfd: int, name: str, tname: str, out) -> int:
    """Write the one non-directory entry ``name`` of directory ``dirfd`` (not followed if
    a symlink) as a whole tar into ``out``, named ``tname``. Returns the entry count (0
    for a socket, which tar does not carry)."""
    stats = TreeStats()
    tf = _open_writer(out)
    try:
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        _add(dirfd, name, name, tname, st, tf, {}, stats, False, "", None, None)
    finally:
        tf.close()
    return stats.entries


def _open_writer(out) -> tarfile.TarFile:
    # (a large bufsize makes tarfile's write buffer re-copy itself on every append)
    return tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8",
                        errors="surrogateescape", bufsize=tarfile.RECORDSIZE)


def _info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime)
    return ti


def _walk(dirfd: int, rel: str, tf: tarfile.TarFile, inodes, stats, overlay, prefix, filter,
          on_entry) -> None:
    try:
        names = sorted(os.listdir(dirfd))
    except OSError:
        return
    for name in names:
        path = f"{rel}/{name}" if rel else name
        if filter is not None and not filter(path):
            continue
        try:
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        _add(dirfd, name, path, prefix + path, st, tf, inodes, stats, overlay, prefix, filter,
             on_entry)


def _add_dir(fd: int, path: str, tname: str, st: os.stat_result, tf: tarfile.TarFile, inodes,
             stats, overlay, prefix, filter, on_entry) -> None:
    """The directory open as ``fd`` (entry ``tname/``), then everything under it."""
    xa = _xattrs(fd)
    opaque = False
    if overlay:
        try:
            opaque = os.getxattr(fd, "trusted.overlay.opaque") == b"y"
        except OSError:
            opaque = False
    ti = _info(tname + "/", st)
    ti.type = tarfile.DIRTYPE
    if xa:
        ti.pax_headers = _pax(xa)
    tf.addfile(ti)
    stats.entries += 1
    if on_entry:
        on_entry(path, 0)
    if opaque:
        wh = _info(tname + "/.wh..wh..opq", st)
        wh.type = tarfile.REGTYPE
        wh.mode = 0o600
        wh.size = 0
        tf.addfile(wh)
        stats.entries += 1
    _walk(fd, path, tf, inodes, stats, overlay, prefix, filter, on_entry)


def _add(dirfd: int, name: str, path: str, tname: str, st: os.stat_result, tf: tarfile.TarFile,
         inodes, stats, overlay, prefix, filter, on_entry) -> None:
    """Entry ``name`` of ``dirfd`` (``path`` below the tree's root), written as ``tname``."""
    mode = st.st_mode
    if stat.S_ISCHR(mode) and overlay and st.st_rdev == 0:
        parent, _, base = tname.rpartition("/")
        ti = _info((parent + "/" if parent else "") + ".wh." + base, st)
        ti.type = tarfile.REGTYPE
        ti.size = 0
        ti.mode = 0o600
        tf.addfile(ti)
        stats.entries += 1
        return
    if stat.S_ISDIR(mode):
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
        try:
            _add_dir(fd, path, tname, st, tf, inodes, stats, overlay, prefix, filter, on_entry)
        finally:
            os.close(fd)
        return
    if stat.S_ISSOCK(mode):
        return  # sockets are not carried by tar layers
    key = (st.st_dev, st.st_ino)
    if st.st_nlink > 1 and key in inodes:
        ti = _info(tname, st)
        ti.type = tarfile.LNKTYPE
        ti.linkname = inodes[key]
        tf.addfile(ti)
        stats.entries += 1
        return
    if st.st_nlink > 1:
        inodes[key] = tname
    if stat.S_ISREG(mode):
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
        try:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode) or (fst.st_dev, fst.st_ino) != key:
                return  # swapped under us
            ti = _info(tname, fst)
            ti.size = fst.st_size
            xa = _xattrs(fd)
            if xa:
                ti.pax_headers = _pax(xa)
            with os.fdopen(os.dup(fd), "rb") as f:
                tf.addfile(ti, _Exact(f, fst.st_size))
            stats.bytes += fst.st_size
        finally:
            os.close(fd)
    elif stat.S_ISLNK(mode):
        ti = _info(tname, st)
        ti.type = tarfile.SYMTYPE
        ti.linkname = os.readlink(name, dir_fd=dirfd)
        xa = _xattrs(f"/proc/self/fd/{dirfd}/{name}")
        if xa:
            ti.pax_headers = _pax(xa)
        tf.addfile(ti)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        ti = _info(tname, st)
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tf.addfile(ti)
    elif stat.S_ISFIFO(mode):
        ti = _info(tname, st)
        ti.type = tarfile.FIFOTYPE
        tf.addfile(ti)
    else:
        return
    stats.entries += 1
    if on_entry:
        on_entry(path, st.st_size if stat.S_ISREG(mode) else 0)


class _Exact:
    """Read exactly ``size`` bytes: pad with zeros if the file shrank, stop if it grew."""

    def __init__(self, f, size: int):
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(n)
        if len(data) < n:
            data += b"\0" * (n - len(data))
        self.left -= len(data)
        return data


def layer_from_dir(store, path: str, overlay: bool = False, compression: str = "gzip",
                   exclude: set[str] | None = None, on_entry=None) -> dict:
    """Tar ``path`` into a new verified blob of ``store`` (compressed as asked).

    ``overlay``: ``path`` is an overlayfs upper dir (whiteouts written back as ``.wh.``).
    ``exclude``: relative paths (and everything under them) left out, e.g. the mount
    points the runtime created. Returns ``{"descriptor": {mediaType, digest, size},
    "diff_id": ..., "size": uncompressed bytes, "entries": n}``. The blob is visible
    (verified) when this returns; registering an image that uses it is the caller's job.
    """
    from . import media

    keep = None
    if exclude:
        ex = {e.strip("/") for e in exclude if e.strip("/")}

        def keep(rel: str) -> bool:
            return not any(rel == e or rel.startswith(e + "/") for e in ex)

    with store.blob_writer() as w:
        out = LayerOutput(w, compression)
        stats = write_tree(path, out, overlay=overlay, filter=keep, on_entry=on_entry)
        out.close()
    mt = {"gzip": media.OCI_LAYER_GZIP, "zstd": media.OCI_LAYER_ZSTD}.get(compression, media.OCI_LAYER)
    return {"descriptor": {"mediaType": mt, "digest": w.digest, "size": w.size},
            "diff_id": out.diff_id, "size": out.size, "entries": stats.entries}
