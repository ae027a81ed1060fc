"""The docker CLI 20.10 (Debian's docker.io) driving Nutshell through its API socket."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time

import pytest

from tests.api.conftest import DOCKER_CLI
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def _controlling_tty() -> None:
    """In the child: a session of its own with the PTY (its stdin) as controlling terminal."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Pty:
    """The docker CLI on a pseudo-terminal, as a person at a terminal runs it."""

    def __init__(self, env: dict, *args: str, rows: int = 24, cols: int = 80):
        self.master, slave = pty.openpty()
        self.resize(rows, cols, fd=slave)
        self.proc = subprocess.Popen([DOCKER_CLI, *args], stdin=slave, stdout=slave, stderr=slave,
                                     env=env, close_fds=True, preexec_fn=_controlling_tty)
        os.close(slave)
        self.out = b""

    def resize(self, rows: int, cols: int, fd: int | None = None) -> None:
        """As a terminal window does: the kernel signals SIGWINCH to the foreground job."""
        fcntl.ioctl(self.master if fd is None else fd, termios.TIOCSWINSZ,
                    struct.pack("HHHH", rows, cols, 0, 0))

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def read_until(self, needle: bytes, timeout: float = 15) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen; got {self.out[-500:]!r}")
            if select.select([self.master], [], [], left)[0]:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError(f"EOF before {needle!r}; got {self.out[-500:]!r}")
                self.out += data
        return self.out

    def wait(self, timeout: float = 15) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            if select.select([self.master], [], [], 0.1)[0]:
                try:
                    self.out += os.read(self.master, 4096)
                except OSError:
                    pass
        return self.proc.wait(1)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def test_version_and_ping_negotiate(docker):
    p = docker("version", "--format", "{{.Server.APIVersion}} {{.Client.APIVersion}}", check=True)
    server, client = p.stdout.decode().split()
    assert client == "1.41" and server == "1.50"


def test_run_exit_codes_and_output(docker):
    p = docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert p.returncode == 3
    assert p.stdout == b"out\n" and p.stderr == b"err\n"
    assert docker("run", "--rm", "busybox", "nosuchcommand").returncode == 127
    assert docker("run", "--rm", "busybox", "/etc/passwd").returncode == 126
    p = docker("run", "--rm", "--pull", "never", "nosuchimage:latest", "true")   # offline: no pull
    assert p.returncode == 125 and b"No such image" in p.stderr


def test_run_piped_stdin(docker):
    p = docker("run", "-i", "--rm", "busybox", "sh", "-c", "tr a-z A-Z; exit 4", input=b"piped text\n")
    assert p.returncode == 4 and p.stdout == b"PIPED TEXT\n"


def test_run_it_type_resize_detach_attach(api):
    term = Pty(api.client_env, "run", "-it", "--name", "tty1", "busybox", "sh", rows=30, cols=100)
    try:
        term.read_until(b"# ")
        term.send(b"echo $((6*7))\r")
        term.read_until(b"42\r\n")

        def sized(rows: int, cols: int) -> bool:
            # the CLI sends the size after the start, then on each SIGWINCH (which it
            # watches once that first resize is done); as with dockerd, the container
            # sees a new size a moment later: ask until it shows
            term.send(b"stty size\r")
            try:
                term.read_until(b"%d %d" % (rows, cols), timeout=0.5)
                return True
            except AssertionError:           # the kernel signals only a change of size
                term.resize(rows - 1, cols - 1)
                time.sleep(0.1)
                term.resize(rows, cols)
                return False

        wait_for(lambda: sized(30, 100), timeout=15, what="the first size inside the container")
        term.resize(25, 90)
        wait_for(lambda: sized(25, 90), timeout=15, what="the new size inside the container")
        term.send(b"\x10\x11")                  # ctrl-p ctrl-q: detach, the shell runs on
        assert term.wait() == 0
    finally:
        term.close()
    assert api.docker("inspect", "-f", "{{.State.Running}}", "tty1").stdout == b"true\n"
    again = Pty(api.client_env, "attach", "tty1", rows=20, cols=70)
    try:
        again.send(b"stty size; exit 9\r")
        again.read_until(b"20 70")
        assert again.wait() == 9
    finally:
        again.close()
    assert wait_for(lambda: api.docker("inspect", "-f", "{{.State.ExitCode}}", "tty1").stdout == b"9\n")
    api.docker("rm", "tty1", check=True)


def test_detached_run_logs_follow_ps_stop_rm(docker):
    cid = docker("run", "-d", "--name", "ticker", "busybox", "sh", "-c",
                 "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done", check=True)
    cid = cid.stdout.decode().strip()
    assert len(cid) == 64
    ps = docker("ps", "--format", "{{.Names}} {{.Status}}", check=True).stdout.decode()
    assert "ticker Up" in ps
    follow = subprocess.Popen([DOCKER_CLI, "logs", "-f", "ticker"], stdout=subprocess.PIPE,
                              env=docker.__self__.client_env)
    try:
        seen = b""
        while b"tick 3" not in seen:
            seen += follow.stdout.read1(100)
    finally:
        follow.kill()
        follow.wait()
    assert docker("stop", "-t", "1", "ticker").returncode == 0
    state = docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "ticker").stdout
    assert state.split()[0] == b"exited"
    assert docker("rm", "ticker").returncode == 0
    p = docker("inspect", "ticker")
    assert p.returncode == 1 and b"No such" in p.stderr


def test_request_log_records_changing_requests(api, docker):
    from workbench.api import requestlog

    since = time.time()
    docker("run", "--rm", "--name", "logged", "busybox", "true", check=True)
    docker("ps")
    entries = requestlog.read(requestlog.path_for(api.run), since=since)
    paths = [e["path"] for e in entries]
    assert any(p.startswith("/v1.41/containers/create?name=logged") for p in paths), paths
    assert all(e["method"] not in ("GET", "HEAD") for e in entries)
    create = next(e for e in entries if "/containers/create" in e["path"])
    assert create["status"] == 201 and create["agent"].startswith("Docker-Client/20.10")
    assert create["peer"].startswith("pid ")


def test_events_since_until_and_follow(api, docker):
    docker("run", "--rm", "--name", "evt1", "busybox", "sh", "-c", "exit 2")
    time.sleep(1.1)                       # --until 0s is this second: the events are before it
    p = docker("events", "--since", "1m", "--until", "0s", "--filter", "container=evt1", check=True)
    actions = [line.split()[2] for line in p.stdout.decode().splitlines()]
    assert actions[0] == "create" and actions[-1] == "destroy", actions
    assert actions.index("start") < actions.index("die") < actions.index("destroy")
    assert "exitCode=2" in p.stdout.decode()
    # following: an event written by another process (the nutshell CLI) arrives on the stream
    follow = subprocess.Popen([DOCKER_CLI, "events", "--filter", "event=create", "--format",
                               "{{.Actor.Attributes.name}}"], stdout=subprocess.PIPE,
                              env=api.client_env)
    try:
        time.sleep(0.5)
        assert api.nutshell("create", "--name", "evt2", "busybox", "true").returncode == 0
        line = b""
        deadline = time.monotonic() + 15
        while b"\n" not in line and time.monotonic() < deadline:
            if select.select([follow.stdout], [], [], 0.5)[0]:
                line += follow.stdout.read1(100)
        assert line == b"evt2\n"
    finally:
        follow.kill()
        follow.wait()
    docker("rm", "evt2", check=True)


def test_login_checks_credentials_and_stores_nothing_server_side(api, docker, basic_registry):
    host = basic_registry.host
    p = docker("login", "-u", "alice", "--password-stdin", host,
               input=basic_registry.users["alice"].encode())
    assert p.returncode == 0 and b"Login Succeeded" in p.stdout, p.stderr
    p = docker("login", "-u", "alice", "--password-stdin", host, input=b"wrong")
    assert p.returncode == 1 and b"unauthorized" in p.stderr.lower()
    # the client keeps its credentials (in its own DOCKER_CONFIG); the server stored none
    with open(os.path.join(api.docker_config, "config.json")) as f:
        assert host in f.read()
    for dirpath, _dirs, files in os.walk(api.server_config):
        assert files == [], f"the server stored credentials: {dirpath} {files}"


def test_system_df_and_info(docker):
    docker("run", "-d", "--name", "dfc", "busybox", "sh", "-c", "echo data > /f; sleep 300", check=True)
    try:
        wait_for(lambda: docker("exec", "dfc", "cat", "/f").stdout == b"data\n", timeout=15)
        p = docker("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}", check=True)
        rows = dict((t.rsplit(" ", 2)[0], t.rsplit(" ", 2)[1:]) for t in p.stdout.decode().splitlines())
        assert rows["Images"][0] >= "1" and rows["Containers"][1] >= "1", rows
        p = docker("system", "df", "-v", check=True).stdout.decode()
        assert "dfc" in p and "busybox" in p
        p = docker("info", "--format", "{{.OSType}} {{.Driver}} {{.ContainersRunning}}", check=True)
        os_type, driver, running = p.stdout.decode().split()
        assert (os_type, driver) == ("linux", "overlay") and int(running) >= 1
    finally:
        docker("rm", "-f", "dfc")
