"""Starting a container: the caller's side of the process dance (boot.py has the rest).

    caller ──posix_spawn──> B: the sealed interpreter (seal.py) running boot.py:
                             setsid, fork, exit                    (the double fork)
                             └─> C: child subreaper, unshare(CLONE_NEWPID)
                                  ├─fork─> init (PID 1 of the new PID namespace): reads
                                  │        the request, hands the shim its part
                                  └─ becomes the shim (shim.main, no exec) at once,
                                     still the init's parent

(all before the request is read: see boot.py)

No Python code runs in a fork of the caller: callers with threads (the Textual app) use
this path as is. The caller passes the container's ``InitSpec`` (initspec.py, marshalled)
and three fds: the ready
pipe's write end, the attach socket end (``run -a``/``-it``: connected before the
payload runs) and the go pipe's read end; then waits for B to exit and reads the ready
pipe for ``ok <pid>``, ``err <code> <message>`` (from the shim) or ``fail <code>
<message>`` (from the init before it handed the shim its part, or from boot.py when it
could not make an init).

``before_go``: work the caller must finish before the payload runs but that the init need
not wait for to start (the bridge network's netlink work: ~90 ms with the pyroute2 load).
The caller runs it right after the spawn, while the init sets up the rootfs on another
CPU; the init waits on the go pipe before exec (``G``: go; ``X<message>`` or end of
file: abort). If it fails, the init is told to abort, the caller waits for the shim's
report (it has cleaned up by then) and re-raises.
"""

from __future__ import annotations

import os

from core.records import record

from ...errors import CannotInvoke, CommandNotFound, NutshellError, RuntimeFailure
from .boot import PKG_ROOT, SHIM_BOOT  # noqa: F401 - re-exported for the shim's tests
from .initspec import InitSpec

SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim.py")


@record
class Launched:
    """A started container: its init's pid (in the host's PID namespace)."""

    init_pid: int


def error_for(code: int, message: str, from_shim: bool = False) -> NutshellError:
    """Docker's exit codes: 127 not found, 126 cannot invoke, 125 the rest.

    ``from_shim``: the shim reported it, after it had recorded the failure and cleaned
    up itself (cgroup, network, --rm); the caller must not undo anything.
    """
    if code == 127:
        e: NutshellError = CommandNotFound(message)
    elif code == 126:
        e = CannotInvoke(message)
    else:
        e = RuntimeFailure(message)
    e.from_shim = from_shim  # type: ignore[attr-defined]
    return e


def launch(spec: InitSpec, attach_fd: int | None = None, before_go=None) -> Launched:
    from . import seal

    go_r = go_w = None
    if before_go is not None:
        go_r, go_w = os.pipe()  # close-on-exec: only the init gets go_r, only we keep go_w
    ready_r, ready_w = os.pipe()
    passed = {"ready": ready_w}
    if attach_fd is not None:
        passed["attach"] = attach_fd
    if go_r is not None:
        passed["go"] = go_r
    names = list(passed)
    numbers = seal.child_fd_numbers([passed[n] for n in names])
    request = {"spec": spec.to_wire(), "fds": dict(zip(names, numbers))}
    try:
        pid = seal.spawn("core.runtime.start.boot", request, [passed[n] for n in names],
                         stderr_path=os.path.join(spec.container_dir, "shim.log"))
    except BaseException:
        for fd in (go_r, go_w, ready_r, ready_w):
            if fd is not None:
                os.close(fd)
        raise
    os.close(ready_w)
    if spec.cgroups_required and before_go is None:
        # while the init mounts its layers: its cgroup join is then quick (with a network
        # to set up first, the init waits for that anyway)
        from ..cgmove import prime_migration

        prime_migration()
    failed: BaseException | None = None
    if go_w is not None:
        os.close(go_r)  # type: ignore[arg-type]  # made with go_w
        try:
            before_go()
            msg = b"G"
        except BaseException as e:  # noqa: BLE001 - re-raised below, after the shim's report
            failed = e
            msg = b"X" + str(e).encode(errors="replace")[:4000]
        try:
            os.write(go_w, msg)
        except OSError:
            pass  # the init is gone already: the shim reports why
        os.close(go_w)
    os.waitpid(pid, 0)
    data = seal.read_to_end(ready_r)
    os.close(ready_r)
    line = data.decode("utf-8", "replace").strip()
    if failed is not None:
        # the shim has recorded the abort and cleaned up (cgroup, network, --rm)
        failed.from_shim = line.startswith("err ")  # type: ignore[attr-defined]
        raise failed
    if line.startswith("ok "):
        return Launched(int(line.split()[1]))
    if line.startswith(("err ", "fail ")):
        kind, code, text = (line.split(" ", 2) + [""])[:3]
        raise error_for(int(code), text, from_shim=kind == "err")
    detail = ""
    try:
        with open(os.path.join(spec.container_dir, "shim.log"), "rb") as f:
            detail = f.read().decode(errors="replace").strip().splitlines()[-1]
    except (OSError, IndexError):
        pass
    raise RuntimeFailure("container start failed: the shim exited without a report"
                         + (f" ({detail})" if detail else ""))
