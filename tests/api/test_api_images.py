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
    assert client.images.get(f"{repo}:v1").history()[0]["Tags"]
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
    docker("rmi", f"{repo}:v1", check=True)
    p = docker("load", "-q", input=tar, check=True)
    assert p.stdout.decode() == f"Loaded image: {repo}:v1\n"
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
    # load (dockerd answers 200 and ends the stream with the error): not a tar, an empty
    # body, a truncated archive, one with ../ and absolute names (nothing lands)
    good = docker("save", IMAGE, check=True).stdout
    evil = tar_of([("../../../../tmp/nutshell-evil-load", b"x", {}),
                   ("/tmp/nutshell-evil-load2", b"x", {})])
    for bad in (b"this is not a tar" * 100, b"", good[: len(good) // 2], evil):
        status, _, body = raw(api, "POST", "/v1.41/images/load", bad)
        last = json.loads(body.splitlines()[-1])
        assert status == 200 and last["error"] and last["errorDetail"]["message"], body
    assert not os.path.exists("/tmp/nutshell-evil-load") and not os.path.exists("/tmp/nutshell-evil-load2")
    p = docker("load", input=b"garbage" * 10)
    assert p.returncode == 1 and p.stderr
    # filters of the wrong type
    status, _, body = raw(api, "GET", "/v1.41/images/json?filters=%5B1%2C2%5D")
    assert status == 400 and "message" in json.loads(body)
    status, _, body = raw(api, "GET", "/v1.41/images/json?filters=%7Bnot%20json")
    assert status == 400
    status, _, body = raw(api, "POST", "/v1.41/images/prune?filters=%7B%22dangling%22%3A%5B%22x%22%5D%7D")
    assert status == 400
    # a malformed X-Registry-Auth counts as none (dockerd): the pull goes on, and fails here
    # because nothing listens on port 1
    status, _, body = raw(api, "POST", "/v1.41/images/create?fromImage=127.0.0.1:1/x&tag=y",
                          headers={"X-Registry-Auth": "!!!not base64!!!"})
    last = json.loads(body.splitlines()[-1])
    assert "X-Registry-Auth" not in body.decode() and ("message" in last or "error" in last)
    status, _, body = _build_raw_h(api, {"X-Registry-Config": "%%%"})
    assert status == 200 and "Successfully built" in body.decode()
    status, _, body = raw(api, "POST", "/v1.41/images/create?fromImage=UPPER/case")
    assert status == 400
    status, _, body = raw(api, "POST", "/v1.41/images/create?fromImage=busybox&tag=x&platform=bogus")
    assert status == 400 and "platform" in json.loads(body)["message"]
    status, _, body = raw(api, "POST", f"/v1.41/images/{IMAGE}/tag?repo=sha256&tag=x")
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
    def dangling() -> set[str]:
        return set(docker("images", "-q", "--no-trunc", "--filter", "dangling=true",
                          check=True).stdout.decode().split())

    before = dangling()   # another test of this module on the same server may have left some
    docker("import", "-", input=rootfs + b"", check=True)      # an untagged (dangling) image
    new = sorted(dangling() - before)
    assert len(new) == 1
    p = docker("image", "prune", "-f", check=True)
    assert new[0] in p.stdout.decode() and b"Total reclaimed space" in p.stdout
    assert docker("images", "-q", "--filter", "dangling=true", check=True).stdout == b""
    assert iid
    # docker-py
    assert client.images.prune(filters={"dangling": True})["ImagesDeleted"] is None
    # -a with a label: unused tagged images with that label go, busybox stays
    docker("import", "-c", f"LABEL prune.me={repo}", "-", f"{repo}:labelled",
           input=tar_of([("g", b"labelled\n", {"mode": 0o644})]), check=True)
    p = docker("image", "prune", "-a", "-f", "--filter", f"label=prune.me={repo}", check=True)
    assert f"untagged: {repo}:labelled" in p.stdout.decode()
    assert docker("image", "inspect", IMAGE).returncode == 0
    assert docker("image", "inspect", f"{repo}:labelled").returncode == 1


# --- commit ------------------------------------------------------------------------------
def test_commit_with_the_cli_and_docker_py(api, docker, client):
    repo = _name("committed")
    name = _name("src")
    docker("run", "-d", "--name", name, IMAGE, "sh", "-c", "echo committed-data > /data.txt",
           check=True)
    assert docker("wait", name, check=True).stdout == b"0\n"
    p = docker("commit", "-c", "CMD [\"cat\", \"/data.txt\"]", "-c", "ENV COLOUR=blue",
               "-m", "a message", "-a", "someone", name, f"{repo}:v1", check=True)
    iid = p.stdout.decode().strip()
    assert iid.startswith("sha256:")
    ins = json.loads(docker("image", "inspect", f"{repo}:v1", check=True).stdout)[0]
    assert ins["Id"] == iid and ins["Author"] == "someone" and ins["Comment"] == "a message"
    assert ins["Config"]["Cmd"] == ["cat", "/data.txt"] and "COLOUR=blue" in ins["Config"]["Env"]
    p = docker("run", "--rm", f"{repo}:v1", check=True)
    assert p.stdout == b"committed-data\n"
    # docker-py: container.commit with a config in the body
    img = client.containers.get(name).commit(repository=repo, tag="v2",
                                             conf={"Cmd": ["echo", "from-py"],
                                                   "Labels": {"made.by": "docker-py"}})
    assert f"{repo}:v2" in img.tags and img.labels == {"made.by": "docker-py"}
    assert client.containers.run(f"{repo}:v2", remove=True) == b"from-py\n"
    p = docker("commit", "nosuchcontainer", f"{repo}:v3")
    assert p.returncode == 1 and b"No such container: nosuchcontainer" in p.stderr
    status, _, body = raw(api, "POST", f"/v1.41/commit?container={name}", b"[1,2]",
                          {"Content-Type": "application/json"})
    assert status == 400 and "message" in json.loads(body)
    docker("rm", name, check=True)
    _rmi(api, f"{repo}:v1", f"{repo}:v2")


# --- build -------------------------------------------------------------------------------
def _context(tmp_path, marker: str) -> str:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "ARG GREETING=hello\n"
        "COPY app.sh /app/app.sh\n"
        "RUN chmod +x /app/app.sh && echo \"$GREETING\" > /app/greeting && echo built-step-output\n"
        "LABEL stage=test\n"
        "CMD [\"/app/app.sh\"]\n")
    (ctx / "app.sh").write_text(f"#!/bin/sh\necho {marker} $(cat /app/greeting)\n")
    (ctx / ".dockerignore").write_text("ignored.txt\n")
    (ctx / "ignored.txt").write_text("not sent\n")
    return str(ctx)


def test_build_with_the_cli_then_run_and_cache(api, docker, tmp_path):
    repo = _name("built")
    ctx = _context(tmp_path, "marker-1")
    p = docker("build", "-t", f"{repo}:v1", "--build-arg", "GREETING=bonjour", ctx, timeout=300)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert "Step 1/6 : FROM busybox" in out and "Step 3/6 : COPY app.sh /app/app.sh" in out
    assert "\nbuilt-step-output\n" in out and " ---> Running in " in out
    assert "Successfully built " in out and f"Successfully tagged {repo}:v1" in out
    p = docker("run", "--rm", f"{repo}:v1", check=True)
    assert p.stdout == b"marker-1 bonjour\n"
    ins = json.loads(docker("image", "inspect", f"{repo}:v1", check=True).stdout)[0]
    assert ins["Config"]["Labels"] == {"stage": "test"}
    # the second run reuses the cache for every step
    p = docker("build", "-t", f"{repo}:v2", "--build-arg", "GREETING=bonjour", ctx, timeout=300)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert out.count(" ---> Using cache") == 5 and "\nbuilt-step-output\n" not in out
    ins2 = json.loads(docker("image", "inspect", f"{repo}:v2", check=True).stdout)[0]
    assert ins2["Id"] == ins["Id"]
    # -q prints the image ID only; --no-cache runs the steps again
    p = docker("build", "-q", ctx, "--build-arg", "GREETING=bonjour", timeout=300, check=True)
    assert p.stdout.decode().strip() == ins["Id"]
    p = docker("build", "--no-cache", "-t", f"{repo}:v3", "--build-arg", "GREETING=bonjour", ctx,
               timeout=300, check=True)
    assert b"Using cache" not in p.stdout and b"\nbuilt-step-output\n" in p.stdout
    # -f a Dockerfile by another name, and a failing RUN: its code and dockerd's message
    with open(os.path.join(ctx, "Failing.dockerfile"), "w") as f:
        f.write("FROM busybox\nRUN echo about-to-fail && exit 3\n")
    p = docker("build", "-f", os.path.join(ctx, "Failing.dockerfile"), ctx, timeout=300)
    assert p.returncode != 0 and b"about-to-fail" in p.stdout
    assert b"returned a non-zero code: 3" in p.stderr or b"code 3" in p.stderr, p.stderr
    p = docker("build", "-f", "Missing.dockerfile", ctx, timeout=60)
    assert p.returncode != 0
    # -f - (the CLI adds the Dockerfile to the context, unpadded) and a gzip context
    p = docker("build", "-f", "-", ctx, input=b"FROM busybox\nRUN echo from-stdin-dockerfile\n",
               timeout=300)
    assert p.returncode == 0 and b"\nfrom-stdin-dockerfile\n" in p.stdout, p.stderr
    p = docker("build", "--compress", "-t", f"{repo}:v3", "--build-arg", "GREETING=bonjour", ctx,
               timeout=300, check=True)
    assert p.stdout.count(b" ---> Using cache") == 5
    _rmi(api, f"{repo}:v1", f"{repo}:v2", f"{repo}:v3")


def test_build_with_docker_py(api, client, tmp_path):
    repo = _name("pybuilt")
    ctx = _context(tmp_path, "marker-py")
    img, logs = client.images.build(path=ctx, tag=f"{repo}:v1", buildargs={"GREETING": "hi"},
                                    labels={"via": "docker-py"}, rm=True)
    text = "".join(x.get("stream", "") for x in logs)
    assert "Successfully built" in text and img.labels == {"stage": "test", "via": "docker-py"}
    assert client.containers.run(f"{repo}:v1", remove=True) == b"marker-py hi\n"
    # a Dockerfile given as a file object (a context of its own)
    img2, _ = client.images.build(fileobj=io.BytesIO(b"FROM busybox\nCMD [\"echo\", \"fileobj\"]\n"),
                                  tag=f"{repo}:v2")
    assert client.containers.run(img2.id, remove=True) == b"fileobj\n"
    with pytest.raises(docker_py.errors.BuildError) as err:
        client.images.build(fileobj=io.BytesIO(b"FROM busybox\nRUN exit 7\n"))
    assert "7" in str(err.value)
    client.images.remove(f"{repo}:v1")
    client.images.remove(f"{repo}:v2")


def _build_raw(api, tar: bytes, query: str = "", headers: dict | None = None):
    h = {"Content-Type": "application/x-tar"}
    h.update(headers or {})
    return raw(api, "POST", "/v1.41/build" + query, tar, h)


def _build_raw_h(api, headers: dict):
    return _build_raw(api, tar_of([("Dockerfile", b"FROM busybox\n", {})]), "", headers)


def test_build_hostile_contexts(api, docker, tmp_path):
    df = b"FROM busybox\nCOPY . /ctx/\nRUN ls -la /ctx\n"
    sentinel = f"/tmp/nutshell-build-escape-{uuid.uuid4().hex[:8]}"
    refused = (
        [("Dockerfile", df, {}), ("../../../.." + sentinel, b"x", {})],
        [("Dockerfile", df, {}), ("out", None, {"type": tarfile.SYMTYPE, "linkname": "/tmp"}),
         ("out" + sentinel.removeprefix("/tmp"), b"x", {})],
        [("Dockerfile", df, {}), ("link", None, {"type": tarfile.LNKTYPE, "linkname": "/etc/passwd"})],
        [("Dockerfile", df, {}), ("fifo", None, {"type": tarfile.FIFOTYPE}),
         ("fifo/x", b"x", {})],
    )
    for evil in refused:
        status, _, body = _build_raw(api, tar_of(evil))
        assert status == 400, body
        assert "invalid build context" in json.loads(body)["message"]
        assert not os.path.exists(sentinel)
    # an absolute name lands inside the context (its leading / dropped, as tar does)
    status, _, body = _build_raw(api, tar_of([("Dockerfile", b"FROM busybox\nCOPY " + sentinel.encode()
                                               + b" /found\nRUN cat /found\n", {}),
                                              (sentinel, b"inside-the-context", {})]))
    assert status == 200 and "inside-the-context" in body.decode() and not os.path.exists(sentinel)
    # a Dockerfile that is a symlink out of the context: resolved inside it (not found)
    secret = tmp_path / "secret-dockerfile"
    secret.write_text("FROM busybox\nLABEL leaked=yes\n")
    status, _, body = _build_raw(api, tar_of([("Dockerfile", None, {"type": tarfile.SYMTYPE,
                                                                    "linkname": str(secret)})]))
    assert status in (400, 500) and "leaked" not in body.decode()
    # dockerfile= naming a path outside the context
    status, _, body = _build_raw(api, tar_of([("Dockerfile", df, {})]),
                                 "?dockerfile=../../../../" + str(secret))
    assert status == 400 and "message" in json.loads(body)
    status, _, body = _build_raw(api, tar_of([("Dockerfile", df, {})]), "?dockerfile=" + str(secret))
    assert status == 400
    # a symlink in the context pointing out, then COPYed: copies the link, never the host file
    ctx_tar = tar_of([("Dockerfile", b"FROM busybox\nCOPY passwd /copied\nRUN cat /copied || true\n", {}),
                      ("passwd", None, {"type": tarfile.SYMTYPE, "linkname": "/etc/shadow"})])
    status, _, body = _build_raw(api, ctx_tar, "?rm=1")
    assert "root:" not in body.decode()
    # not a tar, gzip garbage, truncated
    for junk in (b"definitely not a tar" * 50, b"\x1f\x8b\x08\x00garbage" * 10,
                 tar_of([("Dockerfile", df, {}), ("big", b"x" * 5000, {})])[:2000]):
        status, _, body = _build_raw(api, junk)
        assert status in (400, 500) and "message" in json.loads(body)
    # JSON parameters of the wrong type
    good = tar_of([("Dockerfile", b"FROM busybox\n", {})])
    for q in ("?buildargs=%5B1%5D", "?buildargs=%7B%22A%22%3A1%7D", "?labels=%22x%22",
              "?buildargs=%7Bbad", "?cachefrom=%7B%7D", "?t=BAD/Upper", "?networkmode=container:x",
              "?version=2", "?remote=https://example.com/ctx.tar", "?platform=windows/amd64"):
        status, _, body = _build_raw(api, good, q)
        assert status == 400, (q, status, body)
        assert "message" in json.loads(body)
    # still serving, and nothing landed outside
    assert not os.path.exists(sentinel)
    status, _, body = _build_raw(api, good, "?q=1")
    assert status == 200 and messages(body)[-1]["stream"].startswith("sha256:")
    assert docker("images", "-q", check=True).returncode == 0


# --- pull and push against a real registry ------------------------------------------------
def test_push_pull_with_the_cli(api, docker, registry):
    ref = f"{registry.host}/{_name('nutshell-api/cli')}:v1"
    docker("tag", IMAGE, ref, check=True)
    p = docker("push", ref, timeout=120)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert out.splitlines()[0] == f"The push refers to repository [{ref.rsplit(':', 1)[0]}]"
    assert "Pushed" in out and "v1: digest: sha256:" in out
    digest = out.split("digest: ")[1].split()[0]
    p = docker("push", ref, timeout=120, check=True)
    assert b"Layer already exists" in p.stdout
    docker("rmi", ref, check=True)
    p = docker("pull", ref, timeout=120)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert out.splitlines()[0] == "v1: Pulling from " + ref.split("/", 1)[1].rsplit(":", 1)[0]
    assert f"Digest: {digest}" in out and f"Status: Downloaded newer image for {ref}" in out
    assert out.strip().splitlines()[-1] == ref
    p = docker("pull", ref, timeout=120, check=True)
    assert f"Status: Image is up to date for {ref}" in p.stdout.decode()
    ins = json.loads(docker("image", "inspect", ref, check=True).stdout)[0]
    assert f"{ref.rsplit(':', 1)[0]}@{digest}" in ins["RepoDigests"]
    # pulled by digest, then run
    docker("rmi", ref, check=True)
    by_digest = ref.rsplit(":", 1)[0] + "@" + digest
    docker("pull", by_digest, timeout=120, check=True)
    assert docker("run", "--rm", by_digest, "echo", "pulled-ok", check=True).stdout == b"pulled-ok\n"
    # a missing tag and a missing repository: errors, the server keeps serving
    p = docker("pull", f"{registry.host}/nutshell-api/nosuchrepo:v1", timeout=60)
    assert p.returncode == 1 and p.stderr
    p = docker("pull", ref.rsplit(":", 1)[0] + ":nosuchtag", timeout=60)
    assert p.returncode == 1 and p.stderr
    # push -a: every tag of the repository
    repo = ref.rsplit(":", 1)[0]
    docker("tag", by_digest, f"{repo}:v2", check=True)
    docker("tag", by_digest, f"{repo}:v3", check=True)
    p = docker("push", "-a", repo, timeout=120)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert "v2: digest: " in out and "v3: digest: " in out
    docker("rmi", f"{repo}:v3", check=True)
    docker("pull", f"{repo}:v3", timeout=120, check=True)
    _rmi(api, f"{repo}:v2", f"{repo}:v3")
    # pull -a: every tag of the repository
    p = docker("pull", "-a", repo, timeout=120)
    assert p.returncode == 0, p.stderr
    tags = docker("images", "--format", "{{.Tag}}", "--filter", f"reference={repo}",
                  check=True).stdout.decode().split()
    assert sorted(tags) == ["v1", "v2", "v3"]
    _rmi(api, f"{repo}:v1", f"{repo}:v2", f"{repo}:v3")
    p = docker("push", f"{registry.host}/never/tagged:here", timeout=60)
    assert p.returncode == 1 and b"does not exist" in p.stderr or b"No such image" in p.stderr
    # (by_digest is busybox's own image: nothing to clean up)


def test_pull_stream_shape(api, registry, docker):
    ref = f"{registry.host}/{_name('nutshell-api/raw')}"
    content = os.urandom(300_000)                    # a layer of its own, to download
    docker("import", "-", ref + ":v1", input=tar_of([("blob", content, {"mode": 0o644})]),
           check=True)
    docker("push", ref + ":v1", timeout=120, check=True)
    docker("rmi", ref + ":v1", check=True)
    status, hdrs, body = raw(api, "POST", f"/v1.41/images/create?fromImage={ref}&tag=v1")
    assert status == 200 and hdrs["content-type"] == "application/json"
    msgs = messages(body)
    assert msgs[0] == {"status": "Pulling from " + ref.split("/", 1)[1], "id": "v1"}
    assert any(m.get("status") == "Pull complete" and m.get("id") for m in msgs)
    assert any(m.get("status") == "Downloading" and m["progressDetail"].get("total") for m in msgs)
    assert msgs[-2]["status"].startswith("Digest: sha256:")
    assert msgs[-1] == {"status": f"Status: Downloaded newer image for {ref}:v1"}
    # an unknown tag: dockerd's 404 before any stream
    status, _, body = raw(api, "POST", f"/v1.41/images/create?fromImage={ref}&tag=nope")
    assert status == 404 and "message" in json.loads(body)
    # an unreachable registry: an error, as a status or as the stream's last message
    status, _, body = raw(api, "POST", "/v1.41/images/create?fromImage=127.0.0.1:1/x/y&tag=z")
    last = json.loads(body.splitlines()[-1])
    assert (status >= 400 and "message" in last) or ("error" in last and "errorDetail" in last)
    _rmi(api, ref + ":v1")


def test_pull_push_with_docker_py_and_basic_auth(api, client, basic_registry):
    ref = f"{basic_registry.host}/{_name('nutshell-api/py')}"
    client.images.get(IMAGE).tag(ref, "v1")
    # no credentials: the registry refuses, the stream ends with the error
    out = client.images.push(ref, tag="v1", stream=True, decode=True)
    assert any("error" in m for m in out)
    wrong = {"username": "alice", "password": "not-her-password"}
    assert any("error" in m for m in client.images.push(ref, tag="v1", stream=True, decode=True,
                                                        auth_config=wrong))
    auth = {"username": "alice", "password": basic_registry.users["alice"]}
    msgs = list(client.images.push(ref, tag="v1", stream=True, decode=True, auth_config=auth))
    assert not any("error" in m for m in msgs), msgs
    aux = [m["aux"] for m in msgs if "aux" in m]
    assert aux and aux[0]["Tag"] == "v1" and aux[0]["Digest"].startswith("sha256:")
    client.images.remove(f"{ref}:v1")
    with pytest.raises(docker_py.errors.APIError):
        client.images.pull(ref, tag="v1")
    img = client.images.pull(ref, tag="v1", auth_config=auth)
    assert f"{ref}:v1" in img.tags and f"{ref}@{aux[0]['Digest']}" in img.attrs["RepoDigests"]
    # the server never stored these credentials anywhere
    assert not os.path.exists(os.path.join(api.root, "config.json"))
    client.images.remove(f"{ref}:v1")


def test_cli_credentials_reach_the_registry(api, docker, basic_registry, tmp_path):
    """The CLI's stored login goes out as X-Registry-Auth (push, pull) and
    X-Registry-Config (a build's FROM), and nowhere else."""
    ref = f"{basic_registry.host}/{_name('nutshell-api/auth')}:v1"
    docker("tag", IMAGE, ref, check=True)
    p = docker("push", ref, timeout=120)
    assert p.returncode == 1 and p.stderr
    cfg = os.path.join(api.docker_config, "config.json")
    token = base64.b64encode(f"alice:{basic_registry.users['alice']}".encode()).decode()
    with open(cfg, "w") as f:
        json.dump({"auths": {basic_registry.host: {"auth": token}}}, f)
    try:
        p = docker("push", ref, timeout=120)
        assert p.returncode == 0, p.stderr
        docker("rmi", ref, check=True)
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(f"FROM {ref}\nRUN echo from-a-private-base\n")
        repo = _name("privbase")
        p = docker("build", "-t", repo, str(ctx), timeout=300)
        assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
        assert b"from-a-private-base" in p.stdout
        docker("pull", ref, timeout=120, check=True)
    finally:
        os.unlink(cfg)
    _rmi(api, ref, repo)


def test_list_time_and_label_filters(api, docker):
    repo = _name("filtered")
    docker("import", "-c", "LABEL colour=blue", "-", f"{repo}:blue",
           input=tar_of([("a", b"blue\n", {"mode": 0o644})]), check=True)
    fmt = ("--format", "{{.Repository}}:{{.Tag}}")
    out = docker("images", "--filter", "label=colour=blue", *fmt, check=True).stdout.decode().split()
    assert out == [f"{repo}:blue"]
    out = docker("images", "--filter", "label=colour", *fmt, check=True).stdout.decode().split()
    assert out == [f"{repo}:blue"]
    assert docker("images", "-q", "--filter", "label=colour=red", check=True).stdout == b""
    out = docker("images", "--filter", f"since={IMAGE}", *fmt, check=True).stdout.decode().split()
    assert f"{repo}:blue" in out and IMAGE not in out
    out = docker("images", "--filter", f"before={repo}:blue", *fmt, check=True).stdout.decode().split()
    assert IMAGE in out and f"{repo}:blue" not in out
    assert docker("images", "-q", "--filter", "until=1h", "--filter", f"reference={repo}",
                  check=True).stdout == b""
    p = docker("images", "--filter", "until=soon")
    assert p.returncode == 1 and b"invalid value for filter until" in p.stderr
    p = docker("images", "--filter", "before=nosuch:image")
    assert p.returncode == 1 and b"No such image" in p.stderr
    _rmi(api, f"{repo}:blue")


def test_build_ignore_file_symlinks_resolve_inside_the_context(api, tmp_path):
    host_patterns = tmp_path / "host-patterns"
    host_patterns.write_text("secret.txt\n")
    df = b"FROM busybox\nCOPY . /c/\nRUN ls /c\n"
    # a .dockerignore pointing at a host file: not followed (nothing is ignored)
    status, _, body = _build_raw(api, tar_of([
        ("Dockerfile", df, {}), ("secret.txt", b"s", {}),
        (".dockerignore", None, {"type": tarfile.SYMTYPE, "linkname": str(host_patterns)})]))
    assert status == 200, body
    out = "".join(m.get("stream", "") for m in messages(body))
    assert "\nsecret.txt\n" in out and "Successfully built" in out
    # one pointing inside the context is followed there
    status, _, body = _build_raw(api, tar_of([
        ("Dockerfile", df, {}), ("secret.txt", b"s", {}), ("patterns", b"secret.txt\n", {}),
        (".dockerignore", None, {"type": tarfile.SYMTYPE, "linkname": "/patterns"})]))
    out = "".join(m.get("stream", "") for m in messages(body))
    assert status == 200 and "\nsecret.txt\n" not in out and "\npatterns\n" in out, out
    # a FIFO as .dockerignore or as Dockerfile does not hang the build
    status, _, body = _build_raw(api, tar_of([
        ("Dockerfile", df, {}), (".dockerignore", None, {"type": tarfile.FIFOTYPE})]))
    assert status == 200 and "Successfully built" in body.decode()
    status, _, body = _build_raw(api, tar_of([("Dockerfile", None, {"type": tarfile.FIFOTYPE})]))
    assert status == 400 and "not a regular file" in json.loads(body)["message"]


def test_a_client_leaving_mid_build_leaves_nothing_behind(api, docker):
    ctx = tar_of([("Dockerfile", b"FROM busybox\nRUN echo started && sleep 2 && echo more\n"
                   b"RUN echo second-step\n", {})])
    s = socket.socket(socket.AF_UNIX)
    s.connect(api.socket)
    s.sendall(b"POST /v1.41/build?t=left-behind HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
              b"Content-Length: %d\r\n\r\n" % len(ctx) + ctx)
    got = b""
    while b'{"stream": "started\\n"}' not in got:      # the RUN is running
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    assert docker("ps", "-q", check=True).stdout.strip()      # its container
    s.close()                                   # gone mid-RUN
    from tests.waiting import wait_for

    def settled() -> bool:
        return docker("ps", "-aq", check=True).stdout == b""

    wait_for(settled, timeout=30, what="the build's RUN container to go")
    assert docker("image", "inspect", "left-behind").returncode == 1
    assert docker("images", "-q", check=True).stdout.strip()


@pytest.mark.parametrize("path", ["/v1.41/images/load", "/v1.41/build",
                                  "/v1.41/images/create?fromSrc=-&repo=huge"])
def test_a_refused_upload_is_not_read_to_its_end(api, path):
    """A body announced as 1 TiB, refused from its first bytes: the answer comes at once
    and the connection closes (the server does not read, or wait for, the rest)."""
    import threading

    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(api.socket)

    def send() -> None:                  # 16 MiB of it (enough for any read-ahead), then wait
        try:
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
                      f"Content-Length: {1 << 40}\r\n\r\n".encode())
            for _ in range(256):
                s.sendall(b"\xff" * 65536)
        except OSError:
            pass                         # the server closed: what this test wants

    threading.Thread(target=send, daemon=True).start()
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:     # the server closed with our data unread
            break
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 "), data
    assert b'"message"' in data or b'"error"' in data
