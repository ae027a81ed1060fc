"""Shared layer mounts whose image file is gone: found with ``os`` alone, released.

The layer mounts containers share (imagemount.shared_mount) last until their layer is
deleted through the store, which unmounts them first. A store deleted by hand (``rm -rf``
of a temporary ``--root``, as test suites and CI jobs do) leaves its mounts in its
runtime dir, each holding a loop device and the deleted image file's disk space until
reboot: nothing of that store will ever release them. So each container start sweeps:
the sealed interpreter's priming child (cgmove.prime_in_child), which has nothing else
to do while its interpreter imports, looks at every store's ``layers/`` under the
runtime base and releases the mounts whose loop device's backing file is deleted (also
the mount of a layer file made anew). Finding them needs ``os`` only; the unmount
(ctypes) is imported only when there is one.
"""

from __future__ import annotations

import os

#: the lock file beside the mounts (imagemount.py takes it from here: one definition)
SHARED_LOCK = ".lock"

#: at most this many unmounts per sweep: a sweep must stay short (the next start
#: takes the rest)
MAX_RELEASES = 16


def backing_file_deleted(dev: int) -> bool:
    """Is the block device ``dev`` a loop device whose backing file has no name left?"""
    try:
        with open(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}/loop/backing_file") as f:
            return f.read().rstrip("\n").endswith(" (deleted)")
    except OSError:
        return False


def stale(runtime_base: str) -> list[tuple[str, str]]:
    """(layers dir, mount name) of every shared layer mount under
    ``runtime_base/<store>/layers`` whose image file is deleted."""
    out: list[tuple[str, str]] = []
    try:
        tags = os.listdir(runtime_base)
    except OSError:
        return out
    for tag in tags:
        base = os.path.join(runtime_base, tag, "layers")
        try:
            names = os.listdir(base)
            base_dev = os.stat(base).st_dev
        except OSError:
            continue
        for name in names:
            if name == SHARED_LOCK:
                continue
            try:
                dev = os.stat(os.path.join(base, name)).st_dev
            except OSError:
                continue
            if dev != base_dev and backing_file_deleted(dev):
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
