"""Manifests and indexes: media types, validation, platform selection.

Accepted: OCI image manifest and index, Docker schema 2 manifest and manifest list.
Refused with a clear error: Docker schema 1 (removed in Docker 27) and anything that is
not a container image (artifacts, Helm charts, ...).

Validation (CVE-2021-41190, OCI media-type confusion): the bytes are verified against the
digest that named them; a document with both ``manifests`` and ``layers`` is rejected; a
``mediaType`` field must agree with the ``Content-Type`` the registry sent and with the
shape of the document; every descriptor digest is syntax-checked before it is ever used
in a URL or a path (c/image CVE-2024-3727).
"""

from __future__ import annotations

import hashlib
import json
import platform as _platform
from dataclasses import dataclass

from ..errors import DigestMismatch, NotFound, RegistryError
from ..reference import DIGEST_RE
from ..store.media import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LAYER_FOREIGN,
    DOCKER_LAYER_GZIP,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ND,
    OCI_LAYER_ND_GZIP,
    OCI_LAYER_ND_ZSTD,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
)

MANIFEST_LIMIT = 4 << 20
CONFIG_LIMIT = 4 << 20

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
SCHEMA1_TYPES = (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED)
CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
LAYER_TYPES = (OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, DOCKER_LAYER_GZIP,
               OCI_LAYER_ND, OCI_LAYER_ND_GZIP, OCI_LAYER_ND_ZSTD, DOCKER_LAYER_FOREIGN,
               DOCKER_LAYER, "application/vnd.docker.image.rootfs.diff.tar.zstd")
FOREIGN_LAYER_TYPES = (DOCKER_LAYER_FOREIGN, OCI_LAYER_ND, OCI_LAYER_ND_GZIP, OCI_LAYER_ND_ZSTD)

# What we ask for, best first (no schema1: we refuse it anyway, but list it last so a
# registry that only has schema1 says so instead of answering 404).
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST,
                    DOCKER_SCHEMA1_SIGNED + ";q=0.1", DOCKER_SCHEMA1 + ";q=0.1"])


class ManifestError(RegistryError):
    """A manifest we cannot or will not use."""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    if algorithm == "sha512":
        return "sha512:" + hashlib.sha512(data).hexdigest()
    return sha256_digest(data)


def verify_digest(data: bytes, digest: str, what: str) -> None:
    if not DIGEST_RE.match(digest or ""):
        raise ManifestError(f"invalid digest for {what}: {digest!r}")
    algo = digest.partition(":")[0]
    actual = digest_of(data, algo)
    if actual != digest:
        raise DigestMismatch(f"{what}: digest mismatch: expected {digest}, got {actual}")


def _bare_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


@dataclass
class Manifest:
    """A validated manifest or index, with the exact bytes it came from."""

    raw: bytes
    digest: str
    media_type: str
    data: dict

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def config(self) -> dict:
        return self.data["config"]

    @property
    def layers(self) -> list[dict]:
        return self.data.get("layers") or []

    @property
    def manifests(self) -> list[dict]:
        return self.data.get("manifests") or []


def json_object(raw: bytes, what: str) -> dict:
    """``raw`` parsed as a JSON object; a ManifestError naming ``what`` otherwise."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ManifestError(f"{what} is not valid JSON") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{what} is not a JSON object")
    return data


def check_descriptor(desc, what: str, limit: int | None = None) -> dict:
    if not isinstance(desc, dict):
        raise ManifestError(f"{what}: descriptor is not an object")
    d = desc.get("digest")
    if not isinstance(d, str) or not DIGEST_RE.match(d):
        raise ManifestError(f"{what}: invalid digest {d!r}")
    size = desc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{what}: invalid size {size!r}")
    if limit is not None and size > limit:
        raise ManifestError(f"{what}: {size} bytes is over the {limit} byte limit")
    mt = desc.get("mediaType", "")
    if not isinstance(mt, str):
        raise ManifestError(f"{what}: invalid mediaType")
    return desc


def parse_manifest(raw: bytes, content_type: str | None, digest: str | None,
                   what: str = "manifest") -> Manifest:
    """Validate manifest bytes and work out their real media type.

    ``digest`` is the digest the bytes must hash to (the one we asked for, or the
    registry's ``Docker-Content-Digest``); None means "compute it" (tag pulls from a
    registry that sends no digest header).
    """
    if len(raw) > MANIFEST_LIMIT:
        raise ManifestError(f"{what} too large: {len(raw)} bytes")
    if digest is not None:
        verify_digest(raw, digest, what)
    else:
        digest = sha256_digest(raw)
    ctype = _bare_type(content_type)
    if ctype in SCHEMA1_TYPES:
        raise ManifestError(f"{what} uses Docker image manifest schema 1, which is not supported",
                            hint="it was removed in Docker 27; re-push the image with a current client")
    data = json_object(raw, what)
    if data.get("schemaVersion") == 1 or "fsLayers" in data:
        raise ManifestError(f"{what} uses Docker image manifest schema 1, which is not supported",
                            hint="it was removed in Docker 27; re-push the image with a current client")
    if data.get("schemaVersion") != 2:
        raise ManifestError(f"{what}: unsupported schemaVersion {data.get('schemaVersion')!r}")
    has_manifests = "manifests" in data
    has_layers = "layers" in data
    if has_manifests and has_layers:
        raise ManifestError(f"{what} is ambiguous: it has both 'manifests' and 'layers'")
    field_type = data.get("mediaType")
    if field_type is not None and not isinstance(field_type, str):
        raise ManifestError(f"{what}: invalid mediaType field")
    # the media type: from the document if present, else Content-Type, else the shape
    if field_type:
        media_type = field_type
        known = MANIFEST_TYPES + INDEX_TYPES
        if ctype in known and ctype != field_type:
            raise ManifestError(f"{what}: mediaType {field_type} does not match Content-Type {ctype}")
    elif ctype in MANIFEST_TYPES + INDEX_TYPES:
        media_type = ctype
    else:
        media_type = OCI_INDEX if has_manifests else OCI_MANIFEST
    if media_type in INDEX_TYPES:
        if not has_manifests or not isinstance(data["manifests"], list):
            raise ManifestError(f"{what}: an index ({media_type}) without a 'manifests' list")
        if "config" in data:
            raise ManifestError(f"{what}: an index ({media_type}) must not have a 'config'")
        for i, m in enumerate(data["manifests"]):
            check_descriptor(m, f"{what} entry {i}", MANIFEST_LIMIT)
    elif media_type in MANIFEST_TYPES:
        if has_manifests:
            raise ManifestError(f"{what}: an image manifest ({media_type}) with a 'manifests' list")
        if not isinstance(data.get("layers"), list):
            raise ManifestError(f"{what}: no 'layers' list")
        check_descriptor(data.get("config"), f"{what} config", CONFIG_LIMIT)
        for i, layer in enumerate(data["layers"]):
            check_descriptor(layer, f"{what} layer {i}")
    elif media_type in SCHEMA1_TYPES:
        raise ManifestError(f"{what} uses Docker image manifest schema 1, which is not supported")
    else:
        raise ManifestError(f"{what}: unsupported media type {media_type}",
                            hint="this does not look like a container image")
    return Manifest(raw, digest, media_type, data)


def check_image_manifest(m: Manifest, what: str = "manifest") -> None:
    """Refuse image-shaped artifacts whose config is not a container image config."""
    cfg_type = m.config.get("mediaType", "")
    if m.media_type == DOCKER_MANIFEST and cfg_type and cfg_type != DOCKER_CONFIG:
        raise ManifestError(f"{what}: not a container image (config type {cfg_type})")
    if m.media_type == OCI_MANIFEST and cfg_type not in CONFIG_TYPES:
        raise ManifestError(f"{what}: not a container image (config type {cfg_type or 'none'})",
                            hint="it may be an OCI artifact (Helm chart, signature, SBOM, ...)")
    for i, layer in enumerate(m.layers):
        lt = layer.get("mediaType", "")
        if lt and lt not in LAYER_TYPES:
            raise ManifestError(f"{what} layer {i}: unsupported layer media type {lt}")


def is_foreign(layer: dict) -> bool:
    return layer.get("mediaType") in FOREIGN_LAYER_TYPES


# --- platforms ------------------------------------------------------------------------
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm",
                 "armel": "arm", "i386": "386", "i686": "386"}


@dataclass(frozen=True)
class Platform:
    """An image platform: os, architecture and variant."""
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        return s + (f"/{self.variant}" if self.variant else "")


def normalize_arch(arch: str, variant: str = "") -> tuple[str, str]:
    arch = _ARCH_ALIASES.get(arch.lower(), arch.lower())
    variant = variant.lower()
    if arch == "arm64" and variant in ("8", "v8"):
        variant = "v8"
    if arch == "arm" and variant and not variant.startswith("v"):
        variant = "v" + variant
    return arch, variant


def parse_platform(text: str) -> Platform:
    """``linux/arm64/v8``, ``linux/amd64``, ``arm64`` (os defaults to linux)."""
    from ..errors import UsageError

    parts = [p for p in text.strip().split("/")]
    if not text.strip() or any(not p for p in parts) or len(parts) > 3:
        raise UsageError(f"invalid platform {text!r}: expected os/arch[/variant]")
    if len(parts) == 1:
        os_, arch, variant = "linux", parts[0], ""
    else:
        os_, arch = parts[0], parts[1]
        variant = parts[2] if len(parts) == 3 else ""
    arch, variant = normalize_arch(arch, variant)
    return Platform(os_.lower(), arch, variant)


def host_platform() -> Platform:
    arch, variant = normalize_arch(_platform.machine())
    if arch == "arm64":
        variant = "v8"
    elif arch == "arm":
        m = _platform.machine().lower()
        variant = "v7" if "v7" in m else "v6" if "v6" in m else "v5" if "v5" in m else "v7"
    return Platform("linux", arch, variant)


def _variant_candidates(p: Platform) -> list[str]:
    """Variants acceptable for ``p``, best first (after c/image's platform matcher)."""
    if p.architecture == "arm":
        order = ["v8", "v7", "v6", "v5"]
        want = p.variant or "v7"
        start = order.index(want) if want in order else 0
        return order[start:] + [""]
    if p.architecture == "arm64":
        return [p.variant, ""] if p.variant and p.variant != "v8" else ["v8", ""]
    if p.architecture == "amd64":
        order = ["v4", "v3", "v2", "v1"]
        if p.variant in order:
            return order[order.index(p.variant):] + [""]
        return ["", "v1"] if not p.variant else [p.variant, ""]
    return [p.variant, ""] if p.variant else [""]


def describe_platform(pl: dict | None) -> str:
    if not isinstance(pl, dict):
        return "unknown"
    arch, variant = normalize_arch(str(pl.get("architecture", "")), str(pl.get("variant", "")))
    s = f"{pl.get('os', '')}/{arch}"
    return s + (f"/{variant}" if variant else "")


def select_platform(index: Manifest, want: Platform, what: str = "image") -> dict:
    """Pick the manifest descriptor for ``want`` out of an index.

    Exact (os, arch, variant) first, then compatible variants, then no variant; entries
    for ``unknown/unknown`` (attestations) and non-image media types are skipped. Ties keep
    the index order (the producer's preference).
    """
    entries = []
    for m in index.manifests:
        mt = m.get("mediaType", "")
        if mt and mt not in MANIFEST_TYPES:
            continue  # nested indexes, artifacts
        pl = m.get("platform")
        if not isinstance(pl, dict):
            continue
        os_ = str(pl.get("os", "")).lower()
        arch, variant = normalize_arch(str(pl.get("architecture", "")), str(pl.get("variant", "")))
        if os_ == "unknown" or arch == "unknown":
            continue
        entries.append((os_, arch, variant, m))
    if want.architecture == "arm64":
        entries = [(o, a, ("v8" if a == "arm64" and v == "" else v), m) for o, a, v, m in entries]
        cands = ["v8"] if not want.variant or want.variant == "v8" else [want.variant]
    else:
        cands = _variant_candidates(want)
    for v in cands:
        for os_, arch, variant, m in entries:
            if os_ == want.os and arch == want.architecture and variant == v:
                return m
    if not want.variant:
        for os_, arch, _variant, m in entries:
            if os_ == want.os and arch == want.architecture:
                return m
    available = sorted({describe_platform(m.get("platform")) for *_x, m in entries})
    raise NotFound(f"no matching manifest for {want} in the manifest list entries of {what}",
                   hint=("available: " + ", ".join(available)) if available else None)
