"""A container's confinement: ``--privileged``, ``--security-opt`` and what they decide.

Docker's meaning of each, reproduced (docs/security.md has the table and the tests):

* default: Docker's 14 capabilities, Docker's seccomp profile (seccomp/), masked and
  read-only paths under /proc and /sys, /sys and the cgroup file system read-only, a
  device cgroup allowing only the standard devices, no_new_privs off.
* ``--security-opt seccomp=unconfined``: no seccomp filter; ``seccomp=builtin``: the
  default profile; ``seccomp=PROFILE.json``: that profile, read and checked at create and
  kept in the container's config (as Docker's client sends the file's content, so a
  later change or removal of the file does not change the container).
* ``--security-opt no-new-privileges[=true|false]``: PR_SET_NO_NEW_PRIVS before exec
  (setuid binaries and file capabilities give nothing; the seccomp filter is then loaded
  last, right before execve, as runc does).
* ``--security-opt systempaths=unconfined``: no masked or read-only /proc and /sys paths.
* ``--security-opt apparmor=unconfined`` / ``label=disable``: accepted (Nutshell applies
  no AppArmor or SELinux confinement to lift); any other AppArmor/SELinux option is
  refused rather than silently ignored.
* ``--privileged``: every capability (``--cap-add``/``--cap-drop`` are ignored, as in
  Docker), no seccomp (unless a profile is asked for explicitly: Docker then applies
  it), no masked or read-only paths, /sys and the cgroup file system writable, every
  host device node in /dev and a device cgroup that allows them all.

Option strings accept Docker's ``=`` and its older ``:`` separator.
"""

from __future__ import annotations

import json
import os

from core.records import record

from ..errors import UsageError

PROFILE_MAX = 4 << 20  # a profile's size at most (seccomp/rules.py checks the same)


@record
class Confinement:
    """What a container's security options decide (derived from its config)."""

    privileged: bool = False
    seccomp: str = "default"            # "default" | "unconfined" | "custom"
    seccomp_profile: dict | None = None  # the custom profile (Docker's format)
    no_new_privileges: bool = False
    system_paths: bool = True           # masked and read-only paths applied


def _split(opt: str) -> tuple[str, str | None]:
    for sep in ("=", ":"):
        if sep in opt:
            k, _, v = opt.partition(sep)
            return k.strip(), v
    return opt.strip(), None


def _bool(key: str, value: str | None) -> bool:
    if value is None:
        return True
    v = value.strip().lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise UsageError(f"invalid --security-opt {key}: {value!r}: expected true or false")


def normalize(opts: list[str] | None) -> list[str]:
    """``--security-opt`` values as they are stored in ``HostConfig.SecurityOpt``: a
    profile path is replaced by ``seccomp=<the profile's JSON>`` (read and validated
    now). Raises UsageError, one line, for anything we cannot honour."""
    out = []
    for opt in opts or []:
        if not isinstance(opt, str) or not opt.strip():
            raise UsageError(f"invalid --security-opt: {opt!r}")
        key, value = _split(opt)
        if key == "seccomp":
            if not value:
                raise UsageError("invalid --security-opt seccomp: a profile path, "
                                 "unconfined or builtin is required")
            if value in ("unconfined", "builtin"):
                out.append(f"seccomp={value}")
            elif value.lstrip().startswith("{"):
                profile = _profile_from_text(value, "the seccomp profile")
                out.append("seccomp=" + json.dumps(profile, separators=(",", ":")))
            else:
                profile = read_profile(value)
                out.append("seccomp=" + json.dumps(profile, separators=(",", ":")))
        elif key == "no-new-privileges":
            out.append(f"no-new-privileges={'true' if _bool(key, value) else 'false'}")
        elif key == "systempaths":
            if value != "unconfined":
                raise UsageError(f"invalid --security-opt systempaths: {value!r}: "
                                 "only unconfined is supported")
            out.append("systempaths=unconfined")
        elif key == "apparmor":
            if value != "unconfined":
                raise UsageError(f"--security-opt apparmor={value}: AppArmor profiles are not "
                                 "supported by Nutshell", hint="only apparmor=unconfined")
            out.append("apparmor=unconfined")
        elif key == "label":
            if value not in ("disable", "disable:true", "disable=true"):
                raise UsageError(f"--security-opt label={value}: SELinux labels are not "
                                 "supported by Nutshell", hint="only label=disable")
            out.append("label=disable")
        else:
            raise UsageError(f"invalid --security-opt: {opt!r}",
                             hint="seccomp=PROFILE|unconfined|builtin, no-new-privileges, "
                                  "systempaths=unconfined, apparmor=unconfined, label=disable")
    return out


def confinement(host_config: dict) -> Confinement:
    """The container's confinement from its stored ``HostConfig``."""
    c = Confinement(privileged=bool(host_config.get("Privileged")))
    for opt in host_config.get("SecurityOpt") or []:
        key, value = _split(opt)
        if key == "seccomp" and value is not None:
            if value == "unconfined":
                c.seccomp, c.seccomp_profile = "unconfined", None
            elif value == "builtin":
                c.seccomp, c.seccomp_profile = "default", None
            else:
                c.seccomp, c.seccomp_profile = "custom", _profile_from_text(
                    value, "the container's seccomp profile")
        elif key == "no-new-privileges":
            c.no_new_privileges = value is None or value.strip().lower() in ("true", "1")
        elif key == "systempaths":
            c.system_paths = False
    if c.privileged:
        # no seccomp unless a profile was asked for by name (moby's WithSeccomp)
        asked = any(_split(o)[0] == "seccomp" and _split(o)[1] != "unconfined"
                    for o in host_config.get("SecurityOpt") or [])
        if not asked:
            c.seccomp, c.seccomp_profile = "unconfined", None
        c.system_paths = False
    return c


def read_profile(path: str) -> dict:
    """A seccomp profile file in Docker's format, checked (UsageError, one line)."""
    try:
        with open(path, "rb") as f:
            data = f.read(PROFILE_MAX + 1)
    except OSError as e:
        raise UsageError(f"opening seccomp profile ({path}) failed: {e.strerror or e}") from None
    return _profile_from_text(data, f"seccomp profile {path}")


def _profile_from_text(text: bytes | str, source: str) -> dict:
    """Size, JSON and content checked (seccomp/rules.py)."""
    from .seccomp.rules import parse

    return parse(text, source)


def seccomp_filter(c: Confinement, cap_names: list[str],
                   cache_dir: str | None) -> tuple[bytes, dict] | None:
    """(the compiled BPF filter the container's processes load, the options to load it
    with), or None (unconfined)."""
    if c.seccomp == "unconfined":
        return None
    from . import seccomp

    profile = c.seccomp_profile
    if c.seccomp != "custom" or profile is None:
        return seccomp.default_filter(cap_names, cache_dir=cache_dir)
    return (seccomp.compile_filter(profile, cap_names, cache_dir=cache_dir),
            seccomp.install_options(profile))


# --- privileged: the host's devices ---------------------------------------------------

_SKIP_DEV_DIRS = {"pts", "shm", "mqueue", "fd", "hugepages", ".udev", ".lxc", ".lxd-mounts"}
_SKIP_DEV_NAMES = {"console", "ptmx"}   # ours: the PTY's slave, and a link to pts/ptmx


def host_devices(dev: str = "/dev") -> list[tuple[str, int, int, int, int]]:
    """Every character and block device under the host's /dev, as Docker's privileged
    mode sees them (moby's HostDevices): (relative path, mode with type, rdev, uid,
    gid). Directories of pseudo file systems (pts, shm, mqueue) are skipped."""
    import stat

    out = []
    for top, dirs, files in os.walk(dev):
        dirs[:] = [d for d in dirs if d not in _SKIP_DEV_DIRS]
        for name in files:
            path = os.path.join(top, name)
            rel = os.path.relpath(path, dev)
            if rel in _SKIP_DEV_NAMES:
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                out.append((rel, st.st_mode, st.st_rdev, st.st_uid, st.st_gid))
    return out
