"""Benchmark: how ``ps -a`` and ``images`` grow with the number of containers (issue 16's
scaling rows), Nutshell and podman side by side.

    .venv/bin/python tests/benchmarks/bench_scale.py [--counts 10,100,500] [--runs 5]

For each count N, N created (not started) containers of the same busybox image on a fresh
state root (in process: Engine.create), then the median wall time of the CLI's
``ps -a`` and ``images``, and the time per container. podman gets the same busybox rootfs
by ``import`` and N ``podman create``s in a throwaway store (--root/--runroot), timed the
same way, each series after a ``sync`` (a create's fsync would otherwise wait for the
previous series' writeback, which grows with its count). A create's median in the first
and the last tenth of a series shows whether a create gets slower as containers pile up.
Prints a table; asserts nothing. Needs root.
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

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

IMAGE = "bench/busybox:1"


def median_ms(argv: list[str], runs: int, env: dict | None = None) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def rootfs(dest: str) -> str:
    os.makedirs(os.path.join(dest, "bin"))
    shutil.copy(shutil.which("busybox") or "/bin/busybox", os.path.join(dest, "bin", "busybox"))
    for name in ("sh", "true", "sleep"):
        os.symlink("busybox", os.path.join(dest, "bin", name))
    return dest


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="10,100,500")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    from core.engine import Engine
    from core.runtime.spec import RunOptions

    work = tempfile.mkdtemp(prefix="nutshell-bench-scale-", dir="/var/tmp")
    rows = []
    try:
        bb = rootfs(os.path.join(work, "bb"))
        tar = os.path.join(work, "bb.tar")
        subprocess.run(["tar", "-C", bb, "-cf", tar, "."], check=True)
        podman = shutil.which("podman")
        for n in counts:
            root = os.path.join(work, f"root-{n}")
            eng = Engine(root)
            eng.import_image(bb, IMAGE, changes=['CMD ["sh"]'])
            # the previous count's podman store (vfs: a copy of the rootfs per container) is
            # still being written back; a create's fsync would wait for it
            os.sync()
            each = []
            for _ in range(n):
                t = time.perf_counter()
                eng.create(RunOptions(image=IMAGE, command=["true"], network="none"))
                each.append(time.perf_counter() - t)
            ids = [c["Id"] for c in eng.ps(all=True)]
            create_ms = sum(each) * 1000 / n
            # the first and the last tenth: a create that reads every container grows here
            tenth = max(1, n // 10)
            create_first = statistics.median(each[:tenth]) * 1000
            create_last = statistics.median(each[-tenth:]) * 1000
            cli = [sys.executable, "-m", "workbench", "--root", root]
            env = dict(os.environ, PYTHONPATH=REPO)
            ps = median_ms(cli + ["ps", "-a"], args.runs, env)
            images = median_ms(cli + ["images"], args.runs, env)
            t = time.perf_counter()
            for _ in range(args.runs):
                eng.ps(all=True)
            ps_inproc = (time.perf_counter() - t) * 1000 / args.runs
            row = {"n": n, "create": create_ms, "create_first": create_first,
                   "create_last": create_last, "ps": ps, "ps_inproc": ps_inproc, "images": images}
            for cid in ids:
                eng.rm(cid, force=True)
            if podman:
                pr = os.path.join(work, f"podman-{n}")
                base = [podman, "--root", pr, "--runroot", tempfile.mkdtemp(prefix="nsp-", dir="/tmp"),
                        "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
                subprocess.run(base + ["import", tar, "localhost/bench/busybox:1"], check=True,
                               capture_output=True)
                os.sync()
                t = time.perf_counter()
                for _ in range(n):
                    subprocess.run(base + ["create", "--network", "none", "localhost/bench/busybox:1", "true"],
                                   check=True, capture_output=True)
                row["p_create"] = (time.perf_counter() - t) * 1000 / n
                row["p_ps"] = median_ms(base + ["ps", "-a"], args.runs)
                row["p_images"] = median_ms(base + ["images"], args.runs)
                subprocess.run(base + ["rm", "-a", "-f"], capture_output=True)
                subprocess.run(base + ["system", "reset", "-f"], capture_output=True)
            rows.append(row)
            print(f"N={n}: {row}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n| containers | nutshell ps -a | podman ps -a | ratio | nutshell images | podman images "
          "| create each (nutshell in process / podman CLI) | nutshell create, first / last tenth "
          "| Engine.ps in process |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        p_ps = r.get("p_ps")
        print(f"| {r['n']} | {r['ps']:.0f} ms | {p_ps:.0f} ms | {r['ps'] / p_ps:.2f} | " if p_ps else
              f"| {r['n']} | {r['ps']:.0f} ms | - | - | ", end="")
        print(f"{r['images']:.0f} ms | {r.get('p_images', 0):.0f} ms | {r['create']:.0f} / "
              f"{r.get('p_create', 0):.0f} ms | {r['create_first']:.1f} / {r['create_last']:.1f} ms "
              f"| {r['ps_inproc']:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
