"""``nutshell system service``: the Docker Engine API on a UNIX socket, on demand.

One thread per client connection (a blocked or slow client holds only its own thread);
every request goes through ``core.Engine``, the same calls the CLI and the app make. The
server exits when no request has been in flight for ``timeout`` seconds (0: never), so it
can be started by systemd socket activation (``LISTEN_FDS``, see contrib/systemd/) and
go away when unused, in keeping with Nutshell having no always-on daemon.

The socket is root: whoever can connect can run a privileged container. It is created
mode 0660 (owner root, the group given with ``--group``) and refused on TCP (there is no
TCP listener at all).
"""

from __future__ import annotations

import faulthandler
import grp
import json
import os
import signal
import socket
import stat
import sys
import threading
import time
import traceback

from . import requestlog
from .http import REASONS, ClientGone, Connection, HTTPError, Request
from .router import MAX_API_VERSION, Router, message_of, status_of

SD_LISTEN_FDS_START = 3


def default_socket(engine) -> str:
    return os.path.join(engine.paths.run, "api.sock")


def activated_socket() -> socket.socket | None:
    """The listening socket systemd passed (``LISTEN_PID``/``LISTEN_FDS``), if any."""
    try:
        if int(os.environ.get("LISTEN_PID", "0")) != os.getpid():
            return None
        n = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    if n < 1:
        return None
    for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(key, None)
    try:
        sock = socket.socket(fileno=SD_LISTEN_FDS_START)
    except OSError as exc:
        raise SystemExit(f"nutshell: fd {SD_LISTEN_FDS_START} (LISTEN_FDS) is not a socket: "
                         f"{exc.strerror}") from None
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise SystemExit("nutshell: the activated socket is not a UNIX stream socket: "
                         "TCP (anyone on the network root on this host) is not served")
    os.set_inheritable(SD_LISTEN_FDS_START, False)
    for extra in range(SD_LISTEN_FDS_START + 1, SD_LISTEN_FDS_START + n):
        os.close(extra)
    return sock


def listen_unix(path: str, group: str | None = None) -> socket.socket:
    """Bind ``path`` (replacing a stale socket, never another kind of file), mode 0660."""
    from core.errors import UsageError

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise UsageError(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)                      # stale: nobody listens
        else:
            raise UsageError(f"{path}: another server is already listening there")
        finally:
            probe.close()
    gid = -1
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid if not group.isdigit() else int(group)
        except KeyError:
            raise UsageError(f"no such group: {group}") from None
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)                # never a moment with a wider mode than 0600
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    os.chown(path, -1, gid)
    os.chmod(path, 0o660)
    sock.listen(128)
    return sock


class Server:
    """The API server: ``serve_forever()`` until idle for ``timeout`` seconds."""

    def __init__(self, engine, sock: socket.socket, timeout: float = 0, log=None,
                 request_log: str | None = None):
        from . import routes

        self.engine = engine
        self.sock = sock
        self.timeout = timeout
        self.router = Router()
        routes.register(self.router)
        self.busy = 0
        self.last_active = time.monotonic()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.log = log or (lambda msg: None)
        self.request_log = request_log
        self.connections: set[Connection] = set()
        # state shared by the handlers: exec instances, attach handshakes
        self.execs: dict[str, dict] = {}
        self.pending_attach: dict[str, list] = {}
        self.pending_exit: dict[str, list] = {}

    # --- accept loop ---------------------------------------------------------------------
    def serve_forever(self) -> None:
        self.sock.settimeout(1.0)
        try:
            while not self.stopping.is_set():
                try:
                    client, _ = self.sock.accept()
                except TimeoutError:
                    if self._idle_expired():
                        self.log("idle: exiting")
                        return
                    continue
                except OSError:
                    if self.stopping.is_set():
                        return
                    raise
                client.settimeout(None)
                t = threading.Thread(target=self._serve_connection, args=(client,), daemon=True,
                                     name="api-conn")
                self._busy(0)
                t.start()
        finally:
            self.stopping.set()
            for conn in list(self.connections):
                conn.close()

    def stop(self) -> None:
        self.stopping.set()

    def _idle_expired(self) -> bool:
        """True (and the server is stopping) when nothing has been in flight for
        ``timeout`` seconds. Decided under the lock that ``_enter`` takes, so a request
        either starts before the decision (and postpones it) or is refused after it."""
        if not self.timeout:
            return False
        with self.lock:
            if self.busy == 0 and time.monotonic() - self.last_active >= self.timeout:
                self.stopping.set()
                return True
            return False

    def _enter(self) -> bool:
        """A request starts: counted in flight, unless the server is already stopping."""
        with self.lock:
            if self.stopping.is_set():
                return False
            self.busy += 1
            self.last_active = time.monotonic()
            return True

    def _busy(self, delta: int) -> None:
        with self.lock:
            self.busy += delta
            self.last_active = time.monotonic()

    # --- one connection ------------------------------------------------------------------
    def _serve_connection(self, client: socket.socket) -> None:
        conn = Connection(client)
        self.connections.add(conn)
        try:
            while not conn.closed:
                try:
                    req = conn.next_request()
                except HTTPError as exc:
                    self._answer_error(conn, exc.status, exc.message)
                    break
                if req is None or not self._enter():
                    break
                try:
                    self._dispatch(req)
                finally:
                    self._busy(-1)
                if req.hijacked or not req.keep_alive or conn.closed or not req.drain():
                    break
        except ClientGone:
            pass
        except Exception:  # noqa: BLE001 - one connection's bug must not stop the server
            self.log("connection error:\n" + traceback.format_exc())
        finally:
            self.connections.discard(conn)
            conn.close()

    def _answer_error(self, conn: Connection, status: int, message: str) -> None:
        body = json.dumps({"message": message}).encode() + b"\n"
        reason = REASONS.get(status, "Bad Request")
        try:
            conn.send(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\nConnection: close\r\n"
                      f"Api-Version: {MAX_API_VERSION}\r\n\r\n".encode() + body)
        except ClientGone:
            pass

    def _dispatch(self, req: Request) -> None:
        req.server_api_version = MAX_API_VERSION
        req.server = self                        # type: ignore[attr-defined]
        started = time.monotonic()
        status = 200
        try:
            handler = self.router.resolve(req)
            result = handler(self.engine, req)
            if not req.responded:
                if result is None:
                    req.send_empty(204)
                else:
                    req.send_json(200, result)
        except ClientGone:
            req.keep_alive = False
            status = 499
        except BaseException as exc:  # noqa: BLE001
            status = status_of(exc)
            if status == 500 and not isinstance(exc, HTTPError):
                from core.errors import NutshellError

                if not isinstance(exc, NutshellError):
                    self.log(f"{req.method} {req.target}:\n" + traceback.format_exc())
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            if req.responded:
                # the headers are gone: a stream ends with an error object where the
                # endpoint has one (pull, build, load), else the connection just closes
                req.keep_alive = False
                writer = getattr(req, "stream_writer", None)
                if writer is not None and not writer.closed:
                    try:
                        writer.json({"errorDetail": {"message": message_of(exc)},
                                     "error": message_of(exc)})
                        writer.close()
                    except ClientGone:
                        pass
            else:
                try:
                    req.send_error(status, message_of(exc))
                except ClientGone:
                    req.keep_alive = False
        finally:
            self._record(req, req.status or status, time.monotonic() - started)

    def _record(self, req: Request, status: int, seconds: float) -> None:
        """Changing requests go to the request log the app's command log shows."""
        self.log(f"{req.method} {req.target} -> {status} ({seconds * 1000:.0f} ms)")
        if not self.request_log or req.method in ("GET", "HEAD"):
            return
        requestlog.append(self.request_log, {
            "time": time.time(), "method": req.method, "path": req.target, "status": status,
            "agent": req.headers.get("user-agent", ""), "peer": req.conn.peer})


def request_log_path(engine) -> str:
    return requestlog.path_for(engine.paths.run)


def serve(engine, socket_path: str | None = None, timeout: float = 0, group: str | None = None,
          verbose: bool = False) -> int:
    faulthandler.register(signal.SIGUSR1, all_threads=True)   # kill -USR1: every thread's stack
    sock = activated_socket()
    path = None
    if sock is None:
        path = socket_path or default_socket(engine)
        sock = listen_unix(path, group)
        sys.stderr.write(f"Nutshell API listening on unix://{path} (API {MAX_API_VERSION})\n")
    else:
        sys.stderr.write("Nutshell API serving the socket passed by systemd\n")
    sys.stderr.flush()
    log = (lambda msg: sys.stderr.write(msg + "\n")) if verbose else None
    server = Server(engine, sock, timeout=timeout, log=log, request_log=request_log_path(engine))
    try:
        # SIGTERM (systemctl stop, kill): leave as on idle, removing our socket file
        signal.signal(signal.SIGTERM, lambda signum, frame: server.stop())
    except ValueError:                               # not the main thread (embedded use)
        pass
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass
    return 0
