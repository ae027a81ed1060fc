"""HTTP/1.1 on one accepted connection: requests in, JSON, chunked streams and hijacks out.

Small on purpose: the Docker Engine API needs keep-alive, request bodies by length or
chunked (the CLI streams build contexts and ``cp`` archives chunked), chunked responses for
the streaming endpoints (pull progress, logs -f, events, stats) and the connection
*hijack* of ``attach`` and ``exec start`` (the HTTP connection becomes a raw
bidirectional byte stream). The standard library's http.server hides the socket behind a
buffered reader, which is exactly what a hijack must take over, so this is written
against the socket.

Limits against hostile clients: a request line and headers of at most 64 KiB in all, JSON
bodies of at most 16 MiB (streamed bodies are not held in memory), a client that sends
nothing for ``IDLE_TIMEOUT`` seconds between requests or in the middle of one (its head
or its body) is dropped, an unread body of more than ``DRAIN_LIMIT`` closes the
connection rather than being read, and a client that stops reading its response is
dropped after ``SEND_TIMEOUT`` seconds (writes block no one else: each connection has its
own thread). The environment variables ``NUTSHELL_API_IDLE_TIMEOUT`` and
``NUTSHELL_API_SEND_TIMEOUT`` override the two timeouts (the tests use short ones).
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import struct
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

MAX_HEAD = 64 * 1024
MAX_JSON_BODY = 16 << 20
DRAIN_LIMIT = 256 * 1024         # unread body skipped to keep a connection; more: it closes
IDLE_TIMEOUT = 120.0
SEND_TIMEOUT = 30.0
READ_CHUNK = 64 * 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")

REASONS = {
    100: "Continue", 101: "UPGRADED", 200: "OK", 201: "Created", 204: "No Content",
    304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 411: "Length Required",
    413: "Payload Too Large", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
}


def idle_timeout() -> float:
    """``IDLE_TIMEOUT``, or ``NUTSHELL_API_IDLE_TIMEOUT`` seconds when set: how long a
    client may send nothing between requests, or in the middle of a request's head or
    body, before it is dropped."""
    try:
        value = float(os.environ.get("NUTSHELL_API_IDLE_TIMEOUT", "") or IDLE_TIMEOUT)
    except ValueError:
        return IDLE_TIMEOUT
    return value if value > 0 else IDLE_TIMEOUT


def send_timeout() -> float:
    """``SEND_TIMEOUT``, or ``NUTSHELL_API_SEND_TIMEOUT`` seconds when set (the tests
    set a short one to see a client that never reads dropped)."""
    try:
        value = float(os.environ.get("NUTSHELL_API_SEND_TIMEOUT", "") or SEND_TIMEOUT)
    except ValueError:
        return SEND_TIMEOUT
    return value if value > 0 else SEND_TIMEOUT


class HTTPError(Exception):
    """An error with an HTTP status; the body is Docker's ``{"message": ...}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class ClientGone(Exception):
    """The client closed the connection or stopped reading."""


class Connection:
    """One client connection: a buffered reader over the socket and the write side."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._buf = bytearray()
        self._eof = False
        self.closed = False
        self.peer = ""
        try:
            # SO_PEERCRED: who is on the other end (for the command log)
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid, uid, gid = struct.unpack("3i", creds)
            self.peer = f"pid {pid} uid {uid}"
        except OSError:
            pass
        # Writes that block longer than SEND_TIMEOUT fail (a client that never reads);
        # reads have no timeout except between requests (see next_request).
        timeout = send_timeout()
        tv = struct.pack("ll", int(timeout), int((timeout % 1) * 1e6))
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
        except OSError:
            pass

    # --- reading -------------------------------------------------------------------------
    def _fill(self, timeout: float | None = None) -> bool:
        if self._eof:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(READ_CHUNK)
        except (TimeoutError, ConnectionError, OSError):
            data = b""
        finally:
            try:
                self.sock.settimeout(None)
            except OSError:
                pass
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def read_some(self, limit: int = READ_CHUNK, timeout: float | None = None) -> bytes:
        """What is buffered, else one read from the socket (b"" at end of file, or when
        nothing came for ``timeout`` seconds: the connection is then done)."""
        if not self._buf and not self._fill(timeout):
            return b""
        out = bytes(self._buf[:limit])
        del self._buf[:limit]
        return out

    def read_exact(self, n: int, timeout: float | None = None) -> bytes:
        while len(self._buf) < n:
            if not self._fill(timeout):
                raise HTTPError(400, "unexpected end of request body")
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read_line(self, limit: int = MAX_HEAD, timeout: float | None = None) -> bytes | None:
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line = bytes(self._buf[:i + 1])
                del self._buf[:i + 1]
                return line
            if len(self._buf) > limit:
                raise HTTPError(431, "request header too large")
            if not self._fill(timeout):
                return None

    def next_request(self) -> Request | None:
        """The next request's line and headers, or None when the client is done."""
        idle = idle_timeout()
        line = self.read_line(timeout=idle)
        while line in (b"\r\n", b"\n"):          # tolerated between requests
            line = self.read_line(timeout=idle)
        if not line:
            return None
        total = len(line)
        try:
            method, target, version = line.decode("latin-1").split()
        except ValueError:
            raise HTTPError(400, "malformed request line") from None
        if not version.startswith("HTTP/1."):
            raise HTTPError(400, f"unsupported protocol {version}")
        headers: dict[str, str] = {}
        while True:
            h = self.read_line(timeout=idle)
            if h is None:
                return None
            total += len(h)
            if total > MAX_HEAD:
                raise HTTPError(431, "request header too large")
            if h in (b"\r\n", b"\n"):
                break
            name, sep, value = h.decode("latin-1").partition(":")
            if not sep:
                raise HTTPError(400, "malformed header line")
            key = name.strip().lower()
            headers[key] = (headers[key] + ", " if key in headers else "") + value.strip()
        return Request(self, method.upper(), target, version, headers)

    # --- writing -------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            self.closed = True
            raise ClientGone(str(exc)) from None

    def peer_gone(self) -> bool:
        """True when the client has closed the connection (for endpoints that only write).
        A client that only shut down its sending side (the docker CLI does so on a hijacked
        attach without stdin) is still there: it reads on."""
        if self.closed:
            return True
        try:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN | select.POLLRDHUP)
            events = poller.poll(0)
        except (OSError, ValueError):
            return True
        return any(ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, ev in events)

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class Request:
    """One request. ``path`` is without the ``/vN.NN`` prefix; ``api_version`` is what the
    client asked for (or the server's default); ``params`` holds the route's captures."""

    def __init__(self, conn: Connection, method: str, target: str, http_version: str,
                 headers: dict[str, str]):
        self.conn = conn
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers
        parts = urlsplit(target)
        self.raw_path = unquote(parts.path)
        self.path = self.raw_path
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self.api_version = ""
        self.params: dict[str, str] = {}
        self.responded = False
        self.status = 0
        self.hijacked = False
        self.keep_alive = (http_version == "HTTP/1.1"
                           and "close" not in headers.get("connection", "").lower())
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        try:
            self._remaining = int(headers.get("content-length", "0") or 0)
        except ValueError:
            raise HTTPError(400, "bad Content-Length") from None
        if self._remaining < 0:
            raise HTTPError(400, "bad Content-Length")
        self._chunk_left = 0
        self._body_done = not self._chunked and self._remaining == 0
        # "Expect: 100-continue": the interim answer goes out when the handler first reads
        # the body; a request answered without reading it ends its connection instead
        self._expect_continue = (headers.get("expect", "").lower() == "100-continue"
                                 and not self._body_done)

    # --- query helpers -------------------------------------------------------------------
    def q(self, name: str, default: str | None = None) -> str | None:
        v = self.query.get(name)
        return v[-1] if v else default

    def qlist(self, name: str) -> list[str]:
        return list(self.query.get(name, []))

    def qbool(self, name: str, default: bool = False) -> bool:
        v = self.q(name)
        if v is None:
            return default
        return v.lower() not in ("", "0", "false", "no")

    def qint(self, name: str, default: int | None = None) -> int | None:
        v = self.q(name)
        if v is None or v == "":
            return default
        try:
            return int(v)
        except ValueError:
            raise HTTPError(400, f"invalid value for {name}: {v!r} is not an integer") from None

    def qjson(self, name: str, default: Any = None) -> Any:
        v = self.q(name)
        if not v:
            return default
        try:
            return json.loads(v)
        except ValueError:
            raise HTTPError(400, f"invalid JSON in the {name} parameter") from None

    # --- body ----------------------------------------------------------------------------
    def read(self, n: int = READ_CHUNK) -> bytes:
        """Up to ``n`` bytes of the body (b"" at its end), by length or chunked."""
        if self._body_done:
            return b""
        if self._expect_continue:
            self._expect_continue = False
            self.conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        # a client that stalls mid-body is dropped (it would hold the request in flight,
        # and so the server up, for ever)
        idle = idle_timeout()
        if not self._chunked:
            data = self.conn.read_some(min(n, self._remaining), idle)
            if not data:
                raise HTTPError(400, "unexpected end of request body")
            self._remaining -= len(data)
            self._body_done = self._remaining == 0
            return data
        if self._chunk_left == 0:
            line = self.conn.read_line(limit=1024, timeout=idle)
            if line is None:
                raise HTTPError(400, "unexpected end of chunked body")
            size = line.split(b";")[0].strip()
            if not _CHUNK_SIZE.fullmatch(size):     # no sign, no 0x, no _, not absurd
                raise HTTPError(400, "malformed chunk size")
            self._chunk_left = int(size, 16)
            if self._chunk_left == 0:         # the last chunk, then trailers to a blank line
                while True:
                    t = self.conn.read_line(limit=MAX_HEAD, timeout=idle)
                    if t is None or t in (b"\r\n", b"\n"):
                        break
                self._body_done = True
                return b""
        data = self.conn.read_some(min(n, self._chunk_left), idle)
        if not data:
            raise HTTPError(400, "unexpected end of chunked body")
        self._chunk_left -= len(data)
        if self._chunk_left == 0 and self.conn.read_exact(2, idle) != b"\r\n":   # after each chunk
            raise HTTPError(400, "malformed chunked body: no CRLF after a chunk")
        return data

    def body(self, limit: int = MAX_JSON_BODY) -> bytes:
        out = bytearray()
        while True:
            data = self.read()
            if not data:
                return bytes(out)
            out += data
            if len(out) > limit:
                raise HTTPError(413, f"request body larger than {limit} bytes")

    def json(self, default: Any = None, kind: type | None = dict) -> Any:
        raw = self.body()
        if not raw.strip():
            return default
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise HTTPError(400, f"invalid JSON: {exc}") from None
        if kind is not None and not isinstance(value, kind):
            raise HTTPError(400, f"invalid JSON: expected an object, got {type(value).__name__}")
        return value

    def drain(self, limit: int = DRAIN_LIMIT) -> bool:
        """Read what is left of the body so the next request can be parsed; False when
        the body could not be read or is longer than ``limit`` (the connection must
        close: cheaper than reading a large upload nobody wants)."""
        if self._expect_continue:         # the client waits to be told to send it: it never will
            return False
        try:
            while limit > 0:
                data = self.read()
                if not data:
                    return True
                limit -= len(data)
            return self._body_done
        except (HTTPError, OSError):
            return False

    # --- responses -----------------------------------------------------------------------
    def _head(self, status: int, headers: dict[str, str]) -> bytes:
        self.status = status
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
        base = {"Api-Version": self.server_api_version, "Docker-Experimental": "false",
                "Ostype": "linux", "Server": "Nutshell"}
        base.update(headers)
        lines += [f"{k}: {v}" for k, v in base.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    server_api_version = ""    # set by the router

    def send_bytes(self, status: int, data: bytes, content_type: str = "text/plain; charset=utf-8",
                   headers: dict[str, str] | None = None) -> None:
        h = {"Content-Type": content_type, "Content-Length": str(len(data))}
        if not self.keep_alive:
            h["Connection"] = "close"
        h.update(headers or {})
        self.responded = True
        self.conn.send(self._head(status, h) + (b"" if self.method == "HEAD" else data))

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(obj).encode() + b"\n", "application/json", headers)

    def send_empty(self, status: int = 204, headers: dict[str, str] | None = None) -> None:
        h = {"Content-Length": "0"} if status != 204 else {}
        h.update(headers or {})
        self.responded = True
        self.conn.send(self._head(status, h))

    def send_error(self, status: int, message: str) -> None:
        self.send_json(status, {"message": message})

    def stream(self, status: int = 200, content_type: str = "application/json",
               headers: dict[str, str] | None = None) -> ChunkedWriter:
        """Start a chunked response; write to the result, then ``close()`` it."""
        h = {"Content-Type": content_type, "Transfer-Encoding": "chunked"}
        h.update(headers or {})
        self.responded = True
        self.conn.send(self._head(status, h))
        return ChunkedWriter(self.conn, head=self.method == "HEAD")

    def hijack(self, content_type: str = "application/vnd.docker.raw-stream") -> Connection:
        """Take the connection over as a raw stream (attach, exec start). With an
        ``Upgrade: tcp`` request the answer is 101, else 200; either way the HTTP framing
        ends here and the connection closes when the stream does."""
        upgrade = "upgrade" in self.headers.get("connection", "").lower() or "upgrade" in self.headers
        if upgrade:
            h = {"Content-Type": content_type, "Connection": "Upgrade", "Upgrade": "tcp"}
            status = 101
        else:
            h = {"Content-Type": content_type}
            status = 200
        self.responded = True
        self.hijacked = True
        self.keep_alive = False
        self.conn.send(self._head(status, h))
        return self.conn


class ChunkedWriter:
    """The body of a chunked response. ``write`` sends one chunk (nothing for b""); it is
    a binary file to whoever writes into it (tar writers, exports)."""

    def __init__(self, conn: Connection, head: bool = False):
        self.conn = conn
        self.closed = False
        self.head = head            # the answer to a HEAD: headers only, no chunks at all

    def write(self, data: bytes) -> int:
        if data and not self.head:
            self.conn.send(b"%x\r\n%s\r\n" % (len(data), bytes(data)))
        return len(data)

    def flush(self) -> None:
        pass

    def json(self, obj: Any) -> None:
        self.write(json.dumps(obj).encode() + b"\n")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if not self.head:
                self.conn.send(b"0\r\n\r\n")


def multiplex(stream: int, data: bytes) -> bytes:
    """Docker's stream framing for non-TTY attach/logs/exec: one 8-byte header (stream
    0 stdin, 1 stdout, 2 stderr; three zero bytes; big-endian length) per frame."""
    return struct.pack(">BxxxL", stream, len(data)) + data
