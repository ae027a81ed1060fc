"""Benchmark: commit of a container with a large change (~100 MB in ~5,000 files).

    .venv/bin/python tests/benchmarks/bench_commit.py [--runs 5] [--mb 100] [--files 5000]
                                                      [--patched-tarwriter]

A container of a busybox image gets the change written into it (a third of the files
random bytes, two thirds word soup that compresses ~3:1, in 350 directories), then:

1. ``Engine.commit`` end to end (freeze, tar of the upper dir, compress + hash, blob,
   config, manifest, index), median wall seconds over --runs, for the default (gzip
   through ISA-L's threads when importable), gzip through pigz, gzip through zlib in a thread,
   zstd, and no compression; the image is removed after each run;
2. the layer writer alone with every gzip engine (zlib inline, zlib threaded, pigz -6,
   pigz -1, ISA-L 3 and 1 on threads) and zstd, to pick the default;
3. ``diff`` of the same container;
4. ``podman commit`` / ``docker commit`` of the same change when they are installed and
   working (same script, same data), as ratios.

``--patched-tarwriter`` runs everything with core.store.tarwriter's tarfile using
tarfile's default record-sized buffer instead of 1 MiB (see docs/commit-volumes.md:
tarfile's stream buffer is an immutable bytes object grown by ``+=``).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)


def make_change(dest: str, mb: int, files: int, seed: int = 42) -> int:
    rnd = random.Random(seed)
    words = [("".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 10))))
             .encode() for _ in range(5000)]
    avg = mb * 1_000_000 // files
    total = 0
    for i in range(files):
        d = os.path.join(dest, "data", f"d{i % 50:02d}", f"s{i % 7}")
        os.makedirs(d, exist_ok=True)
        size = max(1, avg + rnd.randint(-avg // 3, avg // 3))
        if i % 3 == 0:
            data = os.urandom(size)
        else:
            parts, n = [], 0
            while n < size:
                w = rnd.choice(words)
                parts.append(w)
                n += len(w) + 1
            data = b" ".join(parts)[:size]
        with open(os.path.join(d, f"f{i}.dat"), "wb") as f:
            f.write(data)
        total += size
    return total


def patch_tarwriter() -> None:
    import tarfile
    import types

    import core.store.tarwriter as tw

    proxy = types.SimpleNamespace(**{k: getattr(tarfile, k) for k in dir(tarfile)
                                     if not k.startswith("__")})
    proxy.open = lambda *a, **k: tarfile.open(*a, **{**k, "bufsize": tarfile.RECORDSIZE})
    tw.tarfile = proxy


def cpu_seconds() -> float:
    """user + system time of this process and its waited-for children (pigz)."""
    import resource

    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def median_of(fn, runs: int) -> tuple[float, list[float], float]:
    times, cpu = [], []
    for _ in range(runs):
        c0 = cpu_seconds()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        cpu.append(cpu_seconds() - c0)
    return statistics.median(times), times, statistics.median(cpu)


def peer(tool: str) -> str | None:
    """'podman' or 'docker' when installed AND working (a docker CLI without a daemon
    does not count)."""
    if not shutil.which(tool):
        return None
    p = subprocess.run([tool, "info"], capture_output=True, timeout=30)
    return tool if p.returncode == 0 else None


def bench_peer(tool: str, change_dir: str, runs: int, rootfs: str | None = None) -> float | None:
    """Same change in a peer's container: copy the data in, then time ``commit``. The peer
    gets the same busybox rootfs by ``import`` when it has no busybox (no downloads here)."""
    image = "docker.io/library/busybox:latest"
    if subprocess.run([tool, "image", "inspect", image], capture_output=True).returncode != 0:
        if rootfs is None:
            print(f"  {tool}: {image} is not present locally (no downloads here): skipped")
            return None
        tar = subprocess.run(["tar", "-C", rootfs, "-c", "."], capture_output=True, check=True).stdout
        subprocess.run([tool, "import", "-", image], input=tar, capture_output=True, check=True)
    name = f"nutshell-bench-commit-{os.getpid()}"
    subprocess.run([tool, "create", "--name", name, image, "true"], check=True, capture_output=True)
    try:
        subprocess.run([tool, "cp", os.path.join(change_dir, "data"), f"{name}:/data"],
                       check=True, capture_output=True)
        times = []
        for i in range(runs):
            t = time.perf_counter()
            subprocess.run([tool, "commit", name, f"nutshell-bench/peer:{i}"], check=True,
                           capture_output=True)
            times.append(time.perf_counter() - t)
            subprocess.run([tool, "rmi", f"nutshell-bench/peer:{i}"], capture_output=True)
        return statistics.median(times)
    finally:
        subprocess.run([tool, "rm", "-f", name], capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--patched-tarwriter", action="store_true")
    ap.add_argument("--dir", default="/var/tmp", help="where the scratch state root goes")
    args = ap.parse_args()
    if args.patched_tarwriter:
        patch_tarwriter()

    import core.store.compress as comp
    from core.engine import Engine
    from core.runtime.spec import RunOptions
    from core.store import commit as cm
    from core.store.compress import isal_available, pigz_path
    from workbench.default_image import make_busybox_rootfs

    work = tempfile.mkdtemp(prefix="nutshell-bench-commit-", dir=args.dir)
    try:
        root = os.path.join(work, "root")
        os.makedirs(root)
        eng = Engine(root)
        bb = make_busybox_rootfs(os.path.join(work, "bb"))
        eng.import_image(bb, "bench/busybox:1", changes=['CMD ["sh"]'])
        cid = eng.create(RunOptions(image="bench/busybox:1", command=["true"], network="none"))
        upper = os.path.join(eng.paths.container(cid), "upper")
        t = time.perf_counter()
        total = make_change(upper, args.mb, args.files)
        subprocess.run(["sync"], check=True)
        print(f"change: {total / 1e6:.1f} MB in {args.files} files "
              f"(written in {time.perf_counter() - t:.1f} s); {os.cpu_count()} CPUs; "
              f"pigz: {pigz_path() or 'not installed'}; "
              f"tarwriter: {'patched (RECORDSIZE buffer)' if args.patched_tarwriter else 'as is'}")

        print("\n1. Engine.commit end to end (median of %d, configurations interleaved)" % args.runs)
        default = "isal threads" if isal_available() else "pigz" if pigz_path() else "zlib thread"
        configs = [(f"gzip (default: {default})", "gzip", {}),
                   ("gzip, pigz", "gzip", {"NUTSHELL_NO_ISAL": "1"}),
                   ("gzip, zlib in a thread", "gzip", {"NUTSHELL_NO_PIGZ": "1", "NUTSHELL_NO_ISAL": "1"}),
                   ("zstd", "zstd", {}), ("none", "none", {})]
        configs = [c for c in configs if c[0] != "gzip, pigz" or pigz_path()]
        times: dict[str, list[float]] = {c[0]: [] for c in configs}
        sizes: dict[str, int] = {}
        cpus: dict[str, list[float]] = {}
        for _ in range(args.runs):
            for label, compression, env in configs:
                old = {k: os.environ.get(k) for k in env}
                os.environ.update(env)
                try:
                    c0 = cpu_seconds()
                    t = time.perf_counter()
                    img = eng.commit(cid, "bench/committed:1", compression=compression)
                    times[label].append(time.perf_counter() - t)
                    cpus.setdefault(label, []).append(cpu_seconds() - c0)
                finally:
                    for k, v in old.items():
                        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
                sizes[label] = img.layers[-1].compressed_size
                eng.rmi(["bench/committed:1"])
        results = {}
        for label, ts in times.items():
            med = statistics.median(ts)
            results[label] = med
            print(f"  {label:28s} median {med:5.2f} s  min {min(ts):5.2f} s  "
                  f"cpu {statistics.median(cpus[label]):5.2f} s  layer {sizes[label] / 1e6:5.1f} MB  "
                  f"{total / 1e6 / med:4.0f} MB/s  ({' '.join(f'{x:.2f}' for x in ts)})")

        print("\n2. layer writer alone (median of %d, interleaved)" % args.runs)
        writers = [("tar + sha256 only", "none", None, None),
                   ("gzip zlib-6 inline", "gzip", "zlib-inline", 6),
                   ("gzip zlib-6 thread", "gzip", "zlib", 6),
                   ("gzip zlib-1 thread", "gzip", "zlib", 1),
                   ("gzip pigz -6", "gzip", "pigz", 6),
                   ("gzip pigz -1", "gzip", "pigz", 1),
                   ("gzip isal-3 (threads)", "gzip", "isal", 6),
                   ("gzip isal-1 (threads)", "gzip", "isal", 2),
                   ("zstd -3 (C threads)", "zstd", None, None)]
        writers = [w for w in writers if (w[2] != "pigz" or pigz_path()) and (w[2] != "isal" or isal_available())]
        wt: dict[str, list[float]] = {w[0]: [] for w in writers}
        wc: dict[str, list[float]] = {w[0]: [] for w in writers}
        wsize: dict[str, int] = {}
        for _ in range(args.runs):
            for label, compression, engine, level in writers:
                comp.GZIP_LEVEL = level if level is not None else 6
                c0, t = cpu_seconds(), time.perf_counter()
                with eng.store.lease():
                    res = cm.write_layer(eng.store, upper, compression=compression, engine=engine)
                wt[label].append(time.perf_counter() - t)
                wc[label].append(cpu_seconds() - c0)
                wsize[label] = res["descriptor"]["size"]
                os.unlink(eng.store.blob_path(res["descriptor"]["digest"]))
        comp.GZIP_LEVEL = 6
        for label, ts in wt.items():
            print(f"  {label:28s} median {statistics.median(ts):5.2f} s  min {min(ts):5.2f} s  "
                  f"cpu {statistics.median(wc[label]):5.2f} s  blob {wsize[label] / 1e6:5.1f} MB")

        print("\n3. diff")
        med, _, _ = median_of(lambda: eng.container_diff(cid), args.runs)
        print(f"  {len(eng.container_diff(cid))} changes in {med:.2f} s")

        print("\n4. peers")
        for tool in ("podman", "docker"):
            if peer(tool) is None:
                why = "not installed" if not shutil.which(tool) else "installed but not working (no daemon?)"
                print(f"  {tool}: {why}")
                continue
            m = bench_peer(tool, upper, args.runs, bb)
            if m is not None:
                ours = next(iter(results.values()))
                print(f"  {tool} commit: {m:.2f} s (nutshell default / {tool} = {ours / m:.2f})")
        eng.rm(cid, force=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
