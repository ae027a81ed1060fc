"""The restart helper: ``python -m core.runtime.restart ROOT ID DELAY``.

A container with ``--restart always|unless-stopped|on-failure[:N]`` is restarted the way
Podman does it without a daemon: when it exits, its shim records the exit and, if the
policy asks for it, starts this detached helper and ends. The helper waits the back-off,
then starts the container through the Engine (a new shim), unless in the meantime the
user stopped it (``stop``/``kill`` leave a ``stopped`` marker), removed it, or started it
again. ``RestartCount`` (in config.json, shown by inspect) counts the restarts.
"""

from __future__ import annotations

import sys
import time


def main(argv: list[str]) -> int:
    root, cid, delay = argv[1], argv[2], float(argv[3])
    time.sleep(max(0.0, delay))
    from core.engine import Engine
    from core.errors import NutshellError

    engine = Engine(root)
    try:
        engine._runtime.restart_by_policy(cid)
    except NutshellError as e:  # removed, started by hand, refused: nothing to do
        sys.stderr.write(f"restart {cid[:12]}: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
