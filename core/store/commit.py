"""``commit``: a container's changes become a new image.

The pieces are separate so the Dockerfile builder (core/dockerfile/builder.py) can reuse
them for every step:

    write_layer(store, path, overlay=True, exclude=..., compression="gzip")
        the upper dir (or any directory) -> one verified, compressed layer blob
    container_config(container_cfg, image_cfg, changes)
        the image "config" section: the container's settings + ``--change`` lines, then
        Docker's merge with the parent image (user values win; Env, ExposedPorts,
        Labels, Volumes are unions; Cmd/Entrypoint inherited only without an Entrypoint)
    create_image(store, parent, config_section, layers, history, ref=..., author=...)
        config blob + OCI manifest (parent layers + new ones) registered in the store
    commit(engine, container, ...)
        all of it for a container, with the container frozen (cgroup freezer) while its
        upper dir is read, and thawed again whatever happens.

Whiteouts (0/0 character devices) go into the layer as ``.wh.<name>``, opaque
directories as ``.wh..wh..opq``; hardlinks stay hardlinks (core/store/tarwriter.py).
Mount targets the runtime created and everything under mount destinations are left out
(see diff.change_exclusions).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable

from core.errors import Conflict, NotFound, NutshellError, RuntimeFailure, UsageError
from core.events import ProgressFn, emit
from core.fs.diff import change_exclusions, excluded
from core.reference import Reference
from core.store import media
from core.store.archive import apply_changes, host_arch
from core.store.compress import open_output
from core.store.image import Image
from core.store.store import now_rfc3339
from core.store.tarwriter import write_tree

#: image-level keys of a config's "config" section (OCI + Docker's additions)
IMAGE_CONFIG_KEYS = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir",
                     "Labels", "StopSignal", "ArgsEscaped", "Healthcheck", "OnBuild", "Shell")
#: docker media types -> the OCI ones an OCI manifest lists (same bytes)
_TO_OCI = {media.DOCKER_LAYER_GZIP: media.OCI_LAYER_GZIP, media.DOCKER_LAYER: media.OCI_LAYER,
           media.DOCKER_LAYER_FOREIGN: media.OCI_LAYER_ND_GZIP}
COMPRESSIONS = ("gzip", "zstd", "none")


# ---------------------------------------------------------------------- the layer


def write_layer(store, path: str, overlay: bool = True, exclude: set[str] | None = None,
                compression: str = "gzip", progress: ProgressFn = None,
                progress_id: str = "layer", engine: str | None = None) -> dict:
    """Tar ``path`` (an overlay upper dir when ``overlay``) into a new verified blob.

    Returns ``{"descriptor": {mediaType, digest, size}, "diff_id", "size" (tar bytes),
    "entries", "compression"}``. The blob is in the store when this returns (the caller
    holds ``store.lease()`` until an image refers to it).
    """
    if compression not in COMPRESSIONS:
        raise UsageError(f"unknown compression {compression!r} (use gzip, zstd or none)")
    keep = None
    if exclude:
        ex = {e.strip("/") for e in exclude if e.strip("/")}

        def keep(rel: str) -> bool:
            return not excluded(rel, ex)

    done = [0, 0]

    def on_entry(_rel: str, size: int) -> None:
        done[0] += size
        if done[0] - done[1] >= (4 << 20):
            done[1] = done[0]
            emit(progress, progress_id, "Writing", done[0], 0)

    with store.blob_writer() as w:
        out = open_output(w, compression, engine=engine)
        try:
            stats = write_tree(path, out, overlay=overlay, filter=keep,
                               on_entry=on_entry if progress else None)
            out.close()
        except BaseException:
            abort = getattr(out, "abort", None)
            if abort is not None:
                abort()
            raise
    mt = {"gzip": media.OCI_LAYER_GZIP, "zstd": media.OCI_LAYER_ZSTD}.get(compression, media.OCI_LAYER)
    emit(progress, progress_id, "Written", out.size, out.size)
    return {"descriptor": {"mediaType": mt, "digest": w.digest, "size": w.size},
            "diff_id": out.diff_id, "size": out.size, "entries": stats.entries,
            "compression": compression}


# ---------------------------------------------------------------------- the config


def _env_key(item: str) -> str:
    return item.split("=", 1)[0]


def _key_union(user: dict, image: dict, key: str) -> dict | None:
    """The user's ``key`` set (a dict of ``{}`` values) plus the image's keys."""
    keys = dict(user.get(key) or {})
    for k in image.get(key) or {}:
        keys.setdefault(k, {})
    return keys or None


def merge_config(user: dict, image: dict) -> dict:
    """Docker's merge (moby daemon/commit.go): fill what the user left empty from the
    image; Env, ExposedPorts, Labels and Volumes are unions where the user's keys win."""
    out = dict(user)
    if not out.get("User"):
        out["User"] = image.get("User") or ""
    out["ExposedPorts"] = _key_union(out, image, "ExposedPorts")
    env = list(out.get("Env") or [])
    keys = {_env_key(e) for e in env}
    for e in image.get("Env") or []:
        if _env_key(e) not in keys:
            env.append(e)
            keys.add(_env_key(e))
    out["Env"] = env or None
    labels = dict(image.get("Labels") or {})
    labels.update(out.get("Labels") or {})
    out["Labels"] = labels or None
    if not out.get("Entrypoint"):
        if not out.get("Cmd"):
            out["Cmd"] = image.get("Cmd")
            if image.get("Shell"):
                out["Shell"] = image.get("Shell")
        if out.get("Entrypoint") is None:
            out["Entrypoint"] = image.get("Entrypoint")
    if image.get("Healthcheck") and not out.get("Healthcheck"):
        out["Healthcheck"] = image["Healthcheck"]
    if not out.get("WorkingDir"):
        out["WorkingDir"] = image.get("WorkingDir") or ""
    out["Volumes"] = _key_union(out, image, "Volumes")
    if not out.get("StopSignal"):
        out["StopSignal"] = image.get("StopSignal") or None
    if image.get("OnBuild") and not out.get("OnBuild"):
        out["OnBuild"] = image["OnBuild"]
    return {k: v for k, v in out.items() if v not in (None, "", [], {})}


def _user_env(c: dict, container_cfg: dict, image_cfg: dict) -> list[str]:
    """The container's Env without what the runtime added on its own (PATH default,
    HOSTNAME, TERM for a TTY): those are not the user's settings."""
    env = list(c.get("Env") or [])
    added = container_cfg.get("RuntimeEnv")
    if added is None:       # a container made before RuntimeEnv was recorded: infer it
        img_keys = {_env_key(e) for e in image_cfg.get("Env") or []}
        added = [k for k in ("HOSTNAME", "TERM") if k not in img_keys]
        if "PATH" not in img_keys:
            added.append("PATH")
    drop = set(added)
    return [e for e in env if _env_key(e) not in drop]


def container_config(container_cfg: dict, image_cfg: dict, changes: list[str] | None = None) -> dict:
    """The new image's "config" section for a commit of ``container_cfg`` (config.json)."""
    c = container_cfg.get("Config") or {}
    user: dict = {
        "User": c.get("User") or "",
        "Env": _user_env(c, container_cfg, image_cfg),
        "Cmd": c.get("Cmd"),
        "Entrypoint": c.get("Entrypoint"),
        "WorkingDir": c.get("WorkingDir") or "",
        "Labels": dict(c.get("Labels") or {}),
        "ExposedPorts": dict(c.get("ExposedPorts") or {}),
        "Volumes": dict(c.get("Volumes") or {}),
    }
    stop = c.get("StopSignal")
    if stop and not (stop == "SIGTERM" and not image_cfg.get("StopSignal")):
        user["StopSignal"] = stop
    return apply_config_changes(user, image_cfg, changes)


def apply_config_changes(user: dict, image_cfg: dict, changes: list[str] | None) -> dict:
    """``--change`` lines on top of ``user``, then Docker's merge with ``image_cfg``.
    An ENTRYPOINT change without a CMD change clears Cmd (the Dockerfile rule)."""
    user = copy.deepcopy(user)
    changes = list(changes or [])
    instrs = {ln.strip().split(" ", 1)[0].upper() for ln in changes if ln.strip()}
    try:
        apply_changes(user, changes)
    except (ValueError, TypeError) as e:
        raise UsageError(f"invalid --change: {e}") from None
    if "ENTRYPOINT" in instrs and "CMD" not in instrs:
        user["Cmd"] = None
        image_cfg = {k: v for k, v in image_cfg.items() if k != "Cmd"}
    return merge_config(user, image_cfg)


# ---------------------------------------------------------------------- the image


def _layer_descriptor(d: dict) -> dict:
    out = {"mediaType": _TO_OCI.get(d.get("mediaType", ""), d.get("mediaType") or media.OCI_LAYER_GZIP),
           "digest": d["digest"], "size": int(d.get("size") or 0)}
    for k in ("urls", "annotations"):
        if d.get(k):
            out[k] = d[k]
    return out


def create_image(store, parent: Image | None, config_section: dict, layers: list[dict],
                 history: list[dict], ref: str | Reference | None = None,
                 author: str | None = None,
                 created: str | None = None, base_config: dict | None = None) -> Image:
    """Register a new image: ``parent``'s layers + ``layers`` (write_layer results), the
    given "config" section and ``history`` entries appended to the parent's. An entry
    with ``"empty_layer": True`` is a metadata-only step. Returns the stored Image
    (tagged ``ref`` when given). Blobs must already be in the store."""
    created = created or now_rfc3339()
    src = parent.config if parent is not None else (base_config or {})
    cfg = {k: v for k, v in src.items()
           if k not in ("config", "rootfs", "history", "created", "author", "container",
                        "container_config", "docker_version")}
    cfg.setdefault("architecture", host_arch())
    cfg.setdefault("os", "linux")
    cfg["created"] = created
    if author:
        cfg["author"] = author
    cfg["config"] = config_section
    parent_diffs = list(parent.diff_ids) if parent is not None else []
    cfg["rootfs"] = {"type": "layers", "diff_ids": parent_diffs + [x["diff_id"] for x in layers]}
    hist = list(parent.config.get("history") or []) if parent is not None else []
    cfg["history"] = hist + [dict(h) for h in history]
    cfg_bytes = json.dumps(cfg, separators=(",", ":")).encode()
    cfg_digest = store.put_blob(cfg_bytes)
    parent_layers = []
    if parent is not None:
        for d in parent.manifest.get("layers") or []:
            if not store.has_blob(d["digest"]) and d.get("mediaType") not in media.FOREIGN_LAYERS:
                raise NotFound(f"layer blob {d['digest']} of the parent image is missing from the store")
            parent_layers.append(_layer_descriptor(d))
    manifest = {
        "schemaVersion": 2,
        "mediaType": media.OCI_MANIFEST,
        "config": {"mediaType": media.OCI_CONFIG, "digest": cfg_digest, "size": len(cfg_bytes)},
        "layers": parent_layers + [dict(x["descriptor"]) for x in layers],
    }
    return store.add_image(json.dumps(manifest, separators=(",", ":")).encode(), ref)


# ---------------------------------------------------------------------- commit


class _Frozen:
    """Freeze a running container's cgroup for the block; always thaw."""

    def __init__(self, cid: str, enabled: bool):
        self.cg = None
        if enabled:
            from core.runtime import cgroups

            self.cg = cgroups.Cgroup.open(f"nutshell/{cid}")

    def __enter__(self):
        if self.cg is not None and self.cg.is_frozen():
            self.cg = None  # paused by the user: read it as it is, leave it paused
        if self.cg is not None:
            try:
                self.cg.freeze()
            except NutshellError as e:
                raise RuntimeFailure(f"cannot pause the container for the commit: {e}",
                                     hint="use --pause=false to commit without pausing") from None
        return self

    def __exit__(self, *exc):
        if self.cg is not None:
            self.cg.thaw()


def commit(engine, container: str, ref: str | None = None, message: str | None = None,
           author: str | None = None, changes: list[str] | None = None, pause: bool = True,
           compression: str = "gzip", progress: ProgressFn = None,
           on_layer: Callable[[dict], None] | None = None) -> Image:
    """Commit a container's changes as a new image (see the module docstring)."""
    from core.reference import parse

    if compression not in COMPRESSIONS:
        raise UsageError(f"unknown compression {compression!r} (use gzip, zstd or none)")
    target = None
    if ref:
        target = parse(ref)
        if target.digest:
            raise UsageError(f"refusing to create a tag with a digest reference: {ref}")
    rt = engine._runtime
    store = engine.store
    cid = rt.resolve(container)
    cfg = rt.records.read_config(cid)
    cdir = engine.paths.container(cid)
    parent: Image | None = None
    image_cfg: dict = {}
    if cfg.get("ImageID"):
        try:
            parent = store.image(cfg["ImageID"])
        except NotFound:
            raise NotFound(f"the image of container {cid[:12]} ({cfg['ImageID'][:19]}) is no "
                           "longer in the store; cannot commit on top of it") from None
        image_cfg = dict(parent.config.get("config") or {})
    elif not cfg.get("RootfsDir"):
        raise Conflict(f"container {cid[:12]} has no image to commit on")
    section = container_config(cfg, image_cfg, changes)
    exclude = change_exclusions(cdir, cfg)
    short = cid[:12]
    store.forget_new_blobs()
    with store.lease():
        try:
            layers = []
            if parent is None:           # --rootfs container: the directory is the base layer
                emit(progress, short, "Writing base layer")
                layers.append(write_layer(store, cfg["RootfsDir"], overlay=False,
                                          compression=compression, progress=progress,
                                          progress_id=short))
            st = rt.state(cid)
            running = st.get("Status") in ("running", "paused")
            emit(progress, short, "Pausing" if running and pause else "Committing")
            with _Frozen(cid, pause and running):
                layer = write_layer(store, os.path.join(cdir, "upper"), overlay=True,
                                    exclude=exclude, compression=compression,
                                    progress=progress, progress_id=short)
            layers.append(layer)
            if on_layer is not None:
                on_layer(layer)
            argv = [cfg.get("Path") or ""] + list(cfg.get("Args") or [])
            created = now_rfc3339()
            hist = {"created": created, "created_by": " ".join(a for a in argv if a)}
            if author:
                hist["author"] = author
            if message:
                hist["comment"] = message
            history = [hist] if parent is not None else [
                {"created": created, "created_by": f"nutshell commit (rootfs {cfg['RootfsDir']})"}, hist]
            img = create_image(store, parent, section, layers, history, target, author, created)
            store.forget_new_blobs()
        except BaseException:
            store.rollback_new_blobs()
            raise
    emit(progress, short, "Committed", message=img.id, digest=img.id)
    return img
