"""Registry credentials in Docker's ``config.json``: read, store, erase.

The file is ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``. For a registry
host the order is docker/cli's:

1. ``credHelpers[host]``: run ``docker-credential-<helper> get`` with the server URL on stdin;
2. ``credsStore``: the same with the default helper;
3. ``auths[key].auth``: base64 of ``user:password`` (also ``identitytoken``).

Docker Hub's key is ``https://index.docker.io/v1/``; other registries are keyed by
``host[:port]``, and URL-ish keys (``https://host/v1/``) are matched by host too.
A username of ``<token>`` from a helper means the secret is an identity (refresh) token.

``login`` stores where ``get`` would look first: the helper configured for the host
if there is one, else ``auths`` in the file (written atomically, mode 0600, every other
key of the file kept as it was).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import RegistryError
from ..fsutil import atomic_write
from .hosts import DOCKER_HUB_AUTH_KEY, DOCKER_HUB_DOMAIN, normalize_registry

HELPER_TIMEOUT = 30.0
MAX_CONFIG_BYTES = 4 << 20


@dataclass(frozen=True)
class Credential:
    """A registry login, and where it was found."""
    username: str = ""
    password: str = ""
    identity_token: str = ""   # OAuth refresh token, used with the token endpoint
    source: str = ""           # "auths", "credHelpers:<x>", "credsStore:<x>"

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token)


class CredentialError(RegistryError):
    """config.json or a credential helper failed."""


def config_dir() -> str:
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def config_path() -> str:
    return os.path.join(config_dir(), "config.json")


def auth_key(registry: str) -> str:
    """The key under ``auths`` (and the ServerURL for helpers) for a registry domain."""
    reg = normalize_registry(registry)
    return DOCKER_HUB_AUTH_KEY if reg == DOCKER_HUB_DOMAIN else reg


def load_config(path: str | None = None) -> dict:
    path = path or config_path()
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CredentialError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise CredentialError(f"{path} is too large")
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise CredentialError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CredentialError(f"{path} is not a JSON object")
    return data


def _save_config(data: dict, path: str | None = None) -> None:
    path = path or config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    atomic_write(path, (json.dumps(data, indent="\t") + "\n").encode(), mode=0o600)


def _matching_auth_entry(auths: dict, registry: str) -> tuple[str, dict] | None:
    want = normalize_registry(registry)
    key = auth_key(registry)
    if isinstance(auths.get(key), dict):
        return key, auths[key]
    for k, v in auths.items():
        if isinstance(v, dict) and normalize_registry(k) == want:
            return k, v
    return None


def _decode_auth_entry(entry: dict, key: str) -> Credential | None:
    user, password = entry.get("username") or "", entry.get("password") or ""
    encoded = entry.get("auth")
    if encoded:
        try:
            decoded = base64.b64decode(encoded, validate=False).decode()
        except (ValueError, UnicodeDecodeError):
            raise CredentialError(f"invalid auth entry for {key} in {config_path()}") from None
        if ":" not in decoded:
            raise CredentialError(f"invalid auth entry for {key} in {config_path()}")
        user, _, password = decoded.partition(":")
    token = entry.get("identitytoken") or ""
    if not (user or password or token):
        return None
    return Credential(user, password, token, source="auths")


# --- credential helpers ---------------------------------------------------------------
def _helper_binary(helper: str) -> str:
    if not helper or "/" in helper or helper.startswith("."):
        raise CredentialError(f"invalid credential helper name {helper!r}")
    name = f"docker-credential-{helper}"
    path = shutil.which(name)
    if path is None:
        raise CredentialError(f"credential helper {name} not found in $PATH")
    return path


def _run_helper(helper: str, action: str, stdin: str, *, not_found_ok: bool = True) -> str | None:
    """Run ``docker-credential-<helper> <action>``: its stdout, or None when it answers
    that it has no credentials (with ``not_found_ok``); any other failure is a
    CredentialError."""
    binary = _helper_binary(helper)
    try:
        p = subprocess.run([binary, action], input=stdin, capture_output=True, text=True,
                           timeout=HELPER_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise CredentialError(f"credential helper {helper} timed out ({action})") from None
    except OSError as exc:
        raise CredentialError(f"credential helper {helper} failed: {exc.strerror}") from None
    if p.returncode == 0:
        return p.stdout
    msg = p.stdout.strip() or p.stderr.strip()
    if not_found_ok and "credentials not found" in msg.lower():
        return None
    raise CredentialError(f"credential helper {helper} {action} failed: "
                          f"{msg.splitlines()[0] if msg else p.returncode}")


def helper_get(helper: str, server: str) -> Credential | None:
    out = _run_helper(helper, "get", server)
    if out is None:
        return None
    try:
        data = json.loads(out)
        user, secret = data.get("Username") or "", data.get("Secret") or ""
    except (ValueError, AttributeError):
        raise CredentialError(f"credential helper {helper} returned invalid JSON") from None
    if user == "<token>":
        return Credential("", "", secret, source=f"helper:{helper}")
    if not (user or secret):
        return None
    return Credential(user, secret, "", source=f"helper:{helper}")


def helper_store(helper: str, server: str, username: str, secret: str) -> None:
    payload = json.dumps({"ServerURL": server, "Username": username, "Secret": secret})
    _run_helper(helper, "store", payload, not_found_ok=False)


def helper_erase(helper: str, server: str) -> bool:
    return _run_helper(helper, "erase", server) is not None


def _helper_for(data: dict, registry: str) -> str | None:
    helpers = data.get("credHelpers")
    if isinstance(helpers, dict):
        want = normalize_registry(registry)
        for k, v in helpers.items():
            if normalize_registry(k) == want and isinstance(v, str) and v:
                return v
    store = data.get("credsStore")
    return store if isinstance(store, str) and store else None


# --- public ---------------------------------------------------------------------------
def get(registry: str) -> Credential | None:
    """Credentials for a registry domain (``docker.io``, ``host:5000``), or None."""
    data = load_config()
    key = auth_key(registry)
    helper = _helper_for(data, registry)
    if helper:
        cred = helper_get(helper, key)
        if cred is not None:
            return cred
    auths = data.get("auths")
    if isinstance(auths, dict):
        m = _matching_auth_entry(auths, registry)
        if m is not None:
            return _decode_auth_entry(m[1], m[0])
    return None


def store(registry: str, username: str, password: str) -> str:
    """Save credentials; returns where they went (``config.json`` path or the helper)."""
    data = load_config()
    key = auth_key(registry)
    helper = _helper_for(data, registry)
    if helper:
        helper_store(helper, key, username, password)
        auths = data.setdefault("auths", {})
        # Docker keeps an empty entry so `docker info` lists the registry
        if isinstance(auths, dict) and key not in auths:
            auths[key] = {}
            _save_config(data)
        return f"credential helper docker-credential-{helper}"
    auths = data.get("auths")
    if not isinstance(auths, dict):
        auths = data["auths"] = {}
    m = _matching_auth_entry(auths, registry)
    if m is not None and m[0] != key:
        del auths[m[0]]
    auths[key] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    _save_config(data)
    return config_path()


def erase(registry: str) -> bool:
    """Remove stored credentials; False when there were none."""
    data = load_config()
    key = auth_key(registry)
    removed = False
    helper = _helper_for(data, registry)
    if helper:
        removed = helper_erase(helper, key) or removed
    auths = data.get("auths")
    if isinstance(auths, dict):
        popped = False
        while True:
            m = _matching_auth_entry(auths, registry)
            if m is None:
                break
            entry = auths.pop(m[0])
            popped = True
            removed = removed or bool(entry)
        if popped:
            _save_config(data)
    return removed
