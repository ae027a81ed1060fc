"""Pull from a real registry (Debian's docker-registry on 127.0.0.1): auth modes,
multi-arch indexes, compressions, media types."""

from __future__ import annotations

import base64
import json
import os

import pytest

from core.errors import NotFound, RegistryError
from core.registry.auth import AuthError
from tests.registry_servers import (
    USERS,
    login_file,
    make_image,
    make_index,
    new_engine,
    push_with_skopeo,
    sha256,
    tar_from_dict,
    unique_repo,
)

pytestmark = [pytest.mark.integration, pytest.mark.registry]


def layer_file(engine, image, rel: str) -> bytes | None:
    """A file as the merged image sees it (top layer first)."""
    from core.fs.imagemount import readable_all

    for d in reversed(readable_all(engine.store.layer_dirs(image))):
        p = os.path.join(d, rel)
        if os.path.lexists(p):
            with open(p, "rb") as f:
                return f.read()
    return None


@pytest.fixture(scope="module")
def bb_image(busybox_layer_tar):
    return make_image([busybox_layer_tar, tar_from_dict({"etc/": None, "etc/motd": "hello from layer 2\n"})],
                      compression="gzip")


def test_anonymous_pull(engine, registry, bb_image, tmp_path, busybox_rootfs):
    repo = unique_repo("anon")
    ref = push_with_skopeo(str(tmp_path), registry, repo, "v1", [bb_image])
    events = []
    img = engine.pull(ref, progress=events.append)
    assert img.manifest_digest == bb_image.digest
    assert img.id == bb_image.config_digest
    assert img.repo_tags == [ref]
    assert f"{registry.host}/{repo}@{bb_image.digest}" in img.repo_digests
    with open(os.path.join(busybox_rootfs, "bin/busybox"), "rb") as f:
        assert layer_file(engine, img, "bin/busybox") == f.read()
    assert layer_file(engine, img, "etc/motd") == b"hello from layer 2\n"
    actions = [(e.id, e.action) for e in events]
    for layer in bb_image.layers:
        sid = layer["digest"][7:19]
        assert (sid, "Pulling fs layer") in actions and (sid, "Pull complete") in actions
    assert events[-1].action == "Status" and "Downloaded newer image" in events[-1].message
    # every stored blob verifies
    for d in [bb_image.config_digest] + [x["digest"] for x in bb_image.layers]:
        with open(engine.store.blob_path(d), "rb") as f:
            assert sha256(f.read()) == d

    # a second pull: nothing downloaded, "Already exists", "up to date"
    events.clear()
    engine.pull(ref, progress=events.append)
    assert {e.action for e in events if e.id and len(e.id) == 12} == {"Already exists"}
    assert "Image is up to date" in events[-1].message


def test_shared_base_layer_is_not_downloaded_twice(engine, registry, bb_image, busybox_layer_tar, tmp_path):
    repo = unique_repo("shared")
    ref1 = push_with_skopeo(str(tmp_path), registry, repo, "a", [bb_image])
    other = make_image([busybox_layer_tar, tar_from_dict({"srv/": None, "srv/x": "x"})])
    ref2 = push_with_skopeo(str(tmp_path), registry, repo, "b", [other])
    engine.pull(ref1)
    events = []
    engine.pull(ref2, progress=events.append)
    base = bb_image.layers[0]["digest"][7:19]
    assert (base, "Already exists") in [(e.id, e.action) for e in events]


def test_pull_by_digest(engine, registry, bb_image, tmp_path):
    repo = unique_repo("bydigest")
    push_with_skopeo(str(tmp_path), registry, repo, "v1", [bb_image])
    img = engine.pull(f"{registry.host}/{repo}@{bb_image.digest}")
    assert img.manifest_digest == bb_image.digest
    assert img.repo_tags == []  # pulled by digest: no tag
    found = engine.store.image(f"{registry.host}/{repo}@{bb_image.digest}")
    assert found.id == img.id


@pytest.mark.parametrize("compression", ["gzip", "zstd", "zstd:chunked", "none"])
def test_layer_compressions(engine, registry, tmp_path, compression):
    files = {"data/": None, "data/big": os.urandom(200_000) + b"A" * 300_000, "data/small": "s"}
    im = make_image([tar_from_dict(files), tar_from_dict({"data/second": "2"})],
                    compression=compression)
    repo = unique_repo(compression.replace(":", "-"))
    ref = push_with_skopeo(str(tmp_path), registry, repo, "v1", [im])
    img = engine.pull(ref)
    assert [layer.digest for layer in img.layers] == [x["digest"] for x in im.layers]
    assert layer_file(engine, img, "data/big") == files["data/big"]
    assert layer_file(engine, img, "data/second") == b"2"


def test_docker_schema2_media_types(engine, registry, busybox_layer_tar, tmp_path):
    im = make_image([busybox_layer_tar], media="docker")
    repo = unique_repo("docker")
    ref = push_with_skopeo(str(tmp_path), registry, repo, "v1", [im])
    img = engine.pull(ref)
    assert img.manifest_digest == im.digest
    assert img.manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"


# --- multi-arch ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def multiarch(busybox_layer_tar):
    amd64 = make_image([busybox_layer_tar], arch="amd64")
    arm64 = make_image([tar_from_dict({"bin/": None, "bin/busybox": b"\x7fELF fake arm64 binary",
                                        "etc/": None, "etc/arch": "arm64\n"})],
                       arch="arm64", variant="v8")
    return amd64, arm64


@pytest.mark.parametrize("media", ["oci", "docker"])
def test_multiarch_index_default_and_platform(engine, registry, multiarch, tmp_path, media):
    amd64, arm64 = multiarch
    if media == "docker":
        amd64 = make_image([tar_from_dict({"etc/": None, "etc/arch": "amd64\n"})], arch="amd64",
                           media="docker")
        arm64 = make_image([tar_from_dict({"etc/": None, "etc/arch": "arm64\n"})], arch="arm64",
                           media="docker")
    attestation = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": amd64.digest, "size": len(amd64.manifest),
                   "platform": {"architecture": "unknown", "os": "unknown"}}
    index = make_index([amd64, arm64], media=media, extra=[attestation] if media == "oci" else None)
    repo = unique_repo("multi-" + media)
    ref = push_with_skopeo(str(tmp_path), registry, repo, "v1", [amd64, arm64], index=index)
    index_digest = sha256(index)

    img = engine.pull(ref)  # this host is amd64
    assert img.manifest_digest == amd64.digest
    assert img.config["architecture"] == "amd64"
    assert f"{registry.host}/{repo}@{index_digest}" in img.repo_digests

    img = engine.pull(ref, platform="linux/arm64")
    assert img.manifest_digest == arm64.digest
    assert img.config["architecture"] == "arm64"
    assert layer_file(engine, img, "etc/arch") == b"arm64\n"
    assert engine.store.image(ref).manifest_digest == arm64.digest  # the tag moved

    with pytest.raises(NotFound, match="no matching manifest for linux/s390x") as ei:
        engine.pull(ref, platform="linux/s390x")
    assert "linux/amd64" in ei.value.hint and "linux/arm64" in ei.value.hint


def test_platform_mismatch_on_single_arch_image(engine, registry, multiarch, tmp_path):
    amd64, _ = multiarch
    repo = unique_repo("single")
    ref = push_with_skopeo(str(tmp_path), registry, repo, "v1", [amd64])
    with pytest.raises(RegistryError, match="does not match the specified platform"):
        engine.pull(ref, platform="linux/arm64")
    with pytest.raises(NotFound):
        engine.store.image(ref)


# --- auth modes ----------------------------------------------------------------------------
def test_basic_auth_pull(engine, basic_registry, bb_image, tmp_path, registry_env):
    repo = unique_repo("basic")
    ref = push_with_skopeo(str(tmp_path), basic_registry, repo, "v1", [bb_image],
                           creds=basic_registry.creds("bob"))
    with pytest.raises(AuthError, match="authentication required"):
        engine.pull(ref)
    login_file(registry_env["DOCKER_CONFIG"], basic_registry.host, "bob", "wrong")
    with pytest.raises(AuthError, match="incorrect username or password"):
        engine.pull(ref)
    login_file(registry_env["DOCKER_CONFIG"], basic_registry.host, "bob", USERS["bob"])
    img = engine.pull(ref)
    assert img.manifest_digest == bb_image.digest


def test_token_auth_anonymous_pull_like_docker_hub(engine, token_registry, bb_image, tmp_path):
    repo = unique_repo("token")
    ref = push_with_skopeo(str(tmp_path), token_registry, repo, "v1", [bb_image],
                           creds=token_registry.creds())
    ts = token_registry.token_server
    before = len(ts.requests)
    img = engine.pull(ref)
    assert img.manifest_digest == bb_image.digest
    mine = ts.requests[before:]
    assert mine, "the token server was not asked"
    assert all(not r.get("creds") for r in mine)  # anonymous tokens
    assert any(f"repository:{repo}:pull" in r["scopes"] for r in mine)
    # one token for the whole pull (cached per scope), even with parallel layers
    assert sum(1 for r in mine if f"repository:{repo}:pull" in r["scopes"]) == 1


def test_token_auth_with_login_and_identity_token(engine, token_registry, bb_image, tmp_path,
                                                  registry_env):
    repo = unique_repo("token-login")
    ref = push_with_skopeo(str(tmp_path), token_registry, repo, "v1", [bb_image],
                           creds=token_registry.creds())
    ts = token_registry.token_server
    engine.login(token_registry.host, "alice", USERS["alice"])
    cfg = json.load(open(os.path.join(registry_env["DOCKER_CONFIG"], "config.json")))
    assert cfg["auths"][token_registry.host]["auth"] == base64.b64encode(
        f"alice:{USERS['alice']}".encode()).decode()
    before = len(ts.requests)
    engine.pull(ref)
    assert any(r.get("account") == "alice" and r.get("user") == "alice" for r in ts.requests[before:])

    # an identity (refresh) token in config.json: OAuth POST grant_type=refresh_token
    ts.refresh_tokens["rt-test-alice"] = "alice"
    with open(os.path.join(registry_env["DOCKER_CONFIG"], "config.json"), "w") as f:
        json.dump({"auths": {token_registry.host: {"auth": base64.b64encode(b"alice:").decode(),
                                                   "identitytoken": "rt-test-alice"}}}, f)
    before = len(ts.requests)
    new_engine(str(tmp_path / "root2")).pull(ref)  # a cold store
    posts = [r for r in ts.requests[before:] if r["method"] == "POST"]
    assert posts and posts[0]["grant_type"] == "refresh_token" and posts[0]["user"] == "alice"


def test_tls_registry_insecure_loopback(engine, tls_registry, bb_image, tmp_path):
    """Loopback is insecure by default (as in Docker): HTTPS without verification."""
    repo = unique_repo("tls")
    ref = push_with_skopeo(str(tmp_path), tls_registry, repo, "v1", [bb_image])
    img = engine.pull(ref)
    assert img.manifest_digest == bb_image.digest


def test_tls_verification_uses_certs_d(tls_registry, tmp_path):
    """Verified HTTPS fails without the CA and works with it in certs.d/<host>/."""
    from core.registry.hosts import RegistryConfig
    from core.registry.transport import RegistryUnreachable, Transport

    cfg = RegistryConfig(config_dir=str(tmp_path), certs_dirs=(str(tmp_path / "certs.d"),))
    url = f"https://{tls_registry.host}/v2/"
    with pytest.raises(RegistryUnreachable, match="not trusted") as ei:
        Transport(cfg).request("GET", url, verify=True)
    assert "certs.d" in ei.value.hint
    d = tmp_path / "certs.d" / tls_registry.host
    d.mkdir(parents=True)
    (d / "ca.crt").write_bytes(open(tls_registry.cert, "rb").read())
    cfg2 = RegistryConfig(config_dir=str(tmp_path), certs_dirs=(str(tmp_path / "certs.d"),))
    r = Transport(cfg2).request("GET", url, verify=True)
    assert r.status == 200
    r.drain()


def test_ensure_image_policies(engine, registry, bb_image, tmp_path):
    from core.errors import UsageError

    ref = push_with_skopeo(str(tmp_path), registry, unique_repo("ensure"), "v1", [bb_image])
    with pytest.raises(NotFound, match="no such image"):
        engine.ensure_image(ref, "never")
    events = []
    img = engine.ensure_image(ref, "missing", events.append)
    assert img.manifest_digest == bb_image.digest
    assert events[0].action == "Unable to find image locally" and events[0].id == ref
    events.clear()
    assert engine.ensure_image(ref, "missing", events.append).id == img.id
    assert events == []  # stored: no registry traffic at all
    assert engine.ensure_image(ref, "never").id == img.id
    events.clear()
    engine.ensure_image(ref, "always", events.append)
    assert any(e.action == "Status" and "up to date" in e.message for e in events)
    with pytest.raises(UsageError):
        engine.ensure_image(ref, "sometimes")


def test_foreign_layer_is_skipped_with_a_warning(engine, registry, busybox_layer_tar):
    from tests.registry_servers import DOCKER_CONFIG, DOCKER_MANIFEST, compress, push_raw

    base = compress(busybox_layer_tar, "gzip")
    foreign_tar = tar_from_dict({"Files/": None, "Files/windows.txt": "never fetched"})
    foreign = compress(foreign_tar, "gzip")
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [sha256(busybox_layer_tar),
                                                                   sha256(foreign_tar)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [
            {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
             "digest": sha256(base), "size": len(base)},
            {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
             "digest": sha256(foreign), "size": len(foreign),
             "urls": ["https://foreign.invalid/layer.tar.gz"]},
        ]}).encode()
    repo = unique_repo("foreign")
    push_raw(registry.host, repo, "v1", {sha256(base): base, sha256(config): config}, manifest,
             DOCKER_MANIFEST)
    events = []
    img = engine.pull(f"{registry.host}/{repo}:v1", progress=events.append)
    warnings = [e for e in events if e.action == "Warning"]
    assert len(warnings) == 1 and "foreign layer" in warnings[0].message
    assert img.manifest_digest == sha256(manifest)
    assert engine.store.has_blob(sha256(base)) and not engine.store.has_blob(sha256(foreign))
