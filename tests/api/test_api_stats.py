"""``stats`` (streamed and one-shot) in Docker's shape, and the container views the CLI
reads through the API: ``top``, ``diff``, ``export``."""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile

import pytest

from tests.api.conftest import DOCKER_CLI
from tests.api.test_api_exec import raw

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def busy(api):
    """A container that burns CPU and holds some memory."""
    api.docker("run", "-d", "--name", "statsbox", "-m", "64m", "busybox", "sh", "-c",
               "head -c 8000000 /dev/zero > /dev/shm/x; while :; do :; done", check=True)
    cid = api.docker("inspect", "-f", "{{.Id}}", "statsbox", check=True).stdout.decode().strip()
    yield cid
    api.docker("rm", "-f", "statsbox")



def _percent(s: str) -> float:
    return float(s.rstrip("%"))


def test_stats_no_stream_prints_sane_numbers(docker, busy):
    p = docker("stats", "--no-stream", "--format",
               "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.PIDs}}|{{.NetIO}}|{{.BlockIO}}",
               "statsbox", check=True)
    name, cpu, mem, memperc, pids, net, block = p.stdout.decode().strip().split("|")
    assert name == "statsbox"
    assert 20.0 <= _percent(cpu) <= 100.0 * 64, cpu          # a busy loop: most of a CPU
    usage, limit = (x.strip() for x in mem.split("/"))
    assert limit == "64MiB", mem
    assert re.fullmatch(r"[\d.]+(B|KiB|MiB)", usage), mem
    assert 0.0 < _percent(memperc) <= 100.0
    assert int(pids) >= 1
    assert "/" in net and "/" in block


def test_stats_all_and_table(docker, busy):
    p = docker("stats", "--no-stream", "--all", check=True)
    lines = p.stdout.decode().splitlines()
    assert lines[0].split()[:2] == ["CONTAINER", "ID"]
    assert any("statsbox" in line for line in lines[1:])


def test_stats_stream_one_per_second(api, busy):
    proc = subprocess.Popen(["curl", "-sN", "--unix-socket", api.socket,
                             f"http://x/v1.41/containers/{busy}/stats"],
                            stdout=subprocess.PIPE)
    try:
        first = json.loads(proc.stdout.readline())
        second = json.loads(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()
    assert first["id"] == busy and first["name"] == "/statsbox"
    assert first["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert second["precpu_stats"]["cpu_usage"]["total_usage"] == first["cpu_stats"]["cpu_usage"]["total_usage"]
    assert second["cpu_stats"]["system_cpu_usage"] > first["cpu_stats"]["system_cpu_usage"]
    assert second["preread"] == first["read"]
    # the server serves on after the client left mid-stream
    assert api.docker("inspect", "-f", "{{.State.Running}}", "statsbox").stdout == b"true\n"


def test_dockerpy_stats(client, busy):
    c = client.containers.get(busy)
    s = c.stats(stream=False)
    assert s["name"] == "/statsbox" and s["id"] == busy
    cpu, pre = s["cpu_stats"], s["precpu_stats"]
    assert cpu["online_cpus"] >= 1 and cpu["system_cpu_usage"] > pre["system_cpu_usage"] > 0
    assert cpu["cpu_usage"]["total_usage"] > pre["cpu_usage"]["total_usage"]
    assert cpu["cpu_usage"]["usage_in_usermode"] + cpu["cpu_usage"]["usage_in_kernelmode"] > 0
    assert s["memory_stats"]["limit"] == 64 * 1024 * 1024
    assert s["memory_stats"]["usage"] > 0 and "inactive_file" in s["memory_stats"]["stats"]
    assert s["pids_stats"]["current"] >= 1
    assert s["read"] != "0001-01-01T00:00:00Z"
    one = c.stats(stream=False, one_shot=True)        # at once, without the priming sample
    assert one["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert one["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    gen = c.stats(decode=True)
    assert next(gen)["id"] == busy
    gen.close()


def test_stats_of_stopped_and_missing(api, docker):
    docker("create", "--name", "statsidle", "busybox", "true", check=True)
    try:
        status, data = raw(api, "GET", "/v1.41/containers/statsidle/stats?stream=false")
        assert status == 200
        s = json.loads(data)
        assert s["name"] == "/statsidle" and s["read"] == "0001-01-01T00:00:00Z"
        assert s["memory_stats"] == {} and s["cpu_stats"]["cpu_usage"]["total_usage"] == 0
        p = docker("stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}}", "statsidle", check=True)
        assert p.stdout == b"statsidle 0.00%\n"
    finally:
        docker("rm", "statsidle")
    status, data = raw(api, "GET", "/v1.41/containers/nosuch/stats?stream=false")
    assert status == 404 and "message" in json.loads(data)


def test_top(docker, busy, client):
    p = docker("top", "statsbox", check=True)
    lines = p.stdout.decode().splitlines()
    assert "PID" in lines[0] and "CMD" in lines[0]
    assert any("while" in line or "sh -c" in line for line in lines[1:])
    top = client.containers.get(busy).top()
    assert "PID" in top["Titles"] and top["Processes"]
    # ps arguments go to the host's ps, as with dockerd; only the container's rows come back
    p = docker("top", "statsbox", "-o", "pid,comm", check=True)
    lines = p.stdout.decode().splitlines()
    assert lines[0].split() == ["PID", "COMMAND"]
    assert {line.split()[1] for line in lines[1:]} == {"sh"}
    p = docker("top", "statsbox", "aux", check=True)
    assert p.stdout.decode().splitlines()[0].split()[:2] == ["USER", "PID"]
    top = client.containers.get(busy).top(ps_args="-o pid,args")
    assert top["Titles"] == ["PID", "COMMAND"]
    assert all(not row[1].startswith("python") for row in top["Processes"])
    p = docker("top", "statsbox", "-o", "user=PID")           # dockerd refuses this
    assert p.returncode != 0 and b"is not allowed" in p.stderr


def test_diff_and_export(docker, tmp_path):
    docker("run", "--name", "diffbox", "busybox", "sh", "-c",
           "echo new > /newfile; rm /etc/group; echo x >> /etc/passwd", check=True)
    try:
        p = docker("diff", "diffbox", check=True)
        changes = set(p.stdout.decode().splitlines())
        assert {"A /newfile", "D /etc/group", "C /etc/passwd", "C /etc"} <= changes, changes
        out = tmp_path / "export.tar"
        docker("export", "-o", str(out), "diffbox", check=True)
        with tarfile.open(out) as tf:
            names = set(tf.getnames())
            assert "newfile" in names or "./newfile" in names
            assert not any(n.rstrip("/").endswith("etc/group") for n in names)
            f = tf.extractfile("newfile" if "newfile" in names else "./newfile")
            assert f.read() == b"new\n"
        stdout = subprocess.run([DOCKER_CLI, "export", "diffbox"], capture_output=True,
                                env=docker.__self__.client_env, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(stdout)) as tf:
            assert len(tf.getnames()) == len(names)
    finally:
        docker("rm", "diffbox")


def test_stats_streaming_cli(api, busy):
    """``docker stats`` without --no-stream redraws once a second from the stream."""
    proc = subprocess.Popen([DOCKER_CLI, "stats", "--format", "{{.Name}} {{.CPUPerc}}", "statsbox"],
                            stdout=subprocess.PIPE, env=api.client_env)
    try:
        import time

        time.sleep(3.5)
    finally:
        proc.kill()
        out = proc.communicate()[0]
    frames = re.findall(rb"statsbox (\d+\.\d+)%", out)
    assert len(frames) >= 2, out
    assert any(float(f) > 10 for f in frames[1:]), frames
