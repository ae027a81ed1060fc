"""``cp`` and ``export``: tar streams out of and into a container's file system.

Paths inside a container are resolved in its root with ``openat2(RESOLVE_IN_ROOT |
RESOLVE_NO_MAGICLINKS)``: its symlinks are followed as the container would see them, but
``..`` and absolute targets stop at the container's ``/`` — a link to ``/etc`` names the
container's /etc, never the host's (podman CVE-2019-10152, moby CVE-2018-15664). The
directory to write into is opened once and every entry of the incoming tar is created
relative to that fd, with ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`` for its parents and
``O_EXCL | O_NOFOLLOW`` for the leaf: a symlink swapped in by a process in the container
while we copy is refused, not followed. The same extractor writes to the host (``cp
CONTAINER:SRC HOSTDIR``), so a hostile tar from a container cannot escape the chosen
host directory either.

Docker's rules for where a copy lands (moby pkg/archive/copy.go PrepareArchiveCopy):
a source named ``dir/.`` copies the directory's contents; a destination that exists as
a directory receives the source under its own name; one that does not exist (or is a
file, for a file source) takes the destination's name; ``dst/`` must be a directory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
import tarfile
import threading
from dataclasses import dataclass
from typing import BinaryIO, Callable, cast

from core.errors import NotFound, NutshellError, UnsafeLayer
from core.fsutil import Readable
from core.types import CopyResult, PathStat
from core.store.tarwriter import CHUNK, _pax, _xattrs, write_tree
from core.store.unpack import (RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS,
                            RESOLVE_NO_SYMLINKS, _CappedTarInfo, clean_name, openat2)

IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
BENEATH = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
MAX_LINK_HOPS = 40
MAX_ENTRIES = 5_000_000
PSEUDO_FS = {"proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "securityfs", "debugfs",
             "tracefs", "configfs", "fusectl", "pstore", "bpf", "devtmpfs", "binfmt_misc"}
OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")


class CopyError(NutshellError):
    """A cp that cannot be done as asked (wrong kinds of source and destination)."""


# ---------------------------------------------------------------------- paths


def abs_clean(path: str) -> str:
    """``path`` as a clean absolute path (no ``..`` above ``/``, one leading slash)."""
    return "/" + posixpath.normpath("/" + path).lstrip("/")


def split_path(path: str) -> tuple[str, bool, bool]:
    """(clean absolute path, copy-contents ``/.``, asserts-a-directory ``/``)."""
    if not path:
        path = "/"
    contents = path == "." or path.endswith("/.")
    asserts_dir = contents or path.endswith("/")
    return abs_clean(path), contents, asserts_dir


@dataclass
class Resolved:
    """Where a path lands inside a root: the directory that holds it (an O_PATH fd, which
    the caller closes), its name there, and what is there (None: nothing)."""

    parent_fd: int
    base: str          # "" for the root itself
    path: str          # the absolute path after following symlinks (inside the root)
    st: os.stat_result | None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.parent_fd)

    @property
    def is_dir(self) -> bool:
        return self.st is not None and stat.S_ISDIR(self.st.st_mode)

    def open(self, flags: int = os.O_PATH) -> int:
        if not self.base:
            return openat2(self.parent_fd, ".", flags, BENEATH)
        return openat2(self.parent_fd, self.base, flags | os.O_NOFOLLOW, BENEATH)


def _open_dir_in_root(rootfd: int, path: str) -> int:
    rel = path.strip("/") or "."
    try:
        return openat2(rootfd, rel, os.O_PATH | os.O_DIRECTORY, IN_ROOT)
    except FileNotFoundError:
        raise NotFound(f"no such directory: {path}") from None
    except NotADirectoryError:
        raise CopyError(f"not a directory: {path}") from None
    except OSError as e:
        if e.errno == errno.EXDEV:
            raise UnsafeLayer(f"path {path} leaves the container's root") from None
        raise


def resolve(rootfd: int, path: str, follow: bool) -> Resolved:
    """Resolve ``path`` inside ``rootfd``. Directory components follow symlinks clamped to
    the root; the last one only with ``follow`` (each hop is resolved in the root again)."""
    clean = abs_clean(path)
    for _ in range(MAX_LINK_HOPS):
        if clean == "/":
            fd = openat2(rootfd, ".", os.O_PATH | os.O_DIRECTORY, IN_ROOT)
            return Resolved(fd, "", "/", os.fstat(fd))
        parent, base = posixpath.split(clean)
        pfd = _open_dir_in_root(rootfd, parent)
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return Resolved(pfd, base, clean, None)
        except BaseException:
            os.close(pfd)
            raise
        if not (follow and stat.S_ISLNK(st.st_mode)):
            return Resolved(pfd, base, clean, st)
        target = os.readlink(base, dir_fd=pfd)
        os.close(pfd)
        clean = abs_clean(posixpath.join(parent, target))
    raise CopyError(f"too many levels of symbolic links: {path}")


# ---------------------------------------------------------------------- tar out


def _tarinfo(name: str, st: os.stat_result) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime)
    return ti


def path_stat(r: Resolved, name: str, link_target: str = "") -> PathStat:
    st = r.st
    assert st is not None           # callers stat an existing path
    return {"name": name, "size": st.st_size, "mode": st.st_mode, "mtime": int(st.st_mtime),
            "linkTarget": link_target, "isDir": stat.S_ISDIR(st.st_mode)}


def write_entry(r: Resolved, name: str, out: BinaryIO,
                filter: Callable[[str], bool] | None = None) -> int:
    """Write what ``r`` names as a tar on ``out``, its top entry called ``name`` (``.``
    for a directory's contents). Returns the number of entries."""
    st = r.st
    assert st is not None           # callers copy an existing path
    if stat.S_ISDIR(st.st_mode):
        dfd = r.open(os.O_RDONLY | os.O_DIRECTORY)
        try:
            top = _tarinfo(name.rstrip("/") + "/", os.fstat(dfd))
            top.type = tarfile.DIRTYPE
            xa = _xattrs(dfd)
            if xa:
                top.pax_headers = _pax({k: v for k, v in xa.items()
                                        if not k.startswith(OVERLAY_XATTRS)})
            out.write(top.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
            prefix = "" if name in (".", "") else name.rstrip("/") + "/"
            if name == ".":
                prefix = "./"
            stats = write_tree(f"/proc/self/fd/{dfd}", out, prefix=prefix, filter=filter)
        finally:
            os.close(dfd)
        return stats.entries + 1
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8",
                      errors="surrogateescape", bufsize=tarfile.RECORDSIZE) as tf:
        ti = _tarinfo(name, st)
        if stat.S_ISREG(st.st_mode):
            fd = r.open(os.O_RDONLY)
            try:
                fst = os.fstat(fd)
                ti = _tarinfo(name, fst)
                ti.size = fst.st_size
                with os.fdopen(os.dup(fd), "rb") as f:
                    tf.addfile(ti, f)
            finally:
                os.close(fd)
        elif stat.S_ISLNK(st.st_mode):
            ti.type = tarfile.SYMTYPE
            ti.linkname = os.readlink(r.base, dir_fd=r.parent_fd)
            tf.addfile(ti)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            tf.addfile(ti)
        elif stat.S_ISFIFO(st.st_mode):
            ti.type = tarfile.FIFOTYPE
            tf.addfile(ti)
        else:
            raise CopyError(f"cannot copy {r.path}: unsupported file type (a socket?)")
    return 1


def pseudo_mounts(pid: int) -> list[str]:
    """Mount points (inside the container) of kernel file systems we must not tar:
    /proc, /sys, /dev and friends of a running container."""
    out = []
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields = left.split()
                fstype = right.split()[0] if right else ""
                mp = fields[4].replace("\\040", " ") if len(fields) > 4 else ""
                if fstype in PSEUDO_FS or mp == "/dev" or mp.startswith("/dev/"):
                    out.append(mp)
    except OSError:
        pass
    return out


def _skip_under(base_path: str, mounts: list[str]) -> Callable[[str], bool] | None:
    """A write_tree filter dropping what lies below any of ``mounts`` (the mount point
    directory itself is kept, empty, as ``docker export`` shows /proc)."""
    inside = [m for m in mounts if m != "/"]
    if not inside:
        return None
    base = base_path.rstrip("/")

    def keep(rel: str) -> bool:
        full = f"{base}/{rel}"
        return not any(full.startswith(m.rstrip("/") + "/") for m in inside)

    return keep


# ---------------------------------------------------------------------- tar in


class Extractor:
    """Creates the entries of a tar stream below one directory fd, never outside it.

    ``owners``: "keep" (the tar's uid/gid), "root" (0:0, Docker's cp into a container
    without -a) or "self" (do not chown: the caller owns them, Docker's cp to the host).
    ``rebase``: (old top name, new top name) — Docker's RebaseArchiveEntries; an old
    name of "." moves a contents archive under ``new``.
    ``no_whiteout_names``: refuse ``.wh.*`` names (they cannot be stored in an image
    layer: the next commit would turn them into deletions).
    """

    def __init__(self, dirfd: int, owners: str = "keep", rebase: tuple[str, str] | None = None,
                 no_whiteout_names: bool = False, max_entries: int = MAX_ENTRIES):
        self.rootfd = dirfd
        self.owners = owners
        self.rebase = rebase
        self.no_wh = no_whiteout_names
        self.max_entries = max_entries
        self.entries = 0
        self.bytes = 0
        self.created: dict[str, bool] = {}       # rel -> is_dir (made by this archive)
        self.dir_attrs: dict[str, tuple[int, int, int, int]] = {}

    def _name(self, raw: str) -> str:
        name = raw.lstrip("/")
        rel = clean_name(name)
        if self.rebase:
            old, new = self.rebase
            old = clean_name(old) if old not in (".", "") else ""
            if old == "":
                rel = f"{new}/{rel}" if rel else new
            elif rel == old:
                rel = new
            elif rel.startswith(old + "/"):
                rel = new + rel[len(old):]
            rel = clean_name(rel)
        return rel

    def _dir(self, rel: str) -> int:
        """An fd on directory ``rel`` below the root, creating missing parts 0755."""
        if not rel:
            return os.dup(self.rootfd)
        try:
            return openat2(self.rootfd, rel, os.O_PATH | os.O_DIRECTORY, BENEATH)
        except FileNotFoundError:
            parent, _, base = rel.rpartition("/")
            pfd = self._dir(parent)
            try:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(base, 0o755, dir_fd=pfd)
                    self.created[rel] = True
                return openat2(pfd, base, os.O_PATH | os.O_DIRECTORY, BENEATH)
            except OSError as e:
                self._refuse(e, rel)
                raise
            finally:
                os.close(pfd)
        except OSError as e:
            self._refuse(e, rel)
            raise

    @staticmethod
    def _refuse(e: OSError, rel: str) -> None:
        if e.errno in (errno.ELOOP, errno.EXDEV):
            raise UnsafeLayer(f"refusing to write through the symbolic link at {rel!r}") from None
        if e.errno == errno.ENOTDIR:
            raise CopyError(f"cannot copy: {rel!r} is not a directory") from None
        if e.errno == errno.EROFS:
            raise CopyError(f"cannot copy to {rel!r}: read-only file system") from None

    def _chown(self, fd_or_name, m: tarfile.TarInfo, dir_fd: int | None = None) -> None:
        if self.owners == "self":
            return
        uid, gid = (m.uid, m.gid) if self.owners == "keep" else (0, 0)
        if dir_fd is None:
            os.chown(fd_or_name, uid, gid)
        else:
            os.chown(fd_or_name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)

    def _xattrs(self, m: tarfile.TarInfo) -> list[tuple[str, bytes]]:
        out = []
        for key, value in (m.pax_headers or {}).items():
            if key.startswith("SCHILY.xattr."):
                name = key[len("SCHILY.xattr."):]
                if name.startswith(OVERLAY_XATTRS):
                    continue
                raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
                out.append((name, raw))
        return out

    def apply(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        self.entries += 1
        if self.entries > self.max_entries:
            raise UnsafeLayer(f"archive has more than {self.max_entries} entries")
        try:
            rel = self._name(m.name)
        except UnsafeLayer as e:
            raise UnsafeLayer(f"refusing archive entry {m.name!r}: {e.message}") from None
        parent, _, base = rel.rpartition("/")
        if rel == "":
            return        # the destination directory itself: leave it as it is
        if self.no_wh and base.startswith(".wh."):
            raise CopyError(f"cannot copy {rel!r} into a container: names starting with .wh. "
                            "are whiteouts in image layers")
        pfd = self._dir(parent)
        try:
            self._apply_at(tf, m, pfd, base, rel)
        except OSError as e:
            self._refuse(e, rel)
            raise
        finally:
            os.close(pfd)

    def _apply_at(self, tf, m: tarfile.TarInfo, pfd: int, base: str, rel: str) -> None:
        try:
            old = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        if old is not None:
            old_dir = stat.S_ISDIR(old.st_mode)
            if old_dir and not m.isdir():
                raise CopyError(f"cannot overwrite directory {rel!r} with non-directory")
            if not old_dir and m.isdir():
                raise CopyError(f"cannot overwrite non-directory {rel!r} with directory")
            if not old_dir:
                os.unlink(base, dir_fd=pfd)
        mtime = int(m.mtime) if isinstance(m.mtime, (int, float)) else 0
        if m.isdir():
            if old is None:
                os.mkdir(base, 0o700, dir_fd=pfd)
            dfd = openat2(pfd, base, os.O_RDONLY | os.O_DIRECTORY, BENEATH)
            try:
                self._chown(dfd, m)
                for k, v in self._xattrs(m):
                    with contextlib.suppress(OSError):
                        os.setxattr(dfd, k, v)
            finally:
                os.close(dfd)
            self.created[rel] = True
            self.dir_attrs[rel] = (stat.S_IMODE(m.mode), mtime, 0, 0)
            return
        if m.isreg():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=pfd)
            try:
                src = tf.extractfile(m)
                left = m.size
                while left > 0:
                    chunk = src.read(min(CHUNK, left))
                    if not chunk:
                        raise CopyError(f"archive ends inside {rel!r}")
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
                    left -= len(chunk)
                self._chown(fd, m)
                os.chmod(fd, stat.S_IMODE(m.mode))
                for k, v in self._xattrs(m):
                    with contextlib.suppress(OSError):
                        os.setxattr(fd, k, v)
                os.utime(fd, (mtime, mtime))
                self.bytes += m.size
            finally:
                os.close(fd)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
            self._chown(base, m, dir_fd=pfd)
            os.utime(base, (mtime, mtime), dir_fd=pfd, follow_symlinks=False)
        elif m.islnk():
            target = self._name(m.linkname)
            if not target or self.created.get(target) is not False:
                raise UnsafeLayer(f"refusing hardlink {rel!r} to {m.linkname!r}: not a file "
                                  "of this archive")
            tparent, _, tbase = target.rpartition("/")
            tpfd = self._dir(tparent)
            try:
                os.link(tbase, base, src_dir_fd=tpfd, dst_dir_fd=pfd, follow_symlinks=False)
            finally:
                os.close(tpfd)
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            dev = 0 if m.isfifo() else os.makedev(m.devmajor, m.devminor)
            os.mknod(base, kind | 0o600, dev, dir_fd=pfd)
            self._chown(base, m, dir_fd=pfd)
            fd = openat2(pfd, base, os.O_PATH, BENEATH)
            try:
                os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(m.mode))
            finally:
                os.close(fd)
            os.utime(base, (mtime, mtime), dir_fd=pfd, follow_symlinks=False)
        else:
            return            # sockets and unknown types are skipped
        self.created[rel] = False

    def finish(self) -> None:
        """Directory modes and mtimes, deepest first."""
        for rel in sorted(self.dir_attrs, key=lambda p: p.count("/"), reverse=True):
            mode, mtime, _, _ = self.dir_attrs[rel]
            try:
                fd = openat2(self.rootfd, rel, os.O_RDONLY | os.O_DIRECTORY, BENEATH)
            except OSError:
                continue
            try:
                os.chmod(fd, mode)
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)

    def run(self, stream: Readable) -> int:
        try:
            with tarfile.open(fileobj=cast(BinaryIO, stream), mode="r|*", tarinfo=_CappedTarInfo,
                              encoding="utf-8", errors="surrogateescape",
                              bufsize=CHUNK) as tf:
                for m in tf:
                    self.apply(tf, m)
        except tarfile.ReadError as e:
            if self.entries == 0:
                raise CopyError(f"not a tar archive: {e}") from None
            raise CopyError(f"corrupt archive: {e}") from None
        except (tarfile.HeaderError, EOFError, tarfile.StreamError) as e:
            raise CopyError(f"corrupt or truncated archive: {e}") from None
        self.finish()
        return self.entries


# ---------------------------------------------------------------------- plumbing


class ArchiveStream:
    """A readable tar stream produced by a thread (``copy_from_container``); ``stat``
    describes the source. ``close()`` waits for the producer and re-raises its error."""

    def __init__(self, stat_: PathStat, produce: Callable[[BinaryIO], object],
                 cleanup: Callable[[], None] | None = None):
        self.stat = stat_
        r, w = os.pipe()
        self._r = os.fdopen(r, "rb", buffering=CHUNK)
        self._w = os.fdopen(w, "wb", buffering=CHUNK)     # loops over partial pipe writes
        self._error: BaseException | None = None
        self._cleanup = cleanup
        self._t = threading.Thread(target=self._run, args=(produce,), name="cp-out", daemon=True)
        self._t.start()

    def _run(self, produce) -> None:
        try:
            produce(self._w)
        except BaseException as e:  # noqa: BLE001 - handed to the reader
            self._error = e
        finally:
            with contextlib.suppress(OSError):
                self._w.close()
            if self._cleanup is not None:
                with contextlib.suppress(Exception):
                    self._cleanup()

    def read(self, n: int = -1) -> bytes:
        return self._r.read(n)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._r.close()
        self._t.join()
        err = self._error
        if err is not None and not isinstance(err, BrokenPipeError):
            raise err

    def __enter__(self) -> "ArchiveStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def pipe_copy(produce: Callable[[BinaryIO], object], consume: Callable[[ArchiveStream], object]):
    """Run ``produce(writer)`` in a thread and ``consume(reader)`` here, over a pipe."""
    stream = ArchiveStream(cast(PathStat, {}), produce)
    try:
        result = consume(stream)
        while stream.read(CHUNK):     # drain: let the producer finish
            pass
    except BaseException:
        with contextlib.suppress(BaseException):
            stream.close()
        raise
    stream.close()
    return result


def copy_tree(src_dirfd: int, dst_dirfd: int, owners: str = "keep") -> int:
    """Copy the contents of one directory into another (both fds): volume seeding."""

    def produce(w):
        write_tree(f"/proc/self/fd/{src_dirfd}", w)

    return pipe_copy(produce, lambda r: Extractor(dst_dirfd, owners=owners).run(r))


def prepare_destination(src_is_dir: bool, src_base: str, dst: Resolved,
                        dst_asserts_dir: bool, dst_label: str) -> tuple[int, tuple[str, str] | None]:
    """Docker's PrepareArchiveCopy: (directory fd to extract into, rebase or None). The
    caller closes the returned fd (a new one; ``dst`` is still the caller's)."""
    if dst.st is not None and stat.S_ISDIR(dst.st.st_mode):
        return dst.open(os.O_RDONLY | os.O_DIRECTORY), None
    if dst.st is not None and src_is_dir:
        raise CopyError(f"cannot copy a directory to a file: {dst_label}")
    if dst.st is None and dst_asserts_dir and not src_is_dir:
        raise CopyError(f"destination directory {dst_label} does not exist",
                        hint="create it first, or drop the trailing slash")
    pfd = openat2(dst.parent_fd, ".", os.O_RDONLY | os.O_DIRECTORY, BENEATH)
    return pfd, (src_base, dst.base)


def host_root() -> int:
    return os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


# ---------------------------------------------------------------------- engine side


def _mount_for(mounts: list[dict], path: str) -> tuple[dict, str] | None:
    """The user mount whose destination holds ``path`` (deepest), and the rest of it."""
    best = None
    for m in mounts:
        d = abs_clean(str(m.get("Destination") or ""))
        if m.get("Type") == "tmpfs" or d == "/":
            continue
        if path == d or path.startswith(d.rstrip("/") + "/"):
            if best is None or len(d) > len(best[1]):
                best = (m, d)
    if best is None:
        return None
    m, d = best
    return m, "/" + path[len(d):].lstrip("/")


@contextlib.contextmanager
def _root_for(view, path: str, write: bool):
    """(root fd, path inside it): a stopped container's volume paths are looked up in the
    volume itself (its mounts are not in the detached view)."""
    hit = _mount_for(view.mounts, path)
    if hit is not None and write and not hit[0].get("RW", True):
        raise CopyError(f"mounted volume is marked read-only: {hit[0].get('Destination')}")
    if hit is None or view.running:
        yield view.rootfd, path
        return
    m, rest = hit
    src = m.get("Source") or ""
    try:
        fd = os.open(src, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        yield view.rootfd, path
        return
    try:
        yield fd, rest
    finally:
        os.close(fd)


def copy_from_container(engine, ref: str, path: str, follow_link: bool = False) -> ArchiveStream:
    """A tar stream of ``path`` in the container (top entry named after it, like Docker's
    archive API); ``.stat`` says what it is."""
    from core.fs.rootview import container_view

    clean, contents, asserts_dir = split_path(path)
    stack = contextlib.ExitStack()
    try:
        view = stack.enter_context(container_view(engine, ref, write=False))
        rootfd, inner = stack.enter_context(_root_for(view, clean, write=False))
        try:
            r = resolve(rootfd, inner, follow=follow_link or asserts_dir)
        except (NotFound, CopyError):
            r = None
        if r is not None:
            stack.callback(r.close)
        if r is None or r.st is None:
            raise NotFound(f"Could not find the file {clean} in container {ref}")
        if asserts_dir and not r.is_dir:
            raise CopyError(f"not a directory: {clean}")
        name = "." if (contents or r.base == "") else posixpath.basename(clean)
        link = ""
        if stat.S_ISLNK(r.st.st_mode):
            link = os.readlink(r.base, dir_fd=r.parent_fd)
        info = path_stat(r, name, link)
        skip = None
        if view.running and r.is_dir and rootfd == view.rootfd:
            skip = _skip_under(r.path, pseudo_mounts(view.pid))
    except BaseException:
        stack.close()
        raise
    return ArchiveStream(info, lambda w: write_entry(r, name, w, filter=skip), stack.close)


def copy_to_container(engine, ref: str, path: str, source, archive: bool = False,
                      follow_link: bool = False) -> CopyResult:
    """Copy into the container at ``path``: ``source`` is a host path (Docker's rules for
    where it lands) or a readable tar stream (extracted into ``path``, which must be an
    existing directory). Owners are 0:0 unless ``archive``. Returns {"entries": n}."""
    from core.fs.rootview import container_view

    clean, _contents, asserts_dir = split_path(path)
    owners = "keep" if archive else "root"
    if isinstance(source, str):
        src_clean, src_contents, src_asserts = split_path(os.path.abspath(source) +
                                                          ("/." if source.endswith("/.") else
                                                           "/" if source.endswith("/") else ""))
    with container_view(engine, ref, write=True) as view:
        with _root_for(view, clean, write=True) as (rootfd, inner):
            dst = resolve(rootfd, inner, follow=True)
            try:
                if not isinstance(source, str):
                    if dst.st is None:
                        raise NotFound(f"Could not find the file {clean} in container {ref}")
                    if not dst.is_dir:
                        raise CopyError(f"destination {clean} must be a directory when copying "
                                        "from a stream")
                    dfd = dst.open(os.O_RDONLY | os.O_DIRECTORY)
                    ex = Extractor(dfd, owners=owners, no_whiteout_names=True)
                    try:
                        ex.run(source)
                    finally:
                        os.close(dfd)
                    return {"entries": ex.entries, "bytes": ex.bytes}
                hroot = host_root()
                try:
                    src = resolve(hroot, src_clean, follow=follow_link or src_asserts)
                finally:
                    os.close(hroot)
                try:
                    if src.st is None:
                        raise NotFound(f"no such file or directory: {source}")
                    if src_asserts and not src.is_dir:
                        raise CopyError(f"not a directory: {source}")
                    name = "." if (src_contents or src.base == "") else posixpath.basename(src_clean)
                    dfd, rebase = prepare_destination(src.is_dir, name, dst, asserts_dir, clean)
                    ex = Extractor(dfd, owners=owners, rebase=rebase, no_whiteout_names=True)
                    try:
                        pipe_copy(lambda w: write_entry(src, name, w), ex.run)
                    finally:
                        os.close(dfd)
                finally:
                    src.close()
                return {"entries": ex.entries, "bytes": ex.bytes}
            finally:
                dst.close()


def copy_to_host(engine, ref: str, path: str, dest: str, archive: bool = False,
                 follow_link: bool = False) -> CopyResult:
    """``cp CONTAINER:PATH HOSTDEST`` with Docker's rules; files are owned by the caller
    unless ``archive``."""
    dclean, _c, dasserts = split_path(os.path.abspath(dest) + ("/" if dest.endswith("/") else ""))
    with copy_from_container(engine, ref, path, follow_link) as stream:
        hroot = host_root()
        try:
            dst = resolve(hroot, dclean, follow=True)
        finally:
            os.close(hroot)
        try:
            info = stream.stat
            dfd, rebase = prepare_destination(info["isDir"], info["name"], dst, dasserts, dest)
            ex = Extractor(dfd, owners="keep" if archive else "self", rebase=rebase)
            try:
                ex.run(stream)
                while stream.read(CHUNK):
                    pass
            finally:
                os.close(dfd)
        finally:
            dst.close()
    return {"entries": ex.entries, "bytes": ex.bytes, "stat": info}


def export_container(engine, ref: str, out: BinaryIO) -> int:
    """``export``: the container's merged file system (layers + its changes, without the
    runtime's mounts or volumes) as one tar; no whiteouts. Returns the entry count."""
    from core.fs.rootview import container_view

    with container_view(engine, ref, write=False, live=False) as view:
        fd = openat2(view.rootfd, ".", os.O_RDONLY | os.O_DIRECTORY, BENEATH)
        try:
            return write_tree(f"/proc/self/fd/{fd}", out).entries
        finally:
            os.close(fd)
