"""Benchmark: what Docker's default seccomp profile costs a container start.

    .venv/bin/python tests/benchmarks/bench_seccomp.py [--runs 30]

Prints medians (and min/max) of:
  * the first compile in a fresh interpreter (libseccomp loaded, nothing cached),
  * compile, cold (libseccomp loaded, memory cache empty, no disk cache): validate,
    resolve for Docker's 14 capabilities, libseccomp, export, ENOSYS prefix,
  * compile from the disk cache (memory empty, entry on disk) and from memory,
  * install in a forked child (the seccomp(2) call alone, and fork + install + exit),
  * the cost of one allowed system call (getppid) under the filter vs without;
and the program's size in BPF instructions (default caps, and with SYS_ADMIN).
Runs as any user (the child sets no_new_privs when it is not root). Not part of the
test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)

from core.runtime import seccomp  # noqa: E402
from core.runtime.caps import DOCKER_DEFAULT  # noqa: E402
from core.runtime.seccomp import bpf, cache, libseccomp  # noqa: E402
from core.runtime.seccomp import load as _load  # noqa: E402,F401 - preloaded, as the init does


def fmt(samples: list[float], unit: str = "ms", scale: float = 1e3) -> str:
    med = statistics.median(samples) * scale
    return (f"median {med:8.3f} {unit}  (min {min(samples) * scale:.3f}, "
            f"max {max(samples) * scale:.3f}, n={len(samples)})")


def timed(fn, runs: int, before=None) -> list[float]:
    out = []
    for _ in range(runs):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def first_compile(runs: int, cache_dir: str | None = None) -> list[float]:
    """compile_filter's time in a fresh interpreter, its imports included."""
    code = (f"import sys, time; sys.path.insert(0, {REPO!r}); "
            "from core.runtime import seccomp; from core.runtime.caps import DOCKER_DEFAULT; "
            "p = seccomp.default_profile(); t = time.perf_counter(); "
            f"seccomp.compile_filter(p, list(DOCKER_DEFAULT), cache_dir={cache_dir!r}); "
            "print(time.perf_counter() - t)")
    return [float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                 text=True, check=True).stdout) for _ in range(runs)]


def in_child(program: bytes, loops: int) -> tuple[float, float, float]:
    """(install seconds, seconds per getppid before, after) measured in a forked child."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            if os.geteuid() != 0:
                import ctypes

                ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0)
            getppid = os.getppid
            t = time.perf_counter()
            for _ in range(loops):
                getppid()
            before = (time.perf_counter() - t) / loops
            t = time.perf_counter()
            seccomp.install(program)
            installed = time.perf_counter() - t
            t = time.perf_counter()
            for _ in range(loops):
                getppid()
            after = (time.perf_counter() - t) / loops
            os.write(w, f"{installed} {before} {after}".encode())
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 200)
    os.close(r)
    os.waitpid(pid, 0)
    a, b, c = (float(x) for x in data.split())
    return a, b, c


def fork_install_exit(program: bytes) -> None:
    pid = os.fork()
    if pid == 0:
        try:
            if os.geteuid() != 0:
                import ctypes

                ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0)
            seccomp.install(program)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def fork_exit() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--loops", type=int, default=200_000,
                    help="getppid calls per measurement of the per-call cost")
    args = ap.parse_args()
    runs = args.runs

    print(f"libseccomp {'.'.join(map(str, libseccomp.version()))}, "
          f"kernel {os.uname().release}, {os.uname().machine}, python {sys.version.split()[0]}")
    profile = seccomp.default_profile()
    caps = list(DOCKER_DEFAULT)
    program = seccomp.compile_filter(profile, caps)
    admin = seccomp.compile_filter(profile, [*caps, "SYS_ADMIN"])
    print(f"BPF program: {len(program) // 8} instructions (Docker's 14 caps), "
          f"{len(admin) // 8} with SYS_ADMIN; {len(program)} bytes")

    print("compile, cold:                   ",
          fmt(timed(lambda: seccomp.compile_filter(profile, caps), runs,
                    before=cache.clear_memory)))
    with tempfile.TemporaryDirectory(prefix="nutshell-bench-seccomp-") as d:
        cache.clear_memory()
        seccomp.compile_filter(profile, caps, cache_dir=d)
        print("compile, disk cache hit:         ",
              fmt(timed(lambda: seccomp.compile_filter(profile, caps, cache_dir=d), runs,
                        before=cache.clear_memory)))
        print("fresh interpreter, no cache:     ", fmt(first_compile(min(runs, 10))))
        print("fresh interpreter, disk hit:     ", fmt(first_compile(min(runs, 10), d)))
        print("  (both include importing the compiler, libseccomp and the profile)")
    seccomp.compile_filter(profile, caps)
    print("compile, memory cache hit:       ",
          fmt(timed(lambda: seccomp.compile_filter(profile, caps), runs)))

    results = [in_child(program, args.loops) for _ in range(max(3, runs // 3))]
    print("install (seccomp(2)) in a child: ", fmt([r[0] for r in results]))
    tiny = bpf.pack(bpf.RET_K, 0, 0, 0x7FFF0000)
    print("  a 1-instruction filter:        ",
          fmt([in_child(tiny, 1000)[0] for _ in range(max(3, runs // 3))]))
    print("fork + exit (no filter):         ", fmt(timed(fork_exit, runs)))
    print("fork + install + exit:           ", fmt(timed(lambda: fork_install_exit(program), runs)))
    before = statistics.median(r[1] for r in results) * 1e9
    after = statistics.median(r[2] for r in results) * 1e9
    print(f"os.getppid() per call:            {before:.0f} ns unfiltered, {after:.0f} ns "
          f"filtered (+{after - before:.0f} ns)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
