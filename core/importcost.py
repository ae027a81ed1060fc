"""Import-time savings for the one-shot CLI verbs (issue 16: a `run` is mostly imports).

``defer_inspect_for_dataclasses()`` makes the first ``import dataclasses`` of this process
(whenever it comes) run with a stand-in for :mod:`inspect`. dataclasses imports inspect
(with ast, dis, tokenize: ~11 ms here) only to write a signature into the ``__doc__`` of a
dataclass that has no docstring; ours have docstrings (a test checks). The stand-in imports the real
inspect the first time anything is looked up on it, so nothing can behave differently,
only later. It is in ``sys.modules`` only while dataclasses is being imported: every
other ``import inspect`` gets the real one.

It is a finder on ``sys.meta_path``, not an import of dataclasses: the verbs whose path
has no dataclass at all (``run``, ``create``, ``start``, ``exec``: core/records.py) do
not pay for importing dataclasses (~3 ms, with copy and weakref) either.

``LazyPattern`` is a regular expression compiled on first use: a module-level pattern
that only some calls need (a ``--hostname`` check, a ``--format`` template) no longer
costs every command that imports the module (0.1-0.5 ms each, the cache of ``re`` does
not outlive the process).
"""

from __future__ import annotations

import sys
import types

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _InspectOnFirstUse(types.ModuleType):
    def __getattr__(self, name: str):
        if sys.modules.get("inspect") is self:
            del sys.modules["inspect"]
        import inspect

        return getattr(inspect, name)


class _WithoutInspect:
    """dataclasses' own loader, run with the stand-in in ``sys.modules``."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        if "inspect" in sys.modules:
            self.loader.exec_module(module)
            return
        stand_in = _InspectOnFirstUse("inspect")
        sys.modules["inspect"] = stand_in
        try:
            self.loader.exec_module(module)
        finally:
            if sys.modules.get("inspect") is stand_in:
                del sys.modules["inspect"]

    def __getattr__(self, name: str):     # get_source, is_package...: the real loader's
        return getattr(self.loader, name)


class _DataclassesFinder:
    """Finds ``dataclasses`` as the path finder does, with its loader wrapped; leaves
    ``sys.meta_path`` at its first use."""

    @classmethod
    def find_spec(cls, name: str, path=None, target=None):
        if name != "dataclasses":
            return None
        if cls in sys.meta_path:
            sys.meta_path.remove(cls)
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None and "inspect" not in sys.modules:
            spec.loader = _WithoutInspect(spec.loader)  # type: ignore[assignment]
        return spec


def defer_inspect_for_dataclasses() -> None:
    """Install the finder (no-op once dataclasses or inspect is imported, or twice)."""
    if "dataclasses" in sys.modules or "inspect" in sys.modules:
        return
    if _DataclassesFinder not in sys.meta_path:
        sys.meta_path.insert(0, _DataclassesFinder)


class LazyPattern:
    """``re.compile(pattern, flags)``, made the first time one of its attributes
    (``match``, ``fullmatch``, ``search``, ``sub``, ``pattern``...) is used."""

    __slots__ = ("_args", "_compiled")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._args = (pattern, flags)
        self._compiled: Any = None

    def __getattr__(self, name: str):
        compiled = self._compiled
        if compiled is None:
            import re

            compiled = self._compiled = re.compile(*self._args)
        return getattr(compiled, name)
