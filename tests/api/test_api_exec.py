"""Exec through the API: the docker CLI 20.10 (``exec -it`` on a PTY, piped stdin, exit
codes 126/127, ``-d``) and docker-py (``exec_run``, the low-level exec calls), plus hostile
requests that must get Docker's error shapes and leave the server serving."""

from __future__ import annotations

import http.client
import json
import socket
import time

import docker as dockerpy
import pytest

from tests.api.test_api_docker_cli import Pty
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def box(api):
    """One long-running container the tests exec into."""
    api.docker("run", "-d", "--name", "execbox", "busybox", "sleep", "3600", check=True)
    yield "execbox"
    api.docker("rm", "-f", "execbox")



class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


def raw(api, method: str, path: str, body: bytes | str | None = None,
        headers: dict | None = None) -> tuple[int, bytes]:
    c = _UnixHTTP(api.socket)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


# --- the docker CLI --------------------------------------------------------------------
def test_exec_output_and_exit_code(docker, box):
    p = docker("exec", box, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert p.returncode == 7
    assert p.stdout == b"out\n" and p.stderr == b"err\n"


def test_exec_env_user_workdir(docker, box):
    p = docker("exec", "-e", "FOO=bar", "-u", "1000:1000", "-w", "/tmp", box,
               "sh", "-c", 'echo "$FOO $(id -u):$(id -g) $(pwd)"', check=True)
    assert p.stdout == b"bar 1000:1000 /tmp\n"


def test_exec_env_never_reads_the_servers_environment(api, box, client):
    """A bare KEY is resolved by the client; the server must not fill it from its own
    environment (NUTSHELL_ROOT is set in the server's)."""
    p = api.docker("exec", "-e", "NUTSHELL_ROOT", box, "sh", "-c", "echo ${NUTSHELL_ROOT-unset}")
    # the CLI resolves it from its own environment (the test's, which has it): that is fine
    assert p.returncode == 0
    eid = client.api.exec_create(box, ["sh", "-c", "echo ${NUTSHELL_ROOT-unset} ${PATH-x}"],
                                 environment=["NUTSHELL_ROOT", "PYTHONPATH"])["Id"]
    out = client.api.exec_start(eid)
    assert out.split()[0] == b"unset", out
    c = client.containers.run("busybox", ["sh", "-c", "echo ${NUTSHELL_ROOT-unset}"],
                              environment=["NUTSHELL_ROOT"], remove=True)
    assert c == b"unset\n"


def test_exec_piped_stdin(docker, box):
    p = docker("exec", "-i", box, "sh", "-c", "tr a-z A-Z; exit 5", input=b"piped through\n" * 1000)
    assert p.returncode == 5
    assert p.stdout == b"PIPED THROUGH\n" * 1000


def test_exec_binary_stdin_with_detach_bytes(docker, box):
    """Without a TTY stdin is data: ctrl-p ctrl-q bytes in it do not detach."""
    data = bytes(range(256)) * 64 + b"\x10\x11" + b"tail"
    p = docker("exec", "-i", box, "sh", "-c", "cat > /tmp/bin; md5sum /tmp/bin", input=data)
    import hashlib

    assert p.returncode == 0 and p.stdout.split()[0].decode() == hashlib.md5(data).hexdigest()


def test_run_binary_stdin_with_detach_bytes(docker):
    """The same for attach (``run -i``): without a TTY the detach keys are data."""
    import hashlib

    data = b"head" + b"\x10\x11" * 100 + b"tail"
    p = docker("run", "-i", "--rm", "busybox", "md5sum", input=data)
    assert p.returncode == 0 and p.stdout.split()[0].decode() == hashlib.md5(data).hexdigest()


def test_exec_missing_command_and_not_executable(docker, box):
    p = docker("exec", box, "nosuchcommand")
    assert p.returncode == 127, p
    assert b"executable file not found" in p.stdout + p.stderr
    p = docker("exec", box, "/etc/passwd")
    assert p.returncode == 126, p
    p = docker("exec", box, "/tmp")                       # a directory: dockerd says 126
    assert p.returncode == 126, p
    p = docker("exec", "-w", "/no/such/dir", box, "pwd")  # "no such file or directory": 127
    assert p.returncode == 127 and b"no such file or directory" in p.stdout, p
    p = docker("exec", "-u", "nosuchuser", box, "true")   # other start failures: 128
    assert p.returncode == 128 and b"nosuchuser" in p.stdout, p


def test_exec_in_stopped_container_is_refused(docker):
    docker("create", "--name", "execstopped", "busybox", "true", check=True)
    try:
        p = docker("exec", "execstopped", "true")
        assert p.returncode != 0 and b"is not running" in p.stderr
    finally:
        docker("rm", "execstopped")
    p = docker("exec", "nosuchcontainer", "true")
    assert p.returncode != 0 and b"No such container" in p.stderr


def test_exec_detached(docker, box):
    assert docker("exec", "-d", box, "sh", "-c", "echo detached > /tmp/d").returncode == 0
    wait_for(lambda: docker("exec", box, "cat", "/tmp/d").stdout == b"detached\n",
             what="the detached exec to write its file")


def test_exec_it_type_resize_exit(api, box):
    term = Pty(api.client_env, "exec", "-it", box, "sh", rows=33, cols=101)
    try:
        term.read_until(b"# ")
        term.send(b"echo $((6*7)); stty size\r")
        term.read_until(b"42\r\n33 101")
        term.resize(20, 60)

        def resized() -> bool:
            term.send(b"stty size\r")
            try:
                term.read_until(b"20 60", timeout=0.5)
                return True
            except AssertionError:
                term.resize(21, 61)
                time.sleep(0.1)
                term.resize(20, 60)
                return False

        wait_for(resized, timeout=15, what="the new size inside the exec")
        term.send(b"exit 3\r")
        assert term.wait() == 3
    finally:
        term.close()


def test_exec_it_detach_keys_leave_process_running(api, box):
    term = Pty(api.client_env, "exec", "-it", "--detach-keys", "ctrl-x", box, "sh")
    try:
        term.read_until(b"# ")
        term.send(b"echo $((6*7))\r")
        term.read_until(b"42")
        term.send(b"sleep 1000\r")
        wait_for(lambda: b"sleep 1000" in api.docker("exec", box, "ps").stdout,
                 what="the sleep to start")
        term.send(b"\x18")
        # the CLI 20.10 finds the keys itself ("read escape sequence") and exits 1, with
        # dockerd too
        assert term.wait() == 1
    finally:
        term.close()
    p = api.docker("exec", box, "sh", "-c", "ps | grep -c 'sleep 1000'", check=True)
    assert int(p.stdout) >= 2       # the sleep (and grep itself): the detached shell runs on
    api.docker("exec", box, "pkill", "-f", "sleep 1000")


# --- docker-py -------------------------------------------------------------------------
def test_dockerpy_exec_run(client, box):
    c = client.containers.get(box)
    res = c.exec_run(["sh", "-c", "echo hi; echo there >&2; exit 2"], demux=True)
    assert res.exit_code == 2
    assert res.output == (b"hi\n", b"there\n")
    res = c.exec_run("cat /etc/hostname", tty=True)
    assert res.exit_code == 0 and res.output.strip()
    res = c.exec_run("env", environment={"A": "b"}, workdir="/tmp", user="nobody")
    assert b"A=b" in res.output
    res = c.exec_run("sleep 0", detach=True)
    assert res.exit_code is None and not res.output


def test_dockerpy_low_level_exec_inspect(client, box):
    api = client.api
    eid = api.exec_create(box, ["sh", "-c", "exit 4"])["Id"]
    info = api.exec_inspect(eid)
    assert info["Running"] is False and info["ExitCode"] is None
    assert info["ProcessConfig"]["entrypoint"] == "sh"
    assert info["ContainerID"] == client.containers.get(box).id
    api.exec_start(eid)
    info = api.exec_inspect(eid)
    assert info["ExitCode"] == 4 and info["Running"] is False
    with pytest.raises(dockerpy.errors.APIError) as e:
        api.exec_start(eid)
    assert e.value.status_code == 409


def test_dockerpy_exec_stream_and_socket(client, box):
    api = client.api
    eid = api.exec_create(box, "sh -c 'for i in 1 2 3; do echo $i; done'")["Id"]
    chunks = b"".join(api.exec_start(eid, stream=True))
    assert chunks == b"1\n2\n3\n"
    eid = api.exec_create(box, "cat", stdin=True)["Id"]
    sock = api.exec_start(eid, socket=True)
    s = sock._sock
    s.sendall(b"through the socket\n")
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.close()
    assert data == b"\x01\x00\x00\x00\x00\x00\x00\x13through the socket\n"
    wait_for(lambda: api.exec_inspect(eid)["ExitCode"] == 0)


# --- hostile requests ------------------------------------------------------------------
def test_exec_bad_requests(api, box):
    cid = api.docker("inspect", "-f", "{{.Id}}", box, check=True).stdout.decode().strip()
    cases = [
        (f"/v1.41/containers/{cid}/exec", b"{not json", 400),
        (f"/v1.41/containers/{cid}/exec", b"[]", 400),
        (f"/v1.41/containers/{cid}/exec", b'{"Cmd": []}', 400),
        (f"/v1.41/containers/{cid}/exec", b'{"Cmd": "true", "Tty": "yes"}', 400),
        (f"/v1.41/containers/{cid}/exec", b'{"Cmd": ["true", 3]}', 400),
        (f"/v1.41/containers/{cid}/exec", b'{"Cmd": ["true"], "DetachKeys": "ctrl-xx"}', 400),
        ("/v1.41/containers/nosuch/exec", b'{"Cmd": ["true"]}', 404),
        ("/v1.41/exec/nosuch/start", b"{}", 404),
        ("/v1.41/exec/nosuch/json", None, 404),
        ("/v1.41/exec/nosuch/resize?h=1&w=1", None, 404),
    ]
    for path, body, status in cases:
        method = "GET" if path.endswith("/json") else "POST"
        got, data = raw(api, method, path, body, {"Content-Type": "application/json"})
        assert got == status, (path, body, got, data)
        assert "message" in json.loads(data)
    # a hijacked exec whose client vanishes mid-stream: the server serves on
    status, data = raw(api, "POST", f"/v1.41/containers/{cid}/exec",
                       b'{"Cmd": ["sh", "-c", "yes | head -c 5000000"], "AttachStdout": true}')
    eid = json.loads(data)["Id"]
    s = socket.socket(socket.AF_UNIX)
    s.connect(api.socket)
    s.sendall(f"POST /v1.41/exec/{eid}/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 2\r\n\r\n{}".encode())
    assert s.recv(100).startswith(b"HTTP/1.1 101")
    s.close()
    wait_for(lambda: json.loads(raw(api, "GET", f"/v1.41/exec/{eid}/json")[1])["Running"] is False,
             what="the abandoned exec to finish")
    assert api.docker("exec", box, "true").returncode == 0


def test_twenty_execs_at_once(client, box):
    """20 clients exec at the same time, each with its own output and exit code."""
    from concurrent.futures import ThreadPoolExecutor

    c = client.containers.get(box)

    def one(i: int):
        return c.exec_run(["sh", "-c", f"sleep 0.3; echo {i}; exit {i % 7}"])

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(20)))
    for i, res in enumerate(results):
        assert res.output == f"{i}\n".encode() and res.exit_code == i % 7


def test_unstarted_execs_do_not_pile_up(client, box):
    """Execs created and never started are forgotten beyond 1024 (oldest first)."""
    api = client.api
    ids = [api.exec_create(box, ["true"])["Id"] for _ in range(1030)]
    with pytest.raises(dockerpy.errors.NotFound):
        api.exec_inspect(ids[0])
    assert api.exec_inspect(ids[-1])["Running"] is False
    api.exec_start(ids[-1])
    assert api.exec_inspect(ids[-1])["ExitCode"] == 0


def test_exec_inspect_while_running(client, box):
    import threading

    api = client.api
    eid = api.exec_create(box, ["sleep", "1"])["Id"]
    t = threading.Thread(target=api.exec_start, args=(eid,))
    t.start()
    try:
        info = wait_for(lambda: (lambda i: i if i["Running"] else None)(api.exec_inspect(eid)),
                        what="the exec to run")
        assert info["Pid"] > 0 and info["ExitCode"] is None
        with pytest.raises(dockerpy.errors.APIError) as e:
            api.exec_start(eid)
        assert e.value.status_code == 409 and "already running" in str(e.value)
    finally:
        t.join(10)
    info = api.exec_inspect(eid)
    assert info["Running"] is False and info["ExitCode"] == 0
