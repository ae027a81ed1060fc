"""Engine results in the JSON shapes of the Docker Engine API (list entries, times, ports).

Inspect results are already Docker's shape (core/types.py); list endpoints return a
smaller, differently shaped object per entry, built here.
"""

from __future__ import annotations

from typing import Any

from core.reference import parse as parse_ref
from core.timestamps import parse_rfc3339


def unix_time(rfc3339: str | None) -> int:
    """``2026-12-03T08:26:20.61Z`` -> seconds since the epoch (0 when unknown)."""
    if not isinstance(rfc3339, str) or rfc3339.startswith("0001-"):
        return 0
    t = parse_rfc3339(rfc3339)
    return 0 if t is None else int(t // 1)


def familiar(tag: str) -> str:
    try:
        return parse_ref(tag).familiar()
    except Exception:  # noqa: BLE001 - show what is stored
        return tag


def port_list(ports: dict | None) -> list[dict[str, Any]]:
    """``NetworkSettings.Ports`` (``{"80/tcp": [{"HostIp", "HostPort"}]}``) as the list
    entries' ``Ports``."""
    out: list[dict[str, Any]] = []
    for key, bindings in sorted((ports or {}).items()):
        port, _, proto = key.partition("/")
        if not bindings:
            out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
            continue
        for b in bindings:
            entry: dict[str, Any] = {"PrivatePort": int(port), "Type": proto or "tcp"}
            if b.get("HostPort"):
                entry["PublicPort"] = int(b["HostPort"])
                entry["IP"] = b.get("HostIp") or "0.0.0.0"
            out.append(entry)
    return out


def container_list_entry(engine, cid: str, summary: dict | None = None) -> dict[str, Any]:
    """One ``GET /containers/json`` entry."""
    ins = engine.container_inspect(cid)
    cfg, host, state = ins["Config"], ins["HostConfig"], ins["State"]
    net = ins.get("NetworkSettings") or {}
    status = (summary or {}).get("Status") or state.get("Status", "")
    cmd = " ".join([*(cfg.get("Entrypoint") or []), *(cfg.get("Cmd") or [])])
    return {
        "Id": ins["Id"], "Names": [ins["Name"] if ins["Name"].startswith("/") else "/" + ins["Name"]],
        "Image": cfg.get("Image") or ins["Image"], "ImageID": ins["Image"], "Command": cmd,
        "Created": unix_time(ins["Created"]), "Ports": port_list(net.get("Ports")),
        "Labels": cfg.get("Labels") or {}, "State": state.get("Status", ""), "Status": status,
        "HostConfig": {"NetworkMode": host.get("NetworkMode") or "default"},
        "NetworkSettings": {"Networks": net.get("Networks") or {}},
        "Mounts": [{k: m.get(k) for k in ("Type", "Name", "Source", "Destination", "Driver",
                                            "Mode", "RW", "Propagation") if k in m}
                   for m in ins.get("Mounts") or []],
    }


def image_list_entry(engine, img) -> dict[str, Any]:
    """One ``GET /images/json`` entry from a core Image."""
    tags = [familiar(t) for t in img.repo_tags]
    digests = [familiar(d) for d in img.repo_digests]
    cfg = img.config.get("config") or {}
    return {
        "Id": img.id, "ParentId": "", "RepoTags": tags or [],
        "RepoDigests": digests or ([] if tags else []),
        "Created": unix_time(img.created), "Size": img.size, "VirtualSize": img.size,
        "SharedSize": -1, "Labels": cfg.get("Labels") or {}, "Containers": -1,
    }


def volume_entry(vol: dict) -> dict[str, Any]:
    out = {k: vol.get(k) for k in ("CreatedAt", "Driver", "Labels", "Mountpoint", "Name",
                                   "Options", "Scope")}
    out["Driver"] = out["Driver"] or "local"
    out["Scope"] = out["Scope"] or "local"
    return out
