"""Container endpoints: list, create, inspect, the lifecycle verbs, wait, attach, resize,
logs, top, stats, changes, export, prune.

``attach`` before ``start`` is how ``docker run -it`` works: the client hijacks the
connection of a created container, then starts it. The attach handler parks itself in
``server.pending_attach``; the start handler starts the container with an attach client
(so no output is lost) and hands it over.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from core.errors import CannotInvoke, CommandNotFound, Conflict, NotFound
from core.runtime.attach import EXIT, STDERR, STDOUT, DetachDetector, parse_detach_keys

from .createbody import run_options
from .http import ClientGone, Connection, HTTPError, Request, multiplex
from .router import Routes
from .shapes import container_list_entry
from .system import filters_of

routes = Routes()


# --- list, inspect ---------------------------------------------------------------------
def _matches(entry: dict, ins_state: str, filters: dict[str, list[str]]) -> bool:
    for key, wanted in filters.items():
        if not wanted:
            continue
        if key == "label":
            labels = entry["Labels"]
            for w in wanted:
                k, eq, v = w.partition("=")
                if k not in labels or (eq and labels[k] != v):
                    return False
        elif key == "name":
            names = [n.lstrip("/") for n in entry["Names"]]
            import re

            if not any(re.search(w, n) for w in wanted for n in names):
                return False
        elif key == "id":
            if not any(entry["Id"].startswith(w) for w in wanted):
                return False
        elif key == "status":
            if ins_state not in wanted:
                return False
        elif key == "ancestor":
            if not any(w in (entry["Image"], entry["ImageID"]) or entry["Image"].startswith(w + ":")
                       for w in wanted):
                return False
        elif key == "network":
            nets = entry["NetworkSettings"]["Networks"]
            if not any(w in nets or any(n.get("NetworkID", "").startswith(w) for n in nets.values())
                       for w in wanted):
                return False
        elif key == "exited":
            if ins_state != "exited" or str(entry.get("_exit")) not in wanted:
                return False
        elif key in ("volume", "health", "is-task", "before", "since", "publish", "expose"):
            continue
        else:
            raise HTTPError(400, f"invalid filter '{key}'")
    return True


@routes.route("GET", "/containers/json")
def list_containers(engine, req: Request) -> list:
    filters = filters_of(req)
    show_all = req.qbool("all") or bool(filters.get("status")) or bool(filters.get("exited"))
    out = []
    for c in engine.ps(all=show_all):
        try:
            entry = container_list_entry(engine, c["Id"], c)
        except NotFound:
            continue
        entry["_exit"] = c.get("ExitCode")
        if _matches(entry, c.get("State", ""), filters):
            if req.qbool("size"):
                try:
                    size = engine.container_size(c["Id"])
                    entry["SizeRw"], entry["SizeRootFs"] = size["SizeRw"], size["SizeRootFs"]
                except NotFound:
                    continue
            entry.pop("_exit", None)
            out.append(entry)
    limit = req.qint("limit", -1)
    if limit and limit > 0:
        out = out[:limit]
    return out


@routes.route("GET", "/containers/{id}/json")
def inspect(engine, req: Request) -> dict:
    ins = dict(engine.container_inspect(req.params["id"]))
    host = dict(ins["HostConfig"])
    netopts = host.pop("NetworkOptions", None) or {}
    bindings: dict[str, list] = {}
    for p in (ins.get("NetworkSettings") or {}).get("PublishedPorts") or []:
        key = f"{p.get('container_port') or p.get('ContainerPort')}/{p.get('proto') or p.get('Proto') or 'tcp'}"
        bindings.setdefault(key, []).append({"HostIp": p.get("host_ip") or p.get("HostIp") or "",
                                             "HostPort": str(p.get("host_port") or p.get("HostPort") or "")})
    host.setdefault("PortBindings", bindings)
    host.setdefault("PublishAllPorts", bool(netopts.get("publish_all")))
    host.setdefault("Dns", netopts.get("dns") or [])
    host.setdefault("ExtraHosts", netopts.get("add_hosts") or [])
    host.pop("MountSpecs", None)
    ins["HostConfig"] = host
    if req.qbool("size"):
        size = engine.container_size(ins["Id"])
        ins["SizeRw"], ins["SizeRootFs"] = size["SizeRw"], size["SizeRootFs"]
    return ins


# --- create and the lifecycle verbs ----------------------------------------------------
@routes.route("POST", "/containers/create")
def create(engine, req: Request) -> None:
    body = req.json(default=None)
    if body is None:
        raise HTTPError(400, "config cannot be empty in order to create a container")
    opts = run_options(body, req.q("name"))
    try:
        engine.image(opts.image)
    except NotFound:
        raise HTTPError(404, f"No such image: {opts.image}") from None
    cid = engine.create(opts)
    req.send_json(201, {"Id": cid, "Warnings": []})


@routes.route("POST", "/containers/{id}/start")
def start(engine, req: Request) -> None:
    cid = engine.container(req.params["id"])
    state = engine.container_state(cid)
    if state.get("Status") in ("running", "paused"):
        req.send_empty(304)
        return
    server = req.server                                  # type: ignore[attr-defined]
    waiters = server.pending_attach.pop(cid, [])
    exits = server.pending_exit.pop(cid, [])
    for parked in (*waiters, *exits):
        parked.claimed = True                # this start will hand over a client / the code
    try:
        if waiters or exits:
            first = waiters[0] if waiters else _Waiter()
            _, client = engine.start(cid, attach=True, rows=first.rows, cols=first.cols)
            first.exits = exits
            if not waiters or not first.deliver(client):   # only the exit code is wanted
                _exit_pump(client, exits)
            for w in waiters[1:]:
                w.deliver(None)                          # they connect on their own
        else:
            engine.start(cid)
    except BaseException as exc:
        for w in waiters:
            w.deliver(None)
        for e in exits:
            e.resolve(None)
        if isinstance(exc, (CommandNotFound, CannotInvoke)):
            raise HTTPError(400, _runtime_message(exc)) from None
        raise


def _runtime_message(exc: Exception) -> str:
    """dockerd's wording, which the docker CLI reads to exit 127 or 126."""
    msg = str(exc)
    if isinstance(exc, CommandNotFound) and "executable file not found" not in msg:
        msg += ": executable file not found in $PATH"
    if isinstance(exc, CannotInvoke) and "permission denied" not in msg:
        msg += ": permission denied"
    return f"failed to create task for container: {msg}: unknown"


@routes.route("POST", "/containers/{id}/stop")
def stop(engine, req: Request) -> None:
    cid = engine.container(req.params["id"])
    if engine.container_state(cid).get("Status") not in ("running", "paused", "restarting"):
        req.send_empty(304)
        return
    t = req.qint("t")
    if t is None:
        t = req.qint("timeout")
    engine.stop(cid, timeout=t, signal=req.q("signal") or None)


@routes.route("POST", "/containers/{id}/kill")
def kill(engine, req: Request) -> None:
    cid = engine.container(req.params["id"])
    if engine.container_state(cid).get("Status") not in ("running", "paused"):
        raise HTTPError(409, f"Cannot kill container: {req.params['id']}: Container {cid} is not running")
    engine.kill(cid, req.q("signal") or "KILL")


@routes.route("POST", "/containers/{id}/restart")
def restart(engine, req: Request) -> None:
    t = req.qint("t")
    engine.restart(req.params["id"], timeout=t if t is not None else req.qint("timeout"))


@routes.route("POST", "/containers/{id}/pause")
def pause(engine, req: Request) -> None:
    engine.pause(req.params["id"])


@routes.route("POST", "/containers/{id}/unpause")
def unpause(engine, req: Request) -> None:
    engine.unpause(req.params["id"])


@routes.route("POST", "/containers/{id}/rename")
def rename(engine, req: Request) -> None:
    name = req.q("name")
    if not name:
        raise HTTPError(400, "name is required")
    engine.rename(req.params["id"], name)


@routes.route("POST", "/containers/{id}/update")
def update(engine, req: Request) -> dict:
    from .createbody import field

    body = req.json(default={})
    cpus = None
    if field(body, "NanoCpus", int):
        cpus = body["NanoCpus"] / 1e9
    elif field(body, "CpuQuota", int) and body["CpuQuota"] > 0:
        cpus = body["CpuQuota"] / (field(body, "CpuPeriod", int) or 100000)
    _, warnings = engine.update(req.params["id"], memory=field(body, "Memory", int) or None,
                                memory_swap=field(body, "MemorySwap", int) or None, cpus=cpus,
                                pids_limit=field(body, "PidsLimit", int) or None)
    if field(body, "RestartPolicy", dict):
        warnings = list(warnings) + ["changing the restart policy of a container is not supported"]
    return {"Warnings": list(warnings)}


@routes.route("DELETE", "/containers/{id}")
def delete(engine, req: Request) -> None:
    cid = engine.container(req.params["id"])
    engine.rm(cid, force=req.qbool("force"), volumes=req.qbool("v"))


@routes.route("POST", "/containers/prune")
def prune(engine, req: Request) -> dict:
    filters = [f"{k}={v}" for k, vs in filters_of(req).items() for v in vs]
    report = engine.container_prune(filters or None)
    return {"ContainersDeleted": list(report.get("ContainersDeleted") or []),
            "SpaceReclaimed": int(report.get("SpaceReclaimed") or 0)}


# --- wait ------------------------------------------------------------------------------
@routes.route("POST", "/containers/{id}/wait")
def wait(engine, req: Request) -> None:
    cid = engine.container(req.params["id"])
    condition = req.q("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise HTTPError(400, f"invalid condition: {condition!r}")
    conn = req.conn
    code: int | None = None
    error = None
    server = req.server                                  # type: ignore[attr-defined]
    fut = None
    if condition in ("next-exit", "removed") and _status(engine, cid) == "created":
        # its next exit comes after someone starts it; when that is this server, the
        # start handler reports the exit code (a --rm container may be gone by then).
        # Registered before the headers go out: the client starts the container as soon
        # as it has them.
        fut = _Exit()
        server.pending_exit.setdefault(cid, []).append(fut)
    try:
        out = req.stream(200, "application/json")
        if fut is not None:
            while not fut.event.wait(0.1):
                if conn.peer_gone():
                    return
                if fut.claimed:              # our start reports the code: wait for it
                    continue
                st = _status(engine, cid)
                if st != "created":          # started elsewhere, or removed
                    break
    finally:
        _unpark(server.pending_exit, cid, fut)
    if fut is not None:
        code = fut.code
    if code is None:
        try:
            code = _wait_watching(engine, cid, conn)
        except ClientGone:
            raise
        except NotFound:
            code = 0
        except Exception as exc:  # noqa: BLE001
            code, error = -1, {"Message": str(exc)}
    if condition == "removed":
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not conn.peer_gone():
            try:
                engine.container_state(cid)
            except NotFound:
                break
            time.sleep(0.05)
    out.json({"StatusCode": code, "Error": error})
    out.close()


def _wait_watching(engine, cid: str, conn: Connection) -> int:
    """``engine.wait`` that gives up when the client leaves (ClientGone): the wait goes on
    in a thread of its own until the container exits, but the request is no longer in
    flight (an idle server may exit) and its connection is closed."""
    box: dict = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["code"] = engine.wait(cid)
        except BaseException as exc:  # noqa: BLE001 - handed to the handler
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, daemon=True, name="api-wait").start()
    while not done.wait(0.2):
        if conn.peer_gone():
            raise ClientGone("the client left during wait")
    if "error" in box:
        raise box["error"]
    return box["code"]


def _interrupt(client) -> None:
    """Wake a ``client.read()`` blocked in another thread (it returns None)."""
    try:
        s = socket.socket(fileno=os.dup(client.fileno()))
    except OSError:
        return
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        s.close()


# --- attach ----------------------------------------------------------------------------
def _unpark(parked: dict[str, list], cid: str, item) -> None:
    """Take ``item`` (a parked wait or attach) off ``parked[cid]`` if it is still there."""
    waiting = parked.get(cid)
    if item is not None and waiting and item in waiting:
        waiting.remove(item)


def _status(engine, cid: str) -> str | None:
    try:
        return engine.container_state(cid).get("Status")
    except NotFound:
        return None


class _Exit:
    """A ``wait`` parked on a created container: the exit code, once known."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.code: int | None = None
        self.claimed = False          # a start by this server will report the code

    def resolve(self, code: int | None) -> None:
        self.code = code
        self.event.set()


class _Waiter:
    """An attach parked on a created container until it is started."""

    def __init__(self) -> None:
        self.rows, self.cols = 24, 80
        self.event = threading.Event()
        self.client = None
        self.claimed = False          # a start by this server will hand over its client
        self.gone = False
        self.lock = threading.Lock()
        self.exits: list[_Exit] = []

    def deliver(self, client) -> bool:
        """Hand the started container's client over; False if the attach has gone."""
        with self.lock:
            if self.gone:
                return False
            self.client = client
            self.event.set()
            return True

    def take(self):
        """The delivered client (None if none yet); no delivery is accepted after this."""
        with self.lock:
            self.gone = True
            client, self.client = self.client, None
            return client


@routes.route("POST", "/containers/{id}/attach")
def attach(engine, req: Request) -> None:
    cid = engine.container(req.params["id"])
    state = engine.container_state(cid)
    if not req.qbool("stream") and not req.qbool("logs"):
        raise HTTPError(400, "attach needs stream=1 or logs=1")
    ins = engine.container_inspect(cid)
    tty = bool(ins["Config"].get("Tty"))
    want_stdin = req.qbool("stdin")
    want = {STDOUT: req.qbool("stdout"), STDERR: req.qbool("stderr")}
    # dockerd looks for the detach keys only with a TTY: piped stdin is data, all of it
    keys = parse_detach_keys(req.q("detachKeys") or None) if tty else b""
    waiter = None
    client = None
    server = req.server                                  # type: ignore[attr-defined]
    if req.qbool("stream"):
        if state.get("Status") == "created":
            waiter = _Waiter()
            server.pending_attach.setdefault(cid, []).append(waiter)
        elif state.get("Status") in ("running", "paused"):
            client = engine.attach(cid)
    conn = req.hijack("application/vnd.docker.raw-stream" if tty
                      else "application/vnd.docker.multiplexed-stream")

    def send(stream: int, data: bytes) -> None:
        if want.get(stream):
            conn.send(data if tty else multiplex(stream, data))

    try:
        if req.qbool("logs"):
            for entry in engine.logs(cid):
                send(STDOUT if entry.stream == "stdout" else STDERR, entry.data)
        if not req.qbool("stream"):
            return
        if waiter is not None:
            while not waiter.event.wait(0.2):
                if conn.peer_gone():
                    return
                if waiter.claimed:           # our start hands the client over
                    continue
                st = _status(engine, cid)
                if st is None:
                    return
                if st in ("running", "paused"):          # started by someone else
                    break
            client = waiter.take()
            if client is None:
                try:
                    client = engine.attach(cid)
                except (Conflict, NotFound):
                    return
        if client is None:
            return
        _pump(client, conn, send, want_stdin, keys, waiter.exits if waiter else [])
    finally:
        _unpark(server.pending_attach, cid, waiter)
        if waiter is not None:
            unused = waiter.take()               # delivered after we stopped waiting
            if unused is not None:
                _exit_pump(unused, waiter.exits)
        if client is not None:
            client.close()


def _exit_pump(client, exits: list) -> None:
    """Read ``client`` to its end in the background, for the exit code ``exits`` wait for."""
    threading.Thread(target=_pump, args=(client, None, None, False, b"", exits), daemon=True,
                     name="api-exit").start()


def _pump(client, conn: Connection | None, send, want_stdin: bool, keys: bytes,
          exits: list | None = None) -> None:
    """Copy the container's output to the client and (with stdin) the client's input to
    the container until the container exits, the client detaches or goes away. The exit
    code goes to ``exits`` (None when the stream ended otherwise)."""
    detached = threading.Event()
    finished = threading.Event()
    code: int | None = None

    def upstream() -> None:
        assert conn is not None
        detector = DetachDetector(keys) if keys else None
        try:
            while True:
                data = conn.read_some()
                if not data:
                    if want_stdin:
                        client.close_stdin()
                    # the end of the client's input; when the client is gone altogether
                    # (not just done sending), stop waiting for output it cannot read
                    while not finished.wait(0.5):
                        if conn.peer_gone():
                            if not exits:
                                _interrupt(client)
                            return
                    return
                if not want_stdin:
                    continue
                if detector is not None:
                    data, hit = detector.feed(data)
                    if data:
                        client.write(data)
                    if hit:
                        detached.set()
                        conn.close()
                        return
                else:
                    client.write(data)
        except (OSError, ClientGone):
            return

    if conn is not None:
        threading.Thread(target=upstream, daemon=True, name="api-attach-in").start()
    try:
        while not detached.is_set():
            item = client.read()
            if item is None:
                return
            stream, data = item
            if stream == EXIT:
                try:
                    code = int(data)
                except ValueError:
                    code = None
                return
            if stream in (STDOUT, STDERR) and send is not None:
                try:
                    send(stream, data)
                except (OSError, ClientGone):
                    send = None              # the client left: keep reading for the code
                    if not exits:
                        return
    except OSError:
        return
    finally:
        finished.set()
        for e in exits or []:
            e.resolve(code)
        if conn is None:
            client.close()


@routes.route("POST", "/containers/{id}/resize")
def resize(engine, req: Request) -> None:
    cid = engine.container(req.params["id"])
    h, w = req.qint("h", 0), req.qint("w", 0)
    if not h or not w:
        raise HTTPError(400, "resize needs h and w")
    server = req.server                                  # type: ignore[attr-defined]
    for waiter in server.pending_attach.get(cid, []):
        waiter.rows, waiter.cols = h, w
    if engine.container_state(cid).get("Status") not in ("running", "paused"):
        if server.pending_attach.get(cid):
            return
        raise HTTPError(409, f"Container {cid} is not running")
    with engine.attach(cid) as client:
        client.resize(h, w)


# --- logs and views --------------------------------------------------------------------
@routes.route("GET", "/containers/{id}/logs")
def logs(engine, req: Request) -> None:
    cid = engine.container(req.params["id"])
    if not req.qbool("stdout") and not req.qbool("stderr"):
        raise HTTPError(400, "Bad parameters: you must choose at least one stream")
    tty = bool(engine.container_inspect(cid)["Config"].get("Tty"))
    tail = req.q("tail")
    tail_n = None if tail in (None, "", "all") else int(tail) if tail.isdigit() else None
    since = req.q("since")
    until = req.q("until")
    follow = req.qbool("follow")
    stamps = req.qbool("timestamps")
    out = req.stream(200, "application/vnd.docker.raw-stream" if tty
                     else "application/vnd.docker.multiplexed-stream")
    conn = req.conn
    want = {"stdout": req.qbool("stdout"), "stderr": req.qbool("stderr")}
    for entry in engine.logs(cid, follow=follow, tail=tail_n,
                             since=since if since not in (None, "", "0") else None,
                             until=until if until not in (None, "", "0") else None,
                             stop=lambda: conn.peer_gone()):
        if not want.get(entry.stream):
            continue
        data = (entry.time.encode() + b" " + entry.data) if stamps else entry.data
        out.write(data if tty else multiplex(1 if entry.stream == "stdout" else 2, data))
    out.close()


@routes.route("GET", "/containers/{id}/top")
def top(engine, req: Request) -> dict:
    t = engine.top(req.params["id"], req.q("ps_args") or None)
    return {"Titles": t["Titles"], "Processes": t["Processes"]}


@routes.route("GET", "/containers/{id}/changes")
def changes(engine, req: Request) -> list:
    kinds = {"C": 0, "A": 1, "D": 2}
    out = []
    for ch in engine.container_diff(req.params["id"]):
        kind = ch.get("Kind") if isinstance(ch, dict) else None
        if isinstance(kind, str):
            kind = kinds.get(kind, 0)
        out.append({"Path": ch["Path"], "Kind": kind})
    return out


@routes.route("GET", "/containers/{id}/export")
def export(engine, req: Request) -> None:
    cid = engine.container(req.params["id"])
    out = req.stream(200, "application/x-tar")
    engine.export_container(cid, out)
    out.close()





