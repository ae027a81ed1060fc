"""End to end: the real app in tmux (160x48) on a temporary root, driven by keys only.

Load an image archive (Images: l), run a container from it (Images: r, the run form), see
it in the Containers and Stats panes, stop it and remove it (Containers: x, d, y), quit.
The screen is read with ``tmux capture-pane``; a failing wait prints the last screen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.imagebuild import docker_archive, gnu_tar
from tests.rootfs import make_busybox_rootfs

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def body(screen: str) -> str:
    """The screen without the status line and the footer (which repeat the last command)."""
    return "\n".join(screen.rstrip("\n").splitlines()[:-2])


def footer(screen: str) -> str:
    lines = screen.rstrip("\n").splitlines()
    return lines[-1] if lines else ""


class Tmux:
    def __init__(self, name: str, command: str, width: int = 160, height: int = 48) -> None:
        self.socket = name
        self.run("new-session", "-d", "-s", "app", "-x", str(width), "-y", str(height), command)
        self.run("set-option", "-t", "app", "remain-on-exit", "on")
        size = self.run("display", "-p", "-t", "app", "#{window_width}x#{window_height}").stdout.strip()
        assert size == f"{width}x{height}", size

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        # a private server (-L) without any user config (-f /dev/null); the server and the app
        # must not inherit COLUMNS/LINES, which pytest-xdist's workers have (80x24): Python's
        # shutil.get_terminal_size, which Textual asks, prefers them to the pane's real size
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                              capture_output=True, text=True, check=check, timeout=20,
                              env=dict(env, TERM="xterm-256color"))

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "app").stdout

    def keys(self, *keys: str) -> None:
        for k in keys:
            self.run("send-keys", "-t", "app", k)
            time.sleep(0.25)

    def type(self, text: str) -> None:
        self.run("send-keys", "-t", "app", "-l", text)
        time.sleep(0.3)

    def wait(self, predicate, timeout: float = 20.0, what: str = "") -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                size = self.run("display", "-p", "-t", "app", "#{window_width}x#{window_height}").stdout.strip()
                raise AssertionError(f"timed out waiting for {what}; window {size}; footer "
                                     f"{footer(text)!r}; the screen:\n{text}")
            time.sleep(0.2)

    def wait_text(self, needle: str, timeout: float = 20.0) -> str:
        return self.wait(lambda s: needle in s, timeout, repr(needle))

    def dead(self) -> bool:
        out = self.run("list-panes", "-t", "app", "-F", "#{pane_dead}", check=False).stdout.strip()
        return out == "1"

    def kill(self) -> None:
        self.run("kill-server", check=False)


@pytest.fixture
def setup(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    root = tmp_path / "root"
    run = tmp_path / "run"
    rootfs = make_busybox_rootfs(str(tmp_path / "rootfs"))
    archive = str(tmp_path / "e2e.tar")
    docker_archive(archive, [gnu_tar(rootfs)], ["localhost/e2e:1"])
    env = {"NUTSHELL_RUNTIME_DIR": str(run), "NUTSHELL_CONFIG_DIR": str(tmp_path / "cfg"),
           "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    envs = " ".join(f"{k}={v}" for k, v in env.items())
    command = f"cd {ROOT_DIR} && env {envs} {sys.executable} -m workbench --root {root}"
    tmux = Tmux(f"nse2e-{os.getpid()}-{os.urandom(2).hex()}", command)
    from core.engine import Engine

    os.environ["NUTSHELL_RUNTIME_DIR"] = str(run)
    engine = Engine(str(root))
    try:
        yield tmux, archive, engine
    finally:
        tmux.kill()
        for c in engine.ps(all=True):
            engine.rm(c["Id"], force=True)
        engine.network_reset()
        os.environ.pop("NUTSHELL_RUNTIME_DIR", None)


def test_load_run_see_stop_remove_with_keys(setup):
    tmux, archive, engine = setup
    tmux.wait(lambda s: "1 Images" in s and "No images." in s and "Filter" in s, what="the app")
    time.sleep(0.5)   # the first paint comes before the app has settled its focus

    # Images: load the archive
    tmux.keys("l")
    tmux.wait_text("Load images from an archive")
    tmux.type(archive)
    tmux.keys("Enter")
    tmux.wait(lambda s: "localhost/e2e" in s and "$ nutshell load -i" in s, timeout=60, what="loaded")

    # Images: run it from the form (name, then Tab Tab Tab to the command)
    tmux.keys("/")
    tmux.type("e2e")
    tmux.keys("Enter")
    tmux.keys("r")
    tmux.wait_text("Run localhost/e2e:1")
    tmux.type("e2eweb")
    tmux.keys("Tab", "Tab", "Tab")
    tmux.type("sleep 300")
    tmux.wait_text("$ nutshell run -d --name e2eweb localhost/e2e:1 sleep 300")
    tmux.keys("Enter")
    tmux.wait(lambda s: "Run localhost/e2e:1" not in s and
              "$ nutshell run -d --name e2eweb localhost/e2e:1 sleep 300" in s, timeout=30, what="started")
    ps = {c["Names"]: c for c in engine.ps()}
    assert ps["e2eweb"]["State"] == "running"

    # Containers pane
    tmux.keys("3")
    screen = tmux.wait(lambda s: "e2eweb" in body(s) or "not available yet" in s, what="containers pane")
    if "not available yet" in screen:
        pytest.xfail("the Containers pane has not landed yet (the rest needs it)")
    tmux.wait(lambda s: "Stop" in footer(s) and "e2eweb" in body(s)
              and "running" in body(s), what="e2eweb running in Containers")

    # Stats pane
    tmux.keys("5")
    tmux.wait(lambda s: "Pause" in footer(s) and "e2eweb" in body(s) and "cpu" in body(s).lower(),
              timeout=20, what="e2eweb in Stats")

    # back to Containers: stop, then remove (confirmed)
    tmux.keys("3")
    tmux.wait(lambda s: "Stop" in footer(s) and "e2eweb" in body(s), what="Containers again")
    tmux.keys("x")
    tmux.wait(lambda s: "exited" in body(s).lower(), timeout=30, what="stopped")
    assert engine.ps(all=True)[0]["State"] == "exited"
    tmux.keys("d")
    tmux.wait(lambda s: "Remove" in s and "e2eweb" in body(s) and ("Yes" in s or "Remove?" in s
                                                                    or "y" in footer(s)),
              what="confirmation")
    tmux.keys("y")
    tmux.wait(lambda s: "e2eweb" not in body(s), timeout=20, what="removed")
    assert engine.ps(all=True) == []

    tmux.keys("q")
    deadline = time.monotonic() + 10
    while not tmux.dead() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert tmux.dead(), tmux.screen()
