"""The build cache: one small JSON file per step key, under ``$ROOT/build-cache/``.

A step's key is a digest of everything its result depends on (see :func:`step_key`):
the key of the state it starts from (a base image's config digest, never a tag, or the
key of the previous step), the instruction with its arguments expanded, the ARG/ENV
values a RUN sees, the SHELL, USER and WORKDIR in force where they matter, and for
COPY/ADD the content hash of what is copied (core.dockerfile.context). The value is the
layer the step produced (blob digest, DiffID, media type, size, chain ID) or none
(metadata steps, RUNs that changed nothing) and the time it was made, so a fully
cached rebuild produces a byte-identical image config and the same image ID.

Layout::

    $ROOT/build-cache/v1/<key hex>.json

Every entry is written with temp + rename (``fsutil.atomic_write_json``), so two builds
at once never see half an entry, and need no lock: the same key always means the same
result, so the last writer winning is harmless.

The store keeps what entries point at: ``Store.gc`` asks :func:`gc_roots` for the blobs
and layer directories to keep. ``nutshell builder prune`` removes entries (then the
store's GC can reclaim their blobs).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field

from core import fsutil
from core.paths import private_dir

__all__ = ["CacheLayer", "CacheEntry", "BuildCache", "step_key", "gc_roots", "CACHE_VERSION"]

CACHE_VERSION = "v1"


def step_key(parent: str, parts: dict) -> str:
    """``sha256:<hex>`` of the parent key and the step's canonical description."""
    doc = {"parent": parent, **parts}
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(data.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass
class CacheLayer:
    """The layer a cached step produced (what an image manifest and config need)."""

    digest: str
    diff_id: str
    media_type: str
    size: int
    chain_id: str = ""


@dataclass
class CacheEntry:
    """One cached build step: its key, the step before it and the layer it made."""
    key: str
    parent: str
    instruction: str
    created: str
    layer: CacheLayer | None = None
    stage: str = ""
    meta: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = asdict(self)
        if self.layer is None:
            out["layer"] = None
        return out

    @classmethod
    def from_json(cls, doc: dict) -> CacheEntry:
        layer = doc.get("layer")
        return cls(key=doc["key"], parent=doc.get("parent", ""),
                   instruction=doc.get("instruction", ""), created=doc.get("created", ""),
                   layer=CacheLayer(**layer) if isinstance(layer, dict) else None,
                   stage=doc.get("stage", ""), meta=doc.get("meta") or {})


class BuildCache:
    """The cache directory of one state root (``paths.builds``)."""

    def __init__(self, paths):
        self.root = paths.builds
        self.dir = os.path.join(paths.builds, CACHE_VERSION)

    def _path(self, key: str) -> str:
        hexpart = key.partition(":")[2] or key
        if not hexpart or any(c not in "0123456789abcdef" for c in hexpart):
            raise ValueError(f"bad cache key {key!r}")
        return os.path.join(self.dir, hexpart + ".json")

    def get(self, key: str) -> CacheEntry | None:
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                doc = json.loads(f.read())
            entry = CacheEntry.from_json(doc)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if entry.key != key:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)          # last used: prune --keep-duration / oldest-first
        return entry

    def put(self, entry: CacheEntry) -> None:
        if not os.path.isdir(self.dir):
            # build-cache/ is the owner's only, like every dir at the state root (which
            # the builder has made private already: Store.ensure, core/paths.py)
            os.makedirs(os.path.dirname(self.root), mode=0o700, exist_ok=True)
            private_dir(self.root)
            private_dir(self.dir)
        fsutil.atomic_write_json(self._path(entry.key), entry.to_json(), sync=False)

    def _scan(self) -> list[tuple[str, CacheEntry | None]]:
        """Every entry file with what it holds (None: unreadable, or it names another key)."""
        out: list[tuple[str, CacheEntry | None]] = []
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return out
        for name in names:
            if not name.endswith(".json") or name.startswith("."):
                continue
            path = os.path.join(self.dir, name)
            entry = None
            try:
                with open(path, "rb") as f:
                    entry = CacheEntry.from_json(json.loads(f.read()))
                if entry.key.partition(":")[2] != name[:-5]:
                    entry = None
            except (OSError, ValueError, KeyError, TypeError):
                entry = None
            out.append((path, entry))
        return out

    def entries(self) -> list[CacheEntry]:
        return [entry for _, entry in self._scan() if entry is not None]

    def remove(self, key: str) -> bool:
        try:
            os.unlink(self._path(key))
            return True
        except FileNotFoundError:
            return False

    def prune(self, older_than: float | None = None) -> list[CacheEntry]:
        """Remove entries (all, or those not used for ``older_than`` seconds); damaged
        entry files always go. Returns the valid entries removed."""
        removed = []
        now = time.time()
        for path, entry in self._scan():
            if entry is not None and older_than is not None:
                try:
                    if now - os.stat(path).st_mtime < older_than:
                        continue
                except FileNotFoundError:
                    continue
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            if entry is not None:
                removed.append(entry)
        return removed


def gc_roots(paths) -> tuple[set[str], set[str]]:
    """(blob digests, layer chain IDs) the build cache refers to: Store.gc keeps them."""
    blobs: set[str] = set()
    chains: set[str] = set()
    for entry in BuildCache(paths).entries():
        if entry.layer is not None:
            blobs.add(entry.layer.digest)
            if entry.layer.chain_id:
                chains.add(entry.layer.chain_id)
    return blobs, chains
