"""``exec``: a new process inside a running container, started from the caller's side.

    caller ──fork──> M: not dumpable, joins the container's cgroup, opens and setns()
                        into the init's namespaces (cgroup, ipc, uts, net, pid, mnt)
                      └─fork─> G (in the container's PID namespace): new session, PTY
                               from the container's own devpts (master sent back to the
                               caller) or the caller's pipes, user, capabilities, cwd,
                               execve.  M waits for G and exits with its code.

Like the init, G reports failures over a close-on-exec SOCK_SEQPACKET socket
(``E<code> <message>``; end of file means execve worked). M is made non-dumpable before
setns so the container cannot open our interpreter through /proc/<pid>/exe
(CVE-2019-5736); every fd but the ones G needs is closed before execve (CVE-2024-21626).
"""

from __future__ import annotations

import os
import signal
import socket
from dataclasses import dataclass, field

from . import caps as _caps
from . import init as _init
from . import linux
from .launch import error_for

NAMESPACES = ("cgroup", "ipc", "uts", "net", "pid", "mnt")


@dataclass
class ExecProcess:
    """A process started by exec. ``master_fd`` (with a TTY) or the pipes are ours to use."""

    pid: int                          # our child M; its exit status is the command's
    container_id: str
    master_fd: int | None = None
    stdin_fd: int | None = None       # write end (None unless interactive, no TTY)
    stdout_fd: int | None = None
    stderr_fd: int | None = None
    exit_code: int | None = None
    _closed: list = field(default_factory=list)

    def wait(self) -> int:
        if self.exit_code is None:
            _pid, status = os.waitpid(self.pid, 0)
            self.exit_code = (128 + os.WTERMSIG(status) if os.WIFSIGNALED(status)
                              else os.WEXITSTATUS(status))
        return self.exit_code

    def poll(self) -> int | None:
        if self.exit_code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_code = (128 + os.WTERMSIG(status) if os.WIFSIGNALED(status)
                                  else os.WEXITSTATUS(status))
        return self.exit_code

    def resize(self, rows: int, cols: int) -> None:
        if self.master_fd is not None:
            import fcntl
            import struct

            fcntl.ioctl(self.master_fd, _init.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def close(self) -> None:
        for fd in (self.master_fd, self.stdin_fd, self.stdout_fd, self.stderr_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master_fd = self.stdin_fd = self.stdout_fd = self.stderr_fd = None


def exec_in(cid: str, init_pid: int, init_start: int | None, cgroup_dirs: list[str],
            args: list[str], env: list[str], user: str, cwd: str, caps_mask: int,
            tty: bool = False, interactive: bool = False, detach: bool = False,
            rows: int = 24, cols: int = 80) -> ExecProcess:
    """Start ``args`` in the container whose init is ``init_pid``. Raises the Docker-style
    error (127 not found, 126 not executable, 125 other) if it cannot start."""
    ns_fds = []
    try:
        for ns in NAMESPACES:
            ns_fds.append((ns, os.open(f"/proc/{init_pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC)))
        if linux.proc_start_time(init_pid) != init_start:
            raise error_for(125, f"container {cid[:12]} is not running")
    except OSError:
        for _ns, fd in ns_fds:
            os.close(fd)
        raise error_for(125, f"container {cid[:12]} is not running") from None
    sync_parent, sync_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours: dict[str, int] = {}
    theirs: tuple = (None, None, None)
    if not tty and not detach:
        in_r = in_w = None
        if interactive:
            in_r, in_w = os.pipe()
            ours["stdin"] = in_w
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ours["stdout"], ours["stderr"] = out_r, err_r
        theirs = (in_r, out_w, err_w)

    pid = os.fork()
    if pid == 0:
        _middle(sync_child.fileno(), [fd for _ns, fd in ns_fds], cgroup_dirs, theirs, args, env,
                user, cwd, caps_mask, tty, detach, rows, cols)
        os._exit(125)  # not reached
    for _ns, fd in ns_fds:
        os.close(fd)
    sync_child.close()
    for fd in theirs:
        if fd is not None:
            os.close(fd)
    proc = ExecProcess(pid=pid, container_id=cid, stdin_fd=ours.get("stdin"),
                       stdout_fd=ours.get("stdout"), stderr_fd=ours.get("stderr"))
    error = None
    try:
        while True:
            data, fds, _flags, _addr = socket.recv_fds(sync_parent, 8192, 4)
            if data[:1] == b"P" and fds:
                proc.master_fd = fds[0]
                for extra in fds[1:]:
                    os.close(extra)
                continue
            for fd in fds:
                os.close(fd)
            if data[:1] == b"E":
                code, _, msg = data[1:].decode("utf-8", "replace").partition(" ")
                error = (int(code) if code.isdigit() else 125, msg)
                continue
            if not data:
                break
    finally:
        sync_parent.close()
    if error is not None:
        proc.wait()
        proc.close()
        raise error_for(*error)
    if detach:
        proc.wait()
    return proc


def _middle(sync_fd, ns_fds, cgroup_dirs, stdio, args, env, user, cwd, caps_mask, tty, detach,
            rows, cols) -> None:
    code = 125
    try:
        keep = {sync_fd, *ns_fds, *(fd for fd in stdio if fd is not None)}
        _init._close_fds_except(keep)
        linux.prctl(linux.PR_SET_DUMPABLE, 0)
        for d in cgroup_dirs:
            try:
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            except OSError:
                pass  # the unified dir of a hybrid host is best effort
        for fd in ns_fds:
            linux.setns(fd, 0)
            os.close(fd)
        child = os.fork()
        if child == 0:
            _grandchild(sync_fd, stdio, args, env, user, cwd, caps_mask, tty, rows, cols)
        os.close(sync_fd)
        for fd in stdio:
            if fd is not None:
                os.close(fd)
        if detach:
            os._exit(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _pid, status = os.waitpid(child, 0)
        code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    except BaseException as e:  # noqa: BLE001
        _init._report(sync_fd, 125, str(e))
    os._exit(code)


def _grandchild(sync_fd, stdio, args, env, user, cwd, caps_mask, tty, rows, cols) -> None:
    code = 125
    try:
        os.setsid()
        uid, gid, groups, home = _init.lookup_user(user)
        env = list(env)
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={home}")
        if tty:
            slave = _exec_console(sync_fd, rows, cols)
            os.fchown(slave, uid, -1)
            for i in (0, 1, 2):
                os.dup2(slave, i)
            if slave > 2:
                os.close(slave)
        else:
            stdin, stdout, stderr = stdio
            null = None
            if stdin is None or stdout is None:
                null = os.open("/dev/null", os.O_RDWR)
            for target, fd in enumerate((stdin if stdin is not None else null,
                                         stdout if stdout is not None else null,
                                         stderr if stderr is not None else null)):
                os.dup2(fd, target)
            for fd in {*stdio, null}:
                if fd is not None and fd > 2:
                    os.close(fd)
        keep = _caps.limit_bounding(caps_mask)
        if uid != 0 or gid != 0 or groups:
            linux.prctl(linux.PR_SET_KEEPCAPS, 1)
            os.setgroups(groups)
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            linux.prctl(linux.PR_SET_KEEPCAPS, 0)
        else:
            os.setgroups([])
        _caps.set_caps(keep)
        _init._close_fds_except({sync_fd})
        try:
            os.chdir(cwd or "/")
        except OSError as e:
            raise _init.InitError(126 if e.errno == 13 else 125,
                                  f"chdir to cwd (\"{cwd}\") failed: {e.strerror.lower()}") from None
        path = _init.lookup_command(args[0], env)
        try:
            os.execve(path, args, _init._env_dict(env))
        except OSError as e:
            raise _init.exec_error(args[0], path, e) from None
    except _init.InitError as e:
        code = e.code
        _init._report(sync_fd, e.code, e.message)
    except BaseException as e:  # noqa: BLE001
        _init._report(sync_fd, 125, f"{e}")
    os._exit(code)


def _exec_console(sync_fd: int, rows: int, cols: int) -> int:
    import fcntl
    import struct

    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, _init.TIOCSPTLCK, struct.pack("i", 0))
    try:
        slave = fcntl.ioctl(master, _init.TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        n = struct.unpack("I", fcntl.ioctl(master, _init.TIOCGPTN, struct.pack("I", 0)))[0]
        slave = os.open(f"/dev/pts/{n}", os.O_RDWR | os.O_NOCTTY)
    fcntl.ioctl(slave, _init.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    sock = socket.socket(fileno=sync_fd)
    try:
        socket.send_fds(sock, [b"P"], [master])
    finally:
        sock.detach()
    os.close(master)
    fcntl.ioctl(slave, _init.TIOCSCTTY, 0)
    return slave
