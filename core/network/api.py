"""Engine methods for networks, IPAM, ports (issue: networks)."""

from __future__ import annotations


class NetworkOps:
    """Mixed into core.engine.Engine; `self.paths` and `self.store` are available."""
