"""testcontainers-python against Nutshell's API socket: a DockerContainer started and
waited for by its log, the way test suites use it with dockerd."""

from __future__ import annotations

import warnings

import pytest

from tests.api.conftest import IMAGE
from tests.api.rawhttp import call

pytestmark = pytest.mark.integration


def test_docker_container_with_wait_for_logs(api, monkeypatch):
    tc_container = pytest.importorskip("testcontainers.core.container")
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy
    from testcontainers.core.waiting_utils import wait_for_logs

    probe = call(api.socket, "GET", f"/v1.41/images/{IMAGE}/json")
    if probe.status == 404 and "page not found" in probe.body.decode():
        pytest.skip("this build has no image endpoints (testcontainers inspects the image)")
    assert probe.status == 200, probe

    monkeypatch.setenv("DOCKER_HOST", "unix://" + api.socket)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.delenv("TESTCONTAINERS_HOST_OVERRIDE", raising=False)
    # Ryuk, testcontainers' reaper of leftover containers, is a container of its own
    # (testcontainers/ryuk from Docker Hub), which cannot be pulled offline: off. The
    # config reads the variable once, so the attribute is set as well.
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", True)

    script = "i=0; while :; do echo \"line $i\"; [ $i = 2 ] && echo ready; i=$((i+1)); sleep 0.2; done"
    container = tc_container.DockerContainer(IMAGE).with_command(["sh", "-c", script]) \
        .with_env("GREETING", "hi").with_name("tc-busybox")
    with container:
        # the classic call (a string predicate; testcontainers 4 deprecates it in favour
        # of the strategy below, which suites still use everywhere)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            waited = wait_for_logs(container, "ready", timeout=30, interval=0.2)
        assert waited < 30
        # the structured one
        wait_for_logs(container, LogMessageWaitStrategy("line 4").with_startup_timeout(30))
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        assert wrapped.status == "running"
        assert "GREETING=hi" in wrapped.attrs["Config"]["Env"]
        # testcontainers labels what it starts (for Ryuk when it is on)
        assert any(k.startswith("org.testcontainers") for k in wrapped.labels)
        out, _ = container.get_logs()
        assert b"line 0\nline 1\nline 2\nready\n" in out
        cid = wrapped.id
    # leaving the with-block stops and removes it
    assert all(c["Id"] != cid for c in api.engine.ps(all=True))
