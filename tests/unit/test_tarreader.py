"""The streaming tar reader agrees with tarfile on every header form layers use, and
refuses what it must."""

import io
import os
import subprocess
import tarfile

import pytest

from core.errors import UnsafeLayer
from core.store.tarreader import TarReader


def _build(fmt) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        def add(name, type_=tarfile.REGTYPE, data=b"", **kw):
            ti = tarfile.TarInfo(name)
            ti.type = type_
            ti.size = len(data) if type_ == tarfile.REGTYPE else 0
            ti.mtime = kw.pop("mtime", 1_700_000_000)
            for k, v in kw.items():
                setattr(ti, k, v)
            tf.addfile(ti, io.BytesIO(data) if type_ == tarfile.REGTYPE else None)
        add("dir/", tarfile.DIRTYPE, mode=0o1777)
        add("dir/file", data=b"hello" * 300, mode=0o4755, uid=1000, gid=100)
        add("p/" * 60 + "deep", data=b"y")                              # prefix split / long
        if fmt != tarfile.USTAR_FORMAT:
            add("d/" + "long-component-" * 12 + "end", data=b"x")      # > 100 bytes
            add("sym", tarfile.SYMTYPE, linkname="/" + "target/" * 30)   # long link
        add("hard", tarfile.LNKTYPE, linkname="dir/file")
        add("null", tarfile.CHRTYPE, devmajor=1, devminor=3)
        add("fifo", tarfile.FIFOTYPE)
        add("unicodé-漢字", data=b"u")
        add("empty", data=b"")
        if fmt != tarfile.USTAR_FORMAT:
            add("bigid", data=b"z", uid=3_000_000, gid=3_000_000)
    return buf.getvalue()


def _fields_tarfile(data):
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for m in tf:
            body = tf.extractfile(m).read() if m.isreg() else b""
            out.append((m.name.rstrip("/"), m.type, m.mode, m.uid, m.gid, int(m.mtime), m.linkname,
                        m.devmajor, m.devminor, body))
    return out


def _fields_ours(data):
    out = []
    tr = TarReader(io.BytesIO(data))
    for e in tr:
        body = tr.read(e.size) if e.isreg() else b""
        out.append((e.name.rstrip("/"), e.type, e.mode, e.uid, e.gid, int(e.mtime), e.linkname,
                    e.devmajor, e.devminor, body))
    return out


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_agrees_with_tarfile(fmt):
    data = _build(fmt)
    assert _fields_ours(data) == _fields_tarfile(data)


def test_agrees_with_gnu_tar_and_xattrs(tmp_path):
    src = tmp_path / "src"
    (src / "a" / ("b" * 120)).mkdir(parents=True)
    (src / "a" / ("b" * 120) / "f").write_bytes(os.urandom(5000))
    (src / "x").write_bytes(b"x")
    os.setxattr(src / "x", "user.k", b"\x00\xffv")
    data = subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--format=posix", "-C", src,
                           "-cf", "-", "."], capture_output=True, check=True).stdout
    assert _fields_ours(data) == _fields_tarfile(data)
    tr = TarReader(io.BytesIO(data))
    xs = {e.name: e.pax_headers.get("SCHILY.xattr.user.k") for e in tr}
    assert xs["./x"].encode("utf-8", "surrogateescape") == b"\x00\xffv"


def test_bad_checksum_truncation_sparse_and_huge_headers():
    data = bytearray(_build(tarfile.PAX_FORMAT))
    bad = bytearray(data)
    bad[0] ^= 0x01
    with pytest.raises(UnsafeLayer, match="checksum"):
        list(TarReader(io.BytesIO(bytes(bad))))
    cut = bytes(data[:700])
    with pytest.raises(UnsafeLayer, match="truncated"):
        tr = TarReader(io.BytesIO(cut))
        for e in tr:
            tr.read(e.size)
    with pytest.raises(UnsafeLayer, match="not a tar"):
        list(TarReader(io.BytesIO(b"hello world" * 100)))
    with pytest.raises(UnsafeLayer, match="empty"):
        list(TarReader(io.BytesIO(b"")))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("s")
        ti.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
        tf.addfile(ti, io.BytesIO(b""))
    with pytest.raises(UnsafeLayer, match="sparse"):
        list(TarReader(io.BytesIO(buf.getvalue())))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        ti = tarfile.TarInfo("n" * (2 << 20))
        tf.addfile(ti, io.BytesIO(b""))
    with pytest.raises(UnsafeLayer, match="exceeds"):
        list(TarReader(io.BytesIO(buf.getvalue())))


def test_unread_data_is_skipped():
    data = _build(tarfile.GNU_FORMAT)
    names = [e.name.rstrip("/") for e in TarReader(io.BytesIO(data))]      # never reads bodies
    assert names == [n for n, *_ in _fields_tarfile(data)]
