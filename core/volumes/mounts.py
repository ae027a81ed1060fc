"""A container's mounts: parsing ``-v``, ``--mount`` and ``--tmpfs`` the way Docker does,
and turning them (plus the image's ``VOLUME``s) into the ``Mounts`` of config.json at
create time.

    -v NAME:/path[:opts]        named volume (created if missing)
    -v /host:/path[:opts]       bind mount (the host directory is created if missing)
    -v /path                    anonymous volume
    --mount type=volume|bind|tmpfs,source=..,target=..,readonly[,volume-nocopy]
            [,tmpfs-size=..][,tmpfs-mode=..][,bind-propagation=..]
    --tmpfs /path[:opts]        tmpfs (default noexec,nosuid,nodev)

opts: ``ro``/``rw``, ``nocopy``, ``z``/``Z`` and propagation modes (accepted, recorded).

A volume that is empty when the container is created is seeded with what the image has
at the mount point (files, owners, modes; the volume's root takes the directory's owner
and mode), as Docker does, unless ``nocopy``. Each entry of ``Mounts`` has Docker's
inspect shape: Type, Name, Source, Destination, Driver, Mode, RW, Propagation; tmpfs
mounts also carry ``Options`` (the mount data).
"""

from __future__ import annotations

import os
import posixpath

from ..errors import NotFound, UsageError
from .store import valid_name

PROPAGATION = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}
VOLUME_MODES = {"ro", "rw", "z", "Z", "nocopy", "consistent", "delegated", "cached"} | PROPAGATION
TMPFS_DEFAULT = ["noexec", "nosuid", "nodev"]


def _dest(path: str, what: str) -> str:
    if not path:
        raise UsageError(f"invalid {what}: the mount destination is empty")
    if not path.startswith("/"):
        raise UsageError(f"invalid mount config for type \"{what}\": invalid mount path: "
                         f"'{path}' mount path must be absolute")
    clean = posixpath.normpath(path)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    if clean == "/":
        raise UsageError("invalid specification: destination can't be '/'")
    return clean


def parse_volume(spec: str) -> dict:
    """One ``-v`` value -> {"Type", "Source"/"Name", "Destination", "RW", "Mode", ...}."""
    parts = spec.split(":")
    if len(parts) > 1 and not parts[0]:
        # ":/x" is not an anonymous volume: Docker's parser refuses an empty first section
        raise UsageError(f"invalid volume specification: '{spec}'")
    if len(parts) == 1:
        src, dst, mode = "", parts[0], ""
    elif len(parts) == 2:
        if parts[1] and not parts[1].startswith("/") and parts[0].startswith("/"):
            src, dst, mode = "", parts[0], parts[1]       # /path:ro (anonymous, with opts)
        else:
            src, dst, mode = parts[0], parts[1], ""
    elif len(parts) == 3:
        src, dst, mode = parts
    else:
        raise UsageError(f"invalid volume specification: '{spec}'")
    opts = [o for o in mode.split(",") if o] if mode else []
    for o in opts:
        if o not in VOLUME_MODES:
            raise UsageError(f"invalid mode: {o} (in volume specification '{spec}')")
    if "ro" in opts and "rw" in opts:
        raise UsageError(f"invalid mode: {mode}")
    dst = _dest(dst, "volume")
    rw = "ro" not in opts
    prop = next((o for o in opts if o in PROPAGATION), "")
    if not src:
        return {"Type": "volume", "Name": None, "Destination": dst, "RW": rw, "Mode": mode,
                "NoCopy": "nocopy" in opts, "Propagation": "", "Anonymous": True}
    if src.startswith("/"):
        if "nocopy" in opts:
            raise UsageError(f"invalid mode: nocopy is only for volumes ('{spec}')")
        return {"Type": "bind", "Source": posixpath.normpath(src), "Destination": dst, "RW": rw,
                "Mode": mode, "Propagation": prop or "rprivate", "CreateSource": True}
    if not valid_name(src):
        raise UsageError(f'"{src}" includes invalid characters for a local volume name, only '
                         '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a '
                         "host directory, use absolute path")
    return {"Type": "volume", "Name": src, "Destination": dst, "RW": rw, "Mode": mode,
            "NoCopy": "nocopy" in opts, "Propagation": ""}


def _bool(v: str, key: str) -> bool:
    if v in ("", "1", "true", "True"):
        return True
    if v in ("0", "false", "False"):
        return False
    raise UsageError(f"invalid value for {key}: {v}")


def _octal(v: str) -> int:
    try:
        return int(v, 8)
    except ValueError:
        raise UsageError(f"invalid tmpfs-mode {v!r}: must be octal") from None


def parse_mount(spec: str) -> dict:
    """One ``--mount`` value (comma-separated key=value)."""
    kv: dict[str, str] = {}
    for field in spec.split(","):
        if not field:
            continue
        k, eq, v = field.partition("=")
        k = k.strip().lower()
        kv[k] = v.strip() if eq else ""
    typ = kv.pop("type", "volume")
    src = kv.pop("source", None) or kv.pop("src", None) or ""
    dst = kv.pop("target", None) or kv.pop("destination", None) or kv.pop("dst", None) or ""
    ro = False
    for key in ("readonly", "ro"):
        if key in kv:
            ro = _bool(kv.pop(key), key)
    if not dst:
        raise UsageError(f"invalid argument for --mount: target is required ('{spec}')")
    if typ == "bind":
        prop = kv.pop("bind-propagation", "rprivate")
        kv.pop("consistency", None)
        kv.pop("bind-recursive", None)
        if kv:
            raise UsageError(f"unexpected key '{next(iter(kv))}' in '{spec}'")
        if not src:
            raise UsageError("invalid mount config for type \"bind\": field Source must not be empty")
        if not src.startswith("/"):
            raise UsageError(f"invalid mount config for type \"bind\": invalid mount path: "
                             f"'{src}' mount path must be absolute")
        return {"Type": "bind", "Source": posixpath.normpath(src),
                "Destination": _dest(dst, "bind"), "RW": not ro,
                "Mode": "", "Propagation": prop, "CreateSource": False}
    if typ == "volume":
        nocopy = _bool(kv.pop("volume-nocopy"), "volume-nocopy") if "volume-nocopy" in kv else False
        labels = {}
        for k in [k for k in kv if k.startswith("volume-label")]:
            lk, _, lv = kv.pop(k).partition("=")
            labels[lk] = lv
        kv.pop("volume-driver", None)
        kv.pop("consistency", None)
        if any(k.startswith("volume-opt") for k in kv):
            raise UsageError("volume driver options are not supported")
        if kv:
            raise UsageError(f"unexpected key '{next(iter(kv))}' in '{spec}'")
        if src and not valid_name(src):
            raise UsageError(f"invalid volume name {src!r}")
        return {"Type": "volume", "Name": src or None, "Destination": _dest(dst, "volume"),
                "RW": not ro, "Mode": "", "NoCopy": nocopy, "Propagation": "",
                "Anonymous": not src, "Labels": labels}
    if typ == "tmpfs":
        if src:
            raise UsageError("invalid mount config for type \"tmpfs\": field Source must be empty")
        data = list(TMPFS_DEFAULT)
        if "tmpfs-size" in kv:
            from ..runtime.spec import parse_bytes

            data.append(f"size={parse_bytes(kv.pop('tmpfs-size'), 'tmpfs-size')}")
        if "tmpfs-mode" in kv:
            data.append(f"mode={_octal(kv.pop('tmpfs-mode')):o}")
        if kv:
            raise UsageError(f"unexpected key '{next(iter(kv))}' in '{spec}'")
        return {"Type": "tmpfs", "Source": "", "Destination": _dest(dst, "tmpfs"), "RW": not ro,
                "Mode": "", "Propagation": "", "Options": ",".join(data)}
    raise UsageError(f"invalid mount type {typ!r} (use bind, volume or tmpfs)")


def parse_tmpfs(spec: str) -> dict:
    dst, _, opts = spec.partition(":")
    data = list(TMPFS_DEFAULT)
    ro = False
    for o in [o for o in opts.split(",") if o]:
        if o == "ro":
            ro = True
        elif o == "rw":
            ro = False
        elif o in ("exec", "suid", "dev"):
            data = [d for d in data if d != "no" + o]
        else:
            data.append(o)
    return {"Type": "tmpfs", "Source": "", "Destination": _dest(dst, "tmpfs"), "RW": not ro,
            "Mode": "", "Propagation": "", "Options": ",".join(data)}


def parse_all(volumes: list[str] | None, mounts: list[str] | None,
              tmpfs: list[str] | None) -> list[dict]:
    """Every mount a create asked for, validated, duplicates refused."""
    out = [parse_volume(v) for v in volumes or []]
    out += [parse_mount(m) for m in mounts or []]
    out += [parse_tmpfs(t) for t in tmpfs or []]
    seen: set[str] = set()
    for m in out:
        if m["Destination"] in seen:
            raise UsageError(f"Duplicate mount point: {m['Destination']}")
        seen.add(m["Destination"])
    return out


def prepare(engine, requested: list[dict], image_volumes: dict | None,
            lower_dirs: list[str]) -> tuple[list[dict], list[str]]:
    """Resolve mounts for a new container (called under the containers' global lock):
    create named volumes that are missing, anonymous ones for ``-v /path`` and for the
    image's VOLUMEs no mount covers, make missing ``-v`` bind sources, seed empty volumes
    from the image. Returns (config Mounts, names of volumes created here)."""
    from .store import Volumes

    vols = Volumes(engine.paths)
    wanted = list(requested)
    covered = {m["Destination"] for m in wanted}
    for path in sorted(image_volumes or {}):
        try:
            dst = _dest(path, "volume")
        except UsageError:
            continue
        if dst not in covered:
            wanted.append({"Type": "volume", "Name": None, "Destination": dst, "RW": True,
                           "Mode": "", "NoCopy": False, "Propagation": "", "Anonymous": True})
            covered.add(dst)
    out: list[dict] = []
    created: list[str] = []
    to_seed: list[tuple[str, str]] = []
    try:
        with vols.volumes_lock():
            for m in wanted:
                if m["Type"] == "bind":
                    src = m["Source"]
                    if not os.path.exists(src):
                        if not m.get("CreateSource"):
                            raise NotFound(f"invalid mount config for type \"bind\": bind source "
                                           f"path does not exist: {src}")
                        os.makedirs(src, exist_ok=True)
                    out.append({"Type": "bind", "Source": src, "Destination": m["Destination"],
                                "Mode": m.get("Mode", ""), "RW": m["RW"],
                                "Propagation": m.get("Propagation") or "rprivate"})
                elif m["Type"] == "tmpfs":
                    out.append({k: m[k] for k in ("Type", "Source", "Destination", "Mode", "RW",
                                                  "Propagation", "Options")})
                else:
                    name, new = vols._create_locked(m.get("Name"), m.get("Labels"),
                                                    anonymous=m.get("Name") is None)
                    if new:
                        created.append(name)
                    data = vols.data(name)
                    rec = {"Type": "volume", "Name": name, "Source": data,
                           "Destination": m["Destination"], "Driver": "local",
                           "Mode": m.get("Mode") or "z", "RW": m["RW"], "Propagation": ""}
                    if vols.anonymous(name):
                        rec["Anonymous"] = True
                    out.append(rec)
                    if not m.get("NoCopy") and not os.listdir(data):
                        to_seed.append((data, m["Destination"]))
        if to_seed and lower_dirs:
            seed(to_seed, lower_dirs)
    except BaseException:
        with vols.volumes_lock():
            for name in created:
                if vols.anonymous(name):
                    vols._remove_locked(name)
        raise
    out.sort(key=lambda m: m["Destination"].count("/"))
    return out, created


def seed(targets: list[tuple[str, str]], lower_dirs: list[str]) -> None:
    """Copy the image's content at each container path into the (empty) volume dir."""
    import stat

    from ..fs.cp import copy_tree, resolve
    from ..fs.rootview import layers_view

    rootfd = layers_view(lower_dirs)
    try:
        for data, dest in targets:
            r = resolve(rootfd, dest, follow=True)
            try:
                if r.st is None or not stat.S_ISDIR(r.st.st_mode):
                    continue
                src = r.open(os.O_RDONLY | os.O_DIRECTORY)
                dst = os.open(data, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    copy_tree(src, dst, owners="keep")
                    st = os.fstat(src)
                    os.chown(dst, st.st_uid, st.st_gid)
                    os.chmod(dst, stat.S_IMODE(st.st_mode))
                finally:
                    os.close(src)
                    os.close(dst)
            finally:
                r.close()
    finally:
        os.close(rootfd)
