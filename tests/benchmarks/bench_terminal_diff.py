"""The embedded terminal against tmux, every case: a score (cases with the same screen / all).

    .venv/bin/python tests/benchmarks/bench_terminal_diff.py [--random 200] [--seed 17]

Cases: the hand-written ones and the recorded programs of tests/terminal_diff.py (the default
test run has them too), each recorded program also cut after every 4 KiB (mid-screen states),
and --random streams of well-formed sequences from the fuzzer's vocabulary (no raw garbage,
whose handling legitimately differs between emulators). Prints each differing case with its
first differences, then the score per group. Needs tmux; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.terminal_diff import (  # noqa: E402
    HAND,
    TMUX_DIFFERS,
    Tmux,
    differences,
    known_tmux_deviation,
    ours,
    recorded,
)
from tests.unit.test_terminal_fuzz import fragment  # noqa: E402


def well_formed(rng: random.Random) -> bytes:
    """A stream from the fuzzer's vocabulary without its raw random bytes and cut characters."""
    parts = []
    while len(parts) < rng.randrange(5, 40):
        f = fragment(rng)
        try:
            f.decode()
        except UnicodeDecodeError:
            continue
        if f.startswith(b"\x1b[") and any(c < 0x20 for c in f[2:]):
            continue  # C0 inside CSI: covered by its own case
        parts.append(f)
    return b"".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--random", type=int, default=200)
    ap.add_argument("--seed", type=int, default=17)
    args = ap.parse_args()
    groups: dict[str, dict[str, bytes]] = {"hand-written": dict(HAND), "programs": recorded()}
    cuts = {}
    for name, data in groups["programs"].items():
        for end in range(4096, len(data), 4096):
            cuts[f"{name}@{end}"] = data[:end]
    groups["programs cut every 4 KiB"] = cuts
    rng = random.Random(args.seed)
    groups["random well-formed"] = {f"random-{i}": well_formed(rng) for i in range(args.random)}
    tmux = Tmux()
    t0 = time.monotonic()
    scores = []
    excluded: dict[str, int] = {}
    try:
        for group, cases in groups.items():
            same = 0
            for name, data in list(cases.items()):
                known = TMUX_DIFFERS.get(name) or known_tmux_deviation(data)
                if known:
                    excluded[known] = excluded.get(known, 0) + 1
                    del cases[name]
                    continue
                diff = differences(ours(data), tmux.screen(data))
                if diff:
                    print(f"DIFFERS {group} / {name}: " + "; ".join(diff[:3]))
                else:
                    same += 1
            scores.append((group, same, len(cases)))
    finally:
        tmux.close()
    print()
    for group, same, total in scores:
        print(f"{group:28s} {same:4d} / {total:4d} the same as tmux")
    same = sum(s for _, s, _ in scores)
    total = sum(t for _, _, t in scores)
    print(f"{'all':28s} {same:4d} / {total:4d} ({100 * same / total:.1f} %) in {time.monotonic() - t0:.0f} s")
    for what, n in excluded.items():
        print(f"left out, tmux differs from xterm there: {what}: {n} streams")


if __name__ == "__main__":
    main()
