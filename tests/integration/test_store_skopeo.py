"""Interop with a real peer: skopeo reads and writes the store, and reads our archives."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from core.engine import Engine
from tests import imagebuild as ib

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo not installed")]

NUTSHELL = [sys.executable, "-m", "workbench"]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def cli(root, *args):
    return subprocess.run(NUTSHELL + ["--root", root, *args], capture_output=True, text=True, cwd=REPO)


def skopeo(*args):
    p = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_skopeo_copies_into_the_store_and_nutshell_unpacks_it(tmp_path, root, busybox_rootfs):
    layer = ib.gnu_tar(busybox_rootfs)
    top = ib.TarBuilder().dir("etc").file("etc/motd", b"hello from skopeo\n").bytes()
    arc = str(tmp_path / "src.tar")
    ib.docker_archive(arc, [layer, top], ["src/img:1"])
    Engine(root).store.ensure()  # an existing (empty) store
    skopeo("copy", f"docker-archive:{arc}", f"oci:{root}:docker.io/library/fromskopeo:1")
    p = cli(root, "images", "--format", "json")
    rows = [json.loads(l) for l in p.stdout.splitlines()]
    assert [(r["Repository"], r["Tag"]) for r in rows] == [("fromskopeo", "1")]
    dirs = Engine(root).image_layer_dirs("fromskopeo:1")
    assert len(dirs) == 2
    assert open(os.path.join(dirs[1], "etc/motd")).read() == "hello from skopeo\n"
    assert ib.snapshot(dirs[0]) == ib.snapshot(busybox_rootfs)
    # and a second copy beside ours does not disturb what we had
    cli(root, "tag", "fromskopeo:1", "mine:2")
    skopeo("copy", f"docker-archive:{arc}", f"oci:{root}:docker.io/library/again:1")
    names = {(r["Repository"], r["Tag"]) for r in map(json.loads, cli(root, "images", "--format", "json").stdout.splitlines())}
    assert names == {("fromskopeo", "1"), ("mine", "2"), ("again", "1")}


def test_skopeo_reads_the_store_and_our_archives(tmp_path, root, busybox_rootfs):
    assert cli(root, "import", busybox_rootfs, "peer/bb:1", "-c", 'CMD ["sh"]').returncode == 0
    img = Engine(root).image("peer/bb:1")
    info = json.loads(skopeo("inspect", f"oci:{root}:docker.io/peer/bb:1"))
    assert info["Digest"] == img.manifest_digest
    assert info["Layers"] == [l.digest for l in img.layers]
    cfg = json.loads(skopeo("inspect", "--config", f"oci:{root}:docker.io/peer/bb:1"))
    assert cfg["config"]["Cmd"] == ["sh"]
    # copy out of our store with skopeo into a plain directory: blobs verify
    out = str(tmp_path / "dirout")
    skopeo("copy", f"oci:{root}:docker.io/peer/bb:1", f"dir:{out}")
    assert os.path.exists(os.path.join(out, img.layers[0].digest.split(":")[1]))
    # our archives, both formats
    for fmt, transport in (("docker", "docker-archive"), ("oci", "oci-archive")):
        arc = str(tmp_path / f"save-{fmt}.tar")
        assert cli(root, "save", "--format", fmt, "-o", arc, "peer/bb:1").returncode == 0
        target = f"{transport}:{arc}" if fmt == "docker" else f"{transport}:{arc}:docker.io/peer/bb:1"
        info = json.loads(skopeo("inspect", target))
        assert info["Layers"][0] in (img.layers[0].digest, img.diff_ids[0])
        cfg = json.loads(skopeo("inspect", "--config", target))
        assert cfg["rootfs"]["diff_ids"] == img.diff_ids
