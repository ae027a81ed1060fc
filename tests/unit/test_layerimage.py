"""core/store/layerimage.py without the kernel: the choice of format and the tar headers
it writes for sqfstar."""

from __future__ import annotations

import io
import tarfile

import pytest

from core.errors import RuntimeFailure
from core.store import layerimage


@pytest.fixture
def probe(monkeypatch):
    def set_reason(why: str) -> None:
        monkeypatch.setattr(layerimage, "_probe", lambda: why)
    return set_reason


def test_the_format_follows_what_the_host_has(probe, monkeypatch):
    monkeypatch.delenv("NUTSHELL_LAYER_FORMAT", raising=False)
    probe("")
    assert layerimage.layer_format() == "squashfs"
    probe("sqfstar (squashfs-tools) is not installed")
    assert layerimage.layer_format() == "dir"           # auto: directories, silently


def test_the_format_can_be_chosen(probe, monkeypatch):
    probe("")
    monkeypatch.setenv("NUTSHELL_LAYER_FORMAT", "dir")
    assert layerimage.layer_format() == "dir"
    probe("no access to /dev/loop-control")
    monkeypatch.setenv("NUTSHELL_LAYER_FORMAT", "squashfs")
    with pytest.raises(RuntimeFailure, match="loop-control"):
        layerimage.layer_format()


@pytest.mark.parametrize("name,typ,mode,uid,gid,size,mtime,link,dev", [
    ("usr/bin/env", tarfile.REGTYPE, 0o755, 0, 0, 12345, 1_700_000_000, "", (0, 0)),
    ("etc/localtime", tarfile.SYMTYPE, 0o777, 0, 0, 0, 0, "/usr/share/zoneinfo/UTC", (0, 0)),
    ("dev/null", tarfile.CHRTYPE, 0o666, 0, 0, 0, 1, "", (1, 3)),
    ("x/hl", tarfile.LNKTYPE, 0o644, 65534, 65534, 0, 1, "usr/bin/env", (0, 0)),
    ("suid", tarfile.REGTYPE, 0o4755, 1000, 100, 0, 2**32 - 1, "", (0, 0)),
])
def test_fast_headers_read_back_as_tarfile_reads_them(name, typ, mode, uid, gid, size, mtime, link, dev):
    head = layerimage._ustar(name, typ, mode, uid, gid, size, mtime, link, dev)
    assert head is not None and len(head) == 512
    data = bytes(size) + bytes(-size % 512) if typ == tarfile.REGTYPE else b""
    m = tarfile.open(fileobj=io.BytesIO(head + data + bytes(1024))).next()
    assert m is not None
    assert (m.name, m.type, m.mode, m.uid, m.gid, m.mtime, m.linkname) == (name, typ, mode, uid, gid, mtime, link)
    assert m.size == (size if typ == tarfile.REGTYPE else 0)
    if typ == tarfile.CHRTYPE:
        assert (m.devmajor, m.devminor) == dev


@pytest.mark.parametrize("name,link,uid", [
    ("a" * 100, "", 0),             # no room for the NUL: tarfile's PAX header instead
    ("ünïcode", "", 0),
    ("f", "t" * 100, 0),
    ("f", "", 8**7),
])
def test_what_ustar_cannot_hold_is_left_to_tarfile(name, link, uid):
    assert layerimage._ustar(name, tarfile.REGTYPE, 0o644, uid, 0, 0, 0, link, (0, 0)) is None


def test_an_old_kernel_keeps_directories(monkeypatch):
    import os as _os

    layerimage._probe.cache_clear()
    monkeypatch.setattr(layerimage.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(_os, "uname", lambda: _os.uname_result(("Linux", "h", "4.19.0-26-amd64", "", "x86_64")))
    try:
        assert "5.2" in layerimage._probe()
    finally:
        layerimage._probe.cache_clear()
