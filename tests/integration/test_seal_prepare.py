"""seal.prepare: the sealed interpreter started ahead of the request (the CLI does it as
``run`` and ``start`` begin), and seal.spawn's socket hand-over of the request and fds.
That a container never sees the host's interpreter through a prepared one is
test_security_exe.py's attack, which goes through the CLI's `run`, hence prepare."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time

import pytest

from core.runtime.start import seal

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = "tests.sealed_echo"


def _spawn_and_read(tmp_path, payload) -> dict:
    r, w = os.pipe()
    extra_r, extra_w = os.pipe()
    log = str(tmp_path / f"child-{payload['n']}.log")
    fds = [w, extra_r]
    numbers = seal.child_fd_numbers(fds)
    request = {"fds": {"out": numbers[0], "extra": numbers[1]}, "payload": payload}
    pid = seal.spawn(MODULE, request, fds, stderr_path=log)
    os.close(w)
    os.close(extra_r)
    data = seal.read_to_end(r)
    os.close(r)
    os.close(extra_w)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    got = ast.literal_eval(data.decode())
    assert got["fds"] == {"out": numbers[0], "extra": numbers[1]}
    assert got["payload"] == payload
    assert got["inheritable"] == {"out": False, "extra": False}   # close-on-exec again
    assert open(log).read() == "to the log\n"
    assert got["stderr"] == list(os.stat(log)[1:3])
    return got


def test_spawn_hands_over_request_fds_and_log(tmp_path):
    """Without prepare: a large request (several socket buffers) arrives whole, the fds
    at the numbers the caller gave, standard error on the log."""
    got = _spawn_and_read(tmp_path, {"blob": b"x" * (3 << 20), "n": 7})
    assert 0 in got["open"] and 2 in got["open"]


def test_prepared_interpreter_is_the_one_spawn_uses(tmp_path):
    seal.prepare(MODULE)
    pid, _sock = seal._prepared[MODULE]
    got = _spawn_and_read(tmp_path, {"n": 1})
    assert got["pid"] == pid
    assert MODULE not in seal._prepared          # used once
    got2 = _spawn_and_read(tmp_path, {"n": 2})  # the next one starts afresh
    assert got2["pid"] != pid


def test_a_prepared_interpreter_that_died_is_replaced(tmp_path):
    seal.prepare(MODULE)
    pid, _sock = seal._prepared[MODULE]
    os.kill(pid, 9)
    time.sleep(0.05)
    got = _spawn_and_read(tmp_path, {"n": 3})
    assert got["pid"] != pid
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)              # reaped by spawn


def test_an_unused_prepared_interpreter_exits_with_its_caller():
    """A `run` that fails before starting anything leaves no interpreter behind."""
    code = ("import os, sys; sys.path.insert(0, %r)\n"
            "from core.runtime.start import seal\n"
            "seal.prepare(%r)\n"
            "print(seal._prepared[%r][0], flush=True)\n" % (REPO, MODULE, MODULE))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=30)
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[1].startswith("Z"):
                    break                        # exited, waiting for its reaper
        except OSError:
            break
        time.sleep(0.02)
    assert not os.path.exists(f"/proc/{pid}/exe") or \
        open(f"/proc/{pid}/stat").read().split(") ")[1].startswith("Z")


def test_a_start_that_cannot_make_its_pid_namespace_says_why(tmp_path):
    """boot.py forks the init before the request comes; when it cannot (no PID namespace
    allowed), the caller still gets the reason on the ready pipe its request brings, not
    a bare "the shim exited without a report"."""
    ready_r, ready_w = os.pipe()
    numbers = seal.child_fd_numbers([ready_w])
    pid = seal.spawn("tests.boot_unshare_fails", {"spec": {}, "fds": {"ready": numbers[0]}},
                     [ready_w], stderr_path=str(tmp_path / "log"))
    os.close(ready_w)
    os.waitpid(pid, 0)
    line = seal.read_to_end(ready_r).decode()
    os.close(ready_r)
    assert line.startswith("fail 125 starting the container: "), line
    assert "unshare: No space left on device" in line
