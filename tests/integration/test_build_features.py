"""Builder features beyond the fixtures: symlinks in the image never lead COPY out of it,
hostile archives are refused, ADD unpacks every compression, --chmod, COPY --from an
image, WORKDIR ownership, ENTRYPOINT/CMD rules, heredocs, ONBUILD triggers, RUN's
network, -f / stdin Dockerfiles, untagged builds, --label, the CLI's progress modes."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile

import pytest

from core.dockerfile.builder import BuildError, BuildOptions
from tests.integration.test_build_fixtures import BASE, built_on, collect, extract_image

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(tmp_path_factory, busybox_rootfs):
    yield from built_on(str(tmp_path_factory.mktemp("build-features") / "root"), busybox_rootfs,
                        state_clean=False)


def _ctx(tmp_path, dockerfile: str, files: dict | None = None) -> str:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, data in (files or {}).items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(ctx)


def _tree(engine, tmp_path, ref: str) -> tuple[str, dict]:
    dest = str(tmp_path / "tree")
    cfg = extract_image(engine, ref, dest)
    return dest, cfg


def _tar(entries: list[tuple]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_600_000_000
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, data
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_copy_through_an_image_symlink_stays_inside(engine, tmp_path):
    """An image symlink to an absolute host path is followed inside the image only."""
    outside = tmp_path / "host-side"
    outside.mkdir()
    ctx = _ctx(tmp_path, f"FROM {BASE}\nRUN ln -s {outside} /escape && ln -s ../../.. /up\n"
                         "COPY secret.txt /escape/\nCOPY secret.txt /up/etc/up.txt\n",
               {"secret.txt": "inside\n"})
    engine.build(BuildOptions(context=ctx, tags=["localhost/feat:symlink"]))
    assert os.listdir(outside) == []
    tree, _ = _tree(engine, tmp_path, "localhost/feat:symlink")
    with open(os.path.join(tree, str(outside).lstrip("/"), "secret.txt")) as f:
        assert f.read() == "inside\n"
    with open(os.path.join(tree, "etc/up.txt")) as f:
        assert f.read() == "inside\n"


def test_add_refuses_an_archive_that_climbs_out(engine, tmp_path):
    evil = _tar([("../../evil.txt", "file", b"x")])
    ctx = _ctx(tmp_path, f"FROM {BASE}\nADD evil.tar /opt/\n", {"evil.tar": evil})
    with pytest.raises(BuildError) as err:
        engine.build(BuildOptions(context=ctx))
    assert str(err.value).startswith("Dockerfile:2: ADD failed: cannot unpack evil.tar: ")
    assert "'..'" in str(err.value)


def test_add_refuses_writing_through_an_archive_symlink(engine, tmp_path):
    evil = _tar([("link", "symlink", "/etc"), ("link/passwd", "file", b"owned\n")])
    ctx = _ctx(tmp_path, f"FROM {BASE}\nADD evil.tar /opt/\n", {"evil.tar": evil})
    with pytest.raises(BuildError) as err:
        engine.build(BuildOptions(context=ctx))
    assert "symlink" in str(err.value)


@pytest.mark.parametrize("kind", ["tar", "gz", "bz2", "xz", "zst"])
def test_add_unpacks_every_compression(engine, tmp_path, kind):
    raw = _tar([("pkg", "dir", None), ("pkg/a.txt", "file", b"A\n"), ("pkg/l", "symlink", "a.txt")])
    if kind == "gz":
        data = gzip.compress(raw)
    elif kind == "bz2":
        data = bz2.compress(raw)
    elif kind == "xz":
        data = lzma.compress(raw)
    elif kind == "zst":
        import zstandard

        data = zstandard.ZstdCompressor().compress(raw)
    else:
        data = raw
    name = f"p.{kind}"
    ctx = _ctx(tmp_path, f"FROM {BASE}\nADD {name} /opt\nADD --chown=7:8 {name} /chowned/\n",
               {name: data})
    engine.build(BuildOptions(context=ctx, tags=[f"localhost/feat:add-{kind}"]))
    tree, _ = _tree(engine, tmp_path, f"localhost/feat:add-{kind}")
    with open(os.path.join(tree, "opt/pkg/a.txt")) as f:
        assert f.read() == "A\n"
    assert os.readlink(os.path.join(tree, "opt/pkg/l")) == "a.txt"
    st = os.lstat(os.path.join(tree, "chowned/pkg/a.txt"))
    assert (st.st_uid, st.st_gid) == (7, 8)
    assert not os.path.exists(os.path.join(tree, "opt", name))


def test_chmod_chown_by_name_and_copy_from_an_image(engine, tmp_path):
    ctx = _ctx(tmp_path, f"FROM {BASE}\nCOPY --chmod=0750 --chown=app:users tool.sh /usr/local/bin/\n"
                         f"COPY --from={BASE} /etc/passwd /copied/passwd\n",
               {"tool.sh": "#!/bin/sh\necho tool\n"})
    engine.build(BuildOptions(context=ctx, tags=["localhost/feat:chmod"]))
    tree, _ = _tree(engine, tmp_path, "localhost/feat:chmod")
    st = os.lstat(os.path.join(tree, "usr/local/bin/tool.sh"))
    assert stat.S_IMODE(st.st_mode) == 0o750
    assert (st.st_uid, st.st_gid) == (1000, 100)       # app, users in the busybox files
    with open(os.path.join(tree, "copied/passwd")) as f:
        assert f.read().startswith("root:x:0:0:")


def test_workdir_is_created_for_the_user_and_run_uses_it(engine, tmp_path):
    ctx = _ctx(tmp_path, f"FROM {BASE}\nUSER 1000:1000\nWORKDIR /home/app/work\n"
                         "RUN id -u > me && pwd > where\n")
    engine.build(BuildOptions(context=ctx, tags=["localhost/feat:workdir"]))
    tree, cfg = _tree(engine, tmp_path, "localhost/feat:workdir")
    st = os.lstat(os.path.join(tree, "home/app/work"))
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    with open(os.path.join(tree, "home/app/work/me")) as f:
        assert f.read() == "1000\n"
    with open(os.path.join(tree, "home/app/work/where")) as f:
        assert f.read() == "/home/app/work\n"
    assert cfg["config"]["WorkingDir"] == "/home/app/work"


def test_entrypoint_clears_the_inherited_cmd_unless_cmd_is_set_here(engine, tmp_path):
    ctx = _ctx(tmp_path, f"FROM {BASE}\nENTRYPOINT [\"/bin/echo\"]\n")
    r = engine.build(BuildOptions(context=ctx))
    cfg = engine.image(r.image_id).config["config"]
    assert cfg["Entrypoint"] == ["/bin/echo"] and "Cmd" not in cfg
    ctx = _ctx(tmp_path, f"FROM {BASE}\nCMD [\"hi\"]\nENTRYPOINT echo\n")
    r = engine.build(BuildOptions(context=ctx))
    cfg = engine.image(r.image_id).config["config"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "echo"] and cfg["Cmd"] == ["hi"]


def test_heredocs_in_run_and_copy(engine, tmp_path):
    df = (f"FROM {BASE}\n"
          "RUN <<EOF\necho one > /one\necho two > /two\nEOF\n"
          "RUN cat > /three <<EOT\nthree $((1+2))\nEOT\n"
          "COPY <<CONF /etc/app.conf\nkey=value\nCONF\n"
          "RUN <<  SPACED\necho spaced > /four\nSPACED\n")
    engine.build(BuildOptions(context=_ctx(tmp_path, df), tags=["localhost/feat:heredoc"]))
    tree, _ = _tree(engine, tmp_path, "localhost/feat:heredoc")
    for name, text in (("one", "one\n"), ("two", "two\n"), ("three", "three 3\n"),
                       ("etc/app.conf", "key=value\n"), ("four", "spaced\n")):
        with open(os.path.join(tree, name)) as f:
            assert f.read() == text, name


def test_copy_heredoc_expands_variables_unless_its_terminator_is_quoted(engine, tmp_path):
    """BuildKit (frontend/dockerfile/instructions/parse.go parseSourcesAndDest keeps the
    heredoc's Expand; dockerfile2llb expands SourceContents with Expand set through its lexer
    with SkipProcessQuotes): `COPY <<EOF` expands $NAME and ${ARG} and keeps quotes;
    `COPY <<"EOF"` stays literal."""
    df = (f"FROM {BASE}\nARG WHO=builder\nENV NAME=world\n"
          "COPY <<EOF /expanded\nhello $NAME from ${WHO} 'quoted' \\$NAME\nEOF\n"
          "COPY <<\"EOF\" /literal\nhello $NAME\nEOF\n")
    engine.build(BuildOptions(context=_ctx(tmp_path, df), tags=["localhost/feat:heredoc-env"]))
    tree, _ = _tree(engine, tmp_path, "localhost/feat:heredoc-env")
    with open(os.path.join(tree, "expanded")) as f:
        assert f.read() == "hello world from builder 'quoted' $NAME\n"
    with open(os.path.join(tree, "literal")) as f:
        assert f.read() == "hello $NAME\n"


def test_add_of_two_archives_with_the_same_directory_merges_them(engine, tmp_path):
    """Docker and podman merge the trees (BuildKit's copy of each archive with AllowWildcard
    and unpack into one destination: an existing directory is entered, not recreated);
    Nutshell failed with "[Errno 17] File exists: 'd1'"."""
    a = _tar([("d1/", "dir", None), ("d1/from-a", "file", b"a"), ("only-a", "file", b"A")])
    b = gzip.compress(_tar([("d1/", "dir", None), ("d1/from-b", "file", b"b"),
                            ("d1/sub/", "dir", None), ("d1/sub/deep", "file", b"d")]))
    ctx = _ctx(tmp_path, f"FROM {BASE}\nADD a.tar b.tar.gz /both/\n", {"a.tar": a, "b.tar.gz": b})
    engine.build(BuildOptions(context=ctx, tags=["localhost/feat:merge"]))
    tree, _ = _tree(engine, tmp_path, "localhost/feat:merge")
    for rel, data in (("d1/from-a", "a"), ("d1/from-b", "b"), ("only-a", "A"), ("d1/sub/deep", "d")):
        with open(os.path.join(tree, "both", rel)) as f:
            assert f.read() == data, rel


def test_add_applies_the_archives_own_root_owner_to_the_destination(engine, tmp_path):
    """podman (and Docker's untar) give the destination the owner of the archive's ``./``
    entry; Nutshell left it root-owned. A --chown still wins over the archive's owners."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, uid, gid in ((".", 123, 456), ("./inner", 7, 8)):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.uid, ti.gid = tarfile.DIRTYPE, 0o750, uid, gid
            tf.addfile(ti)
    ctx = _ctx(tmp_path, f"FROM {BASE}\nADD archive.tar /extracted/\n"
                         "ADD --chown=5:6 archive.tar /chowned/\n", {"archive.tar": buf.getvalue()})
    engine.build(BuildOptions(context=ctx, tags=["localhost/feat:rootowner"]))
    tree, _ = _tree(engine, tmp_path, "localhost/feat:rootowner")
    st = os.lstat(os.path.join(tree, "extracted"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (123, 456, 0o750)
    st = os.lstat(os.path.join(tree, "extracted/inner"))
    assert (st.st_uid, st.st_gid) == (7, 8)
    st = os.lstat(os.path.join(tree, "chowned"))
    assert (st.st_uid, st.st_gid) == (5, 6)


def test_onbuild_triggers_run_in_the_child_build(engine, tmp_path):
    parent = _ctx(tmp_path, f"FROM {BASE}\nONBUILD RUN echo triggered > /onbuild.txt\n")
    engine.build(BuildOptions(context=parent, tags=["localhost/feat:parent"]))
    child_dir = tmp_path / "child"
    child_dir.mkdir()
    (child_dir / "Dockerfile").write_text("FROM localhost/feat:parent\nRUN cat /onbuild.txt > /seen\n")
    events, progress = collect()
    engine.build(BuildOptions(context=str(child_dir), tags=["localhost/feat:child"]), progress)
    assert "RUN echo triggered > /onbuild.txt" in [e.message for e in events if e.action == "Step"]
    tree, cfg = _tree(engine, tmp_path, "localhost/feat:child")
    with open(os.path.join(tree, "seen")) as f:
        assert f.read() == "triggered\n"
    assert not cfg["config"].get("OnBuild")          # triggers are not inherited


def test_run_has_no_network_by_default(engine, tmp_path):
    ctx = _ctx(tmp_path, f"FROM {BASE}\nRUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /ifaces\n")
    engine.build(BuildOptions(context=ctx, tags=["localhost/feat:net"]))
    tree, _ = _tree(engine, tmp_path, "localhost/feat:net")
    with open(os.path.join(tree, "ifaces")) as f:
        assert f.read().split() == ["lo"]


def test_dockerfile_from_f_and_from_stdin(engine, tmp_path, capfd, monkeypatch):
    from workbench.cli import main

    ctx = _ctx(tmp_path, "this file is not used\n", {"data.txt": "d\n"})
    other = tmp_path / "Other.Dockerfile"
    other.write_text(f"FROM {BASE}\nCOPY data.txt /\n")
    capfd.readouterr()
    assert main(["--root", engine.paths.root, "build", "-q", "-f", str(other), "-t",
                 "localhost/feat:f", ctx]) == 0
    image_id = capfd.readouterr().out.strip()
    assert image_id == engine.image("localhost/feat:f").id
    monkeypatch.setattr("sys.stdin", io.StringIO(f"FROM {BASE}\nLABEL from=stdin\n"))
    assert main(["--root", engine.paths.root, "build", "-q", "-f", "-", "--label", "extra=1",
                 "-t", "localhost/feat:stdin", ctx]) == 0
    labels = engine.image("localhost/feat:stdin").config["config"]["Labels"]
    assert labels == {"from": "stdin", "extra": "1"}


def test_untagged_build_leaves_a_dangling_image(engine, tmp_path):
    r = engine.build(BuildOptions(context=_ctx(tmp_path, f"FROM {BASE}\nLABEL untagged=yes\n")))
    img = engine.image(r.image_id)
    assert img.repo_tags == [] and r.tags == []


def test_cli_progress_modes(engine, tmp_path, capfd):
    from workbench.cli import main

    ctx = _ctx(tmp_path, f"FROM {BASE} AS one\nRUN echo hello-output\nFROM one\nLABEL x=y\n")
    root = engine.paths.root
    capfd.readouterr()
    assert main(["--root", root, "build", "--no-cache", "-t", "localhost/feat:p", ctx]) == 0
    out = capfd.readouterr().out.splitlines()
    assert out[0] == f"Step 1/4 : FROM {BASE} AS one"
    assert out[1].startswith(" ---> ")
    assert out[2] == "Step 2/4 : RUN echo hello-output"
    assert out[3].startswith(" ---> Running in ")
    assert out[4] == "hello-output"
    assert out[5].startswith("Removing intermediate container ")
    assert out[-2].startswith("Successfully built ")
    assert out[-1] == "Successfully tagged localhost/feat:p"
    assert main(["--root", root, "build", "--progress", "plain", "-t", "localhost/feat:p", ctx]) == 0
    out = capfd.readouterr().out.splitlines()
    assert out[:4] == [f"#1 [one 1/2] FROM {BASE} AS one", "#1 CACHED",
                       "#2 [one 2/2] RUN echo hello-output", "#2 CACHED"]
    assert "#3 [stage-1 1/2] FROM one" in out
    assert main(["--root", root, "build", "--progress", "plain", "--no-cache", ctx]) == 0
    out = capfd.readouterr().out.splitlines()
    assert any(line.startswith("#2 ") and line.endswith(" hello-output") for line in out)
    assert any(line.startswith("#2 DONE ") for line in out)


def test_run_layers_only_for_real_changes(engine, tmp_path):
    """``RUN true`` makes no layer (its /etc/hosts mount point is not a change); a chmod
    of a directory the image has is one."""
    ctx = _ctx(tmp_path, f"FROM {BASE}\nRUN true\nRUN chmod 700 /tmp\n")
    r = engine.build(BuildOptions(context=ctx, tags=["localhost/feat:layers"]))
    assert [s.layer is None for s in r.steps] == [True, True, False]
    tree, cfg = _tree(engine, tmp_path, "localhost/feat:layers")
    assert stat.S_IMODE(os.lstat(os.path.join(tree, "tmp")).st_mode) == 0o700
    assert not os.path.exists(os.path.join(tree, "etc/hosts"))
    assert [h.get("empty_layer", False) for h in cfg["history"][-2:]] == [True, False]


def test_maintainer_sets_the_author_not_a_label(engine, tmp_path):
    """BuildKit's dispatchMaintainer (frontend/dockerfile/dockerfile2llb/convert.go) sets
    the image's Author and adds no label; a later stage of the same image keeps it, and
    `inspect` shows it as Author."""
    ctx = _ctx(tmp_path, f"FROM {BASE}\nMAINTAINER Jane Doe <jane@example.invalid>\nLABEL a=1\n")
    engine.build(BuildOptions(context=ctx, tags=["localhost/feat:maintainer"]))
    img = engine.store.image("localhost/feat:maintainer")
    assert img.config["author"] == "Jane Doe <jane@example.invalid>"
    assert img.config["config"]["Labels"] == {"a": "1"}
    assert engine.image_inspect("localhost/feat:maintainer")["Author"] == "Jane Doe <jane@example.invalid>"
    (tmp_path / "2").mkdir()
    ctx2 = _ctx(tmp_path / "2", "FROM localhost/feat:maintainer\nLABEL b=2\n")
    engine.build(BuildOptions(context=ctx2, tags=["localhost/feat:maintainer2"]))
    assert engine.store.image("localhost/feat:maintainer2").config["author"] == "Jane Doe <jane@example.invalid>"
