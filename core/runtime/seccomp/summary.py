"""What a seccomp profile means for one container, in words: the teaching view's data.

Everything here is computed from the profile as resolved for the container's
capabilities on this host (rules.py), not from a table of answers: give the container
CAP_SYS_ADMIN and ``mount`` leaves the blocked list; remove the ``personality`` rules
and it joins it. No libseccomp is needed.
"""

from __future__ import annotations

import errno as _errno
from dataclasses import dataclass, field

from .rules import Arg, Host, Resolved, _block_applies, cap_names, host, resolve

# calls a student should know about, in the order the view lists them
NOTABLE = (
    "mount", "umount2", "unshare", "setns", "clone", "clone3", "pivot_root", "chroot",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "ptrace",
    "process_vm_readv", "open_by_handle_at", "reboot", "init_module", "finit_module",
    "delete_module", "kexec_load", "kexec_file_load", "clock_settime", "settimeofday",
    "swapon", "swapoff", "acct", "syslog", "iopl", "ioperm", "personality", "socket",
    "userfaultfd", "io_uring_setup", "quotactl", "sethostname", "vhangup", "mbind",
)

_CLONE_FLAGS = {
    0x00000100: "CLONE_VM", 0x00020000: "CLONE_NEWNS", 0x02000000: "CLONE_NEWCGROUP",
    0x04000000: "CLONE_NEWUTS", 0x08000000: "CLONE_NEWIPC", 0x10000000: "CLONE_NEWUSER",
    0x20000000: "CLONE_NEWPID", 0x40000000: "CLONE_NEWNET", 0x00000080: "CLONE_NEWTIME",
}
_FAMILIES = {
    1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET",
    31: "AF_BLUETOOTH", 38: "AF_ALG", 39: "AF_NFC", 40: "AF_VSOCK", 41: "AF_KCM",
    42: "AF_QIPCRTR", 43: "AF_SMC", 44: "AF_XDP", 45: "AF_MCTP",
}
_ARG_NAMES = {
    "socket": ("domain", "type", "protocol"), "personality": ("persona",),
    "clone": ("flags",), "unshare": ("flags",),
}
_OPS = {"SCMP_CMP_NE": "!=", "SCMP_CMP_LT": "<", "SCMP_CMP_LE": "<=", "SCMP_CMP_EQ": "==",
        "SCMP_CMP_GE": ">=", "SCMP_CMP_GT": ">"}
_U64 = (1 << 64) - 1


@dataclass
class SeccompSummary:
    """A container's seccomp confinement, for the app's teaching view.

    ``mode``: "filter" (what /proc/PID/status calls ``Seccomp: 2``).
    ``default_action``: what an unlisted call gets, e.g. "ERRNO(EPERM)".
    ``allowed``: how many syscall names the profile allows this container (some only
    with certain arguments: ``conditional``). ``blocked``: (syscall, reason) for the
    notable calls this container is refused, entirely or partly. ``arches``: the
    architectures the filter covers. ``newer_syscalls``: what a syscall newer than the
    profile gets ("ENOSYS", so libc falls back, or the default action)."""

    mode: str
    default_action: str
    allowed: int
    conditional: list[str] = field(default_factory=list)
    blocked: list[tuple[str, str]] = field(default_factory=list)
    arches: list[str] = field(default_factory=list)
    newer_syscalls: str = ""


def action_text(action: str, errno: int | None = None) -> str:
    """``SCMP_ACT_ERRNO`` + 1 -> ``ERRNO(EPERM)``; ``SCMP_ACT_KILL`` -> ``KILL_THREAD``."""
    short = action.removeprefix("SCMP_ACT_")
    if short == "KILL":
        short = "KILL_THREAD"
    if short in ("ERRNO", "TRACE"):
        n = 1 if errno is None else errno
        return f"{short}({_errno.errorcode.get(n, n)})" if short == "ERRNO" else f"TRACE({n})"
    return short


def _holds(arg: Arg, values: tuple[int, ...]) -> bool:
    v = values[arg.arg] & _U64 if arg.arg < len(values) else 0
    if arg.op == "SCMP_CMP_MASKED_EQ":
        return v & arg.value == arg.value_two
    return {"SCMP_CMP_NE": v != arg.value, "SCMP_CMP_LT": v < arg.value,
            "SCMP_CMP_LE": v <= arg.value, "SCMP_CMP_EQ": v == arg.value,
            "SCMP_CMP_GE": v >= arg.value, "SCMP_CMP_GT": v > arg.value}[arg.op]


def _rule_matches(rule, values: tuple[int, ...]) -> bool:
    """A rule's comparisons, combined as runc combines them (several comparisons of one
    argument: any; otherwise: all)."""
    if not rule.args:
        return True
    if len({a.arg for a in rule.args}) != len(rule.args):
        return any(_holds(a, values) for a in rule.args)
    return all(_holds(a, values) for a in rule.args)


def _arg_text(name: str, a: Arg) -> str:
    names = _ARG_NAMES.get(name, ())
    label = names[a.arg] if a.arg < len(names) else f"arg{a.arg}"
    if a.op == "SCMP_CMP_MASKED_EQ":
        return f"{label} & {a.value:#x} == {a.value_two:#x}"
    return f"{label} {_OPS[a.op]} {a.value:#x}"


def _conditional_reason(name: str, allow_rules: list) -> str:
    """Why a call allowed only with some arguments is (partly) refused."""
    if name == "socket" and all(len(r.args) == 1 and r.args[0].arg == 0
                                for r in allow_rules):
        refused = [d for d in range(64)
                   if not any(_rule_matches(r, (d,)) for r in allow_rules)]
        if refused and len(refused) <= 8:
            fams = ", ".join(f"{_FAMILIES.get(d, 'family')} ({d})" for d in refused)
            return f"refused for address families {fams}; the others are allowed"
    masks = [r.args[0] for r in allow_rules
             if len(r.args) == 1 and r.args[0].op == "SCMP_CMP_MASKED_EQ"
             and r.args[0].value_two == 0]
    if name in ("clone", "unshare") and masks and len(masks) == len(allow_rules):
        bits = masks[0].value
        flags = [f for bit, f in sorted(_CLONE_FLAGS.items()) if bits & bit]
        if flags and all(_CLONE_FLAGS.get(1 << i) for i in range(64) if bits >> i & 1):
            return "refused with namespace flags (" + ", ".join(flags) + ")"
        return f"refused when flags & {bits:#x} != 0"
    eqs = [r.args[0] for r in allow_rules if len(r.args) == 1 and r.args[0].op == "SCMP_CMP_EQ"]
    if eqs and len(eqs) == len(allow_rules) and len({a.arg for a in eqs}) == 1:
        label = _arg_text(name, eqs[0]).split(" ")[0]
        values = ", ".join(f"{a.value:#x}" for a in eqs)
        return f"allowed only for {label} {values}; any other value is refused"
    alts = [" and ".join(_arg_text(name, a) for a in r.args) for r in allow_rules]
    return "allowed only when " + " or ".join(alts)


def _caps_hint(profile: dict, name: str, held: frozenset[str], h: Host) -> str:
    """Which capabilities would give ``name`` back entirely, from the profile's
    capability-conditional blocks."""
    options = []
    for call in profile.get("syscalls") or []:
        names = call.get("names") or ([call["name"]] if call.get("name") else [])
        inc = call.get("includes") or {}
        if (name not in names or call.get("action") != "SCMP_ACT_ALLOW"
                or call.get("args") or not inc.get("caps")):
            continue
        # the block would apply if the container held its capabilities
        if _block_applies(call, held | frozenset(inc["caps"]), h):
            options.append(" + ".join(inc["caps"]))
    if not options:
        return ""
    return "; allowed with " + " or ".join(dict.fromkeys(options))


def summarize(profile: dict, caps, h: Host | None = None) -> SeccompSummary:
    h = h or host()
    res: Resolved = resolve(profile, caps, h)
    held = cap_names(caps)
    default = action_text(res.default_action, res.default_errno)
    by_name: dict[str, list] = {}
    for rule in res.rules:
        for n in rule.names:
            by_name.setdefault(n, []).append(rule)

    def allows(rule) -> bool:
        return rule.action in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG")

    allowed = {n for n, rs in by_name.items() if any(allows(r) for r in rs)}
    conditional = sorted(n for n in allowed
                         if not any(allows(r) and not r.args for r in by_name[n]))
    blocked = []
    for name in NOTABLE:
        rules = by_name.get(name, [])
        if any(allows(r) and not r.args for r in rules):
            continue
        hint = _caps_hint(profile, name, held, h)
        allow_rules = [r for r in rules if allows(r)]
        other = [r for r in rules if not allows(r) and not r.args]
        if allow_rules:
            reason = _conditional_reason(name, allow_rules) + hint
        elif other:
            act = action_text(other[0].action, other[0].errno)
            reason = f"answers {act}"
            if act == "ERRNO(ENOSYS)":
                reason += ", so libc falls back to an older call"
            reason += hint
        else:
            reason = f"{default}: not in the allowlist" + (
                hint or "; no capability gives it back")
        blocked.append((name, reason))
    stub = not (res.default_action in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")
                or default == "ERRNO(ENOSYS)")
    return SeccompSummary(
        mode="filter", default_action=default, allowed=len(allowed),
        conditional=conditional, blocked=blocked,
        arches=list(res.arches) or [h.scmp_arch],
        newer_syscalls="ERRNO(ENOSYS)" if stub else default)
