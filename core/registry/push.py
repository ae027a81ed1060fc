"""Push: blobs first (config, then layers), then the manifest by tag.

For every blob (in parallel, bounded):

1. ``HEAD blobs/<digest>``: present already -> "Layer already exists".
2. If the blob came from (or went to) another repository of the same registry
   (``$ROOT/registry/sources.json``), try a cross-repository mount:
   ``POST blobs/uploads/?mount=<digest>&from=<repo>``; 201 -> "Mounted from <repo>".
   A 202 means the registry started an ordinary upload instead; we use that session.
3. Otherwise upload: ``POST blobs/uploads/`` -> ``Location``; then either one
   ``PUT <location>?digest=`` carrying the whole blob (monolithic, small blobs), or
   ``PATCH`` chunks with ``Content-Range`` and a final empty ``PUT ?digest=`` (chunked,
   big blobs; a failed chunk resumes from the offset the registry reports).

The stored blob bytes are pushed exactly as they are (compressed form included), and the
manifest bytes too, so a pulled-then-pushed image keeps its layer digests and its
manifest digest.
"""

from __future__ import annotations

import os
import threading

from ..errors import NotFound, RegistryError
from ..events import ProgressFn, emit
from ..reference import Reference
from . import sources
from .auth import AuthError
from .client import RegistryClient
from .manifest import DOCKER_MANIFEST, OCI_CONFIG, OCI_MANIFEST, is_foreign
from .parallel import run_all
from .reader import Cancelled, short_id
from .transport import TRANSIENT_ERRORS, ConnectionDropped

MAX_PARALLEL = 4
MONOLITHIC_MAX = 32 << 20     # blobs up to this size go up in one PUT
CHUNK_SIZE = 16 << 20         # PATCH size for bigger ones


class _ProgressFile:
    """A file body for http.client that reports bytes sent."""

    def __init__(self, f, total: int, progress: ProgressFn, pid: str, base: int = 0,
                 cancel: threading.Event | None = None):
        self.f, self.total, self.progress, self.pid = f, total, progress, pid
        self.sent = base
        self.cancel = cancel
        self._last = 0

    def read(self, n: int = -1) -> bytes:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("push cancelled")
        data = self.f.read(n)
        self.sent += len(data)
        if self.progress is not None and (self.sent - self._last >= (256 << 10) or not data
                                          or self.sent >= self.total):
            self._last = self.sent
            emit(self.progress, self.pid, "Pushing", self.sent, self.total)
        return data


def _manifest_media_type(manifest: dict) -> str:
    mt = manifest.get("mediaType")
    if isinstance(mt, str) and mt:
        return mt
    cfg_type = (manifest.get("config") or {}).get("mediaType")
    return OCI_MANIFEST if cfg_type in (None, "", OCI_CONFIG) else DOCKER_MANIFEST


def _upload_blob(client: RegistryClient, store, repo: str, desc: dict, location: str,
                 progress: ProgressFn, cancel: threading.Event, chunk_size: int | None) -> None:
    digest, size = desc["digest"], desc["size"]
    sid = short_id(digest)
    path = store.blob_path(digest)
    actual = os.path.getsize(path)
    if actual != size:
        raise RegistryError(f"stored blob {digest} has {actual} bytes, the manifest says {size}")
    use_chunks = chunk_size is not None and chunk_size > 0 and size > chunk_size
    if not use_chunks:
        with open(path, "rb") as f:
            body = _ProgressFile(f, size, progress, sid, cancel=cancel)
            client.upload_monolithic(repo, location, body, size, digest)
        return
    offset = 0
    failures = 0
    with open(path, "rb") as f:
        while offset < size:
            if cancel.is_set():
                raise Cancelled("push cancelled")
            f.seek(offset)
            chunk = f.read(min(chunk_size, size - offset))
            try:
                location = client.upload_chunk(repo, location, chunk, offset)
                offset += len(chunk)
                failures = 0
                emit(progress, sid, "Pushing", offset, size)
            except (ConnectionDropped, *TRANSIENT_ERRORS, RegistryError) as exc:
                if isinstance(exc, (AuthError, NotFound)):
                    raise
                failures += 1
                if failures > client.retry.layer_attempts:
                    raise
                # ask the registry how much it has, and carry on from there
                try:
                    have = client.upload_status(repo, location)
                except RegistryError:
                    raise exc from None
                if have > offset + len(chunk) or have < 0:
                    raise
                emit(progress, sid, "Retrying", have, size, message=f"resuming upload at byte {have}")
                offset = have
    client.finish_upload(repo, location, digest)


def push_image(store, root: str, client: RegistryClient, image, dest: Reference, *,
               progress: ProgressFn = None, max_parallel: int = MAX_PARALLEL,
               chunk_size: int | None = CHUNK_SIZE, monolithic_max: int = MONOLITHIC_MAX) -> str:
    """Push a stored ``image`` to ``dest``; returns the manifest digest."""
    repo = dest.path
    raw = store.read_blob(image.manifest_digest)
    manifest = image.manifest
    blobs = [manifest["config"]] + [ld for ld in manifest.get("layers") or [] if not is_foreign(ld)]
    for ld in manifest.get("layers") or []:
        if is_foreign(ld):
            emit(progress, short_id(ld["digest"]), "Skipped foreign layer")
    emit(progress, dest.tag or dest.digest or "", "The push refers to repository",
         message=f"[{dest.name}]")
    for b in blobs:
        if not store.has_blob(b["digest"]):
            raise NotFound(f"blob {b['digest']} of {dest.familiar()} is missing from the store",
                           hint="pull or rebuild the image")
        emit(progress, short_id(b["digest"]), "Preparing", 0, b["size"])

    cancel = threading.Event()
    client.ensure_ping()

    def one(desc: dict) -> None:
        digest, size = desc["digest"], desc["size"]
        sid = short_id(digest)
        if client.blob_size(repo, digest, scopes=[f"repository:{repo}:pull,push"]) is not None:
            emit(progress, sid, "Layer already exists", size, size)
            return
        location = None
        for src in sources.mount_candidates(root, digest, dest.domain, repo)[:3]:
            try:
                mounted, location = client.start_upload(repo, mount=digest, from_repo=src)
            except RegistryError:
                continue
            if mounted:
                emit(progress, sid, "Mounted from", size, size, message=src)
                return
            break  # the registry opened a normal upload session instead: use it
        attempts = max(1, client.retry.layer_attempts)
        for attempt in range(attempts):
            if location is None:
                _mounted, location = client.start_upload(repo)
            assert location is not None     # no mount asked: the registry gave an upload URL
            try:
                _upload_blob(client, store, repo, desc, location, progress, cancel,
                             chunk_size if size > monolithic_max else None)
                break
            except (ConnectionDropped, *TRANSIENT_ERRORS) as exc:
                client.cancel_upload(repo, location)
                location = None
                if attempt + 1 >= attempts:
                    raise ConnectionDropped(f"upload of {sid} failed: {exc}") from None
                emit(progress, sid, "Retrying", 0, size, message=str(exc))
        emit(progress, sid, "Pushed", size, size)

    # the config goes first (some registries want it before the layers), then layers
    one(blobs[0])
    run_all(one, blobs[1:], max_parallel, cancel, "push")

    media_type = _manifest_media_type(manifest)
    reference = dest.tag or dest.digest or "latest"
    digest = client.put_manifest(repo, reference, raw, media_type)
    if digest != image.manifest_digest:
        raise RegistryError(f"pushed manifest digest {digest} differs from the stored {image.manifest_digest}")
    try:
        sources.record(root, [b["digest"] for b in blobs], dest.name)
    except OSError:
        pass
    emit(progress, reference, "Pushed manifest",
         message=f"{reference}: digest: {digest} size: {len(raw)}", digest=digest, size=len(raw))
    return digest
