"""CPU used by the workbench while idle with N running containers, by visible pane.

    sudo .venv/bin/python tests/benchmarks/bench_stats_pane.py [--containers 20] [--seconds 30]

Starts N ``sleep`` containers in a throw-away state root (offline busybox image), runs the
workbench headless (``App.run_test``, the real compositor, inotify liveness on) and, for each
pane shown in turn, measures the CPU time of the whole process (all threads: the UI loop,
the watcher, the sampling workers) over ``--seconds`` of wall time with nobody touching
anything. The Stats pane samples every container once a second while it is shown; the
others only wait for events. Also prints the engine's own cost of one sample of N
containers, with ``container_stats`` per id and with the batch ``StatsSampler``.
Everything it starts is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def engine_cost(engine, ids: list[str], rounds: int = 20) -> tuple[float, float]:
    for cid in ids:
        engine.container_stats(cid)
    t = time.process_time()
    for _ in range(rounds):
        for cid in ids:
            engine.container_stats(cid)
    per_call = (time.process_time() - t) / rounds
    sampler = engine.container_stats_sampler()
    sampler.sample(ids)
    t = time.process_time()
    for _ in range(rounds):
        sampler.sample(ids)
    return per_call * 1000, (time.process_time() - t) / rounds * 1000


async def measure(engine, seconds: float, panes: list[str]) -> dict[str, tuple[float, int]]:
    from workbench.app import NutshellApp

    app = NutshellApp(engine, watch=True)
    out: dict[str, tuple[float, int]] = {}
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(1.0)
        for name in panes:
            while app.pane(name) is None:  # the workbench may mount panes after its first frame
                await pilot.pause(0.1)
            app.action_show_tab(name)
            await pilot.pause(2.0)  # let the first loads finish
            stats = app.pane("stats")
            before_samples = getattr(stats, "samples_taken", 0)
            c0, w0 = cpu(), time.monotonic()
            await asyncio.sleep(seconds)
            used, wall = cpu() - c0, time.monotonic() - w0
            out[name] = (used / wall * 100.0, getattr(stats, "samples_taken", 0) - before_samples)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--panes", default="stats,containers,teaching,terminals")
    args = ap.parse_args(argv)

    from core.engine import Engine
    from core.runtime.spec import RunOptions
    from workbench.default_image import ensure_default_image

    root = tempfile.mkdtemp(prefix="nsteach-bench-")
    engine = Engine(root)
    ids: list[str] = []
    try:
        ensure_default_image(engine)
        for i in range(args.containers):
            cid, _ = engine.run(RunOptions(image="localhost/busybox:latest",
                                           command=["sleep", "100000"], name=f"nsteach-bench-{i}",
                                           network="none", memory=64 * 1024 * 1024,
                                           pids_limit=50, stop_timeout=1))
            ids.append(cid)
        per_call, batched = engine_cost(engine, ids)
        print(f"{len(ids)} running containers, {os.cpu_count()} cores, "
              f"{open('/proc/loadavg').read().split()[0]} load")
        print(f"engine, one sample of {len(ids)}: container_stats x{len(ids)} {per_call:.1f} ms CPU, "
              f"StatsSampler {batched:.1f} ms CPU")
        results = asyncio.run(measure(engine, args.seconds, args.panes.split(",")))
        print(f"workbench process CPU over {args.seconds:.0f} s, pane shown (one core = 100 %):")
        for name, (pct, samples) in results.items():
            extra = f"  ({samples} samples)" if name == "stats" else ""
            print(f"  {name:<11} {pct:5.2f} %{extra}")
    finally:
        for cid in ids:
            try:
                engine.rm(cid, force=True)
            except Exception as exc:  # noqa: BLE001
                print("cleanup:", exc, file=sys.stderr)
        try:
            engine.network_reset()
        except Exception:  # noqa: BLE001
            pass
        engine.store.release_layer_mounts()     # the root goes by hand below
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
