"""The API server against hostile and clumsy clients: broken HTTP, huge headers, bad JSON,
wrong types, unknown routes and methods, API versions out of range, clients that vanish
mid-stream or never read, twenty clients at once, chunked bodies, 100-continue,
keep-alive and pipelining, HEAD. After each, the server keeps serving everyone else."""

from __future__ import annotations

import json
import socket
import threading
import time

import docker
import pytest

from tests.api.conftest import IMAGE, api_server
from tests.api.rawhttp import Raw, call
from tests.waiting import wait_for
from workbench.api.router import MAX_API_VERSION, MIN_API_VERSION

pytestmark = pytest.mark.integration

SEND_TIMEOUT = 2        # seconds a write may block before the server drops the client


@pytest.fixture(scope="module")
def api(tmp_path_factory, busybox_rootfs):
    """This module's server, with a short send timeout for the never-reading clients."""
    yield from api_server(tmp_path_factory, busybox_rootfs,
                          NUTSHELL_API_SEND_TIMEOUT=str(SEND_TIMEOUT))


def alive(api) -> None:
    """The server still answers a fresh client, promptly."""
    t0 = time.monotonic()
    r = call(api.socket, "GET", "/_ping")
    assert (r.status, r.body) == (200, b"OK"), r
    assert time.monotonic() - t0 < 2, "the server answered a ping slowly"
    assert api.proc.poll() is None


def error(r, status: int) -> str:
    assert r.status == status, r
    assert r.headers["content-type"] == "application/json", r.headers
    msg = r.json()["message"]
    assert isinstance(msg, str) and msg
    return msg


# --- broken HTTP ---------------------------------------------------------------------------
BAD_REQUEST, TOO_LARGE = (400, "Bad Request"), (431, "Request Header Fields Too Large")


@pytest.mark.parametrize("raw, answer", [
    (b"NONSENSE\r\n\r\n", BAD_REQUEST),
    (b"GET /_ping\r\n\r\n", BAD_REQUEST),                       # HTTP/0.9 style: no version
    (b"GET /_ping HTTP/1.1 extra\r\n\r\n", BAD_REQUEST),
    (b"GET /_ping SPDY/3\r\n\r\n", BAD_REQUEST),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", BAD_REQUEST),   # a TLS hello by mistake
    (b"GET /_ping HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", TOO_LARGE),   # one huge header
    (b"GET /_ping HTTP/1.1\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 40)
                                          for i in range(2000)) + b"\r\n", TOO_LARGE),  # a great many
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", TOO_LARGE),                   # a huge target
    (b"GET /_ping HTTP/1.1\r\nX-Endless: " + b"b" * 200000, TOO_LARGE),            # no end at all
], ids=["nonsense", "no-version", "extra-word", "not-http", "tls-hello", "one-huge-header",
        "many-headers", "huge-target", "endless-header"])
def test_a_malformed_or_huge_head_is_answered_and_closed(api, raw, answer):
    status, reason = answer
    with Raw(api.socket) as c:
        c.send(raw)
        r = c.response()
        error(r, status)
        assert r.reason == reason
        assert c.at_eof()
    alive(api)


@pytest.mark.parametrize("headers", [
    b"NoColonHere\r\n",
    b"Content-Length: lots\r\n",
    b"Content-Length: -5\r\n",
])
def test_malformed_headers_are_400(api, headers):
    with Raw(api.socket) as c:
        c.send(b"POST /containers/create HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        error(c.response(), 400)
        assert c.at_eof()
    alive(api)


def test_a_client_that_connects_and_says_nothing_blocks_no_one(api):
    silent = [socket.socket(socket.AF_UNIX) for _ in range(5)]
    try:
        for s in silent:
            s.connect(api.socket)
        half = Raw(api.socket)
        half.send(b"GET /_ping HTTP/1.1\r\nHost: x\r\n")           # headers never finished
        alive(api)
        half.close()
    finally:
        for s in silent:
            s.close()
    alive(api)


# --- bad bodies and routes -----------------------------------------------------------------
@pytest.mark.parametrize("body", [b"{not json", b'{"Image": "busybox"', b"\xff\xfe", b"[1, 2]",
                                  b'"a string"', b"null null"])
def test_malformed_json_body_is_400_with_message(api, body):
    r = call(api.socket, "POST", "/v1.41/containers/create", body)
    msg = error(r, 400)
    assert "JSON" in msg or "json" in msg or "config cannot be empty" in msg, msg
    alive(api)


@pytest.mark.parametrize("body, field", [
    ({"Image": 5}, "Image"),
    ({"Image": IMAGE, "Cmd": 5}, "Cmd"),
    ({"Image": IMAGE, "Cmd": ["sh", 5]}, "Cmd"),
    ({"Image": IMAGE, "Env": {"A": "1"}}, "Env"),
    ({"Image": IMAGE, "Tty": "yes"}, "Tty"),
    ({"Image": IMAGE, "Labels": ["a=b"]}, "Labels"),
    ({"Image": IMAGE, "Labels": {"a": 1}}, "Labels"),
    ({"Image": IMAGE, "StopTimeout": "10s"}, "StopTimeout"),
    ({"Image": IMAGE, "HostConfig": "privileged"}, "HostConfig"),
    ({"Image": IMAGE, "HostConfig": {"Memory": "lots"}}, "Memory"),
    ({"Image": IMAGE, "HostConfig": {"Binds": "/a:/b"}}, "Binds"),
    ({"Image": IMAGE, "HostConfig": {"Privileged": 1}}, "Privileged"),
    ({"Image": IMAGE, "HostConfig": {"RestartPolicy": {"Name": 3}}}, "Name"),
    ({"Image": IMAGE, "HostConfig": {"Mounts": ["x"]}}, "Mounts"),
])
def test_create_with_a_field_of_the_wrong_type_names_the_field(api, body, field):
    before = len(api.engine.ps(all=True))
    r = call(api.socket, "POST", "/v1.41/containers/create", json.dumps(body).encode())
    msg = error(r, 400)
    assert field in msg, msg
    assert len(api.engine.ps(all=True)) == before, "a container was created anyway"
    alive(api)


def test_docker_py_gets_the_error_message(api, client):
    with pytest.raises(docker.errors.APIError) as e:
        client.api.create_container(IMAGE, command=None, host_config={"Memory": "lots"})
    assert e.value.status_code == 400
    assert "Memory" in str(e.value.explanation)


@pytest.mark.parametrize("target", ["/nope", "/v1.41/nope", "/containers/x/y/z", "/", "/v1.41",
                                    "/../../etc/passwd", "/containers/%2e%2e/json/extra"])
def test_unknown_endpoint_is_404_with_message(api, target):
    msg = error(call(api.socket, "GET", target), 404)
    assert "page not found" in msg


@pytest.mark.parametrize("method, target", [("DELETE", "/_ping"), ("POST", "/version"),
                                            ("PUT", "/v1.41/containers/json"),
                                            ("GET", "/containers/create")])
def test_wrong_method_is_dockerds_404(api, method, target):
    # dockerd answers these 404 "page not found" (gorilla/mux's MethodNotAllowedHandler is
    # its not-found handler), and clients map 404 to their NotFound errors: the same here
    msg = error(call(api.socket, method, target, b"" if method != "GET" else None), 404)
    assert "page not found" in msg and method in msg


def test_version_prefix_too_new_or_too_old_is_dockerds_400(api):
    msg = error(call(api.socket, "GET", "/v9.99/_ping"), 400)
    assert msg == f"client version 9.99 is too new. Maximum supported API version is {MAX_API_VERSION}"
    msg = error(call(api.socket, "GET", "/v1.12/containers/json"), 400)
    assert msg == (f"client version 1.12 is too old. Minimum supported API version is "
                   f"{MIN_API_VERSION}, please upgrade your client to a newer version")
    msg = error(call(api.socket, "GET", "/v1.099/_ping"), 400)
    assert msg.startswith("client version 1.099 is too new")       # quoted as written
    for ok in (f"/v{MIN_API_VERSION}/_ping", f"/v{MAX_API_VERSION}/_ping", "/v1.41/_ping", "/_ping"):
        assert call(api.socket, "GET", ok).status == 200, ok
    # docker-py pinned to a version the server does not speak gets the same message
    c = docker.DockerClient(base_url="unix://" + api.socket, version="1.99")
    try:
        with pytest.raises(docker.errors.APIError, match="is too new"):
            c.containers.list()
    finally:
        c.close()


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_ping_headers(api, method):
    r = call(api.socket, method, "/_ping")
    assert r.status == 200
    assert r.headers["api-version"] == MAX_API_VERSION
    assert r.headers["docker-experimental"] == "false"
    assert r.headers["ostype"] == "linux"
    assert r.headers["builder-version"] in ("1", "2")
    assert r.headers["cache-control"] == "no-cache, no-store, must-revalidate"
    assert r.body == (b"OK" if method == "GET" else b"")
    assert r.headers["content-length"] == ("2" if method == "GET" else "0")    # as dockerd
    # what the CLI's negotiation reads from them
    p = api.docker("version", "--format", "{{.Client.APIVersion}} {{.Server.APIVersion}}",
                   check=True)
    assert p.stdout.split() == [b"1.41", MAX_API_VERSION.encode()]


# --- clients that vanish or never read -----------------------------------------------------
def _ticker(client, name: str):
    return client.containers.run(IMAGE, ["sh", "-c", "while :; do echo tick; sleep 0.1; done"],
                                 detach=True, name=name)


def test_hijacked_attach_whose_client_drops_mid_stream(api, client):
    c = _ticker(client, "ticker-drop")
    for upgrade in (True, False):
        raw = Raw(api.socket)
        h = {"Connection": "Upgrade", "Upgrade": "tcp"} if upgrade else {}
        raw.request("POST", f"/v1.41/containers/{c.id}/attach?stream=1&stdout=1&stderr=1", b"", h)
        r = raw.response(head=True)                   # the stream itself follows the head
        assert r.status == (101 if upgrade else 200), r
        assert r.headers["content-type"] == "application/vnd.docker.multiplexed-stream"
        wait_for(lambda: raw._fill() and raw.buf.count(b"tick") >= 3, timeout=10,
                 what="ticks on the attach stream")
        assert raw.buf[:1] == b"\x01" and raw.buf[1:4] == b"\0\0\0"   # stdout frames
        raw.sock.shutdown(socket.SHUT_RDWR)              # gone, mid-frame or not
        raw.close()
        alive(api)
    time.sleep(0.5)
    c.reload()
    assert c.status == "running"
    # the container's output goes on, and a new attach gets it
    stream = c.attach(stream=True, stdout=True, logs=False)
    got = b""
    for chunk in stream:
        got += chunk
        if got.count(b"tick") >= 2:
            break
    stream.close()
    c.remove(force=True)
    alive(api)


def test_a_client_that_never_reads_logs_follow_is_dropped(api, client):
    pad = "x" * 100
    n = 30000                                       # ~3.4 MB of log, more than any buffer
    c = client.containers.run(
        IMAGE, ["sh", "-c", f'i=0; while [ $i -lt {n} ]; do echo "line $i $PAD"; i=$((i+1)); done; '
                            'sleep 600'],
        environment={"PAD": pad}, detach=True, name="chatty")
    wait_for(lambda: f"line {n - 1} ".encode() in c.logs(tail=1), timeout=60,
             what="the chatty container to write its lines")
    stuck = Raw(api.socket)
    stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.request("GET", f"/v1.41/containers/{c.id}/logs?follow=1&stdout=1&stderr=1")
    t0 = time.monotonic()
    # meanwhile everyone else is served, promptly
    while time.monotonic() - t0 < SEND_TIMEOUT + 1:
        alive(api)
        assert len(client.containers.list()) >= 1
        time.sleep(0.2)
    # the stuck client is dropped: reading now finds the end of the connection well
    # before the whole log (what the server had sent is still in the buffers)
    got = 0
    stuck.sock.settimeout(10)
    while True:
        data = stuck.sock.recv(1 << 20)
        if not data:
            break
        got += len(data)
    stuck.close()
    assert got < n * len(pad), f"the whole log arrived ({got} bytes): the client was not dropped"
    c.remove(force=True)
    alive(api)


def test_a_client_that_never_reads_events_blocks_no_one(api, client):
    r = call(api.socket, "GET", "/_ping")
    probe = Raw(api.socket)
    probe.request("GET", "/v1.41/events?since=0")
    head = probe.response(head=True)
    if head.status == 501:
        probe.close()
        pytest.skip("this build has no events (engine.events)")
    assert head.status == 200, head
    try:
        # events happen; the stuck client reads none of them; everyone else is served
        for i in range(3):
            c = client.containers.create(IMAGE, ["true"], name=f"evt-{i}")
            c.remove()
            alive(api)
    finally:
        probe.close()
    alive(api)
    assert r.status == 200


def test_twenty_clients_at_once(api):
    n = 20
    results: dict[int, object] = {}

    def one(i: int) -> None:
        c = docker.DockerClient(base_url="unix://" + api.socket, timeout=120)
        try:
            ctr = c.containers.create(IMAGE, ["sh", "-c", f"echo hello-{i}; echo err-{i} >&2"],
                                      name=f"many-{i}")
            ctr.start()
            code = ctr.wait(timeout=120)["StatusCode"]
            out = ctr.logs(stdout=True, stderr=False)
            err = ctr.logs(stdout=False, stderr=True)
            ctr.remove()
            results[i] = (code, out, err)
        except Exception as exc:  # noqa: BLE001 - reported below, per client
            results[i] = exc
        finally:
            c.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not any(t.is_alive() for t in threads), "clients still running after 3 minutes"
    for i in range(n):
        assert results.get(i) == (0, f"hello-{i}\n".encode(), f"err-{i}\n".encode()), (i, results.get(i))
    assert not [c for c in api.engine.ps(all=True) if c.get("Names", [""])[0].lstrip("/").startswith("many-")]
    alive(api)


# --- framing: chunked bodies, 100-continue, keep-alive, HEAD -------------------------------
def _chunked(data: bytes, sizes=(1, 7, 30)) -> bytes:
    out, i, k = b"", 0, 0
    while i < len(data):
        size = sizes[k % len(sizes)]
        piece = data[i:i + size]
        out += b"%x;ext=1\r\n%s\r\n" % (len(piece), piece) if k == 1 else b"%X\r\n%s\r\n" % (len(piece), piece)
        i += size
        k += 1
    return out + b"0\r\nX-Trailer: yes\r\n\r\n"


def test_chunked_request_body(api, client):
    body = json.dumps({"Image": IMAGE, "Cmd": ["echo", "chunked"], "Labels": {"via": "chunks"}}).encode()
    with Raw(api.socket) as c:
        c.send(b"POST /v1.41/containers/create?name=chunky HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(body))
        r = c.response()
        assert r.status == 201, r
        cid = r.json()["Id"]
        # the same connection goes on after a chunked body
        c.request("GET", f"/v1.41/containers/{cid}/json")
        ins = c.response().json()
    assert ins["Config"]["Cmd"] == ["echo", "chunked"]
    assert ins["Config"]["Labels"]["via"] == "chunks"
    client.containers.get(cid).remove()


@pytest.mark.parametrize("bad", [b"-5\r\n", b"zz\r\n", b"0x10\r\n", b"1_0\r\n", b"\r\n",
                                 b"ffffffffffffffffffffffff\r\n", b"5\r\nabcdeXY"])
def test_hostile_chunk_sizes_are_400(api, bad):
    with Raw(api.socket) as c:
        c.send(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + bad)
        if not bad.endswith(b"XY"):
            c.send(b"0\r\n\r\n")
        r = c.response()
        error(r, 400 if b"ffffffff" not in bad else r.status)
        assert r.status in (400, 413)
    alive(api)


def test_expect_100_continue(api, client):
    body = json.dumps({"Image": IMAGE, "Cmd": ["true"]}).encode()
    with Raw(api.socket) as c:
        c.send(b"POST /v1.41/containers/create?name=expecting HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body))
        interim = c.response()                    # before any byte of the body is sent
        assert interim.status == 100, interim
        c.send(body)
        r = c.response()
        assert r.status == 201, r
        cid = r.json()["Id"]
        # and a request with Expect and no body is answered without a 100 first
        c.request("GET", "/_ping", headers={"Expect": "100-continue"})
        r = c.response()
        assert (r.status, r.body) == (200, b"OK")
    client.containers.get(cid).remove()


def test_keep_alive_and_pipelining(api):
    with Raw(api.socket) as c:
        # three requests in one write; three answers in order on the same connection
        c.send(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /v1.41/version HTTP/1.1\r\nHost: x\r\n\r\n"
               b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n{bad}!"
               b"GET /v1.41/containers/json?all=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.response().body == b"OK"
        assert c.response().json()["ApiVersion"] == MAX_API_VERSION
        error(c.response(), 400)                # a bad body does not end the connection
        assert isinstance(c.response().json(), list)
        for _ in range(20):
            c.request("GET", "/_ping")
            assert c.response().body == b"OK"
        c.request("GET", "/_ping", headers={"Connection": "close"})
        r = c.response()
        assert r.headers.get("connection") == "close"
        assert c.at_eof()
    # HTTP/1.0: one request, then the server closes
    with Raw(api.socket) as c:
        c.send(b"GET /_ping HTTP/1.0\r\n\r\n")
        assert c.response().body == b"OK"
        assert c.at_eof()
    # an error for an unknown route with a body the server never read: the body is
    # skipped and the connection goes on
    with Raw(api.socket) as c:
        c.request("POST", "/v1.41/nowhere", b"x" * 100000)
        error(c.response(), 404)
        c.request("GET", "/_ping")
        assert c.response().body == b"OK"


def test_head_requests(api, client):
    ctr = client.containers.run(IMAGE, ["echo", "in-the-log"], detach=True, name="headed")
    ctr.wait()
    with Raw(api.socket) as c:
        for target in ("/_ping", "/v1.41/version", "/v1.41/containers/json?all=1",
                       f"/v1.41/containers/{ctr.id}/json",
                       f"/v1.41/containers/{ctr.id}/logs?stdout=1", "/v1.41/containers/nope/json"):
            c.request("HEAD", target)
            r = c.response(head=True)
            assert r.status in (200, 404), (target, r)
            # no body came: the next request's answer is the next thing on the wire
            c.request("GET", "/_ping")
            r = c.response()
            assert (r.status, r.body) == (200, b"OK"), (target, r)
    ctr.remove()
