"""cp and export on real containers: both directions, running and stopped, streams,
owners, and escapes through the container's symlinks refused or contained."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from tests.imagebuild import TarBuilder
from tests.integration.test_layers_commit import IMAGE, LT, lt_root, tree_of_container, tree_of_image

pytestmark = pytest.mark.integration

SETUP = r"""
ln -s /etc /abs; ln -s ../../../../../../../../etc /up; ln -s /etc/passwd /pwlink
mkdir -p /srv/tree/sub && echo a > /srv/tree/a && echo b > /srv/tree/sub/b
chown -R 1000:1000 /srv/tree && ln /srv/tree/a /srv/tree/hard
"""


@pytest.fixture(scope="module")
def lt(tmp_path_factory, busybox_rootfs):
    with lt_root(tmp_path_factory, busybox_rootfs, "lt-cp") as r:
        r.run("--name", "stopped", IMAGE, "sh", "-c", SETUP)
        r.run("-d", "--name", "running", IMAGE, "sh", "-c", SETUP + "exec sleep 600")
        yield r


@pytest.fixture
def host(tmp_path):
    """A host directory standing in for the host's /etc: nothing may land in it."""
    d = tmp_path / "host"
    d.mkdir()
    (d / "hostfile").write_text("h\n")
    return d


def cat(lt: LT, name: str, path: str) -> str:
    if name == "running":
        return lt.cli("exec", name, "cat", path).stdout.decode()
    with lt.engine.copy_from_container(name, path) as tar:
        data = tar.read()
    tf = tarfile.open(fileobj=io.BytesIO(data))
    return tf.extractfile(tf.getmembers()[0]).read().decode()


@pytest.mark.parametrize("name", ["running", "stopped"])
def test_copy_out_files_dirs_and_links(lt, name, tmp_path):
    out = tmp_path / "out"
    lt.cli("cp", f"{name}:/srv/tree", str(out))                 # missing dest: takes its name
    assert (out / "a").read_text() == "a\n" and (out / "sub/b").read_text() == "b\n"
    assert os.stat(out / "a").st_uid == 0                        # owned by the caller
    assert os.stat(out / "hard").st_ino == os.stat(out / "a").st_ino
    lt.cli("cp", "-a", f"{name}:/srv/tree", str(out))            # existing dir: goes inside
    assert os.stat(out / "tree/a").st_uid == 1000
    lt.cli("cp", f"{name}:/srv/tree/.", str(tmp_path / "contents"))
    assert sorted(os.listdir(tmp_path / "contents")) == ["a", "hard", "sub"]
    lt.cli("cp", f"{name}:/pwlink", str(tmp_path / "link"))
    assert os.readlink(tmp_path / "link") == "/etc/passwd"
    lt.cli("cp", "-L", f"{name}:/pwlink", str(tmp_path / "followed"))
    assert (tmp_path / "followed").read_text().startswith("root:x:0:0")
    # through the container's own symlinks: its /etc, clamped at its root
    for link in ("abs", "up"):
        lt.cli("cp", f"{name}:/{link}/group", str(tmp_path / f"g-{link}"))
        assert (tmp_path / f"g-{link}").read_text() == open(
            os.path.join(lt.engine.image_layer_dirs(IMAGE)[0], "etc/group")).read()
    p = lt.cli("cp", f"{name}:/srv/tree", "-")
    names = tarfile.open(fileobj=io.BytesIO(p.stdout)).getnames()
    assert sorted(names) == ["tree", "tree/a", "tree/hard", "tree/sub", "tree/sub/b"]
    p = lt.cli("cp", f"{name}:/no/such", str(tmp_path / "x"), check=False)
    assert p.returncode != 0 and b"Could not find the file /no/such" in p.stderr


@pytest.mark.parametrize("name", ["running", "stopped"])
def test_copy_in_lands_inside_the_container(lt, name, tmp_path, host):
    src = tmp_path / "in.txt"
    src.write_text(f"to {name}\n")
    os.chown(src, 1234, 1234)
    lt.cli("cp", str(src), f"{name}:/tmp/")
    lt.cli("cp", str(src), f"{name}:/tmp/renamed.txt")
    assert cat(lt, name, "/tmp/in.txt") == f"to {name}\n"
    assert cat(lt, name, "/tmp/renamed.txt") == f"to {name}\n"
    d = tmp_path / "dir"
    (d / "x").mkdir(parents=True)
    (d / "x/y").write_text("y\n")
    lt.cli("cp", "-a", str(d), f"{name}:/tmp/newdir")
    assert cat(lt, name, "/tmp/newdir/x/y") == "y\n"
    # escapes: the container's symlinks name its own /etc (contained), never the host's
    lt.cli("cp", str(src), f"{name}:/abs/")
    lt.cli("cp", str(src), f"{name}:/up/from-up.txt")
    assert cat(lt, name, "/etc/in.txt") == f"to {name}\n"
    assert cat(lt, name, "/etc/from-up.txt") == f"to {name}\n"
    assert not os.path.exists("/etc/in.txt") and not os.path.exists("/etc/from-up.txt")
    # a tar stream that plants a symlink to a host dir and writes through it: refused
    evil = TarBuilder().symlink("evil", str(host)).file("evil/pwned", b"x").bytes()
    p = lt.cli("cp", "-", f"{name}:/tmp", input=evil, check=False)
    assert p.returncode != 0 and b"symbolic link" in p.stderr
    dotdot = TarBuilder().file("../../../../../../../../" + str(host / "pwned2"), b"x").bytes()
    p = lt.cli("cp", "-", f"{name}:/tmp", input=dotdot, check=False)
    assert p.returncode != 0
    assert sorted(os.listdir(host)) == ["hostfile"]
    # a dir can't replace a file, a file asked to be a dir fails
    p = lt.cli("cp", str(d), f"{name}:/etc/passwd", check=False)
    assert p.returncode != 0 and b"cannot copy a directory to a file" in p.stderr
    p = lt.cli("cp", str(src), f"{name}:/nonexistent/", check=False)
    assert p.returncode != 0


def test_copy_in_keeps_owners_only_with_archive(lt, tmp_path):
    src = tmp_path / "owned"
    src.write_text("o\n")
    os.chown(src, 1234, 4321)
    lt.cli("cp", str(src), "running:/tmp/plain")
    lt.cli("cp", "-a", str(src), "running:/tmp/kept")
    out = lt.cli("exec", "running", "stat", "-c", "%u:%g", "/tmp/plain", "/tmp/kept").stdout.decode()
    assert out.split() == ["0:0", "1234:4321"]


def test_stream_in_to_created_container_then_start_sees_it(lt, tmp_path):
    cid = lt.cli("create", "--network", "none", IMAGE, "sleep", "600").stdout.decode().strip()
    try:
        data = TarBuilder().dir("streamed").file("streamed/s", b"stream\n", mode=0o600).bytes()
        lt.cli("cp", "-", f"{cid}:/root", input=data)
        assert {"Path": "/root/streamed/s", "Kind": 1} in lt.engine.container_diff(cid)
        lt.cli("start", cid)
        out = lt.cli("exec", cid, "stat", "-c", "%a %s", "/root/streamed/s").stdout.decode()
        assert out.split() == ["600", "7"]
        with lt.engine.copy_from_container(cid, "/root/streamed/s") as tar:
            assert tar.stat["mode"] & 0o777 == 0o600
            tf = tarfile.open(fileobj=io.BytesIO(tar.read()))
            assert tf.extractfile("s").read() == b"stream\n"
    finally:
        lt.engine.rm(cid, force=True)


def test_cp_refuses_whiteout_names_and_container_to_container(lt, tmp_path):
    wh = TarBuilder().file(".wh.passwd", b"").bytes()
    p = lt.cli("cp", "-", "stopped:/etc", input=wh, check=False)
    assert p.returncode != 0 and b"whiteout" in p.stderr
    assert "root:x" in cat(lt, "stopped", "/etc/passwd")
    p = lt.cli("cp", "stopped:/etc/passwd", "running:/tmp/", check=False)
    assert p.returncode == 125 and b"between containers" in p.stderr


def test_export_import_round_trip(lt, tmp_path):
    arc = str(tmp_path / "exported.tar")
    lt.cli("export", "stopped", "-o", arc)
    with tarfile.open(arc) as tf:
        names = tf.getnames()
    assert "etc/passwd" in names and not any(".wh." in n for n in names)
    assert "srv/tree/sub/b" in names
    lt.cli("import", arc, "nutshell-lt/exported:1")
    assert tree_of_image(lt, "nutshell-lt/exported:1") == tree_of_container(lt, "stopped")
    out = lt.run("--rm", "nutshell-lt/exported:1", "cat", "/srv/tree/sub/b")
    assert out == "b\n"
    # export to stdout; a running container can be exported too
    p = lt.cli("export", "running")
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tf:
        running_names = tf.getnames()
    assert "srv/tree/a" in running_names and "proc" in running_names
    assert not any(n.startswith("proc/") for n in running_names)
