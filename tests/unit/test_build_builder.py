"""The builder's pure parts: config effects of each instruction, history text, RUN argv,
--chown/--chmod parsing, cache keys and the cache directory, the upper-dir change test,
the file writer's confinement, and the CLI's progress printers."""

from __future__ import annotations

import io
import json
import os
import time

import pytest

from core.dockerfile import builder as b
from core.dockerfile.cache import BuildCache, CacheEntry, CacheLayer, gc_roots, step_key
from core.dockerfile.parser import parse
from core.events import Progress

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "build")


def _steps(text: str, base_env=()):
    df = parse(text)
    return df, df.steps(df.stages[-1], base_env)


def _apply_all(text: str, base_config: dict | None = None) -> dict:
    config = json.loads(json.dumps(base_config or {}))
    _, steps = _steps(text, config.get("Env") or [])
    stage = {"cmd_set": False}
    for step in steps:
        shell = config.get("Shell") or list(b.DEFAULT_SHELL)
        b.apply_config(config, step, stage, shell)
    return config


def test_metadata_fixture_config_without_a_builder():
    """The metadata fixture's expected config follows from apply_config alone (RUN
    changes no config)."""
    with open(os.path.join(FIXTURES, "metadata", "Dockerfile")) as f:
        text = f.read()
    with open(os.path.join(FIXTURES, "metadata", "expected.json")) as f:
        want = json.load(f)["cases"][0]["config"]
    cfg = _apply_all(text, {"Env": ["PATH=/bin"], "Cmd": ["sh"]})
    env = dict(e.split("=", 1) for e in cfg["Env"])
    assert env == want["Env"]
    assert cfg["Labels"] == want["Labels"]
    assert sorted(cfg["Volumes"]) == sorted(want["Volumes"])
    assert sorted(cfg["ExposedPorts"]) == sorted(want["ExposedPorts"])
    for key in ("Shell", "OnBuild", "Healthcheck", "StopSignal", "Entrypoint", "Cmd"):
        assert cfg[key] == want[key], key


def test_env_replaces_in_place_and_appends():
    cfg = _apply_all("FROM scratch\nENV B=2 C=3\nENV A=x\n", {"Env": ["A=1", "B=1"]})
    assert cfg["Env"] == ["A=x", "B=2", "C=3"]


def test_entrypoint_clears_inherited_cmd_but_keeps_this_stages():
    cfg = _apply_all('FROM scratch\nENTRYPOINT ["/bin/x"]\n', {"Cmd": ["sh"]})
    assert "Cmd" not in cfg and cfg["Entrypoint"] == ["/bin/x"]
    cfg = _apply_all('FROM scratch\nCMD ["a"]\nENTRYPOINT ["/bin/x"]\n', {"Cmd": ["sh"]})
    assert cfg["Cmd"] == ["a"]


def test_shell_form_uses_the_current_shell():
    cfg = _apply_all('FROM scratch\nSHELL ["/bin/bash", "-xc"]\nCMD echo hi\n')
    assert cfg["Cmd"] == ["/bin/bash", "-xc", "echo hi"]


@pytest.mark.parametrize("current,path,want", [
    (None, "/a", "/a"), ("/a", "b", "/a/b"), ("/a/b", "../c", "/a/c"), ("", "x/", "/x"),
    ("/a", "/", "/"), ("/a", "./b/./c", "/a/b/c"), (None, "..", "/"),
])
def test_resolve_workdir(current, path, want):
    assert b.resolve_workdir(current, path) == want


def test_run_argv_forms():
    _, steps = _steps('FROM scratch\nSHELL ["/bin/ash", "-c"]\nRUN echo $X\nRUN ["a", "b c"]\n')
    shell = ["/bin/ash", "-c"]
    assert b.run_argv(steps[1], shell) == ["/bin/ash", "-c", "echo $X"]
    assert b.run_argv(steps[2], shell) == ["a", "b c"]


def test_run_argv_heredocs():
    _, steps = _steps("FROM scratch\nRUN <<EOF\necho 1\necho 2\nEOF\nRUN cat > /f <<EOT\nx\nEOT\n")
    sh = list(b.DEFAULT_SHELL)
    assert b.run_argv(steps[0], sh) == ["/bin/sh", "-c", "echo 1\necho 2\n"]
    assert b.run_argv(steps[1], sh) == ["/bin/sh", "-c", "cat > /f <<EOT\nx\nEOT\n"]


def test_created_by_like_buildkit():
    _, steps = _steps("FROM scratch\nARG A=1\nENV E=2\nRUN echo hi\n"
                      "COPY --chown=1:2 --chmod=644 a b /dst/\nCMD [\"x\"]\nEXPOSE 80\n")
    sh = list(b.DEFAULT_SHELL)
    by = [b.created_by(s, sh) for s in steps]
    assert by == ["ARG A=1", "ENV E=2", "RUN |1 A=1 /bin/sh -c echo hi # buildkit",
                  "COPY --chown=1:2 --chmod=644 a b /dst/ # buildkit", 'CMD ["x"]', "EXPOSE 80/tcp"]
    h = b.history_entry(steps[0], sh, "2024-01-01T00:00:00Z", empty=True)
    assert h == {"created": "2024-01-01T00:00:00Z", "created_by": "ARG A=1",
                 "comment": "buildkit.dockerfile.v0", "empty_layer": True}


PASSWD = "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\nusers:x:100:app\n"


@pytest.mark.parametrize("spec,want", [
    ("1000", (1000, 1000)), ("1:2", (1, 2)), ("app", (1000, 1000)), ("app:users", (1000, 100)),
    ("0:users", (0, 100)),
])
def test_parse_chown(spec, want):
    assert b.parse_chown(spec, lambda: PASSWD, lambda: GROUP) == want


@pytest.mark.parametrize("spec,msg", [("ghost", "unable to find user ghost"),
                                      ("app:ghosts", "unable to find group ghosts"),
                                      (":1", "no user")])
def test_parse_chown_errors(spec, msg):
    with pytest.raises(b.BuildError) as err:
        b.parse_chown(spec, lambda: PASSWD, lambda: GROUP)
    assert msg in str(err.value)


def test_parse_chmod():
    assert b.parse_chmod("0755") == 0o755 and b.parse_chmod("644") == 0o644
    assert b.parse_chmod(None) is None
    with pytest.raises(b.BuildError):
        b.parse_chmod("u+x")


def test_run_failed_exit_code():
    assert b.RunFailed("x", 3).exit_code == 3
    assert b.RunFailed("x", 300).exit_code == 1
    assert b.BuildError("x").exit_code == 1


# --------------------------------------------------------------------------- cache

class _Paths:
    def __init__(self, root):
        self.builds = os.path.join(root, "build-cache")


def test_step_key_is_canonical():
    k1 = step_key("sha256:p", {"b": 1, "a": [1, 2]})
    assert k1 == step_key("sha256:p", {"a": [1, 2], "b": 1})
    assert k1 != step_key("sha256:q", {"b": 1, "a": [1, 2]})
    assert k1 != step_key("sha256:p", {"b": 2, "a": [1, 2]})
    assert k1.startswith("sha256:") and len(k1) == 71


def test_cache_roundtrip_prune_and_roots(tmp_path):
    cache = BuildCache(_Paths(str(tmp_path)))
    assert cache.get(step_key("x", {})) is None
    layer = CacheLayer("sha256:" + "a" * 64, "sha256:" + "b" * 64, "m", 10, "sha256:" + "c" * 64)
    k1, k2 = step_key("x", {"n": 1}), step_key("x", {"n": 2})
    cache.put(CacheEntry(k1, "x", "RUN a", "t1", layer))
    cache.put(CacheEntry(k2, "x", "ENV a=b", "t2", None))
    got = cache.get(k1)
    assert got.layer == layer and got.instruction == "RUN a"
    assert cache.get(k2).layer is None
    assert gc_roots(_Paths(str(tmp_path))) == ({layer.digest}, {layer.chain_id})
    old = time.time() - 3600
    os.utime(cache._path(k1), (old, old))
    assert cache.prune(older_than=7200) == []
    assert [e.key for e in cache.prune(older_than=60)] == [k1]     # k2 was used just now
    assert [e.key for e in cache.entries()] == [k2]
    # a file whose content names another key is not trusted, and prune removes it
    os.replace(cache._path(k2), cache._path(k1))
    assert cache.get(k1) is None and cache.entries() == []
    assert cache.prune(older_than=10 ** 9) == []
    assert os.listdir(cache.dir) == []


def test_cache_ignores_garbage(tmp_path):
    cache = BuildCache(_Paths(str(tmp_path)))
    os.makedirs(cache.dir)
    with open(os.path.join(cache.dir, "f" * 64 + ".json"), "w") as f:
        f.write("{not json")
    assert cache.get("sha256:" + "f" * 64) is None
    assert cache.entries() == []
    with pytest.raises(ValueError):
        cache.get("sha256:../../etc/passwd")


# --------------------------------------------------------------------------- upper dirs

def test_upper_has_changes(tmp_path):
    lower = tmp_path / "lower"
    (lower / "etc").mkdir(parents=True)
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "hosts").write_text("")
    assert not b._upper_has_changes(str(upper), [str(lower)], {"etc/hosts"})  # copy-up + mount point
    assert b._upper_has_changes(str(upper), [str(lower)], set())
    (upper / "etc" / "hosts").unlink()
    (upper / "new").mkdir()
    assert b._upper_has_changes(str(upper), [str(lower)], set())          # a new empty dir
    (upper / "new").rmdir()
    os.chmod(upper / "etc", 0o700)                                         # chmod of /etc
    assert b._upper_has_changes(str(upper), [str(lower)], set())
    os.chmod(upper / "etc", os.stat(lower / "etc").st_mode & 0o7777)
    os.utime(upper / "etc", (1, 1))                                       # mtime only
    assert not b._upper_has_changes(str(upper), [str(lower)], set())
    os.symlink("x", upper / "etc" / "link")
    assert b._upper_has_changes(str(upper), [str(lower)], set())


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_writer_stays_inside_its_root(tmp_path):
    from core.dockerfile.context import BuildContext

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), root / "abs")                  # absolute: means /<outside> inside
    os.symlink("../../../..", root / "etc" / "up")          # climbs: clamped at the root
    ctx_dir = tmp_path / "ctx"
    ctx_dir.mkdir()
    (ctx_dir / "f.txt").write_text("data\n")
    ctx = BuildContext(str(ctx_dir), dockerfile=None)
    w = b._Writer(str(root), None, None, keep_owner=False, what="COPY")
    try:
        for dest in ("/abs/", "/etc/up/x/"):
            for src in ctx.sources(["f.txt"]):
                w.copy_source(src, ctx, dest, True)
        w.finish()
    finally:
        w.close()
    assert os.listdir(outside) == []
    assert (root / str(outside).lstrip("/") / "f.txt").read_text() == "data\n"
    assert (root / "x" / "f.txt").read_text() == "data\n"


# --------------------------------------------------------------------------- printers

def _events():
    return [
        Progress("1", "Step", 1, 3, "FROM busybox AS a", {"instruction": "FROM", "stage": "a",
                                                          "stage_step": 1, "stage_steps": 3}),
        Progress("1", "CACHED", message="FROM busybox AS a"),
        Progress("1", "Done", message="8fb94246f036", detail={"cached": True, "seconds": 0.0}),
        Progress("2", "Step", 2, 3, "COPY x /x", {"instruction": "COPY", "stage": "a",
                                                  "stage_step": 2, "stage_steps": 3}),
        Progress("2", "CACHED", message="COPY x /x"),
        Progress("2", "Done", message="aaaaaaaaaaaa", detail={"cached": True, "seconds": 0.0}),
        Progress("3", "Step", 3, 3, "RUN echo hi", {"instruction": "RUN", "stage": "a",
                                                    "stage_step": 3, "stage_steps": 3}),
        Progress("3", "Running", message="c0ffee000000"),
        Progress("3", "Output", message="hi", detail={"stream": "stdout"}),
        Progress("3", "Writing", message="sha256:" + "d" * 64, detail={"size": 120}),
        Progress("3", "Removed", message="c0ffee000000"),
        Progress("3", "Done", message="bbbbbbbbbbbb", detail={"cached": False, "seconds": 0.25}),
        Progress("build", "Writing", message="image sha256:" + "e" * 64),
        Progress("build", "Tagged", message="localhost/x:1"),
        Progress("build", "Built", message="eeeeeeeeeeee"),
    ]


def test_classic_printer():
    from workbench.cli.build import ClassicPrinter

    out = io.StringIO()
    p = ClassicPrinter(out, io.StringIO())
    for ev in _events():
        p(ev)
    assert out.getvalue().splitlines() == [
        "Step 1/3 : FROM busybox AS a", " ---> 8fb94246f036",
        "Step 2/3 : COPY x /x", " ---> Using cache", " ---> aaaaaaaaaaaa",
        "Step 3/3 : RUN echo hi", " ---> Running in c0ffee000000", "hi",
        "Removing intermediate container c0ffee000000", " ---> bbbbbbbbbbbb",
    ]


def test_plain_printer():
    from workbench.cli.build import PlainPrinter

    out = io.StringIO()
    p = PlainPrinter(out, io.StringIO())
    for ev in _events():
        p(ev)
    lines = out.getvalue().splitlines()
    assert lines[:5] == ["#1 [a 1/3] FROM busybox AS a", "#1 CACHED", "#2 [a 2/3] COPY x /x",
                         "#2 CACHED", "#3 [a 3/3] RUN echo hi"]
    assert lines[5] == "#3 running in container c0ffee000000"
    assert lines[6].startswith("#3 ") and lines[6].endswith(" hi")
    assert lines[7] == "#3 writing layer sha256:dddddddddddd 120B"
    assert lines[8] == "#3 DONE 0.2s"
    assert lines[9:] == ["#4 exporting to image", f"#4 writing image sha256:{'e' * 64} done",
                         "#4 naming to localhost/x:1 done", lines[12]]
    assert lines[12].startswith("#4 DONE ")
