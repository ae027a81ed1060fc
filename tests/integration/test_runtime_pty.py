"""`run -it` and `exec -it` through a real pseudo-terminal (pexpect).

Type a command and read its output, resize and see the container's view change, detach
with ctrl-p ctrl-q (the container keeps running), attach again, exit with a code.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

pexpect = pytest.importorskip("pexpect")

from tests.runtime_root import IMAGE, leftovers  # noqa: E402

pytestmark = pytest.mark.integration

PROMPT = "/ # "


def spawn(rt, *args, rows=30, cols=100):
    child = pexpect.spawn(sys.executable, ["-m", "workbench", "--root", rt.root, *args],
                          dimensions=(rows, cols), timeout=15, env=dict(os.environ, TERM="xterm"))
    return child


def command(child, line: str, expect: str) -> None:
    """Type a line at the shell prompt and wait for ``expect`` and the next prompt.

    busybox ash asks the terminal for the cursor position after each prompt, so we wait
    for the prompt before typing: typeahead sent while it waits for the answer is lost.
    """
    child.sendline(line)
    child.expect(expect)
    child.expect_exact(PROMPT)


def test_run_it_resize_detach_attach_exit(rt):
    child = spawn(rt, "run", "-it", "--name", "term", "--network", "none", IMAGE, "sh")
    try:
        child.expect_exact(PROMPT)
        command(child, "echo $((6*7)) $(tty)", r"42 /dev/pts/0")
        command(child, "stty size", r"30 100")
        child.setwinsize(40, 132)  # SIGWINCH -> resize packet -> TIOCSWINSZ in the shim
        time.sleep(0.3)
        command(child, "stty size", r"40 132")
        # ctrl-c goes to the container (the shell survives, the sleep does not)
        child.sendline("sleep 30")
        time.sleep(0.5)
        child.sendcontrol("c")
        child.expect_exact(PROMPT)
        command(child, "echo alive", "alive")
        child.send("\x10\x11")  # ctrl-p ctrl-q
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert rt.inspect("term")["State"]["Running"] is True

    child = spawn(rt, "attach", "term", rows=25, cols=90)
    try:
        time.sleep(0.5)
        child.sendline("")
        child.expect_exact(PROMPT)
        command(child, "stty size", r"25 90")  # attach sends its own size
        child.sendline("exit 5")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 5
    st = rt.inspect("term")["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 5
    logs = rt.cli("logs", "term").stdout
    assert "42 /dev/pts/0" in logs
    cid = rt.engine.container("term")
    rt.cli("rm", "term", check=True)
    assert leftovers(rt, cid) == []


def test_exec_it(rt):
    rt.run("-d", "--name", "ex-tty", IMAGE, "sleep", "60", check=True)
    child = spawn(rt, "exec", "-it", "ex-tty", "sh", rows=20, cols=70)
    try:
        child.expect_exact(PROMPT)
        command(child, "stty size; tty", r"20 70\r\n/dev/pts/\d")
        child.setwinsize(22, 77)
        time.sleep(0.3)
        command(child, "stty size", r"22 77")
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 3
    rt.engine.rm("ex-tty", force=True)


def test_run_t_without_i_and_not_a_tty_error(rt):
    # -t without -i: output through the PTY, stdin not forwarded, exit code kept
    child = spawn(rt, "run", "--rm", "-t", "--network", "none", IMAGE, "sh", "-c",
                  "tty; exit 2")
    child.expect(r"/dev/pts/0")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    # -it with stdin not a terminal: one line, Docker's message
    p = rt.run("--rm", "-it", IMAGE, "true", input="")
    assert p.returncode == 1 and p.stderr.strip() == "nutshell: the input device is not a TTY"
