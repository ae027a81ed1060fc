"""The cyclic collector while a command starts (workbench.cli.configure_gc): a verb raises
the threshold, the workbench starts with the collector off and turns it on after its first
frame. Each check runs in a fresh interpreter (this one's collector is pytest's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_verb_makes_no_collection_on_the_run_path_but_still_collects():
    got = _fresh(
        "import gc, json, sys\n"
        "from workbench.cli import configure_gc, build_parser\n"
        "configure_gc('run')\n"
        "n = []\n"
        "gc.callbacks.append(lambda phase, info: phase == 'stop' and n.append(1))\n"
        "build_parser(('containers',), only_verb='run').parse_args(['run', 'img', 'true'])\n"
        "import core.engine, core.runtime.containers, core.runtime.lifecycle\n"
        "import core.runtime.start.launch, core.runtime.seccomp.default\n"
        "during = len(n)\n"
        "junk = [[] for _ in range(30000)]\n"
        "for j in junk: j.append(j)\n"
        "print(json.dumps({'enabled': gc.isenabled(), 'threshold': gc.get_threshold()[0],\n"
        "                  'during': during, 'later': len(n) > during}))\n")
    assert got == {"enabled": True, "threshold": 20000, "during": 0, "later": True}


def test_the_workbench_starts_without_the_collector():
    got = _fresh(
        "import gc, json\n"
        "from workbench.cli import configure_gc\n"
        "configure_gc(None)\n"
        "print(json.dumps({'enabled': gc.isenabled()}))\n")
    assert got == {"enabled": False}
