"""Layers stored as squashfs images (core/store/layerimage.py, issue 16): the same layer
unpacked as a directory and made into an image must read the same, entry for entry; what
one pass cannot express falls back to a directory; containers run on image layers through
one shared mount per layer (core/fs/imagemount.py, shared_mount), which no other user
reaches and which goes with its layer."""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
import subprocess
import sys
import time

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


def _mounts_under(base: str) -> list[str]:
    """Mount points in ``base`` (one line each: a mount stacked on another shows twice)."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(base + "/")]


def _shared_mounts(e: Engine) -> list[str]:
    """Mount points of the layer mounts containers share, of this store."""
    return _mounts_under(os.path.join(e.paths.run, "layers"))


def _wait_no_loops(root: str) -> set[str]:
    for _ in range(200):                # autoclear happens when the last user goes
        if not _loops(root):
            break
        time.sleep(0.02)
    return _loops(root)


def test_containers_share_one_mount_per_layer_image_until_the_layer_goes(tmp_path, busybox_rootfs):
    """Every container of an image reads its layer through one mount (one superblock, so
    one page cache), in the store's runtime dir; it outlives the containers, and goes
    (with its loop device) when the layer is deleted."""
    root, e, image = busybox_store(tmp_path, busybox_rootfs, "imgs/busybox:1")
    assert _loops(root) == set() and _shared_mounts(e) == []
    p = cli(root, "run", "--rm", "--network", "none", "imgs/busybox:1", "sh", "-c",
            "echo hi > /new && cat /new && grep ' / / ' /proc/self/mountinfo && "
            "(grep -c /layers/ /proc/self/mountinfo || true)")
    assert p.returncode == 0, p.stderr
    # the container's root takes a detached clone of the shared mount, and sees none
    assert p.stdout.startswith("hi\n") and "lowerdir=/proc/self/fd/" in p.stdout
    assert p.stdout.split()[-1] == "0"
    [mp] = _shared_mounts(e)
    assert os.path.dirname(mp) == os.path.join(e.paths.run, "layers")
    assert os.path.basename(mp).startswith(os.path.basename(os.path.dirname(image)) + ".")
    with open("/proc/self/mountinfo") as f:
        assert root not in f.read()        # the store itself is never a mount point
    with pytest.raises(OSError) as exc:    # read-only, for root too
        open(os.path.join(mp, "new-file"), "w")
    assert exc.value.errno == errno.EROFS
    for name in ("held", "held2"):
        p = cli(root, "run", "-d", "--network", "none", "--name", name, "imgs/busybox:1", "sleep", "60")
        assert p.returncode == 0, p.stderr
    try:
        assert _shared_mounts(e) == [mp]
        assert len(_loops(root)) == 1          # one loop device for every container
        assert cli(root, "exec", "held", "cat", "/etc/passwd").returncode == 0
        assert cli(root, "diff", "held").returncode == 0
    finally:
        assert cli(root, "rm", "-f", "held", "held2").returncode == 0
    assert _shared_mounts(e) == [mp]           # kept for the next container
    assert cli(root, "rmi", "imgs/busybox:1").returncode == 0
    assert _shared_mounts(e) == [] and not os.path.exists(mp)
    assert _wait_no_loops(root) == set()


def test_a_running_container_keeps_its_layer_when_the_shared_mount_goes(tmp_path, busybox_rootfs):
    """Releasing the shared mounts (rmi's path, or release_layer_mounts) under a running
    container changes nothing for it: its overlay holds its own clone of the layer."""
    root, e, _ = busybox_store(tmp_path, busybox_rootfs, "imgs/busybox:2")
    p = cli(root, "run", "-d", "--network", "none", "--name", "keep", "imgs/busybox:2", "sleep", "60")
    assert p.returncode == 0, p.stderr
    try:
        [mp] = _shared_mounts(e)
        assert e.store.release_layer_mounts() == [mp]
        assert _shared_mounts(e) == []
        p = cli(root, "exec", "keep", "sh", "-c", "cat /etc/passwd >/dev/null && busybox true && echo ok")
        assert (p.returncode, p.stdout) == (0, "ok\n"), p.stderr
        p = cli(root, "run", "--rm", "--network", "none", "imgs/busybox:2", "true")
        assert p.returncode == 0, p.stderr      # mounted again when next needed
        assert len(_shared_mounts(e)) == 1
    finally:
        assert cli(root, "rm", "-f", "keep").returncode == 0
    e.store.release_layer_mounts()
    assert _wait_no_loops(root) == set()


def test_no_other_user_reaches_a_shared_layer_mount(tmp_path, busybox_rootfs):
    """A layer may hold setuid-root programs and device nodes, and its shared mount keeps
    them working (a container needs them): the path to it is root's alone, so a local
    user can neither run nor open anything there, nor list it."""
    root, e, image = busybox_store(tmp_path, busybox_rootfs, "imgs/busybox:3")
    p = cli(root, "run", "--rm", "--network", "none", "imgs/busybox:3", "true")
    assert p.returncode == 0, p.stderr
    [mp] = _shared_mounts(e)
    for d in (e.paths.run, os.path.dirname(mp)):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700 and os.stat(d).st_uid == 0
    target = os.path.join(mp, "bin", "busybox")
    assert os.path.isfile(target)          # root reads it
    pid = os.fork()
    if pid == 0:                           # a local user, uid 65534
        code = 0
        try:
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            for attempt in (lambda: os.stat(target), lambda: os.listdir(mp),
                            lambda: os.open(target, os.O_RDONLY),
                            lambda: os.execv(target, [target, "true"])):
                try:
                    attempt()
                    code = 1               # reached it
                except PermissionError:
                    pass
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "another user reached the shared layer mount"
    e.store.release_layer_mounts()


def test_a_layer_image_made_anew_is_never_served_through_the_old_mount(tmp_path, busybox_rootfs):
    """The shared mount's name carries the image file's inode and mtime: a layer file put
    there again (deleted and pulled again, or a store restored from a backup) gets its own
    mount, and releasing the layer releases both."""
    from core.fs.imagemount import release_shared, shared_mount

    _, e, image = busybox_store(tmp_path, busybox_rootfs, "imgs/busybox:4")
    # a runtime dir of its own: under /run/nutshell, any container start's sweep
    # (layersweep.py) would release the old file's mount as soon as the file is replaced
    os.mkdir(tmp_path / "run", 0o700)
    base = str(tmp_path / "run" / "layers")
    first = shared_mount(image, base)
    again = shared_mount(image, base)
    try:
        assert os.fstat(first).st_dev == os.fstat(again).st_dev       # the same superblock
        assert len(_mounts_under(base)) == 1
        copy = image + ".new"
        shutil.copy2(image, copy)
        os.utime(copy, ns=(1, 1))
        os.rename(copy, image)                 # a new file (inode, mtime) at the same path
        renewed = shared_mount(image, base)
        try:
            assert os.fstat(renewed).st_dev != os.fstat(first).st_dev
            assert len(_mounts_under(base)) == 2
        finally:
            os.close(renewed)
    finally:
        os.close(first)
        os.close(again)
    layer = os.path.basename(os.path.dirname(image))
    assert len(release_shared(base, layer)) == 2
    assert _mounts_under(base) == [] and os.listdir(base) == [".lock"]


def test_layer_mounts_of_a_store_deleted_by_hand_go_at_the_next_start(tmp_path, busybox_rootfs):
    """A store removed with rm -rf (a CI job's temporary root) leaves its shared layer
    mounts, each holding a loop device and the deleted file's space; the next container
    start anywhere releases them (its priming child's sweep, core/fs/layersweep.py), and
    never a mount whose image file is still there."""
    from core.fs import layersweep

    root_a, a, _ = busybox_store(tmp_path / "a", busybox_rootfs, "imgs/busybox:6")
    root_b, b, _ = busybox_store(tmp_path / "b", busybox_rootfs, "imgs/busybox:6")
    for root in (root_a, root_b):
        p = cli(root, "run", "--rm", "--network", "none", "imgs/busybox:6", "true")
        assert p.returncode == 0, p.stderr
    [mp_a], [mp_b] = _shared_mounts(a), _shared_mounts(b)
    assert _loops(root_a)
    shutil.rmtree(root_a)                      # by hand: the mount keeps the file
    assert os.path.ismount(mp_a) or not os.path.exists(mp_a)   # (another start may sweep)
    assert all(mp != mp_b for _, mp in layersweep.stale(os.path.dirname(b.paths.run)))
    p = cli(root_b, "run", "--rm", "--network", "none", "imgs/busybox:6", "true")
    assert p.returncode == 0, p.stderr
    for _ in range(100):                       # the sweep runs beside the start
        if not os.path.exists(mp_a):
            break
        time.sleep(0.02)
    assert not os.path.exists(mp_a)
    assert _wait_no_loops(root_a) == set()     # the loop device and the file's space go
    assert _shared_mounts(b) == [mp_b] and os.path.ismount(mp_b)


def test_concurrent_starts_mount_a_layer_once(tmp_path, busybox_rootfs):
    """Starts racing for the same layer take turns on its lock: one mount, never two
    stacked on the same directory (which would leave one behind on release)."""
    from core.fs.imagemount import shared_mount

    _, e, image = busybox_store(tmp_path, busybox_rootfs, "imgs/busybox:5")
    base = os.path.join(e.paths.run, "layers")
    os.makedirs(e.paths.run, mode=0o700, exist_ok=True)
    go_r, go_w = os.pipe()
    pids = []
    for _ in range(6):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(go_w)
                os.read(go_r, 1)               # all released at once
                os.close(shared_mount(image, base))
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(go_r)
    os.close(go_w)
    codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
    assert codes == [0] * 6
    assert len(_shared_mounts(e)) == 1
    e.store.release_layer_mounts()
    assert _shared_mounts(e) == []


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
