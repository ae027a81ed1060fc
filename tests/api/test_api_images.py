"""The image endpoints under real clients: the docker CLI 20.10 (``images``, ``image
inspect``, ``history``, ``tag``, ``rmi``, ``save | load``, ``import``, ``commit``, ``image
prune``, ``build``, ``pull``/``push`` against a real registry) and docker-py; hostile
archives, build contexts and parameters get Docker's error shape and leave the server
serving."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import tarfile
import uuid

import pytest

from tests.api.conftest import IMAGE

pytestmark = pytest.mark.integration

docker_py = pytest.importorskip("docker")


@pytest.fixture(scope="module")
def client(api):
    c = docker_py.DockerClient(base_url="unix://" + api.socket, version="1.41", timeout=120)
    yield c
    c.close()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _rmi(api, *refs: str) -> None:
    for r in refs:
        api.docker("rmi", "-f", r)


def raw(api, method: str, path: str, body: bytes = b"", headers: dict | None = None,
        chunked: bool = False) -> tuple[int, dict, bytes]:
    """One HTTP/1.1 request on the socket (the connection closed after it): status,
    headers, de-chunked body."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(api.socket)
    h = {"Host": "docker", "Connection": "close"}
    h.update(headers or {})
    if chunked:
        h["Transfer-Encoding"] = "chunked"
        payload = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    else:
        h["Content-Length"] = str(len(body))
        payload = body
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    try:
        s.sendall(head.encode() + payload)
    except (BrokenPipeError, ConnectionResetError):
        pass
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    head_b, _, rest = data.partition(b"\r\n\r\n")
    lines = head_b.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if "chunked" in hdrs.get("transfer-encoding", ""):
        out = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line, 16)
            if n == 0:
                break
            out += rest[:n]
            rest = rest[n + 2:]
        rest = out
    return status, hdrs, rest


def messages(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def tar_of(entries: list[tuple[str, bytes | None, dict]]) -> bytes:
    """A tar from (name, data or None for a non-file, TarInfo attributes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data, attrs in entries:
            ti = tarfile.TarInfo(name)
            for k, v in attrs.items():
                setattr(ti, k, v)
            if data is not None:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)
    return buf.getvalue()


# --- list, inspect, history, tag, rmi -----------------------------------------------------
def test_images_inspect_history_with_the_cli(api, docker):
    p = docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", check=True)
    assert "busybox:latest " in p.stdout.decode()
    ins = json.loads(docker("image", "inspect", IMAGE, check=True).stdout)[0]
    assert ins["Id"].startswith("sha256:") and ins["RepoTags"] == ["busybox:latest"]
    assert ins["Config"]["Cmd"] == ["sh"] and ins["RootFS"]["Type"] == "layers"
    assert ins["Os"] == "linux" and ins["Size"] > 0 and "Layers" not in ins
    p = docker("history", "--no-trunc", "--format", "{{.ID}} {{.CreatedBy}}", IMAGE, check=True)
    assert p.stdout.decode().splitlines()[0].startswith(ins["Id"])
    p = docker("image", "inspect", "nosuch:thing")
    assert p.returncode == 1 and b"No such image: nosuch:thing" in p.stderr
    p = docker("history", "nosuch:thing")
    assert p.returncode == 1 and b"No such image" in p.stderr


def test_tag_filters_and_rmi(api, docker, client):
    repo = _name("tagged")
    docker("tag", IMAGE, f"{repo}:v1", check=True)
    docker("tag", IMAGE, f"localhost:5000/{repo}", check=True)
    out = docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout.decode()
    assert f"{repo}:v1" in out and f"localhost:5000/{repo}:latest" in out
    out = docker("images", "--filter", f"reference={repo}", "--format", "{{.Repository}}:{{.Tag}}",
                 check=True).stdout.decode()
    assert out.split() == [f"{repo}:v1"]
    assert docker("images", "-q", "--filter", "dangling=true", check=True).stdout == b""
    p = docker("images", "--filter", "dangling=maybe")
    assert p.returncode == 1 and b"invalid filter 'dangling=maybe'" in p.stderr
    p = docker("images", "--filter", "colour=red")
    assert p.returncode == 1 and b"invalid filter 'colour'" in p.stderr
    assert f"{repo}:v1" in client.images.get(f"{repo}:v1").tags
    listed = client.images.list(name=repo)       # docker-py re-inspects: every tag shows
    assert len(listed) == 1 and f"{repo}:v1" in listed[0].tags
    p = docker("tag", IMAGE, "Bad/Upper:x")
    assert p.returncode == 1 and b"invalid reference format" in p.stderr
    p = docker("rmi", f"{repo}:v1", check=True)
    assert p.stdout.decode().splitlines() == [f"Untagged: {repo}:v1"]
    client.images.remove(f"localhost:5000/{repo}")
    p = docker("rmi", f"{repo}:v1")
    assert p.returncode == 1 and b"No such image" in p.stderr
    # a running container's image cannot go
    cid = docker("run", "-d", IMAGE, "sleep", "30", check=True).stdout.decode().strip()
    try:
        p = docker("rmi", IMAGE)
        assert p.returncode == 1 and b"conflict" in p.stderr
    finally:
        docker("rm", "-f", cid)
    # tag with the raw API: 201, and a missing repo is a 400
    status, _, _ = raw(api, "POST", f"/v1.41/images/{IMAGE}/tag?repo={repo}&tag=raw")
    assert status == 201
    status, _, body = raw(api, "POST", f"/v1.41/images/{IMAGE}/tag")
    assert status == 400 and "message" in json.loads(body)
    status, _, body = raw(api, "DELETE", f"/v1.41/images/{repo}:raw")
    assert status == 200 and json.loads(body) == [{"Untagged": f"{repo}:raw"}]


def test_save_load_and_import(api, docker, client, tmp_path):
    repo = _name("saved")
    docker("tag", IMAGE, f"{repo}:v1", check=True)
    tar = docker("save", f"{repo}:v1", check=True).stdout
    assert len(tar) > 100_000
    names = tarfile.open(fileobj=io.BytesIO(tar)).getnames()
    assert "manifest.json" in names
    docker("rmi", f"{repo}:v1", check=True)
    p = docker("load", input=tar, check=True)
    assert p.stdout.decode().strip().splitlines()[-1] == f"Loaded image: {repo}:v1"
    # docker-py: get(...).save() -> load
    data = b"".join(client.api.get_image(f"{repo}:v1"))
    docker("rmi", f"{repo}:v1", check=True)
    loaded = client.images.load(data)
    assert f"{repo}:v1" in loaded[0].tags
    # GET /images/get?names=a&names=b
    status, hdrs, body = raw(api, "GET", f"/v1.41/images/get?names={repo}:v1&names={IMAGE}")
    assert status == 200 and hdrs["content-type"] == "application/x-tar"
    mani = json.load(tarfile.open(fileobj=io.BytesIO(body)).extractfile("manifest.json"))
    assert sorted(t for m in mani for t in m["RepoTags"]) == sorted([f"{repo}:v1", IMAGE])
    status, _, body = raw(api, "GET", "/v1.41/images/nosuch:x/get")
    assert status == 404 and json.loads(body)["message"] == "No such image: nosuch:x"
    # docker import from stdin, with a change
    rootfs = tar_of([("hello.txt", b"imported\n", {"mode": 0o644})])
    p = docker("import", "-c", "CMD [\"/hello.txt\"]", "-m", "from a test", "-", f"{repo}:imp",
               input=rootfs, check=True)
    assert p.stdout.decode().strip().startswith("sha256:")
    ins = json.loads(docker("image", "inspect", f"{repo}:imp", check=True).stdout)[0]
    assert ins["Config"]["Cmd"] == ["/hello.txt"] and ins["Comment"] == "from a test"
    _rmi(api, f"{repo}:v1", f"{repo}:imp")


def test_hostile_archives_and_params(api, docker):
    # load: not a tar, an empty body, a truncated one
    status, _, body = raw(api, "POST", "/v1.41/images/load", b"this is not a tar" * 100)
    assert status in (400, 500) and "message" in json.loads(body)
    status, _, body = raw(api, "POST", "/v1.41/images/load", b"")
    assert status in (400, 500) and "message" in json.loads(body)
    good = docker("save", IMAGE, check=True).stdout
    status, _, body = raw(api, "POST", "/v1.41/images/load", good[: len(good) // 2])
    assert status in (400, 500) or json.loads(body.splitlines()[-1]).get("error")
    # load: a tar with ../ and absolute names (load only reads its members: nothing lands)
    evil = tar_of([("../../../../tmp/nutshell-evil-load", b"x", {}),
                   ("/tmp/nutshell-evil-load2", b"x", {})])
    status, _, body = raw(api, "POST", "/v1.41/images/load", evil)
    assert status in (400, 500) and "message" in json.loads(body)
    assert not os.path.exists("/tmp/nutshell-evil-load") and not os.path.exists("/tmp/nutshell-evil-load2")
    # filters of the wrong type
    status, _, body = raw(api, "GET", "/v1.41/images/json?filters=%5B1%2C2%5D")
    assert status == 400 and "message" in json.loads(body)
    status, _, body = raw(api, "GET", "/v1.41/images/json?filters=%7Bnot%20json")
    assert status == 400
    status, _, body = raw(api, "POST", "/v1.41/images/prune?filters=%7B%22dangling%22%3A%5B%22x%22%5D%7D")
    assert status == 400
    # a malformed X-Registry-Auth
    status, _, body = raw(api, "POST", "/v1.41/images/create?fromImage=127.0.0.1:1/x&tag=y",
                          headers={"X-Registry-Auth": "!!!not base64!!!"})
    assert status == 400 and "X-Registry-Auth" in json.loads(body)["message"]
    status, _, body = raw(api, "POST", "/v1.41/images/create?fromImage=UPPER/case")
    assert status == 400
    # still serving
    assert docker("images", "-q", check=True).stdout.strip()


def test_image_prune(api, docker, client):
    repo = _name("prunable")
    rootfs = tar_of([("f", b"prune me\n", {"mode": 0o644})])
    docker("import", "-", f"{repo}:a", input=rootfs, check=True)
    iid = json.loads(docker("image", "inspect", f"{repo}:a", check=True).stdout)[0]["Id"]
    docker("tag", f"{repo}:a", f"{repo}:b", check=True)
    docker("rmi", f"{repo}:a", f"{repo}:b", check=True)
    docker("import", "-", input=rootfs + b"", check=True)      # an untagged (dangling) image
    dangling = docker("images", "-q", "--no-trunc", "--filter", "dangling=true", check=True).stdout.decode().split()
    assert len(dangling) == 1
    p = docker("image", "prune", "-f", check=True)
    assert dangling[0] in p.stdout.decode() and b"Total reclaimed space" in p.stdout
    assert docker("images", "-q", "--filter", "dangling=true", check=True).stdout == b""
    assert iid
    # docker-py
    assert client.images.prune(filters={"dangling": True})["ImagesDeleted"] is None
