"""Benchmark: what the Docker Engine API socket costs over the plain CLI.

    sudo .venv/bin/python tests/benchmarks/bench_api.py [--runs 20] [--containers 10]

Prints medians (and min/max) of fresh processes, each run ``--runs`` times:

  * ``docker run --rm busybox true`` and ``docker ps`` (Debian's docker CLI 20.10,
    /usr/bin/docker) against ``nutshell system service``'s socket;
  * ``nutshell run --rm busybox true`` and ``nutshell ps`` directly, the same work
    without the API (the ratios socket/direct are what the socket costs);
  * the docker CLI against dockerd when one is running here (/var/run/docker.sock):
    the same busybox rootfs ``docker import``-ed; that column is skipped otherwise
    (this never starts dockerd);
  * in-process docker-py (no CLI start-up): ``containers.run(remove=True)`` and
    ``containers.list()``, and one ``GET /_ping`` round trip.

``ps`` lists ``--containers`` stopped containers made beforehand (``ps -a``), so it has
something to print. Needs root. Creates and removes its own state root and server.
Not collected by pytest (bench_*.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)

IMAGE = "busybox:latest"
DOCKER_CLI = "/usr/bin/docker"
DOCKERD_SOCKET = "/var/run/docker.sock"
PEER_IMAGE = "localhost/nutshell-bench/busybox:latest"


def timed(argv: list[str], runs: int, env=None) -> list[float] | str:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            return f"exit {p.returncode}: {p.stderr.decode(errors='replace').strip()[:200]}"
        out.append(dt)
    return out


def timed_call(fn, runs: int) -> list[float] | str:
    out = []
    try:
        fn()                                           # warm up
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - reported in the table
        return f"{type(exc).__name__}: {exc}"[:200]
    return out


def med(samples) -> float | None:
    return statistics.median(samples) if isinstance(samples, list) and samples else None


def fmt(samples) -> str:
    if isinstance(samples, str):
        return f"failed ({samples})" if not samples.startswith("skipped") else samples
    m = statistics.median(samples) * 1000
    return f"median {m:8.1f} ms  (min {min(samples) * 1000:.1f}, max {max(samples) * 1000:.1f}, n={len(samples)})"


def ratio(a, b) -> str:
    ma, mb = med(a), med(b)
    return f"{ma / mb:5.2f}x" if ma and mb else "  -  "


def dockerd_running() -> bool:
    if not os.path.exists(DOCKERD_SOCKET):
        return False
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(DOCKERD_SOCKET)
        return True
    except OSError:
        return False
    finally:
        s.close()


def start_server(env: dict, sock: str, log: str) -> subprocess.Popen:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from workbench.cli import main; sys.exit(main())",
             "system", "service", "--socket", sock, "--timeout", "0"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {open(log).read()[-2000:]}")
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(sock)
            return proc
        except OSError:
            time.sleep(0.1)
        finally:
            s.close()
    raise SystemExit("the server did not listen")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--containers", type=int, default=10, help="stopped containers for ps -a")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root")
        return 1
    if not os.path.exists(DOCKER_CLI):
        print(f"needs the docker CLI at {DOCKER_CLI}")
        return 1

    from core.engine import Engine
    from tests.rootfs import make_busybox_rootfs

    tmp = tempfile.mkdtemp(prefix="nutshell-bench-api-")
    root, run = os.path.join(tmp, "root"), os.path.join(tmp, "run")
    sock = os.path.join(tmp, "api.sock")
    rootfs = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
    engine = Engine(root)
    engine.import_image(rootfs, IMAGE, changes=['CMD ["sh"]'])
    venv_py = sys.executable
    nutshell = os.path.join(os.path.dirname(venv_py), "nutshell")
    cli = [nutshell] if os.path.exists(nutshell) else [venv_py, "-m", "workbench"]
    env = dict(os.environ, NUTSHELL_ROOT=root, NUTSHELL_RUNTIME_DIR=run,
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([venv_py, "-m", "compileall", "-q", os.path.join(REPO, "core"),
                    os.path.join(REPO, "workbench")], env=env, stdout=subprocess.DEVNULL)
    config = os.path.join(tmp, "docker-config")
    os.makedirs(config)
    via_api = dict(env, DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=config, DOCKER_BUILDKIT="0")
    via_api.pop("DOCKER_CONTEXT", None)
    server = start_server(env, sock, os.path.join(tmp, "server.log"))
    rows: dict[str, dict[str, object]] = {}
    try:
        print(f"load average before: {os.getloadavg()}  cpus: {os.cpu_count()}")
        for i in range(args.containers):
            subprocess.run(cli + ["create", "--name", f"bench-ps-{i}", IMAGE, "true"], env=env,
                           stdout=subprocess.DEVNULL, check=True)
        run_cmd = ["run", "--rm", "--network", "none", IMAGE, "true"]
        timed([DOCKER_CLI, *run_cmd], 2, via_api)                   # warm up both
        timed(cli + run_cmd, 2, env)
        rows["run --rm busybox true"] = {
            "docker -> nutshell socket": timed([DOCKER_CLI, *run_cmd], args.runs, via_api),
            "nutshell (direct)": timed(cli + run_cmd, args.runs, env)}
        rows["ps -a"] = {
            "docker -> nutshell socket": timed([DOCKER_CLI, "ps", "-a"], args.runs, via_api),
            "nutshell (direct)": timed(cli + ["ps", "-a"], args.runs, env)}
        rows["ps"] = {
            "docker -> nutshell socket": timed([DOCKER_CLI, "ps"], args.runs, via_api),
            "nutshell (direct)": timed(cli + ["ps"], args.runs, env)}
        rows["--version: start-up only, no request (docker CLI | nutshell)"] = {
            "docker -> nutshell socket": timed([DOCKER_CLI, "--version"], args.runs, via_api),
            "nutshell (direct)": timed(cli + ["--version"], args.runs, env)}
        bench_dockerd(rows, rootfs, tmp, args.runs, args.containers)
        bench_docker_py(rows, sock, args.runs)
        print_table(rows)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        for c in engine.ps(all=True):
            engine.rm(c["Id"], force=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def bench_dockerd(rows, rootfs: str, tmp: str, runs: int, containers: int) -> None:
    col = "docker -> dockerd"
    if not dockerd_running():
        for r in rows.values():
            r[col] = f"skipped (no dockerd at {DOCKERD_SOCKET})"
        return
    env = dict(os.environ)
    env.pop("DOCKER_HOST", None)
    tarball = os.path.join(tmp, "rootfs.tar")
    subprocess.run(["tar", "-C", rootfs, "-cf", tarball, "."], check=True)
    probe = subprocess.run([DOCKER_CLI, "import", tarball, PEER_IMAGE], capture_output=True, env=env)
    if probe.returncode != 0:
        for r in rows.values():
            r[col] = "not usable: " + probe.stderr.decode(errors="replace").strip()[:120]
        return
    made = []
    try:
        for _ in range(containers):
            p = subprocess.run([DOCKER_CLI, "create", PEER_IMAGE, "true"], capture_output=True,
                               text=True, env=env)
            if p.returncode == 0:
                made.append(p.stdout.strip())
        run_cmd = [DOCKER_CLI, "run", "--rm", "--network", "none", PEER_IMAGE, "true"]
        timed(run_cmd, 2, env)
        rows["run --rm busybox true"][col] = timed(run_cmd, runs, env)
        rows["ps -a"][col] = timed([DOCKER_CLI, "ps", "-a"], runs, env)
        rows["ps"][col] = timed([DOCKER_CLI, "ps"], runs, env)
        rows["--version: start-up only, no request (docker CLI | nutshell)"][col] = timed(
            [DOCKER_CLI, "--version"], runs, env)
    finally:
        if made:
            subprocess.run([DOCKER_CLI, "rm", "-f", *made], capture_output=True, env=env)
        subprocess.run([DOCKER_CLI, "rmi", "-f", PEER_IMAGE], capture_output=True, env=env)


def bench_docker_py(rows, sock: str, runs: int) -> None:
    try:
        import docker
    except ImportError:
        return
    c = docker.DockerClient(base_url="unix://" + sock, timeout=60)
    try:
        rows["docker-py in-process: containers.run(remove=True)"] = {
            "docker -> nutshell socket": timed_call(
                lambda: c.containers.run(IMAGE, ["true"], remove=True, network_mode="none"), runs)}
        rows["docker-py in-process: containers.list(all=True)"] = {
            "docker -> nutshell socket": timed_call(lambda: c.containers.list(all=True), runs)}
        rows["docker-py in-process: ping"] = {
            "docker -> nutshell socket": timed_call(c.ping, runs)}
    finally:
        c.close()


def print_table(rows) -> None:
    for name, cols in rows.items():
        print(f"\n{name}")
        for col, samples in cols.items():
            print(f"  {col:28s} {fmt(samples)}")
        api, direct = cols.get("docker -> nutshell socket"), cols.get("nutshell (direct)")
        dockerd = cols.get("docker -> dockerd")
        if direct is not None:
            print(f"  {'socket / direct':28s} {ratio(api, direct)}")
        if isinstance(dockerd, list):
            print(f"  {'socket / dockerd':28s} {ratio(api, dockerd)}")


if __name__ == "__main__":
    sys.exit(main())
