"""Shared layer mounts whose image file is gone: found with ``os`` alone, released.

The layer mounts containers share (imagemount.shared_mount) last until their layer is
deleted through the store, which unmounts them first. A store deleted by hand (``rm -rf``
of a temporary ``--root``, as test suites and CI jobs do) leaves its mounts in its
runtime dir, each holding a loop device and the deleted image file's disk space until
reboot: nothing of that store will ever release them. So each container start sweeps:
the sealed interpreter's priming child (cgmove.prime_in_child), which has nothing else
to do while its interpreter imports, reads the mount table for mounts in a store's
``layers/`` under the runtime base and releases those whose loop device's backing file
is deleted (also the mount of a layer file made anew). Finding them needs ``os`` only
(~0.2 ms); the unmount (ctypes) is imported only when there is one.
"""

from __future__ import annotations

import os

#: the lock file beside the mounts (imagemount.py takes it from here: one definition)
SHARED_LOCK = ".lock"

#: at most this many unmounts per sweep: a sweep must stay short (the next start
#: takes the rest)
MAX_RELEASES = 16


def backing_file_deleted(loop_device: str) -> bool:
    """Is ``loop_device`` (``/dev/loopN``) bound to a file that has no name left?"""
    try:
        with open(f"/sys/block/{os.path.basename(loop_device)}/loop/backing_file") as f:
            return f.read().rstrip("\n").endswith(" (deleted)")
    except OSError:
        return False


def stale(runtime_base: str) -> list[tuple[str, str]]:
    """(layers dir, mount name) of every shared layer mount at
    ``runtime_base/<store>/layers/<name>`` whose image file is deleted. Read from the
    mount table, not from the runtime dirs: there may be thousands of those (one per
    store ever used since boot), and only a few mounts."""
    prefix = runtime_base.rstrip("/") + "/"
    out: list[tuple[str, str]] = []
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        fields = line.split()
        if len(fields) < 5 or not fields[4].startswith(prefix):
            continue
        base, name = os.path.split(fields[4])
        if os.path.basename(base) != "layers" or os.path.dirname(os.path.dirname(base)) + "/" != prefix:
            continue
        after = line.split(" - ", 1)[-1].split()
        if len(after) >= 2 and after[1].startswith("/dev/loop") and backing_file_deleted(after[1]):
            out.append((base, name))
    return out


def sweep(runtime_base: str) -> int:
    """Release the stale shared layer mounts under ``runtime_base`` (at most
    MAX_RELEASES); how many. Errors are left for the next sweep."""
    found = stale(runtime_base)[:MAX_RELEASES]
    if not found:
        return 0
    from .imagemount import release_shared

    done = 0
    for base, name in found:
        try:
            done += len(release_shared(base, name))
        except OSError:
            pass
    return done
