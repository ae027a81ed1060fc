"""Seccomp in real containers: a probe inside makes the calls Docker's profile refuses.

The probe is Python with ctypes (tests/pyimage.py) making raw system calls; each result
is an errno (0: it worked). The library itself (compile, load, caps rules) is tested in
tests/integration/test_seccomp_filter.py and tests/unit/test_runtime_seccomp.py.

Host root's user keyring is shared with a container's root (no user namespace): the
test adds a key there and shows an unconfined container can read it, the default cannot.
"""

from __future__ import annotations

import ast
import ctypes
import errno
import json
import os
import subprocess
import sys

import pytest

from core.engine import Engine
from tests.pyimage import PYTHONHOME, make_python_rootfs

pytestmark = pytest.mark.integration

IMAGE = "sec-probe/python:latest"
MACHINE = os.uname().machine
# (add_key, keyctl, perf_event_open, clone3) by architecture
NR = {"x86_64": (248, 250, 298, 435), "aarch64": (217, 219, 241, 435)}

PROBE = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
ADD_KEY, KEYCTL, PERF, CLONE3 = %(nr)s
def call(*args):
    ctypes.set_errno(0)
    rc = libc.syscall(*[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    return 0 if rc >= 0 else ctypes.get_errno()
def fn(name, *args):
    f = getattr(libc, name)
    ctypes.set_errno(0)
    rc = f(*args)
    return 0 if rc >= 0 else ctypes.get_errno()
def apart(f, *args):  # in a child: a call that works must not change the probe itself
    pid = os.fork()
    if pid == 0:
        os._exit(f(*args))
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
out = {}
out["keyctl_read_user_keyring"] = call(KEYCTL, 0, -4, 0)           # KEYCTL_GET_KEYRING_ID @u
out["add_key"] = call(ADD_KEY, b"user", b"probe", b"x", 1, -2)      # to @p
out["unshare_user"] = apart(fn, "unshare", 0x10000000)
out["mount"] = apart(fn, "mount", b"none", b"/tmp", b"tmpfs", 0, None)
attr = ctypes.create_string_buffer(128); attr[4] = 128               # type 0 (HW), size
out["perf_event_open"] = call(PERF, attr, 0, -1, -1, 0)
libc.personality.argtypes = [ctypes.c_ulong]   # as libc's prototype: 64-bit clean
out["personality_no_aslr"] = apart(fn, "personality", 0x0040000)
out["personality_query"] = fn("personality", 0xffffffff)
out["clone3"] = call(CLONE3, None, 0)
out["socket_vsock"] = fn("socket", 40, 1, 0)
out["getpid"] = fn("getpid")
try:
    os.mkdir("/tmp/probe-dir")
    out["mkdir"] = 0
except OSError as e:
    out["mkdir"] = e.errno
name = sys.argv[1] if len(sys.argv) > 1 else ""
if name:  # read a key host root put in its user keyring
    kid = libc.syscall(ctypes.c_long(KEYCTL), ctypes.c_long(10), ctypes.c_long(-4),
                       b"user", name.encode(), ctypes.c_long(0))
    out["keyring_search_errno"] = 0 if kid >= 0 else ctypes.get_errno()
    if kid >= 0:
        buf = ctypes.create_string_buffer(64)
        n = libc.syscall(ctypes.c_long(KEYCTL), ctypes.c_long(11), ctypes.c_long(kid), buf,
                         ctypes.c_long(64))
        out["keyring_secret"] = buf.raw[:n].decode() if n > 0 else ""
print(open("/proc/self/status").read().split("Seccomp:")[1].split()[0], repr(out))
""" % {"nr": NR.get(MACHINE)}

REFUSED = {"keyctl_read_user_keyring", "add_key", "unshare_user", "mount", "perf_event_open",
           "personality_no_aslr", "socket_vsock"}


class Probe:
    def __init__(self, root: str):
        self.root = root
        self.engine = Engine(root)

    def cli(self, *args: str):
        return subprocess.run([sys.executable, "-m", "workbench", "--root", self.root, *args],
                              capture_output=True, text=True, timeout=60)

    def probe(self, *flags: str, key: str = "") -> tuple[str, dict]:
        p = self.cli("run", "--rm", "--network", "none", *flags, IMAGE, "-S", "-c", PROBE,
                     *([key] if key else []))
        assert p.returncode == 0, p.stderr
        mode, _, data = p.stdout.strip().partition(" ")
        return mode, ast.literal_eval(data)


@pytest.fixture(scope="module")
def probe(tmp_path_factory, busybox_rootfs):
    if MACHINE not in NR:
        pytest.skip(f"no syscall numbers for {MACHINE} in this test")
    tmp = tmp_path_factory.mktemp("seccomp-probe")
    rootfs = make_python_rootfs(str(tmp / "rootfs"), busybox_rootfs)
    pr = Probe(str(tmp / "root"))
    pr.engine.import_image(rootfs, IMAGE, changes=[f"ENV PYTHONHOME={PYTHONHOME}",
                                                   'ENTRYPOINT ["/bin/python"]'])
    yield pr
    for c in pr.engine.ps(all=True):
        pr.engine.rm(c["Id"], force=True)


@pytest.fixture
def host_key():
    """A key in host root's user keyring (@u), removed afterwards."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    add_key, keyctl = NR[MACHINE][0], NR[MACHINE][1]
    name = f"nutshell-test-{os.getpid()}"
    kid = libc.syscall(ctypes.c_long(add_key), b"user", name.encode(), b"host-secret",
                       ctypes.c_long(11), ctypes.c_long(-4))
    if kid < 0:
        pytest.skip(f"add_key on the host: {os.strerror(ctypes.get_errno())}")
    # readable by its user (uid 0) as many programs make their keys: KEYCTL_SETPERM
    libc.syscall(ctypes.c_long(keyctl), ctypes.c_long(5), ctypes.c_long(kid),
                 ctypes.c_long(0x3F3F0000))
    yield name
    libc.syscall(ctypes.c_long(keyctl), ctypes.c_long(9), ctypes.c_long(kid),
                 ctypes.c_long(-4))  # KEYCTL_UNLINK from @u


def test_default_profile_refuses_what_docker_refuses(probe, host_key):
    mode, out = probe.probe(key=host_key)
    assert mode == "2"                                       # Seccomp: 2 (filter)
    for name in REFUSED:
        assert out[name] == errno.EPERM, (name, out)
    assert out["clone3"] == errno.ENOSYS                     # libc falls back to clone
    assert out["getpid"] == 0 and out["personality_query"] == 0 and out["mkdir"] == 0
    assert out["keyring_search_errno"] == errno.EPERM and "keyring_secret" not in out


def test_unconfined_is_what_the_default_protects_from(probe, host_key):
    """The same probe without seccomp: host root's key is readable, and the calls reach
    the kernel (where capabilities still refuse some of them: mount, unshare as root
    without CAP_SYS_ADMIN)."""
    mode, out = probe.probe("--security-opt", "seccomp=unconfined", key=host_key)
    assert mode == "0"
    assert out["keyring_secret"] == "host-secret"
    assert out["keyctl_read_user_keyring"] == 0 and out["add_key"] == 0
    assert out["personality_no_aslr"] == 0
    assert out["clone3"] != errno.ENOSYS


def test_a_custom_profile_is_honoured(probe, tmp_path):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": errno.EOPNOTSUPP}]}
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    mode, out = probe.probe("--security-opt", f"seccomp={path}")
    assert mode == "2"
    assert out["mkdir"] == errno.EOPNOTSUPP
    assert out["personality_no_aslr"] == 0 and out["mount"] == errno.EPERM  # (caps: no
    #                                                   CAP_SYS_ADMIN)   everything else allowed


def test_exec_gets_the_containers_filter(probe):
    assert probe.cli("run", "-d", "--name", "sc", "--network", "none", "--entrypoint",
                     "sleep", IMAGE, "300").returncode == 0
    try:
        p = probe.cli("exec", "sc", "/bin/python", "-S", "-c", PROBE)
        mode, _, data = p.stdout.strip().partition(" ")
        out = ast.literal_eval(data)
        assert mode == "2" and all(out[n] == errno.EPERM for n in REFUSED), out
    finally:
        probe.cli("rm", "-f", "sc")


def test_privileged_has_no_filter_and_cap_sys_admin_lifts_its_rules(probe):
    mode, out = probe.probe("--privileged")
    assert mode == "0" and out["mount"] == 0
    mode, out = probe.probe("--cap-add", "SYS_ADMIN")
    assert mode == "2"
    assert out["unshare_user"] == 0          # allowed by the CAP_SYS_ADMIN block
    assert out["keyctl_read_user_keyring"] == errno.EPERM     # no capability gives it


def test_no_new_privileges_still_loads_the_filter(probe):
    mode, out = probe.probe("--security-opt", "no-new-privileges")
    assert mode == "2" and out["mount"] == errno.EPERM
