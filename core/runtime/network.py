"""The runtime's side of the network hook, for the shim.

When a bridge-mode container exits, its shim calls :func:`teardown_from_shim` (imported
only then: the shim stays small while the container runs) so the address and the pinned
netns are released, as Docker does at stop. It uses the network area's
``teardown_after_exit``, which needs neither the Engine nor netlink nor site-packages
(the shim runs ``python -I -S``). The set-up side lives in ``NetworkHook._setup_network``
(core/runtime/nethook.py), which calls ``Engine.setup_container_network`` before the
init starts; ``rm`` and reconciliation call ``Engine.teardown_container_network``.
"""

from __future__ import annotations


def teardown_from_shim(root: str, cid: str, run: str | None = None) -> None:
    from core.network.sandbox import teardown_after_exit

    teardown_after_exit(root, cid, run)
