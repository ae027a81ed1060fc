"""A corpus of hostile and broken layers and archives. Each is refused with one clear
line, writes nothing outside the layer directory, and leaves the store as it was."""

import gzip
import io
import os
import subprocess
import sys
import tarfile

import pytest

from core.engine import Engine
from core.errors import DigestMismatch, UnsafeLayer
from core.store.unpack import unpack_layer
from tests import imagebuild as ib

pytestmark = pytest.mark.integration

NUTSHELL = [sys.executable, "-m", "workbench"]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def run_cli(root, *args, input=None, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(NUTSHELL + ["--root", root, *args], capture_output=True, input=input,
                          cwd=REPO, env=e)


@pytest.fixture
def outside(tmp_path):
    """A directory outside the layer that hostile entries aim at; must stay empty."""
    d = tmp_path / "outside"
    d.mkdir()
    return d


def hostile_layers(outside) -> dict[str, bytes]:
    o = str(outside)
    rel_out = os.path.relpath(o, "/")
    return {
        "absolute-path": ib.TarBuilder().file(o + "/abs", b"x").bytes(),
        "dotdot": ib.TarBuilder().file("../../../../../../" + rel_out + "/dotdot", b"x").bytes(),
        "dotdot-middle": ib.TarBuilder().dir("a").file("a/../../" + "escape", b"x").bytes(),
        "symlink-then-file": ib.TarBuilder().symlink("evil", o).file("evil/through", b"x").bytes(),
        "symlink-dir-then-file-relative": ib.TarBuilder().symlink("up", "../../../../../../../" + rel_out)
        .file("up/through", b"x").bytes(),
        "symlink-named-dot": ib.TarBuilder().symlink(".", o).file("after", b"x").bytes(),
        "symlink-named-dot-slash": ib.TarBuilder().symlink("./", o).file("after", b"x").bytes(),
        "file-named-dot": ib.TarBuilder().file(".", b"x").bytes(),
        "hardlink-dotdot": ib.TarBuilder().hardlink("hl", "../../../../etc/passwd").bytes(),
        "hardlink-absolute": ib.TarBuilder().hardlink("hl", "/etc/passwd").bytes(),
        "hardlink-not-in-layer": ib.TarBuilder().hardlink("hl", "etc/shadow").bytes(),
        "hardlink-through-symlink": ib.TarBuilder().symlink("s", "/etc").hardlink("hl", "s/passwd").bytes(),
        "whiteout-dotdot": ib.TarBuilder().dir("a").file("a/.wh..." , b"").bytes(),
        "whiteout-empty": ib.TarBuilder().file(".wh.", b"").bytes(),
        "overlay-xattr-smuggling": _xattr_layer("trusted.overlay.redirect", "/etc"),
    }


def _xattr_layer(key, value):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("d")
        ti.type = tarfile.DIRTYPE
        ti.mode = 0o755
        ti.pax_headers = {f"SCHILY.xattr.{key}": value}
        tf.addfile(ti)
    return buf.getvalue()


EXPECT = {
    "absolute-path": "absolute path",
    "dotdot": "'..'",
    "dotdot-middle": "'..'",
    "symlink-then-file": "through a symlink",
    "symlink-dir-then-file-relative": "through a symlink",
    "symlink-named-dot": "replace the layer root",
    "symlink-named-dot-slash": "replace the layer root",
    "file-named-dot": "replace the layer root",
    "hardlink-dotdot": "'..'",
    "hardlink-absolute": "absolute path",
    "hardlink-not-in-layer": "not a file unpacked earlier in this layer",
    "hardlink-through-symlink": "not a file unpacked earlier in this layer",
    "whiteout-dotdot": "whiteout",
    "whiteout-empty": "whiteout",
}


@pytest.mark.parametrize("form", ["dir", "image"])
@pytest.mark.parametrize("case", sorted(EXPECT))
def test_hostile_layer_refused_directly(tmp_path, outside, case, form):
    """As a directory and as a squashfs image (core/store/layerimage.py): the same refusal."""
    layer = hostile_layers(outside)[case]
    dest = tmp_path / "layer"
    if form == "dir":
        dest.mkdir()
    else:
        dest = tmp_path / "layer.sqfs"
    with pytest.raises(UnsafeLayer) as ei:
        unpack_layer(io.BytesIO(layer), str(dest), image=form == "image")
    assert EXPECT[case] in str(ei.value)
    assert "\n" not in str(ei.value)
    assert os.listdir(outside) == []
    assert not os.path.exists("/escape") and not os.path.exists(str(tmp_path / "escape"))


def test_overlay_xattrs_from_a_layer_are_dropped(tmp_path, outside):
    dest = tmp_path / "layer"
    dest.mkdir()
    res = unpack_layer(io.BytesIO(hostile_layers(outside)["overlay-xattr-smuggling"]), str(dest))
    assert "trusted.overlay.redirect" not in os.listxattr(dest / "d")
    assert any("dropped overlay xattr" in w for w in res.warnings)
    image = str(tmp_path / "layer.sqfs")
    res = unpack_layer(io.BytesIO(hostile_layers(outside)["overlay-xattr-smuggling"]), image,
                       image=True)
    assert res.format == "squashfs" and any("dropped overlay xattr" in w for w in res.warnings)
    from core.fs.imagemount import mount_image

    fd = mount_image(image)
    try:
        with pytest.raises(OSError):        # ENODATA, or EOPNOTSUPP: no xattr in the image at all
            os.getxattr(f"/proc/self/fd/{fd}/d", "trusted.overlay.redirect")
    finally:
        os.close(fd)


@pytest.mark.parametrize("case", ["absolute-path", "symlink-then-file", "symlink-named-dot",
                                  "hardlink-not-in-layer", "whiteout-dotdot"])
def test_hostile_layer_in_archive_leaves_store_unchanged(tmp_path, root, outside, busybox_rootfs, case):
    assert run_cli(root, "import", busybox_rootfs, "keep/me:1").returncode == 0
    before = _store_state(root)
    arc = str(tmp_path / "evil.tar")
    ib.docker_archive(arc, [ib.TarBuilder().dir("ok").bytes(), hostile_layers(outside)[case]], ["evil/img:1"])
    p = run_cli(root, "load", "-i", arc)
    assert p.returncode == 125
    err = p.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("nutshell: ") and EXPECT[case] in err, err
    assert _store_state(root) == before
    assert os.listdir(outside) == []


def test_truncated_gzip_layer(tmp_path):
    layer = gzip.compress(ib.TarBuilder().file("f", os.urandom(200_000)).bytes())
    dest = tmp_path / "l"
    dest.mkdir()
    with pytest.raises(UnsafeLayer, match="truncated gzip"):
        unpack_layer(io.BytesIO(layer[: len(layer) // 2]), str(dest))


def test_truncated_zstd_layer(tmp_path):
    layer = ib.compress(ib.TarBuilder().file("f", os.urandom(200_000)).bytes(), "zstd")
    dest = tmp_path / "l"
    dest.mkdir()
    with pytest.raises(UnsafeLayer, match="truncated zstd"):
        unpack_layer(io.BytesIO(layer[: len(layer) // 2]), str(dest))


def test_corrupt_gzip_layer(tmp_path):
    layer = bytearray(gzip.compress(ib.TarBuilder().file("f", b"a" * 100_000).bytes()))
    layer[40:60] = b"\xff" * 20
    dest = tmp_path / "l"
    dest.mkdir()
    with pytest.raises(UnsafeLayer, match="corrupt gzip"):
        unpack_layer(io.BytesIO(bytes(layer)), str(dest))


def test_digest_mismatch_of_layer_and_diff_id(tmp_path):
    raw = ib.TarBuilder().file("f", b"data").bytes()
    gz = gzip.compress(raw)
    for kw in ({"expected_digest": ib.sha(b"other")}, {"expected_diff_id": ib.sha(b"other")}):
        dest = tmp_path / f"l{len(kw)}{list(kw)[0]}"
        dest.mkdir()
        with pytest.raises(DigestMismatch):
            unpack_layer(io.BytesIO(gz), str(dest), **kw)
    dest = tmp_path / "ok"
    dest.mkdir()
    res = unpack_layer(io.BytesIO(gz), str(dest), expected_digest=ib.sha(gz), expected_diff_id=ib.sha(raw))
    assert res.diff_id == ib.sha(raw) and res.compression == "gzip"


def test_decompression_bomb_is_stopped_at_the_limit(tmp_path):
    # 64 MiB of zeros gzip to ~64 KiB; the limit is 8 MiB
    bomb = ib.TarBuilder().file("zeros", bytes(64 << 20)).bytes()
    gz = gzip.compress(bomb, compresslevel=9)
    assert len(gz) < 1 << 20
    dest = tmp_path / "l"
    dest.mkdir()
    with pytest.raises(UnsafeLayer, match="decompression bomb"):
        unpack_layer(io.BytesIO(gz), str(dest), max_bytes=8 << 20)
    size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(dest) for f in fs)
    assert size <= 8 << 20


def test_decompression_bomb_via_cli_env_limit(tmp_path, root):
    arc = str(tmp_path / "bomb.tar")
    files = {}
    ib.oci_layout(files, [ib.TarBuilder().file("zeros", bytes(32 << 20)).bytes()], "docker.io/b/omb:1")
    with tarfile.open(arc, "w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    # a bomb: the archive is far below the limit, only its unpacked layer is above it
    assert os.path.getsize(arc) < 1 << 20
    p = run_cli(root, "load", "-i", arc, env={"NUTSHELL_MAX_LAYER_BYTES": str(4 << 20)})
    assert p.returncode == 125 and b"decompression bomb" in p.stderr
    assert Engine(root).images() == []


def test_huge_pax_header_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("f")
        ti.pax_headers = {"comment": "x" * (2 << 20)}
        tf.addfile(ti, io.BytesIO(b""))
    dest = tmp_path / "l"
    dest.mkdir()
    with pytest.raises(UnsafeLayer, match="header"):
        unpack_layer(io.BytesIO(buf.getvalue()), str(dest))


def test_tampered_blob_in_oci_archive(tmp_path, root):
    files = {}
    ib.oci_layout(files, [ib.TarBuilder().file("f", b"good").bytes()], "docker.io/t/amper:1")
    # replace a layer blob's content but keep its name
    layer_names = [n for n in files if n.startswith("blobs/") and files[n][:2] == b"\x1f\x8b"]
    files[layer_names[0]] = gzip.compress(ib.TarBuilder().file("f", b"evil").bytes())
    arc = str(tmp_path / "t.tar")
    with tarfile.open(arc, "w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    p = run_cli(root, "load", "-i", arc)
    assert p.returncode == 125 and b"digest mismatch" in p.stderr, p.stderr
    assert Engine(root).images() == []
    assert os.listdir(os.path.join(root, "blobs", "sha256")) == []


def test_wrong_diff_id_in_docker_archive(tmp_path, root):
    layer = ib.TarBuilder().file("f", b"x").bytes()
    cfg = ib.image_config([ib.sha(b"not the layer")])
    arc = str(tmp_path / "d.tar")
    ib.docker_archive(arc, [layer], ["wrong/diff:1"], config=cfg)
    p = run_cli(root, "load", "-i", arc)
    assert p.returncode == 125 and b"diff ID mismatch" in p.stderr
    assert Engine(root).images() == []


# ------------------------------------------------------------------- bad input

def _store_state(root):
    idx = open(os.path.join(root, "index.json"), "rb").read() if os.path.exists(os.path.join(root, "index.json")) else b""
    blobs = sorted(os.listdir(os.path.join(root, "blobs", "sha256"))) if os.path.isdir(os.path.join(root, "blobs", "sha256")) else []
    layers = sorted(n for n in os.listdir(os.path.join(root, "layers")) if not n.startswith(".")) \
        if os.path.isdir(os.path.join(root, "layers")) else []
    return idx, blobs, layers


@pytest.mark.parametrize("args,needle", [
    (["inspect", "nosuchimage"], "no such object: nosuchimage"),
    (["image", "inspect", "nosuchimage"], "no such image: nosuchimage"),
    (["history", "nosuch:tag"], "no such image: nosuch:tag"),
    (["rmi", "nosuch"], "no such image: nosuch:latest"),
    (["tag", "nosuch", "x:1"], "no such image: nosuch:latest"),
    (["tag", "keep/me:1", "UPPER/case"], "must be lowercase"),
    (["tag", "keep/me:1", "bad::tag"], "invalid reference format"),
    (["history", "a/b@sha256:1234"], "invalid reference format"),
    (["save", "-o", "/tmp/x.tar", "nosuch"], "no such image"),
    (["load", "-i", "/nonexistent/archive.tar"], "no such file or directory"),
    (["import", "/nonexistent/rootfs.tar"], "no such file or directory"),
    (["images", "--bogus-flag"], "unrecognized arguments: --bogus-flag"),
])
def test_bad_input_one_line_exit_125_store_unchanged(root, busybox_rootfs, args, needle):
    assert run_cli(root, "import", busybox_rootfs, "keep/me:1").returncode == 0
    before = _store_state(root)
    p = run_cli(root, *args)
    err = p.stderr.decode()
    assert p.returncode == 125, (p.returncode, err)
    assert needle in err, err
    assert err.startswith("nutshell: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2   # message + optional hint
    assert _store_state(root) == before


@pytest.mark.parametrize("content", [b"", b"not a tar at all" * 100, b"\x1f\x8b\x08garbage" * 10,
                                     "truncated", "no-manifest"])
def test_corrupt_archive_load(tmp_path, root, busybox_rootfs, content):
    assert run_cli(root, "import", busybox_rootfs, "keep/me:1").returncode == 0
    before = _store_state(root)
    arc = tmp_path / "bad.tar"
    if content == "truncated":
        ib.docker_archive(str(arc), [ib.TarBuilder().file("f", os.urandom(300_000)).bytes()], ["t/r:1"])
        data = arc.read_bytes()
        arc.write_bytes(data[: len(data) // 2])
    elif content == "no-manifest":
        with tarfile.open(arc, "w") as tf:
            ti = tarfile.TarInfo("hello.txt")
            ti.size = 5
            tf.addfile(ti, io.BytesIO(b"hello"))
    else:
        arc.write_bytes(content)
    p = run_cli(root, "load", "-i", str(arc))
    err = p.stderr.decode()
    assert p.returncode == 125 and err.startswith("nutshell: ") and err.count("\n") == 1, err
    assert _store_state(root) == before


def test_kill_9_during_load_leaves_no_half_state(tmp_path, root, busybox_rootfs):
    """A load killed mid-way: nothing visible; the next load works; gc sweeps the debris."""
    assert run_cli(root, "import", busybox_rootfs, "keep/me:1").returncode == 0
    before = _store_state(root)
    big = [ib.TarBuilder().file(f"f{i}", os.urandom(40 << 20)).bytes() for i in range(3)]
    arc = str(tmp_path / "big.tar")
    ib.docker_archive(arc, big, ["big/img:1"])
    import signal
    import time

    p = subprocess.Popen(NUTSHELL + ["--root", root, "load", "-i", arc], cwd=REPO,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # wait until it has started writing, then kill it hard
    deadline = time.time() + 20
    tmpdir = os.path.join(root, "tmp")
    while time.time() < deadline and not os.listdir(tmpdir):
        time.sleep(0.005)
    time.sleep(0.1)
    p.send_signal(signal.SIGKILL)
    p.wait()
    idx, _, _ = _store_state(root)
    assert idx == before[0]
    assert [i.repo_tags for i in Engine(root).images()] == [["docker.io/keep/me:1"]]
    p = run_cli(root, "load", "-i", arc)
    assert p.returncode == 0, p.stderr
    assert Engine(root).image("big/img:1")
    # debris from the killed process is collected
    assert run_cli(root, "rmi", "big/img:1").returncode == 0
    Engine(root).store.gc()
    assert _store_state(root) == before
    assert os.listdir(tmpdir) == []
    assert not [n for n in os.listdir(os.path.join(root, "layers")) if n.startswith(".")]
