"""Seccomp filters on the real kernel: Docker's default profile, compiled by
core.runtime.seccomp and installed in a forked child, answers system calls the way
Docker's does.

Every probe runs in a forked child (the test process itself never gets a filter) that
reports over a pipe and leaves with ``os._exit``. Where it matters, the same probe
also runs unfiltered as a control, so a passing test shows the *filter* refused the
call, not the kernel or the environment.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform

import pytest

from core.runtime import seccomp
from core.runtime.caps import DOCKER_DEFAULT

pytestmark = pytest.mark.integration

# syscall numbers: (x86_64, aarch64)
_NR = {
    "getpid": (39, 172), "keyctl": (250, 219), "add_key": (248, 217),
    "unshare": (272, 97), "mount": (165, 40), "perf_event_open": (298, 241),
    "personality": (135, 92), "clone": (56, 220), "clone3": (435, 435),
    "socket": (41, 198), "getcwd": (79, 17), "kexec_load": (246, 104), "setns": (308, 268),
    "mseal": (462, 462),
}
_MACHINE = platform.machine()
if _MACHINE not in ("x86_64", "aarch64"):
    pytest.skip(f"syscall numbers of {_MACHINE} are not in this test", allow_module_level=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWUSER = 0x10000000
SIGCHLD = 17
AF_VSOCK = 40
AF_ALG = 38
KEYCTL_GET_KEYRING_ID = 0
KEY_SPEC_USER_KEYRING = -4
KEY_SPEC_PROCESS_KEYRING = -2
ADDR_NO_RANDOMIZE = 0x0040000
PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def nr(name: str) -> int:
    return _NR[name][0 if _MACHINE == "x86_64" else 1]


def sys_call(name: str, *args) -> tuple[int, int]:
    """(return value, errno) of a raw system call (errno 0 on success)."""
    ctypes.set_errno(0)
    cargs = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    rc = _libc.syscall(ctypes.c_long(nr(name) if isinstance(name, str) else name), *cargs)
    return rc, (ctypes.get_errno() if rc < 0 else 0)


def in_child(fn, bpf: bytes | None = None, *, nnp: bool = False, before=None, **opts) -> dict:
    """Run ``fn()`` in a forked child (after ``before()``, NNP and installing ``bpf``);
    returns what it returned (a JSON-able dict), or {"error": ...}."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            if before is not None:
                before()
            if nnp:
                if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                    raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
            if bpf is not None:
                seccomp.install(bpf, **opts)
            out = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            out = {"error": f"{type(e).__name__}: {e}",
                   "errno": getattr(e, "errno", None)}
        try:
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child died: {status:#x}"
    return json.loads(b"".join(chunks) or b'{"error": "no report"}')


def _status_field(name: str) -> str:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    return ""


def _clone(flags: int) -> tuple[int, int]:
    """clone(flags|SIGCHLD) as a raw call (fork-like: no new stack); a child it makes
    leaves at once and is reaped here."""
    rc, err = sys_call("clone", flags | SIGCHLD, 0, 0, 0, 0)
    if rc == 0:
        os._exit(0)
    if rc > 0:
        os.waitpid(rc, 0)
    return rc, err


def _socket(domain: int) -> tuple[int, int]:
    rc, err = sys_call("socket", domain, 1, 0)   # SOCK_STREAM
    if rc >= 0:
        os.close(rc)
    return rc, err


def _perf_event_open() -> tuple[int, int]:
    attr = ctypes.create_string_buffer(128)
    ctypes.c_uint32.from_buffer(attr, 4).value = 128        # attr.size
    rc, err = sys_call("perf_event_open", attr, 0, -1, -1, 0)
    if rc >= 0:
        os.close(rc)
    return rc, err


def _probes() -> dict:
    """The calls Docker's default profile refuses, and some it allows."""
    out = {
        "keyctl": sys_call("keyctl", KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0)[1],
        "add_key": sys_call("add_key", b"user", b"nutshell-seccomp-test", b"x", 1,
                            KEY_SPEC_PROCESS_KEYRING)[1],
        "unshare_user": sys_call("unshare", CLONE_NEWUSER)[1],
        "mount": sys_call("mount", b"none", b"/nonexistent-nutshell-seccomp", b"tmpfs", 0,
                          None)[1],
        "perf_event_open": _perf_event_open()[1],
        "personality_no_randomize": sys_call("personality", ADDR_NO_RANDOMIZE)[1],
        "clone_newns": _clone(CLONE_NEWNS)[1],
        "clone3": sys_call("clone3", None, 0)[1],
        "socket_vsock": _socket(AF_VSOCK)[1],
        "socket_alg": _socket(AF_ALG)[1],
        "setns": sys_call("setns", -1, 0)[1],
        "kexec_load": sys_call("kexec_load", 0, 0, None, 0)[1],
        "above_highest": sys_call(1000)[1],
    }
    # allowed calls
    out["getpid"] = sys_call("getpid")[0] == os.getpid()
    with open("/proc/self/status") as f:
        out["read_status"] = "Seccomp" in f.read()
    rc, err = sys_call("personality", 0xFFFFFFFF)
    out["personality_query"] = (rc, err)
    out["socket_unix"] = _socket(1)[1]
    pid = os.fork()                    # clone without namespace flags
    if pid == 0:
        os._exit(7)
    _, st = os.waitpid(pid, 0)
    out["fork_exit"] = os.WEXITSTATUS(st)
    out["seccomp"] = _status_field("Seccomp")
    out["seccomp_filters"] = _status_field("Seccomp_filters")
    return out


@pytest.fixture(scope="module")
def default_bpf() -> bytes:
    return seccomp.compile_filter(seccomp.default_profile(), list(DOCKER_DEFAULT))


def test_default_profile_refuses_what_docker_refuses(default_bpf):
    control = in_child(_probes)
    got = in_child(_probes, default_bpf)
    assert "error" not in got, got
    refused = ["keyctl", "add_key", "unshare_user", "mount", "perf_event_open",
               "personality_no_randomize", "clone_newns", "socket_vsock", "socket_alg",
               "setns", "kexec_load"]
    for name in refused:
        assert got[name] == errno.EPERM, (name, errno.errorcode.get(got[name]))
    # the control shows the kernel alone would not have said EPERM for these
    for name in ("keyctl", "add_key", "unshare_user", "mount", "clone_newns",
                 "personality_no_randomize", "setns"):
        assert control[name] != errno.EPERM, (name, control[name])
    assert got["clone3"] == errno.ENOSYS and control["clone3"] != errno.ENOSYS
    assert control["seccomp"] == "0"


def test_default_profile_allows_ordinary_calls(default_bpf):
    got = in_child(_probes, default_bpf)
    assert got["getpid"] is True and got["read_status"] is True
    rc, err = got["personality_query"]
    assert err == 0 and rc >= 0
    assert got["socket_unix"] == 0
    assert got["fork_exit"] == 7
    assert got["seccomp"] == "2" and got["seccomp_filters"] == "1"


def test_syscalls_newer_than_the_profile_answer_enosys(default_bpf):
    got = in_child(_probes, default_bpf)
    # a number above every call the profile names: ENOSYS (libc falls back), where the
    # default action alone would say EPERM; a known refused call keeps EPERM
    assert got["above_highest"] == errno.ENOSYS
    assert got["kexec_load"] == errno.EPERM


def test_a_call_unknown_to_libseccomp_is_treated_as_newer(default_bpf):
    """mseal (Linux 6.9) is in Docker's allowlist; a libseccomp that does not know it
    skips it, and our stub then answers ENOSYS (as runc built with it would)."""
    from core.runtime.seccomp import libseccomp

    rc, err = in_child(lambda: {"r": sys_call("mseal", 0, 0, 0)}, default_bpf)["r"]
    if libseccomp.syscall_number("mseal") < 0:
        assert err == errno.ENOSYS
    else:
        assert err not in (errno.EPERM, errno.ENOSYS) or rc == 0


def test_cap_sys_admin_lifts_the_namespace_rules():
    bpf = seccomp.compile_filter(seccomp.default_profile(), [*DOCKER_DEFAULT, "SYS_ADMIN"])

    def probe():
        return {"unshare": sys_call("unshare", CLONE_NEWUTS)[1],
                "mount": sys_call("mount", b"none", b"/nonexistent-nutshell-seccomp",
                                  b"tmpfs", 0, None)[1],
                "clone3": sys_call("clone3", None, 0)[1],
                "keyctl": sys_call("keyctl", KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING,
                                   0)[1]}

    got = in_child(probe, bpf)
    assert got["unshare"] == 0                      # the kernel allowed it (we are root)
    assert got["mount"] == errno.ENOENT              # the kernel looked at the path
    assert got["clone3"] not in (errno.ENOSYS, errno.EPERM)
    assert got["keyctl"] == errno.EPERM              # no capability gives keyctl back


def test_custom_profile_errno_is_honoured():
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": errno.EOPNOTSUPP}]}
    bpf = seccomp.compile_filter(profile, list(DOCKER_DEFAULT))

    def probe():
        try:
            os.getcwd()
            cwd = 0
        except OSError as e:
            cwd = e.errno
        return {"getcwd": cwd, "keyctl": sys_call("keyctl", KEYCTL_GET_KEYRING_ID,
                                                  KEY_SPEC_USER_KEYRING, 0)[1]}

    got = in_child(probe, bpf)
    assert got["getcwd"] == errno.EOPNOTSUPP
    assert got["keyctl"] != errno.EPERM             # default ALLOW: not filtered


def _become_nobody():
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)             # all capabilities are gone


def test_install_needs_no_new_privs_without_cap_sys_admin(default_bpf):
    got = in_child(lambda: {"ok": True}, default_bpf, before=_become_nobody)
    assert got.get("errno") == errno.EACCES, got
    assert "no_new_privs or CAP_SYS_ADMIN" in got["error"]
    got = in_child(lambda: {"seccomp": _status_field("Seccomp"),
                            "nnp": _status_field("NoNewPrivs")},
                   default_bpf, before=_become_nobody, nnp=True)
    assert got == {"seccomp": "2", "nnp": "1"}


def test_install_with_cap_sys_admin_leaves_no_new_privs_off(default_bpf):
    got = in_child(lambda: {"nnp": _status_field("NoNewPrivs"),
                            "seccomp": _status_field("Seccomp")}, default_bpf)
    assert got == {"nnp": "0", "seccomp": "2"}


def test_install_flags(default_bpf):
    opts = seccomp.install_options(seccomp.default_profile())
    assert set(opts) == {"log", "spec_allow"} and opts["log"] is False
    got = in_child(lambda: {"seccomp": _status_field("Seccomp")}, default_bpf, **opts)
    assert got == {"seccomp": "2"}
    got = in_child(lambda: {"seccomp": _status_field("Seccomp")}, default_bpf, log=True)
    assert got == {"seccomp": "2"}


def test_install_refuses_a_broken_program():
    with pytest.raises(OSError, match="not a BPF program"):
        seccomp.install(b"\x06\x00\x00\x00\x00\x00")          # 6 bytes: refused before
    got = in_child(lambda: {"ok": True}, b"\x00" * 8)          # "ld #0" without a return
    assert got.get("errno") == errno.EINVAL, got
    assert "loading the seccomp filter" in got["error"]


def test_filters_stack():
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": 95}]}
    bpf = seccomp.compile_filter(profile, [])

    def second():
        seccomp.install(bpf)
        return {"filters": _status_field("Seccomp_filters")}

    assert in_child(second, bpf) == {"filters": "2"}
