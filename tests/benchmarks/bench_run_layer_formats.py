"""Benchmark: what storing layers as squashfs images costs ``run`` (issue 16).

    sudo .venv/bin/python tests/benchmarks/bench_run_layer_formats.py [--runs 20]

Two stores with the same busybox image, one with its layer as a directory
(``NUTSHELL_LAYER_FORMAT=dir``) and one as a squashfs image (the default where possible);
``nutshell run --rm --network none IMAGE true`` through the CLI, the two stores
interleaved run by run so the machine's drift hits both alike. Prints the medians and the
difference. Nothing is asserted.
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

from tests.rootfs import make_busybox_rootfs  # noqa: E402

NUTSHELL = [os.path.join(REPO, ".venv", "bin", "nutshell")]


def compare(runs: int) -> dict[str, list[float]]:
    """Seconds per ``run --rm`` for each layer format, the warm-up round left out."""
    tmp = tempfile.mkdtemp(prefix="nutshell-bench-formats-", dir="/var/tmp")
    try:
        rootfs = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
        roots = {}
        for fmt in ("dir", "squashfs"):
            roots[fmt] = os.path.join(tmp, fmt)
            subprocess.run(NUTSHELL + ["--root", roots[fmt], "import", rootfs, "bench/bb:1"], check=True,
                           capture_output=True, env=dict(os.environ, NUTSHELL_LAYER_FORMAT=fmt))
        times: dict[str, list[float]] = {fmt: [] for fmt in roots}
        for _ in range(runs + 1):                # the first round warms the caches
            for fmt, root in roots.items():
                t = time.perf_counter()
                subprocess.run(NUTSHELL + ["--root", root, "run", "--rm", "--network", "none",
                                           "bench/bb:1", "true"], check=True)
                times[fmt].append(time.perf_counter() - t)
        return {fmt: v[1:] for fmt, v in times.items()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    times = compare(ap.parse_args().runs)
    med = {fmt: statistics.median(v) * 1000 for fmt, v in times.items()}
    for fmt, v in times.items():
        print(f"run --rm, layers as {fmt:8}: median {med[fmt]:6.1f} ms "
              f"(min {min(v) * 1000:.1f}, max {max(v) * 1000:.1f}, n={len(v)})")
    print(f"images cost {med['squashfs'] - med['dir']:+.1f} ms per run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
