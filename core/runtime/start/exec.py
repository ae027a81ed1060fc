"""``exec``: a new process inside a running container, the caller's side (enter.py has
the processes that enter the container).

    caller ──posix_spawn──> M: the sealed interpreter (seal.py) running enter.py: joins
                             the container's namespaces, forks G, which joins its cgroup
                             and becomes the process (process.py); M waits for G.

No Python code runs in a fork of the caller (callers with threads, the app, are safe),
and the process that calls execve in the container is a child of a sealed interpreter:
its /proc/self/exe is never the host's binary (CVE-2019-5736). G reports failures over a
close-on-exec SOCK_SEQPACKET socket (``E<code> <message>``; end of file means execve
worked); with a TTY it first sends the PTY master (``P`` + SCM_RIGHTS), allocated from
the container's own devpts.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from .initspec import ExecSpec
from .launch import error_for


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
            from .console import set_size

            set_size(self.master_fd, rows, cols)

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
            rows: int = 24, cols: int = 80, *, cgroups_optional: list[str] | None = None,
            no_new_privs: bool = False, seccomp: tuple[bytes, dict] | None = None) -> ExecProcess:
    """Start ``args`` in the container whose init is ``init_pid``, in its cgroups
    ``cgroup_dirs`` (``cgroups_optional``: joined if possible). Raises the Docker-style
    error (127 not found, 126 not executable, 125 other) if it cannot start."""
    from . import seal

    sync_parent, sync_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours: dict[str, int] = {}
    theirs: list = [None, None, None]
    if not tty and not detach:
        if interactive:
            theirs[0], ours["stdin"] = os.pipe()
        ours["stdout"], theirs[1] = os.pipe()
        ours["stderr"], theirs[2] = os.pipe()
    passed = [sync_child.fileno()] + [fd for fd in theirs if fd is not None]
    numbers = iter(seal.child_fd_numbers(passed))
    sync_number = next(numbers)
    spec = ExecSpec(args=list(args), env=list(env), user=user, cwd=cwd or "/", caps=caps_mask,
                    tty=tty, rows=rows, cols=cols, no_new_privs=no_new_privs,
                    seccomp=seccomp, cid=cid, init_pid=init_pid, init_start=init_start,
                    cgroups_required=list(cgroup_dirs),
                    cgroups_optional=list(cgroups_optional or []), detach=detach)
    request = {"spec": spec.to_wire(),
               "fds": {"sync": sync_number,
                       "stdio": [next(numbers) if fd is not None else None for fd in theirs]}}
    try:
        pid = seal.spawn("core.runtime.start.enter", request, passed)
    except BaseException:
        sync_parent.close()
        for fd in list(ours.values()):
            os.close(fd)
        raise
    finally:
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
