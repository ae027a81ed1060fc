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
    import gc

    gc.disable()    # a short life that ends in execve: nothing to collect before it
    from ..cgmove import prime_in_child, prime_until_readable, reap

    primer = prime_in_child()   # the first, slow, cgroup move, while we import (cgmove.py)
    # loaded before the request is read: seal.prepare may start us ahead of it
    import _signal  # noqa: F401

    from .. import linux  # noqa: F401
    from ..seccomp import load  # noqa: F401
    from . import process  # noqa: F401
    from .seal import read_request

    prime_until_readable(0)     # G's cgroup join then waits no grace period (cgmove.py)
    req = read_request()
    reap(primer)
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

    process.shut_out({sync_fd, *(fd for fd in stdio if fd is not None)})
    cid, pid = spec.cid, spec.init_pid

    ns_fds = []
    for ns in NAMESPACES:
        try:
            ns_fds.append(os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC))
        except OSError:
            raise InitError(125, f"container {cid[:12]} is not running") from None
    if linux.proc_start_time(pid) != spec.init_start:  # the pid was reused
        raise InitError(125, f"container {cid[:12]} is not running")
    # opened here, joined by G: the host's cgroup paths are not visible in the container
    cgroups = process.open_cgroups(spec.cgroups_required or [], spec.cgroups_optional or [])
    process.preload(spec)
    for fd in ns_fds:
        linux.setns(fd, 0)
        os.close(fd)

    child = os.fork()
    if child == 0:
        code = 125
        try:
            process.join_cgroups(cgroups)
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
    process.close_cgroups(cgroups)
    if spec.detach:
        return 0
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    _pid, status = os.waitpid(child, 0)
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

