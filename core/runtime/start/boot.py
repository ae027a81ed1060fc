"""The first process of a container start that runs from the sealed interpreter (seal.py).

    caller ──posix_spawn──> B (this module, sealed python): setsid, fork, exit
                             └─> C: child subreaper, unshare(CLONE_NEWPID), sync socket
                                  ├─fork─> I, the init (PID 1 of the new PID namespace):
                                  │        imports what the start needs (beside the
                                  │        shim's start), reads the request, makes the
                                  │        attach socket and the stdio pipes, hands the
                                  │        shim its part over the sync socket, then
                                  │        init.run(): joins its cgroup,
                                  │        sets the container up, execs the payload
                                  └─ runs shim.main() at once, no exec: C *becomes* the
                                     shim, still the init's parent, and waits on the sync
                                     socket for its part

All of this happens before the request is read: seal.prepare starts this interpreter
while the caller is still importing and parsing, so by the time the request comes the
shim is up and the init has only the container's own work left. C becomes the shim
without an exec (a new interpreter's start is ~20 ms of CPU, on cores the caller and the
init are using); it has loaded only what the PID namespace needs, the init imports the
rest after the fork, so the shim does not carry the init's modules. While it waits, the
init makes no-op cgroup moves of its own (cgmove.py), so its real join does not wait out
an RCU grace period. An unused one (the caller is gone) reads end of file and exits; the shim then
sees end of file before any request, reaps it and exits too.

The init is forked from here, so its /proc/self/exe is the sealed interpreter, never the
host's binary; so is the shim's (it never enters the container: it stays in the host's
PID and mount namespaces). The shim starts before the container's id is known: its
command line (B's) ends in ``id=`` and 64 placeholder characters (seal.ID_PLACEHOLDER),
which it overwrites with the id (shim.show_id), so ``ps`` shows whose shim it is.

The request arrives over a socket on the init's fd 0 (seal.spawn): the container's
``InitSpec`` (initspec.py) and the fds launch.py passed. The init hands the shim the same
spec (marshalled in a memfd) with the shim's fds in one message on the sync socket
(``hand_over``). Failures before that are written to the ready pipe as
``fail <code> <message>`` (by C itself when it cannot make the init, once the request
names the pipe); after it, the init reports them to the shim (init.py).
"""

import os

from .seal import ID_PLACEHOLDER, PKG_ROOT

# a shim started on its own (tests): the module's .pyc is cached, a script's is not
SHIM_BOOT = (f"import sys; sys.path.insert(0, {PKG_ROOT!r}); "
             "from core.runtime.start.shim import main; main()")
__all__ = ["ID_PLACEHOLDER", "SHIM_BOOT", "main"]


def main() -> None:
    import gc

    # no cyclic collection while the init imports: everything it loads survives until its
    # execve (the shim turns the collector back on for itself, below)
    gc.disable()
    from ..cgmove import prime_in_child, reap

    # the first, slow, cgroup move while the init imports (cgmove.py); then, off every
    # path, the host's stale layer mounts (core/fs/layersweep.py)
    primer = prime_in_child(then=_sweep_stale_layer_mounts)
    import _socket  # not socket.py: it imports enum and selectors (~3 ms on this path)

    from .. import linux
    from .seal import close_on_exec_above

    # C becomes the shim below, before read_request would do this: an fd the caller's
    # own caller left inheritable must not live on in the shim (it closes them) or the
    # init (its execve drops them; a pipe someone waits on)
    close_on_exec_above(2)
    os.setsid()  # (stdin is the request socket, stdout /dev/null, stderr the spawn's)
    if os.fork() != 0:
        reap(primer)
        os._exit(0)  # the caller waits for this exit: the shim-to-be is detached now
    try:
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        linux.unshare(linux.CLONE_NEWPID)
        sync_shim, sync_init = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0)
        init_pid = os.fork()
    except BaseException as e:  # noqa: BLE001 - reported once the request names the pipe
        _fail_when_asked(e)
    if init_pid == 0:
        sync_shim.close()
        _init_side(sync_init)
        os._exit(125)  # not reached
    sync_init.close()
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("-999")  # the monitor should outlive its container under OOM
    except OSError:
        pass
    # the shim's fd 0 is its end of the sync socket. The request socket must not stay
    # open here: the fds in flight on it (the ready pipe) would keep the caller waiting
    # if the init died before reading them.
    os.dup2(sync_shim.fileno(), 0)
    sync_shim.close()
    # C becomes the shim without an exec: a new interpreter's start (~20 ms of CPU on a
    # 2-core machine where the caller and the init are busy too) would buy nothing this
    # one lacks. As an exec would, every fd but 0-2 goes (close_on_exec_above marked
    # them), and the shim imports its own module only.
    os.closerange(3, _FD_LIMIT)
    gc.enable()
    from .shim import main as shim_main

    shim_main(init_pid)
    os._exit(0)


_FD_LIMIT = 1 << 20     # above any RLIMIT_NOFILE (os.closerange: one close_range call)


def _sweep_stale_layer_mounts() -> None:
    """Release the layer mounts of stores deleted by hand, under the default runtime
    base (core/fs/layersweep.py). Only root starts containers."""
    if os.geteuid() == 0:
        from core.fs import layersweep
        from core.paths import default_runtime_base

        layersweep.sweep(default_runtime_base())


def _fail_when_asked(e: BaseException) -> None:
    """No init could be made (no PID namespace here, no process left...): the caller
    learns why on the ready pipe its request brings, as ``fail 125 ...``."""
    from .seal import read_request

    req = read_request()        # end of file (the caller is gone): exits here
    try:
        os.write(req["fds"]["ready"], f"fail 125 starting the container: {e}\n".encode())
    except OSError:
        pass
    os._exit(1)


def _init_side(sync) -> None:
    """The init: wait for the request (keeping cgroup moves quick meanwhile), set up
    what the shim needs, hand it over, then become the container (init.run).

    What the start needs is imported here, before the request is read, and not before
    the fork: C, which becomes the shim without an exec, does not carry these modules
    (an idle shim's memory), and the init imports them while C is already waiting."""
    from core.fs import imagemount  # noqa: F401 - the init mounts its layer images

    from ..cgmove import prime_until_readable
    from ..seccomp import load  # noqa: F401 - the init loads the container's filter
    from . import init  # noqa: F401 - everything else the init needs
    from .initspec import InitSpec  # noqa: F401
    from .seal import read_request

    prime_until_readable(0)
    req = read_request()        # end of file (the caller is gone): exits here
    ready_w = req["fds"]["ready"]
    try:
        _start(req, sync)
    except BaseException as e:  # noqa: BLE001 - reported to the caller
        try:
            os.write(ready_w, f"fail 125 starting the container: {e}\n".encode())
        except OSError:
            pass
    os._exit(1)


def _start(req: dict, sync) -> None:
    import _socket

    from . import init as _init
    from .initspec import InitSpec
    from .process import preload

    spec = InitSpec.from_wire(req["spec"])
    fds = req["fds"]
    ready_w, attach_fd, go_r = fds["ready"], fds.get("attach"), fds.get("go")
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
    preload(spec)
    shim_fds = dict(shim_io, ready=ready_w, listen=listen.fileno(), log=2)
    if attach_fd is not None:
        shim_fds["attach"] = attach_fd
    hand_over(sync.fileno(), {"spec": req["spec"], "pkg": PKG_ROOT}, shim_fds)
    # the shim has its own copies now; the payload must not inherit any of these
    listen.close()
    for name, fd in shim_fds.items():
        if name not in ("listen", "log"):
            os.close(fd)
    _init.run(spec, sync.fileno(), stdio, go_r)


def hand_over(sync_fd: int, request: dict, fds: dict[str, int]) -> None:
    """The shim's part of a start, in one message on the sync socket: ``R`` with a memfd
    holding ``request`` (marshalled, plus the names of ``fds``) and ``fds`` in that order
    (shim.receive_request reads it)."""
    import _socket

    from .seal import fds_to_bytes, request_memfd

    names = list(fds)
    mfd = request_memfd(dict(request, fd_names=names))
    try:
        rights = fds_to_bytes([mfd, *(fds[n] for n in names)])
        s = _socket.socket(fileno=os.dup(sync_fd))
        try:
            s.sendmsg([b"R"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
        finally:
            s.close()
    finally:
        os.close(mfd)
