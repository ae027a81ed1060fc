"""Registry authentication: ``WWW-Authenticate`` challenges, Bearer tokens, Basic.

The distribution token flow (distribution ``docs/spec/auth/token.md``; Docker Hub speaks it):

1. A request (or the ``/v2/`` ping) answers 401 with
   ``WWW-Authenticate: Bearer realm="https://auth.example/token",service="reg",scope="..."``.
2. We ask the realm for a token: ``GET realm?service=S&scope=repository:<path>:pull[,push]``,
   anonymously or with Basic credentials (and ``account=``); with an identity token we
   ``POST grant_type=refresh_token`` instead (OAuth2).
3. The JSON answer has ``token`` or ``access_token``, ``expires_in`` (at least 60 s) and
   ``issued_at``; it is capped at 1 MiB. Tokens are cached per (realm, service, scopes)
   and refetched when they expire or when the registry says ``insufficient_scope``.

A ``Basic`` challenge just gets the stored user and password on every request.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from ..errors import RegistryError
from .credentials import Credential
from .hosts import is_loopback
from .transport import Transport

TOKEN_BODY_LIMIT = 1 << 20
MIN_TOKEN_LIFETIME = 60
CLIENT_ID = "nutshell"


class AuthError(RegistryError):
    """The registry (or its token server) refused our credentials or gave none."""


class TokenServerError(RegistryError):
    """The token server failed (5xx, 429, garbage): worth a retry, unlike AuthError."""


@dataclass
class Challenge:
    """A WWW-Authenticate challenge: its scheme and parameters."""
    scheme: str                       # lower-case: "bearer", "basic", ...
    params: dict[str, str] = field(default_factory=dict)


# --- challenge parsing ----------------------------------------------------------------
_TCHARS = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in " \t":
        i += 1
    return i


def _token(s: str, i: int) -> tuple[str, int]:
    j = i
    while j < len(s) and s[j] in _TCHARS:
        j += 1
    return s[i:j], j


def _quoted(s: str, i: int) -> tuple[str, int]:
    """``s[i]`` is the opening quote; returns the unescaped value and the index after it."""
    out = []
    i += 1
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            out.append(s[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    return "".join(out), i  # unterminated: take what there is


def parse_challenges(values: list[str] | str) -> list[Challenge]:
    """Parse one or more ``WWW-Authenticate`` header values (RFC 7235).

    Handles several challenges in one header, commas inside quoted strings, escaped
    quotes and token68 credentials. Scheme names and parameter names are lower-cased.
    """
    if isinstance(values, str):
        values = [values]
    out: list[Challenge] = []
    for s in values:
        i = 0
        current: Challenge | None = None
        while i < len(s):
            i = _skip_ws(s, i)
            if i < len(s) and s[i] == ",":
                i += 1
                continue
            name, j = _token(s, i)
            if not name:
                i += 1  # garbage: skip one character
                continue
            k = _skip_ws(s, j)
            if k < len(s) and s[k] == "=" and current is not None:
                # auth-param of the current challenge
                k = _skip_ws(s, k + 1)
                if k < len(s) and s[k] == '"':
                    value, k = _quoted(s, k)
                else:
                    value, k = _token(s, k)
                current.params[name.lower()] = value
                i = k
                continue
            # a new challenge: scheme [token68 | params]
            current = Challenge(name.lower(), {})
            out.append(current)
            i = _skip_ws(s, j)
            # token68 (e.g. "Negotiate abc==") : a token followed by '='s and then end/comma
            t68, m = _token(s, i)
            if t68:
                n = m
                while n < len(s) and s[n] == "=":
                    n += 1
                after = _skip_ws(s, n)
                if n > m and (after >= len(s) or s[after] == ","):
                    current.params[""] = s[i:n]
                    i = after
    return out


def scope_for(repo: str, actions: tuple[str, ...] | list[str]) -> str:
    return f"repository:{repo}:{','.join(actions)}"


def merge_scopes(scopes: list[str]) -> list[str]:
    """Merge ``repository:x:pull`` + ``repository:x:push`` into ``repository:x:pull,push``."""
    merged: dict[tuple[str, str], list[str]] = {}
    for sc in scopes:
        typ, _, rest = sc.partition(":")
        name, _, actions = rest.rpartition(":")
        if not name:
            name, actions = rest, ""
        acts = merged.setdefault((typ, name), [])
        for a in actions.split(","):
            if a and a not in acts:
                acts.append(a)
    return [f"{t}:{n}:{','.join(sorted(a))}" for (t, n), a in sorted(merged.items())]


# --- tokens ---------------------------------------------------------------------------
@dataclass
class Token:
    """A bearer token from a registry's token service, and when it expires."""
    value: str
    expires_at: float
    refresh_token: str = ""

    def valid(self, now: float | None = None) -> bool:
        return (now or time.time()) < self.expires_at - 10


def _parse_issued_at(text: str | None) -> float | None:
    if not text or not isinstance(text, str):
        return None
    t = text.strip()
    try:
        if t.endswith("Z"):
            t = t[:-1] + "+00:00"
        # trim nanoseconds to microseconds
        if "." in t:
            head, _, rest = t.partition(".")
            frac = "".join(c for c in rest if c.isdigit())
            tz = rest[len(frac):]
            t = f"{head}.{frac[:6]}{tz}"
        return datetime.fromisoformat(t).timestamp()
    except ValueError:
        return None


class Authenticator:
    """Auth state for one registry host, shared by all threads of a pull or push."""

    def __init__(self, transport: Transport, registry: str, credential: Credential | None,
                 verify: bool = True, insecure_hosts=None):
        self.transport = transport
        self.registry = registry
        self.credential = credential if credential and not credential.anonymous else None
        self.verify = verify
        self._insecure_hosts = insecure_hosts or (lambda host: False)
        self.challenge: Challenge | None = None
        self._tokens: dict[tuple, Token] = {}
        self._lock = threading.Lock()
        self._fetch_locks: dict[tuple, threading.Lock] = {}

    # called by the client when it sees a 401 (or the ping's 401)
    def learn(self, www_authenticate: list[str]) -> Challenge | None:
        """Remember the strongest challenge we can answer; returns it."""
        chosen = None
        for ch in parse_challenges(www_authenticate):
            if ch.scheme == "bearer" and ch.params.get("realm"):
                chosen = ch
                break
            if ch.scheme == "basic" and chosen is None:
                chosen = ch
        if chosen is not None:
            self.challenge = chosen
        return chosen

    def authorization(self, scopes: list[str], force_refresh: bool = False) -> str | None:
        """The ``Authorization`` header value for a request needing ``scopes``."""
        ch = self.challenge
        if ch is None:
            return None
        if ch.scheme == "basic":
            c = self.credential
            if c is None or not (c.username or c.password):
                return None
            raw = f"{c.username}:{c.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if ch.scheme == "bearer":
            tok = self.token(ch, scopes, force_refresh=force_refresh)
            return f"Bearer {tok.value}"
        return None

    def token(self, ch: Challenge, scopes: list[str], force_refresh: bool = False) -> Token:
        realm = ch.params.get("realm", "")
        service = ch.params.get("service", "")
        scopes = merge_scopes(scopes)
        key = (realm, service, tuple(scopes))
        with self._lock:
            tok = self._tokens.get(key)
            if tok is not None and tok.valid() and not force_refresh:
                return tok
            flock = self._fetch_locks.setdefault(key, threading.Lock())
        # one fetch per key at a time: parallel layer threads share the answer
        with flock:
            with self._lock:
                tok = self._tokens.get(key)
            if tok is not None and tok.valid() and not force_refresh:
                return tok
            tok = self._fetch_token(realm, service, scopes)
            with self._lock:
                self._tokens[key] = tok
            return tok

    def _check_realm(self, realm: str) -> None:
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AuthError(f"registry {self.registry} sent an invalid token realm {realm!r}")
        if parts.scheme == "http" and self.credential is not None \
                and not is_loopback(parts.netloc) and not self._insecure_hosts(parts.netloc):
            raise AuthError(f"refusing to send credentials over plain HTTP to {parts.netloc}",
                            hint="mark the registry insecure if this is really intended")

    def _fetch_token(self, realm: str, service: str, scopes: list[str]) -> Token:
        self._check_realm(realm)
        c = self.credential
        now = time.time()
        headers = {"Accept": "application/json"}
        if c is not None and c.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": c.identity_token,
                    "client_id": CLIENT_ID}
            if service:
                form["service"] = service
            if scopes:
                form["scope"] = " ".join(scopes)
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            resp = self.transport.request("POST", realm, headers, body, verify=self.verify,
                                          follow_redirects=False)
        else:
            q: list[tuple[str, str]] = []
            if service:
                q.append(("service", service))
            for sc in scopes:
                q.append(("scope", sc))
            if c is not None:
                q.append(("account", c.username))
                raw = f"{c.username}:{c.password}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
            sep = "&" if "?" in realm else "?"
            url = realm + (sep + urlencode(q) if q else "")
            resp = self.transport.request("GET", url, headers, verify=self.verify)
        if resp.status in (401, 403):
            detail = _error_detail(resp.drain())
            if c is None:
                raise AuthError(f"{self.registry}: authentication required"
                                + (f": {detail}" if detail else ""),
                                hint=f"log in with: nutshell login {self.registry}")
            raise AuthError(f"{self.registry}: unauthorized: incorrect username or password"
                            + (f" ({detail})" if detail else ""))
        if resp.status != 200:
            detail = _error_detail(resp.drain())
            cls = TokenServerError if resp.status in (408, 429) or resp.status >= 500 else AuthError
            raise cls(f"{self.registry}: token server answered {resp.status} {resp.reason}"
                      + (f": {detail}" if detail else ""))
        body = resp.read_limited(TOKEN_BODY_LIMIT, "token response")
        try:
            data = json.loads(body)
        except ValueError:
            raise AuthError(f"{self.registry}: token server sent invalid JSON") from None
        if not isinstance(data, dict):
            raise AuthError(f"{self.registry}: token server sent invalid JSON")
        value = data.get("token") or data.get("access_token")
        if not value or not isinstance(value, str):
            raise AuthError(f"{self.registry}: token server sent no token")
        try:
            lifetime = int(data.get("expires_in") or 0)
        except (TypeError, ValueError):
            lifetime = 0
        lifetime = max(lifetime, MIN_TOKEN_LIFETIME)
        issued = _parse_issued_at(data.get("issued_at")) or now
        if issued > now + 60 or issued < now - 86400:  # a skewed clock: trust ours
            issued = now
        return Token(value, issued + lifetime, data.get("refresh_token") or "")

    def login_check(self) -> None:
        """Prove the stored credential works for this registry (``nutshell login``)."""
        ch = self.challenge
        if ch is not None and ch.scheme == "bearer":
            # Docker asks for a token with no scope: the token server checks the password
            self._fetch_token(ch.params.get("realm", ""), ch.params.get("service", ""), [])


def _error_detail(body: bytes) -> str:
    """One line out of a registry or token-server error body."""
    if not body:
        return ""
    try:
        data = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip().splitlines()
        return text[0][:200] if text else ""
    if isinstance(data, dict):
        errs = data.get("errors")
        if isinstance(errs, list) and errs and isinstance(errs[0], dict):
            e = errs[0]
            code = str(e.get("code", "")).lower().replace("_", " ")
            msg = str(e.get("message", ""))
            return f"{code}: {msg}" if code and msg and code != msg.lower() else (msg or code)
        for k in ("details", "detail", "message", "error_description", "error"):
            if isinstance(data.get(k), str):
                return data[k][:200]
    return ""
