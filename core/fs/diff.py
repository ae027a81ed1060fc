"""What a container changed: ``diff`` (Docker's A/C/D list) read from its overlay upper dir.

The upper dir alone is the change set because the runtime mounts overlay with
``redirect_dir=off,metacopy=off,index=off``. In it:

* a 0/0 character device is a whiteout: the lower entry of that name was deleted -> D;
* a directory with ``trusted.overlay.opaque=y`` replaced the lower directory of that
  name: it is C, and every entry the lower directory had that the new one lacks is D;
* anything else is A when no lower layer has the path, C when one does;
* the parents of every change are C (Docker's rule: /etc is C when /etc/x changed).

Directories that are only in upper because overlay copied them up to hold a child
(same mode and owner as below) are not changes by themselves. What the runtime created
as mount targets (``containers/<id>/mountpoints``) and everything under volume, bind and
tmpfs mount destinations are left out, as Docker leaves out its init layer and volumes.

Kinds are Docker's API numbers: 0 = C (modified), 1 = A (added), 2 = D (deleted).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from core.types import ContainerChange

KIND_MODIFIED, KIND_ADDED, KIND_DELETED = 0, 1, 2
KIND_LETTER = {KIND_MODIFIED: "C", KIND_ADDED: "A", KIND_DELETED: "D"}
OPAQUE_XATTR = "trusted.overlay.opaque"


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


class LowerView:
    """Overlay's lookup rules over the image layers (base first), in user space: which
    entry a path names in the merged lower view, and what a directory lists there."""

    def __init__(self, lower_base_first: list[str]):
        self.top_first = list(reversed(lower_base_first))
        self._dirs: dict[str, list[str] | None] = {}

    def _layers_for_dir(self, rel: str) -> list[str] | None:
        """The layer roots that contribute to directory ``rel`` (top first), or None if
        ``rel`` is not a directory in the merged view."""
        if rel in self._dirs:
            return self._dirs[rel]
        if rel == "":
            top: list[str] = []
            for layer in self.top_first:
                top.append(layer)
                if is_opaque(layer):
                    break
            self._dirs[rel] = top
            return top
        parent = self._layers_for_dir(os.path.dirname(rel))
        out: list[str] = []
        for layer in parent or []:
            st = _lstat(os.path.join(layer, rel))
            if st is None:
                continue
            if is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
                break
            out.append(layer)
            if is_opaque(os.path.join(layer, rel)):
                break
        result = out or None
        if len(self._dirs) > 50_000:
            self._dirs.clear()
        self._dirs[rel] = result
        return result

    def lookup(self, rel: str) -> os.stat_result | None:
        """lstat of what ``rel`` names in the merged lower view (None: it does not exist)."""
        layers = self._layers_for_dir(os.path.dirname(rel))
        for layer in layers or []:
            st = _lstat(os.path.join(layer, rel))
            if st is None:
                continue
            return None if is_whiteout(st) else st
        return None

    def children(self, rel: str) -> set[str]:
        """The names directory ``rel`` lists in the merged lower view."""
        names: set[str] = set()
        hidden: set[str] = set()
        for layer in self._layers_for_dir(rel) or []:
            try:
                entries = os.scandir(os.path.join(layer, rel))
            except (FileNotFoundError, NotADirectoryError):
                continue
            with entries:
                for e in entries:
                    if e.name in names or e.name in hidden:
                        continue
                    st = e.stat(follow_symlinks=False)
                    (hidden if is_whiteout(st) else names).add(e.name)
        return names


def read_mountpoints(container_dir: str) -> list[str]:
    try:
        with open(os.path.join(container_dir, "mountpoints")) as f:
            return [p.strip().strip("/") for p in f.read().split("\n") if p.strip().strip("/")]
    except FileNotFoundError:
        return []


def change_exclusions(container_dir: str, config: dict) -> set[str]:
    """Relative paths (with their subtrees) that are not part of the container's changes:
    mount targets the runtime created, and every user mount destination."""
    upper = os.path.join(container_dir, "upper")
    dests = {str(m.get("Destination") or "").strip("/") for m in config.get("Mounts") or []}
    dests.discard("")
    out = set(dests)
    created = [p for p in read_mountpoints(container_dir) if p not in dests]
    # deepest first, so a created parent whose only content is other targets goes too
    for rel in sorted(created, key=lambda p: p.count("/"), reverse=True):
        full = os.path.join(upper, rel)
        st = _lstat(full)
        if st is not None and stat.S_ISDIR(st.st_mode) and not _only_excluded(full, rel, out):
            continue                  # the user put something of their own in it: keep
        out.add(rel)
    return out


def _only_excluded(full: str, rel: str, excluded: set[str]) -> bool:
    try:
        names = os.listdir(full)
    except OSError:
        return True
    for name in names:
        child = f"{rel}/{name}"
        if child not in excluded:
            return False
    return True


def excluded(rel: str, exclude: set[str]) -> bool:
    if not exclude:
        return False
    if rel in exclude:
        return True
    parts = rel.split("/")
    for i in range(1, len(parts)):
        if "/".join(parts[:i]) in exclude:
            return True
    return False


def upper_changes(upper: str, lower_base_first: list[str],
                  exclude: Iterable[str] = ()) -> list[ContainerChange]:
    """Docker's change list of an overlay upper dir: [{"Path": "/x", "Kind": 0|1|2}],
    sorted by path."""
    lower = LowerView(lower_base_first)
    ex = set(exclude)
    kinds: dict[str, int] = {}

    def walk(rel_dir: str) -> None:
        full_dir = os.path.join(upper, rel_dir) if rel_dir else upper
        try:
            entries = sorted(os.scandir(full_dir), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for e in entries:
            rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
            if excluded(rel, ex):
                continue
            st = e.stat(follow_symlinks=False)
            if is_whiteout(st):
                if lower.lookup(rel) is not None:
                    kinds[rel] = KIND_DELETED
                continue
            below = lower.lookup(rel)
            if stat.S_ISDIR(st.st_mode):
                if below is None:
                    kinds[rel] = KIND_ADDED
                elif not stat.S_ISDIR(below.st_mode):
                    kinds[rel] = KIND_MODIFIED
                elif is_opaque(e.path):
                    kinds[rel] = KIND_MODIFIED
                    present = set(os.listdir(e.path))
                    for name in lower.children(rel) - present:
                        kinds[f"{rel}/{name}"] = KIND_DELETED
                elif (st.st_mode, st.st_uid, st.st_gid) != (below.st_mode, below.st_uid, below.st_gid):
                    kinds[rel] = KIND_MODIFIED
                walk(rel)
            else:
                kinds[rel] = KIND_ADDED if below is None else KIND_MODIFIED

    walk("")
    for rel in list(kinds):
        parent = os.path.dirname(rel)
        while parent and parent not in kinds:
            kinds[parent] = KIND_MODIFIED
            parent = os.path.dirname(parent)
    return [{"Path": "/" + rel, "Kind": kinds[rel]} for rel in sorted(kinds)]


def container_changes(engine, ref: str) -> list[ContainerChange]:
    """``diff CONTAINER``: the container's changes against its image."""
    rt = engine._runtime
    cid = rt.resolve(ref)
    cfg = rt.records.read_config(cid)
    cdir = engine.paths.container(cid)
    from core.fs.imagemount import readable_all

    lower = readable_all(rt._lower_dirs(cfg))
    return upper_changes(os.path.join(cdir, "upper"), lower, change_exclusions(cdir, cfg))
