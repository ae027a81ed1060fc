"""Layer unpack: the layer's bytes in, verified, into an empty directory.

    raw bytes -> HashingReader (blob digest) -> DecompressingReader (gzip/zstd, DiffID,
    size limit) -> PrefetchReader (a thread ahead) -> core.store.tarreader -> LayerApplier

``LayerApplier`` is core/fs/extract.py's ``SafeExtractor`` (the one safe extractor: no
``tarfile.extract*``, every entry created with ``*at`` calls below the layer root, never
through a symlink; see there for what no archive may do) with a layer's policy:

  * only a directory may name the layer root (a symlink named ``.`` or ``/``,
    umoci CVE-2021-29136, is refused);
  * the directory starts empty: a later entry replaces what an earlier one made;
  * owners are kept; whiteout ``.``, ``..`` or an empty name is refused;
  * decompressing beyond a size limit is refused.

Whiteouts become what overlayfs understands: ``.wh.name`` -> a 0/0 character device
``name``; ``.wh..wh..opq`` -> the ``trusted.overlay.opaque=y`` xattr on the directory.

Parents that a layer does not list (``usr/bin/x`` without a ``usr/bin`` entry) are
created 0755 and remembered as *implicit*; the store later copies their attributes
from the layer below, so an implicit ``tmp`` does not lose its 1777 in the merged view.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from ..errors import DigestMismatch, UnsafeLayer
from ..fs.extract import DEFAULT_MAX_ENTRIES, Member, SafeExtractor
from ..fsutil import Readable
from .layerimage import WHITEOUT_PREFIX, ImageApplier, NeedsDirectory, whiteout_target

# --------------------------------------------------------------------------------------
# limits
# --------------------------------------------------------------------------------------

DEFAULT_MAX_LAYER_BYTES = int(os.environ.get("NUTSHELL_MAX_LAYER_BYTES", 64 << 30))
CHUNK = 1 << 20
GZIP_OUT = 4 << 20      # the most one zlib call may produce
ZSTD_IN = 1 << 10       # the most compressed input one zstd call is given


GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_SKIPPABLE_MASK = 0xFFFFFFF0
ZSTD_SKIPPABLE_MAGIC = 0x184D2A50


def _inflater():
    """ISA-L's inflate when importable (the zlib API, 1.5-3x faster on layers), else zlib's
    (``NUTSHELL_NO_ISAL=1`` forces zlib)."""
    if os.environ.get("NUTSHELL_NO_ISAL") != "1":
        try:
            from isal import isal_zlib

            return isal_zlib.decompressobj
        except ImportError:
            pass
    return zlib.decompressobj


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


class _Hashed:
    """A reader that hashes what passes through it: ``digest``, and ``drain()`` to read
    (and hash) the rest."""

    hash: Any

    def read(self, n: int = CHUNK) -> bytes:
        raise NotImplementedError

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class HashingReader(_Hashed):
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


class DecompressingReader(_Hashed):
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
        self._pending = memoryview(b"")     # compressed input not yet decompressed

    # -- decompressor plumbing --
    def _new_member(self):
        if self.kind == "gzip":
            return _inflater()(16 + zlib.MAX_WBITS)
        if self._zstd is None:
            import zstandard

            self._zstd = zstandard.ZstdDecompressor()
        return self._zstd.decompressobj()

    def _fill(self, want: int) -> None:
        """Decompress until ``want`` bytes are buffered or the stream ends. Memory stays
        bounded whatever the ratio: gzip output is taken GZIP_OUT bytes at a time, and
        zstd input is fed ZSTD_IN bytes at a time (a zstd block of 4 bytes can stand for
        128 KiB, so 1 KiB of input is at most 32 MiB out). A 1 MiB chunk of a gzip bomb
        used to come out as one 1 GiB string."""
        while len(self._buf) < want and not self._eof:
            if not self._pending:
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
                self._pending = memoryview(raw)
            data = self._pending
            if self._member_done:
                if self.kind == "gzip" and data[:1] != GZIP_MAGIC[:1] and not bytes(data).strip(b"\0"):
                    self._pending = memoryview(b"")   # zero padding after the last gzip member
                    continue
                if self.kind == "zstd" and len(data) >= 8 and \
                        int.from_bytes(data[:4], "little") & ZSTD_SKIPPABLE_MASK == ZSTD_SKIPPABLE_MAGIC:
                    # a skippable frame (zstd:chunked TOC): 4 magic + 4 size + payload
                    size = int.from_bytes(data[4:8], "little")
                    self._pending = memoryview(self._skip(bytes(data), 8 + size))
                    continue
                self._dobj = self._new_member()
                self._member_done = False
            try:
                if self.kind == "gzip":
                    out = self._dobj.decompress(data, GZIP_OUT)
                    rest: bytes | memoryview = self._dobj.unconsumed_tail
                else:
                    out = self._dobj.decompress(data[:ZSTD_IN])
                    rest = data[ZSTD_IN:]
            except Exception as exc:  # zlib.error / zstandard.ZstdError
                raise UnsafeLayer(f"corrupt {self.kind} layer data: {exc}") from None
            self._emit(out)
            if self._dobj.eof:
                self._member_done = True
                rest = bytes(self._dobj.unused_data) + bytes(rest)
            self._pending = memoryview(rest) if isinstance(rest, bytes) else rest

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


class _Bounded:
    """``read(n)`` of a bz2/xz file object, refused beyond ``limit`` bytes."""

    def __init__(self, f: Readable, limit: int):
        self.f, self.limit, self.count = f, limit, 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(CHUNK if n is None or n < 0 else n)
        self.count += len(data)
        if self.count > self.limit:
            raise UnsafeLayer(f"archive expands beyond the {self.limit} byte limit (decompression bomb?)")
        return data


def plain_stream(src: Readable, limit: int = DEFAULT_MAX_LAYER_BYTES) -> Readable:
    """The uncompressed bytes of the archive ``src``: plain, gzip, zstd, bzip2 or xz (what
    ``docker cp`` and ``docker load`` take), read a bounded amount at a time and refused
    beyond ``limit`` bytes."""
    raw = HashingReader(src)
    kind = detect_compression(raw.peek(6))
    if kind == "bzip2":
        import bz2

        return _Bounded(bz2.BZ2File(cast(BinaryIO, raw), "rb"), limit)
    if kind == "xz":
        import lzma

        return _Bounded(lzma.LZMAFile(cast(BinaryIO, raw), "rb"), limit)
    return DecompressingReader(raw, limit=limit)


class PrefetchReader:
    """Runs ``src.read()`` (network, decompression, hashing: all GIL-releasing work) in a
    thread, a few chunks ahead of the consumer, so it overlaps with tar parsing and the
    file-system calls of the unpack. Exceptions surface in the consumer's read()."""

    def __init__(self, src, chunk: int = CHUNK, depth: int = 8):
        import queue
        import threading

        self.src = src
        self._q: queue.Queue = queue.Queue(maxsize=depth)
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
# the applier: core.fs.extract's SafeExtractor with a layer's policy
# --------------------------------------------------------------------------------------


@dataclass
class UnpackResult:
    """What unpacking one layer found: its diff ID, sizes, compression, entries."""
    diff_id: str            # sha256 of the uncompressed tar
    size: int               # uncompressed tar bytes
    compressed_digest: str  # sha256 of the bytes read
    compressed_size: int
    compression: str
    entries: int
    implicit_dirs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    format: str = "dir"     # "dir", "squashfs", or "" when the image could not be made
    needs_directory: str = ""   # why (NeedsDirectory), when format is ""


class LayerApplier(SafeExtractor):
    """Applies a layer's tar entries into ``root`` (an empty directory owned by this
    process): owners kept, ``.wh.`` names turned into overlayfs whiteouts."""

    def __init__(self, root: str, max_entries: int = DEFAULT_MAX_ENTRIES):
        super().__init__(os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), max_entries)
        self.root = root

    def close(self) -> None:
        super().close()
        os.close(self.rootfd)

    def special_name(self, parent: str, base: str, member: Member, rel: str) -> bool:
        if not base.startswith(WHITEOUT_PREFIX):
            return False
        self._whiteout(parent, base, member, rel)
        return True

    def _whiteout(self, parent: str, base: str, member: Member, rel: str) -> None:
        pfd = self._open_dir(parent)
        trel = whiteout_target(parent, base, member.name, self.warnings)
        if trel is None:
            os.setxattr(f"/proc/self/fd/{pfd}", "trusted.overlay.opaque", b"y")
            if parent not in self.created:
                self.created[parent] = True
            return
        if not trel:
            return
        target = base[len(WHITEOUT_PREFIX):]
        try:
            os.stat(target, dir_fd=pfd, follow_symlinks=False)
            self._remove(pfd, target, trel)
        except FileNotFoundError:
            pass
        os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
        os.chown(target, member.uid, member.gid, dir_fd=pfd, follow_symlinks=False)
        self.created[trel] = False


def unpack_layer(src: Readable, dest: str, expected_digest: str | None = None,
                 expected_diff_id: str | None = None, max_bytes: int = DEFAULT_MAX_LAYER_BYTES,
                 on_bytes: Callable[[int], None] | None = None, image: bool = False,
                 lower_attrs: Callable[[str], Any] | None = None) -> UnpackResult:
    """Unpack one layer read from ``src`` (compressed or not) into the empty dir ``dest``,
    or with ``image=True`` into the squashfs file ``dest`` (core/store/layerimage.py).

    ``expected_digest`` is checked against the bytes read (the blob digest) and
    ``expected_diff_id`` against the uncompressed stream; a mismatch raises
    DigestMismatch. The caller discards ``dest`` on any exception. When the layer cannot
    be an image (NeedsDirectory), the stream is still read to its end and verified, and
    the result says ``format=""``: the caller unpacks the stored blob as a directory.
    """
    raw = HashingReader(src, on_bytes=on_bytes)
    stream = DecompressingReader(raw, limit=max_bytes)
    ahead = PrefetchReader(stream)
    applier: Any
    if image:
        applier = ImageApplier(dest, lower_attrs=lower_attrs)
    else:
        applier = LayerApplier(dest)
    needs_directory = ""
    try:
        from .tarreader import TarReader

        tr = TarReader(ahead)
        try:
            for member in tr:
                applier.apply(tr, member)
            applier.finish()
        except NeedsDirectory as exc:
            needs_directory = str(exc)
            for _ in tr:        # the rest of the archive is still checked for its shape
                pass
        ahead.drain()    # the tar end-of-archive blocks and any padding count towards the DiffID
        raw.drain()
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
        implicit_dirs=sorted(applier.implicit), warnings=applier.warnings,
        format="" if needs_directory else "squashfs" if image else "dir",
        needs_directory=needs_directory)
