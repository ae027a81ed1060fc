"""Benchmark the workbench app in a real terminal (a PTY, 160x48), as a user runs it.

    sudo .venv/bin/python tests/benchmarks/bench_app.py [--runs 7] [--containers 20] [--idle 30]

Prints:
- start to first paint: from spawning ``python -m workbench`` to the first frame on the
  terminal (the tab bar drawn), and to the image list showing data; median of --runs.
- idle CPU with N running containers on screen: the app's CPU time (user+system, threads
  included) over --idle seconds, as % of one core, with the Containers pane shown and then
  with the Stats pane shown (which samples cgroups every second by design).
- memory: RSS (and USS) of the app after start and after the idle periods.

It needs root (real containers). Everything runs in a temporary state root; all containers
are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)


class AppInPty:
    """``python -m workbench --root ROOT`` in a PTY; a thread drains and keeps its output."""

    def __init__(self, root: str, env: dict, cols: int = 160, rows: int = 48) -> None:
        import ptyprocess

        self.t0 = time.monotonic()
        self.proc = ptyprocess.PtyProcess.spawn([sys.executable, "-m", "workbench", "--root", root],
                                                cwd=REPO, env=env, dimensions=(rows, cols))
        import pyte

        self.buf = bytearray()
        self.lock = threading.Lock()
        self.marks: dict[bytes, float] = {}
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = self.proc.read(65536)
            except EOFError:
                return
            except OSError:
                return
            now = time.monotonic()
            with self.lock:
                self.buf += data
                try:
                    self.stream.feed(data)
                except Exception:  # noqa: BLE001 - the screen is only for waiting on text
                    pass
                for needle in list(self.marks):
                    if self.marks[needle] == 0.0 and needle in self.buf:
                        self.marks[needle] = now

    def watch(self, *needles: bytes) -> None:
        with self.lock:
            for n in needles:
                self.marks.setdefault(n, 0.0)
                if n in self.buf:
                    self.marks[n] = time.monotonic()

    def wait(self, needle: bytes, timeout: float = 30.0) -> float:
        """Seconds from spawn until ``needle`` was first seen in the output."""
        self.watch(needle)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                t = self.marks.get(needle, 0.0)
            if t:
                return t - self.t0
            time.sleep(0.005)
        raise TimeoutError(f"{needle!r} not seen in {timeout}s")

    def wait_screen(self, text: str, timeout: float = 30.0) -> None:
        """Wait until ``text`` is on the (emulated) screen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                shown = "\n".join(self.screen.display)
            if text in shown:
                return
            time.sleep(0.05)
        raise TimeoutError(f"{text!r} not on screen in {timeout}s:\n{shown}")

    def send(self, text: str) -> None:
        self.proc.write(text.encode())

    def quit(self) -> None:
        try:
            self.send("q")
            deadline = time.monotonic() + 10
            while self.proc.isalive() and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            if self.proc.isalive():
                self.proc.terminate(force=True)


def cpu_percent_over(pid: int, seconds: float) -> float:
    import psutil

    p = psutil.Process(pid)
    t = p.cpu_times()
    c0 = t.user + t.system
    w0 = time.monotonic()
    time.sleep(seconds)
    t = p.cpu_times()
    return 100.0 * (t.user + t.system - c0) / (time.monotonic() - w0)


def memory(pid: int) -> tuple[int, int]:
    import psutil

    p = psutil.Process(pid)
    info = p.memory_full_info()
    return info.rss, getattr(info, "uss", 0)


def mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--containers", type=int, default=20)
    ap.add_argument("--idle", type=float, default=30.0)
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_app: needs root (real containers)", file=sys.stderr)
        return 1

    work = tempfile.mkdtemp(prefix="nutshell-bench-app-")
    root = os.path.join(work, "root")
    env = dict(os.environ, NUTSHELL_RUNTIME_DIR=os.path.join(work, "run"),
               NUTSHELL_CONFIG_DIR=os.path.join(work, "config"), TERM="xterm-256color",
               COLORTERM="truecolor")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["NUTSHELL_RUNTIME_DIR"] = env["NUTSHELL_RUNTIME_DIR"]
    from core.engine import Engine
    from tests.runtime_root import remove_all_containers
    from workbench.default_image import ensure_default_image
    from workbench.panes.images import run_options

    engine = Engine(root)
    ensure_default_image(engine)
    import compileall

    compileall.compile_dir(os.path.join(REPO, "workbench"), quiet=1)
    compileall.compile_dir(os.path.join(REPO, "core"), quiet=1)
    try:
        # --- start to first paint -------------------------------------------------------
        paint, data = [], []
        for i in range(args.runs + 1):
            app = AppInPty(root, env)
            try:
                p = app.wait(b"Images")
                d = app.wait(b"localhost/busybox")
            finally:
                app.quit()
            if i:                       # the first run warms the page cache
                paint.append(p)
                data.append(d)
        print(f"start to first paint: median {statistics.median(paint) * 1000:.0f} ms "
              f"(min {min(paint) * 1000:.0f}, max {max(paint) * 1000:.0f}; {args.runs} runs)")
        print(f"start to image list shown: median {statistics.median(data) * 1000:.0f} ms")

        # --- idle with N containers on screen ---------------------------------------------
        ids = []
        t0 = time.monotonic()
        for i in range(args.containers):
            opts, _ = run_options(["run", "-d", "--name", f"idle{i:02d}", "--network", "none",
                                   "localhost/busybox:latest", "sleep", "100000"])
            cid = engine.create(opts)
            engine.start(cid)
            ids.append(cid)
        print(f"started {len(ids)} containers in {time.monotonic() - t0:.1f} s")
        app = AppInPty(root, env)
        try:
            app.wait(b"localhost/busybox")
            rss0, uss0 = memory(app.proc.pid)
            app.send("3")
            if ids:
                app.wait_screen(f"idle{len(ids) - 1:02d}")  # the newest is listed first
            time.sleep(3.0)
            cpu_containers = cpu_percent_over(app.proc.pid, args.idle)
            print(f"idle CPU, Containers pane with {len(ids)} running containers, {args.idle:.0f} s: "
                  f"{cpu_containers:.2f} % of one core")
            app.send("5")
            time.sleep(3.0)
            cpu_stats = cpu_percent_over(app.proc.pid, args.idle)
            print(f"idle CPU, Stats pane (1 s sampling of {len(ids)} containers), {args.idle:.0f} s: "
                  f"{cpu_stats:.2f} % of one core")
            app.send("1")
            time.sleep(3.0)
            cpu_images = cpu_percent_over(app.proc.pid, min(args.idle, 10.0))
            print(f"idle CPU, Images pane, {min(args.idle, 10.0):.0f} s: {cpu_images:.2f} % of one core")
            rss1, uss1 = memory(app.proc.pid)
            print(f"memory: RSS {mib(rss0)} after start, {mib(rss1)} after the idle runs "
                  f"(USS {mib(uss0)} / {mib(uss1)})")
        finally:
            app.quit()
    finally:
        remove_all_containers(engine)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
