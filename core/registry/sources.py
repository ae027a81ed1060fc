"""Where blobs came from: ``$ROOT/registry/sources.json``.

``{"sha256:...": ["127.0.0.1:5000/team/app", "docker.io/library/busybox"]}``, newest
first, a few entries per blob. Push reads it to try a cross-repository mount
(``POST /v2/<dest>/blobs/uploads/?mount=<digest>&from=<src>``) instead of uploading a
blob the registry already holds in another repository. Pull and push write it. It is a
hint only: a wrong or stale entry costs one failed mount attempt, never correctness.
"""

from __future__ import annotations

import json
import os

from .. import fsutil
from ..paths import private_dir

MAX_PER_BLOB = 8


def _dir(root: str) -> str:
    return os.path.join(root, "registry")


def _file(root: str) -> str:
    return os.path.join(_dir(root), "sources.json")


def load(root: str) -> dict[str, list[str]]:
    try:
        with open(_file(root), "rb") as f:
            data = json.loads(f.read(16 << 20))
    except (FileNotFoundError, ValueError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def lookup(root: str, digest: str) -> list[str]:
    v = load(root).get(digest)
    return [x for x in v if isinstance(x, str)] if isinstance(v, list) else []


def record(root: str, digests: list[str], repository: str) -> None:
    """Remember that ``repository`` (``domain/path``) holds each of ``digests``."""
    if not digests:
        return
    if not os.path.isdir(_dir(root)):
        os.makedirs(root, mode=0o700, exist_ok=True)
        private_dir(_dir(root))         # the owner's only, as every dir at the root
    with fsutil.locked(os.path.join(_dir(root), ".lock")):
        data = load(root)
        for d in digests:
            lst = [x for x in data.get(d, []) if isinstance(x, str) and x != repository]
            data[d] = ([repository] + lst)[:MAX_PER_BLOB]
        fsutil.atomic_write(_file(root), json.dumps(data, separators=(",", ":")).encode(),
                            sync=False)


def mount_candidates(root: str, digest: str, domain: str, dest_path: str) -> list[str]:
    """Repositories (paths) of ``domain`` other than ``dest_path`` known to hold ``digest``."""
    out = []
    for full in lookup(root, digest):
        dom, _, path = full.partition("/")
        if dom == domain and path and path != dest_path:
            out.append(path)
    return out
