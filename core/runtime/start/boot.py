"""The first process of a container start that runs from the sealed interpreter (seal.py).

    caller ──posix_spawn──> B (this module, sealed python): setsid, fork, exit
                             └─> C: child subreaper, unshare(CLONE_NEWPID), sockets
                                  ├─fork─> init (PID 1 of the new PID namespace):
                                  │        init.run(): joins its cgroup, sets the
                                  │        container up, execs the payload
                                  └─ execs ``python -I -S -c "...shim.main()"``: C
                                     *becomes* the shim, still the init's parent

The init is forked from here, so its /proc/self/exe is the sealed interpreter, never the
host's binary. The shim does not enter the container (it stays in the host's PID and
mount namespaces), so it is started from the interpreter's usual path, and the sealed
handle is gone from every process once the init has exec'd.

The request arrives over a socket on fd 0 (seal.spawn; seal.prepare may have started this
interpreter before the request existed, so everything is imported before it is read): the
container's ``InitSpec`` (initspec.py) and the fds launch.py passed. The shim gets the
same spec in a memfd on its fd 0, with its own fds.
Failures before the shim runs are written to the ready pipe as ``fail <code> <message>``.
"""

import os
import sys

from .seal import PKG_ROOT

# the shim is imported as a module (its .pyc is cached; a script would be compiled each time)
SHIM_BOOT = (f"import sys; sys.path.insert(0, {PKG_ROOT!r}); "
             "from core.runtime.start.shim import main; main()")


def main() -> None:
    # what the start needs is loaded before the request is read: a prepared interpreter
    # (seal.prepare) does this while its caller is still getting ready
    from core.fs import imagemount  # noqa: F401 - the init mounts its layer images

    from ..seccomp import load  # noqa: F401 - the init loads the container's filter
    from . import init  # noqa: F401 - everything else the init needs
    from .seal import read_request

    req = read_request()
    ready_w = req["fds"]["ready"]
    try:
        _start(req)
    except BaseException as e:  # noqa: BLE001 - reported to the caller
        try:
            os.write(ready_w, f"fail 125 starting the container: {e}\n".encode())
        except OSError:
            pass
    os._exit(1)


def _start(req: dict) -> None:
    import _socket  # not socket.py: it imports enum and selectors (~3 ms on this path)

    from .. import linux
    from . import init as _init  # everything the init needs, loaded before the fork
    from .initspec import InitSpec
    from .seal import request_memfd

    spec = InitSpec.from_wire(req["spec"])
    fds = req["fds"]
    ready_w, attach_fd, go_r = fds["ready"], fds.get("attach"), fds.get("go")
    os.setsid()  # (stdin and stdout are /dev/null, stderr the shim's log: see seal.spawn)
    if os.fork() != 0:
        os._exit(0)  # the caller waits for this exit: the shim-to-be is detached now

    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    linux.unshare(linux.CLONE_NEWPID)
    os.makedirs(spec.run_dir, mode=0o700, exist_ok=True)
    sock_path = os.path.join(spec.run_dir, "attach.sock")
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    listen = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    old = os.umask(0o177)
    try:
        listen.bind(sock_path)
    finally:
        os.umask(old)
    listen.listen(64)
    sync_shim, sync_init = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0)
    stdio: tuple = (None, None, None)
    shim_io: dict[str, int] = {}
    if not spec.tty:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r = None
        if spec.stdin_open:
            in_r, in_w = os.pipe()
            shim_io["in"] = in_w
        stdio = (in_r, out_w, err_w)
        shim_io.update(out=out_r, err=err_r)

    from .process import preload

    preload(spec)
    init_pid = os.fork()
    if init_pid == 0:
        for fd in (listen.fileno(), sync_shim.fileno(), ready_w, *shim_io.values()):
            os.close(fd)
        if attach_fd is not None:
            os.close(attach_fd)
        _init.run(spec, sync_init.fileno(), stdio, go_r)
        os._exit(125)  # not reached
    sync_init.close()
    if go_r is not None:
        os.close(go_r)
    for fd in stdio:
        if fd is not None:
            os.close(fd)
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("-999")  # the monitor should outlive its container under OOM
    except OSError:
        pass
    shim_fds = dict(shim_io, sync=sync_shim.fileno(), ready=ready_w, listen=listen.fileno())
    if attach_fd is not None:
        shim_fds["attach"] = attach_fd
    for fd in shim_fds.values():
        os.set_inheritable(fd, True)
    # the shim reads its request on fd 0 too: the same spec, its fds, the init's pid
    mfd = request_memfd({"spec": req["spec"], "fds": shim_fds, "init": init_pid,
                         "pkg": PKG_ROOT})
    os.dup2(mfd, 0)
    os.close(mfd)
    # the shim stays outside the container: the interpreter's usual path is fine for it.
    # Its one argument only names the container in ps (the request is on fd 0).
    os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", SHIM_BOOT, f"id={spec.cid}"])

