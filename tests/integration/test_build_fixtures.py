"""Real builds of every fixture in tests/fixtures/build/, checked against its expected.json.

The base image is made offline from the host's busybox-static. The built image is read
back with GNU tar (a second implementation, not our unpacker): its layers are extracted
in order into a directory whose files, owners, modes and links are compared with the
fixture's expectations; the config is compared key by key. One test also runs a built
image through the CLI (``nutshell run --rm``).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess

import pytest

from core.dockerfile.builder import BuildOptions
from core.dockerfile.parser import DockerfileSyntaxError
from core.engine import Engine

pytestmark = pytest.mark.integration

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "build")
BASE = "localhost/busybox:latest"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# --------------------------------------------------------------------------- helpers
# (also imported by the other test_build_*.py modules)

def make_engine(root: str, busybox_rootfs: str) -> Engine:
    """An engine on ``root`` holding the offline busybox base image."""
    engine = Engine(root=root)
    engine.import_image(busybox_rootfs, BASE, changes=['CMD ["sh"]', f"ENV {PATH_ENV}"])
    return engine


def built_on(root: str, busybox_rootfs: str, state_clean: bool = True):
    """``make_engine`` for a fixture (``yield from``); afterwards no build may have left
    a container behind, and with ``state_clean`` no container or build directory."""
    eng = make_engine(root, busybox_rootfs)
    yield eng
    assert not eng.ps(all=True), "a build left a container behind"
    if state_clean:
        assert not [d for d in os.listdir(eng.paths.containers) if not d.startswith(".")]
        assert not [d for d in os.listdir(eng.paths.tmp) if d.startswith("build-")]


def collect():
    events = []
    return events, events.append


def steps_by_state(events) -> tuple[list[str], list[str]]:
    """(instructions that were CACHED, instructions that ran), from a build's events."""
    text = {e.id: e.message for e in events if e.action == "Step"}
    cached = [e.id for e in events if e.action == "CACHED"]
    ran = [i for i in text if i not in cached]
    return [text[i] for i in cached], [text[i] for i in ran]


def extract_image(engine: Engine, ref: str, dest: str) -> dict:
    """Extract ``ref``'s layers with GNU tar into ``dest`` (whiteouts applied); returns
    the image config."""
    img = engine.image(ref)
    os.makedirs(dest, exist_ok=True)
    for layer in img.layers:
        blob = engine.store.blob_path(layer.digest)
        names = subprocess.run(["tar", "-tf", blob], check=True, capture_output=True,
                               text=True).stdout.splitlines()
        for name in names:
            base = os.path.basename(name.rstrip("/"))
            parent = os.path.dirname(name.rstrip("/"))
            if base == ".wh..wh..opq":
                target = os.path.join(dest, parent)
                for child in os.listdir(target):
                    p = os.path.join(target, child)
                    shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)
            elif base.startswith(".wh."):
                p = os.path.join(dest, parent, base[4:])
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p)
                elif os.path.lexists(p):
                    os.unlink(p)
        subprocess.run(["tar", "-x", "--numeric-owner", "--same-owner", "-p", "-f", blob,
                        "-C", dest, "--wildcards", "--exclude=.wh.*", "--exclude=*/.wh.*"],
                       check=True, capture_output=True)
    return img.config


def check_files(tree: str, files: dict, absent: list[str]) -> None:
    for path, want in files.items():
        full = os.path.join(tree, path.lstrip("/"))
        assert os.path.lexists(full), f"{path} is missing from the image"
        st = os.lstat(full)
        kind = {"file": stat.S_ISREG, "dir": stat.S_ISDIR, "symlink": stat.S_ISLNK}[want.get("type", "file")]
        assert kind(st.st_mode), f"{path} is not a {want.get('type')}"
        if "content" in want:
            with open(full, encoding="utf-8") as f:
                assert f.read() == want["content"], path
        if "uid" in want:
            assert st.st_uid == want["uid"], f"{path} uid {st.st_uid}"
        if "gid" in want:
            assert st.st_gid == want["gid"], f"{path} gid {st.st_gid}"
        if "mode" in want:
            assert stat.S_IMODE(st.st_mode) == int(want["mode"], 8), f"{path} mode {oct(st.st_mode)}"
        if "target" in want:
            assert os.readlink(full) == want["target"], path
    for path in absent:
        assert not os.path.lexists(os.path.join(tree, path.lstrip("/"))), f"{path} should not exist"


def check_config(config: dict, want: dict, not_in_env: list[str]) -> None:
    cfg = config.get("config") or {}
    env = dict(e.split("=", 1) for e in cfg.get("Env") or [])
    for key, value in want.items():
        if key == "Env":
            for k, v in value.items():
                assert env.get(k) == v, f"Env {k}={env.get(k)!r}, want {v!r}"
        elif key == "Labels":
            for k, v in value.items():
                assert (cfg.get("Labels") or {}).get(k) == v, f"label {k}"
        elif key in ("ExposedPorts", "Volumes"):
            assert sorted(cfg.get(key) or {}) == sorted(value), key
        else:
            assert cfg.get(key) == value, f"{key}: {cfg.get(key)!r} != {value!r}"
    for name in not_in_env:
        assert name not in env, f"{name} leaked into the image ENV"


def _cases():
    out = []
    for name in sorted(os.listdir(FIXTURES)):
        path = os.path.join(FIXTURES, name, "expected.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            doc = json.load(f)
        for case in doc["cases"]:
            out.append(pytest.param(name, case, id=f"{name}-{case['name']}"))
    return out


# --------------------------------------------------------------------------- tests

@pytest.fixture(scope="module")
def engine(tmp_path_factory, busybox_rootfs):
    root = str(tmp_path_factory.mktemp("build-fixtures") / "root")
    yield from built_on(root, busybox_rootfs, state_clean=False)


@pytest.mark.parametrize("fixture,case", _cases())
def test_fixture(engine, tmp_path, fixture, case):
    context = os.path.join(FIXTURES, fixture)
    tag = f"localhost/fixture-{fixture}:{case['name']}"
    options = BuildOptions(context=context, tags=[tag],
                           build_args={"BASE": BASE, **case.get("build_args", {})},
                           target=case.get("target"))
    events, progress = collect()
    if "error" in case:
        with pytest.raises(DockerfileSyntaxError) as err:
            engine.build(options, progress)
        assert str(err.value) == case["error"]
        if "hint" in case:
            assert err.value.hint == case["hint"]
        assert not any(e.action == "Step" for e in events), "a step ran before the error"
        return
    result = engine.build(options, progress)
    assert result.tags == [tag]
    assert engine.image(tag).id == result.image_id
    config = extract_image(engine, tag, str(tmp_path / "tree"))
    check_files(str(tmp_path / "tree"), case.get("files", {}), case.get("absent", []))
    check_config(config, case.get("config", {}), case.get("not_in_env", []))
    if "warnings" in case:
        assert result.warnings == case["warnings"]
    if "stages" in case and case.get("target") is None:
        froms = [e.detail["stage"] for e in events
                 if e.action == "Step" and e.detail["instruction"] == "FROM"]
        want = [s["name"] or f"stage-{i}" for i, s in enumerate(case["stages"])]
        assert froms == (want if len(want) > 1 else [""])
    # every non-FROM step has a history entry; layers match non-empty entries
    hist = config["history"]
    assert len([h for h in hist if not h.get("empty_layer")]) == len(config["rootfs"]["diff_ids"])
    assert hist[-1]["comment"] == "buildkit.dockerfile.v0"


def test_history_and_layers_of_args_env(engine):
    """Metadata steps are empty_layer entries; RUN and the created WORKDIRs are layers;
    RUN history names the build args in scope (``RUN |1 NAME=x /bin/sh -c ...``), minus
    those an ENV overrides (GREETING here), as Docker's FilterAllowed does."""
    result = engine.build(BuildOptions(context=os.path.join(FIXTURES, "args-env"),
                                       tags=["localhost/hist:1"],
                                       build_args={"BASE": BASE, "NAME": "x"}))
    cfg = engine.image(result.image_id).config
    mine = cfg["history"][1:]          # after the base image's own entry
    by = [(h["created_by"], bool(h.get("empty_layer"))) for h in mine]
    assert by[0] == ("ARG GREETING=hello", True)
    assert by[1] == ("ARG NAME=x", True)
    assert by[3] == ("WORKDIR /opt/app", False)        # made the directory: a layer
    assert by[4] == ("WORKDIR data", False)
    run = by[6]
    assert run[0].startswith("RUN |1 NAME=x /bin/sh -c echo \"$MESSAGE\"")
    assert run[0].endswith(" # buildkit") and run[1] is False
    assert all(empty for _, empty in by[7:])


def _run(engine, capfd, *args: str) -> tuple[int, str]:
    """``nutshell run --rm --network none ARGS...`` in this process: its exit code and
    what it printed."""
    from workbench.cli import main

    capfd.readouterr()
    rc = main(["--root", engine.paths.root, "run", "--rm", "--network", "none", *args])
    return rc, capfd.readouterr().out


def test_built_image_runs(engine, capfd):
    """``nutshell run --rm`` of a built image shows the files the build put there."""
    engine.build(BuildOptions(context=os.path.join(FIXTURES, "multistage"),
                              tags=["localhost/runme:1"], build_args={"BASE": BASE}))
    assert _run(engine, capfd, "localhost/runme:1") == (0, "hello from the builder stage\n")  # the CMD
    assert _run(engine, capfd, "localhost/runme:1", "sh", "-c",
                "ls /app; test -e /src && echo has-src; cat /app/hello.sh") == (
        0, "greeting.txt\nhello.sh\necho \"hello from the builder stage\"\n")


def test_add_tar_image_runs_its_cmd(engine, capfd):
    engine.build(BuildOptions(context=os.path.join(FIXTURES, "add-tar"),
                              tags=["localhost/addtar:run"], build_args={"BASE": BASE}))
    assert _run(engine, capfd, "localhost/addtar:run") == (0, "hello from a tarball\n")
