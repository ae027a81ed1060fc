"""``docker cp`` through the API (GET/HEAD/PUT /containers/{id}/archive) with the docker CLI
20.10 and docker-py, and hostile archives and paths: nothing may be written or read
outside the container's root."""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
import uuid

import docker as dockerpy
import pytest

from tests.api.test_api_exec import raw

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def box(api):
    api.docker("volume", "create", "cpvol", check=True)
    api.docker("run", "-d", "--name", "cpbox", "-v", "cpvol:/data", "busybox", "sleep", "3600",
               check=True)
    cid = api.docker("inspect", "-f", "{{.Id}}", "cpbox", check=True).stdout.decode().strip()
    yield cid
    api.docker("rm", "-f", "cpbox")
    api.docker("volume", "rm", "cpvol")



def _tar(*members: tuple) -> bytes:
    """members: (name, kind, data_or_target) with kind "file", "dir", "sym", "hard"."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, arg in members:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                ti.size = len(arg)
                tf.addfile(ti, io.BytesIO(arg))
                continue
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, arg
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, arg
            tf.addfile(ti)
    return buf.getvalue()


def _put(api, cid: str, path: str, body: bytes, query: str = "") -> tuple[int, bytes]:
    return raw(api, "PUT", f"/v1.41/containers/{cid}/archive?path={path}{query}", body,
               {"Content-Type": "application/x-tar"})


# --- the docker CLI --------------------------------------------------------------------
def test_cp_file_and_dir_both_ways(docker, box, tmp_path):
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello from the host\n")
    docker("cp", str(src), "cpbox:/tmp/", check=True)
    assert docker("exec", "cpbox", "cat", "/tmp/hello.txt", check=True).stdout == b"hello from the host\n"
    docker("cp", str(src), "cpbox:/tmp/renamed.txt", check=True)
    assert docker("exec", "cpbox", "cat", "/tmp/renamed.txt").stdout == b"hello from the host\n"

    d = tmp_path / "tree"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "f").write_bytes(b"deep\n")
    os.symlink("sub/f", d / "link")
    docker("cp", str(d), "cpbox:/tmp/tree", check=True)
    p = docker("exec", "cpbox", "sh", "-c", "cat /tmp/tree/sub/f; readlink /tmp/tree/link", check=True)
    assert p.stdout == b"deep\nsub/f\n"

    docker("exec", "cpbox", "sh", "-c", "mkdir -p /tmp/out/a && echo x > /tmp/out/a/b", check=True)
    docker("cp", "cpbox:/tmp/out", str(tmp_path / "back"), check=True)
    assert (tmp_path / "back" / "a" / "b").read_bytes() == b"x\n"
    docker("cp", "cpbox:/etc/hostname", str(tmp_path / "hostname"), check=True)
    assert (tmp_path / "hostname").read_bytes() == docker("exec", "cpbox", "cat", "/etc/hostname").stdout


def test_cp_tar_streams_and_errors(docker, box, tmp_path):
    p = docker("cp", "cpbox:/etc/hostname", "-", check=True)
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tf:
        assert tf.getnames() == ["hostname"]
    docker("cp", "-", "cpbox:/tmp", input=_tar(("streamed", "file", b"via stdin\n")), check=True)
    assert docker("exec", "cpbox", "cat", "/tmp/streamed").stdout == b"via stdin\n"
    p = docker("cp", "cpbox:/no/such/file", str(tmp_path / "x"))
    assert p.returncode != 0 and b"No such container:path: cpbox:/no/such/file" in p.stderr
    p = docker("cp", str(tmp_path), "cpbox:/etc/hostname")
    assert p.returncode != 0


def test_cp_into_volume_and_stopped_container(docker, box, tmp_path):
    f = tmp_path / "vol.txt"
    f.write_bytes(b"in the volume\n")
    docker("cp", str(f), "cpbox:/data/", check=True)
    p = docker("run", "--rm", "-v", "cpvol:/v", "busybox", "cat", "/v/vol.txt", check=True)
    assert p.stdout == b"in the volume\n"
    docker("create", "--name", "cpstopped", "-v", "cpvol:/data", "busybox", "true", check=True)
    try:
        docker("cp", str(f), "cpstopped:/root/", check=True)
        docker("cp", "cpstopped:/root/vol.txt", str(tmp_path / "again"), check=True)
        assert (tmp_path / "again").read_bytes() == b"in the volume\n"
        docker("cp", "cpstopped:/data/vol.txt", str(tmp_path / "fromvol"), check=True)
        assert (tmp_path / "fromvol").read_bytes() == b"in the volume\n"
    finally:
        docker("rm", "cpstopped")


# --- docker-py -------------------------------------------------------------------------
def test_dockerpy_put_get_archive(client, box):
    c = client.containers.get(box)
    assert c.put_archive("/tmp", _tar(("py", "dir", None), ("py/file", "file", b"from docker-py\n")))
    stream, st = c.get_archive("/tmp/py")
    data = b"".join(stream)
    assert st["name"] == "py" and st["mode"] & (1 << 31)        # Go's os.ModeDir
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert sorted(tf.getnames()) == ["py", "py/file"]
        assert tf.extractfile("py/file").read() == b"from docker-py\n"
    _, st = c.get_archive("/tmp/py/file")
    assert st["size"] == 15 and st["mode"] & 0o777 and not st["mode"] & (1 << 31)
    with pytest.raises(dockerpy.errors.NotFound):
        c.get_archive("/no/such/path")


def test_head_archive_stat(api, box):
    api.docker("exec", "cpbox", "ln", "-sf", "/etc/hostname", "/tmp/hlink", check=True)
    status, _ = raw(api, "HEAD", f"/v1.41/containers/{box}/archive?path=/tmp/hlink")
    assert status == 200
    c = dockerpy.APIClient(base_url="unix://" + api.socket, version="1.41")
    try:
        res = c.head(c._url("/containers/{0}/archive", box), params={"path": "/tmp/hlink"})
        doc = json.loads(base64.b64decode(res.headers["X-Docker-Container-Path-Stat"]))
        assert doc["linkTarget"] == "/etc/hostname" and doc["mode"] & (1 << 27)   # ModeSymlink
        assert doc["name"] == "hlink" and doc["mtime"].endswith("Z")
    finally:
        c.close()
    status, _ = raw(api, "HEAD", f"/v1.41/containers/{box}/archive?path=/no/such")
    assert status == 404


# --- hostile archives and paths --------------------------------------------------------
def test_hostile_tar_members_stay_inside(api, box, tmp_path):
    api.docker("exec", "cpbox", "mkdir", "-p", "/tmp/dst", check=True)
    marker = f"nutshell-escape-{uuid.uuid4().hex[:8]}"
    host_targets = [f"/tmp/{marker}", f"/{marker}", str(tmp_path / marker)]
    attacks = [
        _tar((f"../../../../../../tmp/{marker}", "file", b"dotdot")),
        _tar((f"/tmp/{marker}", "file", b"absolute")),
        _tar(("out", "sym", "/"), (f"out/tmp/{marker}", "file", b"through a symlink")),
        _tar(("up", "sym", "../../../../../../../"), (f"up/tmp/{marker}", "file", b"via ..")),
        _tar(("tmp2", "sym", str(tmp_path)), (f"tmp2/{marker}", "file", b"host dir link")),
        _tar(("hl", "hard", "/etc/passwd")),
        _tar(("hl2", "hard", "../../../../etc/shadow")),
        _tar(("proc", "sym", "/proc/self/root"), (f"proc/tmp/{marker}", "file", b"magic link")),
    ]
    for body in attacks:
        status, data = _put(api, box, "/tmp/dst", body)
        for t in host_targets:
            assert not os.path.exists(t), (t, body[:200])
        if status != 200:
            assert status in (400, 500) and "message" in json.loads(data)
    # what was allowed landed inside the container, under the destination
    inside = api.docker("exec", "cpbox", "find", "/tmp/dst", "/tmp", "-maxdepth", "1").stdout
    assert marker.encode() not in inside or b"/tmp/dst" in inside
    # the container's own /etc/passwd is intact (a hardlink may not pull the host's in)
    host_passwd = open("/etc/passwd", "rb").read()
    assert api.docker("exec", "cpbox", "cat", "/etc/passwd").stdout != host_passwd


def test_destination_symlinks_are_resolved_in_the_container(api, box):
    marker = f"nutshell-dest-{uuid.uuid4().hex[:8]}"
    os.makedirs(f"/tmp/{marker}-hostdir")
    try:
        api.docker("exec", "cpbox", "sh", "-c",
                   f"ln -sfn /tmp/{marker}-hostdir /tmp/tohost; ln -sfn /proc/self/root /tmp/procroot;"
                   f" ln -sfn /proc/1/root/tmp /tmp/proc1; ln -sfn ../../../../../../tmp /tmp/updir",
                   check=True)
        for dst in ("/tmp/tohost", "/tmp/procroot", "/tmp/proc1", "/tmp/updir",
                    "/proc/self/root/tmp", "/../../../tmp"):
            status, data = _put(api, box, dst, _tar((marker, "file", b"x")))
            assert not os.path.exists(f"/tmp/{marker}-hostdir/{marker}"), dst
            assert not os.path.exists(f"/tmp/{marker}"), dst
            assert not os.path.exists(f"/{marker}"), dst
            if status != 200:
                assert "message" in json.loads(data), dst
    finally:
        os.rmdir(f"/tmp/{marker}-hostdir")


def test_source_paths_never_read_the_host(api, box):
    host_hostname = open("/etc/hostname", "rb").read() if os.path.exists("/etc/hostname") else b""
    container_hostname = api.docker("exec", "cpbox", "cat", "/etc/hostname").stdout
    api.docker("exec", "cpbox", "sh", "-c",
               "ln -sfn /../../../../etc /tmp/etclink; ln -sfn /proc/1/root /tmp/p1",
               check=True)
    for path in ("/../../../../etc/hostname", "/tmp/etclink/hostname", "../etc/hostname"):
        status, data = raw(api, "GET", f"/v1.41/containers/{box}/archive?path={path}")
        assert status == 200, (path, data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            content = tf.extractfile(tf.getmembers()[0]).read()
        assert content == container_hostname
        if host_hostname != container_hostname:
            assert content != host_hostname
    for path in ("/tmp/p1/etc/hostname", "/proc/self/root/etc/shadow", "/proc/1/root/etc/shadow"):
        status, data = raw(api, "GET", f"/v1.41/containers/{box}/archive?path={path}")
        if status == 200:
            with tarfile.open(fileobj=io.BytesIO(data)) as tf:
                m = tf.getmembers()[0]
                content = tf.extractfile(m).read() if m.isfile() else b""
            assert content in (container_hostname, b""), path
            assert b"root:" not in content or content != open("/etc/shadow", "rb").read()
        else:
            assert status in (400, 404) and "message" in json.loads(data), path


def test_archive_bad_requests(api, box):
    cases = [
        ("GET", f"/v1.41/containers/{box}/archive", None, 400),
        ("GET", f"/v1.41/containers/{box}/archive?path=", None, 400),
        ("GET", "/v1.41/containers/nosuch/archive?path=/", None, 404),
        ("PUT", f"/v1.41/containers/{box}/archive?path=/etc/hostname", _tar(("a", "file", b"")), 400),
        ("PUT", f"/v1.41/containers/{box}/archive?path=/no/such/dir", _tar(("a", "file", b"")), 404),
        ("PUT", f"/v1.41/containers/{box}/archive?path=/tmp", b"this is not a tar" * 100, 400),
        ("PUT", f"/v1.41/containers/{box}/archive?path=/tmp", _tar(("t", "file", b"x" * 5000))[:1024], 400),
    ]
    for method, path, body, status in cases:
        got, data = raw(api, method, path, body)
        assert got == status, (method, path, got, data)
        assert "message" in json.loads(data)
    # a directory never replaces a file (noOverwriteDirNonDir, what the CLI asks for)
    api.docker("exec", "cpbox", "sh", "-c", "mkdir -p /tmp/nd && echo f > /tmp/nd/f", check=True)
    got, data = _put(api, box, "/tmp/nd", _tar(("f", "dir", None)), "&noOverwriteDirNonDir=true")
    assert got == 400 and "message" in json.loads(data)
    p = api.docker("exec", "cpbox", "cat", "/tmp/nd/f")
    assert p.stdout == b"f\n", p
    # without it (docker-py's put_archive) dockerd replaces one kind with the other
    got, data = _put(api, box, "/tmp/nd", _tar(("f", "dir", None), ("f/in", "file", b"i")))
    assert got == 200, data
    api.docker("exec", "cpbox", "sh", "-c", "mkdir -p /tmp/nd/d/sub && ln -s /etc /tmp/nd/d/l",
               check=True)
    got, data = _put(api, box, "/tmp/nd", _tar(("d", "file", b"now a file")))
    assert got == 200, data
    p = api.docker("exec", "cpbox", "sh", "-c", "cat /tmp/nd/f/in; echo; cat /tmp/nd/d; ls /etc/passwd")
    assert p.stdout == b"i\nnow a file/etc/passwd\n", p


def test_put_owners_and_compression(api, box):
    """Owners are root's unless copyUIDGID (docker cp -a); a gzipped tar is accepted."""
    import gzip

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("owned")
        ti.uid, ti.gid, ti.size = 1234, 4321, 2
        tf.addfile(ti, io.BytesIO(b"x\n"))
    body = buf.getvalue()
    api.docker("exec", "cpbox", "mkdir", "-p", "/tmp/own1", "/tmp/own2", "/tmp/own3", check=True)
    assert _put(api, box, "/tmp/own1", body)[0] == 200
    assert _put(api, box, "/tmp/own2", body, "&copyUIDGID=1")[0] == 200
    assert _put(api, box, "/tmp/own3", gzip.compress(body))[0] == 200
    p = api.docker("exec", "cpbox", "stat", "-c", "%u:%g", "/tmp/own1/owned", "/tmp/own2/owned",
                   "/tmp/own3/owned", check=True)
    assert p.stdout.split() == [b"0:0", b"1234:4321", b"0:0"]


def test_cp_archive_mode_keeps_owners(docker, box, tmp_path):
    f = tmp_path / "mine"
    f.write_bytes(b"m\n")
    os.chown(f, 2345, 2345)
    docker("cp", str(f), "cpbox:/tmp/plain", check=True)
    docker("cp", "-a", str(f), "cpbox:/tmp/archived", check=True)
    p = docker("exec", "cpbox", "stat", "-c", "%u", "/tmp/plain", "/tmp/archived", check=True)
    assert p.stdout.split() == [b"0", b"2345"]


def test_put_into_proc_and_sys_is_refused(api, box):
    """procfs and sysfs in the container are not a way to the host's kernel settings."""
    before = open("/proc/sys/kernel/core_pattern", "rb").read()
    for path, name in (("/proc/sys/kernel", "core_pattern"), ("/sys/kernel", "uevent_helper"),
                       ("/proc", "sysrq-trigger")):
        status, data = _put(api, box, path, _tar((name, "file", b"|/tmp/evil")))
        assert status in (400, 404), (path, status, data)
        assert "message" in json.loads(data)
    assert open("/proc/sys/kernel/core_pattern", "rb").read() == before
    # devices and procfs files come out as what they are, never as endless content
    for path in ("/dev/zero", "/proc/1/mem"):
        status, data = raw(api, "GET", f"/v1.41/containers/{box}/archive?path={path}")
        assert status == 200 and len(data) < 64 * 1024, (path, len(data))


def test_cp_follow_links_contents_and_read_only(docker, box, tmp_path):
    docker("exec", "cpbox", "sh", "-c",
           "ln -sfn /etc/hostname /tmp/lnk; mkdir -p /tmp/cont/x && echo c > /tmp/cont/x/y",
           check=True)
    docker("cp", "cpbox:/tmp/lnk", str(tmp_path / "as-link"), check=True)
    assert os.readlink(tmp_path / "as-link") == "/etc/hostname"
    docker("cp", "-L", "cpbox:/tmp/lnk", str(tmp_path / "followed"), check=True)
    assert (tmp_path / "followed").read_bytes() == docker("exec", "cpbox", "cat", "/etc/hostname").stdout
    (tmp_path / "into").mkdir()
    docker("cp", "cpbox:/tmp/cont/.", str(tmp_path / "into"), check=True)
    assert (tmp_path / "into" / "x" / "y").read_bytes() == b"c\n"
    f = tmp_path / "ro.txt"
    f.write_bytes(b"ro")
    docker("run", "-d", "--name", "cpro", "--read-only", "-v", "cpvol:/ro:ro", "busybox",
           "sleep", "600", check=True)
    try:
        p = docker("cp", str(f), "cpro:/ro/")
        assert p.returncode != 0 and b"read-only" in p.stderr, p
        p = docker("cp", str(f), "cpro:/tmp/")
        assert p.returncode != 0 and b"read-only" in p.stderr, p
        docker("cp", "cpro:/etc/hostname", str(tmp_path / "fromro"), check=True)
    finally:
        docker("rm", "-f", "cpro")
