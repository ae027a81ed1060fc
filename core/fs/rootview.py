"""A container's (or an image's) file system as a directory fd, without touching the
host's mount table.

* a running container: ``/proc/<init pid>/root`` — its merged view with everything its
  mount namespace has (volumes, bind mounts, /proc...). The pid is checked against its
  recorded start time after the open, so a recycled pid is never used.
* a stopped container (or an image): a *detached* overlay made with the new mount API
  (``fsopen`` / ``fsconfig`` / ``fsmount``): it is in no mount namespace, nobody else can
  see it, and the kernel unmounts it when the last fd on it is closed — no clean-up to
  forget, no process to fork, safe to use from a threaded caller. Writable views use the
  container's own upper/work dirs; read-only ones stack ``upper`` as the top *lower*
  layer, which also works while the container runs (overlay only warns, index=off).

Every lookup inside a view goes through ``openat2(RESOLVE_IN_ROOT)`` (see cp.py): the
container's symlinks are followed but clamped to its root.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from core.errors import Conflict, NotFound, RuntimeFailure
from core.fs.mountapi import (
    FSCONFIG_CMD_CREATE,
    FSCONFIG_SET_FLAG,
    FSCONFIG_SET_STRING,
    FSMOUNT_CLOEXEC,
    FSOPEN_CLOEXEC,
    MOUNT_ATTR_NODEV,
    MOUNT_ATTR_RDONLY,
    SYS_FSCONFIG,
    SYS_FSMOUNT,
    SYS_FSOPEN,
    _fs_log,
    _sys,
)


def _set(fsfd: int, key: str, value: str | None = None) -> None:
    cmd = FSCONFIG_SET_FLAG if value is None else FSCONFIG_SET_STRING
    try:
        _sys(SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(cmd), key.encode(),
             None if value is None else os.fsencode(value), ctypes.c_int(0))
    except OSError as e:
        raise OSError(e.errno, f"overlay option {key}: {e.strerror} {_fs_log(fsfd)}".strip()) from None


def detached_overlay(lower_top_first: list[str], upper: str | None = None,
                     work: str | None = None, readonly: bool = False) -> int:
    """Mount an overlay nowhere and return an fd on its root (closing it unmounts).

    ``lower_top_first``: the layer directories, topmost first. Without ``upper`` the
    overlay is read-only and needs at least two lower directories (callers with a single
    layer use that directory directly, see :func:`plain_dir`).
    """
    if not lower_top_first:
        raise OSError(errno.EINVAL, "no layers to mount")
    fsfd = _sys(SYS_FSOPEN, b"overlay", ctypes.c_uint(FSOPEN_CLOEXEC))
    try:
        try:
            for d in lower_top_first:           # one at a time: no page limit, no escaping
                _set(fsfd, "lowerdir+", d)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            os.close(fsfd)                      # a kernel before 6.8: one lowerdir string
            fsfd = _sys(SYS_FSOPEN, b"overlay", ctypes.c_uint(FSOPEN_CLOEXEC))
            esc = [d.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")
                   for d in lower_top_first]
            _set(fsfd, "lowerdir", ":".join(esc))
        if upper:
            _set(fsfd, "upperdir", upper)
            _set(fsfd, "workdir", work or "")
        for key in ("redirect_dir", "metacopy", "index"):
            _set(fsfd, key, "off")
        try:
            _sys(SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(FSCONFIG_CMD_CREATE), None,
                 None, ctypes.c_int(0))
        except OSError as e:
            raise OSError(e.errno, f"overlay: {e.strerror} {_fs_log(fsfd)}".strip()) from None
        attrs = MOUNT_ATTR_NODEV | (MOUNT_ATTR_RDONLY if readonly or not upper else 0)
        return _sys(SYS_FSMOUNT, ctypes.c_int(fsfd), ctypes.c_uint(FSMOUNT_CLOEXEC),
                    ctypes.c_uint(attrs))
    finally:
        with contextlib.suppress(OSError):
            os.close(fsfd)


def plain_dir(path: str) -> int:
    return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def layers_view(lower_base_first: list[str], upper: str | None = None) -> int:
    """A read-only merged view of ``lower`` (base first) with ``upper`` on top."""
    from core.fs.imagemount import readable_all

    stack = ([upper] if upper else []) + readable_all(list(reversed(lower_base_first)))
    if len(stack) == 1:
        return plain_dir(stack[0])
    return detached_overlay(stack, readonly=True)


@dataclass
class ContainerView:
    """An fd on a container's root, how it was obtained, and its user mounts."""

    cid: str
    rootfd: int
    running: bool
    writable: bool
    mounts: list[dict] = field(default_factory=list)   # config.json "Mounts"
    pid: int = 0


def _lower_dirs(engine, cfg: dict) -> list[str]:
    from core.fs.imagemount import readable_all

    return readable_all(engine._runtime._lower_dirs(cfg))


@contextlib.contextmanager
def container_view(engine, ref: str, write: bool = False, live: bool = True) -> Iterator[ContainerView]:
    """The container's root as an fd, for the duration of the block.

    ``live``: a running container is seen through /proc/<pid>/root (its mounts included);
    otherwise (or when it is stopped) through a detached overlay of its layers and upper
    dir — read-only unless ``write``; writing a stopped container holds its operation
    lock so it cannot start meanwhile.
    """
    from core.runtime.procstat import proc_start_time

    rt = engine._runtime
    cid = rt.resolve(ref)
    cfg = rt.records.read_config(cid)
    st = rt.state(cid)
    cdir = engine.paths.container(cid)
    mounts = list(cfg.get("Mounts") or [])
    running = st.get("Status") in ("running", "paused") and bool(st.get("Pid"))
    if running and live:
        pid = int(st["Pid"])
        try:
            fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            fd = -1
        if fd >= 0 and proc_start_time(pid) == st.get("PidStartTime"):
            try:
                yield ContainerView(cid, fd, True, write, mounts, pid)
            finally:
                os.close(fd)
            return
        if fd >= 0:
            os.close(fd)
        st = rt.state(cid)                  # it stopped under us: fall through
        running = st.get("Status") in ("running", "paused")
    lower = _lower_dirs(engine, cfg)
    upper = os.path.join(cdir, "upper")
    if write:
        if running:
            raise Conflict(f"container {cid[:12]} is running; cannot write to its layers offline")
        with rt.records.oplock(cid):
            st = rt.state(cid)
            if st.get("Status") in ("running", "paused"):
                raise Conflict(f"container {cid[:12]} started meanwhile; try again")
            work = os.path.join(cdir, "work")
            os.makedirs(work, mode=0o700, exist_ok=True)
            with _mounted(cid, lambda: detached_overlay(list(reversed(lower)) if lower else [],
                                                        upper, work)) as fd:
                yield ContainerView(cid, fd, False, True, mounts)
        return
    with _mounted(cid, lambda: layers_view(lower, upper)) as fd:
        yield ContainerView(cid, fd, running, False, mounts)


@contextlib.contextmanager
def _mounted(cid: str, mount: Callable[[], int]) -> Iterator[int]:
    """The fd ``mount()`` returns, closed (so unmounted) on leaving; a failure to mount
    is a RuntimeFailure naming the container."""
    try:
        fd = mount()
    except OSError as e:
        raise RuntimeFailure(f"cannot mount the file system of {cid[:12]}: {e.strerror or e}") from None
    try:
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def image_view(engine, image) -> Iterator[int]:
    """A read-only fd on the merged root of ``image`` (an Image record)."""
    lower = engine.store.layer_dirs(image)
    if not lower:
        raise NotFound(f"image {image.short_id} has no layers")
    fd = layers_view(lower)
    try:
        yield fd
    finally:
        os.close(fd)
