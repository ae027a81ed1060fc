"""docker-py (the ``docker`` package) driving Nutshell's containers through the API socket."""

from __future__ import annotations

import io
import tarfile

import docker
import pytest

from tests.waiting import wait_for

pytestmark = pytest.mark.integration



def test_ping_version_info(client):
    assert client.ping() is True
    v = client.version()
    assert v["ApiVersion"] == "1.50" and v["MinAPIVersion"] == "1.24"
    info = client.info()
    assert info["OSType"] == "linux" and info["NCPU"] >= 1 and info["Images"] >= 1


def test_run_foreground_output_and_exit_code(client):
    out = client.containers.run("busybox", ["sh", "-c", "echo hello; echo oops >&2"], remove=True,
                                stderr=True)
    assert b"hello" in out
    with pytest.raises(docker.errors.ContainerError) as err:
        client.containers.run("busybox", ["sh", "-c", "exit 3"], remove=True)
    assert err.value.exit_status == 3
    with pytest.raises(docker.errors.ImageNotFound):       # create only: no pull (offline)
        client.containers.create("nosuchimage:1", "true")


def test_lifecycle_labels_filters_and_views(client):
    c = client.containers.run("busybox", ["sh", "-c", "echo started; sleep 300"], detach=True,
                              name="pyc", labels={"tier": "test", "k": "v"}, environment=["A=1"],
                              mem_limit="64m", tty=False)
    try:
        assert wait_for(lambda: b"started" in c.logs(), timeout=10)
        c.reload()
        assert c.status == "running" and c.name == "pyc" and c.labels["tier"] == "test"
        assert "A=1" in c.attrs["Config"]["Env"] and c.attrs["HostConfig"]["Memory"] == 64 << 20
        assert [x.id for x in client.containers.list(filters={"label": "tier=test"})] == [c.id]
        assert client.containers.list(filters={"label": "tier=prod"}) == []
        assert [x.id for x in client.containers.list(filters={"name": "pyc"})] == [c.id]
        top = c.top()
        assert any("sleep" in " ".join(p) for p in top["Processes"])
        c.pause()
        c.reload()
        assert c.status == "paused"
        c.unpause()
        c.rename("pyc2")
        c.reload()
        assert c.name == "pyc2"
        c.update(mem_limit="128m", memswap_limit="256m")
        c.reload()
        assert c.attrs["HostConfig"]["Memory"] == 128 << 20
        c.stop(timeout=1)
        c.reload()
        assert c.status == "exited"
        assert c.wait()["StatusCode"] in (137, 143)
        assert client.containers.list(filters={"status": "exited", "label": "tier=test"})[0].id == c.id
    finally:
        c.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("pyc2")


def test_conflicts_and_errors(client, api):
    c = client.containers.run("busybox", ["sleep", "300"], detach=True, name="busy")
    try:
        with pytest.raises(docker.errors.APIError) as err:
            c.remove()
        assert err.value.status_code == 409
        with pytest.raises(docker.errors.APIError) as err:
            client.containers.run("busybox", "true", name="busy", detach=True)
        assert err.value.status_code == 409
        with pytest.raises(docker.errors.NotFound):
            client.api.kill("nosuchcontainer")
    finally:
        c.remove(force=True)


def test_attach_socket_and_logs_stream(client):
    c = client.containers.create("busybox", ["sh", "-c", "read line; echo got $line; exit 5"],
                                 stdin_open=True)
    try:
        sock = client.api.attach_socket(c.id, params={"stdin": 1, "stdout": 1, "stream": 1})
        c.start()
        sock._sock.sendall(b"abc\n")
        data = b""
        while b"got abc" not in data:
            chunk = sock._sock.recv(4096)
            if not chunk:
                break
            data += chunk
        assert b"got abc" in data
        assert c.wait()["StatusCode"] == 5
        assert b"got abc" in c.logs()
    finally:
        c.remove(force=True)


def test_changes_and_export(client):
    c = client.containers.run("busybox", ["sh", "-c", "echo x > /newfile; rm /etc/hostname.bak 2>/dev/null; true"],
                              detach=True)
    try:
        c.wait()
        changes = {ch["Path"]: ch["Kind"] for ch in c.diff()}
        assert changes.get("/newfile") == 1
        data = b"".join(c.export())
        names = tarfile.open(fileobj=io.BytesIO(data)).getnames()
        assert "newfile" in [n.lstrip("./") for n in names] and any(n.endswith("bin/sh") for n in names)
    finally:
        c.remove(force=True)


def test_prune(client):
    c = client.containers.run("busybox", "true", detach=True, labels={"prune": "me"})
    c.wait()
    report = client.containers.prune(filters={"label": "prune=me"})
    assert c.id in report["ContainersDeleted"]
