"""Fixtures of the integration tests shared by several modules."""

import contextlib

import pytest

from tests.integration.netenv import Env, Host
from tests.registry_servers import fast_retry


@pytest.fixture
def host(tmp_path, busybox_rootfs, monkeypatch):
    monkeypatch.setenv("NUTSHELL_RUNTIME_DIR", str(tmp_path / "run"))
    with contextlib.closing(Host(tmp_path, busybox_rootfs)) as h:
        yield h


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("NUTSHELL_RUNTIME_DIR", str(tmp_path / "run"))
    with contextlib.closing(Env(tmp_path)) as e:
        yield e


@pytest.fixture
def engine(root, registry_env):
    """An Engine on a fresh root with short registry retry delays."""
    from core.engine import Engine

    e = Engine(root)
    e.registry_retry = fast_retry()
    return e
