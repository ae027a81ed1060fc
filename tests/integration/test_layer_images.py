"""Layers stored as squashfs images (core/store/layerimage.py, issue 16): the same layer
unpacked as a directory and made into an image must read the same, entry for entry; what
one pass cannot express falls back to a directory; containers run on image layers with
nothing left mounted or attached on the host afterwards."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from core.engine import Engine
from core.fs.imagemount import mount_image
from core.store.layerimage import layer_format
from core.store.unpack import unpack_layer
from tests import imagebuild as ib

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIG = bytes(range(256)) * 1024          # 256 KiB: goes to sqfstar in its own writes


def cli(root: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", "--root", root, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **(env or {})))


def _xattr_file(tb: ib.TarBuilder, name: str, xattrs: dict[str, str], mode: int = 0o644) -> None:
    ti = tb._ti(name, b"0", mode)
    ti.size = 3
    ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    tb.tf.addfile(ti, io.BytesIO(b"xa\n"))


def rich_layer() -> bytes:
    tb = ib.TarBuilder()
    tb.dir("etc").file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
    tb.file("etc/big", BIG, mode=0o600, uid=1000, gid=1000).hardlink("etc/big-link", "etc/big")
    tb.symlink("etc/link", "passwd").symlink("abs", "/etc/passwd")
    tb.file("suid", b"#!/bin/sh\n", mode=0o4755).file("sgid", b"", mode=0o2711)
    tb.chardev("null", 1, 3, mode=0o666)
    tb.dir("opq").file("opq/.wh..wh..opq", b"").file("opq/kept", b"k")
    tb.file(".wh.gone", b"").dir("sub").file("sub/.wh.also-gone", b"")
    tb.file("sub/unicodé-ñame", b"u")
    tb.dir("long").file("long/" + "n" * 150, b"a name too long for ustar")
    tb.dir("deep").dir("deep/a", mode=0o700).file("deep/a/f", b"f", uid=7, gid=8)
    tb.dir("tmp", mode=0o1777)
    _xattr_file(tb, "caps", {"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00" + "\x00" * 12,
                             "user.note": "hello"})
    tb.dir("late/child", mode=0o750)        # a directory listed before its parent's entry
    tb.dir("late", mode=0o711, uid=3)
    tb.tf.addfile(tb._ti("fifo", b"6", 0o640))
    return tb.bytes()


def image_tree(image: str) -> dict:
    fd = mount_image(image)
    try:
        return ib.snapshot(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


@pytest.fixture(autouse=True)
def _images_here():
    assert layer_format() == "squashfs", "setup.sh installs squashfs-tools: layers are images"


def test_an_image_layer_reads_as_the_directory_layer(tmp_path):
    layer = rich_layer()
    d = tmp_path / "dir"
    d.mkdir()
    as_dir = unpack_layer(io.BytesIO(layer), str(d))
    img = str(tmp_path / "layer.sqfs")
    as_image = unpack_layer(io.BytesIO(layer), img, image=True)
    assert as_image.format == "squashfs" and as_dir.format == "dir"
    assert (as_image.diff_id, as_image.entries) == (as_dir.diff_id, as_dir.entries)
    want, got = ib.snapshot(str(d)), image_tree(img)
    assert sorted(got) == sorted(want)
    for path in want:
        if want[path][0] == 0o020000 and want[path][-2:] == (0, 0):
            # a whiteout: the directory unpack leaves its mtime at the time of the unpack
            assert got[path][:4] + got[path][5:] == want[path][:4] + want[path][5:], path
        else:
            assert got[path] == want[path], path
    # what overlayfs acts on
    assert got["gone"][0] == 0o020000 and got["gone"][-2:] == (0, 0)      # a 0/0 whiteout
    assert ("trusted.overlay.opaque", b"y") in got["opq"][5]


def test_implicit_parents_take_the_attributes_of_the_layer_below(tmp_path):
    root = str(tmp_path / "root")
    base = ib.TarBuilder().dir("tmp", mode=0o1777).dir("srv", mode=0o700, uid=5).bytes()
    top = ib.TarBuilder().file("tmp/x", b"x").file("srv/a/b", b"b").bytes()
    arc = str(tmp_path / "img.tar")
    ib.docker_archive(arc, [base, top], ["implicit/img:1"])
    assert cli(root, "load", "-i", arc).returncode == 0
    e = Engine(root)
    dirs = e.image_layer_dirs("implicit/img:1")
    assert all(d.startswith("/proc/self/fd/") for d in dirs)
    st = os.lstat(os.path.join(dirs[1], "tmp"))
    assert (st.st_mode & 0o7777) == 0o1777
    st = os.lstat(os.path.join(dirs[1], "srv"))
    assert (st.st_mode & 0o7777, st.st_uid) == (0o700, 5)
    assert os.lstat(os.path.join(dirs[1], "srv", "a")).st_mode & 0o7777 == 0o755   # new: 0755


@pytest.mark.parametrize("case,layer", [
    ("a file given twice", ib.TarBuilder().file("f", b"one").file("f", b"two").bytes()),
    ("a file replaced by a directory", ib.TarBuilder().file("d", b"x").dir("d").file("d/f", b"two").bytes()),
    ("a directory replaced by a file", ib.TarBuilder().dir("d").file("d/x", b"x").file("d", b"two").bytes()),
    ("a whiteout of its own entry", ib.TarBuilder().file("f", b"x").file(".wh.f", b"").file("g", b"two").bytes()),
])
def test_what_one_pass_cannot_express_is_stored_as_a_directory(tmp_path, case, layer):
    res = unpack_layer(io.BytesIO(layer), str(tmp_path / "layer.sqfs"), image=True)
    assert res.format == "" and res.needs_directory, case
    root = str(tmp_path / "root")
    arc = str(tmp_path / "img.tar")
    ib.docker_archive(arc, [layer], ["fallback/img:1"])
    p = cli(root, "load", "-i", arc)
    assert p.returncode == 0, p.stderr
    e = Engine(root)
    [chain] = e.store.image("fallback/img:1").chain_ids
    assert os.path.isdir(e.store.layer_path(chain))
    meta = e.store.layer_meta(chain)
    assert meta["format"] == "dir"
    assert any(w.startswith("stored as a directory: ") for w in meta["warnings"]), meta["warnings"]
    d = tmp_path / "want"
    d.mkdir()
    unpack_layer(io.BytesIO(layer), str(d))
    assert ib.snapshot(e.image_layer_dirs("fallback/img:1")[0]) == ib.snapshot(str(d))


def _loops(under: str) -> set[str]:
    """Loop devices bound to a file below ``under`` (other tests run beside this one)."""
    out = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    return {line.split(":", 1)[0] for line in out.splitlines() if f"({under}/" in line}


def busybox_store(tmp_path, rootfs: str, ref: str) -> tuple[str, Engine, str]:
    """(root, engine, the layer's image file) of a store with busybox imported as ``ref``."""
    root = str(tmp_path / "root")
    e = Engine(root)
    e.import_image(rootfs, ref)
    [chain] = e.store.image(ref).chain_ids
    image = e.store.layer_path(chain)
    assert image.endswith("/layer.sqfs") and os.path.isfile(image)
    return root, e, image


def test_a_container_on_image_layers_leaves_nothing_mounted_or_attached(tmp_path, busybox_rootfs):
    root, _, _ = busybox_store(tmp_path, busybox_rootfs, "imgs/busybox:1")
    assert _loops(root) == set()
    p = cli(root, "run", "--rm", "--network", "none", "imgs/busybox:1", "sh", "-c",
            "echo hi > /new && cat /new && grep ' / / ' /proc/self/mountinfo")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("hi\n") and "lowerdir=/proc/self/fd/" in p.stdout
    p = cli(root, "run", "-d", "--network", "none", "--name", "held", "imgs/busybox:1", "sleep", "60")
    assert p.returncode == 0, p.stderr
    try:
        # the host's mount table never shows a layer image, running or not
        with open("/proc/self/mountinfo") as f:
            assert root not in f.read()
        assert len(_loops(root)) == 1          # the running container's layer
        assert cli(root, "exec", "held", "cat", "/etc/passwd").returncode == 0
        assert cli(root, "diff", "held").returncode == 0
    finally:
        assert cli(root, "rm", "-f", "held").returncode == 0
    assert _loops(root) == set()               # detached with the container


def test_gc_removes_an_image_layer_this_process_reads(tmp_path, busybox_rootfs):
    _, e, image = busybox_store(tmp_path, busybox_rootfs, "imgs/gone:1")
    assert os.listdir(e.image_layer_dirs("imgs/gone:1")[0])     # mounted for reading here
    e.rmi(["imgs/gone:1"])
    assert not os.path.exists(os.path.dirname(image))
    assert all(image not in line for line in subprocess.run(
        ["losetup", "-a"], capture_output=True, text=True).stdout.splitlines())


def test_browsing_layers_keeps_no_mount(tmp_path, busybox_rootfs):
    """The app's Layers pane (image_tree, image_file) and a container's layer walk mount
    an image for the work only: nothing stays mounted or bound afterwards, and a file
    opened inside reads after its mount's fd is gone (the open file holds the mount)."""
    from core.fs import imagemount
    from core.store.layertree import open_in_layer

    root, e, image = busybox_store(tmp_path, busybox_rootfs, "imgs/browse:1")
    before = imagemount.mounted_count()
    tree = e.image_tree("imgs/browse:1")
    assert tree.layers and "bin/busybox" in tree.layers[0].entries
    content = e.image_file("imgs/browse:1", "/bin/busybox", limit=4)
    assert content.data[:4] == b"\x7fELF"
    fd = open_in_layer(image, "bin/busybox")
    try:
        assert os.pread(fd, 4, 0) == b"\x7fELF"               # the block's mount fd is closed
    finally:
        os.close(fd)
    assert imagemount.mounted_count() == before
    for _ in range(100):                                      # autoclear is asynchronous
        if not _loops(root):
            break
        import time

        time.sleep(0.02)
    assert _loops(root) == set()


def test_when_sqfstar_fails_the_layer_is_a_directory(tmp_path):
    """A tree sqfstar cannot take (or any failure of it) costs speed, not the pull: the
    layer is unpacked as a directory from its blob, and the reason is kept."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sqfstar").write_text("#!/bin/sh\ncat >/dev/null\necho 'FATAL ERROR: out of cheese' >&2\nexit 1\n")
    (fake / "sqfstar").chmod(0o755)
    layer = ib.TarBuilder().dir("etc").file("etc/x", b"x").bytes()
    arc = str(tmp_path / "img.tar")
    ib.docker_archive(arc, [layer], ["broken/sqfstar:1"])
    root = str(tmp_path / "root")
    p = cli(root, "load", "-i", arc, env={"PATH": f"{fake}:{os.environ['PATH']}"})
    assert p.returncode == 0, p.stderr
    e = Engine(root)
    [chain] = e.store.image("broken/sqfstar:1").chain_ids
    meta = e.store.layer_meta(chain)
    assert meta["format"] == "dir" and os.path.isdir(e.store.layer_path(chain))
    assert any("out of cheese" in w for w in meta["warnings"]), meta["warnings"]
    with open(os.path.join(e.store.layer_path(chain), "etc", "x")) as f:
        assert f.read() == "x"


def test_before_loop_configure_the_two_step_binding_works_the_same(tmp_path, monkeypatch):
    """Kernels 5.2-5.7 have no LOOP_CONFIGURE: LOOP_SET_FD + LOOP_SET_STATUS64 instead.
    Forced here: the layer reads the same, the device is read-only and detaches itself
    once the mount is gone (AUTOCLEAR)."""
    from core.fs import imagemount

    layer = rich_layer()
    img = str(tmp_path / "layer.sqfs")
    unpack_layer(io.BytesIO(layer), img, image=True)
    want = image_tree(img)                                   # through LOOP_CONFIGURE
    calls = []
    real_ioctl = imagemount.fcntl.ioctl

    def old_kernel_ioctl(fd, request, arg=0, *rest):
        calls.append(request)
        if request == imagemount.LOOP_CONFIGURE:
            raise OSError(22, "Invalid argument")           # what a 5.4 kernel answers
        return real_ioctl(fd, request, arg, *rest)

    monkeypatch.setattr(imagemount.fcntl, "ioctl", old_kernel_ioctl)
    monkeypatch.setitem(imagemount._configure, "works", True)
    fd = imagemount.mount_image(img)
    try:
        assert imagemount._configure["works"] is False
        assert imagemount.LOOP_SET_FD in calls and imagemount.LOOP_SET_STATUS64 in calls
        bound = _loops(str(tmp_path))
        assert len(bound) == 1
        dev = bound.pop()
        with open(f"/sys/block/{os.path.basename(dev)}/ro") as f:
            assert f.read().strip() == "1"
        with open(f"/sys/block/{os.path.basename(dev)}/loop/autoclear") as f:
            assert f.read().strip() == "1"
        assert ib.snapshot(f"/proc/self/fd/{fd}") == want
        with pytest.raises(OSError):
            os.open(f"/proc/self/fd/{fd}/newfile", os.O_WRONLY | os.O_CREAT, 0o644)
    finally:
        os.close(fd)
    for _ in range(100):                                      # autoclear is asynchronous
        if not _loops(str(tmp_path)):
            break
        import time

        time.sleep(0.02)
    assert _loops(str(tmp_path)) == set()
