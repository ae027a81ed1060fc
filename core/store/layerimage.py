"""Layers as filesystem images: a pulled or loaded layer becomes one squashfs file
(``layers/<chain>/layer.sqfs``) instead of a directory tree of every file it holds.

Why: on a virtual disk every file create costs ~0.5 ms, so a store that creates each entry
of each layer at pull time is bound near the peers' figure. Here the layer's tar stream,
already parsed and checked by core.store.tarreader and the rules below, is re-emitted as a
clean tar into ``sqfstar`` (squashfs-tools), which writes one sequential file. A container
mounts its layers read-only through loop devices in its own mount namespace
(core/fs/imagemount.py); the host's mount table never changes.

``ImageApplier`` has the interface of core/store/unpack.py's ``LayerApplier`` (``apply``,
``finish``, ``close``, ``entries``, ``implicit``, ``warnings``) and enforces the same
rules with the same messages: names cleaned (no ``..``, no absolute paths), no entry through
a symlink or a non-directory, a hardlink only to a file this layer made, overlay xattrs
dropped, whiteouts turned into 0/0 character devices and ``trusted.overlay.opaque``. The
entries are modelled in memory (path -> kind), never created on the host.

What one pass cannot express raises :class:`NeedsDirectory`, and the store unpacks that
layer as a directory, as before: an entry given twice, a file replaced by a directory or the
reverse, a whiteout of an entry of the same layer, attributes on the layer root after other
entries, names that are not UTF-8, owners or times squashfs cannot hold.

Directory entries are held back and written at the end (with the opaque marker as an
xattr, and ``implicit`` parents with the attributes the layer below gives them when it is
known); squashfs takes a directory's attributes from its last header.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ..errors import RuntimeFailure, UnsafeLayer
from ..fs.extract import DEFAULT_MAX_ENTRIES, Member, MemberSource, clean_name, kind_of, member_xattrs

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
CHUNK = 1 << 20
FLUSH = 256 << 10
SMALL = 64 << 10
F_SETPIPE_SZ = 1031
XATTR_PREFIXES = ("user.", "trusted.", "security.")     # what squashfs stores
U32 = 0xFFFFFFFF

#: (mode, uid, gid, mtime) of a directory
DirAttrs = tuple[int, int, int, int]


def whiteout_target(parent: str, base: str, name: str, warnings: list[str]) -> str | None:
    """What the whiteout entry ``base`` in directory ``parent`` means: None for the opaque
    marker (``parent`` hides the layers below), "" for AUFS metadata (noted in
    ``warnings``, nothing to do), else the path it deletes. A whiteout of ``.``, ``..`` or
    an empty name is refused. Shared by both unpackers."""
    if base == OPAQUE_MARKER:
        return None
    if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
        # AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): meaningless here
        warnings.append(f"skipped AUFS metadata {(parent + '/' if parent else '') + base!r}")
        return ""
    target = base[len(WHITEOUT_PREFIX):]
    if target in ("", ".", ".."):
        raise UnsafeLayer(f"layer whiteout {name!r} names {target!r}")
    return f"{parent}/{target}" if parent else target


class NeedsDirectory(Exception):
    """The layer must be unpacked as a directory (see the module's docstring)."""


def _kernel() -> tuple[int, int]:
    try:
        major, minor = os.uname().release.split(".")[:2]
        return int(major), int("".join(c for c in minor if c.isdigit()) or 0)
    except ValueError:
        return (0, 0)


@lru_cache(maxsize=1)
def _probe() -> str:
    """Why layer images cannot be used here ('' when they can)."""
    if not shutil.which("sqfstar"):
        return "sqfstar (squashfs-tools) is not installed"
    if _kernel() < (5, 2):
        return "the kernel is older than 5.2 (no fsopen, fsmount)"
    if not os.access("/dev/loop-control", os.R_OK | os.W_OK):
        return "no access to /dev/loop-control"
    try:
        with open("/proc/filesystems") as f:
            if "squashfs" not in f.read().split():
                return "the kernel has no squashfs"
    except OSError:
        return "cannot read /proc/filesystems"
    return ""


def layer_format() -> str:
    """'squashfs' or 'dir': what new layers are stored as. ``NUTSHELL_LAYER_FORMAT=dir``
    keeps directories; ``=squashfs`` insists (an error when it cannot work here)."""
    want = os.environ.get("NUTSHELL_LAYER_FORMAT", "auto")
    if want == "dir":
        return "dir"
    why = _probe()
    if want == "squashfs" and why:
        raise RuntimeFailure(f"NUTSHELL_LAYER_FORMAT=squashfs, but {why}")
    return "dir" if why else "squashfs"


def _ustar(name: str, typ: bytes, mode: int, uid: int, gid: int, size: int, mtime: int,
           linkname: str, dev: tuple[int, int]) -> bytes | None:
    """A plain ustar header when every field fits one (most entries), None otherwise (then
    tarfile writes a PAX header). Ten times faster than tarfile's."""
    if not (len(name) < 100 and len(linkname) < 100 and name.isascii() and linkname.isascii()
            and uid < 0o7777777 and gid < 0o7777777 and size < 0o77777777777 and mtime < 0o77777777777
            and dev[0] < 0o7777777 and dev[1] < 0o7777777):
        return None
    head = b"".join((
        name.encode().ljust(100, b"\0"), b"%07o\0" % mode, b"%07o\0" % uid, b"%07o\0" % gid,
        b"%011o\0" % size, b"%011o\0" % mtime, b"        ", typ, linkname.encode().ljust(100, b"\0"),
        b"ustar\x0000", bytes(64), b"%07o\0" % dev[0], b"%07o\0" % dev[1]))
    head = head.ljust(512, b"\0")
    return head[:148] + b"%06o\0 " % sum(head) + head[156:]


class ImageApplier:
    """Feed ``apply(tar, member)`` per header, then ``finish()``; ``close()`` always."""

    what = "layer"

    def __init__(self, dest: str, max_entries: int = DEFAULT_MAX_ENTRIES,
                 lower_attrs: Callable[[str], DirAttrs | None | bool] | None = None):
        """``lower_attrs(rel)``: the attributes of directory ``rel`` in the layers below,
        None when none has it, False when they are not all in the store yet."""
        self.dest = dest
        self.max_entries = max_entries
        self.lower_attrs = lower_attrs
        self.entries = 0
        self.bytes = 0
        self.kinds: dict[str, str] = {}    # path -> "d" dir, "l" symlink, "f" anything else
        self.implicit: set[str] = set()
        self.dirs: dict[str, tuple[DirAttrs, dict[str, bytes]]] = {}
        self.opaque: set[str] = set()
        self.warnings: list[str] = []
        self.root: DirAttrs = (0o755, 0, 0, int(time.time()))
        self._proc: subprocess.Popen | None = None
        self._errf: Any = None
        self._buf = bytearray()

    # -- the sqfstar process ------------------------------------------------------------
    def _start(self) -> None:
        mode, uid, gid, mtime = self.root
        self._errf = tempfile.TemporaryFile()
        argv = ["sqfstar", "-quiet", "-no-progress", "-comp", "lz4", "-no-duplicates",
                "-exit-on-error", "-mem", "256M",
                "-root-mode", f"{mode & 0o7777:o}", "-root-uid", str(uid), "-root-gid", str(gid),
                "-root-time", str(mtime), "-mkfs-time", str(mtime), self.dest]
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=self._errf, close_fds=True)
        assert self._proc.stdin is not None
        try:        # a bigger pipe: fewer stalls while sqfstar compresses
            import fcntl

            fcntl.fcntl(self._proc.stdin.fileno(), F_SETPIPE_SZ, 1 << 20)
        except OSError:
            pass

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        if self._proc is None:
            self._start()
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(data)
        except BrokenPipeError:
            raise self._failed() from None

    def _flush(self) -> None:
        if self._buf:
            self._write(self._buf)
            self._buf = bytearray()

    def _failed(self) -> NeedsDirectory:
        """sqfstar gave up (a tree it cannot take, or no space): the layer is unpacked as
        a directory instead, which either works or fails with the real reason (ENOSPC)."""
        if self._proc is not None:
            self._proc.wait()
        msg = ""
        if self._errf is not None:
            self._errf.seek(0)
            msg = self._errf.read()[-2000:].decode(errors="replace").strip()
        rc = self._proc.returncode if self._proc is not None else None
        return NeedsDirectory(f"sqfstar failed (exit {rc}): {msg or 'no message'}")

    def _header(self, name: str, typ: bytes, attrs: DirAttrs, size: int = 0, linkname: str = "",
                dev: tuple[int, int] = (0, 0), xattrs: dict[str, bytes] | None = None) -> None:
        mode, uid, gid, mtime = attrs
        if not xattrs:
            fast = _ustar(name, typ, mode & 0o7777, uid, gid, size, mtime, linkname, dev)
            if fast is not None:
                self._buf += fast
                if len(self._buf) >= FLUSH:
                    self._flush()
                return
        ti = tarfile.TarInfo(name)
        ti.type = typ
        ti.mode = mode & 0o7777
        ti.uid, ti.gid = uid, gid
        ti.uname = ti.gname = ""
        ti.mtime = mtime
        ti.size = size
        ti.linkname = linkname
        ti.devmajor, ti.devminor = dev
        if xattrs:
            ti.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape")
                              for k, v in xattrs.items()}
        self._buf += ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        if len(self._buf) >= FLUSH:
            self._flush()

    # -- the model ----------------------------------------------------------------------
    def _attrs(self, m: Member, rel: str) -> DirAttrs:
        try:
            mtime = int(float(m.mtime))
        except (TypeError, ValueError, OverflowError):
            mtime = 0
        if not (0 <= mtime <= U32 and 0 <= m.uid <= U32 and 0 <= m.gid <= U32):
            raise NeedsDirectory(f"{rel!r}: owner or time out of squashfs' range")
        return m.mode, m.uid, m.gid, mtime

    def _xattrs(self, m: Member) -> dict[str, bytes]:
        out = {}
        for name, value in member_xattrs(m, self.warnings):
            if name.startswith(XATTR_PREFIXES):
                out[name] = value
            else:
                self.warnings.append(f"could not set xattr {name} on {m.name!r}: not supported")
        return out

    def _parent(self, rel: str) -> None:
        """Make ``rel`` a directory of the model, creating missing ones as *implicit*."""
        if rel == "" or self.kinds.get(rel) == "d":
            return
        parts = rel.split("/")
        for i in range(len(parts)):
            p = "/".join(parts[:i + 1])
            kind = self.kinds.get(p)
            if kind is None:
                self.kinds[p] = "d"
                self.implicit.add(p)
            elif kind == "l":
                raise UnsafeLayer(f"{self.what} entry passes through a symlink at {p!r}")
            elif kind != "d":
                raise UnsafeLayer(f"{self.what} entry needs {p!r} to be a directory, but it is not")

    def apply(self, tf: MemberSource, m: Member) -> None:
        self.entries += 1
        if self.entries > self.max_entries:
            raise UnsafeLayer(f"{self.what} has more than {self.max_entries} entries")
        rel = clean_name(m.name)
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            raise NeedsDirectory(f"{rel!r} is not UTF-8") from None
        parent, _, base = rel.rpartition("/")
        if rel == "":
            if not m.isdir():
                raise UnsafeLayer(f"{self.what} entry {m.name!r} would replace the {self.what} "
                                  f"root with a {kind_of(m)}")
            if self._proc is not None or self._xattrs(m):
                raise NeedsDirectory("attributes for the layer root after other entries")
            self.root = self._attrs(m, rel)
            return
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parent, base, m, rel)
            return
        self._parent(parent)
        kind = self.kinds.get(rel)
        if m.isdir():
            if kind not in (None, "d"):
                raise NeedsDirectory(f"{rel!r} replaced by a directory")
            self.kinds[rel] = "d"
            self.implicit.discard(rel)
            old = self.dirs.get(rel)
            xattrs = dict(old[1]) if old else {}
            xattrs.update(self._xattrs(m))
            self.dirs[rel] = (self._attrs(m, rel), xattrs)
            return
        if kind is not None:
            raise NeedsDirectory(f"{rel!r} given twice")
        attrs = self._attrs(m, rel)
        if m.isreg():
            self._header(rel, tarfile.REGTYPE, attrs, size=m.size, xattrs=self._xattrs(m))
            small = m.size <= SMALL          # small files go out with their headers
            if not small:
                self._flush()
            src = tf.extractfile(m)
            assert src is not None
            left = m.size
            while left > 0:
                chunk = src.read(min(CHUNK, left))
                if not chunk:
                    raise UnsafeLayer(f"{self.what} data ends inside {rel!r}")
                if small:
                    self._buf += chunk
                else:
                    self._write(chunk)
                left -= len(chunk)
            if m.size % 512:
                self._buf += bytes(512 - m.size % 512)
            self.bytes += m.size
            self.kinds[rel] = "f"
        elif m.issym():
            if not m.linkname:
                raise UnsafeLayer(f"{self.what} symlink {rel!r} has an empty target")
            self._header(rel, tarfile.SYMTYPE, attrs, linkname=m.linkname, xattrs=self._xattrs(m))
            self.kinds[rel] = "l"
        elif m.islnk():
            target = clean_name(m.linkname)
            if not target or self.kinds.get(target) not in ("f", "l"):
                raise UnsafeLayer(f"{self.what} hardlink {rel!r} points to {m.linkname!r}, "
                                  f"which is not a file unpacked earlier in this {self.what}")
            self._header(rel, tarfile.LNKTYPE, attrs, linkname=target)
            self.kinds[rel] = "f"
        elif m.ischr() or m.isblk() or m.isfifo():
            typ = tarfile.CHRTYPE if m.ischr() else tarfile.BLKTYPE if m.isblk() else tarfile.FIFOTYPE
            dev = (0, 0) if m.isfifo() else (m.devmajor, m.devminor)
            self._header(rel, typ, attrs, dev=dev, xattrs=self._xattrs(m))
            self.kinds[rel] = "f"
        else:
            self.warnings.append(f"skipped {rel!r}: unsupported tar entry type {m.type!r}")

    def _whiteout(self, parent: str, base: str, m: Member, rel: str) -> None:
        self._parent(parent)
        trel = whiteout_target(parent, base, m.name, self.warnings)
        if trel is None:
            if parent == "":
                raise NeedsDirectory("an opaque layer root")
            self.opaque.add(parent)
            return
        if not trel:
            return
        if trel in self.kinds:
            raise NeedsDirectory(f"whiteout of {trel!r}, an entry of the same layer")
        _, uid, gid, mtime = self._attrs(m, rel)
        self._header(trel, tarfile.CHRTYPE, (0, uid, gid, mtime))
        self.kinds[trel] = "f"

    # -- the end --------------------------------------------------------------------------
    def finish(self) -> None:
        """Write the directories, end the archive and wait for the image."""
        if self._proc is None:
            self._start()
        unknown = set()
        for rel in sorted((p for p, k in self.kinds.items() if k == "d"), key=lambda p: p.count("/")):
            given = self.dirs.get(rel)
            if given is not None:
                attrs, xattrs = given
            else:
                below = self.lower_attrs(rel) if self.lower_attrs else False
                if below is False:
                    unknown.add(rel)
                attrs = below if isinstance(below, tuple) else (0o755, 0, 0, self.root[3])
                xattrs = {}
            if rel in self.opaque:
                xattrs = dict(xattrs, **{"trusted.overlay.opaque": b"y"})
            self._header(rel, tarfile.DIRTYPE, attrs, xattrs=xattrs)
        # what is left ``implicit`` is what the layers below could not be asked about yet
        self.implicit &= unknown
        self._buf += bytes(1024)
        self._flush()
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        if self._proc.wait() != 0:
            raise self._failed()

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._proc is not None and self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        if self._errf is not None:
            self._errf.close()
