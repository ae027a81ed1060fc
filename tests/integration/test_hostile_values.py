"""Names, values and image configs Docker refuses (issue 13, items 3 and 4): each is refused
at create or load with one clear line and exit code 125, nothing is stored, and no internal
error (a Python exception's name) reaches the user."""

from __future__ import annotations

import json
import os
import tarfile

import pytest

from tests import imagebuild as ib
from tests.runtime_root import IMAGE

pytestmark = pytest.mark.integration


def refused(p, *needles: str) -> str:
    err = p.stderr.strip()
    assert p.returncode == 125, (p.returncode, err)
    assert len(err.splitlines()) == 1, err
    assert "internal error" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def containers(rt) -> list[str]:
    return rt.cli("ps", "-a", "-q", "--no-trunc", check=True).stdout.split()


# ---- item 3: names and values -----------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--name", "web\n"], "Invalid container name (web\n)"),
    (["-h", "a\nb"], "invalid hostname format: a\nb"),
    (["-h=-leading"], "invalid hostname format"),
    (["--stop-signal", "FOO"], "Invalid signal: FOO"),
    (["--stop-signal", "SIGRTMIN+x"], "Invalid signal: SIGRTMIN+x"),
    (["-v", ":/x"], "invalid volume specification: ':/x'"),
    (["-v", ":/x:ro"], "invalid volume specification: ':/x:ro'"),
])
def test_create_refuses_what_docker_refuses_and_creates_nothing(rt, args, message):
    before = containers(rt)
    volumes = rt.cli("volume", "ls", "-q", check=True).stdout
    p = rt.cli("create", "--network", "none", *args, IMAGE, "true")
    assert p.returncode == 125, p.stderr
    assert message.split("\n")[0] in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr
    assert containers(rt) == before
    assert rt.cli("volume", "ls", "-q", check=True).stdout == volumes


@pytest.mark.parametrize("kind", ["volume", "network"])
def test_volume_and_network_names_with_a_trailing_newline_are_refused(rt, kind):
    try:
        p = rt.cli(kind, "create", "data\n")
        assert p.returncode == 125, p.stderr
        listed = rt.cli(kind, "ls", "-q", check=True).stdout.split("\n")
        assert "data" not in listed
    finally:
        rt.engine.network_reset()  # listing networks brings up the root's default bridge


def test_a_name_with_a_trailing_newline_cannot_rename_a_container(rt):
    cid = rt.cli("create", "--network", "none", IMAGE, "true", check=True).stdout.strip()
    try:
        p = rt.cli("rename", cid, "new\n")
        assert p.returncode != 0 and "Invalid container name" in p.stderr, p.stderr  # docker rename: 1
    finally:
        rt.cli("rm", "-f", cid)


def test_a_stop_signal_from_the_image_is_checked_at_create(rt, tmp_path):
    cfg = json.loads(json.dumps(rt.engine.store.image(IMAGE).config))
    cfg["config"]["StopSignal"] = "NOPE"
    archive = tmp_path / "img.tar"
    _archive_with_config(rt, archive, cfg, "hostile/stopsignal:1")
    rt.cli("load", "-i", str(archive), check=True)
    p = rt.cli("create", "--network", "none", "hostile/stopsignal:1", "true")
    assert p.returncode == 125 and "Invalid signal: NOPE" in p.stderr, p.stderr


# ---- item 4: image configs of the wrong type --------------------------------------------------


def _archive_with_config(rt, path, cfg: dict, tag: str) -> None:
    """A docker-archive of the test image's layers with ``cfg`` as its config."""
    img = rt.engine.store.image(IMAGE)
    out = str(path) + ".src"
    rt.cli("save", "-o", out, IMAGE, check=True)
    with tarfile.open(out) as src:
        manifest = json.load(src.extractfile("manifest.json"))
        layers = [src.extractfile(name).read() for name in manifest[0]["Layers"]]
    os.unlink(out)
    assert len(layers) == len(img.layers)
    ib.docker_archive(str(path), layers, [tag], config=cfg)


def test_a_string_entrypoint_is_one_argument_as_in_docker(rt, tmp_path):
    cfg = json.loads(json.dumps(rt.engine.store.image(IMAGE).config))
    cfg["config"]["Entrypoint"] = "echo"
    cfg["config"]["Cmd"] = "notalist"
    _archive_with_config(rt, tmp_path / "img.tar", cfg, "hostile/strslice:1")
    rt.cli("load", "-i", str(tmp_path / "img.tar"), check=True)
    p = rt.run("--rm", "hostile/strslice:1")
    # Docker runs ["echo", "notalist"]; splitting the strings ran "e" with "n" "o" ...
    assert p.returncode == 0 and p.stdout.strip() == "notalist", (p.returncode, p.stdout, p.stderr)


def _raw_archive(path, manifest: list, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tf:
        for name, data in {**files, "manifest.json": json.dumps(manifest).encode()}.items():
            ib._add(tf, name, data)


BAD_CONFIGS = {
    "config-not-object": lambda cfg: cfg.update(config=5),
    "diff-id-not-string": lambda cfg: cfg["rootfs"].update(diff_ids=[5]),
    "diff-id-a-path": lambda cfg: cfg["rootfs"].update(diff_ids=["sha256:../../../../etc"]),
    "env-not-list": lambda cfg: cfg["config"].update(Env="PATH=/bin"),
    "cmd-of-numbers": lambda cfg: cfg["config"].update(Cmd=[1, 2]),
    "labels-a-list": lambda cfg: cfg["config"].update(Labels=["a"]),
    "rootfs-a-string": lambda cfg: cfg.update(rootfs="layers"),
    "config-a-list": lambda cfg: cfg.clear() or None,
    # Docker decodes these as time.Time and []History; a bad one broke `images` for all
    "created-february-30": lambda cfg: cfg.update(created="2020-02-30T00:00:00Z"),
    "created-a-number": lambda cfg: cfg.update(created=1700000000),
    "created-full-width-digits": lambda cfg: cfg.update(created="\uff12020-01-01T00:00:00Z"),
    "history-not-a-list": lambda cfg: cfg.update(history={"created": "2020-01-01T00:00:00Z"}),
    "history-of-numbers": lambda cfg: cfg.update(history=[5]),
    "history-created-month-13": lambda cfg: cfg["history"][0].update(created="2020-13-01T00:00:00Z"),
    "history-created-by-a-list": lambda cfg: cfg["history"][0].update(created_by=["rm", "-rf"]),
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_load_refuses_a_config_of_the_wrong_shape_in_one_line(rt, tmp_path, name):
    os.makedirs(tmp_path / "empty")
    layer = ib.gnu_tar(str(tmp_path / "empty"))
    cfg = ib.image_config([ib.sha(layer)])
    BAD_CONFIGS[name](cfg)
    body = json.dumps(cfg if name != "config-a-list" else [1, 2]).encode()
    _raw_archive(tmp_path / "bad.tar", [{"Config": "c.json", "RepoTags": [f"hostile/{name}:1"],
                                         "Layers": ["l.tar"]}], {"c.json": body, "l.tar": layer})
    images = rt.cli("images", "-q", "--no-trunc", check=True).stdout
    refused(rt.cli("load", "-i", str(tmp_path / "bad.tar")))
    assert rt.cli("images", "-q", "--no-trunc", check=True).stdout == images
    assert not os.path.exists("/etc/layer.tar")


@pytest.mark.parametrize("entry", [
    {"Config": 5, "Layers": []},
    {"Config": "c.json", "Layers": "l.tar"},
    {"Config": "c.json", "Layers": [5]},
    {"Config": "c.json", "Layers": ["l.tar"], "RepoTags": "x:1"},
    {"Config": ["c.json"], "Layers": ["l.tar"]},
])
def test_load_refuses_a_manifest_entry_of_the_wrong_shape_in_one_line(rt, tmp_path, entry):
    os.makedirs(tmp_path / "empty")
    layer = ib.gnu_tar(str(tmp_path / "empty"))
    body = json.dumps(ib.image_config([ib.sha(layer)])).encode()
    _raw_archive(tmp_path / "bad.tar", [entry], {"c.json": body, "l.tar": layer})
    refused(rt.cli("load", "-i", str(tmp_path / "bad.tar")), "manifest.json")


def test_load_refuses_a_malformed_oci_index_in_one_line(rt, tmp_path):
    with tarfile.open(tmp_path / "oci.tar", "w") as tf:
        ib._add(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        ib._add(tf, "index.json", json.dumps({"schemaVersion": 2, "manifests": [5, "x"]}).encode())
    refused(rt.cli("load", "-i", str(tmp_path / "oci.tar")))


def test_cp_into_proc_sys_is_one_clear_line(rt, tmp_path):
    src = tmp_path / "file"
    src.write_text("x")
    cid = rt.run("-d", IMAGE, "sleep", "60", check=True).stdout.strip()
    try:
        p = rt.cli("cp", str(src), f"{cid}:/proc/sys/kernel/")
        assert p.returncode != 0
        err = p.stderr.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err and "FileNotFoundError" not in err, err
    finally:
        rt.cli("rm", "-f", cid)
