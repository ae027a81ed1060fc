"""Flood benchmark for the embedded terminal: a program floods one pane, keys go to another.

    .venv/bin/python tests/benchmarks/bench_terminal_flood.py [--command "yes | head -c 50M"]

An app (Textual, headless, Pilot) holds two terminals side by side. The left one runs the flood
(by default ``yes | head -c 50M``); the right one runs ``cat``. While the flood runs, keys are
pressed into the right pane at ~20 Hz, the way Pilot.press does it (a key event through the
driver), and for each key we record:

- handling latency: from the press to the right terminal's key handler;
- echo latency: from the press to cat's echo arriving back in the right terminal (through the
  PTY, the program, the reader and the parser).

Printed: latency median / p95 / max, the flood's throughput (bytes the left pane parsed / wall
time to the program's exit), frames drawn, CPU use, and the CPU used by the idle app afterwards.
This is a benchmark that prints figures; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from textual import events  # noqa: E402
from textual.app import App, ComposeResult  # noqa: E402
from textual.containers import Horizontal  # noqa: E402

from workbench.terminal.widget import Terminal  # noqa: E402

ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PS1": "$ "}


class TimedTerminal(Terminal):
    """A terminal that notes when keys reach it and when output arrives."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.key_times: list[float] = []
        self.read_times: list[tuple[float, bytes]] = []

    async def on_key(self, event: events.Key) -> None:
        self.key_times.append(time.perf_counter())
        await super().on_key(event)

    def _on_readable(self) -> None:
        backend = self.backend
        if backend is not None and self._reading:
            # Peek at what arrives by wrapping read_available once.
            original = backend.read_available

            def timed() -> bytes:
                data = original()
                if data:
                    self.read_times.append((time.perf_counter(), data))
                return data

            backend.read_available = timed  # type: ignore[method-assign]
            try:
                super()._on_readable()
            finally:
                backend.read_available = original  # type: ignore[method-assign]
        else:
            super()._on_readable()


class FloodApp(App):
    CSS = "Horizontal { height: 1fr; } Terminal { width: 1fr; }"
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, flood: str) -> None:
        super().__init__()
        self.flood = flood

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield TimedTerminal(["/bin/sh", "-c", self.flood], env=ENV, id="flood")
            yield TimedTerminal(["/bin/cat"], env=ENV, id="keys")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def run(flood_cmd: str, size: tuple[int, int], rate: float) -> None:
    app = FloodApp(flood_cmd)
    async with app.run_test(size=size) as pilot:
        flood = app.query_one("#flood", TimedTerminal)
        keys = app.query_one("#keys", TimedTerminal)
        keys.focus()
        while keys.backend is None or flood.backend is None:
            await pilot.pause(0.01)
        cpu0 = time.process_time()
        start = time.perf_counter()
        presses: list[tuple[float, str]] = []
        letters = "abcdefghijklmnopqrstuvwxyz"
        i = 0
        driver = app._driver
        assert driver is not None
        while not flood.exited:
            letter = letters[i % len(letters)]
            i += 1
            t = time.perf_counter()
            event = events.Key(letter, letter)
            event.set_sender(app)
            driver.send_message(event)  # what Pilot.press does, without its wait-for-idle
            presses.append((t, letter))
            await asyncio.sleep(1 / rate)
            if time.perf_counter() - start > 600:
                print("flood did not finish in 600 s; stopping")
                break
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        await pilot.pause(0.5)

        # Handling latency: the n-th key handled belongs to the n-th press (one pane, in order).
        handled = [k - p for (p, _), k in zip(presses, keys.key_times)]
        # Echo latency: the first read in the keys pane, after the press, with the letter in it
        # (one read may carry the echoes of several presses).
        echoes: list[float] = []
        reads = list(keys.read_times)
        j = 0
        for pressed_at, letter in presses:
            while j < len(reads) and reads[j][0] < pressed_at:
                j += 1
            k = j
            while k < len(reads) and letter.encode() not in reads[k][1]:
                k += 1
            if k < len(reads):
                echoes.append(reads[k][0] - pressed_at)
        fed = flood.emulator.bytes_fed

        # Idle: no output anywhere, how much CPU does the app use?
        idle_cpu0, idle_t0 = time.process_time(), time.perf_counter()
        frames_before = flood.frames + keys.frames
        await asyncio.sleep(2.0)
        idle_cpu = (time.process_time() - idle_cpu0) / (time.perf_counter() - idle_t0)
        idle_frames = flood.frames + keys.frames - frames_before

        ms = lambda v: f"{v * 1000:7.1f} ms"  # noqa: E731
        print(f"flood command        : {flood_cmd}")
        print(f"app size             : {size[0]}x{size[1]} (flood pane {flood.size.width}x{flood.size.height})")
        print(f"flood bytes parsed   : {fed / 1e6:.1f} MB in {elapsed:.2f} s -> {fed / elapsed / 1e6:.2f} MB/s "
              f"(exit code {flood.exit_code})")
        print(f"frames drawn (flood) : {flood.frames} ({flood.frames / elapsed:.1f}/s)")
        print(f"process CPU          : {cpu:.2f} s of {elapsed:.2f} s wall ({100 * cpu / elapsed:.0f}% of one core)")
        print(f"keys pressed/handled : {len(presses)} / {len(keys.key_times)}")
        if handled:
            print(f"key handling latency : median {ms(statistics.median(handled))}  p95 {ms(percentile(handled, 95))}"
                  f"  max {ms(max(handled))}")
        if echoes:
            print(f"key echo latency     : median {ms(statistics.median(echoes))}  p95 {ms(percentile(echoes, 95))}"
                  f"  max {ms(max(echoes))}  ({len(echoes)} echoes)")
        print(f"idle afterwards      : {100 * idle_cpu:.1f}% CPU, {idle_frames} frames in 2 s")
        print(f"max RSS              : {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", default="yes | head -c 50M", help="the flood (run by /bin/sh -c)")
    parser.add_argument("--size", default="160x40", help="app size WxH")
    parser.add_argument("--rate", type=float, default=20.0, help="key presses per second")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    asyncio.run(run(args.command, (width, height), args.rate))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
