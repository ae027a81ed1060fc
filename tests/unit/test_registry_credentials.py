"""~/.docker/config.json: auths, credHelpers, credsStore, $DOCKER_CONFIG, login/logout files."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from core.registry import credentials
from core.registry.credentials import CredentialError
from core.registry.hosts import normalize_registry


@pytest.fixture
def dcfg(tmp_path, monkeypatch):
    d = tmp_path / "docker"
    d.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    return d


def write(dcfg, data):
    (dcfg / "config.json").write_text(json.dumps(data))


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_respects_docker_config_env(dcfg):
    assert credentials.config_path() == str(dcfg / "config.json")


def test_no_file_means_no_credentials(dcfg):
    assert credentials.get("docker.io") is None


def test_auths_entry_by_host_and_url_keys(dcfg):
    write(dcfg, {"auths": {
        "https://index.docker.io/v1/": {"auth": b64("hubuser:hubpw")},
        "https://reg.example:5000/v1/": {"auth": b64("u:p:with:colons")},
        "other.example": {"username": "x", "password": "y"},
    }})
    c = credentials.get("docker.io")
    assert (c.username, c.password) == ("hubuser", "hubpw")
    assert credentials.get("index.docker.io").username == "hubuser"
    c = credentials.get("reg.example:5000")
    assert (c.username, c.password) == ("u", "p:with:colons")
    assert credentials.get("other.example").password == "y"
    assert credentials.get("nowhere.example") is None


def test_identity_token(dcfg):
    write(dcfg, {"auths": {"reg.example": {"auth": b64("u:"), "identitytoken": "rt-123"}}})
    c = credentials.get("reg.example")
    assert c.identity_token == "rt-123" and c.username == "u"


def test_bad_json_is_a_clear_error(dcfg):
    (dcfg / "config.json").write_text("{not json")
    with pytest.raises(CredentialError, match="not valid JSON"):
        credentials.get("docker.io")


def test_store_writes_base64_keeps_other_keys_mode_0600(dcfg):
    write(dcfg, {"psFormat": "table {{.ID}}", "auths": {"keep.example": {"auth": b64("k:v")}}})
    where = credentials.store("docker.io", "me", "s3cret")
    assert where == str(dcfg / "config.json")
    data = json.loads((dcfg / "config.json").read_text())
    assert data["psFormat"] == "table {{.ID}}"
    assert data["auths"]["keep.example"] == {"auth": b64("k:v")}
    assert data["auths"]["https://index.docker.io/v1/"] == {"auth": b64("me:s3cret")}
    assert stat.S_IMODE(os.stat(dcfg / "config.json").st_mode) == 0o600
    assert credentials.get("docker.io").password == "s3cret"


def test_store_replaces_url_style_key(dcfg):
    write(dcfg, {"auths": {"https://reg.example/v1/": {"auth": b64("old:old")}}})
    credentials.store("reg.example", "new", "new")
    auths = json.loads((dcfg / "config.json").read_text())["auths"]
    assert list(auths) == ["reg.example"]


def test_erase(dcfg):
    write(dcfg, {"auths": {"reg.example": {"auth": b64("a:b")}, "keep.example": {"auth": b64("c:d")}}})
    assert credentials.erase("reg.example") is True
    assert credentials.erase("reg.example") is False
    auths = json.loads((dcfg / "config.json").read_text())["auths"]
    assert list(auths) == ["keep.example"]


def test_store_creates_the_directory(tmp_path, monkeypatch):
    d = tmp_path / "fresh" / "docker"
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    credentials.store("reg.example", "u", "p")
    assert json.loads((d / "config.json").read_text())["auths"]["reg.example"]["auth"] == b64("u:p")


HELPER = r"""#!/bin/sh
# a fake docker-credential helper keeping its secrets in $STORE_DIR
action="$1"
case "$action" in
get)
    read server
    f="$STORE_DIR/$(echo "$server" | tr '/:' '__')"
    if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store)
    payload=$(cat)
    server=$(echo "$payload" | sed 's/.*"ServerURL": *"\([^"]*\)".*/\1/')
    user=$(echo "$payload" | sed 's/.*"Username": *"\([^"]*\)".*/\1/')
    secret=$(echo "$payload" | sed 's/.*"Secret": *"\([^"]*\)".*/\1/')
    f="$STORE_DIR/$(echo "$server" | tr '/:' '__')"
    printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}' "$server" "$user" "$secret" > "$f" ;;
erase)
    read server
    f="$STORE_DIR/$(echo "$server" | tr '/:' '__')"
    if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
esac
"""


@pytest.fixture
def helper(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    store = tmp_path / "helper-store"
    store.mkdir()
    for name in ("docker-credential-fake", "docker-credential-other"):
        p = bindir / name
        p.write_text(HELPER)
        p.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("STORE_DIR", str(store))
    return store


def test_creds_store_helper_roundtrip(dcfg, helper):
    write(dcfg, {"credsStore": "fake"})
    assert credentials.get("reg.example:5000") is None
    where = credentials.store("reg.example:5000", "hu", "hp")
    assert "docker-credential-fake" in where
    c = credentials.get("reg.example:5000")
    assert (c.username, c.password, c.source) == ("hu", "hp", "helper:fake")
    # the secret is not in config.json
    assert "hp" not in (dcfg / "config.json").read_text()
    assert credentials.erase("reg.example:5000") is True
    assert credentials.get("reg.example:5000") is None


def test_cred_helpers_win_over_creds_store_and_auths(dcfg, helper):
    (helper / "reg.example").write_text(json.dumps({"ServerURL": "reg.example", "Username": "from-other",
                                                    "Secret": "x"}))
    write(dcfg, {"credsStore": "fake", "credHelpers": {"reg.example": "other"},
                 "auths": {"reg.example": {"auth": b64("from-file:y")}}})
    assert credentials.get("reg.example").username == "from-other"


def test_helper_token_username_means_identity_token(dcfg, helper):
    (helper / "reg.example").write_text(json.dumps({"ServerURL": "reg.example", "Username": "<token>",
                                                    "Secret": "refresh-me"}))
    write(dcfg, {"credsStore": "fake"})
    c = credentials.get("reg.example")
    assert c.identity_token == "refresh-me" and not c.username


def test_docker_hub_helper_server_url(dcfg, helper):
    write(dcfg, {"credsStore": "fake"})
    credentials.store("docker.io", "u", "p")
    assert (helper / "https___index.docker.io_v1_").exists()


def test_missing_helper_is_a_clear_error(dcfg):
    write(dcfg, {"credsStore": "does-not-exist"})
    with pytest.raises(CredentialError, match="docker-credential-does-not-exist not found"):
        credentials.get("reg.example")


def test_helper_name_cannot_be_a_path(dcfg):
    write(dcfg, {"credsStore": "../../bin/sh"})
    with pytest.raises(CredentialError, match="invalid credential helper"):
        credentials.get("reg.example")


@pytest.mark.parametrize("typed,norm", [
    (None, "docker.io"), ("docker.io", "docker.io"), ("index.docker.io", "docker.io"),
    ("https://index.docker.io/v1/", "docker.io"), ("registry-1.docker.io", "docker.io"),
    ("http://reg.example:5000/", "reg.example:5000"), ("reg.example:5000", "reg.example:5000"),
])
def test_normalize_registry(typed, norm):
    assert normalize_registry(typed) == norm
