"""Docker's seccomp profile format: checking a profile, and resolving it for one container.

Checking (:func:`validate`) follows what Docker's and runc's decoders accept, with one
clear line for the first problem: ``seccomp profile /x.json: syscalls[3].action:
unknown action "SCMP_ACT_FOO"``. Keys Docker does not know are ignored, as Go's JSON
decoder ignores them; ``null`` stands for "absent" wherever Go would take it so.

Resolving (:func:`resolve`) is moby's ``setupSeccomp``: the native architecture's
``archMap`` entry becomes the architecture list, and each rule block is kept or dropped
by its ``includes``/``excludes`` conditions: capabilities (all of ``includes.caps`` must
be held; any held cap of ``excludes.caps`` drops the block), the host's architecture
(Docker's names: amd64, arm64, x86, s390x, ...) and the running kernel's version
(``minKernel``, major.minor only).
"""


import os
import re
import struct
import sys
from typing import NamedTuple

from ...errors import UsageError

PROFILE_MAX = 4 << 20
# errnoRet: an errno (MAX_ERRNO). Docker's parser takes any number, but libseccomp refuses
# a larger one when runc compiles it, so the container would never start.
MAX_ERRNO_RET = 4095

ACTIONS = ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD",
           "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_LOG",
           "SCMP_ACT_NOTIFY")
OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
             "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")
# the runtime-spec's architecture names, and Docker's short name of each (what
# includes/excludes "arches" compare with)
ARCHES = {
    "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X86_64": "amd64", "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm", "SCMP_ARCH_AARCH64": "arm64", "SCMP_ARCH_MIPS": "mips",
    "SCMP_ARCH_MIPS64": "mips64", "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel", "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32", "SCMP_ARCH_PPC": "ppc",
    "SCMP_ARCH_PPC64": "ppc64", "SCMP_ARCH_PPC64LE": "ppc64le",
    "SCMP_ARCH_S390": "s390", "SCMP_ARCH_S390X": "s390x",
    "SCMP_ARCH_RISCV64": "riscv64", "SCMP_ARCH_LOONGARCH64": "loongarch64",
    "SCMP_ARCH_PARISC": "parisc", "SCMP_ARCH_PARISC64": "parisc64",
    "SCMP_ARCH_M68K": "m68k", "SCMP_ARCH_SH": "sh", "SCMP_ARCH_SHEB": "sheb",
}
# filter flags: the ones we can honour, and the ones we refuse with a reason
FLAGS = ("SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
         "SECCOMP_FILTER_FLAG_SPEC_ALLOW")
REFUSED_FLAGS = {
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV":
        "only meaningful with SCMP_ACT_NOTIFY, which Nutshell does not support",
    "SECCOMP_FILTER_FLAG_NEW_LISTENER": "seccomp user notification is not supported",
}
NOTIFY_REFUSED = "SCMP_ACT_NOTIFY (a seccomp agent) is not supported by Nutshell"
_U64 = (1 << 64) - 1


class Arg(NamedTuple):
    """One argument comparison: ``args[arg] op value`` (``(args[arg] & value) ==
    value_two`` for SCMP_CMP_MASKED_EQ); ``arg`` is Docker's ``index``."""

    arg: int
    value: int
    value_two: int
    op: str


class Rule(NamedTuple):
    """A rule block that applies to this container: every name gets ``action``
    (``errno``: its errnoRet, None for the default) when all ``args`` hold."""

    names: tuple[str, ...]
    action: str
    errno: int | None = None
    args: tuple[Arg, ...] = ()


class Resolved(NamedTuple):
    """A profile resolved for one container on this host (what runc would receive)."""

    default_action: str
    default_errno: int | None
    arches: tuple[str, ...]            # SCMP_ARCH_* names; empty: the native one only
    flags: tuple[str, ...] | None      # None: not given (runc then adds SPEC_ALLOW)
    rules: tuple[Rule, ...] = ()


class Host(NamedTuple):
    """What rule conditions are compared with: Docker's name of this architecture
    (amd64, arm64, ...), its SCMP_ARCH_* name, and the kernel's (major, minor)."""

    arch: str
    scmp_arch: str
    kernel: tuple[int, int]


# --- the host ---------------------------------------------------------------------------

def _machine_arch() -> str:
    """This process's architecture as a SCMP_ARCH_* name (a 32-bit Python on a 64-bit
    kernel is the 32-bit architecture)."""
    m = os.uname().machine
    bits = struct.calcsize("P") * 8
    little = sys.byteorder == "little"
    if m == "x86_64":
        return "SCMP_ARCH_X86_64" if bits == 64 else "SCMP_ARCH_X86"
    if re.fullmatch(r"i[3-6]86", m):
        return "SCMP_ARCH_X86"
    if m in ("aarch64", "arm64"):
        return "SCMP_ARCH_AARCH64" if bits == 64 else "SCMP_ARCH_ARM"
    if m.startswith("arm"):
        return "SCMP_ARCH_ARM"
    if m == "ppc64le":
        return "SCMP_ARCH_PPC64LE"
    if m == "ppc64":
        return "SCMP_ARCH_PPC64" if bits == 64 else "SCMP_ARCH_PPC"
    if m == "ppc":
        return "SCMP_ARCH_PPC"
    if m == "s390x":
        return "SCMP_ARCH_S390X" if bits == 64 else "SCMP_ARCH_S390"
    if m == "riscv64":
        return "SCMP_ARCH_RISCV64"
    if m == "loongarch64":
        return "SCMP_ARCH_LOONGARCH64"
    if m.startswith("mips64"):
        return "SCMP_ARCH_MIPSEL64" if little else "SCMP_ARCH_MIPS64"
    if m.startswith("mips"):
        return "SCMP_ARCH_MIPSEL" if little else "SCMP_ARCH_MIPS"
    return ""


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """(major, minor) of a kernel release string: ``6.1.0-18-amd64`` -> (6, 1)."""
    m = re.match(r"(\d+)\.(\d+)", release if release is not None else os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def host() -> Host:
    scmp = _machine_arch()
    return Host(arch=ARCHES.get(scmp, ""), scmp_arch=scmp, kernel=kernel_version())


# --- checking ---------------------------------------------------------------------------

class _Checker:
    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, problem: str):
        raise UsageError(f"{self.source}: {where}: {problem}" if where else
                         f"{self.source}: {problem}")

    def typed(self, value, kind, where: str, what: str):
        if value is None:
            return None
        ok = (isinstance(value, kind) and not (kind is int and isinstance(value, bool)))
        if not ok:
            self.fail(where, f"expected {what}, got {_json_type(value)}")
        return value

    def entry(self, value, where: str) -> dict:
        """A list item that must be an object (null included in the refusal)."""
        self.typed(value, dict, where, "an object")
        if value is None:
            self.fail(where, "expected an object, got null")
        return value

    def string_list(self, value, where: str) -> list[str]:
        self.typed(value, list, where, "a list of strings")
        for i, item in enumerate(value or []):
            self.typed(item, str, f"{where}[{i}]", "a string")
            if item is None:
                self.fail(f"{where}[{i}]", "expected a string, got null")
        return list(value or [])

    def uint(self, value, where: str, limit: int) -> int | None:
        self.typed(value, int, where, "an unsigned integer")
        if value is not None and not 0 <= value <= limit:
            self.fail(where, f"{value} is out of range (0 to {limit})")
        return value

    def arch(self, value, where: str) -> None:
        if value is None:
            self.fail(where, "expected a string, got null")
        self.typed(value, str, where, "a string")
        if value not in ARCHES:
            self.fail(where, f'unknown architecture "{value}"')

    def action(self, value, where: str) -> str:
        if value is None or value == "":
            self.fail(where, "an action is required")
        self.typed(value, str, where, "a string")
        if value == "SCMP_ACT_NOTIFY":
            self.fail(where, NOTIFY_REFUSED)
        if value not in ACTIONS:
            self.fail(where, f'unknown action "{value}"')
        return value

    def errno(self, value, where: str) -> None:
        if value is None:
            return
        # (ignored, as by runc, unless the action is SCMP_ACT_ERRNO or SCMP_ACT_TRACE)
        self.uint(value, where, MAX_ERRNO_RET)

    def filter(self, value, where: str) -> None:
        self.typed(value, dict, where, "an object")
        if not value:
            return
        # names Docker does not know simply never match, as in Docker
        self.string_list(value.get("caps"), f"{where}.caps")
        self.string_list(value.get("arches"), f"{where}.arches")
        mk = value.get("minKernel")
        if mk is not None:
            self.typed(mk, str, f"{where}.minKernel", 'a string "<kernel>.<major>"')
            if mk != "" and _parse_min_kernel(mk) is None:
                self.fail(f"{where}.minKernel",
                          f'invalid kernel version "{mk}", expected "<kernel>.<major>"')

    def arg(self, value, where: str) -> None:
        self.typed(value, dict, where, "an object")
        if value is None:
            self.fail(where, "expected an object, got null")
        index = self.uint(value.get("index", 0), f"{where}.index", _U64)
        if index is not None and index > 5:
            self.fail(f"{where}.index", f"{index} is out of range (system calls have "
                                        "6 arguments: 0 to 5)")
        self.uint(value.get("value", 0), f"{where}.value", _U64)
        self.uint(value.get("valueTwo", 0), f"{where}.valueTwo", _U64)
        op = value.get("op")
        if op is None or op == "":
            self.fail(f"{where}.op", "an operator is required")
        self.typed(op, str, f"{where}.op", "a string")
        if op not in OPERATORS:
            self.fail(f"{where}.op", f'unknown operator "{op}"')


def _json_type(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number" if isinstance(v, int) else f"the number {v}"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _parse_min_kernel(text: str) -> tuple[int, int] | None:
    """Docker's ``"<kernel>.<major>"``: two decimal numbers below 256, not 0.0."""
    parts = text.split(".")
    if len(parts) != 2 or not all(re.fullmatch(r"\+?\d+", p) for p in parts):
        return None
    k, m = int(parts[0]), int(parts[1])
    if k > 255 or m > 255 or (k, m) == (0, 0):
        return None
    return (k, m)


def validate(profile, source: str) -> None:
    """Check a profile in Docker's format; UsageError (one line) for the first problem."""
    c = _Checker(source)
    if not isinstance(profile, dict):
        c.fail("", f"expected a JSON object, got {_json_type(profile)}")
    c.action(profile.get("defaultAction"), "defaultAction")
    c.errno(profile.get("defaultErrnoRet"), "defaultErrnoRet")
    arches = c.string_list(profile.get("architectures"), "architectures")
    for i, a in enumerate(arches):
        c.arch(a, f"architectures[{i}]")
    arch_map = c.typed(profile.get("archMap"), list, "archMap", "a list") or []
    for i, entry in enumerate(arch_map):
        where = f"archMap[{i}]"
        c.entry(entry, where)
        c.arch(entry.get("architecture"), f"{where}.architecture")
        for j, sub in enumerate(c.string_list(entry.get("subArchitectures"),
                                              f"{where}.subArchitectures")):
            c.arch(sub, f"{where}.subArchitectures[{j}]")
    if arches and arch_map:
        c.fail("", "both 'architectures' and 'archMap' are specified, use either "
                   "'architectures' or 'archMap'")
    for i, flag in enumerate(c.string_list(profile.get("flags"), "flags")):
        if flag in REFUSED_FLAGS:
            c.fail(f"flags[{i}]", f'"{flag}": {REFUSED_FLAGS[flag]}')
        if flag not in FLAGS:
            c.fail(f"flags[{i}]", f'unknown flag "{flag}"')
    if c.typed(profile.get("listenerPath"), str, "listenerPath", "a string"):
        c.fail("listenerPath", NOTIFY_REFUSED)
    c.typed(profile.get("listenerMetadata"), str, "listenerMetadata", "a string")
    calls = c.typed(profile.get("syscalls"), list, "syscalls", "a list") or []
    for i, call in enumerate(calls):
        where = f"syscalls[{i}]"
        c.entry(call, where)
        name = c.typed(call.get("name"), str, f"{where}.name", "a string")
        names = c.string_list(call.get("names"), f"{where}.names")
        if name and names:
            c.fail(where, "both 'name' and 'names' are specified, use either 'name' or "
                          "'names'")
        if not name and not names:
            c.fail(where, "no system call named ('names' is empty)")
        for j, n in enumerate(names):
            if not n:
                c.fail(f"{where}.names[{j}]", "empty system call name")
        c.action(call.get("action"), f"{where}.action")
        c.errno(call.get("errnoRet"), f"{where}.errnoRet")
        args = c.typed(call.get("args"), list, f"{where}.args", "a list") or []
        for j, arg in enumerate(args):
            c.arg(arg, f"{where}.args[{j}]")
        c.typed(call.get("comment"), str, f"{where}.comment", "a string")
        c.filter(call.get("includes"), f"{where}.includes")
        c.filter(call.get("excludes"), f"{where}.excludes")


def parse(data: bytes | str, source: str) -> dict:
    """A profile from JSON text, checked. UsageError for bad JSON, size or content."""
    import json

    if isinstance(data, str):
        data = data.encode()
    if len(data) > PROFILE_MAX:
        raise UsageError(f"{source}: larger than {PROFILE_MAX >> 20} MiB")
    try:
        profile = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise UsageError(f"{source}: not valid JSON: {e}") from None
    validate(profile, source)
    return profile


def read_profile(path: str) -> dict:
    """A profile file, read (at most 4 MiB) and checked."""
    source = f"seccomp profile {path}"
    try:
        with open(path, "rb") as f:
            data = f.read(PROFILE_MAX + 1)
    except OSError as e:
        raise UsageError(f"{source}: cannot read it: {e.strerror or e}") from None
    return parse(data, source)


# --- resolving for a container ----------------------------------------------------------

def cap_names(caps) -> frozenset[str]:
    """``["CHOWN", "sys_admin", "CAP_KILL"]`` -> the ``CAP_*`` names profiles use."""
    out = set()
    for c in caps or ():
        n = str(c).strip().upper()
        out.add(n if n.startswith("CAP_") else "CAP_" + n)
    return frozenset(out)


def _block_applies(call: dict, caps: frozenset[str], h: Host) -> bool:
    exc = call.get("excludes") or {}
    if exc.get("arches") and h.arch in exc["arches"]:
        return False
    if exc.get("caps") and any(c in caps for c in exc["caps"]):
        return False
    if exc.get("minKernel") and h.kernel >= (_parse_min_kernel(exc["minKernel"]) or (0, 0)):
        return False
    inc = call.get("includes") or {}
    if inc.get("arches") and h.arch not in inc["arches"]:
        return False
    if inc.get("caps") and not all(c in caps for c in inc["caps"]):
        return False
    if inc.get("minKernel") and h.kernel < (_parse_min_kernel(inc["minKernel"]) or (0, 0)):
        return False
    return True


def resolve(profile: dict, caps, h: Host | None = None) -> Resolved:
    """The rules that apply to a container with capabilities ``caps`` on host ``h``
    (this one by default). ``profile`` must have been validated."""
    h = h or host()
    held = cap_names(caps)
    arches = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == h.scmp_arch:
            arches = [h.scmp_arch, *(entry.get("subArchitectures") or [])]
            break
    rules = []
    for call in profile.get("syscalls") or []:
        if not _block_applies(call, held, h):
            continue
        names = tuple(call.get("names") or ()) or (call["name"],)
        args = tuple(Arg(arg=a.get("index") or 0, value=a.get("value") or 0,
                         value_two=a.get("valueTwo") or 0, op=a["op"])
                     for a in call.get("args") or ())
        rules.append(Rule(names=names, action=call["action"], errno=call.get("errnoRet"),
                          args=args))
    flags = profile.get("flags")
    return Resolved(default_action=profile["defaultAction"],
                    default_errno=profile.get("defaultErrnoRet"),
                    arches=tuple(dict.fromkeys(arches)),
                    flags=None if flags is None else tuple(flags),
                    rules=tuple(rules))
