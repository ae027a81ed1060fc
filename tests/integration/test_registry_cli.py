"""The registry verbs as a user runs them: output formats, -q, login/logout files, exit codes."""

from __future__ import annotations

import base64
import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from tests.registry_servers import USERS, free_port, make_image, push_with_skopeo, tar_from_dict, unique_repo

pytestmark = [pytest.mark.integration, pytest.mark.registry]


@pytest.fixture(scope="module")
def small_image(busybox_layer_tar):
    return make_image([busybox_layer_tar, tar_from_dict({"etc/": None, "etc/motd": "hi\n"})])


@pytest.fixture
def cli(root, registry_env):
    env = dict(os.environ, **registry_env, NUTSHELL_ROOT=root, PYTHONPATH=os.getcwd())

    def run(*args, input=None, timeout=60):
        return subprocess.run([sys.executable, "-m", "workbench", *args], env=env, input=input,
                              capture_output=True, text=True, timeout=timeout)
    run.env = env
    return run


def test_pull_plain_output_and_quiet(cli, registry, small_image, tmp_path):
    ref = push_with_skopeo(str(tmp_path), registry, unique_repo("cli"), "v1", [small_image])
    p = cli("pull", ref)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == f"v1: Pulling from {ref.split('/', 1)[1].rsplit(':', 1)[0]}"
    for layer in small_image.layers:
        sid = layer["digest"][7:19]
        assert f"{sid}: Pulling fs layer" in lines and f"{sid}: Pull complete" in lines
    assert f"Digest: {small_image.digest}" in lines
    assert f"Status: Downloaded newer image for {ref}" in lines
    assert lines[-1] == ref
    assert not any("Downloading" in ln for ln in lines)  # no byte-level noise in logs

    p = cli("pull", "-q", ref)
    assert p.returncode == 0 and p.stdout == small_image.digest + "\n" and p.stderr == ""

    p = cli("image", "pull", ref)
    assert p.returncode == 0 and "Image is up to date" in p.stdout


def test_pull_errors_are_one_line_exit_125(cli, registry):
    port = free_port()
    p = cli("pull", f"127.0.0.1:{port}/a/b")
    assert p.returncode == 125
    assert p.stderr == f"nutshell: cannot connect to registry 127.0.0.1:{port}: connection refused\n"
    p = cli("pull", f"{registry.host}/no/such:tag")
    assert p.returncode == 125
    assert p.stderr.startswith("nutshell: manifest for ") and p.stderr.count("\n") == 1
    p = cli("pull", "Bad::Ref")
    assert p.returncode == 125 and p.stderr.startswith("nutshell: invalid reference format")
    assert p.stdout == ""
    p = cli("pull", "--platform", "linux/", f"{registry.host}/a/b")
    assert p.returncode == 125 and "invalid platform" in p.stderr


def test_login_push_logout(cli, basic_registry, small_image, tmp_path, registry_env):
    host = basic_registry.host
    src = push_with_skopeo(str(tmp_path), basic_registry, unique_repo("cli-src"), "v1", [small_image],
                           creds=basic_registry.creds())
    p = cli("pull", src)
    assert p.returncode == 125 and "authentication required" in p.stderr
    assert f"nutshell login {host}" in p.stderr  # the hint line

    p = cli("login", "-u", "alice", "--password-stdin", host, input="wrong\n")
    assert p.returncode == 125
    assert p.stderr == f"nutshell: login to {host} failed: unauthorized: incorrect username or password\n"
    assert not os.path.exists(os.path.join(registry_env["DOCKER_CONFIG"], "config.json"))

    p = cli("login", "-u", "alice", "--password-stdin", host, input=USERS["alice"] + "\n")
    assert p.returncode == 0 and p.stdout == "Login Succeeded\n", p.stderr
    cfg = json.load(open(os.path.join(registry_env["DOCKER_CONFIG"], "config.json")))
    assert base64.b64decode(cfg["auths"][host]["auth"]).decode() == f"alice:{USERS['alice']}"

    p = cli("login", "-u", "alice", "-p", USERS["alice"], host)
    assert p.returncode == 0 and "--password-stdin" in p.stderr  # the warning

    assert cli("pull", src).returncode == 0
    dst = f"{host}/{unique_repo('cli-dst')}:v2"
    p = cli("push", src, dst)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == f"The push refers to repository [{dst.rsplit(':', 1)[0]}]"
    assert p.stdout.splitlines()[-1] == f"v2: digest: {small_image.digest} size: {len(small_image.manifest)}"
    p = cli("push", "-q", src, dst)
    assert p.returncode == 0 and p.stdout == small_image.digest + "\n"

    p = cli("logout", host)
    assert p.returncode == 0 and p.stdout == f"Removing login credentials for {host}\n"
    cfg = json.load(open(os.path.join(registry_env["DOCKER_CONFIG"], "config.json")))
    assert host not in cfg.get("auths", {})
    p = cli("logout", host)
    assert p.returncode == 0 and p.stdout == f"Not logged in to {host}\n"


def test_login_without_tty_needs_flags(cli, basic_registry):
    p = cli("login", basic_registry.host, input="")
    assert p.returncode == 125 and "non-TTY" in p.stderr


def test_rich_progress_bars_on_a_terminal(cli, registry, small_image, tmp_path):
    ref = push_with_skopeo(str(tmp_path), registry, unique_repo("tty"), "v1", [small_image])
    pid, fd = pty.fork()
    if pid == 0:  # child: the CLI with its stdout on a terminal
        os.environ.update(cli.env)
        os.environ["COLUMNS"] = "120"
        os.execv(sys.executable, [sys.executable, "-m", "workbench", "pull", ref])
    out = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = out.decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    for layer in small_image.layers:
        assert layer["digest"][7:19] in text
    assert "━" in text  # a rich bar
    assert "Pull complete" in text and f"Digest: {small_image.digest}" in text
