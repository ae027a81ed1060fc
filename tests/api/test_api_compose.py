"""Docker Compose (Debian's docker-compose 1.29) drives Nutshell through the API socket,
unchanged: a three-service project with a built image, a user network, a named volume,
depends_on and a published port; then ps, logs, exec, and down -v leaving nothing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import urllib.request

import pytest

from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COMPOSE = shutil.which("docker-compose")
PROJECT_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "compose")


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def compose(api, tmp_path):
    if COMPOSE is None:
        pytest.skip("docker-compose is not installed")
    project = tmp_path / "proj"
    shutil.copytree(PROJECT_DIR, project)
    port = _free_port()
    env = dict(api.client_env, WEB_PORT=str(port), COMPOSE_PROJECT_NAME="nsproj",
               COMPOSE_INTERACTIVE_NO_CLI="1")

    def run(*args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        p = subprocess.run([COMPOSE, *args], cwd=project, env=env, capture_output=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)} -> {p.returncode}\n"
                                 f"{p.stdout.decode(errors='replace')}\n"
                                 f"{p.stderr.decode(errors='replace')}\n"
                                 f"server log:\n{api.server_log()}")
        return p

    run.port = port  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        run("down", "-v", "--rmi", "local", check=False)


def test_compose_up_ps_logs_exec_down(api, compose):
    compose("up", "-d", "--build")
    ps = compose("ps").stdout.decode()
    for svc in ("nsproj_web_1", "nsproj_api_1", "nsproj_db_1"):
        assert svc in ps and "Up" in ps.split(svc, 1)[1].splitlines()[0], ps

    # the built image serves on the published port
    def page() -> bytes:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{compose.port}/index.html", timeout=2) as r:
                return r.read()
        except OSError:
            return b""

    assert wait_for(page, timeout=20, what="the web service on its published port") == b"hello from web\n"

    # logs of a service, the named volume written, and names resolving on the user network
    assert wait_for(lambda: b"api tick 1" in compose("logs", "api").stdout, timeout=20)
    assert compose("exec", "-T", "api", "cat", "/data/started").stdout == b"api started\n"
    p = compose("exec", "-T", "db", "ping", "-c", "1", "-W", "3", "api")
    assert b"1 packets received" in p.stdout
    p = compose("exec", "-T", "db", "sh", "-c", "exit 3", check=False)
    assert p.returncode == 3

    labels = api.docker("inspect", "-f", '{{index .Config.Labels "com.docker.compose.service"}}',
                        "nsproj_web_1", check=True).stdout
    assert labels == b"web\n"

    compose("down", "-v")
    assert api.engine.ps(all=True) == []
    assert not [n for n in api.engine.networks() if n["Name"].startswith("nsproj")]
    assert not [v for v in api.engine.volumes() if v["Name"].startswith("nsproj")]
