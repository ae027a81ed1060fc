"""Benchmark (issue 16, cost as work grows): ``load`` of an image whose one layer holds N
small files (100 bytes each, 1,000 per directory), for N = 10,000 and 100,000 by default.

    .venv/bin/python tests/benchmarks/bench_files.py [--counts 10000 100000] [--runs 3]

For each N, on ext4 ``/var/tmp`` with ``sync`` before each run, the median wall time and
the peak RSS of:
  * ``nutshell load`` with layers as squashfs images (the default where possible),
  * ``nutshell load`` with layers as directories (``NUTSHELL_LAYER_FORMAT=dir``),
  * ``podman load`` of the same archive (overlay driver, a fresh store each run), when
    podman is installed,
and the time per 1,000 files, to show whether anything grows faster than linearly.
Nothing is asserted: it prints figures.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)

from tests import imagebuild as ib  # noqa: E402


def layer_of(n: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in range((n + 999) // 1000):
            ti = tarfile.TarInfo(f"data/d{d:04d}")
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1_600_000_000
            tf.addfile(ti)
            for i in range(min(1000, n - d * 1000)):
                data = (f"file {d}/{i}\n".encode() * 10)[:100]
                ti = tarfile.TarInfo(f"data/d{d:04d}/f{i:04d}")
                ti.size, ti.mode, ti.mtime = len(data), 0o644, 1_600_000_000
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def timed(argv: list[str], env: dict | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS in MB) of one command."""
    os.sync()
    time.sleep(0.3)
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=dict(os.environ, **(env or {})), cwd=REPO)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv[0]} failed: {err.strip()[:300]}")
    return dt, ru.ru_maxrss // 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dest", default="/var/tmp")
    ap.add_argument("--make", nargs=2, metavar=("N", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make:
        n = int(args.make[0])
        ib.docker_archive(args.make[1], [layer_of(n)], [f"bench/files:{n}"])
        return 0
    work = tempfile.mkdtemp(prefix="nutshell-bench-files-", dir=args.dest)
    podman = shutil.which("podman")
    rows = []
    try:
        for n in args.counts:
            arc = os.path.join(work, f"files-{n}.tar")
            # made in a child: this process stays small, so the peak RSS the commands'
            # wait4 reports is theirs (a vfork child starts with its parent's RSS)
            subprocess.run([sys.executable, __file__, "--make", str(n), arc], check=True)
            print(f"N = {n:,}: archive {os.path.getsize(arc) / 1e6:.1f} MB", flush=True)
            row = {"n": n}
            for label, env in (("images", {}), ("dirs", {"NUTSHELL_LAYER_FORMAT": "dir"})):
                times, rss = [], []
                for i in range(args.runs):
                    root = os.path.join(work, f"root-{label}-{n}-{i}")
                    dt, mb = timed([sys.executable, "-m", "workbench", "--root", root, "load", "-q",
                                    "-i", arc], env)
                    times.append(dt)
                    rss.append(mb)
                    shutil.rmtree(root, ignore_errors=True)
                row[label] = (statistics.median(times), max(rss))
                print(f"  nutshell load, layers as {label}: median {row[label][0]:.2f} s "
                      f"(runs {', '.join(f'{x:.2f}' for x in times)}), peak RSS {max(rss)} MB", flush=True)
            if podman:
                times, rss = [], []
                for i in range(args.runs):
                    root = os.path.join(work, f"podman-{n}-{i}")
                    runroot = tempfile.mkdtemp(prefix="nsp-", dir="/tmp")
                    base = [podman, "--root", root, "--runroot", runroot, "--storage-driver", "overlay",
                            "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
                    try:
                        subprocess.run(base + ["images"], capture_output=True, check=True, timeout=120)
                        dt, mb = timed(base + ["load", "-q", "-i", arc])
                        times.append(dt)
                        rss.append(mb)
                    except (RuntimeError, subprocess.CalledProcessError) as e:
                        print(f"  podman: {e}")
                        break
                    finally:
                        subprocess.run(base + ["system", "reset", "-f"], capture_output=True, timeout=300)
                        shutil.rmtree(root, ignore_errors=True)
                        shutil.rmtree(runroot, ignore_errors=True)
                if times:
                    row["podman"] = (statistics.median(times), max(rss))
                    print(f"  podman load (overlay): median {row['podman'][0]:.2f} s "
                          f"(runs {', '.join(f'{x:.2f}' for x in times)}), peak RSS {max(rss)} MB", flush=True)
            rows.append(row)
            os.unlink(arc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n| files | nutshell (images) | per 1k files | nutshell (dirs) | per 1k files | podman | per 1k files |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        cells = []
        for k in ("images", "dirs", "podman"):
            if k in r:
                t, mb = r[k]
                cells += [f"{t:.2f} s, {mb} MB", f"{1000 * t / r['n'] * 1000:.1f} ms"]
            else:
                cells += ["—", "—"]
        print(f"| {r['n']:,} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
