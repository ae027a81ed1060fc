"""Benchmark: load + unpack of a large image made from a big host tree.

    .venv/bin/python tests/benchmarks/bench_store.py [--src /usr/share] [--runs 3]

Builds a docker-archive whose layers are GNU-tar'd subtrees of --src (uncompressed and
gzip variants), then times `nutshell load -i` into a cold store and prints the median
wall time, MB/s (uncompressed layer bytes) and files/s. Baselines in the same run: GNU
tar extracting the same layers (a lower bound: no hashing, no safety checks) and, when
installed, `skopeo copy docker-archive: oci:` + `umoci unpack` (a peer doing the same job).
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

from tests import imagebuild as ib  # noqa: E402


def timed(cmd, **kw) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    return time.perf_counter() - t


def drop_caches():
    try:
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")
    except OSError:
        pass


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default="/usr/share")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="nutshell-bench-store-", dir="/var/tmp")
    try:
        subdirs = sorted(e.path for e in os.scandir(args.src) if e.is_dir(follow_symlinks=False))
        groups = [subdirs[i::args.layers] for i in range(args.layers)]
        layers = []
        files = 0
        for g in groups:
            stage = os.path.join(work, "stage")
            os.makedirs(stage)
            for d in g:
                rel = os.path.relpath(d, "/")
                os.makedirs(os.path.join(stage, os.path.dirname(rel)), exist_ok=True)
                os.symlink(d, os.path.join(stage, rel))
            # -h follows our staging symlinks only at the top; the tree itself is archived as is
            data = subprocess.run(["tar", "--numeric-owner", "-C", stage, "-chf", "-", "."],
                                  check=True, capture_output=True).stdout
            shutil.rmtree(stage)
            layers.append(data)
        total = sum(len(l) for l in layers)
        for g in groups:
            for d in g:
                files += sum(len(fs) + len(ds) for _, ds, fs in os.walk(d))
        print(f"image: {len(layers)} layers from {args.src}, {total / 1e6:.0f} MB uncompressed, {files} entries")
        results = {}
        for variant in ("none", "gzip"):
            arc = os.path.join(work, f"img-{variant}.tar")
            ib.docker_archive(arc, layers, ["bench/store:1"], legacy=False, compression=variant)
            arc_size = os.path.getsize(arc)
            times = []
            for _ in range(args.runs):
                root = os.path.join(work, "root")
                shutil.rmtree(root, ignore_errors=True)
                drop_caches()
                times.append(timed([sys.executable, "-m", "workbench", "--root", root, "load", "-i", arc],
                                   cwd=REPO))
            med = statistics.median(times)
            results[f"nutshell load ({variant})"] = med
            print(f"nutshell load+unpack [{variant}]: median {med:.2f}s of {args.runs} "
                  f"({arc_size / 1e6:.0f} MB archive) -> {total / 1e6 / med:.0f} MB/s, {files / med:.0f} files/s")
            # GNU tar baseline on the same layers
            blobs = [ib.compress(l, variant) if variant != "none" else l for l in layers]
            tar_times = []
            for _ in range(args.runs):
                dest = os.path.join(work, "tarx")
                shutil.rmtree(dest, ignore_errors=True)
                os.makedirs(dest)
                drop_caches()
                t = time.perf_counter()
                for i, blob in enumerate(blobs):
                    ld = os.path.join(dest, str(i))
                    os.makedirs(ld)
                    subprocess.run(["tar", "-C", ld, "-x" + ("z" if variant == "gzip" else "") + "f", "-",
                                    "--numeric-owner", "--xattrs"], input=blob, check=True)
                tar_times.append(time.perf_counter() - t)
            tmed = statistics.median(tar_times)
            print(f"  GNU tar -x of the same layers [{variant}]: median {tmed:.2f}s "
                  f"-> ratio nutshell/tar {med / tmed:.2f}")
            if shutil.which("skopeo") and shutil.which("umoci"):
                peer = []
                for _ in range(args.runs):
                    oci = os.path.join(work, "oci")
                    bundle = os.path.join(work, "bundle")
                    shutil.rmtree(oci, ignore_errors=True)
                    shutil.rmtree(bundle, ignore_errors=True)
                    drop_caches()
                    t = time.perf_counter()
                    subprocess.run(["skopeo", "--insecure-policy", "copy", f"docker-archive:{arc}",
                                    f"oci:{oci}:bench"], check=True, capture_output=True)
                    subprocess.run(["umoci", "unpack", "--image", f"{oci}:bench", bundle], check=True,
                                   capture_output=True)
                    peer.append(time.perf_counter() - t)
                pmed = statistics.median(peer)
                print(f"  skopeo copy + umoci unpack [{variant}]: median {pmed:.2f}s "
                      f"-> ratio nutshell/peer {med / pmed:.2f}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
