"""Engine methods for ``build`` and the build cache (core/dockerfile/builder.py, cache.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..enginebase import EngineBase
from ..events import ProgressFn

if TYPE_CHECKING:
    from ..types import BuildCachePruneReport, BuildCacheUsage
    from .builder import BuildOptions, BuildResult


class BuildOps(EngineBase):
    """Mixed into core.engine.Engine; `self.paths` and `self.store` are available."""

    def build(self, options: BuildOptions | None = None, progress: ProgressFn = None,
              **kw) -> BuildResult:
        """Build an image from a Dockerfile: ``build(BuildOptions(...), progress)`` or
        ``build(context=..., tags=[...], build_args={...})``. Returns a BuildResult."""
        from .builder import BuildOptions, build

        result = build(self, options if options is not None else BuildOptions(**kw), progress)
        try:
            image = self.store.image(result.image_id)
        except Exception:  # noqa: BLE001 - only the events' labels need it
            image = None
        for tag in result.tags:  # as Docker's builder: one image tag event per tag
            self._image_event("tag", image, actor_id=result.image_id, name=tag)
        return result

    def build_cache_prune(self, all: bool = True,
                          older_than: float | None = None) -> BuildCachePruneReport:
        """``builder prune``: drop build-cache entries and the blobs only they kept."""
        from .builder import prune_cache

        return prune_cache(self, all=all, older_than=older_than)

    def build_cache_usage(self) -> BuildCacheUsage:
        """``{"Entries", "Layers", "Size"}`` of the build cache (for ``system df``)."""
        from .builder import cache_usage

        return cache_usage(self)
