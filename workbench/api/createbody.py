"""``POST /containers/create``'s JSON body as core RunOptions.

Docker's body is a ``Config`` with ``HostConfig`` and ``NetworkingConfig`` inside. Each
field this maps is checked for its JSON type first: a wrong type is a 400 with the field's
name (dockerd's Go decoder refuses the same bodies). Fields Nutshell has no equivalent
for are ignored, as dockerd ignores fields of other platforms.
"""

from __future__ import annotations

from typing import Any

from core.runtime.spec import RunOptions

from .http import HTTPError

_JSON_NAMES = {str: "string", int: "number", bool: "bool", list: "array", dict: "object",
               float: "number"}


def field(obj: dict, key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    """``obj[key]`` when present and not null, checked to be of ``kind``."""
    value = obj.get(key)
    if value is None:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        ok = False
    else:
        ok = isinstance(value, kinds)
    if not ok:
        want = " or ".join(_JSON_NAMES.get(k, k.__name__) for k in kinds)
        got = _JSON_NAMES.get(type(value), type(value).__name__)
        raise HTTPError(400, f"json: cannot unmarshal {got} into field {where}{key} of type {want}")
    return value


def strings(obj: dict, key: str, where: str = "", single: bool = False) -> list[str] | None:
    """A list of strings; with ``single`` also one string, as Docker's ``StrSlice`` fields
    (Cmd, Entrypoint, CapAdd, CapDrop) take; the others (Env, Binds, Dns...) do not."""
    value = field(obj, key, (list, str) if single else list, where)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    for v in value:
        if not isinstance(v, str):
            raise HTTPError(400, f"json: cannot unmarshal {_JSON_NAMES.get(type(v), 'value')} "
                                 f"into field {where}{key} of type string")
    return list(value)


def client_env(items: list[str] | None) -> list[str]:
    """``Env`` as the client resolved it: a bare ``KEY`` (no ``=``) is dropped, never
    looked up in the server's own environment (core's resolve_env does that for the CLI,
    whose environment is the caller's; here it would hand the server's to the client)."""
    return [e for e in items or [] if "=" in e]


def run_options(body: dict, name: str | None) -> RunOptions:
    image = field(body, "Image", str)
    if not image:
        raise HTTPError(400, "config cannot be empty in order to create a container")
    hc = field(body, "HostConfig", dict) or {}
    nc = field(body, "NetworkingConfig", dict) or {}
    h = "HostConfig."

    entrypoint = strings(body, "Entrypoint", single=True)
    if entrypoint is not None and entrypoint in ([], [""]):
        entrypoint = []
    labels = field(body, "Labels", dict) or {}
    for k, v in labels.items():
        if not isinstance(v, str):
            raise HTTPError(400, f"json: cannot unmarshal into field Labels.{k} of type string")

    volumes = list(strings(hc, "Binds", h) or [])
    declared = list(field(body, "Volumes", dict) or {})   # anonymous, unless bound below
    mounts = []
    for m in field(hc, "Mounts", list) or []:
        if not isinstance(m, dict):
            raise HTTPError(400, "json: cannot unmarshal into field HostConfig.Mounts of type object")
        parts = [f"type={m.get('Type') or 'volume'}"]
        if m.get("Source"):
            parts.append(f"source={m['Source']}")
        if not m.get("Target"):
            raise HTTPError(400, "invalid mount config: Target must not be empty")
        parts.append(f"target={m['Target']}")
        if m.get("ReadOnly"):
            parts.append("readonly")
        mounts.append(",".join(parts))
    tmpfs = [f"{p}:{o}" if o else p for p, o in (field(hc, "Tmpfs", dict) or {}).items()]
    # dockerd: a Binds/Mounts/Tmpfs destination wins over the same path in Config.Volumes
    # (docker-py's volumes= sends both)
    taken = {b.split(":")[1].rstrip("/") if ":" in b else b.rstrip("/") for b in volumes}
    taken |= {str(m.get("Target") or "").rstrip("/") for m in field(hc, "Mounts", list) or []}
    taken |= {t.split(":")[0].rstrip("/") for t in tmpfs}
    volumes += [p for p in declared if p.rstrip("/") not in taken]

    ports = []
    for key, bindings in (field(hc, "PortBindings", dict) or {}).items():
        for b in bindings or [{}]:
            if not isinstance(b, dict):
                raise HTTPError(400, "json: cannot unmarshal into field HostConfig.PortBindings")
            ip, hp = b.get("HostIp") or "", b.get("HostPort") or ""
            ports.append(f"{ip}:{hp}:{key}" if ip else (f"{hp}:{key}" if hp else key))

    mode = field(hc, "NetworkMode", str) or "default"
    endpoints = field(nc, "EndpointsConfig", dict) or {}
    networks = [mode]
    aliases: list[str] = []
    ip = None
    for net, ep in endpoints.items():
        if net not in networks and mode not in ("host", "none") and not mode.startswith("container:"):
            networks.append(net)
        ep = ep or {}
        if not isinstance(ep, dict):
            raise HTTPError(400, "json: cannot unmarshal into NetworkingConfig.EndpointsConfig")
        aliases += strings(ep, "Aliases") or []
        ipam = field(ep, "IPAMConfig", dict) or {}
        ip = ip or field(ipam, "IPv4Address", str)

    restart = field(hc, "RestartPolicy", dict) or {}
    rname = field(restart, "Name", str) or ""
    rcount = field(restart, "MaximumRetryCount", int) or 0
    restart_spec = None
    if rname and rname != "no":
        restart_spec = f"{rname}:{rcount}" if rname == "on-failure" and rcount else rname

    cpus = None
    nano = field(hc, "NanoCpus", int)
    if nano:
        cpus = nano / 1e9
    else:
        quota, period = field(hc, "CpuQuota", int), field(hc, "CpuPeriod", int)
        if quota and quota > 0:
            cpus = quota / (period or 100000)

    stop_timeout = field(body, "StopTimeout", int)
    exposed = list(field(body, "ExposedPorts", dict) or {})
    net_kw = {
        "networks": networks, "aliases": aliases, "ports": ports,
        "publish_all": bool(field(hc, "PublishAllPorts", bool)), "exposed": exposed,
        "dns": strings(hc, "Dns", h) or [], "dns_search": strings(hc, "DnsSearch", h),
        "dns_options": strings(hc, "DnsOptions", h), "add_hosts": strings(hc, "ExtraHosts", h) or [],
        "ip": ip,
    }
    memory = field(hc, "Memory", int) or None
    swap = field(hc, "MemorySwap", int) or None
    pids = field(hc, "PidsLimit", int)
    return RunOptions(
        image=image, command=strings(body, "Cmd", single=True), entrypoint=entrypoint,
        env=client_env(strings(body, "Env")), workdir=field(body, "WorkingDir", str) or None,
        user=field(body, "User", str) or None, hostname=field(body, "Hostname", str) or None,
        name=name or None, tty=bool(field(body, "Tty", bool)),
        interactive=bool(field(body, "OpenStdin", bool)),
        auto_remove=bool(field(hc, "AutoRemove", bool)), memory=memory, memory_swap=swap,
        cpus=cpus, pids_limit=pids if pids else None,
        read_only=bool(field(hc, "ReadonlyRootfs", bool)),
        cap_add=strings(hc, "CapAdd", h, single=True) or [], cap_drop=strings(hc, "CapDrop", h, single=True) or [],
        privileged=bool(field(hc, "Privileged", bool)),
        security_opt=strings(hc, "SecurityOpt", h) or [], network=mode,
        network_options=net_kw, labels=dict(labels),
        stop_signal=field(body, "StopSignal", str) or None,
        stop_timeout=stop_timeout, restart=restart_spec, volumes=volumes, mounts=mounts,
        tmpfs=tmpfs)
