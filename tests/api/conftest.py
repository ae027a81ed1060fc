"""The Docker Engine API server under real clients: a ``nutshell system service`` process
per test module, on a fresh state root with a busybox image, and the clients pointed at
its socket (the docker CLI 20.10 from Debian's docker.io, docker-py, docker-compose)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from tests.waiting import wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCKER_CLI = "/usr/bin/docker"          # Debian's docker.io (20.10); not a newer one on PATH
IMAGE = "busybox:latest"

class ApiServer:
    """A running ``nutshell system service`` on its own root, runtime dir and socket."""

    def __init__(self, base: str, busybox_rootfs: str):
        self.base = base
        self.root = os.path.join(base, "root")
        self.run = os.path.join(base, "run")
        self.socket = os.path.join(base, "api.sock")
        self.docker_config = os.path.join(base, "docker-config")
        os.makedirs(self.root)
        os.makedirs(self.docker_config)
        # the server's own credential stores: empty, and never the user's
        self.server_config = os.path.join(base, "server-config")
        os.makedirs(os.path.join(self.server_config, "docker"))
        os.makedirs(os.path.join(self.server_config, "nutshell"))
        self.env = dict(os.environ, NUTSHELL_ROOT=self.root, NUTSHELL_RUNTIME_DIR=self.run,
                        PYTHONPATH=REPO,
                        DOCKER_CONFIG=os.path.join(self.server_config, "docker"),
                        NUTSHELL_CONFIG_DIR=os.path.join(self.server_config, "nutshell"))
        from core.engine import Engine

        self.engine = Engine(self.root)
        self.engine.import_image(busybox_rootfs, IMAGE, changes=['CMD ["sh"]'])
        self.log = open(os.path.join(base, "server.log"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from workbench.cli import main; sys.exit(main())",
             "system", "service", "--socket", self.socket,
             "--timeout", "0", "--log-requests"],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO)
        wait_for(self._listening, timeout=20, what="the API server to listen")
        self.client_env = dict(os.environ, DOCKER_HOST=f"unix://{self.socket}",
                               DOCKER_CONFIG=self.docker_config, DOCKER_BUILDKIT="0",
                               NUTSHELL_ROOT=self.root, NUTSHELL_RUNTIME_DIR=self.run)
        self.client_env.pop("DOCKER_CONTEXT", None)

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError("the API server exited:\n" + self.server_log())
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(self.socket)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def server_log(self) -> str:
        self.log.flush()
        with open(os.path.join(self.base, "server.log"), errors="replace") as f:
            return f.read()[-5000:]

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 60,
               check: bool = False) -> subprocess.CompletedProcess:
        """Run the docker CLI against this server."""
        p = subprocess.run([DOCKER_CLI, *args], input=input, capture_output=True,
                           env=self.client_env, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} -> {p.returncode}\n"
                                 f"{p.stderr.decode(errors='replace')}")
        return p

    def nutshell(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run the nutshell CLI on this server's root (another process, as a user would)."""
        return subprocess.run([sys.executable, "-c", "import sys; from workbench.cli import main; "
                               "sys.exit(main())", *args], env=self.env, capture_output=True,
                              timeout=timeout, cwd=REPO)

    def close(self) -> None:
        for c in self.engine.ps(all=True):
            try:
                self.engine.rm(c["Id"], force=True, volumes=True)
            except Exception:  # noqa: BLE001
                pass
        for n in self.engine.networks():
            if n["Name"] not in ("bridge", "host", "none", "default"):
                try:
                    self.engine.network_rm(n["Name"])
                except Exception:  # noqa: BLE001
                    pass
        try:
            self.engine.network_reset()
        except Exception:  # noqa: BLE001
            pass
        stop_process(self.proc)
        self.log.close()


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def api_server(tmp_path_factory, busybox_rootfs, **env: str):
    """An ApiServer for a module (``env``: variables for the server), closed at its end."""
    if not os.path.exists(DOCKER_CLI):
        pytest.skip("the docker CLI (Debian's docker.io) is not installed")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        server = ApiServer(str(tmp_path_factory.mktemp("api")), busybox_rootfs)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory, busybox_rootfs):
    yield from api_server(tmp_path_factory, busybox_rootfs)


@pytest.fixture
def docker(api):
    return api.docker


@pytest.fixture
def client(api):
    """docker-py on the server's socket, speaking API 1.41 (what docker 20.10 speaks)."""
    import docker as docker_py

    c = docker_py.DockerClient(base_url="unix://" + api.socket, version="1.41", timeout=120)
    yield c
    c.close()

