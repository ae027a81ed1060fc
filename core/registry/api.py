"""Engine methods for pull, push, login, logout (issue: registry)."""

from __future__ import annotations


class RegistryOps:
    """Mixed into core.engine.Engine; `self.paths` and `self.store` are available."""
