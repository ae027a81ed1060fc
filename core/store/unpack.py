"""Layer unpack, our own: never ``tarfile.extract*``.

``tarfile`` is used only to iterate headers (with caps on PAX/GNU long headers); every
entry is created by this module with ``*at`` system calls relative to a directory fd that
was opened with ``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)``
from the layer root, and the leaf itself is created with ``O_EXCL | O_NOFOLLOW``.

What a layer may not do (each refused with :class:`UnsafeLayer`, nothing written outside
the layer directory):
  * absolute names, ``..`` components, NUL bytes, over-long names;
  * put anything but a directory at the layer root (a symlink named ``.`` or ``/``,
    umoci CVE-2021-29136);
  * write through a symlink (``evil -> /etc`` then ``evil/passwd``);
  * hardlink to anything not unpacked earlier in this same layer;
  * whiteout ``.``, ``..`` or an empty name;
  * set overlayfs' own ``trusted.overlay.*`` xattrs (they steer overlay redirects);
  * decompress beyond a size limit, or carry a PAX/GNU header larger than 1 MiB.

Whiteouts become what overlayfs understands: ``.wh.name`` -> a 0/0 character device
``name``; ``.wh..wh..opq`` -> the ``trusted.overlay.opaque=y`` xattr on the directory.
Modes (setuid/setgid/sticky included), owners, mtimes, xattrs, hardlinks, symlinks and
device nodes are kept. Directory modes and mtimes are applied last, deepest first, so
creating children does not disturb them.

Parents that a layer does not list (``usr/bin/x`` without a ``usr/bin`` entry) are
created 0755 and remembered as *implicit*; the store later copies their attributes
from the layer below, so an implicit ``tmp`` does not lose its 1777 in the merged view.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import stat
import tarfile
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, Union

from ..errors import DigestMismatch, UnsafeLayer
from ..fsutil import Readable

if TYPE_CHECKING:
    from .tarreader import Entry

#: a tar header as tarfile or core.store.tarreader reads it (the same attribute names)
Member = Union[tarfile.TarInfo, "Entry"]


class MemberSource(Protocol):
    """What hands out the data of a regular file entry: a TarFile or a TarReader."""

    def extractfile(self, member: Any, /) -> Readable | None: ...

# --------------------------------------------------------------------------------------
# openat2
# --------------------------------------------------------------------------------------

SYS_openat2 = 437  # the same on every architecture (added after the syscall tables merged)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_HAVE_OPENAT2: bool | None = None


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2). Falls back to a component-by-component O_NOFOLLOW walk on old kernels."""
    global _HAVE_OPENAT2
    if _HAVE_OPENAT2 is not False:
        how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
        fd = _libc.syscall(SYS_openat2, dirfd, os.fsencode(path), ctypes.byref(how),
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

# --------------------------------------------------------------------------------------
# limits
# --------------------------------------------------------------------------------------

MAX_HEADER = 1 << 20          # PAX / GNU long-name headers (Go caps them at 1 MiB too)
MAX_NAME = 4096
DEFAULT_MAX_LAYER_BYTES = int(os.environ.get("NUTSHELL_MAX_LAYER_BYTES", 64 << 30))
DEFAULT_MAX_ENTRIES = int(os.environ.get("NUTSHELL_MAX_LAYER_ENTRIES", 5_000_000))
CHUNK = 1 << 20

OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_SKIPPABLE_MASK = 0xFFFFFFF0
ZSTD_SKIPPABLE_MAGIC = 0x184D2A50


def detect_compression(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if len(head) >= 4 and int.from_bytes(head[:4], "little") & ZSTD_SKIPPABLE_MASK == ZSTD_SKIPPABLE_MAGIC:
        return "zstd"
    if head[:3] == b"BZh":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return "none"


# --------------------------------------------------------------------------------------
# streams: compressed bytes in -> (hash) -> decompress -> (hash, count, limit) -> tar
# --------------------------------------------------------------------------------------


class HashingReader:
    """Reads from ``src``, hashing and counting everything that passes through."""

    def __init__(self, src: Readable, on_bytes: Callable[[int], None] | None = None):
        self.src = src
        self.hash = hashlib.sha256()
        self.count = 0
        self.on_bytes = on_bytes
        self._peek = b""

    def peek(self, n: int) -> bytes:
        while len(self._peek) < n:
            chunk = self.src.read(n - len(self._peek))
            if not chunk:
                break
            self._peek += chunk
        return self._peek[:n]

    def read(self, n: int = CHUNK) -> bytes:
        if self._peek:
            data, self._peek = self._peek[:n], self._peek[n:]
        else:
            data = self.src.read(n)
        if data:
            self.hash.update(data)
            self.count += len(data)
            if self.on_bytes:
                self.on_bytes(len(data))
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class DecompressingReader:
    """File-like ``read(n)`` of the uncompressed layer: gzip (multi-member), zstd
    (multi-frame, skippable frames, i.e. zstd:chunked) or plain. Hashes the output
    (the DiffID) and refuses to produce more than ``limit`` bytes (decompression bombs)."""

    def __init__(self, src: HashingReader, limit: int = DEFAULT_MAX_LAYER_BYTES):
        self.src = src
        self.kind = detect_compression(src.peek(6))
        if self.kind in ("bzip2", "xz"):
            raise UnsafeLayer(f"unsupported layer compression: {self.kind}")
        self.limit = limit
        self.hash = hashlib.sha256()
        self.count = 0
        self._buf = bytearray()
        self._eof = False
        self._dobj: Any = None         # zlib or zstandard decompressobj of the current member
        self._member_done = True
        self._zstd = None

    # -- decompressor plumbing --
    def _new_member(self):
        if self.kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self._zstd is None:
            import zstandard

            self._zstd = zstandard.ZstdDecompressor()
        return self._zstd.decompressobj()

    def _fill(self, want: int) -> None:
        while len(self._buf) < want and not self._eof:
            raw = self.src.read(CHUNK)
            if self.kind == "none":
                if not raw:
                    self._eof = True
                else:
                    self._buf += raw
                continue
            if not raw:
                if not self._member_done:
                    raise UnsafeLayer(f"truncated {self.kind} stream: unexpected end of layer data")
                self._eof = True
                continue
            data = raw
            while data:
                if self._member_done:
                    if self.kind == "gzip" and not data.startswith(GZIP_MAGIC[:1]) and not data.strip(b"\0"):
                        data = b""  # zero padding after the last gzip member
                        break
                    if self.kind == "zstd" and len(data) >= 8 and \
                            int.from_bytes(data[:4], "little") & ZSTD_SKIPPABLE_MASK == ZSTD_SKIPPABLE_MAGIC:
                        # a skippable frame (zstd:chunked TOC): 4 magic + 4 size + payload
                        size = int.from_bytes(data[4:8], "little")
                        data = self._skip(data, 8 + size)
                        continue
                    self._dobj = self._new_member()
                    self._member_done = False
                try:
                    out = self._dobj.decompress(data)
                except Exception as exc:  # zlib.error / zstandard.ZstdError
                    raise UnsafeLayer(f"corrupt {self.kind} layer data: {exc}") from None
                self._emit(out)
                if self._dobj.eof:
                    self._member_done = True
                    data = self._dobj.unused_data
                else:
                    data = b""

    def _skip(self, data: bytes, n: int) -> bytes:
        if len(data) >= n:
            return data[n:]
        n -= len(data)
        while n > 0:
            chunk = self.src.read(min(n, CHUNK))
            if not chunk:
                raise UnsafeLayer("truncated zstd skippable frame")
            n -= len(chunk)
        return b""

    def _emit(self, out: bytes) -> None:
        if not out:
            return
        self.count += len(out)
        if self.count > self.limit:
            raise UnsafeLayer(
                f"layer expands beyond the {self.limit} byte limit (decompression bomb?)",
                hint="raise NUTSHELL_MAX_LAYER_BYTES if this layer is genuine")
        self.hash.update(out)
        self._buf += out

    def read(self, n: int = -1) -> bytes:
        if self.kind == "none" and not self._buf:
            # fast path: no copy through the buffer
            data = self.src.read(CHUNK if n < 0 else n)
            if not data:
                self._eof = True
                return b""
            self.count += len(data)
            if self.count > self.limit:
                raise UnsafeLayer(f"layer expands beyond the {self.limit} byte limit")
            self.hash.update(data)
            return data
        want = CHUNK if n is None or n < 0 else n
        self._fill(want)
        data = bytes(self._buf[:want])
        del self._buf[:want]
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class PrefetchReader:
    """Runs ``src.read()`` (network, decompression, hashing: all GIL-releasing work) in a
    thread, a few chunks ahead of the consumer, so it overlaps with tar parsing and the
    file-system calls of the unpack. Exceptions surface in the consumer's read()."""

    def __init__(self, src, chunk: int = CHUNK, depth: int = 8):
        import queue
        import threading

        self.src = src
        self._q: "queue.Queue" = queue.Queue(maxsize=depth)
        self._cur = memoryview(b"")
        self._done = False
        self._stop = False
        self._t = threading.Thread(target=self._run, args=(chunk,), daemon=True,
                                   name="nutshell-prefetch")
        self._t.start()

    def _run(self, chunk: int) -> None:
        try:
            while not self._stop:
                data = self.src.read(chunk)
                self._q.put(data)
                if not data:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._q.put(exc)

    def read(self, n: int = -1) -> bytes:
        if not self._cur:
            if self._done:
                return b""
            item = self._q.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            if not item:
                self._done = True
                return b""
            self._cur = memoryview(item)
        if n is None or n < 0 or n >= len(self._cur):
            out, self._cur = self._cur, memoryview(b"")
        else:
            out, self._cur = self._cur[:n], self._cur[n:]
        return out.tobytes()

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def close(self) -> None:
        """Stop the thread (after an error in the consumer) and wait for it."""
        self._stop = True
        while self._t.is_alive():
            try:
                self._q.get(timeout=0.05)
            except Exception:  # noqa: BLE001 - queue.Empty
                pass


# --------------------------------------------------------------------------------------
# tar headers with caps
# --------------------------------------------------------------------------------------


class _CappedTarInfo(tarfile.TarInfo):
    """Refuses PAX and GNU long-name headers above MAX_HEADER before tarfile reads them."""

    def _proc_member(self, tarfile_):
        if self.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
                         tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE) and self.size > MAX_HEADER:
            raise UnsafeLayer(f"tar header of {self.size} bytes exceeds the {MAX_HEADER} byte cap")
        return super()._proc_member(tarfile_)


# --------------------------------------------------------------------------------------
# the applier
# --------------------------------------------------------------------------------------


@dataclass
class UnpackResult:
    diff_id: str            # sha256 of the uncompressed tar
    size: int               # uncompressed tar bytes
    compressed_digest: str  # sha256 of the bytes read
    compressed_size: int
    compression: str
    entries: int
    implicit_dirs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def clean_name(name: str) -> str:
    """Normalise a tar entry name to a relative path, refusing anything that escapes.

    '' means the layer root itself.
    """
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


class LayerApplier:
    """Applies tar entries into ``root`` (an empty directory owned by this process)."""

    def __init__(self, root: str, max_entries: int = DEFAULT_MAX_ENTRIES):
        self.root = root
        self.rootfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.max_entries = max_entries
        self._dirfds: dict[str, int] = {}
        self.created: dict[str, bool] = {}        # path -> is_dir, for this layer
        self.implicit: set[str] = set()
        self.dir_attrs: dict[str, tuple[int, int]] = {}  # path -> (mode, mtime_ns)
        self.warnings: list[str] = []
        self.entries = 0

    def close(self) -> None:
        for fd in self._dirfds.values():
            os.close(fd)
        self._dirfds.clear()
        os.close(self.rootfd)

    # -- directories ------------------------------------------------------------------
    def _forget_dirs(self) -> None:
        for fd in self._dirfds.values():
            os.close(fd)
        self._dirfds.clear()

    def _open_dir(self, rel: str) -> int:
        """An fd for directory ``rel`` inside the root, creating missing parents 0755.

        Never follows a symlink: a path through a symlink is refused.
        """
        if rel == "":
            return self.rootfd
        fd = self._dirfds.get(rel)
        if fd is not None:
            return fd
        parent, _, base = rel.rpartition("/")
        pfd = self._open_dir(parent)
        try:
            fd = openat2(pfd, base, os.O_PATH | os.O_DIRECTORY, STRICT)
        except FileNotFoundError:
            os.mkdir(base, 0o755, dir_fd=pfd)
            self.implicit.add(rel)
            self.created[rel] = True
            fd = openat2(pfd, base, os.O_PATH | os.O_DIRECTORY, STRICT)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EXDEV):
                raise UnsafeLayer(f"layer entry passes through a symlink at {rel!r}") from None
            if exc.errno == errno.ENOTDIR:
                raise UnsafeLayer(f"layer entry needs {rel!r} to be a directory, but it is not") from None
            raise
        if len(self._dirfds) > 256:
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

    # -- entries --------------------------------------------------------------------------
    def apply(self, tf: MemberSource, member: Member) -> None:
        self.entries += 1
        if self.entries > self.max_entries:
            raise UnsafeLayer(f"layer has more than {self.max_entries} entries")
        rel = clean_name(member.name)
        parent, _, base = rel.rpartition("/")

        if rel == "":
            if not member.isdir():
                raise UnsafeLayer(f"layer entry {member.name!r} would replace the layer root "
                                  f"with a {_kind(member)}")
            self._set_xattrs_path(self.rootfd, None, member)
            self.dir_attrs[""] = (member.mode, _mtime_ns(member))
            return

        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parent, base, member, rel)
            return

        pfd = self._open_dir(parent)
        exists_is_dir = None
        if rel in self.created:
            # the layer dir starts empty: only what this layer made can be in the way
            try:
                st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
                exists_is_dir = stat.S_ISDIR(st.st_mode)
            except FileNotFoundError:
                pass

        if member.isdir():
            if exists_is_dir is False:
                self._remove(pfd, base, rel)
                exists_is_dir = None
            if exists_is_dir is None:
                os.mkdir(base, 0o700, dir_fd=pfd)
            self.implicit.discard(rel)
            self.created[rel] = True
            dfd = openat2(pfd, base, os.O_RDONLY | os.O_DIRECTORY, STRICT)
            try:
                os.chown(dfd, member.uid, member.gid)
                self._set_xattrs_fd(dfd, member)
            finally:
                os.close(dfd)
            self.dir_attrs[rel] = (member.mode, _mtime_ns(member))
            return

        if exists_is_dir is not None:
            self._remove(pfd, base, rel)

        if member.isreg():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=pfd)
            try:
                src = tf.extractfile(member)
                assert src is not None      # a regular file entry has a data stream
                remaining = member.size
                while remaining > 0:
                    chunk = src.read(min(CHUNK, remaining))
                    if not chunk:
                        raise UnsafeLayer(f"layer data ends inside {rel!r}")
                    _write_all(fd, chunk)
                    remaining -= len(chunk)
                os.chown(fd, member.uid, member.gid)
                os.chmod(fd, stat.S_IMODE(member.mode))
                self._set_xattrs_fd(fd, member)
                os.utime(fd, ns=(_mtime_ns(member), _mtime_ns(member)))
            finally:
                os.close(fd)
        elif member.issym():
            if not member.linkname:
                raise UnsafeLayer(f"layer symlink {rel!r} has an empty target")
            os.symlink(member.linkname, base, dir_fd=pfd)
            os.chown(base, member.uid, member.gid, dir_fd=pfd, follow_symlinks=False)
            self._set_xattrs_path(pfd, base, member)
            os.utime(base, ns=(_mtime_ns(member), _mtime_ns(member)), dir_fd=pfd,
                     follow_symlinks=False)
        elif member.islnk():
            target = clean_name(member.linkname)
            if not target or self.created.get(target) is not False:
                raise UnsafeLayer(f"layer hardlink {rel!r} points to {member.linkname!r}, "
                                  f"which is not a file unpacked earlier in this layer")
            tparent, _, tbase = target.rpartition("/")
            tpfd = self._open_dir(tparent)
            pfd = self._open_dir(parent)  # the cache may have been reset
            os.link(tbase, base, src_dir_fd=tpfd, dst_dir_fd=pfd, follow_symlinks=False)
        elif member.ischr() or member.isblk() or member.isfifo():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
            dev = os.makedev(member.devmajor, member.devminor) if not member.isfifo() else 0
            os.mknod(base, kind | 0o600, dev, dir_fd=pfd)
            os.chown(base, member.uid, member.gid, dir_fd=pfd, follow_symlinks=False)
            fd = openat2(pfd, base, os.O_PATH, STRICT)
            try:
                os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(member.mode))
            finally:
                os.close(fd)
            self._set_xattrs_path(pfd, base, member)
            os.utime(base, ns=(_mtime_ns(member), _mtime_ns(member)), dir_fd=pfd,
                     follow_symlinks=False)
        else:
            self.warnings.append(f"skipped {rel!r}: unsupported tar entry type {member.type!r}")
            return
        self.created[rel] = False

    def _whiteout(self, parent: str, base: str, member: Member, rel: str) -> None:
        pfd = self._open_dir(parent)
        if base == OPAQUE_MARKER:
            os.setxattr(f"/proc/self/fd/{pfd}", "trusted.overlay.opaque", b"y")
            if parent not in self.created:
                self.created[parent] = True
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            # AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): meaningless here
            self.warnings.append(f"skipped AUFS metadata {rel!r}")
            return
        target = base[len(WHITEOUT_PREFIX):]
        if target in ("", ".", ".."):
            raise UnsafeLayer(f"layer whiteout {member.name!r} names {target!r}")
        trel = f"{parent}/{target}" if parent else target
        try:
            os.stat(target, dir_fd=pfd, follow_symlinks=False)
            self._remove(pfd, target, trel)
        except FileNotFoundError:
            pass
        os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
        os.chown(target, member.uid, member.gid, dir_fd=pfd, follow_symlinks=False)
        self.created[trel] = False

    # -- xattrs -------------------------------------------------------------------------------
    def _xattrs(self, member: Member) -> list[tuple[str, bytes]]:
        out = []
        for key, value in (member.pax_headers or {}).items():
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
                self.warnings.append(f"dropped overlay xattr {name} on {member.name!r}")
                continue
            out.append((name, raw))
        return out

    def _set_xattrs_fd(self, fd: int, member: Member) -> None:
        for name, value in self._xattrs(member):
            try:
                os.setxattr(fd, name, value)
            except OSError as exc:
                self.warnings.append(f"could not set xattr {name} on {member.name!r}: {exc.strerror}")

    def _set_xattrs_path(self, dirfd: int, base: str | None, member: Member) -> None:
        xs = self._xattrs(member)
        if not xs:
            return
        path = f"/proc/self/fd/{dirfd}" + (f"/{base}" if base else "")
        for name, value in xs:
            try:
                os.setxattr(path, name, value, follow_symlinks=False)
            except OSError as exc:
                self.warnings.append(f"could not set xattr {name} on {member.name!r}: {exc.strerror}")

    # -- finish -------------------------------------------------------------------------------
    def finish(self) -> None:
        """Directory modes and mtimes, deepest first (children no longer change them)."""
        self._forget_dirs()
        for rel in sorted(self.dir_attrs, key=lambda p: p.count("/") + (1 if p else 0), reverse=True):
            mode, mtime = self.dir_attrs[rel]
            fd = openat2(self.rootfd, rel or ".", os.O_RDONLY | os.O_DIRECTORY, STRICT)
            try:
                os.chmod(fd, stat.S_IMODE(mode))
                os.utime(fd, ns=(mtime, mtime))
            finally:
                os.close(fd)


def _kind(m: Member) -> str:
    return ("symlink" if m.issym() else "hardlink" if m.islnk() else "file" if m.isreg()
            else "device" if (m.ischr() or m.isblk()) else "fifo" if m.isfifo() else "entry")


def _mtime_ns(m: Member) -> int:
    try:
        return int(float(m.mtime) * 1_000_000_000)
    except (TypeError, ValueError, OverflowError):
        return 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


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


def unpack_layer(src: Readable, dest: str, expected_digest: str | None = None,
                 expected_diff_id: str | None = None, max_bytes: int = DEFAULT_MAX_LAYER_BYTES,
                 on_bytes: Callable[[int], None] | None = None) -> UnpackResult:
    """Unpack one layer read from ``src`` (compressed or not) into the empty dir ``dest``.

    ``expected_digest`` is checked against the bytes read (the blob digest) and
    ``expected_diff_id`` against the uncompressed stream; a mismatch raises
    DigestMismatch. The caller discards ``dest`` on any exception.
    """
    raw = HashingReader(src, on_bytes=on_bytes)
    stream = DecompressingReader(raw, limit=max_bytes)
    ahead = PrefetchReader(stream)
    applier = LayerApplier(dest)
    try:
        from .tarreader import TarReader

        tr = TarReader(ahead)
        for member in tr:
            applier.apply(tr, member)
        ahead.drain()    # the tar end-of-archive blocks and any padding count towards the DiffID
        raw.drain()
        applier.finish()
    finally:
        ahead.close()
        applier.close()
    if expected_digest and raw.digest != expected_digest:
        raise DigestMismatch(f"layer digest mismatch: expected {expected_digest}, got {raw.digest}")
    if expected_diff_id and stream.digest != expected_diff_id:
        raise DigestMismatch(
            f"layer diff ID mismatch: expected {expected_diff_id}, got {stream.digest}")
    return UnpackResult(
        diff_id=stream.digest, size=stream.count, compressed_digest=raw.digest,
        compressed_size=raw.count, compression=stream.kind, entries=applier.entries,
        implicit_dirs=sorted(applier.implicit), warnings=applier.warnings)
