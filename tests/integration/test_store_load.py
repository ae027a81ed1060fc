"""Images built offline in every archive form, loaded, and the unpacked tree compared
with the source tree: paths, modes (setuid, sticky), owners, mtimes, link targets,
hardlink identity, device nodes, fifos, xattrs."""

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from core.engine import Engine
from tests import imagebuild as ib

pytestmark = pytest.mark.integration

NUTSHELL = [sys.executable, "-m", "workbench"]

# a valid VFS_CAP_REVISION_2 security.capability value: cap_net_bind_service effective+permitted
CAP_NET_BIND = (0x02000001).to_bytes(4, "little") + (1 << 10).to_bytes(4, "little") + bytes(12)


def run_cli(root, *args, input=None, check=False):
    p = subprocess.run(NUTSHELL + ["--root", root, *args], capture_output=True, input=input,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    if check and p.returncode != 0:
        raise AssertionError(f"{args}: rc={p.returncode} {p.stderr.decode()}")
    return p


@pytest.fixture(scope="module")
def rich_tree(tmp_path_factory, busybox_rootfs):
    """busybox rootfs + every kind of entry the unpacker must preserve."""
    d = str(tmp_path_factory.mktemp("rich") / "tree")
    shutil.copytree(busybox_rootfs, d, symlinks=True)
    os.makedirs(f"{d}/srv/data", exist_ok=True)
    with open(f"{d}/srv/data/setuid", "wb") as f:
        f.write(b"#!/bin/sh\necho hi\n")
    os.chmod(f"{d}/srv/data/setuid", 0o4755)
    with open(f"{d}/srv/data/setgid", "wb") as f:
        f.write(b"g")
    os.chmod(f"{d}/srv/data/setgid", 0o2750)
    os.makedirs(f"{d}/srv/sticky")
    os.chmod(f"{d}/srv/sticky", 0o1777)
    os.makedirs(f"{d}/srv/private")
    os.chmod(f"{d}/srv/private", 0o700)
    with open(f"{d}/srv/owned", "wb") as f:
        f.write(b"owned by 1000:100")
    os.chown(f"{d}/srv/owned", 1000, 100)
    os.link(f"{d}/srv/owned", f"{d}/srv/owned-hardlink")
    os.link(f"{d}/srv/owned", f"{d}/srv/data/owned-hardlink2")
    os.symlink("/etc/passwd", f"{d}/srv/abs-link")
    os.symlink("../etc/group", f"{d}/srv/rel-link")
    os.symlink("dangling-target", f"{d}/srv/dangling")
    os.mknod(f"{d}/srv/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(f"{d}/srv/blockdev", stat.S_IFBLK | 0o600, os.makedev(7, 0))
    os.mkfifo(f"{d}/srv/fifo", 0o640)
    with open(f"{d}/srv/xattrs", "wb") as f:
        f.write(b"x")
    os.setxattr(f"{d}/srv/xattrs", "user.colour", b"blue")
    os.setxattr(f"{d}/srv/xattrs", "trusted.nutshell", b"\x00\x01binary\xff")
    with open(f"{d}/srv/ping", "wb") as f:
        f.write(b"pretend binary")
    os.setxattr(f"{d}/srv/ping", "security.capability", CAP_NET_BIND)
    with open(f"{d}/srv/empty", "wb"):
        pass
    with open(f"{d}/srv/unicode-é漢字", "wb") as f:
        f.write(b"u")
    big = os.urandom(3 << 20)
    with open(f"{d}/srv/big.bin", "wb") as f:
        f.write(big)
    os.utime(f"{d}/srv/big.bin", (1_000_000_000, 1_000_000_000))
    os.utime(f"{d}/srv/private", (1_100_000_000, 1_100_000_000))
    os.utime(f"{d}/srv", (1_200_000_000, 1_200_000_000))
    return d


def _only_overlay_free(snap):
    return snap


@pytest.mark.parametrize("form", ["docker-legacy", "docker-25", "docker-gzip", "oci-gzip", "oci-zstd",
                                  "oci-plain", "gzipped-archive", "import-dir", "import-tar"])
def test_load_and_unpack_matches_source(tmp_path, root, rich_tree, form):
    layer = ib.gnu_tar(rich_tree)
    arc = str(tmp_path / "image.tar")
    eng = Engine(root)
    ref = "test/rich:1"
    if form == "docker-legacy":
        ib.docker_archive(arc, [layer], [ref], legacy=True)
    elif form == "docker-25":
        ib.docker_archive(arc, [layer], [ref], legacy=False)
    elif form == "docker-gzip":
        ib.docker_archive(arc, [layer], [ref], legacy=False, compression="gzip")
    elif form.startswith("oci-"):
        ib.oci_archive(arc, [layer], "docker.io/test/rich:1", compression=form[4:].replace("plain", "none"))
    elif form == "gzipped-archive":
        ib.docker_archive(arc, [layer], [ref], legacy=True)
        subprocess.run(["gzip", arc], check=True)
        arc += ".gz"
    if form == "import-dir":
        p = run_cli(root, "import", rich_tree, ref)
    elif form == "import-tar":
        with open(arc, "wb") as f:
            f.write(ib.compress(layer, "gzip"))
        p = run_cli(root, "import", arc, ref)
    else:
        p = run_cli(root, "load", "-i", arc)
        assert p.stdout.decode().strip() == "Loaded image: test/rich:1", p.stderr.decode()
    assert p.returncode == 0, p.stderr.decode()
    img = eng.image(ref)
    dirs = eng.image_layer_dirs(ref)
    assert len(dirs) == 1
    want = ib.snapshot(rich_tree)
    got = ib.snapshot(dirs[0])
    missing = set(want) - set(got)
    extra = set(got) - set(want)
    assert not missing and not extra, (sorted(missing)[:5], sorted(extra)[:5])
    diffs = {k: (want[k], got[k]) for k in want if want[k] != got[k]}
    if form == "import-dir":
        # the root dir entry is not part of a directory import
        diffs.pop(".", None)
    assert not diffs, list(diffs.items())[:5]
    # specific properties, stated plainly
    s = os.lstat(f"{dirs[0]}/srv/data/setuid")
    assert stat.S_IMODE(s.st_mode) == 0o4755
    assert stat.S_IMODE(os.lstat(f"{dirs[0]}/srv/sticky").st_mode) == 0o1777
    assert os.lstat(f"{dirs[0]}/srv/owned").st_uid == 1000
    assert os.lstat(f"{dirs[0]}/srv/owned").st_ino == os.lstat(f"{dirs[0]}/srv/data/owned-hardlink2").st_ino
    assert os.readlink(f"{dirs[0]}/srv/abs-link") == "/etc/passwd"
    assert os.lstat(f"{dirs[0]}/srv/null").st_rdev == os.makedev(1, 3)
    assert os.getxattr(f"{dirs[0]}/srv/ping", "security.capability") == CAP_NET_BIND
    assert os.getxattr(f"{dirs[0]}/srv/xattrs", "trusted.nutshell") == b"\x00\x01binary\xff"
    assert int(os.lstat(f"{dirs[0]}/srv/big.bin").st_mtime) == 1_000_000_000
    assert img.layers[0].unpacked


def test_multilayer_whiteouts_and_opaque_through_overlayfs(tmp_path, root):
    """Three layers with deletions, a replaced directory and an opaque directory: the union
    seen through a real overlayfs mount equals the expected tree."""
    l1 = (ib.TarBuilder().dir("etc").file("etc/keep", b"keep").file("etc/gone", b"gone")
          .dir("opt").dir("opt/app").file("opt/app/old1", b"1").file("opt/app/old2", b"2")
          .dir("var").dir("var/cache").file("var/cache/junk", b"j")
          .dir("tmp", mode=0o1777).symlink("lnk", "etc/keep").bytes())
    l2 = (ib.TarBuilder().dir("etc").file(".wh.nothing", b"").file("etc/.wh.gone", b"")
          .file("etc/new", b"new").dir("opt").dir("opt/app").file("opt/app/.wh..wh..opq", b"")
          .file("opt/app/fresh", b"fresh").file(".wh.lnk", b"")
          .file("tmp/upper-file", b"u")       # tmp has no entry of its own in this layer
          .bytes())
    l3 = (ib.TarBuilder().dir("var").file("var/.wh.cache", b"").dir("etc")
          .file("etc/keep", b"changed").bytes())
    arc = str(tmp_path / "multi.tar")
    ib.docker_archive(arc, [l1, l2, l3], ["test/multi:1"])
    assert run_cli(root, "load", "-i", arc).returncode == 0
    dirs = Engine(root).image_layer_dirs("test/multi:1")
    assert len(dirs) == 3
    # whiteouts are overlay char 0/0 devices, opaque is the trusted xattr
    wh = os.lstat(f"{dirs[1]}/etc/gone")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert os.getxattr(f"{dirs[1]}/opt/app", "trusted.overlay.opaque") == b"y"
    # the implicit tmp in layer 2 inherited the sticky 1777 from layer 1
    assert stat.S_IMODE(os.lstat(f"{dirs[1]}/tmp").st_mode) == 0o1777
    merged = tmp_path / "merged"
    merged.mkdir()
    lower = ":".join(reversed(dirs))
    # layers stored as images are this process's /proc/self/fd/N: mount keeps the numbers
    fds = [int(d.rsplit("/", 1)[1]) for d in dirs if d.startswith("/proc/self/fd/")]
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower}", str(merged)],
                   check=True, pass_fds=fds)
    try:
        seen = {}
        for dp, dn, fn in os.walk(merged):
            for n in dn + fn:
                full = os.path.join(dp, n)
                rel = os.path.relpath(full, merged)
                if os.path.islink(full):
                    seen[rel] = "->" + os.readlink(full)
                elif os.path.isdir(full):
                    seen[rel] = "dir"
                else:
                    seen[rel] = open(full, "rb").read()
        tmp_mode = stat.S_IMODE(os.stat(merged / "tmp").st_mode)
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    assert seen == {
        "etc": "dir", "etc/keep": b"changed", "etc/new": b"new",
        "opt": "dir", "opt/app": "dir", "opt/app/fresh": b"fresh",
        "var": "dir", "tmp": "dir", "tmp/upper-file": b"u",
    }
    assert tmp_mode == 0o1777


def test_layers_are_shared_between_images(tmp_path, root):
    base = ib.TarBuilder().dir("etc").file("etc/os", b"base").bytes()
    top_a = ib.TarBuilder().file("a", b"a").bytes()
    top_b = ib.TarBuilder().file("b", b"b").bytes()
    for name, layers in (("x/a:1", [base, top_a]), ("x/b:1", [base, top_b])):
        arc = str(tmp_path / (name.replace("/", "_") + ".tar"))
        ib.docker_archive(arc, layers, [name])
        assert run_cli(root, "load", "-i", arc).returncode == 0
    eng = Engine(root)
    da, db = ([eng.store.layer_path(c) for c in eng.store.image(n).chain_ids] for n in ("x/a:1", "x/b:1"))
    assert da[0] == db[0] and da[1] != db[1]
    assert len([n for n in os.listdir(os.path.join(root, "layers")) if not n.startswith(".")]) == 3
    # removing one image keeps the shared base
    assert run_cli(root, "rmi", "x/a:1").returncode == 0
    assert os.path.exists(db[0]) and os.path.exists(db[1]) and not os.path.exists(da[1])


def test_parallel_commands_never_lose_index_entries(root, tmp_path):
    arc = str(tmp_path / "img.tar")
    ib.docker_archive(arc, [ib.TarBuilder().file("f", b"1").bytes()], ["race/base:1"])
    assert run_cli(root, "load", "-i", arc).returncode == 0
    procs = [subprocess.Popen(NUTSHELL + ["--root", root, "tag", "race/base:1", f"race/t{i}:x"],
                              stderr=subprocess.PIPE) for i in range(12)]
    for p in procs:
        assert p.wait() == 0, p.stderr.read()
    with open(os.path.join(root, "index.json")) as f:
        idx = json.load(f)
    names = {m["annotations"]["org.opencontainers.image.ref.name"] for m in idx["manifests"]}
    assert names == {"docker.io/race/base:1"} | {f"docker.io/race/t{i}:x" for i in range(12)}


def test_save_round_trip_both_formats(tmp_path, root, busybox_rootfs):
    assert run_cli(root, "import", busybox_rootfs, "rt/bb:1", "-c", 'CMD ["sh"]').returncode == 0
    before = Engine(root).image("rt/bb:1")
    for fmt in ("docker", "oci"):
        out = str(tmp_path / f"out-{fmt}.tar")
        assert run_cli(root, "save", "--format", fmt, "-o", out, "rt/bb:1").returncode == 0
        other = str(tmp_path / f"other-{fmt}")
        p = run_cli(other, "load", "-i", out)
        assert p.returncode == 0, p.stderr
        assert p.stdout.decode().strip() == "Loaded image: rt/bb:1"
        after = Engine(other).image("rt/bb:1")
        assert after.id == before.id
        assert after.diff_ids == before.diff_ids
        assert after.config["config"]["Cmd"] == ["sh"]
        names = subprocess.run(["tar", "tf", out], capture_output=True, text=True).stdout.split()
        assert ("manifest.json" in names) == (fmt == "docker")
        assert "index.json" in names and "oci-layout" in names


def test_save_to_stdout_and_load_from_stdin(tmp_path, root, busybox_rootfs):
    assert run_cli(root, "import", busybox_rootfs, "pipe/bb:1").returncode == 0
    p = run_cli(root, "save", "pipe/bb:1")
    assert p.returncode == 0 and len(p.stdout) > 1_000_000
    other = str(tmp_path / "other")
    q = run_cli(other, "load", input=p.stdout)
    assert q.returncode == 0, q.stderr
    assert Engine(other).image("pipe/bb:1").id == Engine(root).image("pipe/bb:1").id


def test_tag_rmi_semantics(tmp_path, root, busybox_rootfs):
    assert run_cli(root, "import", busybox_rootfs, "sem/a:1").returncode == 0
    assert run_cli(root, "tag", "sem/a:1", "sem/b:2").returncode == 0
    img = Engine(root).image("sem/a:1")
    # by ID with two tags: refused without -f
    p = run_cli(root, "rmi", img.short_id)
    assert p.returncode == 125 and b"referenced in multiple repositories" in p.stderr
    assert p.stderr.count(b"\n") == 1
    p = run_cli(root, "rmi", "sem/a:1")
    assert p.returncode == 0 and p.stdout.decode().strip() == "Untagged: sem/a:1"
    assert Engine(root).image("sem/b:2").id == img.id
    p = run_cli(root, "rmi", "sem/b:2")
    assert p.returncode == 0
    assert f"Deleted: {img.id}" in p.stdout.decode()
    assert Engine(root).images() == []
    assert os.listdir(os.path.join(root, "blobs", "sha256")) == []
    assert [n for n in os.listdir(os.path.join(root, "layers")) if not n.startswith(".")] == []


def test_retag_leaves_old_image_dangling_and_prune_removes_it(tmp_path, root):
    for content in (b"one", b"two"):
        arc = str(tmp_path / "img.tar")
        ib.docker_archive(arc, [ib.TarBuilder().file("f", content).bytes()], ["move/me:latest"])
        assert run_cli(root, "load", "-i", arc).returncode == 0
    imgs = Engine(root).images()
    assert len(imgs) == 2
    assert sorted(len(i.repo_tags) for i in imgs) == [0, 1]
    out = run_cli(root, "images", "--format", "json").stdout.decode().splitlines()
    assert {json.loads(l)["Tag"] for l in out} == {"latest", "<none>"}
    assert run_cli(root, "image", "prune").returncode == 0
    assert [i.repo_tags for i in Engine(root).images()] == [["docker.io/move/me:latest"]]


def test_history_and_inspect(tmp_path, root):
    layers = [ib.TarBuilder().file("a", b"a" * 1000).bytes(), ib.TarBuilder().file("b", b"b").bytes()]
    cfg = ib.image_config([ib.sha(l) for l in layers], cmd=["/bin/true"], history=[
        {"created": "2024-01-01T00:00:00Z", "created_by": "ADD a /"},
        {"created": "2024-01-02T00:00:00Z", "created_by": "ENV X=1", "empty_layer": True},
        {"created": "2024-01-03T00:00:00Z", "created_by": "ADD b /", "comment": "last"},
    ])
    arc = str(tmp_path / "h.tar")
    ib.docker_archive(arc, layers, ["hist/img:1"], config=cfg)
    assert run_cli(root, "load", "-i", arc).returncode == 0
    p = run_cli(root, "history", "--format", "json", "hist/img:1")
    rows = [json.loads(l) for l in p.stdout.decode().splitlines()]
    assert [r["CreatedBy"] for r in rows] == ["ADD b /", "ENV X=1", "ADD a /"]
    assert rows[1]["Size"] == "0B" and rows[0]["Comment"] == "last"
    assert rows[0]["ID"] != "<missing>" and rows[1]["ID"] == "<missing>"
    p = run_cli(root, "inspect", "hist/img:1")
    obj = json.loads(p.stdout)
    assert obj[0]["Config"]["Cmd"] == ["/bin/true"]
    assert obj[0]["RootFS"]["Layers"] == [ib.sha(l) for l in layers]
    assert obj[0]["RepoTags"] == ["hist/img:1"]
    p = run_cli(root, "inspect", "--format", "{{.Os}}/{{.Architecture}} {{json .Config.Cmd}}", "hist/img:1")
    assert p.stdout.decode().strip() == 'linux/amd64 ["/bin/true"]'


def test_system_df_counts_images(root, busybox_rootfs):
    assert run_cli(root, "import", busybox_rootfs, "df/bb:1").returncode == 0
    p = run_cli(root, "system", "df", "--format", "json")
    rows = {json.loads(l)["Type"]: json.loads(l) for l in p.stdout.decode().splitlines()}
    assert rows["Images"]["TotalCount"] == 1
    assert rows["Images"]["Size"].endswith("MB")


def test_image_prune_filters(tmp_path, root):
    src = tmp_path / "tree"
    src.mkdir()
    (src / "f").write_bytes(b"x")
    for ref, change in (("pr/a:1", "LABEL team=a"), ("pr/b:1", "LABEL team=b"),
                        ("pr/c:1", "ENV X=1")):
        (src / "f").write_bytes(ref.encode())  # a distinct image each
        run_cli(root, "import", str(src), ref, "-c", change, check=True)
    tags = lambda: sorted(t for i in Engine(root).images() for t in i.repo_tags)  # noqa: E731
    p = run_cli(root, "image", "prune", "-a", "-f", "--filter", "until=1h", check=True)
    assert tags() == ["docker.io/pr/a:1", "docker.io/pr/b:1", "docker.io/pr/c:1"], p.stdout
    run_cli(root, "image", "prune", "-a", "-f", "--filter", "label=team=a", check=True)
    assert tags() == ["docker.io/pr/b:1", "docker.io/pr/c:1"]
    run_cli(root, "image", "prune", "-a", "-f", "--filter", "label!=team", check=True)
    assert tags() == ["docker.io/pr/b:1"]
    p = run_cli(root, "image", "prune", "-a", "-f", "--filter", "dangling=false")
    assert p.returncode == 125 and b"invalid filter 'dangling'" in p.stderr
    assert tags() == ["docker.io/pr/b:1"]
