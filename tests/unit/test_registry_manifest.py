"""Manifest validation (CVE-2021-41190, digests, caps, schema1) and platform selection."""

from __future__ import annotations

import hashlib
import json

import pytest

from core.errors import DigestMismatch, NotFound, UsageError
from core.registry.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    ManifestError,
    Platform,
    check_image_manifest,
    parse_manifest,
    parse_platform,
    select_platform,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def digest(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def manifest(**extra) -> bytes:
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1, "size": 10},
         "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 5}]}
    m.update(extra)
    return json.dumps({k: v for k, v in m.items() if v is not None}).encode()


def index(entries) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()


def entry(arch, os_="linux", variant=None, mt=OCI_MANIFEST, d=None):
    p = {"architecture": arch, "os": os_}
    if variant:
        p["variant"] = variant
    return {"mediaType": mt, "digest": d or "sha256:" + hashlib.sha256(f"{os_}{arch}{variant}".encode()).hexdigest(),
            "size": 100, "platform": p}


def test_valid_manifest_verified_against_digest():
    raw = manifest()
    m = parse_manifest(raw, OCI_MANIFEST, digest(raw))
    assert m.media_type == OCI_MANIFEST and not m.is_index and m.digest == digest(raw)
    check_image_manifest(m)


def test_digest_mismatch():
    raw = manifest()
    with pytest.raises(DigestMismatch):
        parse_manifest(raw, OCI_MANIFEST, D1)


def test_both_manifests_and_layers_rejected():
    raw = manifest(manifests=[])
    with pytest.raises(ManifestError, match="both 'manifests' and 'layers'"):
        parse_manifest(raw, OCI_MANIFEST, None)


def test_media_type_field_must_match_content_type():
    raw = manifest()
    with pytest.raises(ManifestError, match="does not match Content-Type"):
        parse_manifest(raw, OCI_INDEX, None)
    with pytest.raises(ManifestError, match="does not match Content-Type"):
        parse_manifest(raw, DOCKER_MANIFEST, None)


def test_index_content_type_with_a_manifest_body_rejected():
    raw = manifest(mediaType=None)
    with pytest.raises(ManifestError, match="without a 'manifests' list"):
        parse_manifest(raw, OCI_INDEX, None)


def test_manifest_typed_body_with_manifests_list_rejected():
    raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "manifests": []}).encode()
    with pytest.raises(ManifestError):
        parse_manifest(raw, None, None)


def test_no_media_type_anywhere_is_inferred_from_shape():
    raw = manifest(mediaType=None)
    assert parse_manifest(raw, "application/octet-stream", None).media_type == OCI_MANIFEST
    raw = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert parse_manifest(raw, "", None).media_type == OCI_INDEX


def test_schema1_refused_clearly():
    with pytest.raises(ManifestError, match="schema 1"):
        parse_manifest(b'{"schemaVersion":1,"fsLayers":[]}', "application/vnd.docker.distribution.manifest.v1+prettyjws", None)
    with pytest.raises(ManifestError, match="schema 1"):
        parse_manifest(b'{"schemaVersion":1,"fsLayers":[]}', "application/json", None)


def test_size_cap():
    raw = manifest(annotations={"x": "a" * (4 << 20)})
    with pytest.raises(ManifestError, match="too large"):
        parse_manifest(raw, OCI_MANIFEST, None)


@pytest.mark.parametrize("bad", ["sha256:../../../etc/passwd", "md5:abc", "sha256:" + "A" * 64, 7])
def test_descriptor_digests_are_validated(bad):
    raw = manifest(layers=[{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": bad, "size": 1}])
    with pytest.raises(ManifestError, match="invalid digest"):
        parse_manifest(raw, OCI_MANIFEST, None)


def test_negative_size_rejected():
    raw = manifest(layers=[{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": D2, "size": -1}])
    with pytest.raises(ManifestError, match="invalid size"):
        parse_manifest(raw, OCI_MANIFEST, None)


def test_config_over_4mib_rejected():
    raw = manifest(config={"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1,
                           "size": (4 << 20) + 1})
    with pytest.raises(ManifestError, match="limit"):
        parse_manifest(raw, OCI_MANIFEST, None)


def test_artifact_is_not_an_image():
    raw = manifest(config={"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": D1, "size": 3})
    m = parse_manifest(raw, OCI_MANIFEST, None)
    with pytest.raises(ManifestError, match="not a container image"):
        check_image_manifest(m)


def test_unknown_layer_type_refused():
    raw = manifest(layers=[{"mediaType": "application/x-evil", "digest": D2, "size": 5}])
    with pytest.raises(ManifestError, match="unsupported layer media type"):
        check_image_manifest(parse_manifest(raw, OCI_MANIFEST, None))


# --- platforms --------------------------------------------------------------------------
def idx(*entries):
    raw = index(list(entries))
    return parse_manifest(raw, OCI_INDEX, None)


def test_parse_platform():
    assert parse_platform("linux/arm64") == Platform("linux", "arm64", "")
    assert parse_platform("linux/arm64/v8") == Platform("linux", "arm64", "v8")
    assert parse_platform("linux/x86_64") == Platform("linux", "amd64", "")
    assert parse_platform("arm64") == Platform("linux", "arm64", "")
    assert parse_platform("linux/arm/7") == Platform("linux", "arm", "v7")
    for bad in ("", "linux/", "a/b/c/d", "/amd64"):
        with pytest.raises(UsageError):
            parse_platform(bad)


def test_select_exact_and_default():
    i = idx(entry("amd64"), entry("arm64", variant="v8"), entry("arm", variant="v7"))
    assert select_platform(i, parse_platform("linux/amd64"))["platform"]["architecture"] == "amd64"
    assert select_platform(i, parse_platform("linux/arm64"))["platform"]["architecture"] == "arm64"
    assert select_platform(i, parse_platform("linux/arm/v7"))["platform"]["variant"] == "v7"


def test_arm64_without_variant_matches_v8():
    i = idx(entry("amd64"), entry("arm64"))
    assert select_platform(i, parse_platform("linux/arm64/v8"))["platform"]["architecture"] == "arm64"


def test_arm_v7_falls_back_to_v6_not_v8():
    i = idx(entry("arm", variant="v8"), entry("arm", variant="v6"))
    assert select_platform(i, parse_platform("linux/arm/v7"))["platform"]["variant"] == "v6"


def test_attestations_and_nested_indexes_skipped():
    att = entry("unknown", os_="unknown")
    nested = entry("amd64", mt=OCI_INDEX)
    good = entry("amd64", d=D2)
    i = idx(att, nested, good)
    assert select_platform(i, parse_platform("linux/amd64"))["digest"] == D2


def test_no_match_lists_what_is_available():
    i = idx(entry("amd64"), entry("arm64"))
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x") as ei:
        select_platform(i, parse_platform("linux/s390x"))
    assert "linux/amd64" in ei.value.hint and "linux/arm64" in ei.value.hint


def test_docker_list_media_type():
    raw = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST,
                      "manifests": [entry("amd64", mt=DOCKER_MANIFEST)]}).encode()
    m = parse_manifest(raw, DOCKER_LIST, None)
    assert m.is_index
    assert select_platform(m, Platform("linux", "amd64"))["mediaType"] == DOCKER_MANIFEST
