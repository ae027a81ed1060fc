"""Named and anonymous volumes on disk, Docker's ``local`` driver:

    $ROOT/volumes/<name>/_data          what the container sees at the mount point
    $ROOT/volumes/<name>/volume.json    {"Name", "Driver", "CreatedAt", "Labels", "Options",
                                         "Anonymous"}

Names follow Docker (``[a-zA-Z0-9][a-zA-Z0-9_.-]+``); anonymous volumes get 64 random
hex digits. A volume is *in use* while any container (running or not) lists it in its
config.json ``Mounts``; removing it is then refused. Creating, removing and attaching
volumes to a new container happen under the containers' global lock and then
``$ROOT/volumes.lock``, in that order, so a volume cannot vanish between a container's
create and the write of its config.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import re
import shutil
import time
from typing import TYPE_CHECKING

from ..errors import Conflict, NotFound, UsageError
from ..fsutil import atomic_write_json, dir_size, json_records, locked
from ..paths import ensure_root, private_dir

if TYPE_CHECKING:
    from ..types import Volume, VolumePruneReport

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+\Z")
META = "volume.json"


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + "Z"


def valid_name(name: str) -> bool:
    return bool(NAME_RE.match(name or "")) and len(name) <= 255


class Volumes:
    def __init__(self, paths):
        self.paths = paths

    # --- layout and locks ----------------------------------------------------------------
    @property
    def base(self) -> str:
        return self.paths.volumes

    def dir(self, name: str) -> str:
        if not valid_name(name):
            raise UsageError(f"invalid volume name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                             "are allowed")
        return os.path.join(self.base, name)

    def data(self, name: str) -> str:
        return os.path.join(self.dir(name), "_data")

    @contextlib.contextmanager
    def lock(self):
        """Containers' global lock, then the volumes lock (always in this order)."""
        ensure_root(self.paths)
        private_dir(self.paths.containers)
        with locked(os.path.join(self.paths.containers, ".lock")):
            with locked(os.path.join(self.paths.root, "volumes.lock")):
                yield

    @contextlib.contextmanager
    def volumes_lock(self):
        """Only the volumes lock (for callers already holding the containers' lock)."""
        ensure_root(self.paths)
        with locked(os.path.join(self.paths.root, "volumes.lock")):
            yield

    # --- records ---------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        return valid_name(name) and os.path.exists(os.path.join(self.base, name, META))

    def names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.base)
                          if valid_name(n) and os.path.exists(os.path.join(self.base, n, META)))
        except FileNotFoundError:
            return []

    def _meta(self, name: str) -> dict:
        if not valid_name(name):
            raise NotFound(f"no such volume: {name}")
        try:
            with open(os.path.join(self.dir(name), META), "rb") as f:
                return json.loads(f.read())
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no such volume: {name}") from None
        except ValueError:
            return {"Name": name, "Driver": "local"}

    def inspect(self, name: str, usage: bool = False) -> Volume:
        meta = self._meta(name)
        out: Volume = {
            "CreatedAt": meta.get("CreatedAt", ""),
            "Driver": meta.get("Driver", "local"),
            "Labels": meta.get("Labels") or None,
            "Mountpoint": self.data(name),
            "Name": name,
            "Options": meta.get("Options") or None,
            "Scope": "local",
        }
        if meta.get("Anonymous"):
            out["Labels"] = dict(out["Labels"] or {}, **{"com.docker.volume.anonymous": ""})
        if usage:
            users = self.users().get(name, [])
            out["UsageData"] = {"Size": dir_size(self.data(name)), "RefCount": len(users)}
        return out

    def anonymous(self, name: str) -> bool:
        try:
            return bool(self._meta(name).get("Anonymous"))
        except NotFound:
            return False

    def _create_locked(self, name: str | None, labels: dict | None, anonymous: bool,
                       driver: str = "local", options: dict | None = None) -> tuple[str, bool]:
        """(name, created) — an existing volume of that name is returned as it is."""
        if driver not in ("local", "", None):
            raise UsageError(f"volume driver {driver!r} is not supported (only local)")
        if options:
            raise UsageError("volume driver options are not supported")
        if name is None:
            name = os.urandom(32).hex()
            anonymous = True
        elif not valid_name(name):
            raise UsageError(f"invalid volume name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                             "are allowed")
        if self.exists(name):
            return name, False
        d = os.path.join(self.base, name)
        # volumes/ and volumes/<name> are the owner's only (a container's root can put a
        # setuid file or a device node in _data); _data itself is what the container
        # sees at the mount point, 0755 until the image's directory is copied in
        private_dir(self.base)
        tmp = private_dir(os.path.join(self.base, f".new-{os.getpid()}-{os.urandom(4).hex()}"))
        os.mkdir(os.path.join(tmp, "_data"), 0o755)
        os.chmod(os.path.join(tmp, "_data"), 0o755)
        atomic_write_json(os.path.join(tmp, META), {
            "Name": name, "Driver": "local", "CreatedAt": _now(), "Labels": dict(labels or {}),
            "Options": {}, "Anonymous": bool(anonymous)}, sync=False)
        if os.path.lexists(d):            # a leftover without its meta file
            shutil.rmtree(d, ignore_errors=True)
        os.rename(tmp, d)
        return name, True

    def create(self, name: str | None = None, labels: dict | None = None,
               driver: str = "local", options: dict | None = None) -> Volume:
        with self.lock():
            name, _ = self._create_locked(name, labels, name is None, driver, options)
        return self.inspect(name)

    def list(self, filters: dict | None = None) -> builtins.list[Volume]:
        out = []
        users = self.users() if filters and "dangling" in filters else {}
        for n in self.names():
            try:
                v = self.inspect(n)
            except NotFound:
                continue
            if filters:
                if "name" in filters and filters["name"] not in n:
                    continue
                if "dangling" in filters:
                    dangling = str(filters["dangling"]).lower() in ("1", "true")
                    if (n not in users) != dangling:
                        continue
                if "label" in filters:
                    k, eq, val = filters["label"].partition("=")
                    labels = v.get("Labels") or {}
                    if k not in labels or (eq and labels[k] != val):
                        continue
            out.append(v)
        return out

    # --- who uses what ---------------------------------------------------------------------
    def users(self) -> dict[str, builtins.list[str]]:
        """volume name -> ids of containers whose config mounts it."""
        out: dict[str, builtins.list[str]] = {}
        for cid, cfg in json_records(self.paths.containers, "config.json"):
            for m in cfg.get("Mounts") or []:
                if m.get("Type") == "volume" and m.get("Name"):
                    out.setdefault(m["Name"], []).append(cid)
        return out

    # --- removal -----------------------------------------------------------------------------
    def _remove_locked(self, name: str) -> int:
        d = self.dir(name)
        size = dir_size(os.path.join(d, "_data")) if os.path.isdir(d) else 0
        trash = os.path.join(self.base, f".trash-{os.getpid()}-{os.urandom(4).hex()}")
        os.rename(d, trash)
        shutil.rmtree(trash, ignore_errors=True)
        return size

    def remove(self, name: str, force: bool = False) -> None:
        """Remove a volume; refused while any container uses it (``force`` only makes a
        missing volume not an error, as Docker's ``volume rm -f``)."""
        with self.lock():
            if not self.exists(name):
                if force:
                    return
                raise NotFound(f"no such volume: {name}")
            users = self.users().get(name, [])
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(u for u in users)}]",
                               hint="remove the containers that use it first (rm -v removes "
                                    "a container's anonymous volumes with it)")
            self._remove_locked(name)

    def remove_unused(self, names: builtins.list[str]) -> builtins.list[str]:
        """Remove the given volumes that no container uses any more (``rm -v``)."""
        removed = []
        with self.lock():
            users = self.users()
            for n in names:
                if self.exists(n) and not users.get(n):
                    self._remove_locked(n)
                    removed.append(n)
        return removed

    def prune(self, all: bool = False, filters: dict | None = None) -> VolumePruneReport:
        """Remove unused volumes: anonymous ones, or every unused one with ``all``
        (Docker 23+)."""
        deleted, space = [], 0
        with self.lock():
            users = self.users()
            for n in self.names():
                if users.get(n):
                    continue
                meta = self._meta(n)
                if not all and not meta.get("Anonymous"):
                    continue
                if filters and "label" in filters:
                    k, eq, val = filters["label"].partition("=")
                    labels = meta.get("Labels") or {}
                    if k not in labels or (eq and labels[k] != val):
                        continue
                space += self._remove_locked(n)
                deleted.append(n)
        return {"VolumesDeleted": deleted, "SpaceReclaimed": space}
