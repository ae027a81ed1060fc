"""Engine methods for the container lifecycle (issue: runtime)."""

from __future__ import annotations


class ContainerOps:
    """Mixed into core.engine.Engine; `self.paths` and `self.store` are available."""
