"""The API request log: every changing request the server handled, one JSON line each, in
``api-requests.log`` in the runtime directory. The server appends; the app's command log
(``H``) reads it to show what clients did through the socket beside its own actions."""

from __future__ import annotations

import json
import os

NAME = "api-requests.log"
MAX_BYTES = 4 << 20        # then the log starts again (it is a recent-activity view)


def path_for(run_dir: str) -> str:
    return os.path.join(run_dir, NAME)


def append(path: str, entry: dict) -> None:
    """One line, one write() on an O_APPEND fd (whole lines even with several servers);
    a log that cannot be written is skipped, never an error for the request."""
    line = (json.dumps(entry) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            if os.fstat(fd).st_size > MAX_BYTES:
                os.ftruncate(fd, 0)
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError:
        pass


def read(path: str, since: float = 0.0, limit: int = 1000) -> list[dict]:
    """The entries at or after ``since`` (seconds since the epoch), oldest first, at most
    ``limit`` (the newest). Lines that are not whole JSON objects are skipped."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - MAX_BYTES))
            data = f.read()
    except OSError:
        return []
    out = []
    for raw in data.splitlines():
        try:
            e = json.loads(raw)
        except ValueError:
            continue
        if isinstance(e, dict) and isinstance(e.get("time"), (int, float)) and e["time"] >= since:
            out.append(e)
    return out[-limit:]


def describe(e: dict) -> str:
    """How the command log shows one request: a shell comment, so "copy all" stays a script."""
    who = ", ".join(x for x in (str(e.get("agent") or ""), str(e.get("peer") or "")) if x)
    return f"# API {e.get('method', '?')} {e.get('path', '?')}" + (f"   ({who})" if who else "")
