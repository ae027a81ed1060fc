import json
import socket
import threading

import pytest

from core.runtime.attach import AttachClient, DetachDetector, parse_detach_keys


def test_detach_detector_across_reads():
    d = DetachDetector()
    assert d.feed(b"ab\x10") == (b"ab", False)      # held back: might start the sequence
    assert d.feed(b"x") == (b"\x10x", False)         # it did not
    assert d.feed(b"\x10") == (b"", False)
    assert d.feed(b"\x11rest") == (b"", True)
    d = DetachDetector()
    assert d.feed(b"ls\r\x10\x11") == (b"ls\r", True)
    assert DetachDetector(b"").feed(b"\x10\x11") == (b"\x10\x11", False)


def test_parse_detach_keys():
    assert parse_detach_keys(None) == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x") == b"\x01x"
    assert parse_detach_keys("ctrl-@,ctrl-[") == b"\x00\x1b"
    assert parse_detach_keys("") == b""
    with pytest.raises(ValueError):
        parse_detach_keys("ctrl-é")
    with pytest.raises(ValueError):
        parse_detach_keys("abc")


def test_client_protocol_against_a_fake_shim():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    got = []

    def shim():
        b.send(b"\x04" + json.dumps({"tty": True, "stdin": True, "rows": 5, "cols": 6}).encode())
        b.send(b"\x01out")
        b.send(b"\x02err")
        for _ in range(3):
            got.append(b.recv(70000))
        b.send(b"\x03" + b"42")
        b.close()

    t = threading.Thread(target=shim)
    t.start()
    c = AttachClient(a)
    assert c.hello == {"tty": True, "stdin": True, "rows": 5, "cols": 6}
    assert c.read() == (1, b"out")
    assert c.read() == (2, b"err")
    c.write(b"in")
    c.resize(40, 120)
    c.close_stdin()
    assert c.read() == (3, b"42") and c.exit_code == 42
    assert c.read() is None
    t.join()
    assert got == [b"\x00in", b"\x0540 120", b"\x06"]
    c.close()


def test_exit_code_survives_a_shim_that_closes_with_our_resize_unread():
    """A shim that exits before reading the client's last message (run -t sends a resize at
    once) resets the connection; the exit code queued before the close must still arrive
    (the CLI otherwise fell back to `wait` on a --rm container that is gone: exit 125)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    b.send(b"\x04" + json.dumps({"tty": True}).encode())
    c = AttachClient(a)
    c.resize(24, 80)                 # never read by the shim
    b.send(b"\x01/dev/pts/0\r\n")
    b.send(b"\x03" + b"2")
    b.close()
    assert c.read() == (1, b"/dev/pts/0\r\n")
    assert c.read() == (3, b"2") and c.exit_code == 2
    assert c.read() is None
    c.close()


def test_client_splits_large_stdin():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    b.send(b"\x04{}")
    c = AttachClient(a)
    c.write(b"x" * 70000)
    sizes = [len(b.recv(70000)) for _ in range(3)]
    assert sizes == [32769, 32769, 70000 - 65536 + 1]
    c.close()
    b.close()


def test_connect_long_path(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = str(deep / "attach.sock")
    assert len(path) > 108
    import os

    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    dfd = os.open(str(deep), os.O_PATH)
    srv.bind(f"/proc/self/fd/{dfd}/attach.sock")
    os.close(dfd)
    srv.listen(1)

    def accept():
        conn, _ = srv.accept()
        conn.send(b"\x04{\"tty\": false}")
        conn.close()

    t = threading.Thread(target=accept)
    t.start()
    c = AttachClient.connect(path)
    assert c.hello == {"tty": False}
    t.join()
    c.close()
    srv.close()
