"""Volume endpoints: list, create, inspect, delete, prune (``Engine.volume_*``,
core/volumes/api.py; the ``local`` driver only)."""

from __future__ import annotations

import re

from core.errors import NotFound

from .createbody import field
from .http import HTTPError, Request
from .router import Routes, version_at_least
from .shapes import volume_entry
from .system import filters_of

routes = Routes()


def _labels_ok(labels: dict, want: list[str], unwanted: list[str] | None = None) -> bool:
    def has(w: str) -> bool:
        k, eq, v = w.partition("=")
        return k in labels and (not eq or labels[k] == v)

    return all(has(w) for w in want) and not any(has(w) for w in unwanted or [])


@routes.route("GET", "/volumes")
def list_volumes(engine, req: Request) -> dict:
    filters = filters_of(req)
    for key in filters:
        if key not in ("name", "label", "dangling", "driver"):
            raise HTTPError(400, f"invalid filter '{key}'")
    vols = engine.volumes()
    dangling_names = None
    if filters.get("dangling"):
        want = filters["dangling"][-1].lower()
        if want not in ("1", "true", "0", "false"):
            raise HTTPError(400, f"invalid filter 'dangling={filters['dangling'][-1]}'")
        dangling_names = {v["Name"] for v in engine.volumes({"dangling": "true"})}
    out = []
    for v in vols:
        if filters.get("name") and not any(re.search(w, v["Name"]) for w in filters["name"]):
            continue
        if filters.get("driver") and (v.get("Driver") or "local") not in filters["driver"]:
            continue
        if filters.get("label") and not _labels_ok(v.get("Labels") or {}, filters["label"]):
            continue
        if dangling_names is not None:
            if (v["Name"] in dangling_names) != (filters["dangling"][-1].lower() in ("1", "true")):
                continue
        out.append(volume_entry(v))
    return {"Volumes": out, "Warnings": []}


@routes.route("POST", "/volumes/create")
def create(engine, req: Request) -> None:
    body = req.json(default={})
    name = field(body, "Name", str) or None
    if name is not None and not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name):
        raise HTTPError(400, f'create {name}: "{name}" includes invalid characters for a local '
                             'volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you '
                             'intended to pass a host directory, use absolute path')
    driver = field(body, "Driver", str) or "local"
    labels = field(body, "Labels", dict) or None
    for k, v in (labels or {}).items():
        if not isinstance(v, str):
            raise HTTPError(400, f"json: cannot unmarshal into field Labels.{k} of type string")
    opts = field(body, "DriverOpts", dict) or None
    vol = engine.volume_create(name, labels=labels, driver=driver, options=opts)
    req.send_json(201, volume_entry(vol))


def _inspect(engine, name: str) -> dict:
    try:
        return dict(engine.volume_inspect(name))
    except NotFound:
        raise HTTPError(404, f"get {name}: no such volume") from None


@routes.route("GET", "/volumes/{name}")
def inspect(engine, req: Request) -> dict:
    return volume_entry(_inspect(engine, req.params["name"]))


@routes.route("DELETE", "/volumes/{name}")
def delete(engine, req: Request) -> None:
    name = req.params["name"]
    try:
        engine.volume_rm(name, force=req.qbool("force"))
    except NotFound:
        raise HTTPError(404, f"get {name}: no such volume") from None


@routes.route("POST", "/volumes/prune")
def prune(engine, req: Request) -> dict:
    filters = filters_of(req)
    for key in filters:
        if key not in ("label", "label!", "all"):
            raise HTTPError(400, f"invalid filter '{key}'")
    # before API 1.42 a prune removed every unused volume; since, only anonymous ones
    # unless all=true
    everything = not version_at_least(req, "1.42")
    if filters.get("all"):
        everything = filters["all"][-1].lower() in ("1", "true")
    labels, unlabels = filters.get("label", []), filters.get("label!", [])
    if not unlabels and len(labels) <= 1:
        report = engine.volume_prune(all=everything,
                                     filters={"label": labels[0]} if labels else None)
        return {"VolumesDeleted": list(report["VolumesDeleted"]),
                "SpaceReclaimed": int(report["SpaceReclaimed"])}
    deleted, space = [], 0
    unused = {v["Name"] for v in engine.volumes({"dangling": "true"})}
    for v in engine.volumes():
        if v["Name"] not in unused:
            continue
        vlabels = v.get("Labels") or {}
        if not everything and "com.docker.volume.anonymous" not in vlabels:
            continue
        if not _labels_ok(vlabels, labels, unlabels):
            continue
        try:
            size = int((engine.volume_inspect(v["Name"]).get("UsageData") or {}).get("Size") or 0)
            engine.volume_rm(v["Name"])
        except Exception:  # noqa: BLE001 - used by now, or gone: skipped
            continue
        deleted.append(v["Name"])
        space += size
    return {"VolumesDeleted": deleted, "SpaceReclaimed": space}

