"""The parsers' property tests (tests/unit/test_parsers_property.py) for longer, with random
seeds: each property runs NUTSHELL_PROPERTY_EXAMPLES examples (default here 5,000; the
default test run uses 300 with a fixed seed). Prints the time per property and any
counterexample Hypothesis finds; exits non-zero when one is found.

    .venv/bin/python tests/benchmarks/bench_parsers_property.py [EXAMPLES]
"""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    examples = sys.argv[1] if len(sys.argv) > 1 else "5000"
    env = dict(os.environ, NUTSHELL_PROPERTY_EXAMPLES=examples)
    print(f"parser properties, {examples} random examples each")
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0",
                        "-o", "addopts=", "tests/unit/test_parsers_property.py"], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    for line in p.stdout.splitlines():
        if " call " in line or "passed" in line or "failed" in line or "Falsifying" in line \
                or line.startswith(("E ", "FAILED")):
            print(line)
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
