"""The attach protocol's client side (the shim serves it; see shim.py).

A SOCK_SEQPACKET unix socket, one packet per message, first byte the type:

  shim -> client  0x01 stdout | 0x02 stderr | 0x03 exit code (decimal) | 0x04 hello (JSON)
  client -> shim  0x00 stdin  | 0x05 "<rows> <cols>" resize | 0x06 close stdin

Detaching (ctrl-p ctrl-q) is the client's business: it closes its socket and the
container runs on. :class:`DetachDetector` finds the key sequence across reads.
"""

from __future__ import annotations

import _socket  # not socket.py (enum, selectors: ~4 ms of every `run`)
import json
import os

from ..errors import UsageError

STDIN, STDOUT, STDERR, EXIT, HELLO, RESIZE, CLOSE_STDIN = 0, 1, 2, 3, 4, 5, 6
MAX_PAYLOAD = 32 * 1024
DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q


class AttachClient:
    """One connection to a container's shim.

    ``read()`` returns ``(stream, data)`` with stream 1 (stdout) or 2 (stderr),
    ``(3, b"<code>")`` when the container exited, or None at end of file (the shim went
    away, or we closed). ``hello`` is the shim's greeting: tty, stdin, rows, cols.
    """

    def __init__(self, sock: _socket.socket, read_hello: bool = True):
        self.sock = sock
        self.hello: dict = {}
        self._got_hello = False
        self.exit_code: int | None = None
        self._pending: list[tuple[int, bytes]] = []
        if read_hello:
            self._read_hello()

    @classmethod
    def connect(cls, path: str, timeout: float = 5.0) -> AttachClient:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        try:
            sock.settimeout(timeout)
            if len(os.fsencode(path)) < 100:
                sock.connect(path)
            else:  # sun_path is 108 bytes: go through an O_PATH handle on the directory
                dfd = os.open(os.path.dirname(path), os.O_PATH | os.O_CLOEXEC)
                try:
                    sock.connect(f"/proc/self/fd/{dfd}/{os.path.basename(path)}")
                finally:
                    os.close(dfd)
            client = cls(sock)
            sock.settimeout(None)
            return client
        except BaseException:
            sock.close()
            raise

    def _read_hello(self) -> None:
        while not self._got_hello:
            item = self._recv()
            if item is None:
                return
            if item[0] != HELLO:
                self._pending.append(item)

    def _recv(self) -> tuple[int, bytes] | None:
        try:
            data = self.sock.recv(MAX_PAYLOAD + 64)
        except (BlockingIOError, TimeoutError):
            raise
        except ConnectionResetError:
            # The shim closed while a message of ours (a resize, say) was still unread on
            # its side: the kernel reports that reset before the packets still queued for
            # us — the exit code among them. The reset is reported once; read on.
            try:
                data = self.sock.recv(MAX_PAYLOAD + 64, _socket.MSG_DONTWAIT)
            except OSError:
                return None
        except OSError:
            return None
        if not data:
            return None
        kind, payload = data[0], data[1:]
        if kind == HELLO:
            self._got_hello = True
            try:
                self.hello = json.loads(payload)
            except ValueError:
                self.hello = {"tty": False}
        elif kind == EXIT:
            try:
                self.exit_code = int(payload)
            except ValueError:
                self.exit_code = -1
        return kind, payload

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> tuple[int, bytes] | None:
        if self._pending:
            return self._pending.pop(0)
        while True:
            item = self._recv()
            if item is None or item[0] != HELLO:
                return item

    def write(self, data: bytes) -> None:
        for i in range(0, len(data), MAX_PAYLOAD):
            self.sock.sendall(bytes([STDIN]) + data[i:i + MAX_PAYLOAD])

    def resize(self, rows: int, cols: int) -> None:
        try:
            self.sock.send(bytes([RESIZE]) + f"{int(rows)} {int(cols)}".encode())
        except OSError:
            pass

    def close_stdin(self) -> None:
        try:
            self.sock.send(bytes([CLOSE_STDIN]))
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def wait(self) -> int | None:
        """Read (and drop) output until the exit code arrives; None if the shim vanished."""
        while self.exit_code is None:
            if self.read() is None:
                break
        return self.exit_code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class DetachDetector:
    """Finds the detach key sequence in a stream of stdin reads (Docker/podman
    ``pkg/detach``): bytes that might start the sequence are held back until the next
    read shows whether they do."""

    def __init__(self, keys: bytes = DEFAULT_DETACH_KEYS):
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to forward, detach?)"""
        if not self.keys:
            return data, False
        buf = self.held + data
        self.held = b""
        idx = buf.find(self.keys)
        if idx >= 0:
            return buf[:idx], True
        for n in range(min(len(self.keys) - 1, len(buf)), 0, -1):
            if buf.endswith(self.keys[:n]):
                self.held = buf[-n:]
                return buf[:-n], False
        return buf, False


class BadDetachKeys(UsageError, ValueError):
    """A --detach-keys value Docker refuses (a usage error: exit 125, API 400)."""


def parse_detach_keys(spec: str | None) -> bytes:
    """Docker's --detach-keys: ``ctrl-p,ctrl-q``, ``a``, ``ctrl-@``... ("" disables)."""
    if spec is None:
        return DEFAULT_DETACH_KEYS
    out = bytearray()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if part.lower().startswith("ctrl-") and len(part) == 6:
            c = part[5].lower()
            if c == "@":
                out.append(0)
            elif "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
            elif c in "[\\]^_":
                out.append(ord(c) - 64)
            else:
                raise BadDetachKeys(f"invalid detach key: {part}")
        elif len(part) == 1 and ord(part) < 128:
            out.append(ord(part))
        else:
            raise BadDetachKeys(f"invalid detach key: {part}")
    return bytes(out)
