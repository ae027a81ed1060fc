"""Which registry host serves a reference, over which scheme, with which TLS settings.

Rules (after Docker and containerd):

* ``docker.io`` (and ``index.docker.io``) is served by ``registry-1.docker.io``; credentials
  for it are filed under ``https://index.docker.io/v1/`` in ``~/.docker/config.json``.
* Loopback registries (``localhost``, ``127.0.0.0/8``, ``::1``) are insecure by default
  (as in Docker; containerd does the same), and so are registries listed in
  ``registries.toml`` / ``registries.json`` in the Nutshell config dir or named with the
  ``--tls-verify=false`` flag: they are tried over HTTPS *without* certificate
  verification first and fall back to plain HTTP when the server does not speak TLS at
  all (the answer is remembered for the life of the process).
* Everything else: HTTPS verified against the system CAs plus any ``*.crt`` found in
  ``certs.d/<host[:port]>/`` (``/etc/docker``, ``/etc/containers``,
  ``~/.config/containers``); ``*.cert`` + ``*.key`` pairs there are client certificates.
"""

from __future__ import annotations

import ipaddress
import json
import os
import ssl
import threading
from dataclasses import dataclass, field

DOCKER_HUB_DOMAIN = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io",
                "registry.hub.docker.com", "https://index.docker.io/v1/",
                "https://index.docker.io/v1", "index.docker.io/v1"}

CONFIG_FILES = ("registries.toml", "registries.json")


def normalize_registry(name: str | None) -> str:
    """``docker.io``-style domain for what a user typed after ``login``/``logout``.

    ``https://index.docker.io/v1/`` -> ``docker.io``; ``http://host:5000/`` -> ``host:5000``.
    """
    if not name:
        return DOCKER_HUB_DOMAIN
    n = name.strip()
    if n in _HUB_ALIASES:
        return DOCKER_HUB_DOMAIN
    for prefix in ("https://", "http://"):
        if n.startswith(prefix):
            n = n[len(prefix):]
    n = n.split("/", 1)[0]
    if n in _HUB_ALIASES:
        return DOCKER_HUB_DOMAIN
    return n


def api_host(domain: str) -> str:
    """The host:port that serves ``/v2/`` for a reference's domain."""
    return DOCKER_HUB_API_HOST if normalize_registry(domain) == DOCKER_HUB_DOMAIN else domain


def split_host_port(host: str) -> tuple[str, int | None]:
    """``h:1`` -> (h, 1); ``[::1]:5000`` -> (::1, 5000); ``h`` -> (h, None)."""
    if host.startswith("["):
        end = host.find("]")
        name = host[1:end]
        rest = host[end + 1:]
        return name, (int(rest[1:]) if rest.startswith(":") else None)
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name, int(port)
    return host, None


def is_loopback(host: str) -> bool:
    name, _ = split_host_port(host)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _load_insecure_list(config_dir: str) -> list[str]:
    """Insecure registries from ``registries.toml`` or ``registries.json``.

    TOML, either form::

        insecure-registries = ["myreg:5000", "10.0.0.0/8"]

        [[registry]]               # containers-registries.conf style
        location = "myreg:5000"
        insecure = true

    JSON: ``{"insecure-registries": ["myreg:5000"]}`` (Docker daemon.json's key).
    """
    out: list[str] = []
    for fname in CONFIG_FILES:
        path = os.path.join(config_dir, fname)
        try:
            with open(path, "rb") as f:
                raw = f.read(1 << 20)
        except OSError:
            continue
        try:
            if fname.endswith(".toml"):
                import tomllib

                data = tomllib.loads(raw.decode())
            else:
                data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            from ..errors import UsageError

            raise UsageError(f"invalid registry configuration {path}: {exc}") from None
        if not isinstance(data, dict):
            continue
        for key in ("insecure-registries", "insecure_registries", "insecure"):
            v = data.get(key)
            if isinstance(v, list):
                out.extend(str(x) for x in v)
        regs = data.get("registry")
        if isinstance(regs, list):
            for r in regs:
                if isinstance(r, dict) and r.get("insecure") and r.get("location"):
                    out.append(str(r["location"]))
    return out


def _matches(host: str, entry: str) -> bool:
    name, _ = split_host_port(host)
    entry = entry.strip()
    if "/" in entry and "://" not in entry:  # CIDR
        try:
            net = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            net = None
        if net is not None:
            try:
                return ipaddress.ip_address(name) in net
            except ValueError:
                return False
    entry = normalize_registry(entry)
    if host == entry:
        return True
    return name == entry  # an entry without a port covers every port of that host


@dataclass
class HostSettings:
    """How to talk to one registry host."""

    host: str                       # host[:port] that serves /v2/
    scheme: str = "https"           # first scheme to try
    verify_tls: bool = True
    http_fallback: bool = False     # insecure: if TLS fails outright, try plain HTTP


@dataclass
class RegistryConfig:
    """Per-process registry settings: insecure hosts, certificate dirs, retry/timeouts."""

    config_dir: str
    insecure: list[str] = field(default_factory=list)
    certs_dirs: tuple[str, ...] = ()
    timeout: float = 60.0
    _ctx_cache: dict = field(default_factory=dict, repr=False)
    _scheme_cache: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, config_dir: str) -> RegistryConfig:
        home = os.path.expanduser("~")
        certs = os.environ.get("NUTSHELL_CERTS_DIR")
        dirs = tuple(d for d in (
            certs,
            os.path.join(config_dir, "certs.d"),
            os.path.join(home, ".config", "containers", "certs.d"),
            "/etc/containers/certs.d",
            "/etc/docker/certs.d",
        ) if d)
        return cls(config_dir=config_dir, insecure=_load_insecure_list(config_dir), certs_dirs=dirs)

    def is_insecure(self, host: str) -> bool:
        return any(_matches(host, e) for e in self.insecure)

    def settings(self, host: str, insecure: bool = False) -> HostSettings:
        if is_loopback(host) or insecure or self.is_insecure(host):
            scheme = self._scheme_cache.get(host, "https")
            return HostSettings(host, scheme=scheme, verify_tls=False, http_fallback=True)
        return HostSettings(host, scheme="https", verify_tls=True)

    def remember_scheme(self, host: str, scheme: str) -> None:
        """An insecure/loopback host answered plain HTTP: skip the TLS attempt next time."""
        with self._lock:
            self._scheme_cache[host] = scheme

    def ssl_context(self, host: str, verify: bool) -> ssl.SSLContext:
        key = (host, verify)
        with self._lock:
            ctx = self._ctx_cache.get(key)
            if ctx is not None:
                return ctx
            ctx = ssl.create_default_context()
            if not verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            for base in self.certs_dirs:
                d = os.path.join(base, host)
                if not os.path.isdir(d):
                    continue
                for name in sorted(os.listdir(d)):
                    p = os.path.join(d, name)
                    if name.endswith(".crt") and verify:
                        ctx.load_verify_locations(cafile=p)
                    elif name.endswith(".cert"):
                        keyfile = p[: -len(".cert")] + ".key"
                        if os.path.exists(keyfile):
                            ctx.load_cert_chain(p, keyfile)
            self._ctx_cache[key] = ctx
            return ctx
