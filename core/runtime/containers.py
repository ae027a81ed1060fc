"""The container runtime: ``Runtime(engine)`` does the work, ``core/runtime/api.py``
exposes it as Engine methods.

A container is a directory (config.json, state.json, upper/work/merged, its log and
name files) plus, while it runs, a shim process and its runtime dir (attach socket).
``Runtime`` is put together from one part per concern:

    runtime_base.py   paths and records, lookup and reconciliation, release and removal
    lifecycle.py      create, start, stop, kill, restart, update, wait, rm, prune, rename
    nethook.py        the network hook (network mode -> what the init joins)
    freezer.py        pause, unpause
    streams.py        attach, exec, logs
    views.py          ps, size, inspect, top, stats
"""

from __future__ import annotations

from .freezer import Freezer
from .lifecycle import ImageMissing, Lifecycle
from .nethook import NetworkHook
from .streams import Streams
from .views import Views

__all__ = ["ImageMissing", "Runtime"]  # ImageMissing: the CLI pulls and retries on it


class Runtime(Lifecycle, Freezer, NetworkHook, Streams, Views):
    """Every container verb; one instance per Engine (``engine._runtime``)."""
