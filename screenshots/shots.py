"""What the screenshot scripts share: the containers of a scene, started once, and waiting
for the app in a headless session."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _script() -> str:
    return os.path.splitext(os.path.basename(sys.argv[0]))[0]


def arguments(doc: str, argv: list[str] | None) -> argparse.Namespace | None:
    """The command line both scripts take (``--out``, ``--root``, ``--keep``); None, after
    saying so, when not run as root."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--root", help="state root to use (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="leave the containers and the root")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print(f"{_script()}: needs root (it runs real containers)", file=sys.stderr)
        return None
    return args


def new_app(engine, out: str, made: list[str], watch: bool = True):
    """A workbench on ``engine`` without animations, and its ``save(name)``: the screen
    as ``<name>.svg`` in ``out``, its file name added to ``made``."""
    from workbench.app import NutshellApp

    app = NutshellApp(engine, watch=watch)
    app.animation_level = "none"

    def save(name: str) -> None:
        app.save_screenshot(f"{name}.svg", path=out)
        made.append(f"{name}.svg")

    return app, save


def run_named(engine, argv: list[str]) -> str:
    """The ID of the container named by ``--name`` in a ``run`` command line: the one
    there is (kept by an earlier --keep run), else a new one created from it and started."""
    from workbench.panes.images import run_options

    name = argv[argv.index("--name") + 1]
    try:
        return engine.container(name)
    except Exception:  # noqa: BLE001 - not there yet
        pass
    opts, _ = run_options(argv)
    cid = engine.create(opts)
    engine.start(cid)
    return cid


async def wait_for(pilot, predicate, timeout: float = 15.0, what: str = "") -> None:
    """Let the app run until ``predicate()`` holds (an exception counts as not yet); after
    ``timeout`` seconds the script ends with a message naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        await pilot.pause()
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{_script()}: timed out waiting for {what}")
        await asyncio.sleep(0.05)
