"""Import-time savings for the one-shot CLI verbs (issue 16: a `run` is mostly imports).

``dataclasses_without_inspect()`` imports :mod:`dataclasses` with a stand-in for
:mod:`inspect`. dataclasses imports inspect (with ast, dis, tokenize: ~11 ms here) only
to write a signature into the ``__doc__`` of a dataclass that has no docstring; ours
have docstrings. The stand-in imports the real inspect the first time anything is looked
up on it, so nothing can behave differently, only later. It is in ``sys.modules`` only
while dataclasses is being imported: every other ``import inspect`` gets the real one.
"""

from __future__ import annotations

import sys
import types


class _InspectOnFirstUse(types.ModuleType):
    def __getattr__(self, name: str):
        if sys.modules.get("inspect") is self:
            del sys.modules["inspect"]
        import inspect

        return getattr(inspect, name)


def dataclasses_without_inspect() -> None:
    """Import dataclasses now, deferring its import of inspect (no-op when either is
    already imported)."""
    if "dataclasses" in sys.modules or "inspect" in sys.modules:
        return
    stand_in = _InspectOnFirstUse("inspect")
    sys.modules["inspect"] = stand_in
    try:
        import dataclasses  # noqa: F401
    finally:
        if sys.modules.get("inspect") is stand_in:
            del sys.modules["inspect"]
