"""Volumes and mounts on real containers: named volumes persist and are seeded from the
image, read-only is enforced, in-use removal is refused, bind mounts ro/rw, tmpfs,
anonymous volumes (image VOLUMEs, -v /path) go with rm -v and --rm."""

from __future__ import annotations

import json
import os

import pytest

from tests.integration.test_layers_commit import IMAGE, LT, lt_root

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lt(tmp_path_factory, busybox_rootfs):
    with lt_root(tmp_path_factory, busybox_rootfs, "lt-vol", volumes=True) as r:
        yield r


def names(lt: LT) -> set[str]:
    return set(lt.cli("volume", "ls", "-q").stdout.decode().split())


def test_named_volume_persists_and_is_seeded_from_the_image(lt):
    assert lt.cli("volume", "create", "--label", "k=v", "explicit").stdout.decode().strip() == "explicit"
    # a volume created implicitly by -v, mounted where the image has files: seeded
    out = lt.run("--rm", "-v", "etcvol:/etc", IMAGE, "sh", "-c",
                 "cat /etc/group | head -1; echo written > /etc/mine")
    assert out.startswith("root:x:0:")
    data = lt.engine.volume_inspect("etcvol")["Mountpoint"]
    assert sorted(os.listdir(data))[:2] == ["group", "hostname"] and os.path.exists(f"{data}/mine")
    # the next container sees the volume's content, not the image's (no re-seeding)
    out = lt.run("--rm", "-v", "etcvol:/etc", IMAGE, "cat", "/etc/mine")
    assert out == "written\n"
    # nocopy: an empty named volume stays empty
    out = lt.run("--rm", "-v", "emptyvol:/home:nocopy", IMAGE, "ls", "-A", "/home")
    assert out == ""
    # an explicit volume over a directory with the image's owner/mode gets them
    out = lt.run("--rm", "-v", "homevol:/home/app", IMAGE, "stat", "-c", "%u:%g", "/home/app")
    assert out.strip() == "1000:1000"
    v = json.loads(lt.cli("volume", "inspect", "explicit").stdout)[0]
    assert v["Labels"] == {"k": "v"} and v["Driver"] == "local" and v["Scope"] == "local"
    assert {"explicit", "etcvol", "emptyvol", "homevol"} <= names(lt)


def test_readonly_volume_and_in_use_removal(lt):
    lt.run("--rm", "-v", "rovol:/data", IMAGE, "sh", "-c", "echo seed > /data/f")
    out = lt.run("--rm", "-v", "rovol:/data:ro", IMAGE, "sh", "-c",
                 "cat /data/f; echo no > /data/g 2>/dev/null; echo rc=$?")
    assert out.splitlines() == ["seed", "rc=1"]
    out = lt.run("--rm", "--mount", "type=volume,source=rovol,target=/d,readonly", IMAGE,
                 "sh", "-c", "touch /d/x 2>/dev/null; echo rc=$?")
    assert out.strip() == "rc=1"
    cid = lt.run("-d", "-v", "rovol:/data", IMAGE, "sleep", "600").strip()
    p = lt.cli("volume", "rm", "rovol", check=False)
    assert p.returncode == 1 and b"volume is in use" in p.stderr and cid.encode() in p.stderr
    lt.cli("stop", "-t", "0", cid)
    p = lt.cli("volume", "rm", "rovol", check=False)          # stopped still counts
    assert p.returncode == 1 and b"in use" in p.stderr
    lt.cli("rm", cid)
    assert lt.cli("volume", "rm", "rovol").stdout.decode().strip() == "rovol"
    assert "rovol" not in names(lt)


def test_bind_mounts_rw_ro_and_tmpfs(lt, tmp_path):
    host = tmp_path / "share"
    host.mkdir()
    (host / "in").write_text("from host\n")
    out = lt.run("--rm", "-v", f"{host}:/share", "--tmpfs", "/scratch:size=1m",
                 "--mount", f"type=bind,source={host},target=/ro,readonly", IMAGE, "sh", "-c",
                 "cat /share/in; echo back > /share/out; touch /ro/x 2>/dev/null; echo ro=$?; "
                 "grep ' /scratch ' /proc/mounts; echo t > /scratch/t && cat /scratch/t")
    lines = out.splitlines()
    assert lines[0] == "from host" and lines[1] == "ro=1"
    assert lines[2].startswith("tmpfs /scratch tmpfs rw,nosuid,nodev,noexec") and "size=1024k" in lines[2]
    assert lines[3] == "t"
    assert (host / "out").read_text() == "back\n" and not (host / "x").exists()
    # a -v bind source that does not exist is created (Docker); --mount refuses it
    lt.run("--rm", "-v", f"{tmp_path}/made:/m", IMAGE, "true")
    assert (tmp_path / "made").is_dir()
    p = lt.cli("run", "--rm", "--network", "none", "--mount",
               f"type=bind,source={tmp_path}/nothere,target=/m", IMAGE, "true", check=False)
    assert p.returncode == 125 and b"does not exist" in p.stderr
    # the mount targets are not changes of the container
    cid = lt.run("-d", "-v", f"{host}:/newtarget", "--tmpfs", "/tmpfs-here", IMAGE,
                 "sleep", "600").strip()
    try:
        assert lt.engine.container_diff(cid) == []
        mounts = lt.engine.container_inspect(cid)["Mounts"]
        assert [(m["Type"], m["Destination"]) for m in mounts] == [
            ("bind", "/newtarget"), ("tmpfs", "/tmpfs-here")]
        assert mounts[0]["Source"] == str(host) and mounts[0]["RW"] is True
    finally:
        lt.engine.rm(cid, force=True)


def test_anonymous_volumes_image_volume_rm_v_and_auto_remove(lt):
    before = names(lt)
    lt.run("--name", "mkvolimg", IMAGE, "sh", "-c", "mkdir -p /appdata && echo img > /appdata/f")
    lt.cli("commit", "-q", "-c", "VOLUME /appdata", "mkvolimg", "nutshell-lt/withvol:1")
    lt.cli("rm", "mkvolimg")
    cid = lt.run("-d", "nutshell-lt/withvol:1", "sleep", "600").strip()
    mounts = lt.engine.container_inspect(cid)["Mounts"]
    assert len(mounts) == 1 and mounts[0]["Destination"] == "/appdata" and mounts[0]["Type"] == "volume"
    anon = mounts[0]["Name"]
    assert len(anon) == 64 and anon in names(lt)
    assert lt.cli("exec", cid, "cat", "/appdata/f").stdout == b"img\n"     # seeded
    lt.cli("rm", "-f", "-v", cid)
    assert names(lt) == before
    # --rm removes the anonymous volumes when the container exits (in the shim)
    lt.run("--rm", "-v", "/anon1", "nutshell-lt/withvol:1", "sh", "-c", "echo x > /anon1/x")
    assert names(lt) == before
    # without -v a removed container's anonymous volume stays (prune takes it)
    cid = lt.run("-d", "-v", "/anon2", IMAGE, "sleep", "600").strip()
    lt.cli("rm", "-f", cid)
    left = names(lt) - before
    assert len(left) == 1
    res = lt.cli("volume", "prune", "-f").stdout.decode()
    assert next(iter(left)) in res and names(lt) == before


def test_bad_mount_specs(lt):
    before, vols = len(lt.engine.ps(all=True)), names(lt)
    for args in (["-v", "rel/path:/x"], ["-v", "v:/x:bogus"], ["--mount", "type=nfs,target=/x"],
                 ["-v", "av:/same", "--tmpfs", "/same"], ["-v", "x:/"]):
        p = lt.cli("run", "--rm", "--network", "none", *args, IMAGE, "true", check=False)
        assert p.returncode == 125, args
    assert len(lt.engine.ps(all=True)) == before and names(lt) == vols     # nothing left half-made
