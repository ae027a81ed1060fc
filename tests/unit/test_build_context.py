"""Build context walking, COPY source resolution and cache keys (core.dockerfile.context)."""

from __future__ import annotations

import bz2
import io
import json
import lzma
import os
import shutil
import socket
import tarfile

import pytest

from core.dockerfile.context import (
    BuildContext,
    ContextError,
    archive_format,
    content_hash,
    is_url,
    walk,
)
from core.dockerfile.parser import parse

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "build")


def make_tree(root, files: dict) -> str:
    """Create files ({"a/b.txt": "content", "d/": None, "l": ("link", "target")})."""
    for path, content in files.items():
        full = os.path.join(root, path)
        if path.endswith("/"):
            os.makedirs(full, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if isinstance(content, tuple):
            os.symlink(content[1], full)
        else:
            with open(full, "w") as f:
                f.write(content)
    return str(root)


@pytest.fixture
def ctx_dir(tmp_path):
    return make_tree(tmp_path / "ctx", {
        "Dockerfile": "FROM scratch\n",
        "a.txt": "a\n",
        "b.txt": "b\n",
        "*.txt": "a file named star\n",
        "src/main.c": "int main;\n",
        "src/lib/util.c": "util\n",
        "src/lib/util.o": "object\n",
        "empty/": None,
    })


def paths(entries):
    return [e.path for e in entries]


# --------------------------------------------------------------------------- walking

def test_walk_lists_everything_sorted_with_digests(ctx_dir):
    entries = walk(ctx_dir)
    assert paths(entries) == ["*.txt", "Dockerfile", "a.txt", "b.txt", "empty", "src",
                              "src/lib", "src/lib/util.c", "src/lib/util.o", "src/main.c"]
    by_path = {e.path: e for e in entries}
    a = by_path["a.txt"]
    st = os.stat(os.path.join(ctx_dir, "a.txt"))
    assert (a.type, a.size, a.mode) == ("file", 2, st.st_mode & 0o7777)
    assert (a.uid, a.gid, a.mtime_ns) == (st.st_uid, st.st_gid, st.st_mtime_ns)
    assert a.sha256 == "87428fc522803d31065e7bce3cf03fe475096631e5e07bbd7a0fde60c4cf25c7"
    assert by_path["src"].type == "dir" and by_path["src"].sha256 is None
    assert not any(e.build_file for e in entries)


def test_walk_applies_dockerignore_and_always_sends_build_files(ctx_dir):
    with open(os.path.join(ctx_dir, ".dockerignore"), "w") as f:
        f.write("*.o\nsrc/lib\n!src/lib/util.c\nDockerfile\n.dockerignore\nb.txt\n")
    entries = walk(ctx_dir)
    assert paths(entries) == ["*.txt", ".dockerignore", "Dockerfile", "a.txt", "empty", "src",
                              "src/lib", "src/lib/util.c", "src/main.c"]
    build_files = [e.path for e in entries if e.build_file]
    assert build_files == [".dockerignore", "Dockerfile"]
    # COPY sees the context as the ignore file describes it: no Dockerfile, no .dockerignore.
    ctx = BuildContext(ctx_dir)
    [root] = ctx.sources(["."])
    assert [rel for rel, _ in root.children] == ["*.txt", "a.txt", "empty", "src", "src/lib",
                                                 "src/lib/util.c", "src/main.c"]


def test_excluded_directory_without_exceptions_is_skipped_entirely(ctx_dir):
    with open(os.path.join(ctx_dir, ".dockerignore"), "w") as f:
        f.write("src\n")
    assert not any(p.startswith("src") for p in paths(walk(ctx_dir)))


def test_dockerfile_elsewhere_is_not_forced(ctx_dir, tmp_path):
    with open(os.path.join(ctx_dir, ".dockerignore"), "w") as f:
        f.write("Dockerfile\n")
    outside = tmp_path / "other.Dockerfile"
    outside.write_text("FROM scratch\n")
    assert "Dockerfile" not in paths(walk(ctx_dir, str(outside)))
    assert "Dockerfile" in paths(walk(ctx_dir))


def test_walk_never_follows_symlinks_and_skips_sockets(tmp_path):
    outside = make_tree(tmp_path / "outside", {"secret": "s\n"})
    ctx = make_tree(tmp_path / "ctx", {
        "dirlink": ("link", outside),
        "filelink": ("link", os.path.join(outside, "secret")),
        "ok": "ok\n",
    })
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(os.path.join(ctx, "sock"))
        os.mkfifo(os.path.join(ctx, "fifo"))
        entries = {e.path: e for e in walk(ctx)}
    finally:
        sock.close()
    assert sorted(entries) == ["dirlink", "fifo", "filelink", "ok"]
    assert entries["dirlink"].type == "symlink" and entries["dirlink"].link == outside
    assert entries["filelink"].sha256 is None
    assert entries["fifo"].type == "fifo"


def test_missing_context_is_an_error(tmp_path):
    with pytest.raises(ContextError, match="not found"):
        BuildContext(str(tmp_path / "nope"))


# --------------------------------------------------------------------------- sources

def test_file_directory_and_root_sources(ctx_dir):
    ctx = BuildContext(ctx_dir)
    a, src, root = ctx.sources(["a.txt", "src/", "/"])
    assert (a.path, a.name, a.is_dir, a.children) == ("a.txt", "a.txt", False, [])
    assert a.entry.sha256 is not None
    assert (src.path, src.name, src.is_dir) == ("src", "src", True)
    assert [rel for rel, _ in src.children] == ["lib", "lib/util.c", "lib/util.o", "main.c"]
    assert all(e.sha256 for rel, e in src.children if e.type == "file")
    assert root.path == "" and "Dockerfile" in [rel for rel, _ in root.children]


@pytest.mark.parametrize("pattern, expected", [
    ("*.txt", ["*.txt", "a.txt", "b.txt"]),
    ("?.txt", ["*.txt", "a.txt", "b.txt"]),
    ("[ab].txt", ["a.txt", "b.txt"]),
    ("[^a].txt", ["*.txt", "b.txt"]),
    ("\\*.tx?", ["*.txt"]),
    ("src/*", ["src/lib", "src/main.c"]),
    ("src/*/*.c", ["src/lib/util.c"]),
    ("*/lib", ["src/lib"]),
    ("./src/../a.*", ["a.txt"]),
])
def test_glob_sources_use_go_filepath_match(ctx_dir, pattern, expected):
    ctx = BuildContext(ctx_dir)
    assert [s.path for s in ctx.sources([pattern])] == expected


def test_escaped_wildcard_without_other_wildcards_is_a_literal_path(ctx_dir):
    # Like Docker (containsWildcards skips escaped characters): "\\*.txt" is the path
    # with a backslash in it, not a pattern.
    with pytest.raises(ContextError, match="not found"):
        BuildContext(ctx_dir).sources(["\\*.txt"])


def test_glob_matching_nothing_is_an_error(ctx_dir):
    with pytest.raises(ContextError) as info:
        BuildContext(ctx_dir).sources(["*.none"], line=4)
    assert str(info.value).startswith("Dockerfile:4: COPY failed: no source files were specified")


@pytest.mark.parametrize("source", ["../x", "/../x", "src/../../x", "..", "a/../../../etc/passwd"])
def test_source_outside_the_context_is_an_error_naming_the_line(ctx_dir, source):
    with pytest.raises(ContextError) as info:
        BuildContext(ctx_dir).sources([source], line=12)
    assert str(info.value) == (f"Dockerfile:12: COPY failed: forbidden path outside the "
                               f"build context: {source}")


def test_leading_slash_and_dot_segments_stay_inside(ctx_dir):
    ctx = BuildContext(ctx_dir)
    assert [s.path for s in ctx.sources(["/src/lib/../main.c", "./a.txt", "src/./lib/"])] == \
        ["src/main.c", "a.txt", "src/lib"]


def test_missing_and_excluded_sources_are_errors(ctx_dir):
    with open(os.path.join(ctx_dir, ".dockerignore"), "w") as f:
        f.write("b.txt\n")
    ctx = BuildContext(ctx_dir, "Dockerfile")
    for source in ("nope.txt", "b.txt", "a.txt/inner"):
        with pytest.raises(ContextError, match="file not found in build context or excluded"):
            ctx.sources([source], cmd="ADD", line=3)


def test_symlinked_sources_are_followed_inside_the_context_only(tmp_path):
    outside = make_tree(tmp_path / "outside", {"secret": "host secret\n", "dir/x": "x\n"})
    ctx_dir = make_tree(tmp_path / "ctx", {
        "real/file.txt": "real\n",
        "real/nested/deep.txt": "deep\n",
        "rel": ("link", "real/file.txt"),
        "abs": ("link", "/real/file.txt"),            # absolute: relative to the context root
        "up": ("link", "../../../../real/nested"),    # climbing stops at the root
        "dirlink": ("link", "real"),
        "host": ("link", os.path.join(outside, "secret")),
        "hostdir": ("link", os.path.join(outside, "dir")),
        "escape": ("link", "../outside/secret"),
        "loop1": ("link", "loop2"),
        "loop2": ("link", "loop1"),
        "real/inner_link": ("link", "file.txt"),
    })
    ctx = BuildContext(ctx_dir, None)
    rel, abs_, up, dirlink = ctx.sources(["rel", "abs", "up", "dirlink"])
    assert (rel.path, rel.name, rel.entry.type) == ("real/file.txt", "rel", "file")
    assert abs_.path == "real/file.txt"
    assert up.path == "real/nested" and up.is_dir
    assert dirlink.path == "real"
    # A symlink inside a copied directory is copied as a symlink, not followed.
    children = dict(dirlink.children)
    assert children["inner_link"].type == "symlink" and children["inner_link"].link == "file.txt"
    for name in ("host", "hostdir", "escape", "hostdir/x"):
        with pytest.raises(ContextError, match="not found"):
            ctx.sources([name])
    with pytest.raises(ContextError, match="too many levels of symbolic links"):
        ctx.sources(["loop1"])
    # A symlinked directory in the middle of a path is followed too (still inside).
    [deep] = ctx.sources(["up/deep.txt"])
    assert (deep.path, deep.name) == ("real/nested/deep.txt", "deep.txt")


def test_remote_add_sources_are_refused(ctx_dir):
    ctx = BuildContext(ctx_dir)
    with pytest.raises(ContextError) as info:
        ctx.sources(["https://example.invalid/a.tgz"], cmd="ADD", line=2)
    assert "remote sources are not supported" in str(info.value)
    assert info.value.hint
    assert is_url("git@github.com:a/b.git") and is_url("HTTP://x") and not is_url("a:b")


def test_directory_replaced_by_a_symlink_midway_is_refused(tmp_path):
    outside = make_tree(tmp_path / "outside", {"a.txt": "host\n"})
    ctx_dir = make_tree(tmp_path / "ctx", {"app/a.txt": "ctx\n"})
    ctx = BuildContext(ctx_dir, None)
    ctx.walk(hash_content=False)
    shutil.rmtree(os.path.join(ctx_dir, "app"))
    os.symlink(outside, os.path.join(ctx_dir, "app"))
    with pytest.raises(ContextError, match="changed while the build was reading"):
        ctx.digest("app/a.txt")
    with pytest.raises(ContextError):
        ctx.open("app/a.txt")


# --------------------------------------------------------------------------- cache keys

def test_content_hash_ignores_mtime_and_location(ctx_dir, tmp_path):
    before = content_hash(ctx_dir, ["src", "a.txt"])
    assert before.startswith("sha256:") and len(before) == 71
    os.utime(os.path.join(ctx_dir, "src/main.c"), (1, 1))
    os.utime(os.path.join(ctx_dir, "src"), (2, 2))
    assert content_hash(ctx_dir, ["src", "a.txt"]) == before
    moved = str(tmp_path / "elsewhere")
    shutil.copytree(ctx_dir, moved, symlinks=True)
    assert content_hash(moved, ["src", "a.txt"]) == before


def test_content_hash_changes_with_content_mode_set_and_order(ctx_dir):
    base = content_hash(ctx_dir, ["src"])
    main = os.path.join(ctx_dir, "src/main.c")
    with open(main, "w") as f:
        f.write("int main(void);\n")
    changed = content_hash(ctx_dir, ["src"])
    assert changed != base
    os.chmod(main, 0o755)
    chmodded = content_hash(ctx_dir, ["src"])
    assert chmodded != changed
    with open(os.path.join(ctx_dir, "src/new.c"), "w") as f:
        f.write("")
    added = content_hash(ctx_dir, ["src"])
    assert added != chmodded
    os.remove(os.path.join(ctx_dir, "src/new.c"))
    assert content_hash(ctx_dir, ["src"]) == chmodded
    assert content_hash(ctx_dir, ["a.txt", "b.txt"]) != content_hash(ctx_dir, ["b.txt", "a.txt"])


def test_content_hash_of_same_content_under_another_name_differs(tmp_path):
    ctx_dir = make_tree(tmp_path, {"one": "same\n", "two": "same\n"})
    assert content_hash(ctx_dir, ["one"]) != content_hash(ctx_dir, ["two"])


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_content_hash_changes_with_owner(ctx_dir):
    before = content_hash(ctx_dir, ["a.txt"])
    os.chown(os.path.join(ctx_dir, "a.txt"), 1234, 1234)
    assert content_hash(ctx_dir, ["a.txt"]) != before


def test_content_hash_ignores_excluded_files(ctx_dir):
    with open(os.path.join(ctx_dir, ".dockerignore"), "w") as f:
        f.write("**/*.o\n")
    before = content_hash(ctx_dir, ["src"])
    with open(os.path.join(ctx_dir, "src/lib/util.o"), "w") as f:
        f.write("rebuilt object\n")
    assert content_hash(ctx_dir, ["src"]) == before
    with open(os.path.join(ctx_dir, "src/lib/util.c"), "w") as f:
        f.write("changed\n")
    assert content_hash(ctx_dir, ["src"]) != before


def test_content_hash_of_a_symlink_source_hashes_its_target(tmp_path):
    ctx_dir = make_tree(tmp_path, {"t.txt": "one\n", "link": ("link", "t.txt")})
    before = content_hash(ctx_dir, ["link"])
    with open(os.path.join(ctx_dir, "t.txt"), "w") as f:
        f.write("two\n")
    assert content_hash(ctx_dir, ["link"]) != before


def test_digests_are_cached_but_refreshed_on_change(ctx_dir):
    ctx = BuildContext(ctx_dir)
    first = ctx.digest("a.txt")
    assert ctx.digest("a.txt") == first
    with open(os.path.join(ctx_dir, "a.txt"), "w") as f:
        f.write("new content\n")
    assert ctx.digest("a.txt") != first


# --------------------------------------------------------------------------- archives

def tar_bytes(members=(("x.txt", b"x\n"),)) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("data, expected", [
    (tar_bytes(), "tar"),
    (bz2.compress(tar_bytes()), "tar+bzip2"),
    (lzma.compress(tar_bytes()), "tar+xz"),
    (b"plain text\n" * 100, None),
    (bz2.compress(b"not a tar" * 100), None),
    (b"\x1f\x8b\x08\x00garbage", None),
    (b"\0" * 1024, None),  # an empty archive is not unpacked (Docker: no first header)
    (b"", None),
])
def test_archive_format(data, expected):
    assert archive_format(io.BytesIO(data)) == expected


def test_archive_format_zstd():
    zstandard = pytest.importorskip("zstandard")
    data = zstandard.ZstdCompressor().compress(tar_bytes())
    assert archive_format(io.BytesIO(data)) == "tar+zstd"


# --------------------------------------------------------------------------- fixtures

def fixture_case(name):
    with open(os.path.join(FIXTURES, name, "expected.json")) as f:
        return json.load(f)["cases"][0]


def test_copy_chown_fixture_context():
    root = os.path.join(FIXTURES, "copy-chown")
    expected = fixture_case("copy-chown")["context"]
    ctx = BuildContext(root)
    entries = ctx.walk()
    assert paths(entries) == expected["sent"]
    assert [e.path for e in entries if e.build_file] == expected["build_files"]
    for pattern, want in expected["sources"].items():
        got = []
        for src in ctx.sources([pattern]):
            got += [rel for rel, _ in src.children] if src.is_dir else [src.name]
        assert got == want, pattern
    for missing in expected["missing"]:
        with pytest.raises(ContextError):
            ctx.sources([missing])
    # The Dockerfile's COPY lines resolve, and their cache keys are stable.
    df = parse(open(os.path.join(root, "Dockerfile")).read())
    keys = []
    for step in df.steps(0):
        if step.cmd == "COPY":
            keys.append(ctx.content_hash(step.sources, line=step.line))
    assert len(keys) == 4 and len(set(keys)) == 4
    assert keys == [BuildContext(root).content_hash(s.sources) for s in df.steps(0) if s.cmd == "COPY"]


def test_add_tar_fixture_archive():
    root = os.path.join(FIXTURES, "add-tar")
    ctx = BuildContext(root)
    for name, kind in fixture_case("add-tar")["context"]["archives"].items():
        assert ctx.archive_format(name) == kind
    with ctx.open("payload.tar.gz") as f, tarfile.open(fileobj=f, mode="r:gz") as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert sorted(members) == ["payload", "payload/bin", "payload/bin/run.sh",
                               "payload/hello.txt", "payload/link.txt"]
    assert members["payload/bin/run.sh"].mode == 0o755
    assert members["payload/link.txt"].issym() and members["payload/link.txt"].linkname == "hello.txt"
    assert all((m.uid, m.gid) == (0, 0) for m in members.values())


def test_every_fixture_copy_source_resolves():
    """Each fixture's context COPY/ADD sources (not --from) exist after .dockerignore."""
    for name in sorted(os.listdir(FIXTURES)):
        root = os.path.join(FIXTURES, name)
        if not os.path.isdir(root) or name == "syntax-error":
            continue
        df = parse(open(os.path.join(root, "Dockerfile")).read())
        ctx = BuildContext(root)
        for stage in df.stages:
            for step in df.steps(stage):
                if step.cmd in ("COPY", "ADD") and "from" not in step.flags:
                    assert ctx.sources(step.sources, cmd=step.cmd, line=step.line), (name, step.line)
