"""Interop with skopeo (containers/image): each side reads what the other pushed, and the
digests agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.registry_servers import (
    SKOPEO_BIN,
    make_image,
    needs_skopeo,
    sha256,
    skopeo_copy,
    tar_from_dict,
    unique_repo,
    write_oci_layout,
)

pytestmark = [pytest.mark.integration, pytest.mark.registry, needs_skopeo]


def skopeo_inspect_raw(ref: str) -> bytes:
    env = dict(os.environ, XDG_RUNTIME_DIR=os.environ.get("XDG_RUNTIME_DIR", "/tmp"))
    return subprocess.run([SKOPEO_BIN, "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                          capture_output=True, check=True, env=env, timeout=60).stdout


def test_skopeo_docker_archive_pushed_pulled_by_nutshell(engine, registry, busybox_layer_tar, tmp_path):
    """skopeo builds a docker-archive (recompressing layers itself) and pushes it."""
    im = make_image([busybox_layer_tar, tar_from_dict({"etc/": None, "etc/os-release": "ID=test\n"})],
                    compression="none")
    layout = write_oci_layout(str(tmp_path / "oci"), [im], "v1")
    archive = str(tmp_path / "image.tar")
    ref = f"{registry.host}/{unique_repo('archive')}:v1"
    for src, dst in ((f"oci:{layout}:v1", f"docker-archive:{archive}:test/archive:v1"),
                     (f"docker-archive:{archive}", f"docker://{ref}")):
        p = subprocess.run([SKOPEO_BIN, "--insecure-policy", "copy", "-q", "--dest-tls-verify=false",
                            src, dst], capture_output=True, text=True,
                           env=dict(os.environ, XDG_RUNTIME_DIR="/tmp"), timeout=120)
        assert p.returncode == 0, p.stderr
    raw = skopeo_inspect_raw(ref)
    img = engine.pull(ref)
    assert img.manifest_digest == sha256(raw)
    assert img.diff_ids == json.loads(im.config)["rootfs"]["diff_ids"]  # same content
    merged = engine.image_layer_dirs(ref)       # readable here (a layer image is mounted)
    assert os.path.exists(os.path.join(merged[0], "bin/busybox"))
    with open(os.path.join(merged[1], "etc/os-release")) as f:
        assert f.read() == "ID=test\n"


def test_nutshell_pushed_copied_back_by_skopeo(engine, registry, busybox_layer_tar, tmp_path):
    im = make_image([busybox_layer_tar, tar_from_dict({"app/": None, "app/run.sh": "#!/bin/sh\necho hi\n"})],
                    compression=["gzip", "zstd"])
    src = f"{registry.host}/{unique_repo('interop-src')}:v1"
    layout = write_oci_layout(str(tmp_path / "oci"), [im], "v1")
    skopeo_copy(f"oci:{layout}:v1", f"docker://{src}")
    img = engine.pull(src)
    dst = f"{registry.host}/{unique_repo('interop-dst')}:v2"
    digest = engine.push(src, dst)
    assert digest == img.manifest_digest == im.digest

    raw = skopeo_inspect_raw(dst)
    assert sha256(raw) == digest
    out = str(tmp_path / "back")
    skopeo_copy(f"docker://{dst}", f"oci:{out}:v2")
    with open(os.path.join(out, "index.json")) as f:
        top = json.load(f)["manifests"][0]
    assert top["digest"] == digest
    with open(os.path.join(out, "blobs", "sha256", digest.split(":")[1]), "rb") as f:
        back = json.loads(f.read())
    assert [x["digest"] for x in back["layers"]] == [x["digest"] for x in im.layers]
    assert back["config"]["digest"] == img.id


def test_skopeo_pushed_image_runs(registry, busybox_layer_tar, tmp_path, root, registry_env):
    """``nutshell run`` of an image that is not stored pulls it (``--pull missing``) and runs it."""
    im = make_image([busybox_layer_tar], cmd=["/bin/sh", "-c", "echo default-cmd"])
    ref = f"{registry.host}/{unique_repo('run')}:v1"
    layout = write_oci_layout(str(tmp_path / "oci"), [im], "v1")
    skopeo_copy(f"oci:{layout}:v1", f"docker://{ref}")
    env = dict(os.environ, **registry_env, NUTSHELL_ROOT=root, PYTHONPATH=os.getcwd())

    def nutshell(*args):
        return subprocess.run([sys.executable, "-m", "workbench", *args], env=env, capture_output=True,
                              text=True, timeout=120)
    p = nutshell("run", "--rm", "--network", "none", "--pull", "never", ref, "true")
    assert p.returncode == 125 and "no such image" in p.stderr.lower()
    p = nutshell("run", "--rm", "--network", "none", ref, "/bin/echo", "hello from the registry")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hello from the registry\n"
    assert "Pull complete" in p.stderr  # the implicit pull reported on stderr
    p = nutshell("run", "--rm", "--network", "none", ref)
    assert (p.returncode, p.stdout) == (0, "default-cmd\n")
    p = nutshell("images", "--format", "json")
    assert im.config_digest.split(":")[1][:12] in p.stdout
