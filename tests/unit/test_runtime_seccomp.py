"""core.runtime.seccomp without loading a filter: the profile format (checking and
resolving for a container), Docker's default profile, the teaching summary, the BPF
compiled by libseccomp (run through our BPF interpreter), the ENOSYS prefix, and the
cache. Loading filters into a real process is tests/integration/test_seccomp_filter.py.
"""

from __future__ import annotations

import copy
import errno
import json
import os
import subprocess
import sys

import pytest

from core.errors import RuntimeFailure, UsageError
from core.runtime import seccomp
from core.runtime.caps import DOCKER_DEFAULT
from core.runtime.seccomp import bpf, cache, compiler, rules
from core.runtime.seccomp.rules import Host

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AMD64 = Host(arch="amd64", scmp_arch="SCMP_ARCH_X86_64", kernel=(6, 1))
ARM64 = Host(arch="arm64", scmp_arch="SCMP_ARCH_AARCH64", kernel=(6, 1))
S390X = Host(arch="s390x", scmp_arch="SCMP_ARCH_S390X", kernel=(6, 1))
OLD_KERNEL = Host(arch="amd64", scmp_arch="SCMP_ARCH_X86_64", kernel=(4, 4))

ALLOW = 0x7FFF0000
KILL_THREAD = 0
KILL_PROCESS = 0x80000000
AUDIT_X86_64 = 0xC000003E
AUDIT_I386 = 0x40000003
AUDIT_AARCH64 = 0xC00000B7


def errno_action(n: int) -> int:
    return 0x00050000 | n


def _have_libseccomp() -> bool:
    from core.runtime.seccomp import libseccomp

    try:
        libseccomp.lib()
        return True
    except RuntimeFailure:
        return False


needs_libseccomp = pytest.mark.skipif(not _have_libseccomp(), reason="libseccomp2 is missing")
on_x86_64 = pytest.mark.skipif(rules.host().scmp_arch != "SCMP_ARCH_X86_64",
                               reason="syscall numbers below are x86_64's")


@pytest.fixture(autouse=True)
def fresh_memory_cache():
    cache.clear_memory()
    yield
    cache.clear_memory()


def names_for(res: rules.Resolved, action: str = "SCMP_ACT_ALLOW") -> set[str]:
    return {n for r in res.rules if r.action == action for n in r.names}


# --- checking profiles ------------------------------------------------------------------

def one(**rule) -> dict:
    """A profile with one rule for ``read`` (fields of the rule overridable)."""
    return {"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", **rule}]}


def check(profile) -> str:
    with pytest.raises(UsageError) as e:
        seccomp.validate(profile, "seccomp profile /x.json")
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_the_first_problem_is_named_on_one_line():
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["open"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["close"], "action": "SCMP_ACT_FOO"},
    ]}
    assert check(profile) == ('seccomp profile /x.json: syscalls[3].action: '
                              'unknown action "SCMP_ACT_FOO"')


@pytest.mark.parametrize("profile, expected", [
    ([], "expected a JSON object, got a list"),
    ({}, "defaultAction: an action is required"),
    ({"defaultAction": 5}, "defaultAction: expected a string, got a number"),
    ({"defaultAction": "SCMP_ACT_NOPE"}, 'defaultAction: unknown action "SCMP_ACT_NOPE"'),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "SCMP_ACT_NOTIFY (a seccomp agent) is not supported"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1},
     "defaultErrnoRet: -1 is out of range"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": True},
     "defaultErrnoRet: expected an unsigned integer, got a boolean"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1.5},
     "defaultErrnoRet: expected an unsigned integer, got the number 1.5"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": {}},
     "syscalls: expected a list, got an object"),
    (one(names="read"),
     "syscalls[0].names: expected a list of strings, got a string"),
    (one(names=[3]),
     "syscalls[0].names[0]: expected a string, got a number"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]},
     "syscalls[0]: no system call named"),
    (one(name="read", names=["write"]),
     "syscalls[0]: both 'name' and 'names' are specified"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]},
     "syscalls[0].action: an action is required"),
    (one(action="SCMP_ACT_NOTIFY"),
     "syscalls[0].action: SCMP_ACT_NOTIFY (a seccomp agent) is not supported"),
    (one(args=[{"index": 0, "value": 1, "op": "SCMP_CMP_ROUGHLY"}]),
     'syscalls[0].args[0].op: unknown operator "SCMP_CMP_ROUGHLY"'),
    (one(args=[{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]),
     "syscalls[0].args[0].index: 6 is out of range"),
    (one(args=[{"index": 0, "value": "1", "op": "SCMP_CMP_EQ"}]),
     "syscalls[0].args[0].value: expected an unsigned integer, got a string"),
    (one(args=[{"index": 0, "value": 1 << 64, "op": "SCMP_CMP_EQ"}]),
     "syscalls[0].args[0].value: 18446744073709551616 is out of range"),
    (one(args=[{"index": 0, "value": 1}]),
     "syscalls[0].args[0].op: an operator is required"),
    (one(includes={"minKernel": "4"}),
     'syscalls[0].includes.minKernel: invalid kernel version "4"'),
    (one(excludes={"minKernel": 4.8}),
     "syscalls[0].excludes.minKernel: expected a string"),
    (one(includes={"caps": "CAP_SYS_ADMIN"}),
     "syscalls[0].includes.caps: expected a list of strings, got a string"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_Z80"]},
     'architectures[0]: unknown architecture "SCMP_ARCH_Z80"'),
    ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
      "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": None}]},
     "both 'architectures' and 'archMap' are specified"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                                                      "subArchitectures": ["x86"]}]},
     'archMap[0].subArchitectures[0]: unknown architecture "x86"'),
    ({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]},
     "only meaningful with SCMP_ACT_NOTIFY"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_FAST"]},
     'flags[0]: unknown flag "SECCOMP_FILTER_FLAG_FAST"'),
    ({"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/agent.sock"},
     "listenerPath: SCMP_ACT_NOTIFY (a seccomp agent) is not supported"),
])
def test_bad_profiles_are_refused(profile, expected):
    msg = check(profile)
    assert msg.startswith("seccomp profile /x.json: ")
    assert expected in msg


def test_what_docker_accepts_is_accepted():
    seccomp.validate({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": None, "architectures": None,
        "archMap": None, "flags": None, "listenerPath": "", "syscalls": [
            {"name": "read", "action": "SCMP_ACT_ALLOW", "args": None, "comment": "old form",
             "includes": {}, "excludes": {"caps": None, "minKernel": ""}},
            {"names": ["write"], "action": "SCMP_ACT_TRACE", "errnoRet": 7,
             "args": [{"index": 0, "value": 1, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
             "includes": {"arches": ["amd64", "mipsle"], "minKernel": "4.8"}},
            {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS", "unknownKey": 1},
        ],
        "someFutureKey": {"x": 1},
    }, "test")


def test_read_profile(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(seccomp.default_profile()))
    assert seccomp.read_profile(str(good)) == seccomp.default_profile()

    bad = tmp_path / "bad.json"
    bad.write_text('{"defaultAction": ')
    with pytest.raises(UsageError, match=rf"^seccomp profile {bad}: not valid JSON: "):
        seccomp.read_profile(str(bad))

    big = tmp_path / "big.json"
    big.write_bytes(b'{"defaultAction": "SCMP_ACT_ALLOW", "x": "' + b"a" * (4 << 20) + b'"}')
    with pytest.raises(UsageError, match="larger than 4 MiB"):
        seccomp.read_profile(str(big))

    with pytest.raises(UsageError, match="cannot read it"):
        seccomp.read_profile(str(tmp_path / "missing.json"))

    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(UsageError, match="not valid JSON"):
        seccomp.read_profile(str(nested))


# --- Docker's default profile -----------------------------------------------------------

def test_default_profile_is_dockers_shape():
    p = seccomp.default_profile()
    seccomp.validate(p, "default")
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == errno.EPERM
    assert {"architecture": "SCMP_ARCH_X86_64",
            "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]} in p["archMap"]
    allow = p["syscalls"][0]
    assert allow["action"] == "SCMP_ACT_ALLOW" and "includes" not in allow
    assert len(allow["names"]) == len(set(allow["names"])) == 361
    for absent in ("mount", "unshare", "setns", "keyctl", "add_key", "request_key", "bpf",
                   "ptrace", "reboot", "kexec_load", "swapon", "clone", "clone3",
                   "socket", "personality", "io_uring_setup", "userfaultfd"):
        assert absent not in allow["names"], absent
    # a fresh copy each time
    p["syscalls"].clear()
    assert seccomp.default_profile()["syscalls"]


def test_default_profile_argument_rules():
    p = seccomp.default_profile()
    by = {}
    for rule in p["syscalls"]:
        for n in rule["names"]:
            by.setdefault(n, []).append(rule)
    personas = sorted(r["args"][0]["value"] for r in by["personality"])
    assert personas == [0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF]
    sockets = sorted((r["args"][0]["op"], r["args"][0]["value"]) for r in by["socket"])
    assert sockets == [("SCMP_CMP_EQ", 39), ("SCMP_CMP_GT", 40), ("SCMP_CMP_LT", 38)]
    clone = [r for r in by["clone"] if r.get("args")]
    assert {r["args"][0]["index"] for r in clone} == {0, 1}            # 1: s390
    assert all(r["args"][0] == {"index": r["args"][0]["index"], "value": 0x7E020000,
                                "op": "SCMP_CMP_MASKED_EQ"} for r in clone)
    assert all(r["excludes"]["caps"] == ["CAP_SYS_ADMIN"] for r in clone)
    (clone3,) = [r for r in by["clone3"] if r["action"] == "SCMP_ACT_ERRNO"]
    assert clone3["errnoRet"] == errno.ENOSYS
    assert clone3["excludes"] == {"caps": ["CAP_SYS_ADMIN"]}


def test_every_capability_block_of_docker():
    p = seccomp.default_profile()
    blocks = {tuple(r["includes"]["caps"]): set(r["names"]) for r in p["syscalls"]
              if (r.get("includes") or {}).get("caps")}
    assert blocks[("CAP_SYS_ADMIN",)] >= {"mount", "umount2", "unshare", "setns", "bpf",
                                          "perf_event_open", "clone", "clone3", "fsopen",
                                          "open_tree", "sethostname", "syslog"}
    expected = {
        "CAP_DAC_READ_SEARCH": {"open_by_handle_at"}, "CAP_SYS_BOOT": {"reboot"},
        "CAP_SYS_CHROOT": {"chroot"}, "CAP_SYS_PACCT": {"acct"},
        "CAP_SYS_MODULE": {"init_module", "finit_module", "delete_module"},
        "CAP_SYS_PTRACE": {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                           "process_vm_writev", "ptrace"},
        "CAP_SYS_RAWIO": {"iopl", "ioperm"},
        "CAP_SYS_TIME": {"settimeofday", "stime", "clock_settime", "clock_settime64"},
        "CAP_SYS_TTY_CONFIG": {"vhangup"},
        "CAP_SYS_NICE": {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"},
        "CAP_SYSLOG": {"syslog"}, "CAP_BPF": {"bpf"}, "CAP_PERFMON": {"perf_event_open"},
    }
    for cap, names in expected.items():
        assert blocks[(cap,)] == names, cap


# --- resolving for a container ----------------------------------------------------------

def test_archmap_picks_the_hosts_entry():
    p = seccomp.default_profile()
    assert rules.resolve(p, DOCKER_DEFAULT, AMD64).arches == (
        "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    assert rules.resolve(p, DOCKER_DEFAULT, ARM64).arches == (
        "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")
    plain = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"]}
    assert rules.resolve(plain, [], ARM64).arches == ("SCMP_ARCH_X86",)


def test_includes_caps_need_every_cap_and_excludes_any():
    p = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_X", "CAP_Y"]}},
        {"names": ["b"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_X", "CAP_Z"]}},
    ]}
    assert names_for(rules.resolve(p, ["X"], AMD64)) == set()
    assert names_for(rules.resolve(p, ["X", "y"], AMD64)) == {"a"}
    assert names_for(rules.resolve(p, ["CAP_Y"], AMD64)) == {"b"}
    assert names_for(rules.resolve(p, ["Y", "Z"], AMD64)) == set()


def test_default_profile_by_capabilities():
    p = seccomp.default_profile()
    base = rules.resolve(p, DOCKER_DEFAULT, AMD64)
    admin = rules.resolve(p, [*DOCKER_DEFAULT, "SYS_ADMIN"], AMD64)
    assert "mount" not in names_for(base) and "mount" in names_for(admin)
    assert "chroot" in names_for(base)                       # SYS_CHROOT is a default cap
    assert "chroot" not in names_for(rules.resolve(p, ["CHOWN"], AMD64))
    # the argument-filtered clone and the clone3 ENOSYS rule only without SYS_ADMIN
    assert any(r.args for r in base.rules if "clone" in r.names)
    assert not any(r.args for r in admin.rules if "clone" in r.names)
    assert "clone3" in names_for(base, "SCMP_ACT_ERRNO")
    assert "clone3" not in names_for(admin, "SCMP_ACT_ERRNO")
    assert "ptrace" in names_for(rules.resolve(p, ["SYS_PTRACE"], OLD_KERNEL))


def test_default_profile_by_architecture():
    p = seccomp.default_profile()
    amd64 = names_for(rules.resolve(p, DOCKER_DEFAULT, AMD64))
    arm64 = names_for(rules.resolve(p, DOCKER_DEFAULT, ARM64))
    assert {"arch_prctl", "modify_ldt"} <= amd64 and "set_tls" not in amd64
    assert "set_tls" in arm64 and "arch_prctl" not in arm64
    s390 = rules.resolve(p, DOCKER_DEFAULT, S390X)
    (clone,) = [r for r in s390.rules if "clone" in r.names]
    assert clone.args[0].arg == 1


def test_default_profile_by_kernel_version():
    p = seccomp.default_profile()
    assert "ptrace" in names_for(rules.resolve(p, DOCKER_DEFAULT, AMD64))
    assert "ptrace" not in names_for(rules.resolve(p, DOCKER_DEFAULT, OLD_KERNEL))
    at = Host(arch="amd64", scmp_arch="SCMP_ARCH_X86_64", kernel=(4, 8))
    assert "ptrace" in names_for(rules.resolve(p, DOCKER_DEFAULT, at))
    excl = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["old"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}}]}
    assert names_for(rules.resolve(excl, [], OLD_KERNEL)) == {"old"}
    assert names_for(rules.resolve(excl, [], AMD64)) == set()


def test_kernel_version_parsing():
    assert rules.kernel_version("6.1.0-18-amd64") == (6, 1)
    assert rules.kernel_version("3.12-1-amd64") == (3, 12)
    assert rules.kernel_version("6.18.44-fc-v1045") == (6, 18)


# --- the teaching summary ---------------------------------------------------------------

def blocked(summary) -> dict[str, str]:
    return dict(summary.blocked)


def test_describe_default_caps():
    s = seccomp.describe(seccomp.default_profile(), list(DOCKER_DEFAULT))
    assert s.mode == "filter" and s.default_action == "ERRNO(EPERM)"
    assert s.newer_syscalls == "ERRNO(ENOSYS)"
    assert s.conditional == ["clone", "personality", "socket"]
    b = blocked(s)
    for name in ("mount", "umount2", "unshare", "setns", "keyctl", "add_key", "request_key",
                 "bpf", "perf_event_open", "reboot", "init_module", "kexec_load",
                 "clock_settime", "swapon", "personality", "clone", "clone3", "socket"):
        assert name in b, name
    assert "allowed with CAP_SYS_ADMIN" in b["mount"]
    assert "no capability gives it back" in b["keyctl"]
    assert "CAP_SYS_ADMIN or CAP_BPF" in b["bpf"]
    assert "ENOSYS" in b["clone3"]
    assert "CLONE_NEWNS" in b["clone"] and "CLONE_NEWUSER" in b["clone"]
    assert "AF_VSOCK (40)" in b["socket"] and "AF_ALG (38)" in b["socket"]
    assert "0x20008" in b["personality"]
    assert "chroot" not in b and "ptrace" not in b        # default cap; kernel >= 4.8


def test_describe_changes_with_capabilities():
    p = seccomp.default_profile()
    base = blocked(seccomp.describe(p, list(DOCKER_DEFAULT)))
    admin = blocked(seccomp.describe(p, [*DOCKER_DEFAULT, "SYS_ADMIN"]))
    for name in ("mount", "umount2", "unshare", "setns", "clone", "clone3", "bpf"):
        assert name in base and name not in admin, name
    assert "keyctl" in admin and "reboot" in admin
    assert "reboot" not in blocked(seccomp.describe(p, [*DOCKER_DEFAULT, "SYS_BOOT"]))
    assert "chroot" in blocked(seccomp.describe(p, ["CHOWN"]))


def test_describe_is_computed_from_the_profile():
    p = seccomp.default_profile()
    p["syscalls"] = [r for r in p["syscalls"] if r["names"] != ["personality"]]
    b = blocked(seccomp.describe(p, list(DOCKER_DEFAULT)))
    assert b["personality"].startswith("ERRNO(EPERM): not in the allowlist")
    p["syscalls"][0]["names"].append("keyctl")
    assert "keyctl" not in blocked(seccomp.describe(p, list(DOCKER_DEFAULT)))
    allow_all = seccomp.describe({"defaultAction": "SCMP_ACT_ALLOW"}, [])
    assert allow_all.default_action == "ALLOW" and allow_all.newer_syscalls == "ALLOW"


def test_summary_type_is_exported():
    s = seccomp.describe(seccomp.default_profile(), list(DOCKER_DEFAULT))
    assert isinstance(s, seccomp.SeccompSummary)
    assert s.allowed > 360


# --- the ENOSYS prefix ------------------------------------------------------------------

TAIL_ALLOW = bpf.pack(bpf.RET_K, 0, 0, ALLOW)


def test_enosys_prefix_per_architecture():
    prog = bpf.enosys_prefix([bpf.ArchLimit(AUDIT_X86_64, 400, 0x40000000 | 500),
                              bpf.ArchLimit(AUDIT_I386, 300)]) + TAIL_ALLOW
    assert bpf.run(prog, 400, AUDIT_X86_64) == ALLOW
    assert bpf.run(prog, 401, AUDIT_X86_64) == errno_action(errno.ENOSYS)
    assert bpf.run(prog, 0x40000000 | 401, AUDIT_X86_64) == ALLOW          # x32's max
    assert bpf.run(prog, 0x40000000 | 501, AUDIT_X86_64) == errno_action(errno.ENOSYS)
    assert bpf.run(prog, 301, AUDIT_I386) == errno_action(errno.ENOSYS)
    assert bpf.run(prog, 5000, AUDIT_AARCH64) == ALLOW                       # not ours


def test_enosys_prefix_without_x32_leaves_x32_calls_to_the_filter():
    prog = bpf.enosys_prefix([bpf.ArchLimit(AUDIT_X86_64, 400)]) + TAIL_ALLOW
    assert bpf.run(prog, 0x40000000 | 900, AUDIT_X86_64) == ALLOW
    assert bpf.run(prog, 900, AUDIT_X86_64) == errno_action(errno.ENOSYS)


def test_enosys_prefix_with_x32_only():
    prog = bpf.enosys_prefix([bpf.ArchLimit(AUDIT_X86_64, None, 0x40000000 | 500)]) + TAIL_ALLOW
    assert bpf.run(prog, 0x40000000 | 501, AUDIT_X86_64) == errno_action(errno.ENOSYS)
    assert bpf.run(prog, 0x40000000 | 500, AUDIT_X86_64) == ALLOW
    assert bpf.run(prog, 900, AUDIT_X86_64) == ALLOW                         # not ours


def test_enosys_prefix_s390_multiplexer():
    prog = bpf.enosys_prefix([bpf.ArchLimit(bpf.AUDIT_ARCH_S390X, 450)]) + TAIL_ALLOW
    assert bpf.run(prog, 0, bpf.AUDIT_ARCH_S390X) == errno_action(errno.ENOSYS)
    assert bpf.run(prog, 1, bpf.AUDIT_ARCH_S390X) == ALLOW


# --- compiling with libseccomp ----------------------------------------------------------

@needs_libseccomp
@on_x86_64
def test_compiled_default_profile_decides_like_docker():
    prog = seccomp.compile_filter(seccomp.default_profile(), list(DOCKER_DEFAULT))
    n = len(prog) // 8
    assert len(prog) % 8 == 0 and 0 < n <= 4096

    def run(nr, *args, arch=AUDIT_X86_64):
        return bpf.run(prog, nr, arch, args)

    eperm, enosys = errno_action(errno.EPERM), errno_action(errno.ENOSYS)
    assert run(39) == ALLOW                                   # getpid
    assert run(165) == eperm                                  # mount
    assert run(250) == eperm                                  # keyctl
    assert run(56, 0x01200011) == ALLOW                       # clone as fork() does it
    assert run(56, 0x01200011 | 0x00020000) == eperm          # ... with CLONE_NEWNS
    assert run(435) == enosys                                 # clone3
    assert run(41, 2, 1, 0) == ALLOW and run(41, 39) == ALLOW and run(41, 41) == ALLOW
    assert run(41, 40) == eperm and run(41, 38) == eperm      # AF_VSOCK, AF_ALG
    assert run(135, 0xFFFFFFFF) == ALLOW and run(135, 0x0040000) == eperm
    assert run(158) == ALLOW                                  # arch_prctl (amd64 only)
    assert run(161) == ALLOW                                  # chroot: SYS_CHROOT held
    assert run(1000) == enosys                                # newer than the profile
    assert run(20, arch=AUDIT_I386) == ALLOW                  # i386 getpid
    assert run(21, arch=AUDIT_I386) == eperm                  # i386 mount
    assert run(39, arch=AUDIT_AARCH64) == KILL_THREAD         # not in the filter


@needs_libseccomp
@on_x86_64
def test_compiled_filter_follows_capabilities():
    p = seccomp.default_profile()
    admin = seccomp.compile_filter(p, [*DOCKER_DEFAULT, "SYS_ADMIN"])
    assert bpf.run(admin, 165, AUDIT_X86_64) == ALLOW
    assert bpf.run(admin, 56, AUDIT_X86_64, (0x00020000,)) == ALLOW
    assert bpf.run(admin, 435, AUDIT_X86_64) == ALLOW
    no_chroot = seccomp.compile_filter(p, ["CHOWN"])
    assert bpf.run(no_chroot, 161, AUDIT_X86_64) == errno_action(errno.EPERM)


@needs_libseccomp
@on_x86_64
def test_compiling_custom_profiles():
    p = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95},
        {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["no_such_call_anywhere"], "action": "SCMP_ACT_ERRNO"},
        # two comparisons of the same argument: either (runc's rule)
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 7, "op": "SCMP_CMP_EQ"},
            {"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]},
        # comparisons of different arguments: both
        {"names": ["write"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 7, "op": "SCMP_CMP_EQ"},
            {"index": 2, "value": 100, "op": "SCMP_CMP_GT"}]},
    ]}
    prog = seccomp.compile_filter(p, [])
    eperm = errno_action(errno.EPERM)
    assert bpf.run(prog, 79, AUDIT_X86_64) == errno_action(95)
    assert bpf.run(prog, 62, AUDIT_X86_64) == KILL_PROCESS
    assert bpf.run(prog, 1000, AUDIT_X86_64) == ALLOW         # no ENOSYS prefix: ALLOW
    assert bpf.run(prog, 0, AUDIT_X86_64, (7,)) == eperm
    assert bpf.run(prog, 0, AUDIT_X86_64, (9,)) == eperm
    assert bpf.run(prog, 0, AUDIT_X86_64, (8,)) == ALLOW
    assert bpf.run(prog, 1, AUDIT_X86_64, (7, 0, 101)) == eperm
    assert bpf.run(prog, 1, AUDIT_X86_64, (7, 0, 100)) == ALLOW
    assert bpf.run(prog, 1, AUDIT_X86_64, (8, 0, 101)) == ALLOW
    # only the native arch: an i386 call meets the bad-architecture action
    assert bpf.run(prog, 20, AUDIT_I386) == KILL_THREAD


@needs_libseccomp
def test_rule_with_the_default_action_is_skipped():
    p = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {"names": ["getppid"], "action": "SCMP_ACT_ALLOW"}]}
    seccomp.compile_filter(p, [])


@needs_libseccomp
def test_architecture_unknown_to_libseccomp_is_refused(monkeypatch):
    from core.runtime.seccomp import libseccomp

    real = libseccomp.arch_token
    monkeypatch.setattr(libseccomp, "arch_token", lambda name: 0 if "MIPS" in name else real(name))
    with pytest.raises(UsageError, match="architecture SCMP_ARCH_MIPS is not supported"):
        compiler.compile_resolved(rules.Resolved("SCMP_ACT_ALLOW", None, ("SCMP_ARCH_MIPS",),
                                                 None))


def test_missing_libseccomp_is_a_clear_error(monkeypatch):
    import ctypes.util

    from core.runtime.seccomp import libseccomp

    monkeypatch.setattr(libseccomp, "_lib", None)
    monkeypatch.setattr(libseccomp, "_load_error", None)
    monkeypatch.setattr(libseccomp, "SONAMES", ("libseccomp-nonexistent.so.9",))
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    with pytest.raises(RuntimeFailure) as e:
        seccomp.compile_filter(seccomp.default_profile(), list(DOCKER_DEFAULT))
    assert "libseccomp is not available" in str(e.value) and "\n" not in str(e.value)
    assert "libseccomp2" in e.value.hint


@needs_libseccomp
def test_install_options_from_flags():
    assert seccomp.install_options({"defaultAction": "SCMP_ACT_ALLOW", "flags": []}) == {
        "log": False, "spec_allow": False}
    opts = seccomp.install_options({"defaultAction": "SCMP_ACT_ALLOW",
                                    "flags": ["SECCOMP_FILTER_FLAG_LOG",
                                              "SECCOMP_FILTER_FLAG_TSYNC"]})
    assert opts == {"log": True, "spec_allow": False}


# --- the cache --------------------------------------------------------------------------

@pytest.fixture
def counted(monkeypatch):
    calls = []
    real = compiler.compile_resolved

    def counting(res):
        calls.append(res)
        return real(res)

    monkeypatch.setattr(compiler, "compile_resolved", counting)
    return calls


def _key(profile, caps) -> str:
    h = rules.host()
    return compiler.cache_key(rules.resolve(profile, caps, h), h.scmp_arch)


@needs_libseccomp
def test_memory_cache_hit(counted):
    p = seccomp.default_profile()
    a = seccomp.compile_filter(p, list(DOCKER_DEFAULT))
    b = seccomp.compile_filter(p, list(DOCKER_DEFAULT))
    assert a == b and len(counted) == 1
    # a capability no rule mentions makes the same filter; SYS_ADMIN does not
    assert seccomp.compile_filter(p, [*DOCKER_DEFAULT, "NET_ADMIN"]) == a
    assert len(counted) == 1
    assert seccomp.compile_filter(p, [*DOCKER_DEFAULT, "SYS_ADMIN"]) != a
    assert len(counted) == 2


@needs_libseccomp
def test_disk_cache_hit_and_file_modes(tmp_path, counted):
    d = tmp_path / "seccomp"
    p = seccomp.default_profile()
    a = seccomp.compile_filter(p, list(DOCKER_DEFAULT), cache_dir=str(d))
    assert os.stat(d).st_mode & 0o777 == 0o700
    (entry,) = os.listdir(d)
    assert entry == _key(p, DOCKER_DEFAULT) + ".bpf"
    assert os.stat(d / entry).st_mode & 0o777 == 0o600
    cache.clear_memory()                                     # as a new process would
    assert seccomp.compile_filter(p, list(DOCKER_DEFAULT), cache_dir=str(d)) == a
    assert len(counted) == 1


def _plant(d, key: str, program: bytes) -> None:
    import hashlib

    os.makedirs(d, mode=0o700, exist_ok=True)
    with open(os.path.join(d, key + ".bpf"), "wb") as f:
        f.write(cache.MAGIC + hashlib.sha256(program).digest() + program)
    os.chmod(os.path.join(d, key + ".bpf"), 0o600)


@needs_libseccomp
def test_disk_entries_are_used_only_from_a_safe_directory(tmp_path, counted):
    p = seccomp.default_profile()
    planted = bpf.pack(bpf.RET_K, 0, 0, ALLOW)               # "allow everything"
    safe = tmp_path / "safe"
    _plant(safe, _key(p, DOCKER_DEFAULT), planted)
    assert seccomp.compile_filter(p, list(DOCKER_DEFAULT), cache_dir=str(safe)) == planted
    assert counted == []                                     # it was a disk hit
    cache.clear_memory()
    os.chmod(safe / (_key(p, DOCKER_DEFAULT) + ".bpf"), 0o606)   # others may write it
    assert seccomp.compile_filter(p, list(DOCKER_DEFAULT), cache_dir=str(safe)) != planted
    assert len(counted) == 1

    cache.clear_memory()
    unsafe = tmp_path / "unsafe"
    _plant(unsafe, _key(p, DOCKER_DEFAULT), planted)
    os.chmod(unsafe, 0o777)
    got = seccomp.compile_filter(p, list(DOCKER_DEFAULT), cache_dir=str(unsafe))
    assert got != planted and len(counted) == 2
    assert os.listdir(unsafe) == [_key(p, DOCKER_DEFAULT) + ".bpf"]   # nothing written
    os.chmod(unsafe, 0o720)                                  # group-writable: same
    cache.clear_memory()
    assert seccomp.compile_filter(p, list(DOCKER_DEFAULT), cache_dir=str(unsafe)) != planted


@needs_libseccomp
@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_disk_cache_owned_by_someone_else_is_refused(tmp_path, counted):
    p = seccomp.default_profile()
    planted = bpf.pack(bpf.RET_K, 0, 0, ALLOW)
    theirs = tmp_path / "theirs"
    _plant(theirs, _key(p, DOCKER_DEFAULT), planted)
    os.chown(theirs, 65534, 65534)
    assert seccomp.compile_filter(p, list(DOCKER_DEFAULT), cache_dir=str(theirs)) != planted
    cache.clear_memory()
    mine = tmp_path / "mine"
    _plant(mine, _key(p, DOCKER_DEFAULT), planted)
    os.chown(mine / (_key(p, DOCKER_DEFAULT) + ".bpf"), 65534, 65534)   # entry not ours
    assert seccomp.compile_filter(p, list(DOCKER_DEFAULT), cache_dir=str(mine)) != planted


@needs_libseccomp
@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty", "symlink"])
def test_a_damaged_entry_is_a_miss(tmp_path, counted, damage):
    d = tmp_path / "c"
    p = seccomp.default_profile()
    good = seccomp.compile_filter(p, list(DOCKER_DEFAULT), cache_dir=str(d))
    path = d / (_key(p, DOCKER_DEFAULT) + ".bpf")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[:-8])
    elif damage == "flip":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    elif damage == "garbage":
        path.write_bytes(os.urandom(len(data)))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        other = tmp_path / "elsewhere.bpf"
        other.write_bytes(data)
        path.unlink()
        path.symlink_to(other)
    cache.clear_memory()
    assert seccomp.compile_filter(p, list(DOCKER_DEFAULT), cache_dir=str(d)) == good
    assert len(counted) == 2
    assert not path.is_symlink() and path.read_bytes() == data   # rewritten whole


def test_cache_dir_that_is_a_file_is_ignored(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    assert cache.open_dir(str(f)) is None


# --- the install module stays small -----------------------------------------------------

def test_load_module_imports_only_os_and_ctypes():
    code = (f"import sys; sys.path.insert(0, {REPO!r}); before = set(sys.modules); "
            "import core.runtime.seccomp.load; "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True, check=True).stdout.split()
    assert "core.runtime.seccomp.load" in out
    for heavy in ("json", "core.runtime.seccomp.libseccomp", "core.runtime.seccomp.rules",
                  "dataclasses", "typing", "hashlib", "core.errors"):
        assert heavy not in out, heavy


def test_install_refuses_garbage_before_any_system_call():
    with pytest.raises(OSError, match="not a BPF program"):
        seccomp.install(b"")
    with pytest.raises(OSError, match="not a BPF program"):
        seccomp.install(b"\x06\x00\x00\x00\x00\x00\xff\x7f" * 4097)


def test_default_profile_json_round_trip():
    p = seccomp.default_profile()
    assert json.loads(json.dumps(p)) == p
    q = copy.deepcopy(p)
    q["syscalls"][0]["names"].append("read")                 # duplicates are harmless
    seccomp.validate(q, "x")


# --- the default profile's fast path (default.py) ---------------------------------------

@needs_libseccomp
@pytest.mark.parametrize("caps", [list(DOCKER_DEFAULT), [*DOCKER_DEFAULT, "SYS_ADMIN"], []])
def test_default_filter_is_the_full_paths_result(tmp_path, caps):
    """Same BPF and the same load options as building, checking and compiling the
    default profile; cold (compiled), from memory and from disk."""
    p = seccomp.default_profile()
    want = (seccomp.compile_filter(p, caps), seccomp.install_options(p))
    cache.clear_memory()
    d = str(tmp_path / "c")
    assert seccomp.default_filter(caps, cache_dir=d) == want      # a miss: compiled
    assert seccomp.default_filter(caps, cache_dir=d) == want      # memory
    cache.clear_memory()
    assert seccomp.default_filter(caps, cache_dir=d) == want      # disk


@needs_libseccomp
def test_default_filter_hit_builds_no_profile(tmp_path, monkeypatch, counted):
    from core.runtime.seccomp import default, profile

    d = str(tmp_path / "c")
    first = seccomp.default_filter(list(DOCKER_DEFAULT), cache_dir=d)
    assert len(counted) == 1
    assert any(n.startswith("default-") for n in os.listdir(d))
    cache.clear_memory()                                         # as a new process would

    def refuse():
        raise AssertionError("the profile was built on a hit")

    monkeypatch.setattr(profile, "default_profile", refuse)
    assert seccomp.default_filter(list(DOCKER_DEFAULT), cache_dir=d) == first
    assert len(counted) == 1
    # the key covers the capabilities and the code that makes the filter
    k = default.key(list(DOCKER_DEFAULT))
    assert k != default.key([*DOCKER_DEFAULT, "SYS_ADMIN"])
    monkeypatch.setattr(default, "_sources_digest", "another version of profile.py")
    assert default.key(list(DOCKER_DEFAULT)) != k


def test_default_key_changes_when_a_module_that_makes_the_filter_changes(tmp_path,
                                                                       monkeypatch):
    """The key names the six modules by file identity: an edit (or a reinstall that keeps
    the size) is a new key; the same files are the same key."""
    import shutil

    from core.runtime.seccomp import default

    here = os.path.dirname(default.__file__)
    for name in default._SOURCES:
        shutil.copy2(os.path.join(here, name), tmp_path / name)
    monkeypatch.setattr(default, "__file__", str(tmp_path / "default.py"))

    def digest():
        monkeypatch.setattr(default, "_sources_digest", None)
        return default._sources()

    first = digest()
    assert digest() == first
    rules = tmp_path / "rules.py"
    rules.write_text(rules.read_text() + "# an edit\n")
    assert digest() != first
    edited = digest()
    st = os.stat(rules)
    new = tmp_path / "rules.new"                         # same size and mtime, a new file
    new.write_text(rules.read_text().replace("# an edit", "# a_diff"))
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(new, rules)
    assert digest() != edited


@needs_libseccomp
def test_default_filter_planted_entry_only_from_a_safe_directory(tmp_path, counted):
    """A planted "allow everything" entry under the default key is used only from a
    directory and file that are ours and writable by nobody else (cache.py's checks)."""
    from core.runtime.seccomp import default

    planted = bpf.pack(bpf.RET_K, 0, 0, ALLOW)
    k = default.key(list(DOCKER_DEFAULT))
    unsafe = tmp_path / "unsafe"
    _plant(unsafe, k, planted)
    os.chmod(unsafe, 0o777)
    got, _ = seccomp.default_filter(list(DOCKER_DEFAULT), cache_dir=str(unsafe))
    assert got != planted and len(counted) == 1
    cache.clear_memory()
    loose = tmp_path / "loose"
    _plant(loose, k, planted)
    os.chmod(loose / (k + ".bpf"), 0o646)
    got, _ = seccomp.default_filter(list(DOCKER_DEFAULT), cache_dir=str(loose))
    assert got != planted
