"""Capabilities: Docker's default set, --cap-add/--cap-drop, and applying them in init.

Docker (moby ``daemon/pkg/oci/caps/defaults.go``) gives a container 14 capabilities in
its bounding, permitted and effective sets, and an empty inheritable set (since
CVE-2022-24769). For root that reads as ``CapEff: 00000000a80425fb`` in
``/proc/self/status``. A non-root user keeps the bounding set but loses the rest at
execve, as under Docker.
"""

from __future__ import annotations

from ..errors import UsageError

NAMES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
    "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
    "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
    "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]
NUMBERS = {name: i for i, name in enumerate(NAMES)}

DOCKER_DEFAULT = [
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
]


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


def normalize(name: str) -> str:
    """``net_admin``, ``CAP_NET_ADMIN`` -> ``NET_ADMIN``; ``all`` -> ``ALL``."""
    n = name.strip().upper()
    if n.startswith("CAP_"):
        n = n[4:]
    if n != "ALL" and n not in NUMBERS:
        raise UsageError(f'unknown capability: "CAP_{n}"')
    return n


def resolve(cap_add: list[str] | None = None, cap_drop: list[str] | None = None) -> list[str]:
    """The container's capability names after --cap-add/--cap-drop, by moby's rules
    (``TweakCapabilities``): ALL in --cap-add means every capability but the dropped
    ones; ALL in --cap-drop means only the added ones; otherwise the default 14 minus
    the drops, plus the adds."""
    adds = [normalize(c) for c in (cap_add or [])]
    drops = [normalize(c) for c in (cap_drop or [])]
    if "ALL" in adds:
        return [c for c in NAMES[: last_cap() + 1] if c not in drops]
    if "ALL" in drops:
        return list(dict.fromkeys(adds))
    caps = [c for c in DOCKER_DEFAULT if c not in drops]
    caps += [c for c in adds if c not in caps]
    return caps


def mask(names: list[str]) -> int:
    m = 0
    for n in names:
        m |= 1 << NUMBERS[n]
    return m


def names_of(mask_value: int) -> list[str]:
    return [NAMES[i] for i in range(len(NAMES)) if mask_value >> i & 1]


# --- applying them (container init and exec, after fork) ----------------------------------

def drop_bounding(keep: int) -> None:
    """Drop every capability not in ``keep`` from the bounding set (PR_CAPBSET_DROP)."""
    from . import linux

    for cap in range(last_cap() + 1):
        if not keep >> cap & 1:
            try:
                linux.prctl(linux.PR_CAPBSET_DROP, cap)
            except OSError as e:
                if e.errno != 22:  # EINVAL: the kernel does not know this cap
                    raise


def limit_bounding(keep: int) -> int:
    """Step 1, while still root (dropping needs CAP_SETPCAP in the effective set): drop
    what we will not keep from the bounding set. Returns the mask we can really keep."""
    from . import linux

    _eff, permitted, _inh = linux.capget()
    keep &= permitted
    drop_bounding(keep)
    return keep


def set_caps(keep: int) -> None:
    """Step 2, after the uid switch (PR_SET_KEEPCAPS set before it): permitted and
    effective = ``keep``; inheritable and ambient empty."""
    from . import linux

    try:
        linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        pass
    linux.capset(keep, keep, 0)
