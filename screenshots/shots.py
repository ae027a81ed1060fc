"""What the screenshot scripts share: the containers of a scene, started once, and waiting
for the app in a headless session."""

from __future__ import annotations

import asyncio
import os
import sys
import time


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
            script = os.path.splitext(os.path.basename(sys.argv[0]))[0]
            raise SystemExit(f"{script}: timed out waiting for {what}")
        await asyncio.sleep(0.05)
