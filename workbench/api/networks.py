"""Network endpoints: list, inspect, create, delete, connect, disconnect, prune.

Networks are ``Engine.network_*`` (core/network/api.py): user-defined bridges with their own
subnet, NAT and DNS-by-name, plus the default ``bridge`` and the pseudo networks ``host``
and ``none``, which Nutshell has no records for and which are answered here in Docker's
shape.
"""

from __future__ import annotations

import hashlib
import re

from core.errors import Conflict, NotFound

from .createbody import field, strings
from .http import HTTPError, Request
from .router import Routes
from .shapes import unix_time
from .system import filters_of

routes = Routes()

PREDEFINED = ("bridge", "host", "none")


def _pseudo(name: str) -> dict:
    return {
        "Name": name, "Id": hashlib.sha256(f"nutshell-{name}".encode()).hexdigest(),
        "Created": "0001-01-01T00:00:00Z", "Scope": "local",
        "Driver": "host" if name == "host" else "null", "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": []},
        "Internal": False, "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": {},
        "Options": {}, "Labels": {},
    }


def _docker_shape(net: dict) -> dict:
    out = dict(net)
    out.setdefault("ConfigFrom", {"Network": ""})
    out.setdefault("ConfigOnly", False)
    out["Labels"] = out.get("Labels") or {}
    ipam = dict(out.get("IPAM") or {})
    ipam["Config"] = [{k: v for k, v in c.items() if v} for c in ipam.get("Config") or []]
    out["IPAM"] = ipam
    return out


def _find(engine, ref: str) -> dict:
    """A network by name, id or id prefix, pseudo networks included."""
    if not ref:
        raise HTTPError(400, "network name or ID cannot be empty")
    for name in ("host", "none"):
        p = _pseudo(name)
        if ref in (name, p["Id"]) or (len(ref) >= 3 and p["Id"].startswith(ref)):
            return p
    try:
        return _docker_shape(dict(engine.network_inspect(ref)))
    except NotFound:
        raise HTTPError(404, f"network {ref} not found") from None


def _all(engine) -> list[dict]:
    out = []
    for summary in engine.networks():
        name = summary["Name"]
        if name in ("host", "none"):
            out.append(_pseudo(name))
            continue
        try:
            out.append(_docker_shape(dict(engine.network_inspect(name))))
        except NotFound:
            continue
    return out


def _matches(net: dict, filters: dict[str, list[str]]) -> bool:
    for key, wanted in filters.items():
        if not wanted:
            continue
        if key == "name":
            if not any(re.search(w, net["Name"]) for w in wanted):
                return False
        elif key == "id":
            if not any(net["Id"].startswith(w) for w in wanted):
                return False
        elif key == "driver":
            if net["Driver"] not in wanted:
                return False
        elif key == "scope":
            if net["Scope"] not in wanted:
                return False
        elif key == "type":
            kind = "builtin" if net["Name"] in PREDEFINED else "custom"
            for w in wanted:
                if w not in ("builtin", "custom"):
                    raise HTTPError(400, f"invalid filter: 'type'='{w}'")
            if kind not in wanted:
                return False
        elif key == "label":
            labels = net.get("Labels") or {}
            for w in wanted:
                k, eq, v = w.partition("=")
                if k not in labels or (eq and labels[k] != v):
                    return False
        elif key == "dangling":
            want = wanted[-1].lower() in ("1", "true")
            dangling = net["Name"] not in PREDEFINED and not net.get("Containers")
            if dangling != want:
                return False
        else:
            raise HTTPError(400, f"invalid filter '{key}'")
    return True


@routes.route("GET", "/networks")
def list_networks(engine, req: Request) -> list:
    filters = filters_of(req)
    return [n for n in _all(engine) if _matches(n, filters)]


@routes.route("GET", "/networks/{id}")
def inspect(engine, req: Request) -> dict:
    return _find(engine, req.params["id"])


@routes.route("POST", "/networks/create")
def create(engine, req: Request) -> None:
    body = req.json(default=None)
    if body is None:
        raise HTTPError(400, "network config cannot be empty")
    name = field(body, "Name", str)
    if not name:
        raise HTTPError(400, "network name cannot be empty")
    if name in PREDEFINED:
        raise HTTPError(403, f"{name} is a pre-defined network and cannot be created")
    driver = field(body, "Driver", str) or "bridge"
    if driver != "bridge":
        raise HTTPError(400, f"network driver {driver!r} is not supported (only bridge)")
    if field(body, "EnableIPv6", bool):
        raise HTTPError(400, "IPv6 networks are not supported")
    ipam = field(body, "IPAM", dict) or {}
    configs = field(ipam, "Config", list, "IPAM.") or []
    if len(configs) > 1:
        raise HTTPError(400, "only one IPAM config (one IPv4 subnet) is supported")
    subnet = gateway = None
    if configs:
        if not isinstance(configs[0], dict):
            raise HTTPError(400, "json: cannot unmarshal into field IPAM.Config of type object")
        subnet = field(configs[0], "Subnet", str, "IPAM.Config.") or None
        gateway = field(configs[0], "Gateway", str, "IPAM.Config.") or None
        if field(configs[0], "IPRange", str, "IPAM.Config."):
            raise HTTPError(400, "IPAM IPRange is not supported")
    labels = field(body, "Labels", dict) or {}
    for k, v in labels.items():
        if not isinstance(v, str):
            raise HTTPError(400, f"json: cannot unmarshal into field Labels.{k} of type string")
    options = field(body, "Options", dict) or {}
    mtu = None
    if options.get("com.docker.network.driver.mtu"):
        try:
            mtu = int(options["com.docker.network.driver.mtu"])
        except (TypeError, ValueError):
            raise HTTPError(400, "invalid MTU option") from None
    internal = bool(field(body, "Internal", bool))
    net = engine.network_create(name, subnet=subnet, gateway=gateway, internal=internal,
                                labels=labels or None, driver="bridge", mtu=mtu)
    req.send_json(201, {"Id": net["Id"], "Warning": ""})


@routes.route("DELETE", "/networks/{id}")
def delete(engine, req: Request) -> None:
    net = _find(engine, req.params["id"])
    if net["Name"] in PREDEFINED:
        raise HTTPError(403, f"{net['Name']} is a pre-defined network and cannot be removed")
    try:
        engine.network_rm(net["Id"])
    except Conflict as exc:          # active endpoints: dockerd's 403
        raise HTTPError(403, str(exc)) from None


def _container(engine, body: dict) -> str:
    ref = field(body, "Container", str)
    if not ref:
        raise HTTPError(400, "container name or ID is required")
    try:
        return engine.container(ref)
    except NotFound:
        raise HTTPError(404, f"No such container: {ref}") from None


def _endpoint_request(engine, req: Request) -> tuple[dict, dict]:
    """The body and network of a connect or disconnect (not host or none, as dockerd)."""
    body = req.json(default={})
    net = _find(engine, req.params["id"])
    if net["Name"] in ("host", "none"):
        raise HTTPError(400, f"container cannot be disconnected from or connected to "
                             f"the {net['Name']} network")
    return body, net


@routes.route("POST", "/networks/{id}/connect")
def connect(engine, req: Request) -> None:
    body, net = _endpoint_request(engine, req)
    cid = _container(engine, body)
    ep = field(body, "EndpointConfig", dict) or {}
    aliases = strings(ep, "Aliases", "EndpointConfig.") or None
    ipam = field(ep, "IPAMConfig", dict, "EndpointConfig.") or {}
    ip = field(ipam, "IPv4Address", str, "EndpointConfig.IPAMConfig.") or None
    try:
        engine.network_connect(net["Name"], cid, aliases=aliases, ip=ip)
    except Conflict as exc:
        if "already" in str(exc):     # dockerd: an endpoint of that name exists: 403
            raise HTTPError(403, str(exc)) from None
        raise
    req.send_empty(200)


@routes.route("POST", "/networks/{id}/disconnect")
def disconnect(engine, req: Request) -> None:
    body, net = _endpoint_request(engine, req)
    force = bool(field(body, "Force", bool))
    ref = field(body, "Container", str)
    if not ref:
        raise HTTPError(400, "container name or ID is required")
    try:
        cid = engine.container(ref)
    except NotFound:
        if not force:
            raise HTTPError(404, f"No such container: {ref}") from None
        cid = ref
    engine.network_disconnect(net["Name"], cid, force=force)
    req.send_empty(200)


@routes.route("POST", "/networks/prune")
def prune(engine, req: Request) -> dict:
    from core import prunefilter

    items = [f"{k}={v}" for k, vs in filters_of(req).items() for v in vs]
    filters = prunefilter.parse(items)           # refuses unknown keys, as dockerd does
    if not filters:
        return {"NetworksDeleted": list(engine.network_prune())}
    deleted = []
    for net in _all(engine):
        if net["Name"] in PREDEFINED or net.get("Containers"):
            continue
        created = unix_time(net.get("Created")) or None
        if not prunefilter.matches(filters, created, net.get("Labels")):
            continue
        try:
            engine.network_rm(net["Id"])
            deleted.append(net["Name"])
        except Exception:  # noqa: BLE001 - in use by now: skipped, as dockerd does
            continue
    return {"NetworksDeleted": deleted}

