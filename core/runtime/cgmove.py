"""Keeping moves of processes between cgroups quick: ``prime_migration``.

Moving a process into a cgroup (a write to ``cgroup.procs``) takes a host-wide lock whose
first writer waits out an RCU grace period (6-20 ms on the hosts measured); a writer that
comes within about one grace period after the last one does not wait. A container's init
joins its cgroup on the start's critical path, so a process with nothing better to do
makes no-op moves of its own just before: a prepared init (boot.py) or exec (enter.py)
while it waits for its request (``prime_until_readable``), the starting command right
after handing a request over (launch.py). The first of those moves is the slow one, so a
prepared interpreter has a child make it while it imports (``prime_in_child``).

Only ``os`` is imported here: the sealed interpreter loads this before its request comes.
"""

import os

CGROUP_ROOT = "/sys/fs/cgroup"
PROC_SELF_CGROUP = "/proc/self/cgroup"

# while waiting: a move every 2 ms, well inside the ~6 ms a grace period takes at the
# least, for at most 2 s (a caller that takes longer, e.g. pulling, is not worth it)
PRIME_EVERY_MS, PRIME_FOR = 2, 2.0


def prime_migration(root: str | None = None) -> bool:
    """One no-op move of our own: we write ourselves into our own cgroup's
    ``cgroup.procs`` (a move to where we are, which changes nothing), so that a move
    that follows within about a grace period is quick (unless the cgroup mount has
    ``favordynmods``, where no move waits). Best effort: False when no write worked,
    which only leaves the next move as slow as it was."""
    root = root or CGROUP_ROOT
    try:
        with open(PROC_SELF_CGROUP) as f:
            ours = f.read()
    except OSError:
        return False
    for line in ours.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[2].startswith("/"):
            continue
        number, controllers, path = parts
        if number == "0" and controllers == "":
            bases = [os.path.join(root, "unified"), root]
        else:
            first = controllers.split(",")[0]
            bases = [os.path.join(root, first.removeprefix("name="))]
        for base in bases:
            target = os.path.join(base, path.lstrip("/"), "cgroup.procs")
            try:
                fd = os.open(target, os.O_WRONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                os.write(fd, b"0")   # 0: the writer, in any PID namespace
                return True
            except OSError:
                pass
            finally:
                os.close(fd)
    return False


def prime_until_readable(fd: int) -> None:
    """Keep cgroup moves quick until ``fd`` is readable (a prepared process's request
    socket): a no-op move every PRIME_EVERY_MS, for at most PRIME_FOR seconds."""
    import select
    import time

    poll = select.poll()
    poll.register(fd, select.POLLIN)
    until = time.monotonic() + PRIME_FOR
    while not poll.poll(PRIME_EVERY_MS) and time.monotonic() < until:
        if not prime_migration():
            return


def prime_in_child(then=None) -> int | None:
    """Fork a child that makes one no-op move (``prime_migration``), then calls ``then``
    (if given; its errors are ignored), and exits; its pid (None when no fork was
    possible). For a prepared interpreter as it starts: its own moves come only after its
    imports, and the first move after a quiet spell is the one that waits out a grace
    period (13-15 ms on a VM measured); if the request came during it, the start waited
    for it (traced: ~9 ms of the median ``run``). Made by a child, that first move
    overlaps the imports, and the moves after it are quick. The child closes every fd
    first: it holds nothing of ours while it waits in the kernel."""
    try:
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:
        try:
            os.closerange(0, 1 << 16)
            prime_migration()
            if then is not None:
                then()
        finally:
            os._exit(0)
    return pid


def reap(pid: int | None) -> None:
    """Wait for ``prime_in_child``'s child (done, or nearly, by the time anyone asks)."""
    if pid is not None:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
