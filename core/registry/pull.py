"""Pull: resolve a reference to one image manifest, fetch its config, stream its layers.

Order of work (nothing becomes visible as an image until the very end):

1. ``GET manifests/<tag|digest>``; verified against the requested digest or the
   registry's ``Docker-Content-Digest``. An index picks the manifest for the platform
   (``--platform`` or this host), which is then fetched by digest and verified.
2. The config blob (4 MiB cap) is fetched, verified and stored.
3. Layers are fetched in parallel (``MAX_PARALLEL`` threads). Each one is a
   :class:`~core.registry.reader.BlobReader` handed to ``store.ingest_layer``, which
   hashes, decompresses and unpacks it in one streaming pass; a dropped connection
   resumes with ``Range``; a resume the registry cannot honour restarts the layer.
   Layers already stored are skipped ("Already exists"); foreign layers are skipped with
   a warning.
4. ``store.add_image`` registers the manifest and moves the tag. If any step failed,
   no tag or index entry was written: the blobs and layers that did verify stay in the
   store (content-addressed, reused by the next attempt, collected by GC otherwise).
"""

from __future__ import annotations

import threading

from ..errors import NutshellError, RegistryError
from ..events import ProgressFn, emit
from ..reference import Reference
from ..store.image import check_config
from . import sources
from .client import RegistryClient
from .manifest import (
    CONFIG_LIMIT,
    MANIFEST_TYPES,
    ManifestError,
    Platform,
    check_image_manifest,
    host_platform,
    is_foreign,
    json_object,
    normalize_arch,
    parse_platform,
    select_platform,
)
from .parallel import run_all
from .reader import BlobReader, RestartLayer, short_id

MAX_PARALLEL = 3


def _chain_ids(diff_ids: list[str]) -> list[str]:
    import hashlib

    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


def _check_config(config_bytes: bytes, n_layers: int, what: str) -> dict:
    return check_config(json_object(config_bytes, f"{what}: image config"), n_layers,
                        f"{what}: image config")


def _platform_of_config(config: dict) -> Platform:
    arch, variant = normalize_arch(str(config.get("architecture", "")), str(config.get("variant", "")))
    return Platform(str(config.get("os", "")).lower(), arch, variant)


def _platform_matches(want: Platform, have: Platform) -> bool:
    if want.os != have.os or want.architecture != have.architecture:
        return False
    if not want.variant or not have.variant:
        return True
    return want.variant == have.variant


def pull_image(store, root: str, client: RegistryClient, ref: Reference, *,
               platform: str | None = None, progress: ProgressFn = None,
               max_parallel: int = MAX_PARALLEL):
    """Pull ``ref`` through ``client`` into ``store``. Returns the store's Image."""
    what = ref.familiar()
    repo = ref.path
    want = parse_platform(platform) if platform else None  # bad input fails before any request
    emit(progress, ref.tag or ref.digest or "", "Pulling from", message=ref.path)
    previous = None
    try:
        previous = store.image(str(ref)) if not ref.digest else None
    except NutshellError:
        previous = None

    reference = ref.digest or ref.tag
    assert reference is not None       # parse() gives every reference a tag or a digest
    top = client.get_manifest(repo, reference, what)
    index_digest = None
    desc_platform = None
    if top.is_index:
        index_digest = top.digest
        desc = select_platform(top, want or host_platform(), what)
        desc_platform = desc.get("platform")
        manifest = client.get_manifest(repo, desc["digest"], f"{what} ({desc['digest'][:19]})")
        if manifest.is_index or manifest.media_type not in MANIFEST_TYPES:
            raise ManifestError(f"{what}: index entry {desc['digest']} is not an image manifest")
        if len(manifest.raw) != desc["size"]:
            raise ManifestError(f"{what}: manifest {desc['digest']} has {len(manifest.raw)} bytes, "
                                f"the index says {desc['size']}")
        if desc.get("mediaType") and desc["mediaType"] != manifest.media_type:
            raise ManifestError(f"{what}: manifest {desc['digest']} is a {manifest.media_type}, "
                                f"the index says {desc['mediaType']}")
    else:
        manifest = top
    check_image_manifest(manifest, f"manifest for {what}")

    # --- config ------------------------------------------------------------------------
    cfg_desc = manifest.config
    cfg_digest = cfg_desc["digest"]
    with store.lease():
        if store.has_blob(cfg_digest):
            config_bytes = store.read_blob(cfg_digest, CONFIG_LIMIT)
        else:
            config_bytes = client.fetch_blob(repo, cfg_digest, cfg_desc["size"], CONFIG_LIMIT,
                                             "image config")
            store.put_blob(config_bytes, cfg_digest)
        config = _check_config(config_bytes, len(manifest.layers), what)
        if want is not None and not top.is_index:
            have = _platform_of_config(config)
            if not _platform_matches(want, have):
                raise ManifestError(f"image with reference {what} was found but does not match "
                                    f"the specified platform: wanted {want}, actual: {have}")

        # --- layers ----------------------------------------------------------------------
        diff_ids = config["rootfs"]["diff_ids"]
        chains = _chain_ids(diff_ids)
        jobs = []
        for i, layer in enumerate(manifest.layers):
            sid = short_id(layer["digest"])
            if is_foreign(layer) and not store.has_blob(layer["digest"]):
                emit(progress, sid, "Warning", message=f"skipping foreign layer {layer['digest']} "
                     f"({layer.get('mediaType')}); it is not distributed by the registry")
                continue
            if store.has_layer(chains[i]) and store.has_blob(layer["digest"]):
                emit(progress, sid, "Already exists", layer["size"], layer["size"])
                continue
            jobs.append((i, layer))
            emit(progress, sid, "Pulling fs layer", 0, layer["size"])

        cancel = threading.Event()

        def fetch(job) -> None:
            i, layer = job
            sid = short_id(layer["digest"])
            parent = chains[i - 1] if i else None
            attempts = max(1, client.retry.layer_attempts)
            for attempt in range(attempts):
                reader = BlobReader(client, repo, layer, progress=progress, progress_id=sid,
                                    cancel=cancel)
                try:
                    store.ingest_layer(reader, layer, diff_ids[i], parent, progress)
                    break
                except RestartLayer as exc:
                    if attempt + 1 >= attempts:
                        raise RegistryError(f"download of layer {sid} kept failing: {exc}") from None
                    emit(progress, sid, "Retrying", 0, layer["size"],
                         message=f"restarting download: {exc}")
                finally:
                    reader.close()
            emit(progress, sid, "Pull complete", layer["size"], layer["size"])

        run_all(fetch, jobs, max_parallel, cancel, "pull")

        repo_digest = f"{ref.name}@{index_digest or manifest.digest}"
        tag_ref = ref if not ref.digest else None
        image = store.add_image(manifest.raw, tag_ref, repo_digest=repo_digest,
                                index_digest=index_digest, platform=desc_platform)
    try:
        blob_digests = [cfg_digest] + [layer["digest"] for layer in manifest.layers]
        sources.record(root, blob_digests, ref.name)
    except OSError:
        pass  # a hint file only
    emit(progress, "", "Digest", message=index_digest or manifest.digest)
    up_to_date = previous is not None and previous.manifest_digest == manifest.digest
    status = ("Image is up to date for " if up_to_date else "Downloaded newer image for ") + what
    emit(progress, "", "Status", message=status, up_to_date=up_to_date)
    return image
