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
import lzma
import os
import posixpath
import shutil
import stat
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, cast

from core.errors import NotFound, NutshellError, UnsafeLayer
from core.fs.extract import (
    BENEATH,
    RESOLVE_IN_ROOT,
    RESOLVE_NO_MAGICLINKS,
    Member,
    SafeExtractor,
    clean_name,
    openat2,
)
from core.fsutil import Readable
from core.store.tarreader import TarFormatError, TarReader
from core.store.tarwriter import CHUNK, write_entry_at, write_tree
from core.store.unpack import plain_stream
from core.types import CopyResult, PathStat

IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
MAX_LINK_HOPS = 40
MAX_ENTRIES = 5_000_000
PSEUDO_FS = {"proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "securityfs", "debugfs",
             "tracefs", "configfs", "fusectl", "pstore", "bpf", "devtmpfs", "binfmt_misc"}


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


def path_stat(r: Resolved, name: str, link_target: str = "") -> PathStat:
    st = r.st
    assert st is not None           # callers stat an existing path
    return {"name": name, "size": st.st_size, "mode": st.st_mode, "mtime": int(st.st_mtime),
            "linkTarget": link_target, "isDir": stat.S_ISDIR(st.st_mode)}


def write_entry(r: Resolved, name: str, out: BinaryIO,
                filter: Callable[[str], bool] | None = None) -> int:
    """Write what ``r`` names as a tar on ``out``, its top entry called ``name`` (``.``
    for a directory's contents), with the store's tar writer. Returns the number of
    entries."""
    st = r.st
    assert st is not None           # callers copy an existing path
    if stat.S_ISDIR(st.st_mode):
        dfd = r.open(os.O_RDONLY | os.O_DIRECTORY)
        try:
            prefix = "./" if name == "." else "" if name == "" else name.rstrip("/") + "/"
            return write_tree(f"/proc/self/fd/{dfd}", out, prefix=prefix, filter=filter,
                              top=name.rstrip("/")).entries
        finally:
            os.close(dfd)
    if stat.S_IFMT(st.st_mode) not in _TAR_TYPES:
        raise CopyError(f"cannot copy {r.path}: unsupported file type (a socket?)")
    return write_entry_at(r.parent_fd, r.base, name, out)


_TAR_TYPES = (stat.S_IFREG, stat.S_IFLNK, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO)


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


class Extractor(SafeExtractor):
    """core/fs/extract.py's SafeExtractor with cp's policy: entries go below one
    directory fd that may already hold files (a file is replaced, a directory kept; a
    directory never replaces a file or the reverse), errors are a cp's.

    ``owners``: "keep" (the tar's uid/gid), "root" (0:0, Docker's cp into a container
    without -a) or "self" (do not chown: the caller owns them, Docker's cp to the host).
    ``rebase``: (old top name, new top name) — Docker's RebaseArchiveEntries; an old
    name of "." moves a contents archive under ``new``.
    ``no_whiteout_names``: refuse ``.wh.*`` names (they cannot be stored in an image
    layer: the next commit would turn them into deletions).
    """

    what = "archive"
    resolve = BENEATH                # a container's root may hold mounts (volumes)

    def __init__(self, dirfd: int, owners: str = "keep", rebase: tuple[str, str] | None = None,
                 no_whiteout_names: bool = False, max_entries: int = MAX_ENTRIES,
                 replace_kinds: bool = False):
        super().__init__(dirfd, max_entries)
        self.owners = owners
        self.rebase = rebase
        self.no_wh = no_whiteout_names
        self.replace_kinds = replace_kinds

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

    # -- SafeExtractor's policy hooks
    def entry_name(self, raw: str) -> str:
        try:
            return self._name(raw)
        except UnsafeLayer as e:
            raise UnsafeLayer(f"refusing archive entry {raw!r}: {e.message}") from None

    def link_target(self, raw: str) -> str:
        return self._name(raw)

    def root_entry(self, m: Member) -> None:
        return        # the destination directory itself: leave it as it is

    def special_name(self, parent: str, base: str, m: Member, rel: str) -> bool:
        if self.no_wh and base.startswith(".wh."):
            raise CopyError(f"cannot copy {rel!r} into a container: names starting with .wh. "
                            "are whiteouts in image layers")
        return False

    def clear_slot(self, pfd: int, base: str, rel: str, m: Member) -> bool:
        try:
            old = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        old_dir = stat.S_ISDIR(old.st_mode)
        if old_dir and not m.isdir():
            if not self.replace_kinds:
                raise CopyError(f"cannot overwrite directory {rel!r} with non-directory")
            # the API's noOverwriteDirNonDir=false: the tree goes (removed through fds,
            # never following a symlink in it)
            shutil.rmtree(base, dir_fd=pfd)
            return False
        if not old_dir and m.isdir():
            if not self.replace_kinds:
                raise CopyError(f"cannot overwrite non-directory {rel!r} with directory")
            os.unlink(base, dir_fd=pfd)
            return False
        if not old_dir:
            os.unlink(base, dir_fd=pfd)
        return old_dir

    def owner(self, m: Member) -> tuple[int, int] | None:
        if self.owners == "self":
            return None
        return (m.uid, m.gid) if self.owners == "keep" else (0, 0)

    def mtime_ns(self, m: Member) -> int:
        return int(m.mtime) * 1_000_000_000 if isinstance(m.mtime, (int, float)) else 0

    def refuse_dir(self, exc: OSError, rel: str) -> None:
        e = exc
        if e.errno in (errno.ELOOP, errno.EXDEV):
            raise UnsafeLayer(f"refusing to write through the symbolic link at {rel!r}") from None
        if e.errno == errno.ENOTDIR:
            raise CopyError(f"cannot copy: {rel!r} is not a directory") from None
        if e.errno == errno.EROFS:
            raise CopyError(f"cannot copy to {rel!r}: read-only file system") from None
        # any other refusal of the container's file system (procfs or sysfs will not create
        # files, a full disk, permissions): one line naming the path, not an internal error
        raise CopyError(f"cannot copy to {rel!r}: {os.strerror(e.errno or errno.EIO).lower()}") from None

    def refuse_entry(self, exc: OSError, rel: str) -> None:
        self.refuse_dir(exc, rel)

    def truncated(self, rel: str) -> Exception:
        return CopyError(f"archive ends inside {rel!r}")

    def bad_hardlink(self, rel: str, m: Member) -> Exception:
        return UnsafeLayer(f"refusing hardlink {rel!r} to {m.linkname!r}: not a file "
                           "of this archive")

    def run(self, stream: Readable) -> int:
        """Extract a whole tar stream (plain or compressed); returns the entry count."""
        try:
            tr = TarReader(plain_stream(stream))
            for m in tr:
                self.apply(tr, m)
            self.finish(skip_missing=True)
        except TarFormatError as e:
            raise CopyError(f"cannot extract the archive: {e}") from None
        except (EOFError, lzma.LZMAError, zlib.error) as e:
            raise CopyError(f"corrupt or truncated archive: {e}") from None
        except OSError as e:
            if e.errno is not None:
                raise
            raise CopyError(f"corrupt archive: {e}") from None   # bz2's "Invalid data stream"
        finally:
            self.close()
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

    def __enter__(self) -> ArchiveStream:
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
                      follow_link: bool = False, replace_kinds: bool = False) -> CopyResult:
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
                    ex = Extractor(dfd, owners=owners, no_whiteout_names=True,
                                   replace_kinds=replace_kinds)
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
