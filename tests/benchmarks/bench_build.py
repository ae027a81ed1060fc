"""Benchmark: building the multistage fixture (tests/fixtures/build/multistage).

    .venv/bin/python tests/benchmarks/bench_build.py [--runs 5] [--fixture multistage]

For each run: a fresh store holding only the offline busybox base image, then
  cold      the first build (every step runs: 1 RUN container, 4 COPYs, 1 WORKDIR),
  cached    the same build again (every step CACHED),
  one-file  a rebuild after changing one copied file (the steps from its COPY on run),
each timed in-process (Engine.build) and through the CLI (`nutshell build`, a new
interpreter each time: what a user waits for). Prints median and min wall seconds.
Docker/podman/buildah are compared when a working one is installed (a docker client
without a daemon does not count).
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

BASE = "localhost/busybox:latest"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _engine(root: str, rootfs: str):
    from core.engine import Engine

    eng = Engine(root=root)
    eng.import_image(rootfs, BASE, changes=['CMD ["sh"]', f"ENV {PATH_ENV}"])
    return eng


def _cli(root: str, ctx: str) -> float:
    nutshell = os.path.join(REPO, ".venv", "bin", "nutshell")
    t = time.perf_counter()
    subprocess.run([nutshell, "--root", root, "build", "-q", "--build-arg", f"BASE={BASE}",
                    "-t", "localhost/bench:cli", ctx], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def _peer() -> str | None:
    for tool in ("podman", "buildah", "docker"):
        if shutil.which(tool):
            probe = subprocess.run([tool, "info"], capture_output=True)
            if probe.returncode == 0:
                return tool
    return None


def main() -> int:
    from core.dockerfile.builder import BuildOptions
    from tests.rootfs import make_busybox_rootfs

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--fixture", default="multistage")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="nutshell-bench-build-", dir="/var/tmp")
    times: dict[str, list[float]] = {k: [] for k in (
        "cold", "cached", "one-file", "cli cold", "cli cached")}
    changed_file = {"multistage": "hello.sh", "copy-chown": "config.txt"}.get(args.fixture)
    try:
        rootfs = make_busybox_rootfs(os.path.join(work, "rootfs"))
        src = os.path.join(REPO, "tests", "fixtures", "build", args.fixture)
        for run in range(args.runs):
            ctx = os.path.join(work, f"ctx{run}")
            shutil.copytree(src, ctx, symlinks=True)
            root = os.path.join(work, f"root{run}")
            eng = _engine(root, rootfs)
            opts = BuildOptions(context=ctx, tags=["localhost/bench:1"], build_args={"BASE": BASE})
            t = time.perf_counter()
            first = eng.build(opts)
            times["cold"].append(time.perf_counter() - t)
            t = time.perf_counter()
            again = eng.build(opts)
            times["cached"].append(time.perf_counter() - t)
            assert again.image_id == first.image_id and all(s.cached for s in again.steps)
            if changed_file:
                with open(os.path.join(ctx, changed_file), "a") as f:
                    f.write("# changed\n")
                t = time.perf_counter()
                eng.build(opts)
                times["one-file"].append(time.perf_counter() - t)
            root2 = os.path.join(work, f"cli{run}")
            _engine(root2, rootfs)
            times["cli cold"].append(_cli(root2, ctx))
            times["cli cached"].append(_cli(root2, ctx))
        steps = len(first.steps)
        print(f"fixture {args.fixture}: {steps} steps, {args.runs} runs "
              f"(2 cores, state root on {work})")
        for name, values in times.items():
            if values:
                print(f"  {name:<11} median {statistics.median(values):.3f} s   "
                      f"min {min(values):.3f} s")
        peer = _peer()
        print(f"  peer: {peer or 'none installed and working (docker client has no daemon)'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
