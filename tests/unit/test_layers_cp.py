"""cp's building blocks on plain directories: resolution clamped to a root, the extractor
refusing to leave its directory, Docker's destination rules."""

from __future__ import annotations

import io
import os
import stat

import pytest

from core.errors import UnsafeLayer
from core.fs.cp import CopyError, Extractor, pipe_copy, prepare_destination, resolve, split_path, write_entry
from tests.imagebuild import TarBuilder


@pytest.fixture
def root(tmp_path):
    """A fake container root with hostile symlinks, and a host dir it must not touch."""
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc/passwd").write_text("container passwd\n")
    (r / "data").mkdir()
    (r / "data/file").write_text("data\n")
    os.symlink("/etc", r / "abs")                         # absolute: the container's /etc
    os.symlink("../../../../../../../../etc", r / "up")   # climbs: clamped at its root
    os.symlink("/data/file", r / "filelink")
    host = tmp_path / "host"
    host.mkdir()
    fd = os.open(r, os.O_PATH | os.O_DIRECTORY)
    yield fd, r, host
    os.close(fd)


def test_split_path():
    assert split_path("etc/passwd") == ("/etc/passwd", False, False)
    assert split_path("/etc/") == ("/etc", False, True)
    assert split_path("/etc/.") == ("/etc", True, True)
    assert split_path("/a/../../b") == ("/b", False, False)
    assert split_path("") == ("/", False, True)


@pytest.mark.parametrize("link", ["abs", "up"])
def test_symlinks_resolve_inside_the_root(root, link):
    fd, r, _ = root
    res = resolve(fd, f"/{link}/passwd", follow=False)
    try:
        assert res.st is not None and res.path == f"/{link}/passwd"
        with os.fdopen(res.open(os.O_RDONLY), "rb") as f:
            assert f.read() == b"container passwd\n"
    finally:
        res.close()
    res = resolve(fd, f"/{link}", follow=True)
    try:
        assert res.path == "/etc" and res.is_dir
    finally:
        res.close()


def test_final_link_followed_only_when_asked(root):
    fd, _, _ = root
    a = resolve(fd, "/filelink", follow=False)
    b = resolve(fd, "/filelink", follow=True)
    try:
        assert stat.S_ISLNK(a.st.st_mode) and b.path == "/data/file" and stat.S_ISREG(b.st.st_mode)
    finally:
        a.close()
        b.close()


def extract(dirfd, data: bytes, **kw) -> Extractor:
    ex = Extractor(dirfd, **kw)
    ex.run(io.BytesIO(data))
    return ex


def test_extractor_refuses_dotdot_and_symlink_parents(root, tmp_path):
    fd, r, host = root
    dfd = os.open(r, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(UnsafeLayer):
            extract(dfd, TarBuilder().file("../host/pwned", b"x").bytes())
        with pytest.raises(UnsafeLayer):
            extract(dfd, TarBuilder().file("abs/pwned", b"x").bytes())
        # a symlink the archive itself plants, then writes through
        with pytest.raises(UnsafeLayer):
            extract(dfd, TarBuilder().symlink("sneaky", str(host)).file("sneaky/pwned", b"x").bytes())
        with pytest.raises(UnsafeLayer):
            extract(dfd, TarBuilder().hardlink("hl", "/etc/shadow").bytes())
    finally:
        os.close(dfd)
    assert os.listdir(host) == []
    assert not os.path.exists(r / "etc/pwned")


def test_extractor_rules(root):
    fd, r, _ = root
    dfd = os.open(r, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(CopyError, match="cannot overwrite directory"):
            extract(dfd, TarBuilder().file("data", b"x").bytes())
        with pytest.raises(CopyError, match="cannot overwrite non-directory"):
            extract(dfd, TarBuilder().dir("etc/passwd").bytes())
        with pytest.raises(CopyError, match="whiteout"):
            extract(dfd, TarBuilder().file(".wh.passwd", b"").bytes(), no_whiteout_names=True)
        ex = extract(dfd, TarBuilder().dir("new", mode=0o750).file("new/f", b"abc", mode=0o640,
                                                                    uid=1234, gid=99)
                     .hardlink("new/g", "new/f").file("etc/passwd", b"replaced").bytes(),
                     owners="root")
        assert ex.bytes == len(b"abc") + len(b"replaced")
        st = os.stat(r / "new/f")
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o640)
        assert os.stat(r / "new/g").st_ino == st.st_ino
        assert stat.S_IMODE(os.stat(r / "new").st_mode) == 0o750
        assert (r / "etc/passwd").read_text() == "replaced"
        extract(dfd, TarBuilder().file("keep/f", b"k", uid=1234, gid=99).bytes(), owners="keep")
        assert os.stat(r / "keep/f").st_uid == 1234
        # rebase: top entry renamed, "." contents moved under a new name
        extract(dfd, TarBuilder().dir("src").file("src/x", b"1").bytes(), rebase=("src", "dst"))
        assert (r / "dst/x").read_text() == "1"
        extract(dfd, TarBuilder().dir(".").file("./y", b"2").bytes(), rebase=(".", "cont"))
        assert (r / "cont/y").read_text() == "2"
    finally:
        os.close(dfd)


def test_prepare_destination_follows_docker(root):
    fd, r, _ = root
    missing = resolve(fd, "/nothere", follow=True)
    existing_dir = resolve(fd, "/data", follow=True)
    existing_file = resolve(fd, "/etc/passwd", follow=True)
    try:
        dfd, rebase = prepare_destination(False, "a.txt", existing_dir, False, "/data")
        os.close(dfd)
        assert rebase is None
        dfd, rebase = prepare_destination(False, "a.txt", existing_file, False, "/etc/passwd")
        os.close(dfd)
        assert rebase == ("a.txt", "passwd")
        dfd, rebase = prepare_destination(True, "dir", missing, False, "/nothere")
        os.close(dfd)
        assert rebase == ("dir", "nothere")
        with pytest.raises(CopyError, match="directory to a file"):
            prepare_destination(True, "dir", existing_file, False, "/etc/passwd")
        with pytest.raises(CopyError, match="does not exist"):
            prepare_destination(False, "a.txt", missing, True, "/nothere/")
    finally:
        for x in (missing, existing_dir, existing_file):
            x.close()


def test_round_trip_through_a_pipe(root, tmp_path):
    fd, r, _ = root
    src = resolve(fd, "/data", follow=False)
    out = tmp_path / "out"
    out.mkdir()
    dfd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        n = pipe_copy(lambda w: write_entry(src, "data", w),
                      lambda rd: Extractor(dfd, owners="keep").run(rd))
    finally:
        os.close(dfd)
        src.close()
    assert n == 2 and (out / "data/file").read_text() == "data\n"
