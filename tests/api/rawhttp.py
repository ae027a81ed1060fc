"""A raw HTTP/1.1 client on the API's UNIX socket, for the tests that must send what no
well-behaved client sends (broken request lines, huge headers, hand-made chunked bodies)
or look at the framing itself (keep-alive, pipelining, 100-continue, HEAD)."""

from __future__ import annotations

import json
import socket
import time


class Response:
    def __init__(self, status: int, reason: str, headers: dict[str, str], body: bytes):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} {self.body[:200]!r}>"


class Raw:
    """One connection; ``send`` bytes, ``response()`` parses the next answer."""

    def __init__(self, path: str, timeout: float = 15):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> None:
        h = {"Host": "docker"}
        if body is not None:
            h["Content-Length"] = str(len(body))
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
        self.send(head.encode() + b"\r\n" + (body or b""))

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError(f"connection closed; buffered {self.buf!r}")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("connection closed in a body")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, head: bool = False) -> Response:
        """The next response; ``head``: it answers a HEAD (no body whatever it says)."""
        status_line = self._line().decode("latin-1")
        version, status, reason = (status_line.split(" ", 2) + [""])[:3]
        assert version.startswith("HTTP/1."), status_line
        headers: dict[str, str] = {}
        while True:
            line = self._line()
            if not line:
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        code = int(status)
        if head or code in (100, 101, 204, 304):
            return Response(code, reason, headers, b"")
        if "chunked" in headers.get("transfer-encoding", ""):
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._exact(size)
                assert self._exact(2) == b"\r\n"
            return Response(code, reason, headers, body)
        if "content-length" in headers:
            return Response(code, reason, headers, self._exact(int(headers["content-length"])))
        while self._fill():                     # delimited by the end of the connection
            pass
        body, self.buf = self.buf, b""
        return Response(code, reason, headers, body)

    def at_eof(self, timeout: float = 5) -> bool:
        """True when the server closes the connection within ``timeout`` (what it still
        sends until then is read and dropped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return False
            except ConnectionError:
                return True
            if not data:
                return True
        return False


def call(path: str, method: str, target: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> Response:
    """One request on a fresh connection."""
    with Raw(path) as c:
        c.request(method, target, body, headers)
        return c.response(head=method == "HEAD")
