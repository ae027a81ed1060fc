"""Exec endpoints: create, start (the connection hijack), resize, inspect.

As in dockerd, an exec instance lives in the server's memory (``server.execs``): ``create``
only records the command; ``start`` hijacks the connection, then starts the process with
``Engine.exec`` (so a command that cannot start reports on the stream, and its exit code
126/127 arrives through ``inspect``, which is how the docker CLI learns it), copies its
output to the client (raw with a TTY, multiplexed otherwise) and the client's input to it
(a half-close closes its stdin). The exit code is recorded before the stream ends: the
CLI inspects the exec as soon as it sees the end of the stream.

A client that leaves or detaches (the detach keys) leaves the process running; its output
is read and dropped until it exits, so its exit code is still recorded.
"""

from __future__ import annotations

import os
import secrets
import select
import threading
import time

from core.errors import NotFound, NutshellError
from core.runtime.attach import DetachDetector, parse_detach_keys

from .createbody import client_env, field, strings
from .http import ClientGone, HTTPError, Request, multiplex
from .router import Routes, version_at_least

routes = Routes()

MAX_FINISHED = 256          # finished exec instances kept for inspect (dockerd keeps them
                            # until the container goes; a long-lived server must not grow)
MAX_IDLE = 1024             # created, never started
READY_TIMEOUT = 10.0        # dockerd's wait for a resize that comes before the process


class ExecInstance:
    def __init__(self, eid: str, cid: str, cmd: list[str], body: dict):
        self.id = eid
        self.container_id = cid
        self.cmd = cmd
        self.tty = bool(field(body, "Tty", bool))
        self.stdin = bool(field(body, "AttachStdin", bool))
        self.stdout = bool(field(body, "AttachStdout", bool))
        self.stderr = bool(field(body, "AttachStderr", bool))
        self.env = client_env(strings(body, "Env"))
        self.user = field(body, "User", str) or None
        self.workdir = field(body, "WorkingDir", str) or None
        self.privileged = bool(field(body, "Privileged", bool))
        self.detach_keys = field(body, "DetachKeys", str) or ""
        size = field(body, "ConsoleSize", list)
        self.rows, self.cols = _size(size) if size else (24, 80)
        self.running = False
        self.started_once = False
        self.exit_code: int | None = None
        self.pid = 0
        self.proc = None
        self.ready = threading.Event()      # the process started (or could not)
        self.lock = threading.Lock()
        self.finished_at = 0.0
        self.created_at = time.monotonic()
        self.default_user = ""

    def view(self) -> dict:
        return {
            "ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
            "ProcessConfig": {"tty": self.tty, "entrypoint": self.cmd[0],
                              "arguments": self.cmd[1:], "privileged": self.privileged,
                              "user": self.user or self.default_user},
            "OpenStdin": self.stdin, "OpenStderr": self.stderr, "OpenStdout": self.stdout,
            "CanRemove": False, "ContainerID": self.container_id,
            "DetachKeys": self.detach_keys, "Pid": self.pid,
        }

    def finish(self, code: int | None) -> None:
        self.exit_code = code
        self.running = False
        self.finished_at = time.monotonic()
        self.ready.set()


def _size(value) -> tuple[int, int]:
    if (len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 65536
                                    for v in value)):
        raise HTTPError(400, "ConsoleSize must be [height, width]")
    h, w = value
    return (h or 24), (w or 80)


def _instance(req: Request) -> ExecInstance:
    inst = req.server.execs.get(req.params["id"])          # type: ignore[attr-defined]
    if inst is None:
        raise HTTPError(404, f"No such exec instance: {req.params['id']}")
    return inst


def _forget_old(execs: dict) -> None:
    """Keep the last MAX_FINISHED finished instances, and at most MAX_IDLE created but
    never started ones (a client creating execs in a loop must not grow the server)."""
    done = sorted((i for i in execs.values() if i.finished_at), key=lambda i: i.finished_at)
    for inst in done[:max(0, len(done) - MAX_FINISHED)]:
        execs.pop(inst.id, None)
    idle = sorted((i for i in list(execs.values()) if not i.started_once),
                  key=lambda i: i.created_at)
    for inst in idle[:max(0, len(idle) - MAX_IDLE + 1)]:
        execs.pop(inst.id, None)


def _check_running(engine, cid: str) -> None:
    try:
        status = engine.container_state(cid).get("Status")
    except NotFound:
        raise HTTPError(404, f"No such container: {cid}") from None
    if status == "paused":
        raise HTTPError(409, f"Container {cid} is paused, unpause the container before exec")
    if status != "running":
        raise HTTPError(409, f"Container {cid} is not running")


# --- create ----------------------------------------------------------------------------
@routes.route("POST", "/containers/{id}/exec")
def create(engine, req: Request) -> None:
    cid = engine.container(req.params["id"])
    body = req.json(default=None)
    if body is None:
        raise HTTPError(400, "exec config cannot be empty")
    cmd = strings(body, "Cmd") or []
    if not cmd:
        raise HTTPError(400, "No exec command specified")
    keys = field(body, "DetachKeys", str)
    if keys:
        try:
            parse_detach_keys(keys)
        except ValueError:
            raise HTTPError(400, f"Invalid escape keys ({keys}) provided") from None
    if not version_at_least(req, "1.42"):
        body.pop("ConsoleSize", None)             # dockerd ignores it before 1.42
    inst = ExecInstance(secrets.token_hex(32), cid, cmd, body)
    if not inst.user:
        inst.default_user = str(engine.container_inspect(cid)["Config"].get("User") or "")
    _check_running(engine, cid)
    execs = req.server.execs                                # type: ignore[attr-defined]
    _forget_old(execs)
    execs[inst.id] = inst
    req.send_json(201, {"Id": inst.id})


@routes.route("GET", "/exec/{id}/json")
def inspect(engine, req: Request) -> dict:
    inst = _instance(req)
    try:
        engine.container(inst.container_id)
    except NotFound:
        raise HTTPError(404, f"No such exec instance: {inst.id}") from None
    return inst.view()


# --- start -----------------------------------------------------------------------------
@routes.route("POST", "/exec/{id}/start")
def start(engine, req: Request) -> None:
    inst = _instance(req)
    body = req.json(default={})
    detach = bool(field(body, "Detach", bool))
    framed_raw = bool(field(body, "Tty", bool))   # dockerd frames by the start request's Tty
    size = field(body, "ConsoleSize", list) if framed_raw and version_at_least(req, "1.42") else None
    with inst.lock:
        if inst.running:
            raise HTTPError(409, f"exec command {inst.id} is already running")
        if inst.started_once:
            raise HTTPError(409, f"exec command {inst.id} has already run")
        _check_running(engine, inst.container_id)
        inst.started_once = True
        if size:
            inst.rows, inst.cols = _size(size)
    if detach:
        try:
            proc = _spawn(engine, inst, detach=True)
        except NutshellError as exc:
            inst.finish(_exit_code(exc))
            raise HTTPError(400 if inst.exit_code in (126, 127) else 500, _exec_message(exc)) from None
        inst.pid = proc.pid
        inst.finish(None)          # it runs on its own; its exit code is not ours to see
        proc.close()
        req.send_empty(200)
        return
    multiplexed_type = not framed_raw and version_at_least(req, "1.42")
    conn = req.hijack("application/vnd.docker.multiplexed-stream" if multiplexed_type
                      else "application/vnd.docker.raw-stream")
    client = {"gone": False}

    def send(stream: int, data: bytes, always: bool = False) -> None:
        if client["gone"]:
            return
        if not always and ((stream == 1 and not inst.stdout) or (stream == 2 and not inst.stderr)):
            return
        try:
            conn.send(data if framed_raw else multiplex(stream, data))
        except (ClientGone, OSError):
            client["gone"] = True

    try:
        proc = _spawn(engine, inst, detach=False)
    except NutshellError as exc:
        inst.finish(_exit_code(exc))
        # dockerd writes the error to the stream (the CLI prints it), then ends it
        send(1, (_exec_message(exc) + "\r\n").encode(), always=True)
        return
    except BaseException:
        inst.finish(126)                 # dockerd's code for an exec that did not start
        raise
    inst.proc = proc
    inst.pid = proc.pid
    inst.running = True
    inst.ready.set()
    try:
        _pump(inst, proc, conn, send, client)
    finally:
        try:
            code = proc.wait()
        except ChildProcessError:
            code = proc.exit_code
        proc.close()
        inst.proc = None
        inst.finish(code)


def _spawn(engine, inst: ExecInstance, detach: bool):
    return engine.exec(inst.container_id, list(inst.cmd), tty=inst.tty,
                       interactive=inst.stdin and not detach, env=list(inst.env),
                       user=inst.user, workdir=inst.workdir, detach=detach,
                       rows=inst.rows, cols=inst.cols, privileged=inst.privileged)


def _exit_code(exc: Exception) -> int:
    """dockerd's exit code for an exec that could not start (its setExitCodeFromError):
    126 cannot invoke, 127 not found, 128 anything else."""
    code = getattr(exc, "exit_code", 125)
    if code in (126, 127):
        return code
    msg = str(exc).lower()
    if "permission denied" in msg or "is a directory" in msg:
        return 126
    if any(m in msg for m in ("not a directory", "executable file not found",
                              "no such file or directory")):
        return 127
    return 128


def _exec_message(exc: Exception) -> str:
    """dockerd's wording (the CLI shows it; its exit code comes from inspect)."""
    msg = str(exc)
    code = getattr(exc, "exit_code", 125)
    if code == 127 and "executable file not found" not in msg and "no such file" not in msg:
        msg += ": executable file not found in $PATH"
    if code == 126 and "permission denied" not in msg:
        msg += ": permission denied"
    return f"OCI runtime exec failed: exec failed: unable to start container process: {msg}: unknown"


def _pump(inst: ExecInstance, proc, conn, send, client: dict) -> None:
    """Output to the client until the process ends (and its output with it); the
    client's input to the process from a second thread, through a descriptor of its own
    (a dup: closing the process's descriptors here can never leave that thread writing
    to a number the server has since reused). The process's descriptors are closed here
    before returning."""
    fd_lock = threading.Lock()
    in_fd = proc.master_fd if inst.tty else proc.stdin_fd
    write_fd = os.dup(in_fd) if (inst.stdin and in_fd is not None) else None

    def half_close() -> None:
        """The client is done sending: the process sees end of file (not with a TTY)."""
        if inst.tty:
            return
        with fd_lock:
            if proc.stdin_fd is not None:
                _close(proc.stdin_fd)
                proc.stdin_fd = None

    def upstream() -> None:
        # dockerd looks for the detach keys only with a TTY: piped stdin is data, all of it
        detector = (DetachDetector(parse_detach_keys(inst.detach_keys or None))
                    if write_fd is not None and inst.tty else None)
        try:
            while True:
                data = conn.read_some()
                if not data:
                    break
                if write_fd is None:
                    continue
                hit = False
                if detector is not None:
                    data, hit = detector.feed(data)
                if data:
                    _write_all(write_fd, data)
                if hit:
                    client["gone"] = True
                    conn.close()              # detached: the process runs on
                    break
        except (OSError, ClientGone):
            pass
        finally:
            if write_fd is not None:
                _close(write_fd)
            half_close()

    threading.Thread(target=upstream, daemon=True, name="api-exec-in").start()
    try:
        _copy_out(inst, proc, send)
    finally:
        with fd_lock:
            proc.close()


def _copy_out(inst: ExecInstance, proc, send) -> None:
    streams = {proc.master_fd: 1} if inst.tty else {proc.stdout_fd: 1, proc.stderr_fd: 2}
    outs = {fd: s for fd, s in streams.items() if fd is not None}
    poller = select.poll()              # not select(): descriptors past 1024 are fine
    for fd in outs:
        poller.register(fd, select.POLLIN)
    exited_at = None
    while outs:
        timeout = 0.2
        if exited_at is not None:
            # the process is gone: what is left in the pipes comes now; a background
            # child holding them open does not keep the stream (dockerd's behaviour)
            if time.monotonic() - exited_at > 0.5:
                break
            timeout = 0.05
        ready = poller.poll(timeout * 1000)
        if not ready:
            if exited_at is None and proc.poll() is not None:
                exited_at = time.monotonic()
            elif exited_at is not None:
                break
            continue
        for fd, _ev in ready:
            if fd not in outs:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:                  # EIO: the TTY's last holder closed it
                data = b""
            if not data:
                poller.unregister(fd)
                del outs[fd]
                continue
            send(outs[fd], data)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


# --- resize ----------------------------------------------------------------------------
@routes.route("POST", "/exec/{id}/resize")
def resize(engine, req: Request) -> None:
    inst = _instance(req)
    h, w = req.qint("h", 0), req.qint("w", 0)
    if h is None or w is None or h < 0 or w < 0 or h > 65535 or w > 65535:
        raise HTTPError(400, "invalid terminal size")
    if not inst.running and not inst.ready.is_set():
        if not inst.started_once:
            inst.rows, inst.cols = h or inst.rows, w or inst.cols    # applied at start
            req.send_empty(200)
            return
        if not inst.ready.wait(READY_TIMEOUT):
            raise HTTPError(500, "timeout waiting for exec session ready")
    proc = inst.proc
    if proc is not None and h and w:
        try:
            proc.resize(h, w)
        except OSError:
            pass
    req.send_empty(200)

