"""The container's init: runs in a freshly forked, single-threaded child that is PID 1 of
the container's new PID namespace, and ends in execve of the payload.

Its parent is boot.py, running in a sealed interpreter (seal.py): the init's
/proc/self/exe is never the host's Python binary.

Order (runc's standard_init_linux.go), one function per step: close inherited fds and
become not dumpable, join the container's cgroup (both shared with exec, process.py),
``new_namespaces`` (mount, UTS, IPC, net, cgroup; loopback up, hostname),
``build_rootfs`` (see rootfs.py), ``switch_root`` (pivot_root, masked/read-only paths),
``prepare_cwd_and_root``, then what init and exec share (process.become): console or
stdio (console.py), capabilities, no_new_privs, seccomp, user and groups, close fds, cwd
verified, look the command up, signals reset, execve.

Talks to its parent over a SOCK_SEQPACKET socket whose end here is close-on-exec:

  init -> parent   b"P" + SCM_RIGHTS(fd)   the PTY master (allocated from the container's
                                           own /dev/pts, as runc does)
  init -> parent   b"E<code> <message>"    set-up or exec failed; init exits with <code>
  (end of file)                            execve succeeded

Exit codes follow Docker: 127 command not found, 126 not executable, 125 anything else.
"""

from __future__ import annotations

import os

from .. import linux
from . import process, rootfs
from .initspec import InitSpec
from .process import InitError, report


def run(spec: InitSpec, sync_fd: int, stdio: tuple[int | None, int | None, int | None],
        go_fd: int | None = None) -> None:
    """Never returns: execs the payload or exits with Docker's code. ``go_fd``: the go
    pipe, when the starter still has work to finish (see below)."""
    code = 125
    _go["fd"] = go_fd
    try:
        _init(spec, sync_fd, stdio)
    except InitError as e:
        code, message = e.code, e.message
    except OSError as e:
        message = str(e)
    except BaseException as e:  # noqa: BLE001
        message = f"{type(e).__name__}: {e}"
    aborted = _quiet_go()
    if aborted is not None:  # the starter's failure is the cause (it may have removed
        code, message = aborted.code, aborted.message  # the netns we could not join)
    report(sync_fd, code, message)
    os._exit(code)


# The go pipe (``go_fd``): when the starter still has work to finish before the
# payload may run (the network: see launch.py), the init does everything else, then
# waits here for b"G"; b"X<message>" or end of file (the starter died) aborts.
# An init that fails on its own waits too before it reports, so that its shim cleans up
# only after the starter is done setting things up.
_go: dict = {"fd": None}


def await_go() -> None:
    fd = _go["fd"]
    if fd is None:
        return
    _go["fd"] = None
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    if data[:1] != b"G":
        raise InitError(125, data[1:].decode(errors="replace").strip()
                        or "container start aborted: its starter went away")


def _quiet_go() -> InitError | None:
    """Wait for the starter (if it has not spoken yet); its abort, if it aborted."""
    try:
        await_go()
    except InitError as e:
        return e
    except OSError:
        pass
    return None


def _init(spec: InitSpec, sync_fd: int, stdio) -> None:
    """The init's steps, in runc's order (standard_init_linux.go)."""
    keep = {sync_fd} | {fd for fd in stdio if fd is not None}
    if _go["fd"] is not None:
        keep.add(_go["fd"])
    try:
        lower, layer_fds = rootfs.mount_layer_images(
            list(spec.lower_dirs),
            os.path.join(spec.runtime_root, "layers") if spec.runtime_root else None)
    except OSError as e:
        raise InitError(125, f"mounting the image layers: {e.strerror or e}") from None
    keep.update(layer_fds)
    process.shut_out(keep)
    # into the container's cgroup before anything else: everything that follows, the
    # payload and all its children are counted and limited there. (runc has the parent
    # write the child's pid and then release it over a pipe; joining from here, before
    # any code but ours runs, is as safe and keeps the shim's start off this path.)
    process.join_cgroups(process.open_cgroups(spec.cgroups_required or [],
                                              spec.cgroups_optional or []))
    new_namespaces(spec)
    build_rootfs(spec, lower)
    for fd in layer_fds:        # the overlay holds its layers now
        os.close(fd)
    switch_root(spec)
    prepare_cwd_and_root(spec)
    # the rest is what exec's child does too (process.py); the starter's go comes once
    # our identity is set, before the fds are closed
    process.become(spec, sync_fd, stdio, console_bind=True, before_close=await_go)


def new_namespaces(spec: InitSpec) -> None:
    """Mount, UTS, IPC and cgroup namespaces, and the network's (a new one, the pinned
    one of the network area, or the host's); loopback up; hostname. The PID namespace
    was entered by being forked into it."""
    flags = linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC | linux.CLONE_NEWCGROUP
    if spec.network_mode == "none":
        flags |= linux.CLONE_NEWNET
    linux.unshare(flags)
    if spec.netns:
        fd = os.open(spec.netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            linux.setns(fd, linux.CLONE_NEWNET)
        finally:
            os.close(fd)
    elif spec.network_mode == "none":
        linux.set_loopback_up()
    linux.sethostname(spec.hostname)
    try:
        with open("/proc/self/oom_score_adj", "w") as f:  # do not inherit the shim's
            f.write("0")
    except OSError:
        pass


def build_rootfs(spec: InitSpec, lower: list[str]) -> None:
    """The overlay and everything mounted inside it, in runc's order (rootfs.py)."""
    rootfs.make_mounts_private()
    rootfs.mount_overlay(lower, spec.upper_dir, spec.work_dir,
                         spec.merged_dir, spec.links_dir)
    rootfd = rootfs.open_root(spec.merged_dir)
    try:
        privileged = spec.privileged
        rootfs.mount_proc(rootfd)
        rootfs.mount_sys(rootfd, writable=privileged)
        rootfs.mount_cgroupfs(rootfd, spec.cgroup_version, writable=privileged)
        rootfs.mount_dev(rootfd)
        rootfs.create_device_nodes(rootfd)
        if privileged:
            rootfs.create_host_devices(rootfd, spec.devices or [])
        rootfs.mount_devpts(rootfd)
        rootfs.mount_shm(rootfd)
        rootfs.mount_mqueue(rootfd)
        rootfs.bind_mounts(rootfd, spec.mounts or [])
        rootfs.bind_etc_files(rootfd, spec.etc_files or {})
    finally:
        os.close(rootfd)
    if spec.mountpoints_file:
        rootfs.record_created(spec.mountpoints_file)


def switch_root(spec: InitSpec) -> None:
    """pivot_root into the rootfs, then Docker's read-only and masked paths."""
    rootfs.pivot_root(spec.merged_dir)
    rootfs.readonly_paths(spec.readonly_paths or [])
    rootfs.mask_paths(spec.masked_paths or [])


def prepare_cwd_and_root(spec: InitSpec) -> None:
    """The working directory exists (Docker creates it); the root is read-only if asked."""
    cwd = spec.cwd
    if cwd and cwd != "/":
        try:
            os.makedirs(cwd, mode=0o755, exist_ok=True)
        except OSError as e:
            raise InitError(125, f"mkdir {cwd}: {e.strerror}") from None
    if spec.readonly_rootfs:
        rootfs.make_root_readonly()
