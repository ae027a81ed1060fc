"""``nutshell system service`` as a process: idle exit (``--timeout``; a long stream counts
as in flight), systemd socket activation (a listening socket on fd 3 with LISTEN_PID and
LISTEN_FDS; a TCP one refused), and the socket file it makes itself (mode 0660, ``--group``,
a stale socket replaced, a live one or a non-socket file at the path refused)."""

from __future__ import annotations

import grp
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

import docker
import pytest

from tests.api.conftest import IMAGE, REPO, stop_process
from tests.api.rawhttp import Raw, call
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

SERVICE = [sys.executable, "-c", "import sys; from workbench.cli import main; sys.exit(main())",
           "system", "service"]

# Makes fd N the listening socket systemd would pass (fd 3), sets LISTEN_PID to its own
# pid (which exec keeps) and LISTEN_FDS, then execs the server: what systemd and
# systemd-socket-activate do between fork and exec.
ACTIVATE = ("import os, sys\n"
            "fd = int(sys.argv[1])\n"
            "if fd != 3:\n"
            "    os.dup2(fd, 3); os.close(fd)\n"
            "os.environ['LISTEN_PID'] = str(os.getpid()); os.environ['LISTEN_FDS'] = '1'\n"
            "os.execv(sys.argv[2], sys.argv[2:])\n")


class State:
    """A state root with busybox, shared by this module's servers (one at a time)."""

    def __init__(self, base: str, busybox_rootfs: str):
        self.base = base
        self.root = os.path.join(base, "root")
        self.run = os.path.join(base, "run")
        os.makedirs(self.root)
        self.env = dict(os.environ, NUTSHELL_ROOT=self.root, NUTSHELL_RUNTIME_DIR=self.run,
                        PYTHONPATH=REPO)
        for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            self.env.pop(k, None)
        from core.engine import Engine

        self.engine = Engine(self.root)
        self.engine.import_image(busybox_rootfs, IMAGE, changes=['CMD ["sh"]'])
        self.n = 0

    def path(self, name: str) -> str:
        self.n += 1
        return os.path.join(self.base, f"{self.n}-{name}")


@pytest.fixture(scope="module")
def state(tmp_path_factory, busybox_rootfs):
    s = State(str(tmp_path_factory.mktemp("svc")), busybox_rootfs)
    yield s
    for c in s.engine.ps(all=True):
        try:
            s.engine.rm(c["Id"], force=True)
        except Exception:  # noqa: BLE001
            pass
    try:
        s.engine.network_reset()              # the default bridge the containers used
    except Exception:  # noqa: BLE001
        pass


class Service:
    def __init__(self, state: State, *args: str, sock: str | None = None, pass_fd: int | None = None,
                 wait: bool = True, env: dict[str, str] | None = None):
        self.socket = sock or state.path("api.sock")
        self.log = state.path("server.log")
        argv = SERVICE + (["--socket", self.socket] if pass_fd is None else []) + list(args)
        fds: tuple[int, ...] = ()
        if pass_fd is not None:
            argv = [sys.executable, "-c", ACTIVATE, str(pass_fd)] + argv
            fds = (pass_fd,)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, env=dict(state.env, **(env or {})), stdout=out, stderr=subprocess.STDOUT,
                                         cwd=REPO, pass_fds=fds)
        self.started = time.monotonic()
        if wait:
            wait_for(self.listening, timeout=20, what="the server to listen")

    def listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the server exited {self.proc.returncode}:\n{self.output()}")
        r = None
        try:
            r = call(self.socket, "GET", "/_ping")
        except OSError:
            return False
        return r.status == 200

    def output(self) -> str:
        with open(self.log, errors="replace") as f:
            return f.read()

    def exited(self, within: float) -> int:
        try:
            return self.proc.wait(within)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the server still runs after {within}s:\n{self.output()}") from None

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def services():
    made: list[Service] = []
    yield made
    for s in made:
        s.stop()


def _client(path: str) -> docker.DockerClient:
    return docker.DockerClient(base_url="unix://" + path, timeout=30)


# --- idle exit -----------------------------------------------------------------------------
def test_idle_exit_after_timeout_without_requests(state, services):
    s = Service(state, "--timeout", "1")
    services.append(s)
    t0 = time.monotonic()
    assert s.exited(within=10) == 0
    assert 0.8 <= time.monotonic() - t0 < 5
    assert not os.path.exists(s.socket), "the socket file outlived the server"


def test_requests_postpone_the_idle_exit(state, services):
    s = Service(state, "--timeout", "2")
    services.append(s)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 5:               # a request every half second: never idle
        assert call(s.socket, "GET", "/_ping").status == 200
        time.sleep(0.5)
    assert s.proc.poll() is None
    t1 = time.monotonic()
    assert s.exited(within=10) == 0
    assert 1.5 <= time.monotonic() - t1 < 5


def test_timeout_zero_never_exits_and_sigterm_stops(state, services):
    s = Service(state, "--timeout", "0")
    services.append(s)
    time.sleep(2.5)
    assert s.proc.poll() is None
    s.proc.send_signal(signal.SIGTERM)
    assert s.exited(within=5) == 0
    assert not os.path.exists(s.socket)


def _open_stream(kind: str, path: str, cid: str) -> Raw:
    raw = Raw(path)
    if kind == "logs-follow":
        raw.request("GET", f"/v1.41/containers/{cid}/logs?follow=1&stdout=1&stderr=1")
    elif kind == "attach":
        raw.request("POST", f"/v1.41/containers/{cid}/attach?stream=1&stdout=1&stderr=1", b"",
                    {"Connection": "Upgrade", "Upgrade": "tcp"})
    elif kind == "wait":
        raw.request("POST", f"/v1.41/containers/{cid}/wait", b"")
    else:
        raw.request("GET", "/v1.41/events")
    return raw


@pytest.mark.parametrize("kind", ["logs-follow", "attach", "wait", "events"])
def test_a_long_stream_counts_as_in_flight(state, services, kind):
    s = Service(state, "--timeout", "1.5")
    services.append(s)
    c = _client(s.socket)
    # a container that says one thing and then nothing: the server cannot learn that the
    # client left from a failed write
    ctr = c.containers.run(IMAGE, ["sh", "-c", "echo hello; exec sleep 600"], detach=True)
    c.close()
    try:
        raw = _open_stream(kind, s.socket, ctr.id)
        try:
            head = raw.response(head=True)
            if head.status == 501:
                pytest.skip(f"this build has no {kind}")
            assert head.status in (101, 200), head
            time.sleep(4.5)                       # three idle timeouts with only the stream
            assert s.proc.poll() is None, f"the server left during a {kind} stream:\n{s.output()}"
        finally:
            raw.close()
        t0 = time.monotonic()
        assert s.exited(within=15) == 0           # the stream noticed its client is gone
        assert time.monotonic() - t0 < 8
        assert state.engine.container_state(ctr.id)["Status"] == "running"   # it lives on
    finally:
        state.engine.rm(ctr.id, force=True)


def test_an_idle_connection_does_not_keep_the_server_up(state, services):
    s = Service(state, "--timeout", "1")
    services.append(s)
    with Raw(s.socket) as c:                    # connected, one request done, then nothing
        c.request("GET", "/_ping")
        assert c.response().body == b"OK"
        assert s.exited(within=10) == 0
        assert c.at_eof()


def test_a_client_stalled_mid_request_is_dropped(state, services):
    """Half a body, then nothing: dropped after the idle timeout, and then no longer in
    flight (it would otherwise keep an idle-exiting server up for ever)."""
    s = Service(state, "--timeout", "1", env={"NUTSHELL_API_IDLE_TIMEOUT": "2"})
    services.append(s)
    stalled = []
    for head in (b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"Ima",
                 b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"10\r\n{\"Image\": ",
                 b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Half"):
        c = Raw(s.socket)
        c.send(head)
        stalled.append(c)
    t0 = time.monotonic()
    for c in stalled:
        try:
            r = c.response()
        except EOFError:                          # a head never finished: just closed
            r = None
        assert r is None or (r.status == 400 and "message" in r.json()), r
        assert c.at_eof()
        c.close()
    assert 1.5 <= time.monotonic() - t0 < 6
    assert s.exited(within=10) == 0


def test_a_large_unread_body_closes_the_connection(state, services):
    """An error answered before the body was read: a small body is skipped and the
    connection goes on, a large one is not read at all, the connection closes."""
    s = Service(state, "--timeout", "0")
    services.append(s)
    with Raw(s.socket) as c:
        c.request("POST", "/v1.41/nowhere", b"x" * 1000)
        assert c.response().status == 404
        c.request("GET", "/_ping")
        assert c.response().body == b"OK"
        c.send(b"POST /v1.41/nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n")
        c.send(b"y" * 300000)
        assert c.response().status == 404
        assert c.at_eof()
    assert call(s.socket, "GET", "/_ping").status == 200


# --- the socket file -----------------------------------------------------------------------
def test_socket_mode_0660_and_group(state, services):
    group = grp.getgrnam("daemon")                # exists on every Debian-like system
    for spec in ("daemon", str(group.gr_gid)):
        s = Service(state, "--group", spec)
        services.append(s)
        st = os.stat(s.socket)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert (st.st_uid, st.st_gid) == (0, group.gr_gid)
        s.stop()
    s = Service(state)                             # no --group: root's own group
    services.append(s)
    st = os.stat(s.socket)
    assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == os.getgid()


def test_unknown_group_is_refused(state, services):
    s = Service(state, "--group", "no-such-group-here", wait=False)
    services.append(s)
    assert s.exited(within=20) != 0
    assert "no such group" in s.output()
    assert not os.path.exists(s.socket)


def test_stale_socket_is_replaced(state, services):
    path = state.path("stale.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)                               # a socket file nobody listens on
    dead.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    s = Service(state, sock=path)
    services.append(s)
    assert _client(path).ping()


def test_live_socket_is_refused(state, services):
    path = state.path("live.sock")
    live = socket.socket(socket.AF_UNIX)
    live.bind(path)
    live.listen(1)
    try:
        s = Service(state, sock=path, wait=False)
        services.append(s)
        assert s.exited(within=20) != 0
        assert "already listening" in s.output()
        probe = socket.socket(socket.AF_UNIX)      # still ours, still there
        probe.connect(path)
        probe.close()
    finally:
        live.close()


@pytest.mark.parametrize("kind", ["file", "directory", "symlink"])
def test_a_non_socket_at_the_path_is_refused(state, services, kind):
    path = state.path("not-a-socket")
    if kind == "file":
        with open(path, "w") as f:
            f.write("precious\n")
    elif kind == "directory":
        os.mkdir(path)
    else:
        target = state.path("target")
        with open(target, "w") as f:
            f.write("precious\n")
        os.symlink(target, path)
    s = Service(state, sock=path, wait=False)
    services.append(s)
    assert s.exited(within=20) != 0
    assert "is not a socket" in s.output()
    if kind == "file":
        assert open(path).read() == "precious\n"
    elif kind == "directory":
        assert os.path.isdir(path)
    else:
        assert os.path.islink(path) and open(path).read() == "precious\n"


# --- socket activation ---------------------------------------------------------------------
def _listening_unix(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o660)
    s.listen(16)
    return s


def test_socket_activation_serves_the_passed_socket(state, services):
    path = state.path("activated.sock")
    listener = _listening_unix(path)
    try:
        s = Service(state, "--timeout", "1.5", sock=path, pass_fd=listener.fileno())
        services.append(s)
        c = _client(path)
        assert c.ping()
        assert c.version()["ApiVersion"]
        out = c.containers.run(IMAGE, ["echo", "activated"], remove=True)
        assert out == b"activated\n"
        c.close()
        assert "passed by systemd" in s.output()
        assert s.exited(within=15) == 0            # idle: it leaves...
        assert stat.S_ISSOCK(os.lstat(path).st_mode)   # ...but the socket is systemd's: kept
        # connections queue on the socket while no server runs; the next server takes them
        waiting = Raw(path)
        waiting.request("GET", "/_ping")
        s2 = Service(state, "--timeout", "1", sock=path, pass_fd=listener.fileno(), wait=False)
        services.append(s2)
        r = waiting.response()
        assert (r.status, r.body) == (200, b"OK")
        waiting.close()
    finally:
        listener.close()


def test_socket_activation_refuses_a_tcp_socket(state, services):
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(1)
    try:
        s = Service(state, sock=state.path("unused.sock"), pass_fd=tcp.fileno(), wait=False)
        services.append(s)
        assert s.exited(within=20) != 0
        assert "not a UNIX stream socket" in s.output()
    finally:
        tcp.close()


def test_listen_pid_of_another_process_is_ignored(state, services):
    """LISTEN_FDS meant for another process (LISTEN_PID not ours): bind --socket as usual."""
    env = dict(state.env, LISTEN_PID="1", LISTEN_FDS="1")
    path = state.path("own.sock")
    with open(state.path("server.log"), "wb") as out:
        proc = subprocess.Popen(SERVICE + ["--socket", path, "--timeout", "1"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        wait_for(lambda: os.path.exists(path), timeout=20, what="the server's own socket")
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(not shutil.which("systemd-socket-activate"),
                    reason="systemd-socket-activate is not installed")
def test_systemd_socket_activate(state):
    path = state.path("sd.sock")
    log = state.path("sd.log")
    argv = [shutil.which("systemd-socket-activate"), "-l", path]
    for k in ("NUTSHELL_ROOT", "NUTSHELL_RUNTIME_DIR", "PYTHONPATH"):
        argv += ["-E", f"{k}={state.env[k]}"]
    argv += SERVICE + ["--timeout", "1.5"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=state.env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        wait_for(lambda: os.path.exists(path), timeout=10, what="systemd-socket-activate's socket")
        c = _client(path)                         # the first connection starts the server
        assert c.ping()
        assert c.containers.run(IMAGE, ["echo", "via", "sd"], remove=True) == b"via sd\n"
        c.close()
        assert proc.wait(20) == 0                 # idle exit; the launcher was exec'd into it
        with open(log, errors="replace") as f:
            assert "passed by systemd" in f.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
