"""Challenge parsing, token fetching/caching and the client's 401/retry loop."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from core.errors import NotFound, RegistryError
from core.registry.auth import Authenticator, AuthError, merge_scopes, parse_challenges
from core.registry.client import RegistryClient, RetryPolicy, TooManyRequests
from core.registry.credentials import Credential
from core.registry.hosts import RegistryConfig
from core.registry.transport import Transport
from tests.registry_servers import ScriptedServer

FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01, resume_delay=0.0)


def test_parse_docker_hub_challenge():
    [ch] = parse_challenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                            'scope="repository:library/busybox:pull"')
    assert ch.scheme == "bearer"
    assert ch.params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                         "scope": "repository:library/busybox:pull"}


def test_parse_several_challenges_quotes_and_escapes():
    chs = parse_challenges(['Basic realm="a, b"',
                            'Bearer realm="x\\"y",error="insufficient_scope", Negotiate abc==, '
                            'Basic realm=plain'])
    assert [c.scheme for c in chs] == ["basic", "bearer", "negotiate", "basic"]
    assert chs[0].params["realm"] == "a, b"
    assert chs[1].params == {"realm": 'x"y', "error": "insufficient_scope"}
    assert chs[2].params[""] == "abc=="
    assert chs[3].params["realm"] == "plain"


def test_parse_garbage_does_not_crash():
    assert parse_challenges("") == []
    assert parse_challenges(",,,") == []
    chs = parse_challenges('Bearer realm="unterminated')
    assert chs[0].params["realm"] == "unterminated"


def test_merge_scopes():
    assert merge_scopes(["repository:a/b:pull", "repository:a/b:push", "repository:c:pull"]) == \
        ["repository:a/b:pull,push", "repository:c:pull"]


class TokenRealm:
    """A scripted token endpoint and a registry that demands a Bearer token."""

    def __init__(self, users=None, lifetime=300, field="token"):
        self.users = users or {"alice": "pw"}
        self.lifetime = lifetime
        self.field = field
        self.issued = 0
        self.srv = ScriptedServer(self.handle)

    def handle(self, req):
        parts = urlsplit(req.path)
        if parts.path == "/token":
            auth = req.headers.get("authorization", "")
            user = None
            if auth.startswith("Basic "):
                u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                if self.users.get(u) != p:
                    return 401, {"Content-Type": "application/json"}, b'{"details":"bad password"}'
                user = u
            q = parse_qs(parts.query)
            self.issued += 1
            tok = json.dumps({"user": user, "scope": q.get("scope", []), "n": self.issued})
            tok = base64.urlsafe_b64encode(tok.encode()).decode()
            body = {self.field: tok, "expires_in": self.lifetime}
            return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()
        # the "registry": /v2/ and a manifest that needs pull on repo a/b
        challenge = f'Bearer realm="{self.srv.url}/token",service="svc"'
        auth = req.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return 401, {"WWW-Authenticate": challenge}, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        claims = json.loads(base64.urlsafe_b64decode(auth[7:]))
        if parts.path == "/v2/":
            return 200, {}, b"{}"
        if parts.path == "/v2/a/b/private":
            if claims["user"] is None:
                return 401, {"WWW-Authenticate": challenge + ',error="insufficient_scope",scope="repository:a/b:pull"'}, b""
            return 200, {}, b"ok"
        if parts.path == "/v2/a/b/needs-extra":
            if "repository:x/y:pull" not in claims["scope"]:
                return 401, {"WWW-Authenticate": challenge + ',error="insufficient_scope",scope="repository:x/y:pull"'}, b""
            return 200, {}, b"ok"
        return 200, {}, b"ok"


def _client(url_host, cred=None, tmp_path=None):
    cfg = RegistryConfig(config_dir=str(tmp_path))
    c = RegistryClient(url_host, config=cfg, credential=cred, retry=FAST)
    c.sleep = lambda s: None
    return c


@pytest.fixture
def realm():
    """A registry whose tokens come from its realm (TokenRealm's defaults), for one test."""
    r = TokenRealm()
    with r.srv:
        yield r


@pytest.fixture
def realm_client(realm, tmp_path):
    """``realm_client(credential=None)``: a client of the ``realm`` registry."""
    return lambda cred=None: _client(realm.srv.host, cred, tmp_path)


def test_bearer_anonymous_token_cached_per_scope(realm, realm_client):
    c = realm_client()
    r = c.request("GET", "/v2/a/b/thing", scopes=["repository:a/b:pull"])
    assert r.status == 200
    r.drain()
    first = realm.issued
    for _ in range(3):
        c.request("GET", "/v2/a/b/thing", scopes=["repository:a/b:pull"]).drain()
    assert realm.issued == first  # cached
    c.request("GET", "/v2/a/b/thing", scopes=["repository:c/d:pull"]).drain()
    assert realm.issued == first + 1  # new scope, new token
    token_reqs = [q for q in realm.srv.requests if q.path.startswith("/token")]
    assert all("authorization" not in q.headers for q in token_reqs)  # anonymous
    assert "service=svc" in token_reqs[-1].path and "scope=repository%3Ac%2Fd%3Apull" in token_reqs[-1].path


def test_bearer_with_credentials_sends_basic_to_realm_and_account(realm, realm_client):
    c = realm_client(Credential("alice", "pw"))
    c.request("GET", "/v2/a/b/private", scopes=["repository:a/b:pull"]).drain()
    tq = [q for q in realm.srv.requests if q.path.startswith("/token")][-1]
    assert tq.headers["authorization"] == "Basic " + base64.b64encode(b"alice:pw").decode()
    assert "account=alice" in tq.path


def test_wrong_password_is_a_clear_auth_error(realm_client):
    c = realm_client(Credential("alice", "nope"))
    with pytest.raises(AuthError, match="incorrect username or password"):
        c.request("GET", "/v2/a/b/private", scopes=["repository:a/b:pull"])


def test_anonymous_denied_says_authentication_required(realm_client):
    c = realm_client()
    with pytest.raises(AuthError, match="authentication required") as ei:
        c.request("GET", "/v2/a/b/private", scopes=["repository:a/b:pull"])
    assert "nutshell login" in ei.value.hint


def test_insufficient_scope_retries_with_the_named_scope(realm, realm_client):
    c = realm_client()
    r = c.request("GET", "/v2/a/b/needs-extra", scopes=["repository:a/b:pull"])
    assert r.status == 200
    r.drain()
    last = [q for q in realm.srv.requests if q.path.startswith("/token")][-1]
    assert "repository%3Ax%2Fy%3Apull" in last.path


def test_access_token_field_and_short_lifetime_refetch(tmp_path, monkeypatch):
    realm = TokenRealm(field="access_token", lifetime=1)
    with realm.srv:
        c = _client(realm.srv.host, None, tmp_path)
        c.request("GET", "/v2/a/b/x", scopes=["repository:a/b:pull"]).drain()
        n = realm.issued
        # lifetimes below 60 s are raised to 60 s (c/image); the token stays cached
        c.request("GET", "/v2/a/b/x", scopes=["repository:a/b:pull"]).drain()
        assert realm.issued == n
        # ...until it expires
        import core.registry.auth as auth_mod

        real_time = auth_mod.time.time
        monkeypatch.setattr(auth_mod.time, "time", lambda: real_time() + 3600)
        c.request("GET", "/v2/a/b/x", scopes=["repository:a/b:pull"]).drain()
        assert realm.issued == n + 1


def test_token_body_over_1mib_is_refused(tmp_path):
    def handle(req):
        if req.path.startswith("/token"):
            return 200, {"Content-Type": "application/json"}, b'{"token":"' + b"a" * (1 << 20) + b'"}'
        return 401, {"WWW-Authenticate": f'Bearer realm="{srv.url}/token",service="s"'}, b""
    srv = ScriptedServer(handle)
    with srv:
        c = _client(srv.host, None, tmp_path)
        with pytest.raises(RegistryError, match="too large"):
            c.request("GET", "/v2/a/manifests/x", scopes=["repository:a:pull"])


def test_credentials_never_sent_over_plain_http_to_a_remote_realm(tmp_path):
    t = Transport(RegistryConfig(config_dir=str(tmp_path)))
    a = Authenticator(t, "reg.example", Credential("u", "p"))
    with pytest.raises(AuthError, match="plain HTTP"):
        a._fetch_token("http://auth.example.com/token", "svc", [])


def test_basic_challenge(tmp_path):
    good = "Basic " + base64.b64encode(b"bob:builder").decode()

    def handle(req):
        if req.headers.get("authorization") != good:
            return 401, {"WWW-Authenticate": 'Basic realm="r"'}, b""
        return 200, {}, b"ok"
    with ScriptedServer(handle) as srv:
        c = _client(srv.host, Credential("bob", "builder"), tmp_path)
        r = c.request("GET", "/v2/x")
        assert r.status == 200 and r.read_limited(10) == b"ok"
        bad = _client(srv.host, Credential("bob", "wrong"), tmp_path)
        with pytest.raises(AuthError, match="incorrect username or password"):
            bad.request("GET", "/v2/x")
        anon = _client(srv.host, None, tmp_path)
        with pytest.raises(AuthError, match="authentication required"):
            anon.request("GET", "/v2/x")


def _after_ping(*replies):
    """A ScriptedServer handler: 200 to the ping (``/v2/``), then ``replies`` in turn, the
    last one for good; ``handle.calls`` counts the requests after the ping."""
    def handle(req):
        if req.path == "/v2/":
            return 200, {}, b""
        handle.calls += 1
        return replies[min(handle.calls, len(replies)) - 1]
    handle.calls = 0
    return handle


OK = 200, {}, b"ok"


def test_retries_5xx_then_succeeds(tmp_path):
    busy = 503, {}, b'{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}'
    handle = _after_ping(busy, busy, OK)
    with ScriptedServer(handle) as srv:
        c = _client(srv.host, None, tmp_path)
        slept = []
        c.sleep = slept.append
        r = c.request("GET", "/v2/x")
        assert r.status == 200 and handle.calls == 3 and len(slept) == 2


def test_429_honours_retry_after(tmp_path):
    with ScriptedServer(_after_ping((429, {"Retry-After": "7"}, b""), OK)) as srv:
        c = _client(srv.host, None, tmp_path)
        slept = []
        c.sleep = slept.append
        assert c.request("GET", "/v2/x").status == 200
        assert slept == [7.0]


def test_429_forever_becomes_too_many_requests(tmp_path):
    slow_down = 429, {"Retry-After": "0"}, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}'
    with ScriptedServer(_after_ping(slow_down)) as srv:
        c = _client(srv.host, None, tmp_path)
        with pytest.raises(TooManyRequests, match="429"):
            c.get_manifest("a/b", "latest")


def test_404_manifest_is_not_found(tmp_path):
    unknown = (404, {"Content-Type": "application/json"},
               b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
    with ScriptedServer(_after_ping(unknown)) as srv:
        c = _client(srv.host, None, tmp_path)
        with pytest.raises(NotFound, match="manifest for .*a/b:nope not found: manifest unknown"):
            c.get_manifest("a/b", "nope")


def test_ping_404_is_not_a_registry(tmp_path):
    with ScriptedServer(lambda req: (404, {}, b"")) as srv:
        c = _client(srv.host, None, tmp_path)
        with pytest.raises(RegistryError, match="does not look like a registry"):
            c.ping()
