"""Becoming the container's process: the steps the init and exec's child share, in runc's
order (standard_init_linux.go / setns_init_linux.go), ending in execve.

    user and groups looked up inside the container (after pivot_root or setns)
    console (a PTY from the container's own devpts) or stdio, in a new session
    capability bounding set limited          (needs CAP_SETPCAP: still root here)
    no_new_privs                              (--security-opt no-new-privileges)
    seccomp, when no_new_privs is off         (loading needs CAP_SYS_ADMIN: before the drop)
    groups, gid, uid (capabilities kept across the switch), then the capability sets
    wait for the starter (the init's go pipe), close every fd but the sync socket
    cwd, verified to be inside the container (CVE-2024-21626)
    look the command up in the container's $PATH
    seccomp, when no_new_privs is on          (as close to execve as possible)
    every signal disposition back to default, the signal mask emptied
    execve

The process reports a failure over ``sync_fd`` (``E<code> <message>``, see init.py) and
exits with Docker's code: 127 not found, 126 not executable, 125 anything else.

This runs in a freshly forked, single-threaded child of a sealed interpreter (seal.py),
after it entered the container's mount namespace: nothing can be imported from the host
any more, so every module used here is imported with this one (``preload``).
"""

from __future__ import annotations

import _signal
import errno
import os
import stat

from .. import caps as _caps
from .. import linux
from . import console
from .initspec import ProcessSpec


class InitError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def report(sync_fd: int, code: int, message: str) -> None:
    try:
        os.write(sync_fd, b"E%d %s" % (code, message.encode(errors="replace")[:4000]))
    except OSError:
        pass


def shut_out(keep: set[int]) -> None:
    """The first step of the init and of exec's process: every inherited fd but ``keep``
    closed, and not dumpable (nothing in the container may open this process through
    /proc before it execs)."""
    close_fds_except(keep)
    linux.prctl(linux.PR_SET_DUMPABLE, 0)


def open_cgroups(required: list[str], optional: list[str]) -> list[tuple[int, str, bool]]:
    """(fd, dir, optional) for each cgroup.procs to join: opened while the host's cgroup
    paths are still visible (exec's M opens them before it enters the mount namespace).
    A required one that cannot be opened fails the start; an optional one (a hybrid
    host's unified hierarchy) is left out."""
    out = []
    try:
        for d in required:
            try:
                fd = os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
            except OSError as e:
                raise InitError(125, f"joining cgroup {d}: {e.strerror}") from None
            out.append((fd, d, False))
    except BaseException:
        close_cgroups(out)
        raise
    for d in optional:
        try:
            out.append((os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC),
                        d, True))
        except OSError:
            pass
    return out


def join_cgroups(cgroups: list[tuple[int, str, bool]]) -> None:
    """Write this process into each cgroup ``open_cgroups`` opened, and close them."""
    try:
        for fd, d, optional in cgroups:
            try:
                os.write(fd, b"0")
            except OSError as e:
                if not optional:
                    raise InitError(125, f"joining cgroup {d}: {e.strerror}") from None
    finally:
        close_cgroups(cgroups)


def close_cgroups(cgroups: list[tuple[int, str, bool]]) -> None:
    for fd, _d, _optional in cgroups:
        os.close(fd)


def close_fds_except(keep: set[int]) -> None:
    """Close every fd from 3 up except ``keep`` (stdio stays)."""
    hi = 3
    for fd in sorted(keep | {2}):
        if fd > hi:
            os.closerange(hi, fd)
        hi = max(hi, fd + 1)
    os.closerange(hi, 1 << 20)


def become(spec: ProcessSpec, sync_fd: int, stdio: tuple, *, console_bind: bool,
           before_close=None) -> None:
    """Turn this process into the container's process described by ``spec`` and execve
    it. Raises InitError (or OSError) on failure; never returns otherwise.

    ``stdio``: (stdin, stdout, stderr) fds when there is no TTY
    (None: /dev/null). ``console_bind``: bind the PTY slave on /dev/console (the init).
    ``before_close``: called once the identity is set, before the fds are closed (the
    init waits for its starter there).
    """
    uid, gid, groups, home = lookup_user(spec.user)
    env = list(spec.env)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")

    console.attach_stdio(sync_fd, stdio, uid, gid, tty=spec.tty, rows=spec.rows,
                         cols=spec.cols, bind_dev_console=console_bind)

    # capabilities, no_new_privs, seccomp, identity
    keep = _caps.limit_bounding(spec.caps)
    nnp = spec.no_new_privs
    bpf = spec.seccomp  # (BPF, load options) or None
    if nnp:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    elif bpf:
        install_seccomp(bpf)
    if uid != 0 or gid != 0 or groups:
        linux.prctl(linux.PR_SET_KEEPCAPS, 1)
        os.setgroups(groups)
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        linux.prctl(linux.PR_SET_KEEPCAPS, 0)
    else:
        os.setgroups([])
    _caps.set_caps(keep)

    if before_close is not None:
        before_close()
    close_fds_except({sync_fd})
    cwd = spec.cwd or "/"
    try:
        os.chdir(cwd)
    except OSError as e:
        raise InitError(126 if e.errno == errno.EACCES else 125,
                        f"chdir to cwd (\"{cwd}\") set in config.json failed: "
                        f"{(e.strerror or str(e)).lower()}") from None
    try:
        real = os.getcwd()
    except OSError as e:  # e.g. a seccomp profile that refuses getcwd
        raise InitError(125, f"verifying the working directory: getcwd: {e.strerror}") from None
    if not real.startswith("/") or "(unreachable)" in real:
        raise InitError(125, "current working directory is outside of the container")

    args = list(spec.args)
    path = lookup_command(args[0], env)
    if nnp and bpf:
        install_seccomp(bpf)
    reset_signals()
    try:
        os.execve(path, args, env_dict(env))
    except OSError as e:
        raise exec_error(args[0], path, e) from None


def preload(spec: ProcessSpec) -> None:
    """Import now what ``become`` will need once the host's files are out of reach."""
    if spec.seccomp:
        from ..seccomp import load  # noqa: F401


def install_seccomp(seccomp) -> None:
    """Load the container's filter: ``seccomp`` is (BPF bytes, load options)."""
    from ..seccomp.load import install

    bpf, options = seccomp
    try:
        install(bpf, **options)
    except OSError as e:
        raise InitError(125, f"loading the seccomp filter: {e.strerror or e}") from None


def reset_signals() -> None:
    """Every disposition back to default and nothing blocked: an interpreter ignores
    SIGPIPE and SIGXFSZ, and execve keeps what is ignored, so a container's ``yes | head``
    would never end (Docker's and Podman's containers start with SigIgn 0)."""
    for n in range(1, _signal.NSIG):
        if n in (_signal.SIGKILL, _signal.SIGSTOP):
            continue
        try:
            _signal.signal(n, _signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            linux.default_signal_action(n)  # one the C library keeps for itself
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def env_dict(env: list[str]) -> dict[str, str]:
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
        entry = next((e for e in groups_db if len(e) >= 3 and (e[0] == group or
                      (group.isdigit() and e[2] == group))), None)
        if entry is not None:
            gid = int(entry[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise InitError(125, f"unable to find group {group}: no matching entries in group file")
    extra: list[int] = []
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
