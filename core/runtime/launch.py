"""Starting a container: the fork dance that ends with a detached shim and its init.

    caller ──fork──> C1: setsid, stdio to /dev/null, fork, exit   (the double fork)
                      └─> C2: child subreaper, unshare(CLONE_NEWPID)
                           ├─fork─> init (PID 1 of the new PID namespace): init.run()
                           │        joins its cgroup, sets the container up, execs
                           └─ execs ``python -I -S -c "...shim.main()"``: C2 *becomes*
                              the shim, still the init's parent, now a small fresh
                              interpreter (the shim module comes from its cached .pyc)

The init is forked from a process that already has every module it needs loaded, so the
container is set up while the shim's interpreter is still starting: the two overlap.
The caller waits on the ready pipe for ``ok <pid>`` or ``err <code> <message>``.

``before_go``: work the caller must finish before the payload runs but that the init need
not wait for to start (the bridge network's netlink work: ~90 ms with the pyroute2 load).
The caller runs it right after the fork, while the shim's interpreter starts and the init
sets up the rootfs on another CPU; the init waits on a pipe before exec (``G``: go;
``X<message>`` or end of file: abort). If it fails, the init is told to abort, the
caller waits for the shim's report (it has cleaned up by then) and re-raises.

A caller with threads (the Textual app) must not fork and then run Python code in the
child; it gets the same dance in a fresh helper process (``python -m core.runtime.launch``).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass

from ..errors import CannotInvoke, CommandNotFound, NutshellError, RuntimeFailure

SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim.py")
PKG_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Import the shim as a module (its .pyc is cached; a script would be compiled each time).
SHIM_BOOT = (f"import sys; sys.path.insert(0, {PKG_ROOT!r}); "
             "from core.runtime.shim import main; main(sys.argv)")



@dataclass
class LaunchRequest:
    cid: str
    container_dir: str
    run_dir: str
    state_root: str
    runtime_root: str               # Paths.run (for the network teardown in the shim)
    spec: dict                      # the init's spec (see init.py)
    cgroup_procs: list[str]         # cgroup dirs the init joins (cgroup.procs in each)
    cgroup_optional: list[str]      # joined if possible (hybrid's unified dir)
    memory_cgroup: str | None       # for the OOM check
    tty: bool
    stdin_open: bool
    auto_remove: bool
    network_teardown: bool
    rows: int = 24
    cols: int = 80
    restart: str = ""                     # "<policy>:<max retries>:<restarts so far>"
    volume_root: str = ""                 # $ROOT/volumes
    remove_volumes: list | None = None    # anonymous volume names to remove with --rm


@dataclass
class Launched:
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


def launch(req: LaunchRequest, attach_fd: int | None = None, before_go=None) -> Launched:
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        if before_go is not None:
            before_go()  # no overlap through the helper: finish first
        return _launch_via_helper(req, attach_fd)
    return _launch_direct(req, attach_fd, before_go)


def _launch_via_helper(req: LaunchRequest, attach_fd: int | None) -> Launched:
    import subprocess

    payload = json.dumps({"req": req.__dict__, "attach": attach_fd}).encode()
    proc = subprocess.run([sys.executable, "-m", "core.runtime.launch"], input=payload,
                          capture_output=True, pass_fds=[attach_fd] if attach_fd else (),
                          cwd=PKG_ROOT)
    try:
        out = json.loads(proc.stdout or b"{}")
    except ValueError:
        out = {}
    if "init_pid" in out:
        return Launched(out["init_pid"])
    raise error_for(out.get("code", 125), out.get("error") or proc.stderr.decode().strip()
                    or "container start failed", out.get("from_shim", False))


def _launch_direct(req: LaunchRequest, attach_fd: int | None, before_go=None) -> Launched:
    from . import init as _init  # loaded before the fork: the init needs no imports
    from . import linux

    go_r = go_w = None
    if before_go is not None:
        go_r, go_w = os.pipe()  # close-on-exec: only the init keeps go_r, only we go_w
        req.spec["go_fd"] = go_r

    os.makedirs(req.run_dir, mode=0o700, exist_ok=True)
    sock_path = os.path.join(req.run_dir, "attach.sock")
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    listen = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    old = os.umask(0o177)
    try:
        listen.bind(sock_path)
    finally:
        os.umask(old)
    listen.listen(64)
    sync_shim, sync_init = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ready_r, ready_w = os.pipe()
    pipes: list[int] = []
    stdio: tuple = (None, None, None)
    shim_io: dict[str, int] = {}
    if not req.tty:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r = in_w = None
        if req.stdin_open:
            in_r, in_w = os.pipe()
        stdio = (in_r, out_w, err_w)
        shim_io = {"out": out_r, "err": err_r}
        if in_w is not None:
            shim_io["in"] = in_w
        pipes = [p for p in (out_r, out_w, err_r, err_w, in_r, in_w) if p is not None]
    shim_log = os.path.join(req.container_dir, "shim.log")

    pid = os.fork()
    if pid == 0:  # C1
        code = 1
        try:
            if go_w is not None:
                os.close(go_w)  # the init must see end of file if we die
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            log = os.open(shim_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(log, 2)
            os.close(null)
            os.close(log)
            if os.fork() != 0:
                os._exit(0)
            # C2
            linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
            linux.unshare(linux.CLONE_NEWPID)
            init_pid = os.fork()
            if init_pid == 0:
                listen.close()
                sync_shim.close()
                os.close(ready_r)
                os.close(ready_w)
                for fd in shim_io.values():
                    os.close(fd)
                if attach_fd is not None:
                    os.close(attach_fd)
                _init.run(req.spec, sync_init.fileno(), stdio)
                os._exit(125)
            sync_init.close()
            for fd in stdio:
                if fd is not None:
                    os.close(fd)
            try:
                with open("/proc/self/oom_score_adj", "w") as f:
                    f.write("-999")  # the monitor should outlive its container under OOM
            except OSError:
                pass
            keep = [sync_shim.fileno(), ready_w, listen.fileno()] + list(shim_io.values())
            if attach_fd is not None:
                keep.append(attach_fd)
            for fd in keep:
                os.set_inheritable(fd, True)
            args = [f"id={req.cid}", f"dir={req.container_dir}", f"run={req.run_dir}",
                    f"init={init_pid}", f"sync={sync_shim.fileno()}", f"ready={ready_w}",
                    f"listen={listen.fileno()}", f"tty={int(req.tty)}",
                    f"stdin={int(req.stdin_open)}", f"rm={int(req.auto_remove)}",
                    f"rows={req.rows}", f"cols={req.cols}",
                    f"cgroups={':'.join(req.cgroup_procs + req.cgroup_optional)}",
                    f"memcg={req.memory_cgroup or ''}", f"net={int(req.network_teardown)}",
                    f"pkg={PKG_ROOT}", f"root={req.state_root}", f"runroot={req.runtime_root}"]
            if req.restart:
                args.append(f"restart={req.restart}")
            if req.auto_remove and req.remove_volumes:
                args += [f"volroot={req.volume_root}", f"rmvols={','.join(req.remove_volumes)}"]
            args += [f"{k}={v}" for k, v in shim_io.items()]
            if attach_fd is not None:
                args.append(f"attach={attach_fd}")
            os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", SHIM_BOOT] + args)
        except BaseException as e:  # noqa: BLE001
            try:
                os.write(ready_w, f"fail 125 starting the shim: {e}\n".encode())
            except OSError:
                pass
        os._exit(code)

    # the caller
    listen.close()
    sync_shim.close()
    sync_init.close()
    os.close(ready_w)
    for fd in pipes:
        os.close(fd)
    failed: BaseException | None = None
    if go_w is not None:
        req.spec.pop("go_fd", None)
        os.close(go_r)
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
    chunks = []
    while True:
        b = os.read(ready_r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(ready_r)
    line = b"".join(chunks).decode("utf-8", "replace").strip()
    if failed is not None:
        # the shim has recorded the abort and cleaned up (cgroup, network, --rm)
        failed.from_shim = line.startswith("err ")  # type: ignore[attr-defined]
        raise failed
    if line.startswith("ok "):
        return Launched(int(line.split()[1]))
    if line.startswith(("err ", "fail ")):
        kind, code, msg = (line.split(" ", 2) + [""])[:3]
        raise error_for(int(code), msg, from_shim=kind == "err")
    detail = ""
    try:
        with open(shim_log, "rb") as f:
            detail = f.read().decode(errors="replace").strip().splitlines()[-1]
    except (OSError, IndexError):
        pass
    raise RuntimeFailure("container start failed: the shim exited without a report"
                         + (f" ({detail})" if detail else ""))


def _helper_main() -> int:
    data = json.loads(sys.stdin.buffer.read())
    req = LaunchRequest(**data["req"])
    try:
        out = {"init_pid": _launch_direct(req, data.get("attach")).init_pid}
    except NutshellError as e:
        out = {"error": e.message, "code": e.exit_code,
               "from_shim": getattr(e, "from_shim", False)}
    sys.stdout.write(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(_helper_main())
