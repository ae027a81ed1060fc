"""A streaming tar reader for every tar Nutshell reads (layers, ``load``, ``cp`` and build
contexts, ``ADD`` archives): ustar, GNU long names and PAX.

Why not ``tarfile``: its stream mode re-slices its buffer on every 512-byte read and
parses each header field through several Python calls; for layers of many small files
that was half of the unpack time. This reader parses a header with one ``struct``
call, reads file data straight from the stream, and enforces our limits as it goes:

  * memory stays flat whatever the archive: entries are not remembered (``tarfile``
    keeps a TarInfo per entry: 410 MB for 400,000 headers in a 0.9 MB ``.tar.gz``), and
    no header is read whole beyond the cap below (``tarfile`` read a 768 MiB PAX header);
  * PAX (``x``) and GNU long name/link (``L``/``K``) headers over 1 MiB are refused;
  * header checksums are verified; an archive that ends inside an entry is an error;
  * sparse files (old GNU ``S`` entries, PAX ``GNU.sparse.*``) are refused: container
    layer producers never write them.

Malformed input raises :class:`TarFormatError` (an UnsafeLayer), worded for any archive.

Entries expose the small part of the ``tarfile.TarInfo`` interface the applier uses
(``name``, ``mode``, ``uid``, ``gid``, ``size``, ``mtime``, ``linkname``, ``devmajor``,
``devminor``, ``pax_headers``, ``type`` and the ``isreg()``-style predicates).
"""

from __future__ import annotations

import struct

from ..errors import UnsafeLayer


class TarFormatError(UnsafeLayer):
    """The bytes are not a well-formed tar archive (as opposed to a well-formed archive
    asking for something unsafe)."""


BLOCK = 512
MAX_META = 1 << 20

REGTYPE, AREGTYPE, LNKTYPE, SYMTYPE = b"0", b"\0", b"1", b"2"
CHRTYPE, BLKTYPE, DIRTYPE, FIFOTYPE, CONTTYPE = b"3", b"4", b"5", b"6", b"7"
GNU_LONGNAME, GNU_LONGLINK, GNU_SPARSE = b"L", b"K", b"S"
PAX_HEADER, PAX_GLOBAL, SOLARIS_PAX = b"x", b"g", b"X"

# name mode uid gid size mtime chksum type linkname magic version uname gname major minor prefix
_HEADER = struct.Struct("100s8s8s8s12s12s8s1s100s6s2s32s32s8s8s155s12x")
_CHKSUM_BLANK = b" " * 8
_ZERO_BLOCK = bytes(BLOCK)


def _nts(b: bytes) -> bytes:
    i = b.find(b"\0")
    return b if i < 0 else b[:i]


def _num(b: bytes) -> int:
    if b and b[0] & 0x80:           # base-256 (GNU) for large or negative values
        v = int.from_bytes(b[1:], "big") | ((b[0] & 0x7F) << (8 * (len(b) - 1)))
        if b[0] & 0x40:
            v -= 1 << (8 * len(b) - 1)
        return v
    try:
        return int(b.strip(b" \0") or b"0", 8)        # the usual "0000644 \0"
    except ValueError:
        pass
    s = _nts(b).strip(b" \0")       # digits, a NUL, then anything
    if not s:
        return 0
    try:
        return int(s, 8)
    except ValueError:
        raise TarFormatError(f"corrupt tar: bad number field {b[:16]!r}") from None


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


class Entry:
    __slots__ = ("name", "type", "mode", "uid", "gid", "size", "mtime", "linkname",
                 "devmajor", "devminor", "pax_headers")
    name: str
    type: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime: float
    linkname: str
    devmajor: int
    devminor: int
    pax_headers: dict[str, str]

    def isreg(self) -> bool:
        return self.type in (REGTYPE, AREGTYPE, CONTTYPE)

    def isdir(self) -> bool:
        return self.type == DIRTYPE

    def issym(self) -> bool:
        return self.type == SYMTYPE

    def islnk(self) -> bool:
        return self.type == LNKTYPE

    def ischr(self) -> bool:
        return self.type == CHRTYPE

    def isblk(self) -> bool:
        return self.type == BLKTYPE

    def isfifo(self) -> bool:
        return self.type == FIFOTYPE


def _parse_pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    n = len(data)
    while pos < n:
        if data[pos:pos + 1] == b"\0":
            break
        sp = data.find(b" ", pos)
        if sp < 0:
            raise TarFormatError("corrupt tar: bad PAX record")
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise TarFormatError("corrupt tar: bad PAX record length") from None
        if length <= 0 or pos + length > n:
            raise TarFormatError("corrupt tar: PAX record overruns its header")
        rec = data[sp + 1:pos + length]
        if not rec.endswith(b"\n") or b"=" not in rec:
            raise TarFormatError("corrupt tar: malformed PAX record")
        key, _, value = rec[:-1].partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


class TarReader:
    """Iterate the entries of a tar stream read from ``src.read(n)``."""

    def __init__(self, src):
        self.src = src
        self._buf = b""
        self._pos = 0
        self._left = 0      # data bytes of the current entry not yet consumed
        self._pad = 0       # padding after the current entry's data
        self._global: dict[str, str] = {}
        self.entries = 0

    # -- raw reading --------------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        """Up to n bytes (fewer only at the end of the stream)."""
        avail = len(self._buf) - self._pos
        if avail >= n:
            out = self._buf[self._pos:self._pos + n]
            self._pos += n
            return out
        parts = [self._buf[self._pos:]] if avail else []
        need = n - avail
        self._buf, self._pos = b"", 0
        while need > 0:
            chunk = self.src.read(max(need, 1 << 16))
            if not chunk:
                break
            if len(chunk) > need:
                parts.append(chunk[:need])
                self._buf, self._pos = chunk, need
                need = 0
            else:
                parts.append(chunk)
                need -= len(chunk)
        return b"".join(parts)

    def _exact(self, n: int, what: str) -> bytes:
        data = self._read(n)
        if len(data) != n:
            raise TarFormatError(f"truncated tar: the archive ends inside {what}")
        return data

    def _skip(self, n: int) -> None:
        while n > 0:
            got = len(self._read(min(n, 1 << 20)))
            if not got:
                raise TarFormatError("truncated tar: the archive ends inside an entry")
            n -= got

    # -- entries ------------------------------------------------------------------------
    def read_data(self, n: int) -> bytes:
        """Read up to ``n`` bytes of the current entry's data."""
        if self._left <= 0:
            return b""
        data = self._read(min(n, self._left))
        if not data:
            raise TarFormatError("truncated tar: the archive ends inside a file")
        self._left -= len(data)
        return data

    def extractfile(self, entry) -> TarReader:   # tarfile's spelling, used by the applier
        return self

    def read(self, n: int = -1) -> bytes:
        return self.read_data(self._left if n is None or n < 0 else n)

    def __iter__(self):
        return self

    def __next__(self) -> Entry:
        e = self.next()
        if e is None:
            raise StopIteration
        return e

    def next(self) -> Entry | None:
        if self._left or self._pad:
            self._skip(self._left + self._pad)
            self._left = self._pad = 0
        long_name = long_link = None
        pax: dict[str, str] = {}
        typ = REGTYPE
        while True:
            block = self._read(BLOCK)
            if not block:
                if self.entries == 0:
                    raise TarFormatError("empty, or not a tar archive")
                return None     # no end-of-archive blocks: accepted, as GNU tar does
            if len(block) < BLOCK:
                raise TarFormatError("truncated tar: the archive ends inside a header")
            if block == _ZERO_BLOCK:
                return None     # end of archive (the rest is drained by the caller)
            f = _HEADER.unpack(block)
            try:
                chk = _num(f[6])
            except UnsafeLayer:
                chk = -1
            if chk != sum(block) - sum(block[148:156]) + 256 and \
                    chk != sum(struct.unpack("148b", block[:148])) + 256 + sum(struct.unpack("356b", block[156:])):
                # (some old tars summed signed chars)
                if self.entries == 0 and not long_name and not pax:
                    raise TarFormatError("not a tar archive (bad header checksum)")
                raise TarFormatError("corrupt tar: bad header checksum")
            typ = f[7]
            size = _num(f[4])
            if size < 0:
                raise TarFormatError("corrupt tar: negative size")
            pad = (-size) % BLOCK
            if typ in (PAX_HEADER, PAX_GLOBAL, SOLARIS_PAX, GNU_LONGNAME, GNU_LONGLINK):
                if size > MAX_META:
                    raise TarFormatError(f"tar header of {size} bytes exceeds the {MAX_META} byte cap")
                data = self._exact(size, "an extended header")
                self._skip(pad)
                if typ == GNU_LONGNAME:
                    long_name = _text(_nts(data))
                elif typ == GNU_LONGLINK:
                    long_link = _text(_nts(data))
                elif typ == PAX_GLOBAL:
                    self._global.update(_parse_pax(data))
                else:
                    pax.update(_parse_pax(data))
                continue
            if typ == GNU_SPARSE:
                raise TarFormatError("sparse tar entries are not supported")
            break
        headers = dict(self._global, **pax) if self._global or pax else {}
        if headers and any(k.startswith("GNU.sparse") for k in headers):
            raise TarFormatError("sparse tar entries are not supported")
        e = Entry()
        name = f[0]
        magic = f[9]
        if magic.startswith(b"ustar") and f[15] and magic == b"ustar\0":
            prefix = _nts(f[15])
            name = prefix + b"/" + _nts(name) if prefix else _nts(name)
        else:
            name = _nts(name)
        e.name = headers.get("path") or long_name or _text(name)
        e.linkname = headers.get("linkpath") or long_link or _text(_nts(f[8]))
        if typ == AREGTYPE and e.name.endswith("/"):
            typ = DIRTYPE       # an old V7 tar's directory, as tarfile and GNU tar read it
        e.type = typ
        e.mode = _num(f[1])
        e.uid = int(headers["uid"]) if "uid" in headers else _num(f[2])
        e.gid = int(headers["gid"]) if "gid" in headers else _num(f[3])
        if "size" in headers:
            try:
                size = int(headers["size"])
            except ValueError:
                raise TarFormatError("corrupt tar: bad PAX size") from None
            pad = (-size) % BLOCK
        e.size = size if typ not in (DIRTYPE, SYMTYPE, LNKTYPE, CHRTYPE, BLKTYPE, FIFOTYPE) else 0
        try:
            e.mtime = float(headers["mtime"]) if "mtime" in headers else _num(f[5])
        except ValueError:
            e.mtime = 0
        if typ in (CHRTYPE, BLKTYPE):
            e.devmajor = _num(f[13])
            e.devminor = _num(f[14])
        else:
            e.devmajor = e.devminor = 0
        e.pax_headers = headers
        # the header's size says how much data follows, whatever the type: it is skipped
        # on the next call if the applier does not read it
        self._left = size
        self._pad = pad
        self.entries += 1
        return e

    def drain_data(self) -> None:
        """Skip the rest of the current entry."""
        if self._left or self._pad:
            self._skip(self._left + self._pad)
            self._left = self._pad = 0
