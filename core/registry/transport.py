"""HTTP for registries: stdlib ``http.client`` + ``ssl``, a per-host connection pool,
manual redirects.

Why not urllib: ``urllib.request`` copies the ``Authorization`` header to whatever host a
redirect points at (checked on CPython 3.11), which is how registry credentials leak to
CDNs (containerd CVE-2020-15157). Here redirects are followed by hand and the
``Authorization``/``Cookie`` headers are dropped for good as soon as the origin (scheme,
host, port) changes. No ``Accept-Encoding`` is ever sent: blob bytes must arrive exactly
as they were hashed.

This module knows nothing about registries: status codes, auth and retries are the
client's job (core/registry/client.py).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from ..errors import RegistryError
from .hosts import RegistryConfig

REDIRECT_CODES = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 10
MAX_IDLE_PER_HOST = 8
BLOCKSIZE = 256 * 1024        # how much of a file body http.client sends per write
USER_AGENT = "nutshell/0.1 (+python http.client)"
SENSITIVE_HEADERS = ("authorization", "cookie", "proxy-authorization")


class RegistryUnreachable(RegistryError):
    """The registry could not be reached at all (refused, no such host, TLS failure)."""


class ConnectionDropped(RegistryError):
    """A connection failed in a way a retry may fix (reset, timeout, closed early)."""


# Errors that mean "the connection went away"; a retry (or a Range resume) may work.
TRANSIENT_ERRORS = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
                    http.client.IncompleteRead, http.client.RemoteDisconnected,
                    http.client.BadStatusLine, TimeoutError, socket.timeout)


@dataclass(frozen=True)
class Origin:
    """Where requests go: scheme, host and whether TLS certificates are verified."""
    scheme: str
    host: str      # as in the URL's netloc: host[:port]
    verify: bool

    def key(self) -> tuple:
        return (self.scheme, self.host.lower(), self.verify)


def origin_of(url: str, verify: bool = True) -> Origin:
    parts = urlsplit(url)
    netloc = parts.netloc
    # normalise default ports away so https://h and https://h:443 compare equal
    if parts.scheme == "https" and netloc.endswith(":443"):
        netloc = netloc[:-4]
    if parts.scheme == "http" and netloc.endswith(":80"):
        netloc = netloc[:-3]
    return Origin(parts.scheme, netloc, verify)


class Response:
    """One HTTP response; the body is read lazily. ``close()`` gives the connection back."""

    def __init__(self, transport: Transport, origin: Origin, conn, resp: http.client.HTTPResponse,
                 url: str, method: str):
        self._transport = transport
        self._origin = origin
        self._conn = conn
        self._resp = resp
        self.url = url
        self.method = method
        self.status: int = resp.status
        self.reason: str = resp.reason
        self.headers = resp.headers
        self._closed = False

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def header_all(self, name: str) -> list[str]:
        return self.headers.get_all(name) or []

    @property
    def content_length(self) -> int | None:
        v = self.headers.get("Content-Length")
        try:
            return int(v) if v is not None else None
        except ValueError:
            return None

    def read(self, n: int = -1) -> bytes:
        if self._closed:
            return b""
        return self._resp.read(n if n >= 0 else None)

    def read1(self, n: int) -> bytes:
        """Up to n bytes of what has arrived (one receive at most)."""
        data = self._resp.read1(n)
        if self._resp.length == 0 and not self._resp.isclosed():
            self._resp.read()  # the body is complete: mark it so, so the connection is reused
        return data

    def readinto(self, b) -> int:
        if self._closed:
            return 0
        return self._resp.readinto(b)

    def read_limited(self, limit: int, what: str = "response",
                     stall: tuple[float, float] | None = None) -> bytes:
        """The whole body, refusing more than ``limit`` bytes (c/image iolimits). ``stall``:
        (seconds, bytes/s): a body arriving slower than that over the window is dropped as
        stalled (a retry may fix it), as blob downloads are."""
        cl = self.content_length
        if cl is not None and cl > limit:
            self.close(reuse=False)
            raise RegistryError(f"{what} too large: {cl} bytes (limit {limit})")
        chunks, total = [], 0
        window = (time.monotonic(), 0)
        while True:
            b = self.read1(min(65536, limit + 1 - total))
            if not b:
                break
            chunks.append(b)
            total += len(b)
            if stall and stall[0] and time.monotonic() - window[0] >= stall[0]:
                elapsed, moved = time.monotonic() - window[0], total - window[1]
                if moved < stall[1] * elapsed:
                    self.close(reuse=False)
                    raise ConnectionDropped(f"{what} stalled: {moved} bytes in {elapsed:.0f} s "
                                            f"(under {stall[1]:.0f} bytes/s)")
                window = (time.monotonic(), total)
            if total > limit:
                self.close(reuse=False)
                raise RegistryError(f"{what} too large: over {limit} bytes")
        data = b"".join(chunks)
        if cl is not None and len(data) != cl:
            self.close(reuse=False)
            raise ConnectionDropped(f"{what} cut short: got {len(data)} of {cl} bytes")
        self.close()
        return data

    def drain(self, limit: int = 1 << 20) -> bytes:
        """Read and discard a (small) error body so the connection can be reused."""
        try:
            return self.read_limited(limit, "error body")
        except (RegistryError, *TRANSIENT_ERRORS, OSError):
            self.close(reuse=False)
            return b""

    def close(self, reuse: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        resp, conn = self._resp, self._conn
        if reuse and resp.isclosed() and not resp.will_close:
            self._transport._release(self._origin, conn)
        else:
            try:
                resp.close()
            finally:
                conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(reuse=exc[0] is None)


class _HTTPConnection(http.client.HTTPConnection):
    """No Nagle: a request's small writes must not wait for delayed ACKs (Go does the same)."""

    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _HTTPSConnection(http.client.HTTPSConnection):
    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Transport:
    """A thread-safe per-origin pool of ``http.client`` connections."""

    def __init__(self, config: RegistryConfig, user_agent: str = USER_AGENT):
        self.config = config
        self.user_agent = user_agent
        self._idle: dict[tuple, list] = {}
        self._lock = threading.Lock()

    # --- pool ------------------------------------------------------------------------
    def _new_conn(self, origin: Origin):
        timeout = self.config.timeout
        if origin.scheme == "https":
            host = origin.host
            ctx = self.config.ssl_context(host, origin.verify)
            return _HTTPSConnection(host, timeout=timeout, context=ctx, blocksize=BLOCKSIZE)
        if origin.scheme == "http":
            return _HTTPConnection(origin.host, timeout=timeout, blocksize=BLOCKSIZE)
        raise RegistryError(f"unsupported URL scheme {origin.scheme!r}")

    def _acquire(self, origin: Origin):
        with self._lock:
            idle = self._idle.get(origin.key())
            if idle:
                return idle.pop(), True
        return self._new_conn(origin), False

    def _release(self, origin: Origin, conn) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin.key(), [])
            if len(idle) < MAX_IDLE_PER_HOST:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            conns = [c for lst in self._idle.values() for c in lst]
            self._idle.clear()
        for c in conns:
            c.close()

    # --- one request -----------------------------------------------------------------
    def _send_once(self, origin: Origin, method: str, target: str, headers: dict, body) -> tuple:
        replayable = body is None or isinstance(body, (bytes, bytearray, memoryview))
        for attempt in (0, 1):
            conn, reused = self._acquire(origin)
            try:
                conn.request(method, target, body=body, headers=headers)
                resp = conn.getresponse()
                return conn, resp
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    ConnectionAbortedError):
                conn.close()
                # a pooled keep-alive connection the server already closed: retry once fresh
                if reused and replayable and attempt == 0:
                    continue
                raise
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")

    def request(self, method: str, url: str, headers: dict | None = None, body=None, *,
                verify: bool = True, follow_redirects: bool = True) -> Response:
        """Send one request, following redirects for GET/HEAD by hand.

        Credentials (``Authorization``, ``Cookie``) are dropped as soon as a redirect
        leaves the original origin and are never sent again for this request.
        """
        hdrs = {"User-Agent": self.user_agent}
        hdrs.update(headers or {})
        start = origin_of(url, verify)
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            origin = origin_of(current, verify)
            if origin.key() != start.key():
                hdrs = {k: v for k, v in hdrs.items() if k.lower() not in SENSITIVE_HEADERS}
            parts = urlsplit(current)
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            try:
                conn, resp = self._send_once(origin, method, target, hdrs, body)
            except ConnectionRefusedError:
                raise RegistryUnreachable(
                    f"cannot connect to registry {origin.host}: connection refused") from None
            except socket.gaierror as exc:
                raise RegistryUnreachable(
                    f"cannot resolve registry host {origin.host}: {exc.strerror or exc}") from None
            except ssl.SSLCertVerificationError as exc:
                raise RegistryUnreachable(
                    f"TLS certificate of {origin.host} not trusted: {exc.verify_message or exc}",
                    hint=f"put its CA in certs.d/{origin.host}/ca.crt or use --tls-verify=false",
                ) from None
            except OSError as exc:
                if isinstance(exc, (ssl.SSLError,)) or isinstance(exc, TRANSIENT_ERRORS):
                    raise
                if exc.errno is not None and exc.errno in (101, 113):  # unreachable net/host
                    raise RegistryUnreachable(
                        f"cannot connect to registry {origin.host}: {exc.strerror}") from None
                raise
            r = Response(self, origin, conn, resp, current, method)
            if follow_redirects and method in ("GET", "HEAD") and r.status in REDIRECT_CODES:
                loc = r.header("Location")
                r.drain()
                if not loc:
                    raise RegistryError(f"redirect without Location from {origin.host}")
                current = urljoin(current, loc)
                continue
            return r
        raise RegistryError(f"too many redirects for {url}")
