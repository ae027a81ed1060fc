"""Compiling a resolved profile to BPF with libseccomp, as runc does, in the parent.

The steps are runc's ``InitSeccomp`` + ``patchbpf``:

1. a libseccomp filter with the profile's default action (errno EPERM when
   ``defaultErrnoRet`` is absent), the native architecture plus the profile's
   (``archMap`` entry of this host, or ``architectures``), no_new_privs left to the
   caller, and libseccomp's binary-tree layout for profiles of more than 32 calls;
2. one rule per syscall name of each block that applies; a name libseccomp does not
   know is skipped (it cannot be called on this kernel through libseccomp's tables
   anyway, and runc skips it), a rule with the default action is skipped (libseccomp
   refuses it as redundant); comparisons on different arguments form one rule (AND),
   several comparisons on the same argument one rule each (OR), as runc does;
3. the program is exported and prefixed with the ENOSYS stub (bpf.py) unless the
   default action already allows everything (ALLOW, LOG, TRACE) or is ENOSYS.

The result is cached (cache.py) under a SHA-256 of what it depends on: the resolved
rules (which already reflect the capabilities, the host's architecture and kernel
version), the architecture, libseccomp's version and this compiler's version.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from ...errors import RuntimeFailure, UsageError
from . import bpf, cache
from . import libseccomp as L
from .rules import Resolved, host, resolve, validate

COMPILER_VERSION = "1"
EPERM = 1
ENOSYS = 38
SOURCE = "seccomp profile"

_OPS = {"SCMP_CMP_NE": L.CMP_NE, "SCMP_CMP_LT": L.CMP_LT, "SCMP_CMP_LE": L.CMP_LE,
        "SCMP_CMP_EQ": L.CMP_EQ, "SCMP_CMP_GE": L.CMP_GE, "SCMP_CMP_GT": L.CMP_GT,
        "SCMP_CMP_MASKED_EQ": L.CMP_MASKED_EQ}
_PERMISSIVE = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")


class ArgCmp(NamedTuple):
    """One argument comparison of a rule: ``arg`` (0-5) ``op`` ``a`` [``b``].

    For ``CMP_MASKED_EQ`` the comparison is ``(arg & a) == b``; otherwise ``arg op a``."""

    arg: int
    op: int
    a: int
    b: int = 0


def action_value(action: str, errno: int | None) -> int:
    """A Docker action name (+ errnoRet) as libseccomp's / the kernel's value."""
    if action == "SCMP_ACT_ALLOW":
        return L.ACT_ALLOW
    if action == "SCMP_ACT_ERRNO":
        return L.ACT_ERRNO | ((EPERM if errno is None else errno) & 0xFFFF)
    if action in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return L.ACT_KILL_THREAD
    if action == "SCMP_ACT_KILL_PROCESS":
        return L.ACT_KILL_PROCESS
    if action == "SCMP_ACT_TRAP":
        return L.ACT_TRAP
    if action == "SCMP_ACT_TRACE":
        return L.ACT_TRACE | ((EPERM if errno is None else errno) & 0xFFFF)
    if action == "SCMP_ACT_LOG":
        return L.ACT_LOG
    raise UsageError(f'{SOURCE}: unsupported action "{action}"')


def _version() -> str:
    return ".".join(map(str, L.version()))


def cache_key(res: Resolved, native: str) -> str:
    parts = [f"nutshell-seccomp/{COMPILER_VERSION}", "libseccomp " + _version(),
             native, repr(res)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def compile_filter(profile: dict, caps: list[str], *, cache_dir: str | None = None) -> bytes:
    """The BPF program (``struct sock_filter[]``) for ``profile`` and a container holding
    ``caps`` (Docker names: "CHOWN", "SYS_ADMIN"; "CAP_" prefixes are accepted)."""
    validate(profile, SOURCE)
    if profile.get("flags"):
        install_options(profile)            # a listed flag this kernel lacks: refused
    h = host()
    res = resolve(profile, caps, h)
    L.lib()                                 # RuntimeFailure when libseccomp is missing
    return cache.lookup(cache_key(res, h.scmp_arch), cache_dir, lambda: compile_resolved(res))


def _arch_tokens(res: Resolved) -> list[int]:
    tokens = [L.native_arch()]
    version = _version()
    for name in res.arches:
        token = L.arch_token(name)
        if not token:
            raise UsageError(f"{SOURCE}: architecture {name} is not supported by "
                             f"libseccomp {version}")
        if token not in tokens:
            tokens.append(token)
    return tokens


def compile_resolved(res: Resolved) -> bytes:
    """Compile (no cache): libseccomp's program, prefixed with the ENOSYS stub."""
    default = action_value(res.default_action, res.default_errno)
    tokens = _arch_tokens(res)
    try:
        with L.Filter(default) as f:
            f.set_attr(L.ATTR_CTL_NNP, 0)
            for token in tokens[1:]:
                f.add_arch(token)
            if sum(len(r.names) for r in res.rules) > 32:
                try:
                    f.set_attr(L.ATTR_CTL_OPTIMIZE, 2)
                except L.LibseccompError:
                    pass                    # an older libseccomp: the linear layout
            for rule in res.rules:
                _add_rule(f, rule, default)
            program = f.export_bpf()
    except L.LibseccompError as e:
        raise RuntimeFailure(f"compiling the seccomp profile: {e.strerror}") from None
    if not (res.default_action in _PERMISSIVE
            or default == L.ACT_ERRNO | ENOSYS):
        program = bpf.enosys_prefix(_limits(res, tokens)) + program
    n = len(program) // bpf.INSN.size
    if n > bpf.MAXINSNS:
        raise UsageError(f"{SOURCE}: the compiled filter has {n} instructions, more than "
                         f"the kernel's limit of {bpf.MAXINSNS}")
    return program


def _add_rule(f: L.Filter, rule, default: int) -> None:
    action = action_value(rule.action, rule.errno)
    if action == default:
        return
    conds = [ArgCmp(a.arg, _OPS[a.op], a.value, a.value_two) for a in rule.args]
    one_per_arg = len({a.arg for a in rule.args}) == len(rule.args)
    for name in rule.names:
        nr = L.syscall_number(name)
        if nr == L.NR_SCMP_ERROR:
            continue
        try:
            if one_per_arg:
                f.add_rule(action, nr, conds)
            else:
                for c in conds:
                    f.add_rule(action, nr, [c])
        except L.LibseccompError as e:
            raise UsageError(f"{SOURCE}: the rule for {name} was refused by libseccomp: "
                             f"{e.strerror}") from None


def _limits(res: Resolved, tokens: list[int]) -> list[bpf.ArchLimit]:
    """The highest syscall number the profile names, per architecture in the filter."""
    names = {n for r in res.rules for n in r.names}
    x32 = L.arch_token("x32")
    by_audit: dict[int, dict[str, int | None]] = {}
    for token in tokens:
        highest = max((L.syscall_number(n, token) for n in names), default=-1)
        if highest <= 0:
            continue
        audit = bpf.AUDIT_ARCH_X86_64 if token == x32 else token
        slot = by_audit.setdefault(audit, {"max": None, "x32": None})
        slot["x32" if token == x32 else "max"] = highest
    return [bpf.ArchLimit(audit, s["max"], s["x32"]) for audit, s in by_audit.items()]


def install_options(profile: dict) -> dict[str, bool]:
    """The keyword arguments of ``install`` for this profile's ``flags``: LOG and
    SPEC_ALLOW when listed; when ``flags`` is absent, SPEC_ALLOW if the kernel has it
    (runc's default, so Docker's containers are not forced into the speculative store
    bypass mitigation). A listed flag the kernel lacks is refused (RuntimeFailure)."""
    from . import load

    flags = profile.get("flags")
    if flags is None:
        return {"log": False,
                "spec_allow": load.flag_supported(load.SECCOMP_FILTER_FLAG_SPEC_ALLOW)}
    wanted = {"log": "SECCOMP_FILTER_FLAG_LOG" in flags,
              "spec_allow": "SECCOMP_FILTER_FLAG_SPEC_ALLOW" in flags}
    bits = {"log": load.SECCOMP_FILTER_FLAG_LOG,
            "spec_allow": load.SECCOMP_FILTER_FLAG_SPEC_ALLOW}
    for opt, on in wanted.items():
        if on and not load.flag_supported(bits[opt]):
            name = "SECCOMP_FILTER_FLAG_" + opt.upper()
            raise RuntimeFailure(f"{SOURCE}: flag {name} is not supported by this kernel")
    return wanted
