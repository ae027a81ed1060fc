"""Push to a real registry: round trips keep digests, cross-repo mounts, chunked uploads,
auth modes."""

from __future__ import annotations

import json
import os

import pytest

from core.errors import NotFound, UsageError
from core.registry.auth import AuthError
from tests.registry_servers import (
    USERS,
    CuttingProxy,
    login_file,
    make_image,
    new_engine,
    push_with_skopeo,
    sha256,
    tar_from_dict,
    unique_repo,
)

pytestmark = [pytest.mark.integration, pytest.mark.registry]


def registry_manifest(server, repo: str, ref: str) -> tuple[bytes, str]:
    import http.client

    c = http.client.HTTPConnection(server.host, timeout=10)
    c.request("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": ",".join([
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json"])})
    r = c.getresponse()
    body = r.read()
    c.close()
    assert r.status == 200, body
    return body, r.getheader("Docker-Content-Digest")


@pytest.fixture(scope="module")
def image3(busybox_layer_tar):
    """Three layers, one zstd, so push must keep each blob exactly as stored."""
    return make_image([busybox_layer_tar, tar_from_dict({"a/": None, "a/f": os.urandom(300_000)}),
                       tar_from_dict({"b": "bee"})], compression=["gzip", "zstd", "gzip"])


def test_pull_push_pull_keeps_every_digest(engine, registry, image3, tmp_path):
    src_repo, dst_repo = unique_repo("src"), unique_repo("dst")
    src = push_with_skopeo(str(tmp_path), registry, src_repo, "v1", [image3])
    img = engine.pull(src)
    dst = f"{registry.host}/{dst_repo}:v2"
    events = []
    digest = engine.push(src, dst, progress=events.append)
    assert digest == image3.digest
    raw, header = registry_manifest(registry, dst_repo, "v2")
    assert sha256(raw) == image3.digest == header
    assert [x["digest"] for x in json.loads(raw)["layers"]] == [x["digest"] for x in image3.layers]
    # back into a cold store: same manifest, same image id
    other = new_engine(str(tmp_path / "cold"))
    back = other.pull(dst)
    assert back.manifest_digest == img.manifest_digest and back.id == img.id
    assert events[-1].action == "Pushed manifest" and events[-1].detail["digest"] == digest


def test_cross_repo_mount_and_already_exists(engine, registry, image3, tmp_path):
    src = push_with_skopeo(str(tmp_path), registry, unique_repo("mnt-src"), "v1", [image3])
    engine.pull(src)
    dst_repo = unique_repo("mnt-dst")
    proxy = CuttingProxy(registry, cuts=0).start()
    try:
        # push through the proxy host: sources.json knows the blobs by the registry host, so
        # record the same blobs under the proxy host by pushing there once first
        first = f"{proxy.host}/{unique_repo('mnt-first')}:v1"
        engine.push(src, first)
        events = []
        engine.push(src, f"{proxy.host}/{dst_repo}:v1", progress=events.append)
        mounted = [e for e in events if e.action == "Mounted from"]
        assert len(mounted) == 1 + len(image3.layers)  # config + every layer
        assert all(e.message == first.split(":v1")[0].split("/", 1)[1] for e in mounted)
        assert any(m == "POST" and "mount=" in p and "from=" in p for m, p in proxy.requests)
        assert not any(m in ("PUT", "PATCH") and "/blobs/uploads/" in p for m, p in proxy.requests
                       if dst_repo in p)
        # again to the same repository: every blob already exists
        events.clear()
        engine.push(src, f"{proxy.host}/{dst_repo}:v1", progress=events.append)
        per_layer = {e.id: e.action for e in events if e.id and len(e.id) == 12}
        assert set(per_layer.values()) == {"Layer already exists"}
    finally:
        proxy.stop()


def test_chunked_upload(engine, registry, tmp_path):
    big = os.urandom(600_000)
    im = make_image([tar_from_dict({"big": big})], compression="none")
    src = push_with_skopeo(str(tmp_path), registry, unique_repo("chunk-src"), "v1", [im])
    engine.pull(src)
    proxy = CuttingProxy(registry, cuts=0).start()
    try:
        dst_repo = unique_repo("chunk-dst")
        d = engine.push(src, f"{proxy.host}/{dst_repo}:v1", chunk_size=128 * 1024)
        assert d == im.digest
        patches = [p for m, p in proxy.requests if m == "PATCH"]
        assert len(patches) == -(-im.layers[0]["size"] // (128 * 1024))  # ceil
    finally:
        proxy.stop()
    back = new_engine(str(tmp_path / "cold")).pull(f"{registry.host}/{dst_repo}:v1")
    assert back.layers[0].digest == im.layers[0]["digest"]


def test_monolithic_upload_by_default(engine, registry, image3, tmp_path):
    src = push_with_skopeo(str(tmp_path), registry, unique_repo("mono-src"), "v1", [image3])
    engine.pull(src)
    proxy = CuttingProxy(registry, cuts=0).start()
    try:
        engine.push(src, f"{proxy.host}/{unique_repo('mono-dst')}:v1")
        puts = [p for m, p in proxy.requests if m == "PUT" and "digest=" in p]
        assert len(puts) == 1 + len(image3.layers)
        assert not [p for m, p in proxy.requests if m == "PATCH"]
    finally:
        proxy.stop()


def test_push_needs_login_on_token_registry(engine, token_registry, image3, tmp_path, registry_env):
    src = push_with_skopeo(str(tmp_path), token_registry, unique_repo("tok-src"), "v1", [image3],
                           creds=token_registry.creds())
    engine.pull(src)  # anonymous pull works (pull scope is granted to everyone)
    dst = f"{token_registry.host}/{unique_repo('tok-dst')}:v1"
    with pytest.raises(AuthError, match="authentication required"):
        engine.push(src, dst)
    engine.login(token_registry.host, "bob", USERS["bob"])
    assert engine.push(src, dst) == image3.digest


def test_push_basic_auth(engine, basic_registry, image3, tmp_path, registry_env):
    src = push_with_skopeo(str(tmp_path), basic_registry, unique_repo("basic-src"), "v1", [image3],
                           creds=basic_registry.creds())
    login_file(registry_env["DOCKER_CONFIG"], basic_registry.host, "alice", USERS["alice"])
    engine.pull(src)
    dst = f"{basic_registry.host}/{unique_repo('basic-dst')}:v1"
    assert engine.push(src, dst) == image3.digest
    login_file(registry_env["DOCKER_CONFIG"], basic_registry.host, "alice", "wrong")
    with pytest.raises(AuthError, match="incorrect username or password"):
        engine.push(src, dst)


def test_push_bad_input(engine, registry, image3, tmp_path):
    with pytest.raises(NotFound):
        engine.push(f"{registry.host}/not/stored:v1")
    src = push_with_skopeo(str(tmp_path), registry, unique_repo("bad"), "v1", [image3])
    img = engine.pull(src)
    with pytest.raises(UsageError, match="digest reference"):
        engine.push(src, f"{registry.host}/x/y@{img.manifest_digest}")
    with pytest.raises(UsageError, match="image ID has no repository"):
        engine.push(img.id.split(":")[1][:12])
