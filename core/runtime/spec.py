"""What a container is made of: the options a caller gives, and the config.json we keep.

``RunOptions`` is what the CLI (``run``/``create`` flags) and the app pass to
``Engine.create``. ``build_config`` merges it with the image's config the way Docker
does (Entrypoint/Cmd rules, Env overrides, WorkingDir, User) and produces the
container's ``config.json``: the shape of ``docker inspect`` (Config, HostConfig, ...)
plus what our runtime needs to start it again later (lower dirs, capability names).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from core.records import field, record

from ..errors import UsageError
from ..store.image import str_slice
from . import caps as _caps

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ZERO_TIME = "0001-01-01T00:00:00Z"

# Docker's defaults (moby daemon/pkg/oci/defaults.go)
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]



@record
class RunOptions:
    """Everything ``run``/``create`` accept. Defaults are Docker's."""

    image: str = ""
    command: list[str] | None = None        # None: the image's Cmd
    entrypoint: list[str] | None = None     # None: the image's; [] (from --entrypoint ""): none
    env: list[str] = field(default_factory=list)      # KEY=VAL or KEY (taken from os.environ)
    env_files: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    name: str | None = None
    tty: bool = False
    interactive: bool = False
    auto_remove: bool = False
    memory: int | None = None               # bytes
    memory_swap: int | None = None          # bytes, -1 unlimited
    cpus: float | None = None
    pids_limit: int | None = None
    read_only: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False                # Docker's --privileged (see docs/security.md)
    security_opt: list[str] = field(default_factory=list)  # seccomp=..., no-new-privileges
    network: str = "default"                # default: bridge when networking is available
    # more keyword arguments for Engine.setup_container_network (the network area's
    # ``network_kwargs``): networks (all of them), ports, publish_all, aliases, dns, ip...
    network_options: dict = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str | None = None
    stop_timeout: int | None = None
    restart: str | None = None              # no | always | unless-stopped | on-failure[:N]
    rootfs: str | None = None               # a directory used as the only (read-only) layer
    # mounts, as the CLI gives them (parsed by core.volumes.mounts at create):
    volumes: list[str] = field(default_factory=list)  # -v NAME:/path[:ro], -v /host:/path, -v /path
    mounts: list[str] = field(default_factory=list)   # --mount type=...,source=...,target=...
    tmpfs: list[str] = field(default_factory=list)    # --tmpfs /path[:opts]


# --- parsing helpers shared by the CLI and the app ----------------------------------------

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_restart(value: str | None) -> dict:
    """Docker's --restart: ``{"Name": "no"|"always"|"unless-stopped"|"on-failure",
    "MaximumRetryCount": N}`` (N only for on-failure)."""
    name, _, count = (value or "no").partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise UsageError(f"invalid restart policy {value!r}",
                         hint="no, always, unless-stopped or on-failure[:max-retries]")
    if count and name != "on-failure":
        raise UsageError(f"maximum retry count cannot be used with restart policy '{name}'")
    if count and (not count.isdigit()):
        raise UsageError(f"invalid restart policy {value!r}: bad maximum retry count")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def parse_bytes(value: str | int | None, what: str = "memory") -> int | None:
    """Docker's RAMInBytes: ``32m`` -> 33554432; units b k m g t p (binary), ``-1`` kept."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*([kmgtpb]?)b?\s*", str(value).lower())
    if not m:
        raise UsageError(f"invalid value {value!r} for --{what}: invalid size")
    n = float(m.group(1))
    if n < 0:
        return -1
    return int(n * _UNITS[m.group(2)])


def parse_env_file(path: str) -> list[str]:
    """Docker's --env-file: KEY=VAL lines, # comments and blank lines skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise UsageError(f"open {path}: {e.strerror or e}") from None
    out = []
    for line in lines:
        s = line.lstrip()
        if not s or s.startswith("#"):
            continue
        key = s.split("=", 1)[0]
        if not key or any(c.isspace() for c in key):
            raise UsageError(f"invalid environment variable: {line}")
        out.append(s if "=" in s else key)
    return out


def resolve_env(items: list[str], environ: dict | None = None) -> list[str]:
    """``KEY`` alone takes its value from the caller's environment (dropped if unset)."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    out = []
    for item in items:
        if "=" in item:
            if item.startswith("="):
                raise UsageError(f"invalid environment variable: {item}")
            out.append(item)
        elif item in env:
            out.append(f"{item}={env[item]}")
    return out


def merge_env(base: list[str], overrides: list[str]) -> list[str]:
    """Docker's ReplaceOrAppendEnvValues: later keys replace earlier ones in place."""
    order: list[str] = []
    values: dict[str, str] = {}
    for item in list(base) + list(overrides):
        k = item.split("=", 1)[0]
        if k not in values:
            order.append(k)
        values[k] = item
    return [values[k] for k in order]


# --- config.json ----------------------------------------------------------------------------

def command_for(opts: RunOptions, image_cfg: dict) -> tuple[list[str], list[str] | None, list[str]]:
    """(entrypoint, cmd, argv) by Docker's rules: an explicit --entrypoint drops the
    image's Cmd; an explicit command replaces the image's Cmd."""
    if opts.entrypoint is not None:
        entrypoint = list(opts.entrypoint)
        cmd = list(opts.command) if opts.command else []
    else:
        entrypoint = str_slice(image_cfg.get("Entrypoint"))
        cmd = list(opts.command) if opts.command else str_slice(image_cfg.get("Cmd"))
    argv = entrypoint + cmd
    if not argv:
        raise UsageError("no command specified")
    return entrypoint, cmd, argv


def build_config(cid: str, name: str, opts: RunOptions, image_cfg: dict, *, image_id: str,
                 image_ref: str, chain_ids: list[str], lower_dirs: list[str], created: str,
                 container_dir: str, host_hostname: str) -> dict:
    """The container's config.json (Docker's inspect shape plus our runtime's needs)."""
    if not opts.network:
        raise UsageError("invalid network mode: \"\"")
    from . import security

    security_opt = security.normalize(opts.security_opt)
    if opts.privileged:  # every capability; --cap-add/--cap-drop do not apply (Docker)
        cap_names = _caps.resolve(["ALL"], [])
    else:
        cap_names = _caps.resolve(opts.cap_add, opts.cap_drop)
    system_paths = not opts.privileged and "systempaths=unconfined" not in security_opt
    entrypoint, cmd, argv = command_for(opts, image_cfg)
    env = []
    for f in opts.env_files:
        env += parse_env_file(f)
    env = merge_env(list(image_cfg.get("Env") or []), resolve_env(env + list(opts.env)))
    runtime_env = []        # keys the runtime adds on its own (commit leaves them out)
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, f"PATH={DEFAULT_PATH}")
        runtime_env.append("PATH")
    network = opts.network
    if opts.hostname:
        hostname = opts.hostname
    elif network == "host":
        hostname = host_hostname
    else:
        hostname = cid[:12]
    if opts.tty and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
        runtime_env.append("TERM")
    if not any(e.startswith("HOSTNAME=") for e in env):
        env = merge_env(env, [f"HOSTNAME={hostname}"])
        runtime_env.append("HOSTNAME")
    labels = dict(image_cfg.get("Labels") or {})
    labels.update(opts.labels or {})
    workdir = opts.workdir if opts.workdir is not None else (image_cfg.get("WorkingDir") or "")
    if workdir and not workdir.startswith("/"):
        raise UsageError(f"the working directory '{workdir}' is invalid, it needs to be an "
                         "absolute path")
    restart_policy = parse_restart(opts.restart)
    if opts.auto_remove and restart_policy["Name"] != "no":
        raise UsageError("Conflicting options: --restart and --rm")
    if opts.pids_limit is not None and opts.pids_limit <= 0:
        pids_limit = None
    else:
        pids_limit = opts.pids_limit
    if opts.memory is not None and 0 < opts.memory < 6 * 1024 * 1024:
        raise UsageError("Minimum memory limit allowed is 6MB")
    if opts.cpus is not None and opts.cpus < 0:
        raise UsageError("range of CPUs is from 0.01 to the number of CPUs available")
    j = os.path.join
    return {
        "Id": cid,
        "Created": created,
        "Path": argv[0],
        "Args": argv[1:],
        "Image": image_id,
        "ImageID": image_id,
        "ImageRef": image_ref,
        "LayerChainIDs": list(chain_ids),
        "LowerDirs": list(lower_dirs),
        "Name": "/" + name,
        "Driver": "overlay",
        "ResolvConfPath": j(container_dir, "resolv.conf"),
        "HostnamePath": j(container_dir, "hostname"),
        "HostsPath": j(container_dir, "hosts"),
        "LogPath": j(container_dir, f"{cid}-json.log"),
        "Config": {
            "Hostname": hostname,
            "Domainname": "",
            "User": opts.user if opts.user is not None else (image_cfg.get("User") or ""),
            "AttachStdin": opts.interactive,
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": opts.tty,
            "OpenStdin": opts.interactive,
            "StdinOnce": opts.interactive,
            "Env": env,
            "Cmd": cmd or None,
            "Image": image_ref,
            "WorkingDir": workdir,
            "Entrypoint": entrypoint or None,
            "Labels": labels,
            "ExposedPorts": dict(image_cfg.get("ExposedPorts") or {}) or None,
            "Volumes": dict(image_cfg.get("Volumes") or {}) or None,
            "StopSignal": opts.stop_signal or image_cfg.get("StopSignal") or "SIGTERM",
            **({"StopTimeout": opts.stop_timeout} if opts.stop_timeout is not None else {}),
        },
        "HostConfig": {
            "NetworkMode": network,
            "NetworkOptions": dict(opts.network_options or {}),
            "AutoRemove": opts.auto_remove,
            "RestartPolicy": restart_policy,
            "Memory": opts.memory or 0,
            "MemorySwap": opts.memory_swap or 0,
            "NanoCpus": int(round((opts.cpus or 0) * 1e9)),
            "PidsLimit": pids_limit,
            "ReadonlyRootfs": opts.read_only,
            "CapAdd": [c for c in (_caps.normalize(x) for x in opts.cap_add)] or None,
            "CapDrop": [c for c in (_caps.normalize(x) for x in opts.cap_drop)] or None,
            "Privileged": bool(opts.privileged),
            "SecurityOpt": security_opt or None,
            "MaskedPaths": list(MASKED_PATHS) if system_paths else [],
            "ReadonlyPaths": list(READONLY_PATHS) if system_paths else [],
            "LogConfig": {"Type": "json-file", "Config": {}},
            "Binds": list(opts.volumes) or None,
            "Tmpfs": {t.partition(":")[0]: t.partition(":")[2] for t in opts.tmpfs} or None,
            "MountSpecs": list(opts.mounts) or None,
        },
        "Mounts": [],
        "RuntimeEnv": runtime_env,
        "Capabilities": cap_names,
        "RootfsDir": opts.rootfs,
    }
