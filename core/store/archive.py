"""Image archives in and out: ``load``, ``save``, ``import``.

load  reads ``docker save`` tarballs (the legacy ``manifest.json`` + ``<id>/layer.tar``
      form and the Docker 25+ form that is also an OCI layout) and OCI archives, gzip/zstd
      compressed or not, from a file or a pipe, in ONE streaming pass: every member is
      copied into a verified blob as it goes by; names in the archive are never used as
      file-system paths. Then layers are unpacked (in parallel) and checked against the
      config's diff IDs, and only then are the images tagged. On any failure the blobs
      this load wrote are removed: the store is as it was.
save  writes a tar that is both a docker-archive (``manifest.json`` + ``repositories``)
      and an OCI image layout, like Docker 25+, or a plain OCI archive (``--format oci``).
      It goes to a temp file that is renamed into place when complete.
import turns a rootfs tarball (or a directory, or stdin) into a one-layer image.
"""

from __future__ import annotations

import io
import json
import os
import platform as _platform
import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..errors import ArchiveError, InvalidReference, NotFound, UnsafeLayer
from ..events import ProgressFn, emit
from ..reference import Reference, parse, try_parse
from . import media
from .image import Image, chain_ids, check_config
from .store import Store, now_rfc3339, sha256_digest
from .tarreader import TarFormatError, TarReader
from .tarwriter import LayerOutput, write_tree
from .unpack import CHUNK, DecompressingReader, HashingReader, detect_compression, plain_stream

SMALL = 1 << 20          # archive members kept in memory (json, VERSION, ...) ...
SMALL_TOTAL = 16 << 20   # ... while they add up to no more than this
MANIFEST_CAP = 1 << 20   # manifest.json / index.json / repositories
CONFIG_CAP = 8 << 20     # an image config
BLOB_NAME = re.compile(r"^blobs/sha256/([0-9a-f]{64})\Z")


def host_arch() -> str:
    m = _platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


@dataclass
class LoadResult:
    """What a load stored: the images, the tags moved to them, the untagged ones."""
    images: list[Image] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)       # full refs that were (re)tagged
    untagged_ids: list[str] = field(default_factory=list)


class _Members:
    """What one pass over an archive collected: small files in memory, big ones as blobs."""

    def __init__(self) -> None:
        self.small: dict[str, bytes] = {}
        self.blobs: dict[str, str] = {}      # member name -> blob digest
        self.links: dict[str, str] = {}      # symlink member -> target member name

    def resolve(self, name: str, depth: int = 0) -> str:
        name = _norm(name)
        if name in self.links and depth < 4:
            target = self.links[name]
            base = os.path.dirname(name)
            return self.resolve(os.path.normpath(os.path.join(base, target)) if not target.startswith("/")
                                else target.lstrip("/"), depth + 1)
        return name

    def get_bytes(self, store: Store, name: str, cap: int = CONFIG_CAP) -> bytes:
        name = self.resolve(name)
        if name in self.small:
            return self.small[name]
        if name in self.blobs:
            return store.read_blob(self.blobs[name], limit=cap)
        raise ArchiveError(f"archive is missing {name!r}")

    def get_blob(self, store: Store, name: str) -> str:
        name = self.resolve(name)
        if name in self.blobs:
            return self.blobs[name]
        if name in self.small:
            return store.put_blob(self.small[name])
        raise ArchiveError(f"archive is missing {name!r}")


def _norm(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/".join(parts)


def _read_members(store: Store, src: BinaryIO, progress: ProgressFn) -> _Members:
    """One pass over the archive. Memory stays flat whatever it holds: headers are read by
    core/store/tarreader (none remembered, extended headers capped at 1 MiB), members of
    up to SMALL bytes are kept in memory only while they add up to SMALL_TOTAL, and
    everything else streams to a blob on disk (removed again if the load fails). Before:
    a 1 MB .tar.gz of 250 members of 4 MiB took 2.0 GB; a 768 MiB PAX header was read."""
    try:
        stream = plain_stream(src, limit=1 << 62)
    except UnsafeLayer as exc:
        raise ArchiveError(f"cannot read archive: {exc}") from None
    members = _Members()
    count = 0
    small_total = 0
    try:
        tr = TarReader(stream)
        for m in tr:
            name = _norm(m.name)
            if m.issym():
                members.links[name] = m.linkname
                continue
            if m.islnk():
                members.links[name] = "/" + _norm(m.linkname)
                continue
            if not m.isreg():
                continue
            count += 1
            blob = BLOB_NAME.match(name)
            if blob or m.size > SMALL or small_total + m.size > SMALL_TOTAL \
                    or name.endswith(".tar") or name.endswith(".tar.gz"):
                expected = "sha256:" + blob.group(1) if blob else None
                if expected and store.has_blob(expected):
                    members.blobs[name] = expected
                    members.small.pop(name, None)
                    continue
                emit(progress, name[-19:], "Loading", 0, m.size)
                with store.blob_writer(expected, m.size) as w:
                    left = m.size
                    while left > 0:
                        chunk = tr.read_data(min(CHUNK, left))
                        w.write(chunk)
                        left -= len(chunk)
                members.blobs[name] = w.digest
                small_total -= len(members.small.pop(name, b""))
                emit(progress, name[-19:], "Loaded", m.size, m.size)
            else:
                data = tr.read_data(m.size)
                small_total += len(data) - len(members.small.get(name, b""))
                members.small[name] = data
                members.blobs.pop(name, None)
    except TarFormatError as exc:
        if count == 0:
            raise ArchiveError(f"not an image archive: {exc}") from None
        raise ArchiveError(f"corrupt archive: {exc}") from None
    except UnsafeLayer as exc:
        raise ArchiveError(f"corrupt archive: {exc}") from None
    if count == 0:
        raise ArchiveError("archive contains no files")
    return members


def _json(data: bytes, what: str):
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ArchiveError(f"archive {what} is not valid JSON") from None


def _layer_media_type(store: Store, digest: str) -> str:
    with store.open_blob(digest) as f:
        kind = detect_compression(f.read(6))
    return {"gzip": media.OCI_LAYER_GZIP, "zstd": media.OCI_LAYER_ZSTD}.get(kind, media.OCI_LAYER)


def _manifest_for(store: Store, config_digest: str, layer_digests: list[str]) -> bytes:
    manifest = {
        "schemaVersion": 2,
        "mediaType": media.OCI_MANIFEST,
        "config": {"mediaType": media.OCI_CONFIG, "digest": config_digest,
                   "size": os.path.getsize(store.blob_path(config_digest))},
        "layers": [{"mediaType": _layer_media_type(store, d), "digest": d,
                    "size": os.path.getsize(store.blob_path(d))} for d in layer_digests],
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


def load(store: Store, src: BinaryIO, progress: ProgressFn = None) -> LoadResult:
    store.ensure()
    store.forget_new_blobs()
    with store.lease():
        try:
            members = _read_members(store, src, progress)
            plans = _plan(store, members)
            if not plans:
                raise ArchiveError("archive contains no images (no manifest.json or index.json)")
            result = LoadResult()
            for manifest_bytes, refs in plans:
                manifest = _json(manifest_bytes, "manifest")
                config = store.read_json_blob(manifest["config"]["digest"])
                fake = Image(id=manifest["config"]["digest"], manifest_digest=sha256_digest(manifest_bytes),
                             manifest=manifest, config=config)
                _unpack_all(store, fake, progress)
                if refs:
                    for ref in refs:
                        img = store.add_image(manifest_bytes, ref)
                        result.tags.append(str(ref))
                else:
                    img = store.add_image(manifest_bytes, None)
                    result.untagged_ids.append(img.id)
                result.images.append(img)
            store.forget_new_blobs()
            return result
        except BaseException:
            store.rollback_new_blobs()
            raise


def _unpack_all(store: Store, image: Image, progress: ProgressFn) -> None:
    from .image import LayerRecord

    diffs = image.diff_ids
    layers = image.manifest.get("layers") or []
    if len(diffs) != len(layers):
        raise ArchiveError(f"image config lists {len(diffs)} diff IDs for {len(layers)} layers")
    chains = chain_ids(diffs)
    image.layers = [LayerRecord(i, ld["digest"], ld.get("mediaType", ""), int(ld.get("size") or 0),
                                diffs[i], chains[i]) for i, ld in enumerate(layers)]
    store.layer_dirs(image, progress)


def _plan(store: Store, members: _Members) -> list[tuple[bytes, list[Reference]]]:
    """(manifest bytes, refs) for each image in the archive."""
    if "manifest.json" in members.small or "manifest.json" in members.blobs:
        return _plan_docker(store, members)
    if "index.json" in members.small:
        return _plan_oci(store, members)
    return []


def _plan_docker(store: Store, members: _Members) -> list[tuple[bytes, list[Reference]]]:
    entries = _json(members.get_bytes(store, "manifest.json", MANIFEST_CAP), "manifest.json")
    if not isinstance(entries, list):
        raise ArchiveError("archive manifest.json is not a list")
    plans = []
    for e in entries:
        if not isinstance(e, dict) or "Config" not in e or "Layers" not in e:
            raise ArchiveError("archive manifest.json entry lacks Config or Layers")
        layers, tags = e["Layers"], e.get("RepoTags") or []
        if not isinstance(e["Config"], str):
            raise ArchiveError("archive manifest.json: Config is not a file name")
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise ArchiveError("archive manifest.json: Layers is not a list of file names")
        if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
            raise ArchiveError("archive manifest.json: RepoTags is not a list of names")
        cfg_bytes = members.get_bytes(store, e["Config"])
        # checked before anything uses it: its diff IDs name layer directories
        check_config(_json(cfg_bytes, "image config"), len(layers), "archive image config")
        cfg_digest = store.put_blob(cfg_bytes)
        layer_digests = [members.get_blob(store, name) for name in layers]
        refs = []
        for t in tags:
            try:
                refs.append(parse(t))
            except InvalidReference:
                raise ArchiveError(f"archive has an invalid tag {t!r}") from None
        plans.append((_manifest_for(store, cfg_digest, layer_digests), refs))
    return plans


def _plan_oci(store: Store, members: _Members) -> list[tuple[bytes, list[Reference]]]:
    index = _json(members.get_bytes(store, "index.json", MANIFEST_CAP), "index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise ArchiveError("archive index.json has no manifests")

    def blob_of(digest: str) -> str:
        name = "blobs/" + digest.replace(":", "/")
        if name in members.blobs:
            return members.blobs[name]
        if name in members.small:
            return store.put_blob(members.small[name], digest)
        if store.has_blob(digest):
            return digest
        raise ArchiveError(f"archive is missing blob {digest}")

    plans: list[tuple[bytes, list[Reference]]] = []
    by_manifest: dict[bytes, list[Reference]] = {}

    def visit(desc: dict, ann_refs: list[Reference], depth: int = 0) -> None:
        if depth > 3:
            raise ArchiveError("archive index nests too deeply")
        digest = desc.get("digest", "")
        try:
            blob_of(digest)
            doc = json.loads(store.read_blob(digest))
        except (ValueError, InvalidReference):
            raise ArchiveError(f"archive has a bad manifest {digest!r}") from None
        mt = desc.get("mediaType") or doc.get("mediaType")
        if doc.get("manifests") is not None:
            if doc.get("layers") is not None:
                raise ArchiveError("archive manifest has both manifests and layers")
            from .store import _pick_platform

            child = _pick_platform(doc["manifests"])
            if child is None:
                raise ArchiveError(f"archive has no image for linux/{host_arch()}")
            visit(child, ann_refs, depth + 1)
            return
        if mt and mt not in media.MANIFESTS:
            raise ArchiveError(f"archive entry has unsupported media type {mt}")
        blob_of(doc["config"]["digest"])
        for ld in doc.get("layers") or []:
            if ld.get("mediaType") in media.FOREIGN_LAYERS:
                raise ArchiveError("archive has a foreign layer, which cannot be loaded offline")
            blob_of(ld["digest"])
        raw = store.read_blob(digest)
        if raw not in by_manifest:
            by_manifest[raw] = []
            plans.append((raw, by_manifest[raw]))
        for r in ann_refs:
            if r not in by_manifest[raw]:
                by_manifest[raw].append(r)

    try:
        for desc in index["manifests"]:
            ann = desc.get("annotations") or {}
            refs = []
            name = ann.get(media.ANNOTATION_CONTAINERD_NAME) or ann.get(media.ANNOTATION_REF_NAME)
            if isinstance(name, str) and ("/" in name or ":" in name):
                r = try_parse(name)
                if r is not None and r.tag:
                    refs.append(r)
            visit(desc, refs)
    except (AttributeError, KeyError, TypeError):
        # a descriptor, index or manifest that is not the JSON shape the OCI spec gives it
        raise ArchiveError("archive has a malformed index or manifest") from None
    return plans


# ---------------------------------------------------------------------- save


def save(store: Store, names: list[str], dest: str | BinaryIO, fmt: str = "docker",
         progress: ProgressFn = None) -> list[Image]:
    """Write the images to ``dest`` (a path, '-' for stdout, or a writable stream, which
    is left open) as one archive."""
    if fmt not in ("docker", "oci", "docker-archive", "oci-archive"):
        raise ArchiveError(f"unknown archive format {fmt!r} (use docker or oci)")
    oci_only = fmt.startswith("oci")
    picked: list[tuple[Image, list[Reference]]] = []
    for n in names:
        img = store.image(n)
        tag = store.tag_of(n, img)
        refs = [tag] if tag is not None else []
        for pimg, prefs in picked:
            if pimg.id == img.id and pimg.manifest_digest == img.manifest_digest:
                prefs.extend(x for x in refs if x not in prefs)
                break
        else:
            picked.append((img, refs))
    owned = True
    if not isinstance(dest, str):
        out, tmp, owned = dest, None, False
    elif dest == "-":
        out = os.fdopen(os.dup(1), "wb")
        tmp = None
    else:
        d = os.path.dirname(os.path.abspath(dest))
        if not os.path.isdir(d):
            raise ArchiveError(f"cannot write {dest}: directory {d} does not exist")
        fd, tmp = tempfile.mkstemp(prefix=".nutshell-save-", dir=d)
        out = os.fdopen(fd, "wb")
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                          bufsize=tarfile.RECORDSIZE) as tf:
            written: set[str] = set()
            _dir(tf, "blobs/")
            _dir(tf, "blobs/sha256/")
            index: dict[str, Any] = {"schemaVersion": 2, "mediaType": media.OCI_INDEX,
                                     "manifests": []}
            docker_manifest: list[dict] = []
            repositories: dict[str, dict[str | None, str]] = {}
            for img, refs in picked:
                blobs = [img.manifest_digest, img.id] + [layer.digest for layer in img.layers]
                for d in blobs:
                    if d in written:
                        continue
                    written.add(d)
                    path = store.blob_path(d)
                    size = os.path.getsize(path)
                    emit(progress, d.split(":")[1][:12], "Writing", 0, size)
                    with open(path, "rb") as f:
                        ti = tarfile.TarInfo("blobs/sha256/" + d.split(":")[1])
                        ti.size, ti.mode, ti.mtime = size, 0o444, 0
                        tf.addfile(ti, f)
                    emit(progress, d.split(":")[1][:12], "Written", size, size)
                base_desc = {"mediaType": img.manifest.get("mediaType") or media.OCI_MANIFEST,
                             "digest": img.manifest_digest,
                             "size": os.path.getsize(store.blob_path(img.manifest_digest))}
                if refs:
                    for r in refs:
                        desc = dict(base_desc)
                        desc["annotations"] = {
                            media.ANNOTATION_CONTAINERD_NAME: str(r),
                            media.ANNOTATION_REF_NAME: str(r) if oci_only else r.tag,
                        }
                        index["manifests"].append(desc)
                else:
                    index["manifests"].append(base_desc)
                docker_manifest.append({
                    "Config": "blobs/sha256/" + img.id.split(":")[1],
                    "RepoTags": [r.familiar() for r in refs],
                    "Layers": ["blobs/sha256/" + layer.digest.split(":")[1] for layer in img.layers],
                })
                for r in refs:
                    repositories.setdefault(r.familiar_name, {})[r.tag] = img.id.split(":")[1]
            _file(tf, "oci-layout", json.dumps({"imageLayoutVersion": media.OCI_LAYOUT_VERSION}).encode())
            _file(tf, "index.json", json.dumps(index).encode())
            if not oci_only:
                _file(tf, "manifest.json", json.dumps(docker_manifest).encode())
                if repositories:
                    _file(tf, "repositories", json.dumps(repositories).encode())
        out.flush()
        if tmp:
            os.fsync(out.fileno())
        if owned:
            out.close()
        if tmp:
            assert isinstance(dest, str)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
    except BaseException:
        try:
            if owned:
                out.close()
        except Exception:  # noqa: BLE001
            pass
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return [p[0] for p in picked]


def _dir(tf: tarfile.TarFile, name: str) -> None:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 0
    tf.addfile(ti)


def _file(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
    tf.addfile(ti, io.BytesIO(data))


# ---------------------------------------------------------------------- import

CHANGE_KEYS = {"CMD", "ENTRYPOINT", "ENV", "WORKDIR", "USER", "EXPOSE", "LABEL", "VOLUME",
               "STOPSIGNAL", "ONBUILD"}


def apply_changes(config: dict, changes: list[str]) -> dict:
    """Apply Dockerfile-style ``--change`` lines (CMD, ENV, WORKDIR, ...) to an image
    config's ``config`` section, as ``docker import -c`` and ``docker commit -c`` do."""
    import shlex

    c = config
    for line in changes or []:
        instr, _, rest = line.strip().partition(" ")
        instr = instr.upper()
        rest = rest.strip()
        if instr not in CHANGE_KEYS:
            raise InvalidReference(f"invalid --change: {instr or line!r} is not supported "
                                   f"(use one of {', '.join(sorted(CHANGE_KEYS))})")

        def words() -> list[str]:
            if rest.startswith("["):
                try:
                    v = json.loads(rest)
                    if isinstance(v, list) and all(isinstance(x, str) for x in v):
                        return v
                except ValueError:
                    pass
            return ["/bin/sh", "-c", rest]

        if instr == "CMD":
            c["Cmd"] = words()
        elif instr == "ENTRYPOINT":
            c["Entrypoint"] = words()
        elif instr == "WORKDIR":
            c["WorkingDir"] = rest
        elif instr == "USER":
            c["User"] = rest
        elif instr == "STOPSIGNAL":
            c["StopSignal"] = rest
        elif instr == "ONBUILD":
            c.setdefault("OnBuild", []).append(rest)
        elif instr in ("ENV", "LABEL"):
            pairs: list[tuple[str, str]] = []
            toks = shlex.split(rest)
            if toks and "=" not in toks[0]:
                pairs = [(toks[0], rest[len(toks[0]):].strip())]
            else:
                for t in toks:
                    k, eq, v = t.partition("=")
                    if not eq:
                        raise InvalidReference(f"invalid --change {instr}: {t!r} needs key=value")
                    pairs.append((k, v))
            if instr == "ENV":
                env = list(c.get("Env") or [])
                for k, v in pairs:
                    env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
                c["Env"] = env
            else:
                labels = dict(c.get("Labels") or {})
                labels.update(pairs)
                c["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(c.get("ExposedPorts") or {})
            for p in rest.split():
                ports[p if "/" in p else p + "/tcp"] = {}
            c["ExposedPorts"] = ports
        elif instr == "VOLUME":
            vols = dict(c.get("Volumes") or {})
            for v in (json.loads(rest) if rest.startswith("[") else rest.split()):
                vols[v] = {}
            c["Volumes"] = vols
    return c


def import_image(store: Store, source: str | BinaryIO, ref: str | None = None,
                 changes: list[str] | None = None, message: str | None = None,
                 platform: str | None = None, progress: ProgressFn = None) -> Image:
    """A one-layer image from a rootfs tarball path, a directory, or a readable stream."""
    store.ensure()
    target = parse(ref) if ref else None
    if target is not None and target.digest:
        raise InvalidReference(f"refusing to import to a digest reference: {ref}")
    os_name, arch = "linux", host_arch()
    variant = None
    if platform:
        bits = platform.split("/")
        if len(bits) < 2:
            raise InvalidReference(f"invalid platform {platform!r} (want os/arch[/variant])")
        os_name, arch = bits[0], bits[1]
        variant = bits[2] if len(bits) > 2 else None
    store.forget_new_blobs()
    with store.lease():
        try:
            label = source if isinstance(source, str) else "-"
            if isinstance(source, str) and os.path.isdir(source):
                with store.blob_writer() as w:
                    out = LayerOutput(w, "none")
                    write_tree(source, out)
                    out.close()
                layer_digest = w.digest
            else:
                f: BinaryIO
                if isinstance(source, str):
                    try:
                        f = open(source, "rb")
                    except FileNotFoundError:
                        raise NotFound(f"no such file or directory: {source}") from None
                    except IsADirectoryError:
                        raise ArchiveError(f"cannot read {source}") from None
                else:
                    f = source
                try:
                    raw = HashingReader(f)
                    try:
                        kind = detect_compression(raw.peek(6))
                        stream = DecompressingReader(raw) if kind in ("gzip", "zstd") else raw
                    except UnsafeLayer as exc:
                        raise ArchiveError(f"cannot import {label}: {exc}") from None
                    with store.blob_writer() as w:
                        while True:
                            chunk = stream.read(CHUNK)
                            if not chunk:
                                break
                            w.write(chunk)
                    layer_digest = w.digest
                    if w.size == 0:
                        raise ArchiveError(f"cannot import {label}: it is empty")
                finally:
                    if isinstance(source, str):
                        f.close()
            created = now_rfc3339()
            ccfg = apply_changes({}, changes or [])
            config = {
                "created": created,
                "architecture": arch,
                "os": os_name,
                "config": ccfg,
                "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
                "history": [{"created": created, "created_by": "nutshell import",
                             "comment": message or f"Imported from {label}"}],
            }
            if variant:
                config["variant"] = variant
            cfg_digest = store.put_blob(json.dumps(config, separators=(",", ":")).encode())
            try:
                store.unpack_blob(layer_digest, layer_digest, None, progress)
            except UnsafeLayer as exc:
                raise ArchiveError(f"cannot import {label}: {exc}") from None
            manifest = _manifest_for(store, cfg_digest, [layer_digest])
            img = store.add_image(manifest, target)
            store.forget_new_blobs()
            return img
        except BaseException:
            store.rollback_new_blobs()
            raise
