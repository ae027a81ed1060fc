"""A module for seal.spawn in tests (tests/integration/test_seal_prepare.py): reads its
request as a sealed child does and reports what it got on the fd named "out"."""

from __future__ import annotations

import os


def main() -> None:
    from core.runtime.start.seal import read_request

    req = read_request()
    out = req["fds"]["out"]
    report = {
        "pid": os.getpid(),
        "fds": req["fds"],
        "inode_of": {name: list(os.fstat(fd)[1:3]) for name, fd in req["fds"].items()},
        "stderr": list(os.fstat(2)[1:3]),
        "payload": req.get("payload"),
        "open": sorted(int(n) for n in os.listdir("/proc/self/fd")),
        "inheritable": {name: os.get_inheritable(fd) for name, fd in req["fds"].items()},
    }
    os.write(2, b"to the log\n")
    os.write(out, repr(report).encode())
    os._exit(0)
