"""Benchmark: how fast is ``nutshell run --rm --network none IMAGE true`` (and with the
default bridge network), and how much
memory does an idle container's shim take?

    .venv/bin/python tests/benchmarks/bench_run.py [--runs 20] [--idle 5]

Prints medians (and min/max) of:
  * bare CPython start (``python -I -S -c pass`` and ``python -c pass`` of this venv),
  * ``nutshell --version`` (the CLI's own start-up),
  * ``nutshell run --rm --network none IMAGE true`` (the whole thing),
  * the same for runc / crun / podman / docker when they are installed and work here,
    as ratios to nutshell (their failures are printed, not hidden), podman / docker
    also on their default network (against our default bridge), and nutshell and
    podman (docker) alternately, pair by pair (the ratio that holds when the VM drifts);
the RSS/PSS of idle shims (``run -d ... sleep``), read from /proc/<pid>/smaps_rollup, and
how much page cache each of those containers adds by reading its busybox binary once.
Needs root. Creates and removes its own state root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)

IMAGE = "bench/busybox:latest"
SETTLE = 0.3        # seconds between the interleaved runs (head_to_head)


def timed(argv: list[str], runs: int, env=None, check=True) -> list[float] | str:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        dt = time.perf_counter() - t0
        if check and p.returncode != 0:
            return f"exit {p.returncode}: {p.stderr.decode(errors='replace').strip()[:200]}"
        out.append(dt)
    return out


def nproc_limit() -> tuple[int, int]:
    """The RLIMIT_NPROC to give podman's containers: podman lowers its own to 32768 at
    start (seen with strace), after which runc cannot set the host's higher limit on the
    container (EPERM without CAP_SYS_RESOURCE, which root lacks on this VM)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    cap = 32 * 1024
    return min(soft, cap), min(hard, cap)


def fmt(samples) -> str:
    if isinstance(samples, str):
        return f"failed ({samples})"
    med = statistics.median(samples) * 1000
    return f"median {med:7.1f} ms  (min {min(samples) * 1000:.1f}, max {max(samples) * 1000:.1f}, n={len(samples)})"


def smaps(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Rss:", "Pss:", "Private_Clean:", "Private_Dirty:"):
                out[parts[0][:-1]] = int(parts[1])
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--idle", type=int, default=5, help="idle containers for the memory figure")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root")
        return 1

    from core.engine import Engine
    from tests.rootfs import make_busybox_rootfs

    tmp = tempfile.mkdtemp(prefix="nutshell-bench-run-")
    root = os.path.join(tmp, "root")
    rootfs = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
    engine = Engine(root)
    engine.import_image(rootfs, IMAGE)
    venv_py = sys.executable
    nutshell = os.path.join(os.path.dirname(venv_py), "nutshell")
    cli = [nutshell] if os.path.exists(nutshell) else [venv_py, "-m", "workbench"]
    # this checkout's code, also through the console script (an editable install may
    # point at another checkout)
    env = dict(os.environ, NUTSHELL_ROOT=root,
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    # bytecode caches as a user has them: with PYTHONDONTWRITEBYTECODE (set in some
    # sandboxes) every edited module would be compiled on each start
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([venv_py, "-m", "compileall", "-q", os.path.join(REPO, "core"),
                    os.path.join(REPO, "workbench")], env=env, stdout=subprocess.DEVNULL)
    results: dict[str, object] = {}
    try:
        print(f"load average before: {os.getloadavg()}  cpus: {os.cpu_count()}")
        results["python -I -S -c pass"] = timed([venv_py, "-I", "-S", "-c", "pass"], args.runs, env)
        results["python -c pass (venv site)"] = timed([venv_py, "-c", "pass"], args.runs, env)
        results["nutshell --version"] = timed(cli + ["--version"], args.runs, env)
        timed(cli + ["run", "--rm", "--network", "none", IMAGE, "true"], 2, env)  # warm up
        ours = timed(cli + ["run", "--rm", "--network", "none", IMAGE, "true"], args.runs, env)
        results["nutshell run --rm --network none IMAGE true"] = ours
        timed(cli + ["run", "--rm", IMAGE, "true"], 2, env)  # warm up: creates the bridge
        results["nutshell run --rm IMAGE true (default bridge)"] = timed(
            cli + ["run", "--rm", IMAGE, "true"], args.runs, env)
        results["python -m workbench run --rm --network none IMAGE true"] = timed(
            [venv_py, "-m", "workbench", "run", "--rm", "--network", "none", IMAGE, "true"],
            args.runs, env)
        results["in-process Engine.run + wait (the runtime's own part)"] = in_process(
            engine, args.runs)
        peers = bench_peers(rootfs, tmp, args.runs,
                            ours=(cli + ["run", "--rm", "--network", "none", IMAGE, "true"], env))
        for name, value in results.items():
            print(f"{name:58s} {fmt(value)}")
        base = statistics.median(ours) if isinstance(ours, list) else None
        bridge = results["nutshell run --rm IMAGE true (default bridge)"]
        bridge_base = statistics.median(bridge) if isinstance(bridge, list) else None
        for name, value in peers.items():
            line = f"{name:58s} {fmt(value)}"
            # each peer series against ours with the same kind of network
            mine = bridge_base if name.endswith("(default network)") else base
            if mine and isinstance(value, list) and not name.startswith("interleaved"):
                line += f"   nutshell/peer = {mine / statistics.median(value):.2f}x"
            print(line)
        memory(cli, env, args.idle)
    finally:
        for c in engine.ps(all=True):
            engine.rm(c["Id"], force=True)
        try:
            engine.network_reset()      # the default bridge and its nft table
        except Exception as exc:  # noqa: BLE001
            print(f"network reset failed: {exc}")
        engine.store.release_layer_mounts()     # the root goes by hand below
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def in_process(engine, runs: int) -> list[float]:
    """create + start (attached) + exit code, in this already-warm process: what the
    runtime itself costs, without interpreter start-up and CLI/Engine imports."""
    from core.runtime.spec import RunOptions

    out = []
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        _cid, client = engine.run(RunOptions(image=IMAGE, command=["true"], network="none",
                                             auto_remove=True), attach=True)
        code = client.wait()
        client.close()
        out.append(time.perf_counter() - t0)
        assert code == 0
    return out[1:]


def bench_peers(rootfs: str, tmp: str, runs: int, ours=None) -> dict[str, object]:
    out: dict[str, object] = {}
    for rt in ("runc", "crun"):
        exe = shutil.which(rt)
        if not exe:
            out[f"{rt} run (bundle, no network ns config)"] = "not installed"
            continue
        bundle = os.path.join(tmp, f"bundle-{rt}")
        os.makedirs(bundle, exist_ok=True)
        if not os.path.exists(os.path.join(bundle, "rootfs")):  # runc refuses a symlink
            shutil.copytree(rootfs, os.path.join(bundle, "rootfs"), symlinks=True)
        subprocess.run([exe, "spec"], cwd=bundle, check=False)
        import json

        cfg_path = os.path.join(bundle, "config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = ["true"]
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        out[f"{rt} run --bundle B true"] = timed(
            [exe, "run", "--bundle", bundle, f"bench-{os.getpid()}"], runs)
    tarball = os.path.join(tmp, "rootfs.tar")
    subprocess.run(["tar", "-C", rootfs, "-cf", tarball, "."], check=True)
    for engine in ("podman", "docker"):
        exe = shutil.which(engine)
        label = f"{engine} run --rm --network none busybox true"
        if not exe:
            out[label] = "not installed"
            continue
        # the same busybox rootfs as ours, imported into the peer's store
        image = "localhost/nutshell-bench/busybox:latest"
        env = None
        if engine == "podman":
            # this kind of VM: crun rejects the hybrid cgroups, and the hard RLIMIT_NOFILE
            # (20000) is below podman's default, so runc and the limit as it is
            import resource

            conf = os.path.join(tmp, "containers.conf")
            limits = ", ".join(f'"{name}={soft}:{hard}"' for name, (soft, hard) in (
                ("nofile", resource.getrlimit(resource.RLIMIT_NOFILE)),
                ("nproc", nproc_limit())))
            with open(conf, "w") as f:
                f.write(f'[containers]\ndefault_ulimits = [{limits}]\n'
                        '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n'
                        'events_logger = "file"\n')
            env = dict(os.environ, CONTAINERS_CONF=conf)
        probe = subprocess.run([exe, "import", tarball, image], capture_output=True, env=env)
        if probe.returncode != 0:
            out[label] = ("not usable here: "
                          + probe.stderr.decode(errors="replace").strip()[:160])
            continue
        try:
            timed([exe, "run", "--rm", "--network", "none", image, "true"], 2, env=env)  # warm up
            out[label] = timed([exe, "run", "--rm", "--network", "none", image, "true"], runs, env=env)
            # what a user types: the peer's default network (podman: netavark or CNI)
            timed([exe, "run", "--rm", image, "true"], 2, env=env, check=False)
            out[f"{engine} run --rm busybox true (default network)"] = timed(
                [exe, "run", "--rm", image, "true"], runs, env=env)
            if ours is not None and isinstance(out[label], list):
                out.update(head_to_head(ours, ([exe, "run", "--rm", "--network", "none", image,
                                                "true"], env), engine, runs))
        finally:
            subprocess.run([exe, "rmi", "-f", image], capture_output=True, env=env)
    return out


def meminfo(field: str) -> int:
    """A /proc/meminfo figure, in KiB."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _busy_jiffies() -> tuple[int, int]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)       # all but idle and iowait; all


def quiesce(max_wait: float = 5.0, window: float = 0.1, busy: float = 0.05) -> None:
    """Wait (at most ``max_wait`` s) until the machine is idle: under ``busy`` of all CPUs
    over a ``window``. podman's clean-up of a --rm container goes on for ~0.5 s after the
    command returned (conmon, ``podman container cleanup``); a fixed pause did not cover
    it, and it was measured as part of the next run (ours: 117 ms alone, 145 ms after
    podman's runs)."""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        b0, t0 = _busy_jiffies()
        time.sleep(window)
        b1, t1 = _busy_jiffies()
        if t1 > t0 and (b1 - b0) / (t1 - t0) < busy:
            return


def head_to_head(ours: tuple[list[str], dict], peer: tuple[list[str], dict | None], name: str,
                 runs: int) -> dict[str, object]:
    """Ours and the peer's run alternately, ``runs`` pairs: a VM whose speed drifts by 20 %
    within minutes (this one) shifts both alike, so the ratio holds better than that of
    two series taken one after the other. Each run starts after a pause of SETTLE
    seconds and once the machine is idle (``quiesce``): what one tool leaves running after
    it returns (podman's clean-up of a --rm container, our shim's exit) would otherwise be
    measured as part of the other's run."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(runs):
        for argv, env, into in ((*ours, a), (*peer, b)):
            time.sleep(SETTLE)
            quiesce()
            got = timed(argv, 1, env)
            if isinstance(got, str):
                return {f"interleaved with {name}": got}
            into += got
    ratio = statistics.median(a) / statistics.median(b)
    pairs = statistics.median(x / y for x, y in zip(a, b))
    return {f"interleaved: nutshell (ratio of medians {ratio:.2f}x, median of pair ratios "
            f"{pairs:.2f}x)": a, f"interleaved: {name}": b}


def memory(cli: list[str], env: dict, n: int) -> None:
    if n <= 0:          # --idle 0: no memory figures
        return
    ids = []
    try:
        # each reads its whole busybox binary once, as a container reads its image's files:
        # what that adds to the page cache per container (one mount per layer image for
        # every container shares one copy: core/fs/imagemount.py, shared_mount)
        cached_before = meminfo("Cached")
        for _ in range(n):
            p = subprocess.run(cli + ["run", "-d", "--network", "none", IMAGE, "sh", "-c",
                                      "cat /bin/busybox >/dev/null; exec sleep 600"],
                               capture_output=True, text=True, env=env, check=True)
            ids.append(p.stdout.strip())
        time.sleep(0.5)
        grown = meminfo("Cached") - cached_before
        size = os.path.getsize(os.path.realpath("/bin/busybox"))
        print(f"page cache over {n} containers, each reading its {size / 2**20:.1f} MiB busybox: "
              f"+{grown / 1024:.1f} MiB ({grown / n:.0f} KiB per container)")
        from core.engine import Engine

        engine = Engine(env["NUTSHELL_ROOT"])
        rows = []
        for cid in ids:
            shim = engine.container_inspect(cid)["Nutshell"]["ShimPid"]
            rows.append(smaps(shim))
        rss = statistics.median(r["Rss"] for r in rows)
        pss = statistics.median(r["Pss"] for r in rows)
        priv = statistics.median(r.get("Private_Clean", 0) + r.get("Private_Dirty", 0) for r in rows)
        print(f"idle shim memory over {n} containers: RSS median {rss / 1024:.2f} MiB, "
              f"PSS median {pss / 1024:.2f} MiB, private {priv / 1024:.2f} MiB")
        py = subprocess.Popen([sys.executable, "-I", "-S", "-c", "import time; time.sleep(5)"])
        time.sleep(0.3)
        bare = smaps(py.pid)
        py.kill()
        py.wait()
        print(f"bare python -I -S for comparison:        RSS {bare['Rss'] / 1024:.2f} MiB, "
              f"PSS {bare['Pss'] / 1024:.2f} MiB")
    finally:
        for cid in ids:
            subprocess.run(cli + ["rm", "-f", cid], env=env, capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
