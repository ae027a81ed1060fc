"""commit and diff on real containers: the change set, a fresh container of the new image,
a second implementation (skopeo + umoci) agreeing on the tree, push/pull round trip,
pausing, --change, zstd."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from core.fs.rootview import container_view, image_view
from tests.imagebuild import snapshot
from tests.runtime_root import image_root
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

IMAGE = "nutshell-lt/busybox:1"
NUTSHELL = [sys.executable, "-m", "workbench"]

# what a script does to the container; the expected `diff` follows
CHANGES = r"""
set -e
echo new > /new.txt
echo extra >> /etc/passwd
rm /bin/vi
rm -rf /home/app && mkdir -p /home/app/sub && echo mine > /home/app/sub/f
mkdir -p /opt/data && echo 1 > /opt/data/one && ln /opt/data/one /opt/data/two
ln -s /opt/data/one /opt/link
chmod 4755 /opt/data/one
chown 1000:100 /new.txt
echo vol > /vol/in-volume
"""
EXPECTED_DIFF = {
    "/bin": "C", "/bin/vi": "D", "/etc": "C", "/etc/passwd": "C", "/home": "C",
    "/home/app": "C", "/home/app/sub": "A", "/home/app/sub/f": "A", "/new.txt": "A",
    "/opt": "A", "/opt/data": "A", "/opt/data/one": "A", "/opt/data/two": "A", "/opt/link": "A",
}


class LT:
    def __init__(self, root: str):
        from core.engine import Engine

        self.root = root
        self.engine = Engine(root)

    def cli(self, *args, input=None, check=True, timeout=120) -> subprocess.CompletedProcess:
        p = subprocess.run(NUTSHELL + ["--root", self.root, *args], input=input,
                           capture_output=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"nutshell {' '.join(args)} -> {p.returncode}\n{p.stderr.decode()}")
        return p

    def run(self, *args, **kw) -> str:
        return self.cli("run", "--network", "none", *args, **kw).stdout.decode()


def leftovers(lt: LT, ids: list[str]) -> list[str]:
    out = []
    for cid in ids:
        for p in (lt.engine.paths.container(cid), lt.engine.paths.run_container(cid)):
            if os.path.exists(p):
                out.append(p)
        out += glob.glob(f"/sys/fs/cgroup/*/nutshell/{cid}")
    with open("/proc/self/mountinfo") as f:
        out += [ln.split()[4] for ln in f if lt.root in ln]
    return out


@contextlib.contextmanager
def lt_root(tmp_path_factory, busybox_rootfs, name: str, volumes: bool = False):
    """A state root with IMAGE for one test module; afterwards every container (and with
    ``volumes`` every volume) is removed and nothing of them may be left."""
    r = image_root(LT, tmp_path_factory.mktemp(name), busybox_rootfs, IMAGE)
    yield r
    ids = [c["Id"] for c in r.engine.ps(all=True)]
    for cid in ids:
        r.engine.rm(cid, force=True, volumes=True)
    if volumes:
        for v in r.engine.volumes():
            r.engine.volume_rm(v["Name"])
    left = leftovers(r, ids)
    assert not left, f"left behind: {left}"
    if volumes:
        assert r.engine.volumes() == []


@pytest.fixture(scope="module")
def lt(tmp_path_factory, busybox_rootfs):
    with lt_root(tmp_path_factory, busybox_rootfs, "lt-commit") as r:
        yield r


@pytest.fixture(scope="module")
def changed(lt):
    """A stopped container with every kind of change, committed once."""
    lt.run("--name", "changed", "-v", "/vol", IMAGE, "sh", "-c", CHANGES)
    img = lt.engine.commit("changed", "nutshell-lt/changed:1", message="all kinds")
    return img


def tree_of_container(lt: LT, ref: str) -> dict:
    with container_view(lt.engine, ref, live=False) as v:
        return snapshot(f"/proc/self/fd/{v.rootfd}")


def tree_of_image(lt: LT, ref: str) -> dict:
    with image_view(lt.engine, lt.engine.image(ref)) as fd:
        return snapshot(f"/proc/self/fd/{fd}")


def test_diff_lists_every_change(lt, changed):
    got = lt.cli("diff", "changed").stdout.decode().splitlines()
    assert {ln[2:]: ln[0] for ln in got} == EXPECTED_DIFF
    assert got == sorted(got, key=lambda ln: ln[2:])
    assert lt.engine.container_diff("changed") == [
        {"Path": p, "Kind": {"C": 0, "A": 1, "D": 2}[k]} for p, k in sorted(EXPECTED_DIFF.items())]


def test_committed_image_is_the_containers_tree(lt, changed):
    before = tree_of_container(lt, "changed")
    after = tree_of_image(lt, "nutshell-lt/changed:1")
    # mount targets the runtime made (the anonymous volume's, /etc/hosts when the image
    # has none) are not changes: they are not committed
    cid = lt.engine.container("changed")
    with open(os.path.join(lt.engine.paths.container(cid), "mountpoints")) as f:
        made = f.read().split()
    assert "vol" in made
    for rel in made:
        assert rel in before and rel not in after
        del before[rel]
    assert after == before
    base = tree_of_image(lt, IMAGE)
    assert "bin/vi" in base and "bin/vi" not in after
    assert after["opt/data/one"][1] == 0o4755 and after["new.txt"][2:4] == (1000, 100)
    assert after["opt/data/two"][-1] == "opt/data/one"      # hardlink group kept
    assert after["opt/link"][-1] == "/opt/data/one"
    assert "home/app/sub/f" in after and after["home/app"][2] == 0


def test_fresh_container_of_the_commit_sees_the_changes(lt, changed):
    out = lt.run("--rm", "nutshell-lt/changed:1", "sh", "-c",
                 "cat /new.txt; tail -1 /etc/passwd; ls /bin/vi 2>&1; ls /home/app; "
                 "stat -c '%i %h' /opt/data/one /opt/data/two; ls -A /vol | wc -l; "
                 "stat -c '%u:%g %a' /new.txt /opt/data/one")
    lines = out.splitlines()
    assert lines[0] == "new" and lines[1] == "extra"
    assert "No such file" in lines[2] and lines[3] == "sub"
    ino1, ino2 = lines[4].split(), lines[5].split()
    assert ino1 == ino2 and ino1[1] == "2"
    # -v /vol is in the container's Volumes, so (as with Docker) in the image's: a fresh,
    # empty anonymous volume; what the first container wrote there stayed in its volume
    assert lines[6] == "0" and changed.config["config"]["Volumes"] == {"/vol": {}}
    assert lines[7:] == ["1000:100 644", "0:0 4755"]
    # the new container's own diff is empty: it starts from exactly that tree
    cid = lt.run("-d", "nutshell-lt/changed:1", "sleep", "30").strip()
    try:
        assert lt.engine.container_diff(cid) == []
    finally:
        lt.engine.rm(cid, force=True)


def test_history_config_and_layers(lt, changed):
    base = lt.engine.image(IMAGE)
    assert changed.diff_ids[:-1] == base.diff_ids and len(changed.diff_ids) == 2
    last = changed.config["history"][-1]
    assert last["comment"] == "all kinds" and last["created_by"].startswith("sh -c")
    assert changed.config["config"]["Cmd"] == ["sh", "-c", CHANGES]     # Docker: the container's
    assert "HOSTNAME" not in json.dumps(changed.config["config"].get("Env"))
    assert changed.manifest["layers"][-1]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    hist = json.loads(lt.cli("history", "--format", "json", "nutshell-lt/changed:1").stdout.decode()
                      .splitlines()[0])
    assert "sh -c" in json.dumps(hist)


@pytest.mark.skipif(not (shutil.which("skopeo") and shutil.which("umoci")),
                    reason="skopeo and umoci are needed")
def test_umoci_unpacks_the_same_tree(lt, changed, tmp_path):
    layout = str(tmp_path / "oci")
    p = subprocess.run(["skopeo", "--insecure-policy", "copy",
                        f"oci:{lt.root}:docker.io/nutshell-lt/changed:1", f"oci:{layout}:x"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    bundle = str(tmp_path / "bundle")
    p = subprocess.run(["umoci", "unpack", "--image", f"{layout}:x", bundle],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    theirs = snapshot(os.path.join(bundle, "rootfs"))
    ours = tree_of_image(lt, "nutshell-lt/changed:1")
    assert theirs.keys() == ours.keys()
    diffs = {k: (ours[k], theirs[k]) for k in ours if ours[k] != theirs[k]}
    assert not diffs


def test_commit_pauses_a_running_container_and_thaws_it(lt):
    from core.runtime import cgroups

    # written with a rename, so a frozen snapshot always holds a whole number
    cid = lt.run("-d", IMAGE, "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /c.tmp; "
                 "mv /c.tmp /counter; usleep 10000; done").strip()
    try:
        # the image must hold a counter: let the loop write its first one
        wait_for(lambda: lt.cli("exec", cid, "test", "-e", "/counter", check=False).returncode == 0,
                 what="the container's first /counter")
        states = []

        def progress(ev):
            if ev.action == "Written":
                cg = cgroups.Cgroup.open(f"nutshell/{cid}")
                states.append(cg.is_frozen())

        img = lt.engine.commit(cid, "nutshell-lt/paused:1", progress=progress)
        assert states == [True]
        cg = cgroups.Cgroup.open(f"nutshell/{cid}")
        assert not cg.is_frozen()
        c1 = lt.cli("exec", cid, "cat", "/counter").stdout
        import time

        time.sleep(0.3)
        assert lt.cli("exec", cid, "cat", "/counter").stdout != c1      # still counting
        states.clear()
        lt.engine.commit(cid, "nutshell-lt/paused:2", pause=False, progress=progress)
        assert states == [False]
        out = lt.run("--rm", "nutshell-lt/paused:1", "cat", "/counter")
        assert int(out) > 0 and img.config["config"]["Cmd"] == ["sh", "-c", lt.engine.container_inspect(cid)["Args"][1]]
    finally:
        lt.engine.rm(cid, force=True)


def test_commit_thaws_even_when_writing_the_layer_fails(lt, monkeypatch):
    from core.runtime import cgroups
    from core.store import commit as cm

    cid = lt.run("-d", IMAGE, "sleep", "600").strip()
    try:
        seen = []

        def broken(store, path, **kw):
            seen.append(cgroups.Cgroup.open(f"nutshell/{cid}").is_frozen())
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(cm, "write_layer", broken)
        n = len(lt.engine.images())
        with pytest.raises(OSError):
            lt.engine.commit(cid, "nutshell-lt/broken:1")
        assert seen == [True]
        assert not cgroups.Cgroup.open(f"nutshell/{cid}").is_frozen()
        assert lt.engine.container_state(cid)["Status"] == "running"
        assert len(lt.engine.images()) == n
        assert lt.cli("exec", cid, "echo", "alive").stdout == b"alive\n"
    finally:
        lt.engine.rm(cid, force=True)


def test_changes_message_author_zstd(lt):
    lt.run("--name", "cz", IMAGE, "sh", "-c", "echo z > /z")
    out = lt.cli("commit", "-q", "-m", "zstd one", "-a", "Tester <t@example.com>",
                 "-c", "ENV FOO=bar", "-c", 'CMD ["sh", "-c", "echo $FOO; cat /z"]',
                 "-c", "LABEL org.example=1", "--compression", "zstd", "cz", "nutshell-lt/cz:1")
    img_id = out.stdout.decode().strip()
    assert img_id.startswith("sha256:") and len(img_id) == 71
    img = lt.engine.image("nutshell-lt/cz:1")
    assert img.id == img_id
    assert img.config["author"] == "Tester <t@example.com>"
    assert img.config["history"][-1]["author"] == "Tester <t@example.com>"
    assert img.config["config"]["Labels"] == {"org.example": "1"}
    assert img.manifest["layers"][-1]["mediaType"].endswith("+zstd")
    assert lt.run("--rm", "nutshell-lt/cz:1").splitlines() == ["bar", "z"]


def test_bad_input(lt):
    p = lt.cli("commit", "nope-not-a-container", check=False)
    assert p.returncode != 0 and b"No such container" in p.stderr
    lt.run("--name", "cbad", IMAGE, "true")
    p = lt.cli("commit", "-c", "RUN rm -rf /", "cbad", check=False)
    assert p.returncode == 125 and b"invalid --change" in p.stderr
    p = lt.cli("commit", "cbad", "Bad:Ref", check=False)
    assert p.returncode == 125
    n = len(lt.engine.images())
    assert not any("cbad" in t for i in lt.engine.images() for t in i.repo_tags)
    assert len(lt.engine.images()) == n


@pytest.mark.registry
def test_commit_push_pull_into_an_empty_store_run(lt, changed, tmp_path, monkeypatch):
    from tests.registry_servers import REGISTRY_BIN, RegistryServer, new_engine, unique_repo

    if not os.path.exists(REGISTRY_BIN):
        pytest.skip("docker-registry is not installed")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dc"))
    monkeypatch.setenv("NUTSHELL_CONFIG_DIR", str(tmp_path / "nc"))
    os.makedirs(tmp_path / "dc")
    os.makedirs(tmp_path / "nc")
    srv = RegistryServer("anonymous").start()
    try:
        dest = f"{srv.host}/{unique_repo('commit')}:v1"
        src_engine = new_engine(lt.root)
        digest = src_engine.push("nutshell-lt/changed:1", dest)
        assert digest == changed.manifest_digest
        cold_root = str(tmp_path / "cold")
        os.makedirs(cold_root)
        cold = LT(cold_root)
        cold.engine = new_engine(cold_root)
        pulled = cold.engine.pull(dest)
        assert pulled.id == changed.id and pulled.diff_ids == changed.diff_ids
        assert tree_of_image(cold, dest) == tree_of_image(lt, "nutshell-lt/changed:1")
        out = cold.run("--rm", dest, "sh", "-c", "cat /new.txt; ls /bin/vi 2>&1; cat /home/app/sub/f")
        assert out.splitlines()[0] == "new" and "No such file" in out and out.endswith("mine\n")
        assert not cold.engine.ps(all=True)
    finally:
        srv.stop()
