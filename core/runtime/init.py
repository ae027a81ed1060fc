"""The container's init: runs in a freshly forked, single-threaded child that is PID 1 of
the container's new PID namespace, and ends in execve of the payload.

Order (runc's standard_init_linux.go): join the container's cgroup, new namespaces (mount, UTS, IPC, net, cgroup), loopback up, hostname, rootfs (see
rootfs.py), pivot_root, masked/read-only paths, console or stdio, user and groups,
capabilities, close fds, cwd verified, look the command up, execve.

Talks to its parent over a SOCK_SEQPACKET socket whose end here is close-on-exec:

  init -> parent   b"P" + SCM_RIGHTS(fd)   the PTY master (allocated from the container's
                                           own /dev/pts, as runc does)
  init -> parent   b"E<code> <message>"    set-up or exec failed; init exits with <code>
  (end of file)                            execve succeeded

Exit codes follow Docker: 127 command not found, 126 not executable, 125 anything else.
"""

from __future__ import annotations

import errno
import os
import stat
import struct

from . import caps as _caps
from . import linux, rootfs

TIOCSCTTY = 0x540E
TIOCSWINSZ = 0x5414
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441


class InitError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def run(spec: dict, sync_fd: int, stdio: tuple[int | None, int | None, int | None]) -> None:
    """Never returns: execs the payload or exits with Docker's code."""
    code = 125
    _go["fd"] = spec.get("go_fd")
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
    _report(sync_fd, code, message)
    os._exit(code)


# The go pipe (``spec["go_fd"]``): when the starter still has work to finish before the
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


def _report(sync_fd: int, code: int, message: str) -> None:
    try:
        os.write(sync_fd, b"E%d %s" % (code, message.encode(errors="replace")[:4000]))
    except OSError:
        pass


def _close_fds_except(keep: set[int]) -> None:
    hi = 3
    for fd in sorted(keep | {2}):
        if fd > hi:
            os.closerange(hi, fd)
        hi = max(hi, fd + 1)
    os.closerange(hi, 1 << 20)


def _init(spec: dict, sync_fd: int, stdio) -> None:
    keep = {sync_fd} | {fd for fd in stdio if fd is not None}
    if _go["fd"] is not None:
        keep.add(_go["fd"])
    _close_fds_except(keep)

    # 1. into the container's cgroup before anything else: everything that follows, the
    #    payload and all its children are counted and limited there. (runc has the parent
    #    write the child's pid and then release it over a pipe; joining from here, before
    #    any code but ours runs, is as safe and keeps the shim's start off this path.)
    join_cgroups(spec.get("cgroups") or {})

    # 2. namespaces (the PID namespace was entered by being forked into it)
    net = spec["network"]
    flags = linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC | linux.CLONE_NEWCGROUP
    if net["mode"] == "none":
        flags |= linux.CLONE_NEWNET
    linux.unshare(flags)
    if net.get("netns"):
        fd = os.open(net["netns"], os.O_RDONLY | os.O_CLOEXEC)
        try:
            linux.setns(fd, linux.CLONE_NEWNET)
        finally:
            os.close(fd)
    elif net["mode"] == "none":
        linux.set_loopback_up()
    linux.sethostname(spec["hostname"])
    try:
        with open("/proc/self/oom_score_adj", "w") as f:  # do not inherit the shim's
            f.write("0")
    except OSError:
        pass

    # 3. rootfs, in runc's order
    rf = spec["rootfs"]
    rootfs.make_mounts_private()
    rootfs.mount_overlay(rf["lower"], rf["upper"], rf["work"], rf["merged"], rf["links"])
    rootfd = rootfs.open_root(rf["merged"])
    try:
        rootfs.mount_proc(rootfd)
        rootfs.mount_sys(rootfd)
        rootfs.mount_cgroupfs(rootfd, spec.get("cgroup_version", "v2"))
        rootfs.mount_dev(rootfd)
        rootfs.create_device_nodes(rootfd)
        rootfs.mount_devpts(rootfd)
        rootfs.mount_shm(rootfd)
        rootfs.mount_mqueue(rootfd)
        rootfs.bind_mounts(rootfd, spec.get("mounts") or [])
        rootfs.bind_etc_files(rootfd, spec["etc_files"])
    finally:
        os.close(rootfd)
    if spec.get("mountpoints_file"):
        rootfs.record_created(spec["mountpoints_file"])
    rootfs.pivot_root(rf["merged"])
    rootfs.readonly_paths(spec["readonly_paths"])
    rootfs.mask_paths(spec["masked_paths"])

    # 4. who we will be (names read inside the container, after pivot_root)
    uid, gid, groups, home = lookup_user(spec.get("user") or "")
    env = list(spec["env"])
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")
    cwd = spec.get("cwd") or "/"
    if spec.get("cwd"):
        try:
            os.makedirs(cwd, mode=0o755, exist_ok=True)
        except OSError as e:
            raise InitError(125, f"mkdir {cwd}: {e.strerror}") from None
    if rf.get("readonly"):
        rootfs.make_root_readonly()

    # 5. console or stdio, in a new session
    os.setsid()
    if spec["tty"]:
        slave = _setup_console(sync_fd, spec.get("rows") or 24, spec.get("cols") or 80)
        os.fchown(slave, uid, -1)
        for i in (0, 1, 2):
            os.dup2(slave, i)
        if slave > 2:
            os.close(slave)
    else:
        stdin, stdout, stderr = stdio
        if stdin is None:
            stdin = os.open("/dev/null", os.O_RDONLY)
        for target, fd in enumerate((stdin, stdout, stderr)):
            os.dup2(fd, target)
        for fd in {stdin, stdout, stderr}:
            if fd > 2:
                os.close(fd)
        for i in (0, 1, 2):
            try:
                os.fchown(i, uid, gid)
            except OSError:
                pass

    # 6. user, groups, capabilities (keep caps across the uid switch, then set them)
    keep = _caps.limit_bounding(int(spec["caps"]))
    if uid != 0 or gid != 0 or groups:
        linux.prctl(linux.PR_SET_KEEPCAPS, 1)
        os.setgroups(groups)
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        linux.prctl(linux.PR_SET_KEEPCAPS, 0)
    else:
        os.setgroups([])
    _caps.set_caps(keep)

    # 7. wait until the starter has finished (the network), close everything but stdio
    #    and the sync socket (close-on-exec), verify cwd
    await_go()
    _close_fds_except({sync_fd})
    try:
        os.chdir(cwd)
    except OSError as e:
        raise InitError(125, f"chdir to cwd (\"{cwd}\") set in config.json failed: "
                             f"{e.strerror.lower()}") from None
    real = os.getcwd()
    if not real.startswith("/") or "(unreachable)" in real:
        raise InitError(125, "current working directory is outside of the container")

    # 8. the command
    args = list(spec["args"])
    path = lookup_command(args[0], env)
    try:
        os.execve(path, args, _env_dict(env))
    except OSError as e:
        raise exec_error(args[0], path, e) from None


def join_cgroups(cg: dict) -> None:
    for path in cg.get("required") or []:
        try:
            fd = os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        except OSError as e:
            raise InitError(125, f"joining cgroup {path}: {e.strerror}") from None
    for path in cg.get("optional") or []:
        try:
            fd = os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        except OSError:
            pass  # e.g. a hybrid host's unified hierarchy: best effort


def _env_dict(env: list[str]) -> dict[str, str]:
    out = {}
    for item in env:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def exec_error(name: str, path: str, e: OSError) -> InitError:
    if e.errno in (errno.ENOENT, errno.ENOTDIR):
        return InitError(127, f'exec: "{name}": stat {path}: no such file or directory')
    if e.errno in (errno.EACCES, errno.EPERM, errno.EISDIR):
        return InitError(126, f'exec: "{name}": permission denied')
    if e.errno == errno.ENOEXEC:
        return InitError(126, f'exec: "{name}": exec format error')
    return InitError(125, f'exec: "{name}": {e.strerror}')


def lookup_command(name: str, env: list[str]) -> str:
    """Go's exec.LookPath in the container: a name with a slash is used as is, others are
    searched in the container's $PATH for an executable regular file."""
    if "/" in name:
        return name
    path = next((e[5:] for e in env if e.startswith("PATH=")), "")
    for d in path.split(":"):
        cand = os.path.join(d or ".", name)
        try:
            st = os.stat(cand)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return cand
    raise InitError(127, f'exec: "{name}": executable file not found in $PATH')


def _read_db(path: str) -> list[list[str]]:
    try:
        with open(path, "rb") as f:
            data = f.read(4 << 20)
    except OSError:
        return []
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line.split(":"))
    return out


def lookup_user(spec: str) -> tuple[int, int, list[int], str]:
    """runc's GetExecUser: ``name|uid[:group|gid]`` against the container's /etc/passwd
    and /etc/group (read inside the container, after pivot_root)."""
    user, _, group = spec.partition(":")
    uid, gid, home, uname = 0, 0, "/", "root"
    passwd = _read_db("/etc/passwd")
    if user:
        entry = next((p for p in passwd if len(p) >= 6 and (p[0] == user or
                      (user.isdigit() and p[2] == user))), None)
        if entry is not None:
            uid, gid, home, uname = int(entry[2]), int(entry[3]), entry[5] or "/", entry[0]
        elif user.isdigit():
            uid, uname = int(user), ""
        else:
            raise InitError(125, f"unable to find user {user}: no matching entries in passwd file")
    else:
        entry = next((p for p in passwd if len(p) >= 6 and p[2] == "0"), None)
        if entry is not None:
            home = entry[5] or "/"
    groups_db = _read_db("/etc/group")
    if group:
        g = next((e for e in groups_db if len(e) >= 3 and (e[0] == group or
                  (group.isdigit() and e[2] == group))), None)
        if g is not None:
            gid = int(g[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise InitError(125, f"unable to find group {group}: no matching entries in group file")
    extra = []
    if uname:
        for e in groups_db:
            if len(e) >= 4 and uname in e[3].split(",") and e[2].isdigit():
                g = int(e[2])
                if g != gid and g not in extra:
                    extra.append(g)
    if uid != 0 or extra:
        groups = [gid] + extra if gid not in extra else extra
    else:
        groups = []
    return uid, gid, groups, home


def _setup_console(sync_fd: int, rows: int, cols: int) -> int:
    """A PTY from the container's own devpts: master to the parent, slave on /dev/console."""
    import fcntl
    import socket

    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
    try:
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        slave = os.open(f"/dev/pts/{n}", os.O_RDWR | os.O_NOCTTY)
    st = os.fstat(slave)
    if not stat.S_ISCHR(st.st_mode):
        raise OSError(errno.EPERM, "pty slave is not a character device")
    fcntl.ioctl(slave, TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    root = os.open("/", os.O_PATH | os.O_CLOEXEC)
    try:
        console = rootfs.open_file_in_root(root, "dev/console")
    finally:
        os.close(root)
    try:
        linux.mount(f"/proc/self/fd/{slave}", f"/proc/self/fd/{console}", None, linux.MS_BIND)
    finally:
        os.close(console)
    sock = socket.socket(fileno=sync_fd)
    try:
        socket.send_fds(sock, [b"P"], [master])
    finally:
        sock.detach()
    os.close(master)
    fcntl.ioctl(slave, TIOCSCTTY, 0)
    return slave
