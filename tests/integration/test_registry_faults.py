"""Faults: unreachable registry, unknown repo/tag, bad credentials, 401/403/404/429/5xx,
connections cut mid-blob, tampered blobs and manifests, kill -9 during a pull.

For each: one clear line, no partial image visible, nothing bad stored, next pull works.
"""

from __future__ import annotations

import glob
import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest

from core.errors import DigestMismatch, NotFound, NutshellError, RegistryError
from core.registry.transport import ConnectionDropped, RegistryUnreachable
from tests.registry_servers import (
    CuttingProxy,
    free_port,
    make_image,
    new_engine,
    push_with_skopeo,
    tar_from_dict,
    unique_repo,
)

pytestmark = [pytest.mark.integration, pytest.mark.registry]


@pytest.fixture(scope="module")
def big_image(busybox_layer_tar):
    # incompressible data so the blobs are big enough to cut in the middle
    return make_image([busybox_layer_tar, tar_from_dict({"r/": None, "r/x": os.urandom(700_000)})])


@pytest.fixture
def pushed(registry, big_image, tmp_path):
    repo = unique_repo("fault")
    push_with_skopeo(str(tmp_path), registry, repo, "v1", [big_image])
    return repo


@pytest.fixture
def proxy(registry):
    p = CuttingProxy(registry, cuts=0).start()
    yield p
    p.stop()


def assert_store_clean(engine, ref: str) -> None:
    """No image for ``ref``, and every blob in the store matches its digest."""
    with pytest.raises(NotFound):
        engine.store.image(ref)
    for path in glob.glob(os.path.join(engine.paths.blobs, "*")):
        with open(path, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == os.path.basename(path), f"bad blob {path}"


def one_line(exc: BaseException) -> str:
    s = str(exc)
    assert "\n" not in s and s
    return s


def test_connection_refused(engine):
    port = free_port()
    with pytest.raises(RegistryUnreachable) as ei:
        engine.pull(f"127.0.0.1:{port}/x/y:v1")
    assert one_line(ei.value) == f"cannot connect to registry 127.0.0.1:{port}: connection refused"
    assert ei.value.exit_code == 125


def test_unknown_repo_and_tag(engine, registry, pushed):
    with pytest.raises(NotFound, match="not found") as ei:
        engine.pull(f"{registry.host}/no/such-repo:v1")
    one_line(ei.value)
    with pytest.raises(NotFound, match=r"manifest for .*:nope not found"):
        engine.pull(f"{registry.host}/{pushed}:nope")
    assert_store_clean(engine, f"{registry.host}/{pushed}:nope")


def test_not_a_registry(engine):
    from tests.registry_servers import ScriptedServer

    with ScriptedServer(lambda req: (404, {}, b"not here")) as srv:
        with pytest.raises(RegistryError, match="does not look like a registry"):
            engine.pull(f"{srv.host}/a/b:c")


@pytest.mark.parametrize("status,exc,msg", [
    (401, RegistryError, "authentication required"),
    (403, RegistryError, "access denied"),
    (404, NotFound, "not found"),
    (500, RegistryError, "registry error 500"),
    (503, RegistryError, "registry error 503"),
    (429, RegistryError, "too many requests"),
])
def test_error_statuses_on_manifest(engine, proxy, pushed, status, exc, msg):
    ref = f"{proxy.host}/{pushed}:v1"
    proxy.fail_status = [("/manifests/", status, {"Retry-After": "0"})] * 10
    with pytest.raises(exc, match=msg) as ei:
        engine.pull(ref)
    one_line(ei.value)
    assert_store_clean(engine, ref)
    proxy.fail_status = []
    assert engine.pull(ref).manifest_digest  # and the next pull works


def test_transient_5xx_and_429_are_retried(engine, proxy, pushed, big_image):
    ref = f"{proxy.host}/{pushed}:v1"
    proxy.fail_status = [("/manifests/", 503, {}), ("/manifests/", 429, {"Retry-After": "0"}),
                         ("/blobs/", 502, {})]
    img = engine.pull(ref)
    assert img.manifest_digest == big_image.digest
    assert proxy.fail_status == []  # every injected failure was met, and retried past


def test_5xx_on_a_blob_fails_cleanly(engine, proxy, pushed, big_image):
    ref = f"{proxy.host}/{pushed}:v1"
    layer = big_image.layers[1]["digest"]
    proxy.fail_status = [(layer, 500, {})] * 20
    with pytest.raises(RegistryError, match="500"):
        engine.pull(ref)
    assert_store_clean(engine, ref)
    assert not engine.store.has_blob(layer)
    proxy.fail_status = []
    assert engine.pull(ref).manifest_digest == big_image.digest


@pytest.mark.parametrize("rst", [False, True], ids=["close", "reset"])
def test_cut_mid_blob_resumes_with_range(engine, proxy, pushed, big_image, rst):
    ref = f"{proxy.host}/{pushed}:v1"
    proxy.cut_after, proxy.cuts, proxy.rst = 100_000, 1, rst
    events = []
    img = engine.pull(ref, progress=events.append)
    assert img.manifest_digest == big_image.digest
    ranges = [g["range"] for g in proxy.blob_gets if g["range"]]
    assert ranges == ["bytes=100000-"], proxy.blob_gets
    assert any(e.action == "Retrying" for e in events)
    for layer in big_image.layers:
        with open(engine.store.blob_path(layer["digest"]), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == layer["digest"][7:]


def test_cut_mid_blob_without_range_support_restarts_the_layer(engine, proxy, pushed, big_image):
    ref = f"{proxy.host}/{pushed}:v1"
    proxy.cut_after, proxy.cuts, proxy.strip_range = 100_000, 1, True
    events = []
    img = engine.pull(ref, progress=events.append)
    assert img.manifest_digest == big_image.digest
    restarts = [e for e in events if e.action == "Retrying" and "restarting" in e.message]
    assert len(restarts) == 1


def test_connection_cut_every_time_fails_cleanly(engine, proxy, pushed, big_image):
    ref = f"{proxy.host}/{pushed}:v1"
    proxy.cut_after, proxy.cuts = 50_000, 1000
    with pytest.raises(ConnectionDropped) as ei:
        engine.pull(ref)
    assert "resumes" in one_line(ei.value)
    assert_store_clean(engine, ref)
    cut_layers = [x["digest"] for x in big_image.layers if x["size"] > 50_000]
    assert not any(engine.store.has_blob(d) for d in cut_layers)
    proxy.cuts = 0
    assert engine.pull(ref).manifest_digest == big_image.digest


def test_a_trickling_registry_is_a_stall_that_is_resumed(engine, proxy, pushed, big_image):
    """One byte every 0.3 s is not a live transfer: under min_rate over stall_seconds it is
    dropped and resumed with Range like a cut connection, and the pull completes."""
    ref = f"{proxy.host}/{pushed}:v1"
    engine.registry_retry.stall_seconds, engine.registry_retry.min_rate = 1.0, 1024
    proxy.trickle, proxy.trickles, proxy.trickle_over = 0.3, 1, 100_000
    events = []
    t0 = time.monotonic()
    img = engine.pull(ref, progress=events.append)
    assert img.manifest_digest == big_image.digest
    assert time.monotonic() - t0 < 30
    assert any(e.action == "Retrying" and "stalled" in e.message for e in events), \
        [e.message for e in events if e.action == "Retrying"]


def test_a_registry_that_always_trickles_fails_with_a_clear_error(engine, proxy, pushed, big_image):
    """The issue's case: a registry sending a byte every few seconds kept `pull` at
    "Pulling" forever. Now it fails after the resumes, in bounded time, and stores nothing."""
    ref = f"{proxy.host}/{pushed}:v1"
    engine.registry_retry.stall_seconds, engine.registry_retry.min_rate = 1.0, 1024
    proxy.trickle, proxy.trickles, proxy.trickle_over = 0.3, 1000, 100_000
    t0 = time.monotonic()
    with pytest.raises(ConnectionDropped) as ei:
        engine.pull(ref)
    assert time.monotonic() - t0 < 60
    msg = one_line(ei.value)
    assert "stalled" in msg and "resumes" in msg, msg
    assert_store_clean(engine, ref)
    proxy.trickles = 0
    assert engine.pull(ref).manifest_digest == big_image.digest


def test_a_trickling_config_is_retried_then_fails_with_a_clear_error(engine, proxy, pushed, big_image):
    ref = f"{proxy.host}/{pushed}:v1"
    engine.registry_retry.stall_seconds, engine.registry_retry.min_rate = 1.0, 1024
    proxy.trickle, proxy.trickles, proxy.trickle_over = 0.3, 1, 0
    assert engine.pull(ref).manifest_digest == big_image.digest   # one stall, then a retry
    engine.rmi([ref])
    proxy.trickles = 1000
    with pytest.raises(ConnectionDropped) as ei:
        engine.pull(ref)
    assert "image config stalled" in one_line(ei.value)
    assert_store_clean(engine, ref)


def test_stall_limits_come_from_the_environment(monkeypatch):
    from core.errors import UsageError
    from core.registry.client import RetryPolicy

    monkeypatch.setenv("NUTSHELL_REGISTRY_STALL_SECONDS", "7")
    monkeypatch.setenv("NUTSHELL_REGISTRY_MIN_RATE", "100")
    assert (RetryPolicy().stall_seconds, RetryPolicy().min_rate) == (7.0, 100.0)
    monkeypatch.setenv("NUTSHELL_REGISTRY_MIN_RATE", "fast")
    with pytest.raises(UsageError):
        RetryPolicy()


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_tampered_blob_is_refused(engine, registry, busybox_layer_tar, tmp_path, compression):
    # uncompressed: the tar still parses, only the digest can tell; gzip: the inflater or
    # the digest refuses it, whichever notices first
    big_image = make_image([busybox_layer_tar, tar_from_dict({"r/": None, "r/x": os.urandom(700_000)})],
                           compression=compression)
    repo = unique_repo("tamper")
    ref = push_with_skopeo(str(tmp_path), registry, repo, "v1", [big_image])
    layer = big_image.layers[1]["digest"]
    path = registry.blob_data_path(layer)
    original = open(path, "rb").read()
    bad = bytearray(original)
    bad[len(bad) // 2] ^= 0xFF  # same size, one byte flipped
    with open(path, "wb") as f:
        f.write(bad)
    try:
        with pytest.raises(DigestMismatch if compression == "none" else NutshellError) as ei:
            engine.pull(ref)
        msg = one_line(ei.value)
        assert "digest" in msg.lower() or "corrupt" in msg.lower(), msg
        assert_store_clean(engine, ref)
        assert not engine.store.has_blob(layer)
    finally:
        with open(path, "wb") as f:
            f.write(original)
    assert engine.pull(ref).manifest_digest == big_image.digest


def test_tampered_manifest_is_refused(engine, registry, big_image, tmp_path):
    repo = unique_repo("tamper-m")
    ref = push_with_skopeo(str(tmp_path), registry, repo, "v1", [big_image])
    path = registry.blob_data_path(big_image.digest)
    original = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(original.replace(b'"schemaVersion": 2', b'"schemaVersion":  2'))
    try:
        with pytest.raises(DigestMismatch, match="digest mismatch"):
            engine.pull(ref)
        assert_store_clean(engine, ref)
    finally:
        with open(path, "wb") as f:
            f.write(original)


def test_kill_9_during_pull(registry, pushed, big_image, tmp_path, registry_env):
    root = str(tmp_path / "root")
    proxy = CuttingProxy(registry, cuts=0, throttle=0.05).start()
    try:
        ref = f"{proxy.host}/{pushed}:v1"
        env = dict(os.environ, **registry_env, PYTHONPATH=os.getcwd())
        p = subprocess.Popen([sys.executable, "-m", "workbench", "--root", root, "pull", ref],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while proxy.blob_bytes < 200_000 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.02)
        assert p.poll() is None, p.communicate()
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        p.stdout.close()
        p.stderr.close()
    finally:
        proxy.stop()
    e = new_engine(root)
    assert_store_clean(e, ref)
    # the next pull (straight from the registry) succeeds and the files are right
    img = e.pull(f"{registry.host}/{pushed}:v1")
    assert img.manifest_digest == big_image.digest
    assert e.store.layer_dirs(img)
    # leftovers of the dead process are collected
    e.store.gc()
    assert not glob.glob(os.path.join(root, "layers", ".staging-*"))
    assert not [n for n in os.listdir(os.path.join(root, "tmp")) if str(p.pid) in n]


def test_blob_redirect_to_another_host_never_gets_credentials(engine, basic_registry, big_image,
                                                              tmp_path, registry_env):
    """containerd CVE-2020-15157: a registry (with Basic auth) redirects blob GETs to a
    'CDN' on another origin; the CDN must see no Authorization, and the pull must work."""
    from tests.registry_servers import USERS, ScriptedServer, login_file

    repo = unique_repo("redirect")
    push_with_skopeo(str(tmp_path), basic_registry, repo, "v1", [big_image],
                     creds=basic_registry.creds())

    def cdn_handler(req):
        digest = req.path.split("/cdn/", 1)[1].split("?", 1)[0]
        with open(basic_registry.blob_data_path(digest), "rb") as f:
            return 200, {"Content-Type": "application/octet-stream"}, f.read()
    with ScriptedServer(cdn_handler) as cdn:
        proxy = CuttingProxy(basic_registry, cuts=0).start()
        proxy.redirect_blobs = cdn.url
        try:
            login_file(registry_env["DOCKER_CONFIG"], proxy.host, "alice", USERS["alice"])
            img = engine.pull(f"{proxy.host}/{repo}:v1")
        finally:
            proxy.stop()
        assert img.manifest_digest == big_image.digest
        assert len(cdn.requests) == 1 + len(big_image.layers)  # config + layers via the CDN
        assert all("authorization" not in r.headers for r in cdn.requests)


def test_token_server_hiccup_is_retried(engine, token_registry, big_image, tmp_path):
    repo = unique_repo("tok-503")
    ref = push_with_skopeo(str(tmp_path), token_registry, repo, "v1", [big_image],
                           creds=token_registry.creds())
    ts = token_registry.token_server
    ts.fail_next = [503, 502]
    assert engine.pull(ref).manifest_digest == big_image.digest
    assert ts.fail_next == []
    ts.fail_next = [503] * 20
    with pytest.raises(RegistryError, match="token server answered 503"):
        new_engine(str(tmp_path / "other")).pull(ref)
    ts.fail_next = []
