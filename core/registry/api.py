"""Engine methods for pull, push, login, logout.

``ensure_image(ref, policy, progress)`` is what ``run``/``create`` call for
``--pull missing|always|never``.
"""

from __future__ import annotations

from _thread import _local as thread_local  # threading.local, without threading.py
from contextlib import contextmanager

from ..enginebase import EngineBase
from ..errors import InvalidReference, NotFound, NutshellError, UsageError
from ..reference import parse

TYPE_CHECKING = False   # typing is not imported at run time: ~5 ms of every `run`
if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..events import ProgressFn
    from ..store.image import Image
    from ..types import LoginResult, LogoutResult
    from .client import RegistryClient, RetryPolicy
    from .credentials import Credential
    from .hosts import RegistryConfig

PULL_POLICIES = ("missing", "always", "never")

#: credentials given for the work of one thread (``registry_auth``), by registry domain
_given = thread_local()


class RegistryOps(EngineBase):
    """Mixed into core.engine.Engine; `self.paths` and `self.store` are available."""

    #: retry/backoff settings for every registry client this engine makes (tests shorten them)
    registry_retry: RetryPolicy | None = None
    #: layers fetched (pull) or uploaded (push) at once
    registry_max_parallel: int = 3

    # --- plumbing -------------------------------------------------------------------
    def registry_config(self) -> RegistryConfig:
        cfg = getattr(self, "_registry_cfg", None)
        if cfg is None:
            from .hosts import RegistryConfig

            cfg = RegistryConfig.load(self.paths.config)
            self._registry_cfg = cfg
        return cfg

    def registry_client(self, domain: str, insecure: bool = False,
                        credential=True) -> RegistryClient:
        """A client for one registry (credentials from config.json unless given)."""
        from .client import RegistryClient  # http.client/ssl only when a registry is used
        from .hosts import normalize_registry

        given = getattr(_given, "creds", None)
        if credential is True and given is not None:
            credential = given.get(normalize_registry(domain)) or None
        return RegistryClient(domain, config=self.registry_config(), credential=credential,
                              insecure=insecure, retry=self.registry_retry)

    @contextmanager
    def registry_auth(self, creds: dict[str, Credential]) -> Iterator[None]:
        """Registry calls this thread makes inside the block (pull, push, a build's FROM)
        use ``creds`` ({registry domain: Credential}) instead of config.json and the
        credential helpers; a registry not in ``creds`` is contacted anonymously. This is
        how the API server hands on a client's ``X-Registry-Auth``/``X-Registry-Config``
        (dockerd never uses credentials of its own)."""
        from .hosts import normalize_registry

        old = getattr(_given, "creds", None)
        _given.creds = {normalize_registry(k): v for k, v in creds.items()}
        try:
            yield
        finally:
            _given.creds = old

    # --- pull -----------------------------------------------------------------------
    def pull(self, ref: str, platform: str | None = None, progress: ProgressFn = None,
             insecure: bool = False) -> Image:
        """Pull an image (``busybox``, ``host:5000/x:tag``, ``name@sha256:...``).

        Returns the store's Image. ``platform`` is ``os/arch[/variant]`` (default: this
        host); ``insecure`` skips TLS verification and allows plain HTTP for this registry.
        """
        from .pull import pull_image

        r = parse(ref)
        client = self.registry_client(r.domain, insecure=insecure)
        try:
            img = pull_image(self.store, self.paths.root, client, r, platform=platform,
                             progress=progress, max_parallel=self.registry_max_parallel)
        finally:
            client.close()
        self._image_event("pull", img, actor_id=r.familiar(), name=r.familiar_name)
        return img

    def registry_tags(self, repository: str, insecure: bool = False) -> list[str]:
        """The tags of a repository in its registry (``busybox``, ``host:5000/app``)."""
        r = parse(repository, default_tag=False)
        client = self.registry_client(r.domain, insecure=insecure)
        try:
            return client.list_tags(r.path)
        finally:
            client.close()

    def ensure_image(self, ref: str, policy: str = "missing", progress: ProgressFn = None,
                     platform: str | None = None) -> Image:
        """The image ``ref`` names, pulling it as ``policy`` says (``run --pull``).

        ``missing``: pull only when it is not stored; ``always``: pull (a registry failure
        is an error, as in Docker); ``never``: never contact a registry.
        """
        if policy not in PULL_POLICIES:
            raise UsageError(f"invalid pull policy {policy!r}: expected one of "
                             + ", ".join(PULL_POLICIES))
        if policy != "always":
            try:
                return self.store.image(ref)
            except NotFound:
                if policy == "never":
                    raise NotFound(f"no such image: {ref}",
                                   hint=f"pull it first (nutshell pull {ref}) or use --pull missing") from None
            except InvalidReference:
                raise
        if ref.startswith("sha256:"):  # an image ID is never pulled
            raise NotFound(f"no such image: {ref}")
        if policy == "missing":
            from ..events import emit

            emit(progress, ref, "Unable to find image locally")
        return self.pull(ref, platform=platform, progress=progress)

    # --- push -----------------------------------------------------------------------
    def push(self, ref: str, dest: str | None = None, progress: ProgressFn = None,
             insecure: bool = False, chunk_size: int | None = None) -> str:
        """Push the stored image ``ref`` to ``dest`` (default: ``ref`` itself). Returns
        the manifest digest. ``chunk_size`` forces chunked PATCH uploads of that size
        for blobs bigger than it (default: one PUT up to 32 MiB, 16 MiB chunks above)."""
        from .push import CHUNK_SIZE, MONOLITHIC_MAX, push_image

        image = self.store.image(ref)
        if dest is None and self.store.tag_of(ref, image) is None and "@" not in ref:
            # found by image ID (or ID prefix): there is no repository to push to
            raise UsageError(f"cannot push {ref}: an image ID has no repository",
                             hint="tag it first (nutshell tag ID host/repo:tag) or give a destination")
        target = dest or ref
        d = parse(target)
        if d.digest and not d.tag:
            raise UsageError(f"cannot push to a digest reference: {target}",
                             hint="push to a tag; the digest follows from the content")
        client = self.registry_client(d.domain, insecure=insecure)
        try:
            digest = push_image(self.store, self.paths.root, client, image, d,
                                progress=progress, max_parallel=max(self.registry_max_parallel, 1),
                                chunk_size=chunk_size or CHUNK_SIZE,
                                monolithic_max=chunk_size if chunk_size else MONOLITHIC_MAX)
        finally:
            client.close()
        self._image_event("push", image, actor_id=d.familiar(), name=d.familiar_name)
        return digest

    # --- login / logout ---------------------------------------------------------------
    def login(self, registry: str | None, username: str, password: str,
              insecure: bool = False, store: bool = True) -> LoginResult:
        """Check the credentials against the registry, then (``store``) store them
        (config.json or the configured credential helper). Returns ``{"Status": "Login
        Succeeded", ...}``; the API server's /auth only checks, as dockerd's does."""
        from . import credentials
        from .auth import AuthError
        from .hosts import normalize_registry

        if not username:
            raise UsageError("login: a username is required")
        if not password:
            raise UsageError("login: a password is required")
        domain = normalize_registry(registry)
        cred = credentials.Credential(username, password)
        client = self.registry_client(domain, insecure=insecure, credential=cred)
        try:
            client.ping()
            ch = client.auth.challenge
            try:
                if ch is not None and ch.scheme == "bearer":
                    client.auth.login_check()
                elif ch is not None:
                    r = client.request("GET", "/v2/")
                    if r.status != 200:
                        raise client.fail(r, f"login to {domain}")
                    r.drain()
            except AuthError as exc:
                raise AuthError(f"login to {domain} failed: unauthorized: incorrect username or password",
                                hint=None) from exc
        finally:
            client.close()
        where = credentials.store(domain, username, password) if store else ""
        return {"Status": "Login Succeeded", "ServerAddress": credentials.auth_key(domain),
                "Stored": where}

    def logout(self, registry: str | None = None) -> LogoutResult:
        """Remove stored credentials. ``{"Removed": bool, "ServerAddress": key}``."""
        from . import credentials
        from .hosts import normalize_registry

        domain = normalize_registry(registry)
        removed = credentials.erase(domain)
        return {"Removed": removed, "ServerAddress": credentials.auth_key(domain)}


def describe_error(exc: BaseException) -> str:
    """One line for an error during pull/push (used by callers that collect errors)."""
    return str(exc) if isinstance(exc, NutshellError) else f"{type(exc).__name__}: {exc}"
