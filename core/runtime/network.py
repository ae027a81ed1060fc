"""The runtime's side of the network hook, for the shim.

When a bridge-mode container exits, its shim calls :func:`teardown_from_shim` (imported
only then: the shim stays small while the container runs) so the veth, address and
pinned netns are released, as Docker does at stop. The set-up side lives in
``Runtime._setup_network`` (core/runtime/containers.py), which calls the network area's
``Engine.setup_container_network`` before the init starts.
"""

from __future__ import annotations


def teardown_from_shim(root: str, cid: str) -> None:
    from core.engine import Engine

    engine = Engine(root)
    teardown = getattr(engine, "teardown_container_network", None)
    if teardown is not None:
        teardown(cid)
