"""Terminal backends: a host command under a PTY, a bare PTY master fd, a shim attach socket."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import time

import pytest

from tests.tui.fakes import FakeEngine
from workbench.terminal.backend import AttachBackend, ExecBackend, FdBackend, PtyBackend, TerminalBackend


def _read(backend, predicate, timeout: float) -> tuple[bytes, bool]:
    """What the backend gives until ``predicate(out)``, end of file or ``timeout``; and
    whether it was end of file."""
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        select.select([backend.fileno()], [], [], 0.05)
        try:
            out += backend.read_available()
        except EOFError:
            return out, True
        if predicate(out):
            break
    return out, False


def read_until(backend, predicate, timeout: float = 5.0) -> bytes:
    return _read(backend, predicate, timeout)[0]


def read_to_eof(backend, timeout: float = 5.0) -> bytes:
    out, eof = _read(backend, lambda _: False, timeout)
    if not eof:
        raise AssertionError(f"no EOF; got {out!r}")
    return out


def test_pty_backend_runs_a_command_and_reports_its_exit_code():
    b = PtyBackend(["/bin/sh", "-c", "printf 'hello\\n'; exit 3"], rows=10, cols=40)
    assert isinstance(b, TerminalBackend)
    assert b.title == "sh"
    out = read_to_eof(b)
    assert b"hello\r\n" in out  # through the PTY's line discipline (onlcr)
    assert b.wait(5) == 3
    b.close()


def test_pty_backend_size_is_set_before_exec_and_follows_resize():
    b = PtyBackend(["/bin/sh", "-c", "stty size; read x; stty size"], rows=17, cols=53)
    assert b"17 53" in read_until(b, lambda o: b"17 53" in o)
    b.resize(30, 100)
    b.write(b"\r")
    assert b"30 100" in read_until(b, lambda o: b"30 100" in o)
    read_to_eof(b)
    b.close()


def test_pty_backend_environment_declares_xterm():
    b = PtyBackend(["/bin/sh", "-c", 'echo "$TERM $COLORTERM ${LINES-unset}"'])
    assert b"xterm-256color truecolor unset" in read_to_eof(b)
    b.close()


def test_pty_backend_close_hangs_up_the_program():
    b = PtyBackend(["/bin/sleep", "60"])
    pid = b.pid
    b.close()
    end = time.monotonic() + 5
    while b.exit_code is None and time.monotonic() < end:
        time.sleep(0.02)
    assert b.exit_code == 128 + signal.SIGHUP
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_pty_backend_ctrl_c_reaches_the_foreground_program():
    b = PtyBackend(["/bin/sh", "-c", "trap 'echo got-int; exit 7' INT; echo ready; while :; do sleep 0.05; done"])
    read_until(b, lambda o: b"ready" in o)
    b.write(b"\x03")
    assert b"got-int" in read_to_eof(b)
    assert b.wait(5) == 7
    b.close()


def test_pty_backend_starts_the_command_with_every_signal_at_its_default():
    """As a terminal emulator does: what this process ignores or blocks is not passed on.
    Python ignores SIGPIPE (``yes | head -1`` printed "Broken pipe"), and an app started
    with SIGINT ignored (a background job) gave its shells a Ctrl-C that did nothing."""
    script = ("grep -E 'Sig(Ign|Blk)' /proc/self/status; yes | head -1; "
              "trap 'echo got-int; exit 7' INT; echo ready; while :; do sleep 0.05; done")
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # the interpreter's own
        b = PtyBackend(["/bin/sh", "-c", script])
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        signal.signal(signal.SIGINT, old_int)
    out = read_until(b, lambda o: b"ready" in o)
    assert b"SigIgn:\t0000000000000000" in out, out
    assert b"SigBlk:\t0000000000000000" in out, out
    assert b"y\r\n" in out and b"Broken pipe" not in out, out
    b.write(b"\x03")
    assert b"got-int" in read_to_eof(b)
    assert b.wait(5) == 7
    b.close()


def test_missing_command_raises():
    with pytest.raises(FileNotFoundError):
        PtyBackend(["/nonexistent/program"])


def test_fd_backend_on_a_bare_pty_pair():
    master, slave = os.openpty()
    b = FdBackend(master, title="raw")
    os.write(slave, b"from the slave")
    assert read_until(b, lambda o: b"slave" in o) == b"from the slave"
    b.write(b"to the slave\n")
    assert os.read(slave, 100).startswith(b"to the slave")
    b.resize(12, 34)
    import fcntl
    import struct
    import termios

    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8))
    assert (rows, cols) == (12, 34)
    os.close(slave)
    with pytest.raises(EOFError):
        read_to_eof(b) and b.read_available()
    b.close()


class FakeExec:
    """The shape of core.runtime.start.exec.ExecProcess: a helper pid, the PTY master, poll()."""

    def __init__(self, argv):
        import pty

        pid, fd = pty.fork()
        if pid == 0:  # never return into pytest from the child
            try:
                os.execv(argv[0], argv)
            finally:
                os._exit(127)
        self.pid, self.master_fd, self.exit_code = pid, fd, None

    def poll(self):
        if self.exit_code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        return self.exit_code


def test_exec_backend_close_ends_the_exec():
    proc = FakeExec(["/bin/sh", "-c", "echo ready; exec sleep 60"])
    b = ExecBackend(proc, title="exec")
    assert proc.master_fd is None  # the backend owns the master now
    read_until(b, lambda o: b"ready" in o)
    assert b.exit_code is None
    b.close()
    end = time.monotonic() + 5
    while b.exit_code is None and time.monotonic() < end:
        time.sleep(0.02)
    assert b.exit_code == 128 + signal.SIGHUP


def _attach_client(sock):
    from core.runtime.attach import AttachClient

    return AttachClient(sock)


def test_attach_backend_over_the_shim_protocol():
    pytest.importorskip("core.runtime.attach")
    shim, client_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    shim.send(b"\x04" + json.dumps({"tty": True, "stdin": True, "rows": 24, "cols": 80}).encode())
    b = AttachBackend(_attach_client(client_sock), title="c1")
    assert b.hello["tty"] is True
    assert b.read_available() == b""  # nothing yet, and no blocking
    shim.send(b"\x01hello ")
    shim.send(b"\x01world")
    assert read_until(b, lambda o: o.endswith(b"world")) == b"hello world"
    b.write(b"ls\r")
    assert shim.recv(100) == b"\x00ls\r"
    b.resize(40, 120)
    assert shim.recv(100) == b"\x0540 120"
    shim.send(b"\x01bye")
    shim.send(b"\x030")
    shim.close()
    assert read_to_eof(b) == b"bye"
    assert b.exit_code == 0
    b.close()


def test_attach_backend_close_detaches_only():
    pytest.importorskip("core.runtime.attach")
    shim, client_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    shim.send(b"\x04" + json.dumps({"tty": True, "stdin": True, "rows": 24, "cols": 80}).encode())
    b = AttachBackend(_attach_client(client_sock))
    b.close()
    # The shim sees its client go away (end of file), nothing else: no signal, no stdin close.
    assert shim.recv(100) == b""
    assert b.exit_code is None


class ShellEngine(FakeEngine):
    """The app's FakeEngine whose Engine.exec behaves as the runtime's: it raises
    CommandNotFound (127) for a program the container lacks, else starts a real shell."""

    def __init__(self, present: set[str]):
        super().__init__()
        self.present = present
        self.execs: list[tuple[list[str], dict]] = []

    def exec(self, ref, cmd, **kw):
        from core.errors import CommandNotFound

        self.execs.append((list(cmd), kw))
        if cmd[0] not in self.present:
            raise CommandNotFound(f"{cmd[0]}: not found")
        return FakeExec(["/bin/sh", "-c", "echo shell-here; exec sleep 60"])


def test_exec_factory_probes_bash_then_ash_then_sh_at_the_pane_size():
    from workbench.terminal.backend import exec_backend_factory

    engine = ShellEngine({"/bin/ash"})
    backend = exec_backend_factory(engine, "web")(33, 120)
    assert [argv for argv, _ in engine.execs] == [["/bin/bash"], ["/bin/ash"]]
    assert engine.execs[-1][1] == {"tty": True, "interactive": True, "rows": 33, "cols": 120}
    assert b"shell-here" in read_until(backend, lambda o: b"shell-here" in o)
    assert backend.title == "web: ash"
    backend.close()


def test_exec_factory_with_a_command_does_not_probe():
    from core.errors import NutshellError
    from workbench.terminal.backend import exec_backend_factory

    engine = ShellEngine(set())
    with pytest.raises(NutshellError):
        exec_backend_factory(engine, "web", ["top"])(24, 80)
    assert [argv for argv, _ in engine.execs] == [["top"]]
