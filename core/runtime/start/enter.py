"""``exec``'s processes inside the container, started from the sealed interpreter (seal.py).

    caller ──posix_spawn──> M (this module): not dumpable; opens the container's cgroups
                            and namespaces, checks the init is still the one recorded,
                            setns() into cgroup, ipc, uts, net, pid and mnt
                             └─fork─> G (in the container's PID namespace): joins the
                                      container's cgroups (through the fds M opened),
                                      then process.become(): session, console or stdio,
                                      capabilities, seccomp, user, cwd, execve.
                            M waits for G and exits with its code (exec -d: at once).

M stays outside the container's cgroup (its interpreter's memory is not the
container's to pay for); G joins before it runs anything of the container's. A cgroup
that cannot be joined fails the exec: it never runs unlimited beside the container.

The request arrives marshalled on fd 0: an ``ExecSpec`` (initspec.py) and the fds
exec.py passed; G reports failures
over the sync socket (``E<code> <message>``; end of file means execve worked), and so
does M before G exists.
"""

from __future__ import annotations

import os

from .initspec import ExecSpec

NAMESPACES = ("cgroup", "ipc", "uts", "net", "pid", "mnt")


def main() -> None:
    from .seal import read_request

    req = read_request()
    sync_fd = req["fds"]["sync"]
    try:
        code = _enter(ExecSpec.from_wire(req["spec"]), sync_fd, tuple(req["fds"]["stdio"]))
    except BaseException as e:  # noqa: BLE001 - reported to the caller
        from .process import InitError, report

        if isinstance(e, InitError):
            report(sync_fd, e.code, e.message)
        else:
            report(sync_fd, 125, str(e) or type(e).__name__)
        code = 125
    os._exit(code)


def _enter(spec: ExecSpec, sync_fd: int, stdio: tuple) -> int:
    import _signal

    from .. import linux
    from . import process
    from .process import InitError

    process.close_fds_except({sync_fd, *(fd for fd in stdio if fd is not None)})
    linux.prctl(linux.PR_SET_DUMPABLE, 0)
    cid, pid = spec.cid, spec.init_pid

    ns_fds = []
    for ns in NAMESPACES:
        try:
            ns_fds.append(os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC))
        except OSError:
            raise InitError(125, f"container {cid[:12]} is not running") from None
    if linux.proc_start_time(pid) != spec.init_start:  # the pid was reused
        raise InitError(125, f"container {cid[:12]} is not running")
    cgroup_fds = []
    for d in spec.cgroups_required or []:
        try:
            cgroup_fds.append(os.open(os.path.join(d, "cgroup.procs"),
                                      os.O_WRONLY | os.O_CLOEXEC))
        except OSError as e:
            raise InitError(125, f"joining cgroup {d}: {e.strerror}") from None
    for d in spec.cgroups_optional or []:  # a hybrid host's unified dir: best effort
        try:
            cgroup_fds.append(-1 - os.open(os.path.join(d, "cgroup.procs"),
                                           os.O_WRONLY | os.O_CLOEXEC))
        except OSError:
            pass
    process.preload(spec)
    for fd in ns_fds:
        linux.setns(fd, 0)
        os.close(fd)

    child = os.fork()
    if child == 0:
        code = 125
        try:
            _join_cgroups(cgroup_fds)
            process.become(spec, sync_fd, stdio, console_bind=False)
        except InitError as e:
            code = e.code
            process.report(sync_fd, e.code, e.message)
        except BaseException as e:  # noqa: BLE001
            process.report(sync_fd, 125, str(e) or type(e).__name__)
        os._exit(code)
    os.close(sync_fd)
    for fd in stdio:
        if fd is not None:
            os.close(fd)
    for fd in cgroup_fds:
        os.close(fd if fd >= 0 else -1 - fd)
    if spec.detach:
        return 0
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    _pid, status = os.waitpid(child, 0)
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _join_cgroups(fds: list[int]) -> None:
    """Write ourselves into each cgroup.procs M opened (before it entered the mount
    namespace, where the host's cgroup paths are not visible). Negative: optional."""
    from .process import InitError

    for fd in fds:
        optional = fd < 0
        real = -1 - fd if optional else fd
        try:
            os.write(real, b"0")
        except OSError as e:
            if not optional:
                raise InitError(125, f"joining the container's cgroup: {e.strerror}") from None
        finally:
            os.close(real)
