"""The HTTP layer: redirects never carry credentials to another origin; pooling; hosts."""

from __future__ import annotations

import json

import pytest

from core.errors import UsageError
from core.registry.hosts import RegistryConfig, is_loopback, normalize_registry, split_host_port
from core.registry.transport import RegistryUnreachable, Transport
from tests.registry_servers import ScriptedServer


def transport(tmp_path) -> Transport:
    return Transport(RegistryConfig(config_dir=str(tmp_path)))


def test_redirect_to_other_origin_drops_authorization(tmp_path):
    cdn = ScriptedServer(lambda req: (200, {}, b"blob-bytes")).start()
    try:
        reg = ScriptedServer(lambda req: (307, {"Location": f"{cdn.url}/blob?sig=1"}, b"")).start()
        try:
            t = transport(tmp_path)
            r = t.request("GET", f"{reg.url}/v2/x/blobs/sha256:abc",
                          {"Authorization": "Bearer SECRET", "Cookie": "c=1", "Range": "bytes=3-"})
            assert r.status == 200 and r.read_limited(100) == b"blob-bytes"
            assert reg.requests[0].headers["authorization"] == "Bearer SECRET"
            got = cdn.requests[0].headers
            assert "authorization" not in got and "cookie" not in got
            assert got["range"] == "bytes=3-"  # other headers survive
            assert got.get("accept-encoding", "identity") == "identity"  # never gzip
        finally:
            reg.stop()
    finally:
        cdn.stop()


def test_auth_not_restored_when_redirected_back(tmp_path):
    hops = {"n": 0}
    other = ScriptedServer(lambda req: (302, {"Location": f"{home.url}/final"}, b"")).start()

    def home_handler(req):
        if req.path == "/final":
            return 200, {}, b"done"
        return 302, {"Location": f"{other.url}/bounce"}, b""
    home = ScriptedServer(home_handler).start()
    try:
        r = transport(tmp_path).request("GET", f"{home.url}/start", {"Authorization": "Basic xyz"})
        assert r.read_limited(10) == b"done"
        final = [q for q in home.requests if q.path == "/final"][0]
        assert "authorization" not in final.headers
        assert hops["n"] == 0
    finally:
        home.stop()
        other.stop()


def test_same_origin_redirect_keeps_authorization(tmp_path):
    def handler(req):
        if req.path == "/a":
            return 307, {"Location": "/b"}, b""
        return 200, {}, b"ok"
    with ScriptedServer(handler) as srv:
        r = transport(tmp_path).request("GET", f"{srv.url}/a", {"Authorization": "Bearer T"})
        assert r.read_limited(10) == b"ok"
        assert srv.requests[1].headers["authorization"] == "Bearer T"


def test_redirect_loop_is_bounded(tmp_path):
    with ScriptedServer(lambda req: (302, {"Location": "/again"}, b"")) as srv:
        from core.errors import RegistryError

        with pytest.raises(RegistryError, match="too many redirects"):
            transport(tmp_path).request("GET", f"{srv.url}/x")


def test_uploads_do_not_follow_redirects(tmp_path):
    with ScriptedServer(lambda req: (307, {"Location": "/elsewhere"}, b"")) as srv:
        r = transport(tmp_path).request("PUT", f"{srv.url}/x", {}, b"data", follow_redirects=False)
        assert r.status == 307
        r.drain()
        assert len(srv.requests) == 1


def test_connections_are_reused(tmp_path):
    with ScriptedServer(lambda req: (200, {}, b"x" * 1000)) as srv:
        t = transport(tmp_path)
        for _ in range(5):
            r = t.request("GET", f"{srv.url}/a")
            assert len(r.read_limited(2000)) == 1000
        assert srv.connections == 1


def test_connection_refused_is_one_clear_line(tmp_path):
    from tests.registry_servers import free_port

    port = free_port()
    with pytest.raises(RegistryUnreachable, match=f"cannot connect to registry 127.0.0.1:{port}: connection refused"):
        transport(tmp_path).request("GET", f"http://127.0.0.1:{port}/v2/")


def test_read_limited_refuses_big_bodies(tmp_path):
    from core.errors import RegistryError

    with ScriptedServer(lambda req: (200, {}, b"x" * 5000)) as srv:
        r = transport(tmp_path).request("GET", f"{srv.url}/a")
        with pytest.raises(RegistryError, match="too large"):
            r.read_limited(100)


# --- hosts ---------------------------------------------------------------------------------
@pytest.mark.parametrize("host,loop", [
    ("localhost", True), ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.1.2.3", True),
    ("[::1]:5000", True), ("10.0.0.1:5000", False), ("registry-1.docker.io", False),
    ("localhost.example.com", False),
])
def test_loopback(host, loop):
    assert is_loopback(host) is loop


def test_split_host_port():
    assert split_host_port("[::1]:5000") == ("::1", 5000)
    assert split_host_port("h:1") == ("h", 1)
    assert split_host_port("h") == ("h", None)


def test_settings_https_verified_by_default(tmp_path):
    cfg = RegistryConfig(config_dir=str(tmp_path))
    s = cfg.settings("registry-1.docker.io")
    assert (s.scheme, s.verify_tls, s.http_fallback) == ("https", True, False)
    s = cfg.settings("127.0.0.1:5000")
    assert (s.verify_tls, s.http_fallback) == (False, True)
    s = cfg.settings("reg.example", insecure=True)
    assert (s.verify_tls, s.http_fallback) == (False, True)


def test_insecure_registries_from_toml_and_json(tmp_path):
    (tmp_path / "registries.toml").write_text(
        'insecure-registries = ["reg.example:5000", "10.1.0.0/16"]\n'
        '[[registry]]\nlocation = "podman.example"\ninsecure = true\n')
    cfg = RegistryConfig.load(str(tmp_path))
    assert cfg.is_insecure("reg.example:5000")
    assert not cfg.is_insecure("reg.example:6000")
    assert cfg.is_insecure("10.1.2.3:5000")
    assert not cfg.is_insecure("10.2.0.1")
    assert cfg.is_insecure("podman.example:443")
    (tmp_path / "registries.toml").unlink()
    (tmp_path / "registries.json").write_text(json.dumps({"insecure-registries": ["j.example"]}))
    assert RegistryConfig.load(str(tmp_path)).is_insecure("j.example")


def test_bad_registry_config_is_a_usage_error(tmp_path):
    (tmp_path / "registries.toml").write_text("insecure = [")
    with pytest.raises(UsageError, match="invalid registry configuration"):
        RegistryConfig.load(str(tmp_path))


def test_hub_names():
    assert normalize_registry("registry-1.docker.io") == "docker.io"
    from core.registry.hosts import api_host

    assert api_host("docker.io") == "registry-1.docker.io"
    assert api_host("quay.io") == "quay.io"
