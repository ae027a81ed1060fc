"""An OCI distribution client for one registry host.

``RegistryClient(domain)`` speaks the distribution spec (``/v2/``): ping, manifests by tag
or digest, blob HEAD/GET (with ``Range``), uploads (POST, PATCH, PUT ``?digest=``),
cross-repository mounts and manifest PUT. It is thread-safe: parallel layer downloads
share its connection pool and token cache.

Every request goes through :meth:`RegistryClient.request`, which

* adds ``Authorization`` for the scopes the request needs (Bearer token or Basic),
  but only for URLs on the registry's own origin;
* on a 401 learns the challenge and retries once with a fresh token (and with the scope
  an ``insufficient_scope`` error names);
* retries 408, 429 (honouring ``Retry-After``), 5xx and dropped connections with
  exponential backoff and jitter, when the request body can be replayed.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import random
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urljoin, urlsplit

from ..errors import NotFound, NutshellError, RegistryError, UsageError
from ..reference import DIGEST_RE, validate_digest
from . import credentials as _credentials
from .auth import Authenticator, AuthError, TokenServerError, _error_detail, scope_for
from .hosts import RegistryConfig, api_host, normalize_registry
from .manifest import ACCEPT, MANIFEST_LIMIT, Manifest, parse_manifest, verify_digest
from .transport import TRANSIENT_ERRORS, ConnectionDropped, RegistryUnreachable, Response, Transport, origin_of

RETRY_STATUSES = (408, 429, 500, 502, 503, 504)
ERROR_BODY_LIMIT = 1 << 20


class TooManyRequests(RegistryError):
    """429 after every retry."""


@dataclass
class RetryPolicy:
    """How often and how long a registry request is retried, and when a download is resumed."""
    attempts: int = 5           # tries per request (1 = no retry)
    base_delay: float = 0.5     # first backoff, doubled each time
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    resume_delay: float = 1.0   # before a Range resume of a blob (c/image: 1 s + jitter)
    max_resumes: int = 5        # Range resumes per blob download
    layer_attempts: int = 3     # whole-layer restarts (no usable Range answer)
    # a blob download slower than min_rate bytes/s over stall_seconds has stalled: it is
    # dropped and resumed like a cut connection (NUTSHELL_REGISTRY_STALL_SECONDS and
    # NUTSHELL_REGISTRY_MIN_RATE set them; a connection silent for the socket timeout, 60 s,
    # is dropped anyway)
    stall_seconds: float = field(default_factory=lambda: _env_number("NUTSHELL_REGISTRY_STALL_SECONDS", 30.0))
    min_rate: float = field(default_factory=lambda: _env_number("NUTSHELL_REGISTRY_MIN_RATE", 1024.0))

    def backoff(self, attempt: int) -> float:
        d = min(self.max_delay, self.base_delay * (2 ** attempt))
        return d * (0.5 + random.random() / 2)


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r}: not a number") from None
    if value < 0:
        raise UsageError(f"{name}={raw!r}: must not be negative")
    return value


def _retry_after(value: str | None, cap: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        secs = when.timestamp() - time.time()
    return max(0.0, min(cap, secs))


def _replayable(body) -> bool:
    return body is None or isinstance(body, (bytes, bytearray, memoryview))


class RegistryClient:
    """Talks to the registry serving ``domain`` (``docker.io``, ``localhost:5000``, ...)."""

    @property
    def _stall(self) -> tuple[float, float]:
        return (self.retry.stall_seconds, self.retry.min_rate)

    def __init__(self, domain: str, *, config: RegistryConfig, transport: Transport | None = None,
                 credential: _credentials.Credential | None | bool = True, insecure: bool = False,
                 retry: RetryPolicy | None = None):
        self.domain = normalize_registry(domain)
        self.host = api_host(self.domain)
        self.config = config
        self.transport = transport or Transport(config)
        self.retry = retry or RetryPolicy()
        s = config.settings(self.host, insecure)
        self.scheme = s.scheme
        self.verify = s.verify_tls
        self._http_fallback = s.http_fallback
        if credential is True:  # look it up in config.json / helpers
            credential = _credentials.get(self.domain)
        self.credential = credential or None
        self.auth = Authenticator(self.transport, self.domain, self.credential, self.verify,
                                  insecure_hosts=lambda h: is_insecure(config, h))
        self._pinged = False
        self.sleep = time.sleep  # tests may replace it

    # --- URLs -----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def _own_origin(self, url: str) -> bool:
        return origin_of(url).key()[:2] == origin_of(self.base_url).key()[:2]

    # --- ping -----------------------------------------------------------------------
    def ping(self) -> Response | None:
        """``GET /v2/``: check this is a registry, learn its auth challenge, pick the scheme."""
        if self.scheme == "https" and self._http_fallback:
            try:
                r = self._ping_once(attempts=1)
            except (ssl.SSLError, ConnectionDropped, *TRANSIENT_ERRORS):
                # an insecure (or loopback) registry that does not speak TLS at all
                self.scheme = "http"
                r = self._ping_once()
                self.config.remember_scheme(self.host, "http")
        else:
            try:
                r = self._ping_once()
            except ssl.SSLError as exc:
                raise RegistryUnreachable(f"TLS handshake with registry {self.host} failed: "
                                          f"{exc.reason or exc}") from None
        self._pinged = True
        return r

    def _ping_once(self, attempts: int | None = None) -> Response:
        last: Exception | None = None
        attempts = attempts or self.retry.attempts
        for attempt in range(attempts):
            try:
                r = self.transport.request("GET", self.url("/v2/"), {}, verify=self.verify)
            except ssl.SSLError:
                raise
            except (ConnectionDropped, *TRANSIENT_ERRORS) as exc:
                last = exc
                if attempt + 1 < attempts:
                    self.sleep(self.retry.backoff(attempt))
                    continue
                raise ConnectionDropped(f"registry {self.host}: connection failed: "
                                        f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
            if r.status in RETRY_STATUSES and attempt + 1 < attempts:
                delay = _retry_after(r.header("Retry-After"), self.retry.max_retry_after)
                r.drain()
                self.sleep(delay if delay is not None else self.retry.backoff(attempt))
                continue
            if r.status == 401:
                self.auth.learn(r.header_all("WWW-Authenticate"))
                r.drain()
                return r
            if r.status == 200:
                r.drain()
                return r
            detail = _error_detail(r.drain())
            if r.status == 404:
                raise RegistryError(f"{self.host} does not look like a registry (GET /v2/ answered 404)")
            raise _status_error(r.status, r.reason, f"registry {self.host}", detail)
        raise ConnectionDropped(f"registry {self.host}: {last}")

    def ensure_ping(self) -> None:
        if not self._pinged:
            self.ping()

    # --- the request loop -------------------------------------------------------------
    def request(self, method: str, url_or_path: str, *, scopes: list[str] | None = None,
                headers: dict | None = None, body=None, retry: bool = True,
                follow_redirects: bool = True) -> Response:
        self.ensure_ping()
        url = url_or_path if "://" in url_or_path else self.url(url_or_path)
        scopes = list(scopes or [])
        own = self._own_origin(url)
        attempts = self.retry.attempts if (retry and _replayable(body)) else 1
        refreshed = False
        attempt = 0
        while True:
            h = dict(headers or {})
            try:
                if own:
                    auth = self.auth.authorization(scopes, force_refresh=refreshed)
                    if auth:
                        h["Authorization"] = auth
                r = self.transport.request(method, url, h, body, verify=self.verify,
                                           follow_redirects=follow_redirects)
            except TokenServerError:
                if attempt + 1 < attempts:
                    self.sleep(self.retry.backoff(attempt))
                    attempt += 1
                    continue
                raise
            except RegistryUnreachable:
                raise
            except (ConnectionDropped, ssl.SSLError, *TRANSIENT_ERRORS) as exc:
                if attempt + 1 < attempts:
                    self.sleep(self.retry.backoff(attempt))
                    attempt += 1
                    continue
                raise ConnectionDropped(f"registry {self.host}: connection failed: "
                                        f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
            if r.status == 401 and own:
                challenges = r.header_all("WWW-Authenticate")
                detail = _error_detail(r.drain(ERROR_BODY_LIMIT))
                ch = self.auth.learn(challenges) if challenges else None
                if ch is not None and not refreshed and _replayable(body):
                    extra = ch.params.get("scope")
                    if ch.params.get("error") == "insufficient_scope" and extra:
                        for sc in extra.split(" "):
                            if sc and sc not in scopes:
                                scopes.append(sc)
                    if ch.scheme == "bearer" or (ch.scheme == "basic" and self.credential):
                        refreshed = True
                        continue
                raise self._auth_error(detail)
            if r.status in RETRY_STATUSES and attempt + 1 < attempts:
                delay = _retry_after(r.header("Retry-After"), self.retry.max_retry_after)
                r.drain()
                self.sleep(delay if delay is not None else self.retry.backoff(attempt))
                attempt += 1
                continue
            return r

    def _auth_error(self, detail: str) -> AuthError:
        if "authentication required" in detail:
            detail = ""
        if self.credential is None:
            return AuthError(f"{self.domain}: authentication required"
                             + (f": {detail}" if detail else ""),
                             hint=f"log in with: nutshell login {self.domain}")
        return AuthError(f"{self.domain}: unauthorized: incorrect username or password, or no access"
                         + (f" ({detail})" if detail else ""))

    def fail(self, r: Response, what: str) -> NutshellError:
        """The error for an unexpected response (its body is read and the connection freed)."""
        detail = _error_detail(r.drain(ERROR_BODY_LIMIT))
        return _status_error(r.status, r.reason, what, detail)

    # --- manifests --------------------------------------------------------------------
    def get_manifest(self, repo: str, reference: str, what: str | None = None) -> Manifest:
        """GET a manifest or index by tag or digest, verified and validated."""
        by_digest = reference.startswith(("sha256:", "sha512:"))
        if what is None:
            what = f"{self.domain}/{repo}{'@' if by_digest else ':'}{reference}"
        r = self.request("GET", f"/v2/{repo}/manifests/{quote(reference, safe=':')}",
                         scopes=[scope_for(repo, ("pull",))], headers={"Accept": ACCEPT})
        if r.status != 200:
            if r.status == 404:
                detail = _error_detail(r.drain())
                raise NotFound(f"manifest for {what} not found" + (f": {detail}" if detail else ""))
            raise self.fail(r, f"manifest for {what}")
        raw = r.read_limited(MANIFEST_LIMIT, f"manifest for {what}", self._stall)
        expected: str | None
        if by_digest:
            expected = reference
        else:
            hdr = (r.header("Docker-Content-Digest") or "").strip()
            expected = hdr if DIGEST_RE.match(hdr) else None
        return parse_manifest(raw, r.header("Content-Type"), expected, f"manifest for {what}")

    def put_manifest(self, repo: str, reference: str, raw: bytes, media_type: str) -> str:
        r = self.request("PUT", f"/v2/{repo}/manifests/{quote(reference, safe=':')}",
                         scopes=[scope_for(repo, ("pull", "push"))],
                         headers={"Content-Type": media_type}, body=raw)
        if r.status not in (200, 201, 202):
            raise self.fail(r, f"push of manifest {repo}:{reference}")
        digest = r.header("Docker-Content-Digest")
        r.drain()
        local = "sha256:" + hashlib.sha256(raw).hexdigest()
        if digest and digest.strip() != local:
            raise RegistryError(f"registry stored manifest {repo}:{reference} as {digest}, "
                                f"expected {local}")
        return local

    # --- tags -------------------------------------------------------------------------
    def list_tags(self, repo: str, max_pages: int = 100) -> list[str]:
        """Every tag of ``repo`` (``GET /v2/<repo>/tags/list``, following ``Link: <...>;
        rel="next"`` pages on the same registry, at most ``max_pages``)."""
        tags: list[str] = []
        path: str | None = f"/v2/{repo}/tags/list"
        pages = 0
        while path is not None and pages < max_pages:
            pages += 1
            r = self.request("GET", path, scopes=[scope_for(repo, ("pull",))],
                             headers={"Accept": "application/json"})
            if r.status != 200:
                if r.status == 404:
                    detail = _error_detail(r.drain())
                    raise NotFound(f"repository {self.domain}/{repo} not found"
                                   + (f": {detail}" if detail else ""))
                raise self.fail(r, f"tags of {self.domain}/{repo}")
            link = r.header("Link") or ""
            try:
                data = json.loads(r.read_limited(MANIFEST_LIMIT, f"tags of {repo}", self._stall))
            except ValueError:
                raise RegistryError(f"registry {self.host}: tags of {repo}: invalid JSON") from None
            page = data.get("tags") if isinstance(data, dict) else None
            tags += [t for t in page or [] if isinstance(t, str)]
            path = None
            if 'rel="next"' in link and "<" in link:
                nxt = urljoin(self.url("/"), link[link.index("<") + 1:link.index(">")])
                path = nxt if self._own_origin(nxt) else None
        return tags

    # --- blobs ------------------------------------------------------------------------
    def blob_size(self, repo: str, digest: str, scopes: list[str] | None = None) -> int | None:
        """HEAD a blob: its size if the repository has it, None if not."""
        validate_digest(digest)
        r = self.request("HEAD", f"/v2/{repo}/blobs/{digest}",
                         scopes=scopes or [scope_for(repo, ("pull",))])
        if r.status == 200:
            size = r.content_length
            r.drain()
            return size if size is not None else -1
        if r.status == 404:
            r.drain()
            return None
        raise self.fail(r, f"blob {digest} in {repo}")

    def open_blob(self, repo: str, digest: str, offset: int = 0,
                  urls: list[str] | None = None) -> Response:
        """GET a blob (from ``offset`` with ``Range``); the caller checks the status."""
        validate_digest(digest)
        headers = {"Accept": "*/*"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        return self.request("GET", f"/v2/{repo}/blobs/{digest}",
                            scopes=[scope_for(repo, ("pull",))], headers=headers)

    def fetch_blob(self, repo: str, digest: str, size: int, limit: int, what: str) -> bytes:
        """A small blob (a config), read whole, size-capped and digest-verified."""
        if size > limit:
            raise RegistryError(f"{what} is too large: {size} bytes (limit {limit})")
        for attempt in range(max(1, self.retry.attempts)):
            r = self.open_blob(repo, digest)
            if r.status != 200:
                if r.status == 404:
                    r.drain()
                    raise NotFound(f"{what} {digest} not found in {self.domain}/{repo}")
                raise self.fail(r, what)
            try:
                data = r.read_limited(limit, what, self._stall)
                break
            except ConnectionDropped:
                # cut short or stalled mid-body: the request itself succeeded, so the
                # request loop's retries do not cover it
                if attempt + 1 >= max(1, self.retry.attempts):
                    raise
                self.sleep(self.retry.backoff(attempt))
        if len(data) != size:
            raise RegistryError(f"{what}: expected {size} bytes, got {len(data)}")
        verify_digest(data, digest, what)
        return data

    # --- uploads ----------------------------------------------------------------------
    def start_upload(self, repo: str, mount: str | None = None,
                     from_repo: str | None = None) -> tuple[bool, str | None]:
        """POST an upload session; with ``mount``/``from_repo`` try a cross-repo mount.

        Returns ``(True, None)`` when the blob was mounted, else ``(False, location)``.
        """
        scopes = [scope_for(repo, ("pull", "push"))]
        path = f"/v2/{repo}/blobs/uploads/"
        if mount and from_repo:
            validate_digest(mount)
            scopes.append(scope_for(from_repo, ("pull",)))
            path += f"?mount={quote(mount, safe=':')}&from={quote(from_repo, safe='/')}"
        r = self.request("POST", path, scopes=scopes, headers={"Content-Length": "0"}, body=b"")
        if r.status == 201 and mount:
            r.drain()
            return True, None
        if r.status == 202:
            loc = r.header("Location")
            r.drain()
            if not loc:
                raise RegistryError(f"{self.host}: upload started without a Location")
            return False, urljoin(self.base_url + path, loc)
        raise self.fail(r, f"blob upload to {repo}")

    def _upload_url(self, location: str, digest: str | None = None) -> str:
        if digest is None:
            return location
        sep = "&" if urlsplit(location).query else "?"
        return f"{location}{sep}digest={quote(digest, safe=':')}"

    def upload_monolithic(self, repo: str, location: str, body, size: int, digest: str) -> None:
        """One ``PUT <location>?digest=`` with the whole blob as the body."""
        r = self.request("PUT", self._upload_url(location, digest),
                         scopes=[scope_for(repo, ("pull", "push"))],
                         headers={"Content-Type": "application/octet-stream",
                                  "Content-Length": str(size)},
                         body=body, follow_redirects=False)
        if r.status not in (201, 204):
            raise self.fail(r, f"upload of blob {digest}")
        r.drain()

    def upload_chunk(self, repo: str, location: str, chunk: bytes, start: int) -> str:
        """``PATCH`` one chunk with ``Content-Range``; returns the next location."""
        end = start + len(chunk) - 1
        r = self.request("PATCH", location, scopes=[scope_for(repo, ("pull", "push"))],
                         headers={"Content-Type": "application/octet-stream",
                                  "Content-Length": str(len(chunk)),
                                  "Content-Range": f"{start}-{end}"},
                         body=chunk, follow_redirects=False)
        if r.status != 202:
            raise self.fail(r, f"upload chunk {start}-{end}")
        loc = r.header("Location") or location
        r.drain()
        return urljoin(location, loc)

    def upload_status(self, repo: str, location: str) -> int:
        """How many bytes of an upload session the registry holds (``GET`` + ``Range``)."""
        r = self.request("GET", location, scopes=[scope_for(repo, ("pull", "push"))])
        if r.status != 204 and r.status != 200:
            raise self.fail(r, "upload status")
        rng = r.header("Range") or ""
        r.drain()
        try:
            return int(rng.rpartition("-")[2]) + 1 if rng else 0
        except ValueError:
            return 0

    def finish_upload(self, repo: str, location: str, digest: str) -> None:
        r = self.request("PUT", self._upload_url(location, digest),
                         scopes=[scope_for(repo, ("pull", "push"))],
                         headers={"Content-Length": "0"}, body=b"", follow_redirects=False)
        if r.status not in (201, 204):
            raise self.fail(r, f"upload of blob {digest}")
        r.drain()

    def cancel_upload(self, repo: str, location: str) -> None:
        try:
            r = self.request("DELETE", location, scopes=[scope_for(repo, ("pull", "push"))],
                             retry=False)
            r.drain()
        except RegistryError:
            pass

    def close(self) -> None:
        self.transport.close()


def is_insecure(config: RegistryConfig, host: str) -> bool:
    return config.is_insecure(host)


def _status_error(status: int, reason: str, what: str, detail: str) -> NutshellError:
    suffix = f": {detail}" if detail else ""
    if status == 404:
        return NotFound(f"{what}: not found{suffix}")
    if status == 401:
        return AuthError(f"{what}: unauthorized{suffix}")
    if status == 403:
        return AuthError(f"{what}: access denied (403 Forbidden){suffix}")
    if status == 429:
        return TooManyRequests(f"{what}: too many requests (429), even after retries{suffix}",
                               hint="the registry rate-limits this client; try again later")
    if 500 <= status < 600:
        return RegistryError(f"{what}: registry error {status} {reason}{suffix}")
    return RegistryError(f"{what}: unexpected {status} {reason}{suffix}")


def parse_registry_errors(body: bytes) -> list[dict]:
    try:
        data = json.loads(body)
    except ValueError:
        return []
    errs = data.get("errors") if isinstance(data, dict) else None
    return [e for e in errs if isinstance(e, dict)] if isinstance(errs, list) else []
