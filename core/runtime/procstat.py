"""A process named for good: its pid and its start time, read from /proc.

``os`` only (no ctypes): ``ps``, ``inspect``, ``logs`` and the other verbs that read a
container's state reconcile it with the processes it names, and need nothing else of
core.runtime.linux (ctypes and libc's prototypes: ~1.5 ms of each such command).
"""

from __future__ import annotations


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks); None if the pid is gone.

    A pid plus its start time names one process for good: pids are reused, start times
    of a reused pid differ. That is how state is reconciled with reality.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    try:
        rest = data[data.rindex(b")") + 2:].split()
        if rest[0] == b"Z":  # a zombie no longer runs anything
            return None
        return int(rest[19])
    except (ValueError, IndexError):
        return None
