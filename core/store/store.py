"""The image store: an OCI image layout at the state root, plus unpacked layers.

    $ROOT/oci-layout, index.json, blobs/sha256/<hex>    skopeo reads it: oci:$ROOT:<ref>
    $ROOT/layers/<chainid hex>/{diff/, meta.json}        one directory per layer, shared
    $ROOT/tmp/                                           scratch on the same file system

Rules:
  * every blob is hashed while it is written to ``tmp/`` and only renamed into
    ``blobs/`` when the digest matches; a layer is unpacked into ``layers/.staging-*``
    and renamed into place only when its DiffID matches;
  * ``index.json`` is only rewritten under the store lock (fcntl on ``$ROOT/.lock``) by
    read-modify-write + atomic rename, so two commands at once never lose an entry;
  * ingest work (pull, load, import, commit) holds a shared *GC lease*
    (``$ROOT/.gc.lock``); garbage collection only deletes blobs when it can take that
    lease exclusively, so it never deletes the blobs of an image still arriving.
A tag lives as the ``org.opencontainers.image.ref.name`` annotation of an index entry
holding the full normalised reference (``docker.io/library/busybox:latest``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import time
from _thread import allocate_lock  # threading.Lock, without threading.py
from collections.abc import Iterator

from core.records import record

from .. import fsutil
from .. import paths as _paths
from ..errors import Conflict, DigestMismatch, InvalidReference, NotFound, NutshellError, StoreError
from ..paths import Paths
from ..reference import Reference, looks_like_id, parse, try_parse, validate_digest
from . import media
from .image import Image, LayerRecord, chain_id, chain_ids, check_config

TYPE_CHECKING = False   # typing is not imported at run time: ~5 ms of every `run`
if TYPE_CHECKING:
    from typing import Any, BinaryIO, TypedDict

    from ..events import ProgressFn
    from .unpack import UnpackResult

CHUNK = 1 << 20

MAX_METADATA = 4 << 20   # manifests and configs (c/image iolimits)


def now_rfc3339() -> str:
    """Now in UTC, microseconds, as Docker writes ``Created`` (not datetime: 2 ms to
    import on a `run`)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def sha256_digest(data: bytes) -> str:
    if len(data) <= 1 << 16:    # manifests, configs: without OpenSSL's hashlib (~3 ms of a `run`)
        return "sha256:" + _paths.small_sha256(data).hexdigest()
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


@record
class LayerInfo:
    """A layer once it is in the store (what ``add_layer`` and friends return)."""

    chain_id: str
    diff_id: str
    digest: str           # blob digest
    size: int             # uncompressed bytes
    path: str             # layers/<hex>/diff
    existed: bool = False


class BlobWriter:
    """Write a blob to tmp/, verify on close, rename into blobs/ (see Store.blob_writer)."""

    def __init__(self, store: Store, expected_digest: str | None, expected_size: int | None):
        self.store = store
        self.expected_digest = validate_digest(expected_digest) if expected_digest else None
        self.expected_size = expected_size
        import hashlib

        self.hash = hashlib.sha256()
        self.size = 0
        self.tmp = store._tmpname("blob")
        self.f = open(self.tmp, "wb")

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        if self.expected_size is not None and self.size > self.expected_size:
            raise DigestMismatch(
                f"blob {self.expected_digest or ''} is larger than its declared size {self.expected_size}")
        self.f.write(data)
        return len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()

    def commit(self) -> str:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        digest = self.digest
        if self.expected_digest and digest != self.expected_digest:
            raise DigestMismatch(f"blob digest mismatch: expected {self.expected_digest}, got {digest}")
        if self.expected_size is not None and self.size != self.expected_size:
            raise DigestMismatch(
                f"blob {digest} has {self.size} bytes, its descriptor says {self.expected_size}")
        final = self.store.paths.blob(digest)
        if os.path.exists(final):
            os.unlink(self.tmp)
        else:
            os.chmod(self.tmp, 0o644)
            os.rename(self.tmp, final)
            self.store._new_blobs.add(digest)
        return digest

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


if TYPE_CHECKING:
    class GcReport(TypedDict):
        """What :meth:`Store.gc` removed: blob digests, layer chain IDs, leftover paths of
        interrupted work, bytes freed (all of them)."""

        blobs: list[str]
        layers: list[str]
        leftovers: list[str]
        bytes: int

    class Leftover(TypedDict):
        """What an interrupted pull, load, import, commit or build left (its process is gone):
        a ``layers/.staging-*`` or ``.trash-*`` dir, or a ``tmp/`` file or dir."""

        Path: str
        Size: int


class _TeeReader:
    """read() from ``src`` and copy every chunk into ``sink`` (a BlobWriter)."""

    def __init__(self, src: BinaryIO, sink: BlobWriter):
        self.src, self.sink = src, sink

    def read(self, n: int = CHUNK) -> bytes:
        data = self.src.read(n)
        if data:
            self.sink.write(data)
        return data


class Store:
    def __init__(self, paths: Paths):
        self.paths = paths
        self._ready = False
        self._cache: dict[str, dict] = {}          # immutable parsed blobs by digest
        self._cache_lock = allocate_lock()
        self._new_blobs: set[str] = set()          # written by this process (for rollback)
        self._new_layers: set[str] = set()         # unpacked by this process (for rollback)

    # ------------------------------------------------------------------ layout & locks
    def ensure(self) -> None:
        """Create the layout, and keep it private: the root, our top-level dirs and the
        runtime dir 0700 (core/paths.py: one stat each when they already are)."""
        if self._ready:
            return
        p = self.paths
        _paths.ensure_root(p)
        _paths.ensure_run_dir(p)
        for d in (os.path.dirname(p.blobs), p.blobs, p.layers, p.tmp, p.containers):
            _paths.private_dir(d)
        if not os.path.exists(p.oci_layout) or not os.path.exists(p.index):
            with self.lock():
                if not os.path.exists(p.oci_layout):
                    fsutil.atomic_write_json(p.oci_layout, {"imageLayoutVersion": media.OCI_LAYOUT_VERSION})
                if not os.path.exists(p.index):
                    fsutil.atomic_write_json(p.index, _empty_index())
        self._ready = True

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """The store lock: held while index.json is read-modified-written."""
        if not self._ready:
            _paths.ensure_root(self.paths)
        with fsutil.locked(self.paths.store_lock):
            yield

    @contextlib.contextmanager
    def lease(self) -> Iterator[None]:
        """Shared GC lease held by anything that is adding content to the store."""
        self.ensure()
        with fsutil.locked(os.path.join(self.paths.root, ".gc.lock"), shared=True):
            yield

    def _tmpname(self, kind: str) -> str:
        self.ensure()
        return os.path.join(self.paths.tmp, f"{kind}-{os.getpid()}-{os.urandom(6).hex()}")

    # ------------------------------------------------------------------ blobs
    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.paths.blob(validate_digest(digest)))

    def blob_path(self, digest: str) -> str:
        return self.paths.blob(validate_digest(digest))

    def open_blob(self, digest: str) -> BinaryIO:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is missing from the store") from None

    def read_blob(self, digest: str, limit: int = MAX_METADATA) -> bytes:
        """Read a small blob (manifest, config) and verify it against its digest."""
        with self.open_blob(digest) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise StoreError(f"blob {digest} is larger than {limit} bytes")
        if sha256_digest(data) != digest:
            raise DigestMismatch(f"stored blob {digest} is corrupt (digest mismatch)")
        return data

    def read_json_blob(self, digest: str) -> dict:
        with self._cache_lock:
            hit = self._cache.get(digest)
        if hit is not None:
            return hit
        try:
            obj = json.loads(self.read_blob(digest))
        except (ValueError, UnicodeDecodeError):
            raise StoreError(f"blob {digest} is not valid JSON") from None
        if not isinstance(obj, dict):
            raise StoreError(f"blob {digest} is not a JSON object")
        with self._cache_lock:
            self._cache[digest] = obj
        return obj

    @contextlib.contextmanager
    def blob_writer(self, expected_digest: str | None = None,
                    expected_size: int | None = None) -> Iterator[BlobWriter]:
        w = BlobWriter(self, expected_digest, expected_size)
        try:
            yield w
            w.commit()
        except BaseException:
            w.abort()
            raise

    def put_blob(self, data: bytes, expected_digest: str | None = None) -> str:
        digest = sha256_digest(data)
        if expected_digest and digest != validate_digest(expected_digest):
            raise DigestMismatch(f"blob digest mismatch: expected {expected_digest}, got {digest}")
        if self.has_blob(digest):
            return digest
        with self.blob_writer(digest, len(data)) as w:
            w.write(data)
        return digest

    def forget_new_blobs(self) -> set[str]:
        out, self._new_blobs = self._new_blobs, set()
        self._new_layers = set()
        return out

    # ------------------------------------------------------------------ index
    def read_index(self) -> dict:
        self.ensure()
        for attempt in range(5):
            try:
                with open(self.paths.index, "rb") as f:
                    idx = json.loads(f.read())
                if not isinstance(idx.get("manifests", []), list):
                    raise ValueError
                idx.setdefault("manifests", [])
                return idx
            except FileNotFoundError:
                return _empty_index()
            except ValueError:
                # a foreign writer (skopeo) may be mid-write: retry, then fail loudly
                time.sleep(0.05 * (attempt + 1))
        raise StoreError(f"{self.paths.index} is not valid JSON",
                         hint="the store index is damaged; restore it or remove the store")

    def _write_index(self, idx: dict) -> None:
        fsutil.atomic_write(self.paths.index, json.dumps(idx, indent=2).encode() + b"\n")

    @contextlib.contextmanager
    def _edit_index(self) -> Iterator[dict]:
        self.ensure()
        with self.lock():
            idx = self.read_index()
            yield idx
            self._write_index(idx)

    # ------------------------------------------------------------------ images
    def _image_from_entry(self, desc: dict) -> Image | None:
        digest = desc.get("digest", "")
        mt = desc.get("mediaType", "")
        try:
            validate_digest(digest)
            manifest = self.read_json_blob(digest)
            if mt in media.INDEXES or manifest.get("manifests") is not None:
                child = _pick_platform(manifest.get("manifests") or [])
                if child is None:
                    return None
                digest = child["digest"]
                manifest = self.read_json_blob(validate_digest(digest))
            cfg_desc = manifest.get("config") or {}
            config = self.read_json_blob(validate_digest(cfg_desc.get("digest", "")))
        except NutshellError:
            return None
        diffs = list((config.get("rootfs") or {}).get("diff_ids") or [])
        chains = chain_ids(diffs)
        layers = []
        for i, ld in enumerate(manifest.get("layers") or []):
            if i >= len(diffs):
                break
            meta = self.layer_meta(chains[i])
            layers.append(LayerRecord(
                index=i, digest=ld.get("digest", ""), media_type=ld.get("mediaType", ""),
                compressed_size=int(ld.get("size") or 0), diff_id=diffs[i], chain_id=chains[i],
                size=(meta or {}).get("size"), unpacked=meta is not None))
        ann = desc.get("annotations") or {}
        return Image(id=cfg_desc["digest"], manifest_digest=digest, manifest=manifest,
                     config=config, layers=layers, manifest_size=int(desc.get("size") or 0),
                     stored_at=ann.get(media.ANNOTATION_LOADED))

    def images(self) -> list[Image]:
        """Every image in the store (one per manifest), with its tags collected."""
        idx = self.read_index()
        by_manifest: dict[str, Image] = {}
        order: list[str] = []
        for desc in idx["manifests"]:
            d = desc.get("digest", "")
            img = by_manifest.get(d)
            if img is None:
                img = self._image_from_entry(desc)
                if img is None:
                    continue
                by_manifest[d] = img
                order.append(d)
            ann = desc.get("annotations") or {}
            ref = _entry_ref(ann)
            if ref and str(ref) not in img.repo_tags:
                img.repo_tags.append(str(ref))
            for rd in (ann.get(media.ANNOTATION_REPO_DIGESTS) or "").split():
                if rd not in img.repo_digests:
                    img.repo_digests.append(rd)
            stored = ann.get(media.ANNOTATION_LOADED)
            if stored and (img.stored_at is None or stored > img.stored_at):
                img.stored_at = stored
        return [by_manifest[d] for d in order]

    def image(self, name: str) -> Image:
        """Find an image by reference, ID, ID prefix, or name@digest. Raises NotFound."""
        if not name or not isinstance(name, str):
            raise InvalidReference("invalid reference format: empty image name")
        images = self.images()
        # full id forms first: sha256:<64> or <64 hex>
        hexpart = name[7:] if name.startswith("sha256:") else name
        if len(hexpart) == 64 and looks_like_id(hexpart):
            for img in images:
                if img.id == "sha256:" + hexpart or img.manifest_digest == "sha256:" + hexpart:
                    return img
            raise NotFound(f"no such image: {name}")
        ref = None
        try:
            ref = parse(name)
        except InvalidReference:
            if not looks_like_id(name):
                raise
        if ref is not None:
            found = self._match_ref(images, ref)
            if found:
                return found
            # podman-style: a short name also finds localhost/<name>
            if not _has_domain(name):
                local = Reference("localhost", ref.path.removeprefix("library/"), ref.tag, ref.digest)
                found = self._match_ref(images, local)
                if found:
                    return found
        if looks_like_id(name):
            pref = "sha256:" + hexpart
            hits = {img.id: img for img in images if img.id.startswith(pref)}
            if len(hits) == 1:
                return next(iter(hits.values()))
            if len(hits) > 1:
                raise Conflict(f"image ID prefix {name!r} is ambiguous ({len(hits)} images match)")
        shown = ref.familiar() if ref is not None else name
        raise NotFound(f"no such image: {shown}")

    def tag_of(self, name: str, image: Image) -> Reference | None:
        """The tag of ``image`` that ``name`` refers to (None if it names it by ID/digest)."""
        r = try_parse(name)
        if r is None or r.digest:
            return None
        if str(r) in image.repo_tags:
            return r
        if not _has_domain(name):
            local = Reference("localhost", r.path.removeprefix("library/"), r.tag)
            if str(local) in image.repo_tags:
                return local
        return None

    @staticmethod
    def _match_ref(images: list[Image], ref: Reference) -> Image | None:
        if ref.digest:
            want = f"{ref.name}@{ref.digest}"
            for img in images:
                if want in img.repo_digests:     # pulled by digest (maybe an index digest)
                    return img
            for img in images:
                if img.manifest_digest == ref.digest and (
                        any(parse(t).name == ref.name for t in img.repo_tags)
                        or any(rd.split("@")[0] == ref.name for rd in img.repo_digests)):
                    return img
            return None
        want = str(ref)
        for img in images:
            if want in img.repo_tags:
                return img
        return None

    def add_image(self, manifest_bytes: bytes, ref: Reference | str | None = None,
                  repo_digest: str | None = None, index_digest: str | None = None,
                  platform: dict | None = None) -> Image:
        """Register a manifest whose blobs are all present; move ``ref`` to it."""
        self.ensure()
        try:
            manifest = json.loads(manifest_bytes)
        except ValueError:
            raise StoreError("manifest is not valid JSON") from None
        _check_manifest(manifest)
        for d in [manifest["config"]] + list(manifest.get("layers") or []):
            if d.get("mediaType") in media.FOREIGN_LAYERS and not self.has_blob(d["digest"]):
                continue
            if not self.has_blob(d["digest"]):
                raise StoreError(f"cannot register image: blob {d['digest']} is missing")
        layers = manifest.get("layers") or []
        config = check_config(self.read_json_blob(manifest["config"]["digest"]), len(layers))
        mdigest = self.put_blob(manifest_bytes)
        if isinstance(ref, str):
            ref = parse(ref)
        desc: dict[str, Any] = {
            "mediaType": manifest.get("mediaType") or media.OCI_MANIFEST,
            "digest": mdigest,
            "size": len(manifest_bytes),
            "annotations": {media.ANNOTATION_LOADED: now_rfc3339()},
        }
        desc["platform"] = platform or {"architecture": config.get("architecture", "amd64"),
                                        "os": config.get("os", "linux")}
        if config.get("variant") and not platform:
            desc["platform"]["variant"] = config["variant"]
        if repo_digest:
            desc["annotations"][media.ANNOTATION_REPO_DIGESTS] = repo_digest
        with self._edit_index() as idx:
            entries = idx["manifests"]
            if ref is not None:
                desc["annotations"][media.ANNOTATION_REF_NAME] = str(ref)
                desc["annotations"][media.ANNOTATION_CONTAINERD_NAME] = str(ref)
                # the tag moves: drop it from whatever had it; keep the old image as dangling
                moved = []
                for e in entries:
                    if _entry_ref(e.get("annotations") or {}) == ref:
                        moved.append(e)
                for e in moved:
                    entries.remove(e)
                    if e["digest"] != mdigest and not any(x["digest"] == e["digest"] for x in entries):
                        e = dict(e)
                        ann = {k: v for k, v in (e.get("annotations") or {}).items()
                               if k not in (media.ANNOTATION_REF_NAME, media.ANNOTATION_CONTAINERD_NAME)}
                        e["annotations"] = ann
                        entries.append(e)
                # an untagged entry of the same manifest is now redundant
                entries[:] = [e for e in entries if not (
                    e["digest"] == mdigest and _entry_ref(e.get("annotations") or {}) is None)]
                entries.append(desc)
            elif not any(e["digest"] == mdigest for e in entries):
                entries.append(desc)
            else:
                for e in entries:
                    if e["digest"] == mdigest and repo_digest:
                        ann = e.setdefault("annotations", {})
                        have = set((ann.get(media.ANNOTATION_REPO_DIGESTS) or "").split())
                        have.add(repo_digest)
                        ann[media.ANNOTATION_REPO_DIGESTS] = " ".join(sorted(have))
        self._new_blobs.clear()
        img = self._image_from_entry(desc)
        if img is None:
            raise StoreError("image registered but could not be read back")
        return self.image(mdigest) if ref is None else self.image(str(ref))

    def tag(self, source: str, target: str) -> Image:
        img = self.image(source)
        ref = parse(target)
        if ref.digest:
            raise InvalidReference(f"refusing to create a tag with a digest reference: {target}")
        data = self.read_blob(img.manifest_digest)
        return self.add_image(data, ref)

    def untag(self, ref: Reference) -> bool:
        with self._edit_index() as idx:
            entries = idx["manifests"]
            hit = [e for e in entries if _entry_ref(e.get("annotations") or {}) == ref]
            for e in hit:
                entries.remove(e)
                if not any(x["digest"] == e["digest"] for x in entries):
                    # keep the image as dangling; rmi decides whether to delete it
                    e = dict(e)
                    e["annotations"] = {k: v for k, v in (e.get("annotations") or {}).items()
                                        if k not in (media.ANNOTATION_REF_NAME,
                                                     media.ANNOTATION_CONTAINERD_NAME)}
                    entries.append(e)
            return bool(hit)

    def remove_image_entries(self, manifest_digest: str) -> None:
        with self._edit_index() as idx:
            idx["manifests"] = [e for e in idx["manifests"] if e.get("digest") != manifest_digest]

    # ------------------------------------------------------------------ layers
    def layer_path(self, chain: str) -> str:
        """Where layer ``chain`` is stored: its image file (``layer.sqfs``) or its
        directory (``diff``). A stable path to hand to a container's spec; read it through
        ``core.fs.imagemount.readable``."""
        image = self.paths.layer_image(chain)
        return image if os.path.exists(image) else os.path.join(self.paths.layer(chain), "diff")

    def _lower_attrs(self, parent: str | None):
        """rel -> (mode, uid, gid, mtime) of directory ``rel`` in the nearest layer below
        (``parent`` and its parents) that has it; None when none has it (or a non-directory
        is there); False when not known yet (a layer below is not in the store yet)."""
        def attrs(rel: str):
            chain = parent
            while chain:
                meta = self.layer_meta(chain)
                if not meta:
                    return False
                from core.fs.imagemount import readable

                try:
                    st = os.lstat(os.path.join(readable(self.layer_path(chain)), rel))
                except (FileNotFoundError, NotADirectoryError):
                    chain = meta.get("parent")
                    continue
                except OSError:
                    return False
                if not stat.S_ISDIR(st.st_mode):
                    return None
                return (st.st_mode, st.st_uid, st.st_gid, int(st.st_mtime))
            return None
        return attrs

    def layer_meta(self, chain: str) -> dict | None:
        try:
            with open(os.path.join(self.paths.layer(chain), "meta.json"), "rb") as f:
                return json.loads(f.read())
        except (FileNotFoundError, ValueError, NotADirectoryError):
            return None

    def has_layer(self, chain: str) -> bool:
        return os.path.exists(os.path.join(self.paths.layer(chain), "meta.json"))

    def _staging(self, fmt: str = "dir") -> str:
        self.ensure()
        d = os.path.join(self.paths.layers, f".staging-{os.getpid()}-{os.urandom(6).hex()}")
        # layers/<id> is the owner's only; its diff/ becomes a container's "/" and takes
        # the mode the layer gives "./" (0755 when it gives none)
        _paths.private_dir(d)
        if fmt == "dir":
            os.mkdir(os.path.join(d, "diff"), 0o700)
            os.chmod(os.path.join(d, "diff"), 0o755)
        return d

    @staticmethod
    def _dest(staging: str, fmt: str) -> str:
        return os.path.join(staging, _paths.LAYER_IMAGE if fmt == "squashfs" else "diff")

    def _commit_layer(self, staging: str, result: UnpackResult, chain: str, parent: str | None,
                      blob_digest: str | None) -> LayerInfo:
        meta = {
            "chain_id": chain, "diff_id": result.diff_id, "parent": parent,
            "size": result.size, "entries": result.entries, "blob": blob_digest,
            "compression": result.compression,
            "implicit_dirs": result.implicit_dirs, "fixed": not result.implicit_dirs or parent is None,
            "created": now_rfc3339(), "warnings": result.warnings[:50],
            "format": result.format or "dir",
        }
        fsutil.atomic_write_json(os.path.join(staging, "meta.json"), meta, sync=False)
        final = self.paths.layer(chain)
        existed = False
        try:
            os.rename(staging, final)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            existed = True            # someone else unpacked it first: theirs wins
            _rmtree(staging)
        if not existed:
            self._new_layers.add(chain)
        return LayerInfo(chain, result.diff_id, blob_digest or "", result.size,
                         self.layer_path(chain), existed)

    def unpack_blob(self, digest: str, diff_id: str, parent_chain: str | None,
                    progress: ProgressFn = None, fmt: str | None = None) -> LayerInfo:
        """Unpack a stored blob into layers/<chainid> (verifying its DiffID): an image file
        or a directory (``fmt``; by default what layerimage.layer_format() says)."""
        chain = chain_id(parent_chain, diff_id)
        if self.has_layer(chain):
            meta = self.layer_meta(chain) or {}
            return LayerInfo(chain, diff_id, digest, meta.get("size", 0), self.layer_path(chain), True)
        result, staging = self._unpack_stored(digest, diff_id, parent_chain, progress, fmt)
        return self._commit_layer(staging, result, chain, parent_chain, digest)

    def _unpack_stored(self, digest: str, diff_id: str, parent_chain: str | None,
                       progress: ProgressFn, fmt: str | None) -> tuple[UnpackResult, str]:
        """Unpack blob ``digest`` into a new staging dir: (result, staging dir)."""
        from ..events import emit
        from .layerimage import layer_format

        fmt = fmt or layer_format()
        staging = self._staging(fmt)
        short = digest.split(":")[1][:12]
        try:
            total = os.path.getsize(self.blob_path(digest))
            done = [0]

            def on_bytes(n: int) -> None:
                done[0] += n
                emit(progress, short, "Extracting", done[0], total)

            from .unpack import unpack_layer

            with self.open_blob(digest) as f:
                result = unpack_layer(f, self._dest(staging, fmt), expected_digest=digest,
                                      expected_diff_id=diff_id, on_bytes=on_bytes if progress else None,
                                      image=fmt == "squashfs", lower_attrs=self._lower_attrs(parent_chain))
        except BaseException:
            _rmtree(staging)
            raise
        if not result.format:           # not expressible as an image: a directory
            _rmtree(staging)
            why = result.needs_directory
            result, staging = self._unpack_stored(digest, diff_id, parent_chain, progress, "dir")
            result.warnings.append(f"stored as a directory: {why}")
        return result, staging

    def ingest_layer(self, reader: BinaryIO, descriptor: dict, diff_id: str | None,
                     parent_chain_id: str | None, progress: ProgressFn = None) -> LayerInfo:
        """One streaming pass: store the blob AND unpack it, verifying both digests.

        ``reader.read(n)`` yields the blob's bytes as stored (compressed or not).
        """
        digest = validate_digest(descriptor["digest"])
        size = descriptor.get("size")
        if diff_id is not None:
            validate_digest(diff_id)
            chain = chain_id(parent_chain_id, diff_id)
            if self.has_layer(chain):
                if not self.has_blob(digest):
                    with self.blob_writer(digest, size) as w:
                        while True:
                            chunk = reader.read(CHUNK)
                            if not chunk:
                                break
                            w.write(chunk)
                meta = self.layer_meta(chain) or {}
                return LayerInfo(chain, diff_id, digest, meta.get("size", 0),
                                 self.layer_path(chain), True)
            if self.has_blob(digest):
                return self.unpack_blob(digest, diff_id, parent_chain_id, progress)
        from .layerimage import layer_format
        from .unpack import unpack_layer

        fmt = layer_format()
        staging = self._staging(fmt)
        writer = BlobWriter(self, digest, size)
        try:
            result = unpack_layer(_TeeReader(reader, writer), self._dest(staging, fmt),
                                  expected_digest=digest, expected_diff_id=diff_id,
                                  image=fmt == "squashfs", lower_attrs=self._lower_attrs(parent_chain_id))
            writer.commit()
        except BaseException:
            writer.abort()
            _rmtree(staging)
            raise
        chain = chain_id(parent_chain_id, result.diff_id)
        if not result.format:           # not expressible as an image: unpack the blob as a dir
            _rmtree(staging)
            info = self.unpack_blob(digest, result.diff_id, parent_chain_id, fmt="dir")
            made = self.layer_meta(chain)
            if made is not None and not info.existed:
                made["warnings"] = (made.get("warnings") or []) + [
                    f"stored as a directory: {result.needs_directory}"]
                fsutil.atomic_write_json(os.path.join(self.paths.layer(chain), "meta.json"), made,
                                         sync=False)
            return info
        return self._commit_layer(staging, result, chain, parent_chain_id, digest)

    def layer_dirs(self, image: Image, progress: ProgressFn = None) -> list[str]:
        """The image's unpacked layer directories, base first; unpacks what is missing
        (in parallel, one thread per layer, bounded)."""
        self.ensure()
        missing = [layer for layer in image.layers if not self.has_layer(layer.chain_id)]
        if missing:
            with self.lease():
                parents = {layer.index: (image.layers[layer.index - 1].chain_id if layer.index else None)
                           for layer in missing}

                def work(layer: LayerRecord) -> LayerInfo:
                    if layer.media_type in media.FOREIGN_LAYERS and not self.has_blob(layer.digest):
                        raise NotFound(f"foreign layer {layer.digest} is not in the store")
                    return self.unpack_blob(layer.digest, layer.diff_id, parents[layer.index], progress)

                from concurrent.futures import ThreadPoolExecutor

                workers = int(os.environ.get("NUTSHELL_UNPACK_THREADS", "4"))
                with ThreadPoolExecutor(max_workers=max(1, min(workers, len(missing)))) as pool:
                    futures = [pool.submit(work, layer) for layer in missing]
                    errors = []
                    for fut in futures:
                        try:
                            fut.result()
                        except BaseException as exc:  # noqa: BLE001
                            errors.append(exc)
                    if errors:
                        raise errors[0]
        self.fix_implicit_dirs(image.chain_ids)
        return [self.layer_path(c) for c in image.chain_ids]

    def fix_implicit_dirs(self, chains: list[str]) -> None:
        """Give directories a layer created implicitly (no tar entry of their own) the
        attributes of the same directory in the nearest layer below, so the merged view
        keeps e.g. /tmp's 1777 even if an upper layer only listed /tmp/file."""
        for i, chain in enumerate(chains):
            meta = self.layer_meta(chain)
            if not meta or meta.get("fixed", True) or i == 0:
                continue
            if meta.get("format") == "squashfs":
                self._rebuild_image(chain, meta)
                continue
            from core.fs.imagemount import readable

            diff = self.layer_path(chain)
            for rel in meta.get("implicit_dirs") or []:
                for lower in reversed(chains[:i]):
                    src = os.path.join(readable(self.layer_path(lower)), rel)
                    try:
                        st = os.lstat(src)
                    except (FileNotFoundError, NotADirectoryError):
                        continue
                    if os.path.isdir(src) and not os.path.islink(src):
                        dst = os.path.join(diff, rel)
                        with contextlib.suppress(OSError):
                            os.lchown(dst, st.st_uid, st.st_gid)
                            os.chmod(dst, st.st_mode & 0o7777)
                            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
                    break
            meta["fixed"] = True
            fsutil.atomic_write_json(os.path.join(self.paths.layer(chain), "meta.json"), meta,
                                     sync=False)

    def _rebuild_image(self, chain: str, meta: dict) -> None:
        """An image layer made before the layers below it were in the store gave its
        implicit directories default attributes: make it again from its blob, now that
        they are known, and put the new image in place (a running container keeps the
        old one open)."""
        blob = meta.get("blob")
        if not blob or not self.has_blob(blob):
            return
        result, staging = self._unpack_stored(blob, meta["diff_id"], meta.get("parent"), None,
                                              "squashfs")
        try:
            if result.format != "squashfs" or result.implicit_dirs:
                return                  # (a layer below went missing meanwhile)
            os.rename(self._dest(staging, "squashfs"), self.paths.layer_image(chain))
            meta.update(fixed=True, implicit_dirs=[])
            fsutil.atomic_write_json(os.path.join(self.paths.layer(chain), "meta.json"), meta,
                                     sync=False)
        finally:
            _rmtree(staging)

    # ------------------------------------------------------------------ removal and GC
    def containers_using(self) -> dict[str, list[dict]]:
        """image id -> container records using it ({"Id", "Name", "Running", "Layers"})."""
        out: dict[str, list[dict]] = {}
        for cid, cfg in fsutil.json_records(self.paths.containers, "config.json"):
            if not cfg:
                continue
            state = {}
            with contextlib.suppress(Exception):
                state = fsutil.read_json(os.path.join(self.paths.containers, cid, "state.json"),
                                         default={})
            status = str(state.get("Status") or state.get("status") or "").lower()
            rec = {"Id": cid, "Name": cfg.get("Name", ""), "Running": status in ("running", "paused", "restarting"),
                   "Layers": list(cfg.get("LayerChainIDs") or [])}
            out.setdefault(cfg.get("ImageID", ""), []).append(rec)
        return out

    def gc(self, progress: ProgressFn = None) -> GcReport:
        """Delete blobs and layer dirs nothing refers to. Returns what was removed.

        Blobs are only collected when no ingest holds the GC lease; layers are kept while
        an image or a container (any state) refers to them.
        """
        self.ensure()
        removed: GcReport = {"blobs": [], "layers": [], "leftovers": [], "bytes": 0}
        keep_blobs, keep_layers = self._referenced()
        keep_layer_hex = {c.split(":", 1)[-1] for c in keep_layers}
        for left in self.leftovers(tmp=False):
            _remove_path(left["Path"])
            removed["leftovers"].append(left["Path"])
            removed["bytes"] += left["Size"]
        for name in _listdir(self.paths.layers):
            if name.startswith("."):
                continue
            if name in keep_layer_hex:
                continue
            path = os.path.join(self.paths.layers, name)
            trash = os.path.join(self.paths.layers, f".trash-{os.getpid()}-{os.urandom(4).hex()}")
            _release_images(path)
            self.release_layer_mounts(name)
            with contextlib.suppress(OSError):
                removed["bytes"] += (self.layer_meta("sha256:" + name) or {}).get("size", 0)
                os.rename(path, trash)
                _rmtree(trash)
                removed["layers"].append("sha256:" + name)
        lease_path = os.path.join(self.paths.root, ".gc.lock")
        fd = os.open(lease_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return removed      # an ingest is running: leave blobs for next time
            for name in _listdir(self.paths.blobs):
                digest = "sha256:" + name
                if digest in keep_blobs or name.startswith("."):
                    continue
                path = os.path.join(self.paths.blobs, name)
                with contextlib.suppress(OSError):
                    removed["bytes"] += os.path.getsize(path)
                    os.unlink(path)
                    removed["blobs"].append(digest)
            for left in self.leftovers(layers=False):
                _remove_path(left["Path"])
                removed["leftovers"].append(left["Path"])
                removed["bytes"] += left["Size"]
        finally:
            os.close(fd)
        return removed

    def leftovers(self, layers: bool = True, tmp: bool = True) -> list[Leftover]:
        """Work a killed process left behind (kill -9 of a pull, load, commit...): its
        ``layers/.staging-<pid>-*`` and ``.trash-<pid>-*`` dirs and ``tmp/<kind>-<pid>-*``
        entries whose process is gone. Live work is never listed."""
        from ..fsutil import dir_size

        out: list[Leftover] = []
        if layers:
            for name in _listdir(self.paths.layers):
                if name.startswith((".staging-", ".trash-")) and _stale(name):
                    path = os.path.join(self.paths.layers, name)
                    out.append({"Path": path, "Size": dir_size(path)})
        if tmp:
            for name in _listdir(self.paths.tmp):
                if _stale(name):
                    path = os.path.join(self.paths.tmp, name)
                    try:
                        st = os.lstat(path)
                    except FileNotFoundError:
                        continue
                    size = dir_size(path) if os.path.isdir(path) and not os.path.islink(path) else st.st_size
                    out.append({"Path": path, "Size": size})
        return out

    def _referenced(self) -> tuple[set[str], set[str]]:
        """(blob digests, layer chain IDs) something still refers to: the images of the
        index, containers in any state (their layers), and the build cache
        (core/dockerfile/cache.py), whose entries keep what cached steps made until
        `builder prune` drops them."""
        blobs: set[str] = set()
        layers: set[str] = set()
        for desc in self.read_index()["manifests"]:
            self._collect_refs(desc, blobs, layers)
        for recs in self.containers_using().values():
            for r in recs:
                layers.update(r["Layers"])
        from ..dockerfile.cache import gc_roots
        cache_blobs, cache_layers = gc_roots(self.paths)
        return blobs | cache_blobs, layers | cache_layers

    def _collect_refs(self, desc: dict, blobs: set[str], layers: set[str]) -> None:
        digest = desc.get("digest", "")
        try:
            validate_digest(digest)
        except InvalidReference:
            return
        blobs.add(digest)
        try:
            doc = self.read_json_blob(digest)
        except NutshellError:
            return
        if doc.get("manifests") is not None:
            for child in doc.get("manifests") or []:
                self._collect_refs(child, blobs, layers)
            return
        cfg = (doc.get("config") or {}).get("digest")
        if cfg:
            blobs.add(cfg)
            try:
                config = self.read_json_blob(cfg)
                layers.update(chain_ids((config.get("rootfs") or {}).get("diff_ids") or []))
            except NutshellError:
                pass
        for ld in doc.get("layers") or []:
            if ld.get("digest"):
                blobs.add(ld["digest"])

    def release_layer_mounts(self, layer: str | None = None) -> list[str]:
        """Unmount the layer mounts containers share (imagemount.shared_mount): of
        ``layer`` (its id's hex; before the layer goes), or all (they are made again when
        next needed; running containers keep theirs). The mount points released."""
        if not os.path.isdir(self.paths.layer_mounts):
            return []
        from core.fs.imagemount import release_shared

        try:
            return release_shared(self.paths.layer_mounts, layer)
        except OSError:
            if layer is None:
                raise
            return []       # a layer's removal goes on; the next start's sweep retries

    def rollback_new_blobs(self) -> None:
        """Remove blobs and layers this process added that nothing references (failed work)."""
        new_layers = set(self._new_layers)
        new = self.forget_new_blobs()
        if not new and not new_layers:
            return
        keep, keep_layers = self._referenced()
        for d in new - keep:
            with contextlib.suppress(OSError):
                os.unlink(self.paths.blob(d))
        for chain in new_layers - keep_layers:
            path = self.paths.layer(chain)
            trash = os.path.join(self.paths.layers, f".trash-{os.getpid()}-{os.urandom(4).hex()}")
            self.release_layer_mounts(chain.split(":", 1)[-1])
            with contextlib.suppress(OSError):
                os.rename(path, trash)
                _rmtree(trash)


# ---------------------------------------------------------------------- helpers


def _empty_index() -> dict:
    return {"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": []}


def _entry_ref(ann: dict) -> Reference | None:
    for key in (media.ANNOTATION_REF_NAME, media.ANNOTATION_CONTAINERD_NAME):
        v = ann.get(key)
        if v and ("/" in v or ":" in v):
            r = try_parse(v)
            if r is not None and r.tag:
                return r
    return None


def _has_domain(name: str) -> bool:
    first = name.split("/", 1)[0]
    return "/" in name and ("." in first or ":" in first or first == "localhost")


def _host_platform() -> tuple[str, str]:
    import platform

    m = platform.machine()
    return "linux", {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(m, m)


def _pick_platform(manifests: list[dict]) -> dict | None:
    os_, arch = _host_platform()
    for m in manifests:
        p = m.get("platform") or {}
        if p.get("os", "linux") == os_ and p.get("architecture") == arch:
            return m
    return manifests[0] if len(manifests) == 1 else None


def _check_manifest(manifest: dict) -> None:
    if not isinstance(manifest, dict) or manifest.get("schemaVersion") != 2:
        raise StoreError("unsupported manifest (schemaVersion must be 2)")
    if manifest.get("manifests") is not None and manifest.get("layers") is not None:
        raise StoreError("ambiguous manifest: has both manifests and layers")
    cfg = manifest.get("config")
    if not isinstance(cfg, dict) or "digest" not in cfg:
        raise StoreError("manifest has no config descriptor")
    validate_digest(cfg["digest"])
    for ld in manifest.get("layers") or []:
        validate_digest(ld.get("digest", ""))


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _stale(name: str) -> bool:
    """Leftovers named <kind>-<pid>-<rand> whose process is gone."""
    for part in name.split("-")[1:2]:
        if part.isdigit():
            pid = int(part)
            if pid == os.getpid():
                return False
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
    return False


def _release_images(path: str) -> None:
    """Unmount this process's reading mounts of the layer images below ``path``."""
    import sys

    if "core.fs.imagemount" in sys.modules:
        sys.modules["core.fs.imagemount"].release(path)


def _remove_path(path: str) -> None:
    with contextlib.suppress(OSError):
        if os.path.isdir(path) and not os.path.islink(path):
            _rmtree(path)
        else:
            os.unlink(path)


def _rmtree(path: str) -> None:
    """rmtree that also copes with read-only dirs; never follows symlinks."""
    def onerror(func, p, exc_info):
        exc = exc_info[1]
        if isinstance(exc, FileNotFoundError):
            return
        if isinstance(exc, PermissionError):
            with contextlib.suppress(OSError):
                os.chmod(os.path.dirname(p), 0o700)
                func(p)
                return
        raise exc

    if os.path.lexists(path):
        import shutil

        shutil.rmtree(path, onerror=onerror)
