"""RegistryClient details: Docker Hub normalisation, Retry-After parsing, upload URLs,
manifest digests from headers."""

from __future__ import annotations

import email.utils
import hashlib
import json
import time

import pytest

from core.errors import DigestMismatch
from core.reference import parse
from core.registry.client import RegistryClient, RetryPolicy, _retry_after
from core.registry.hosts import RegistryConfig
from tests.registry_servers import ScriptedServer


class Stop(Exception):
    pass


def test_docker_hub_reference_goes_to_registry_1(tmp_path, monkeypatch):
    seen = []

    def fake_request(self, method, url, headers=None, body=None, **kw):
        seen.append((method, url))
        raise Stop()

    monkeypatch.setattr("core.registry.transport.Transport.request", fake_request)
    ref = parse("busybox")
    assert (ref.domain, ref.path, ref.tag) == ("docker.io", "library/busybox", "latest")
    c = RegistryClient(ref.domain, config=RegistryConfig(config_dir=str(tmp_path)), credential=None)
    assert c.host == "registry-1.docker.io" and c.scheme == "https" and c.verify is True
    c._pinged = True
    with pytest.raises(Stop):
        c.get_manifest(ref.path, ref.tag)
    assert seen == [("GET", "https://registry-1.docker.io/v2/library/busybox/manifests/latest")]


def test_retry_after_forms():
    assert _retry_after("5", 60) == 5.0
    assert _retry_after("500", 60) == 60.0
    assert _retry_after(None, 60) is None
    assert _retry_after("soon", 60) is None
    when = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= _retry_after(when, 60) <= 10.5


def test_backoff_grows_and_is_capped():
    p = RetryPolicy(base_delay=1.0, max_delay=4.0)
    assert 0.5 <= p.backoff(0) <= 1.0
    assert 2.0 <= p.backoff(2) <= 4.0
    assert p.backoff(10) <= 4.0


def test_upload_url_keeps_existing_query(tmp_path):
    c = RegistryClient("reg.example", config=RegistryConfig(config_dir=str(tmp_path)), credential=None)
    d = "sha256:" + "a" * 64
    assert c._upload_url("https://reg.example/v2/x/blobs/uploads/u1?_state=abc", d) == \
        f"https://reg.example/v2/x/blobs/uploads/u1?_state=abc&digest=sha256:{'a' * 64}"
    assert c._upload_url("https://reg.example/v2/x/blobs/uploads/u1", d).endswith(f"u1?digest={d}")


def _manifest_server(body: bytes, header_digest: str | None):
    def handle(req):
        if req.path == "/v2/":
            return 200, {}, b""
        h = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        if header_digest:
            h["Docker-Content-Digest"] = header_digest
        return 200, h, body
    return ScriptedServer(handle)


MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": "sha256:" + "1" * 64, "size": 2},
                       "layers": []}).encode()


def test_tag_pull_checks_docker_content_digest(tmp_path):
    good = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
    with _manifest_server(MANIFEST, good) as srv:
        c = RegistryClient(srv.host, config=RegistryConfig(config_dir=str(tmp_path)), credential=None)
        assert c.get_manifest("a/b", "v1").digest == good
    with _manifest_server(MANIFEST, "sha256:" + "2" * 64) as srv:
        c = RegistryClient(srv.host, config=RegistryConfig(config_dir=str(tmp_path)), credential=None)
        with pytest.raises(DigestMismatch):
            c.get_manifest("a/b", "v1")


def test_digest_pull_ignores_a_lying_header_but_checks_the_bytes(tmp_path):
    good = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
    with _manifest_server(MANIFEST, "sha256:" + "2" * 64) as srv:
        c = RegistryClient(srv.host, config=RegistryConfig(config_dir=str(tmp_path)), credential=None)
        assert c.get_manifest("a/b", good).digest == good
        with pytest.raises(DigestMismatch):
            c.get_manifest("a/b", "sha256:" + "3" * 64)
