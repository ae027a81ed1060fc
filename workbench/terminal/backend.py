"""Where a terminal's bytes come from and where its keys go.

The widget talks to a *backend* (see docs/terminal.md and attach-protocol.md); anything with these
members works:

    fileno() -> int                 readable when output is waiting (for loop.add_reader)
    read_available() -> bytes       non-blocking; b"" if nothing; raises EOFError at the end
    write(data: bytes) -> None      keys, pastes and the emulator's replies
    resize(rows: int, cols: int)    the pane changed size
    close() -> None                 the pane is closing: detach an attach, end an exec or command
    exit_code -> int | None         once the process has ended (128+N for a signal)
    title -> str                    a default title for the tab

Optionally ``pending_write`` (bool) and ``flush()``: a backend that could not write everything
without blocking keeps the rest and the widget calls flush() when the fd is writable.

Three backends live here:

- PtyBackend: a host command under a new PTY (ptyprocess). The window size is set before exec.
- FdBackend: any PTY master fd someone else made, e.g. ``exec -t`` handing over its master.
- AttachBackend: a container's shim attach socket through ``core.runtime.attach.AttachClient``.
  Closing it detaches; the container keeps running.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import struct
import termios
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "TerminalBackend",
    "PtyBackend",
    "FdBackend",
    "ExecBackend",
    "AttachBackend",
    "terminal_env",
    "READ_LIMIT",
]

READ_LIMIT = 256 * 1024  # bytes read per read_available() call: the rest waits for the next one
READ_TIME = 0.003  # seconds of reading per call (a PTY gives ~4 KiB per read)
_CHUNK = 65536


@runtime_checkable
class TerminalBackend(Protocol):
    def fileno(self) -> int: ...

    def read_available(self) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    def resize(self, rows: int, cols: int) -> None: ...

    def close(self) -> None: ...

    @property
    def exit_code(self) -> int | None: ...

    @property
    def title(self) -> str: ...


def terminal_env(base: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a program in our terminal: what we emulate is an xterm with 256
    colours and truecolour. LINES/COLUMNS are dropped: they would override the PTY's size."""
    env = dict(os.environ if base is None else base)
    env.pop("LINES", None)
    env.pop("COLUMNS", None)
    env["TERM"] = "xterm-256color"
    env["COLORTERM"] = "truecolor"
    if extra:
        env.update(extra)
    return env


def _status_to_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _reap_later(pid: int, on_status: Callable[[int], None], grace: float = 2.0, hangup: bool = True) -> None:
    """Wait for pid in a daemon thread: SIGHUP its process group now (pid leads its own session,
    as ptyprocess' children do) and SIGKILL it after grace seconds, so nothing is left a zombie."""

    def run() -> None:
        deadline = time.monotonic() + grace
        killed = False
        delay = 0.005
        while True:
            try:
                got, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return
            if got:
                on_status(status)
                return
            if not killed and time.monotonic() > deadline:
                for send in ((os.killpg, os.kill) if hangup else (os.kill,)):
                    try:
                        send(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                killed = True
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    if hangup:
        for send in (os.killpg, os.kill):
            try:
                send(pid, signal.SIGHUP)
            except (ProcessLookupError, PermissionError):
                pass
    threading.Thread(target=run, name=f"reap-{pid}", daemon=True).start()


class _FdIO:
    """Non-blocking reads and buffered writes on a PTY master fd; its title and size."""

    _title = ""

    @property
    def title(self) -> str:
        return self._title

    def resize(self, rows: int, cols: int) -> None:
        if self._fd >= 0:
            try:
                _set_winsize(self._fd, max(1, rows), max(1, cols))  # the kernel sends SIGWINCH
            except OSError:
                pass

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._out = bytearray()
        self._eof = False
        os.set_blocking(fd, False)

    def fileno(self) -> int:
        return self._fd

    def read_available(self, limit: int = READ_LIMIT) -> bytes:
        if self._eof or self._fd < 0:
            raise EOFError
        chunks: list[bytes] = []
        total = 0
        deadline = time.monotonic() + READ_TIME
        while total < limit and (not chunks or time.monotonic() < deadline):
            try:
                chunk = os.read(self._fd, _CHUNK)
            except BlockingIOError:
                break
            except OSError as error:
                # EIO: the slave side is closed (the program and everything holding it ended).
                if error.errno not in (errno.EIO, errno.EBADF):
                    raise
                self._eof = True
                break
            if not chunk:
                self._eof = True
                break
            chunks.append(chunk)
            total += len(chunk)
        if chunks:
            return b"".join(chunks)
        if self._eof:
            raise EOFError
        return b""

    @property
    def pending_write(self) -> bool:
        return bool(self._out)

    def write(self, data: bytes) -> None:
        if self._fd < 0 or self._eof:
            return
        self._out += data
        self.flush()

    def flush(self) -> None:
        while self._out and self._fd >= 0:
            try:
                written = os.write(self._fd, self._out)
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno in (errno.EIO, errno.EBADF):
                    self._out.clear()
                    return
                raise
            del self._out[:written]

    def _close_fd(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1


def default_signals() -> None:
    """In a host command's child, before exec: every signal back to its default and none
    blocked, as a terminal emulator starts its shell (tmux, xterm). execve keeps what is
    ignored, and Python ignores SIGPIPE and SIGXFSZ: ``yes | head -1`` in a host shell
    printed "Broken pipe"; an app started with SIGINT ignored (a background job, some
    process managers) gave its shells a Ctrl-C that did nothing."""
    for n in range(1, signal.NSIG):
        if n in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(n, signal.SIG_DFL)
        except (OSError, ValueError):
            pass    # the C library's own (32, 33): a handler, which execve resets anyway
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


class PtyBackend(_FdIO):
    """A host command under a new PTY; closing hangs it up (SIGHUP, SIGKILL after 2 s)."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        rows: int = 24,
        cols: int = 80,
        title: str | None = None,
    ) -> None:
        from ptyprocess import PtyProcess

        argv = list(argv)
        if not argv:
            raise ValueError("PtyBackend needs a command")
        self._argv = argv
        self._title = title if title is not None else os.path.basename(argv[0])
        self._status: int | None = None
        self._lock = threading.Lock()
        # ptyprocess forks, sets the window size in the child before exec and reports exec errors.
        self._proc = PtyProcess.spawn(argv, env=dict(env) if env is not None else terminal_env(), cwd=cwd,
                                      dimensions=(max(1, rows), max(1, cols)),
                                      preexec_fn=default_signals)
        self.pid: int = self._proc.pid
        super().__init__(self._proc.fd)

    def _record(self, status: int) -> None:
        with self._lock:
            if self._status is None:
                self._status = status

    @property
    def exit_code(self) -> int | None:
        if self._status is None and not getattr(self, "_reaping", False):
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid:
                self._record(status)
        return None if self._status is None else _status_to_code(self._status)

    def close(self) -> None:
        """Hang up: closing the master sends SIGHUP to the program's session; a reaper thread
        waits for it (SIGKILL after a grace period) so nothing is left as a zombie."""
        if self._fd < 0:
            return
        self._proc.closed = True  # ptyprocess' own close() sleeps; we never call it
        try:
            self._proc.fileobj.close()
        except OSError:
            pass
        self._fd = -1
        if self.exit_code is None:
            self._reaping = True
            _reap_later(self.pid, self._record)

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the program ends (for tests and scripts, never the UI)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.exit_code is None and self._status is None:
            if deadline is not None and time.monotonic() > deadline:
                return None
            time.sleep(0.01)
        return None if self._status is None else _status_to_code(self._status)


class FdBackend(_FdIO):
    """A PTY master fd made elsewhere (``exec -t`` hands one over).

    pid, if given, is waited for to report the exit code and hung up on close; exit_status, if
    given, is asked instead (it returns the exit code or None while running)."""

    def __init__(
        self,
        fd: int,
        *,
        pid: int | None = None,
        exit_status: Callable[[], int | None] | None = None,
        on_close: Callable[[], None] | None = None,
        title: str = "",
    ) -> None:
        super().__init__(fd)
        self.pid = pid
        self._exit_status = exit_status
        self._on_close = on_close
        self._title = title
        self._status: int | None = None
        self._reaping = False

    def _record(self, status: int) -> None:
        self._status = status

    @property
    def exit_code(self) -> int | None:
        if self._exit_status is not None:
            return self._exit_status()
        if self._status is None and self.pid is not None and not self._reaping:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid:
                self._status = status
        return None if self._status is None else _status_to_code(self._status)

    def close(self) -> None:
        if self._fd < 0:
            return
        self._close_fd()  # hang-up: the session on the slave side gets SIGHUP
        if self._on_close is not None:
            self._on_close()
        if self.pid is not None and self._exit_status is None and self.exit_code is None:
            self._reaping = True
            _reap_later(self.pid, self._record)


class ExecBackend(FdBackend):
    """``exec -t`` in a container: wraps the runtime's exec process (``master_fd``, ``pid``,
    ``poll()``; see core/runtime/start/exec.py ExecProcess). Closing hangs up the PTY, which ends the
    exec'd program (SIGHUP to its session); our helper child is reaped in the background."""

    def __init__(self, proc: Any, title: str = "") -> None:
        if getattr(proc, "master_fd", None) is None:
            raise ValueError("exec without a TTY has no PTY master to show")
        self._proc = proc
        super().__init__(proc.master_fd, title=title, exit_status=proc.poll)
        proc.master_fd = None  # ours now: closing it is the hang-up

    def close(self) -> None:
        if self._fd < 0:
            return
        self._close_fd()
        if self._proc.poll() is None and getattr(self._proc, "pid", None):
            self._exit_status = lambda: self._reaped

            def record(status: int) -> None:
                self._reaped = _status_to_code(status)

            self._reaped: int | None = None
            # The helper (pid) is in our process group: signal only it, and only if it lingers.
            _reap_later(self._proc.pid, record, hangup=False)


class AttachBackend:
    """A container's console through its shim's attach socket (core.runtime.attach.AttachClient).

    Packets from the shim: 0x01/0x02 output, 0x03 exit code, 0x04 hello; to the shim: 0x00 stdin,
    0x05 resize (the client object does the framing). close() detaches: the socket is closed and
    the container keeps running. Output produced while detached is in the container's log."""

    def __init__(self, client: Any, title: str = "") -> None:
        self._client = client
        self._poll = select.poll()
        self._poll.register(client.fileno(), select.POLLIN)
        self._eof = False
        self._closed = False
        self._exit: int | None = None
        self._title = title
        self.hello: dict = dict(getattr(client, "hello", None) or {})

    def fileno(self) -> int:
        return self._client.fileno()

    @property
    def title(self) -> str:
        return self._title

    @property
    def exit_code(self) -> int | None:
        return self._exit

    def read_available(self, limit: int = READ_LIMIT) -> bytes:
        if self._eof or self._closed:
            raise EOFError
        out: list[bytes] = []
        total = 0
        deadline = time.monotonic() + READ_TIME
        while total < limit and (not out or time.monotonic() < deadline):
            # AttachClient keeps packets that arrived before the hello in memory: read those
            # without asking the socket; otherwise read only what will not block.
            if not getattr(self._client, "_pending", None) and not self._poll.poll(0):
                break
            try:
                packet = self._client.read()
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                packet = None
            if packet is None:
                self._eof = True
                break
            stream, data = packet
            if stream in (1, 2):
                out.append(bytes(data))
                total += len(data)
            elif stream == 3:
                try:
                    self._exit = int(bytes(data).decode() or "-1")
                except ValueError:
                    self._exit = -1
                self._eof = True
                break
            elif stream == 4 and isinstance(data, dict):
                self.hello = data
        if out:
            return b"".join(out)
        if self._eof:
            raise EOFError
        return b""

    def write(self, data: bytes) -> None:
        if self._closed or self._eof:
            return
        try:
            for start in range(0, len(data), 32 * 1024 - 1):  # max payload 32 KiB per packet
                self._client.write(data[start : start + 32 * 1024 - 1])
        except OSError:
            self._eof = True

    def resize(self, rows: int, cols: int) -> None:
        if self._closed or self._eof:
            return
        try:
            self._client.resize(max(1, rows), max(1, cols))
        except OSError:
            pass

    def close(self) -> None:
        """Detach (the container keeps running)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._poll.unregister(self._client.fileno())
        except (KeyError, ValueError, OSError):
            pass
        try:
            self._client.close()
        except OSError:
            pass


# ---- helpers for the workbench: terminals onto containers through the Engine --------------------

DEFAULT_SHELLS = ("/bin/bash", "/bin/ash", "/bin/sh")


def attach_backend(engine: Any, ref: str) -> AttachBackend:
    """A backend attached to a running container's console (closing it detaches)."""
    return AttachBackend(engine.attach_client(ref), title=ref)


def exec_backend_factory(
    engine: Any,
    ref: str,
    command: Sequence[str] | None = None,
    shells: Sequence[str] = DEFAULT_SHELLS,
    **exec_options: Any,
) -> Callable[[int, int], ExecBackend]:
    """A backend factory for ``Terminal(backend_factory=...)``: ``exec -it`` of command in the
    container, started at the pane's size. Without a command, the first shell of shells that
    exists is used (bash, then ash, then sh), as k9s users keep asking for."""

    def start(rows: int, cols: int) -> ExecBackend:
        from core.errors import NutshellError

        candidates = [list(command)] if command else [[shell] for shell in shells]
        last: Exception | None = None
        for argv in candidates:
            try:
                proc = engine.exec(ref, argv, tty=True, interactive=True, rows=rows, cols=cols, **exec_options)
            except NutshellError as error:
                if getattr(error, "exit_code", 125) in (126, 127) and not command:
                    last = error
                    continue  # no such shell here: try the next one
                raise
            return ExecBackend(proc, title=f"{ref}: {os.path.basename(argv[0])}")
        assert last is not None
        raise last

    return start
