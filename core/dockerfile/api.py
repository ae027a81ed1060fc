"""Engine methods for ``build`` and the build cache (core/dockerfile/builder.py, cache.py)."""

from __future__ import annotations

from ..enginebase import EngineBase

TYPE_CHECKING = False   # typing is not imported at run time: ~5 ms of every `run`
if TYPE_CHECKING:
    from ..events import ProgressFn
    from ..fsutil import Readable
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

    def build_from_archive(self, archive: Readable, options: BuildOptions,
                           progress: ProgressFn = None, max_bytes: int | None = None,
                           max_entries: int | None = None) -> BuildResult:
        """Build from a context sent as a tar stream (plain or compressed): the Docker
        API's ``POST /build``. ``options.dockerfile`` is a path *inside* the archive
        (default ``Dockerfile``); ``options.context`` is ignored. The archive is unpacked
        by the safe extractor into a private directory removed afterwards
        (core/dockerfile/tarcontext.py); more than ``max_bytes`` of stream is an error."""
        import os
        from dataclasses import replace

        from .builder import build
        from .tarcontext import read_dockerfile, unpacked

        with unpacked(archive, os.path.join(self.paths.tmp, "build-contexts"), max_bytes,
                      max_entries) as ctx:
            rel, text = read_dockerfile(ctx, options.dockerfile)
            opts = replace(options, context=ctx, dockerfile=os.path.join(ctx, rel),
                           dockerfile_text=text)
            return build(self, opts, progress)

    def build_cache_prune(self, all: bool = True,
                          older_than: float | None = None) -> BuildCachePruneReport:
        """``builder prune``: drop build-cache entries and the blobs only they kept."""
        from .builder import prune_cache

        return prune_cache(self, all=all, older_than=older_than)

    def build_cache_usage(self) -> BuildCacheUsage:
        """``{"Entries", "Layers", "Size"}`` of the build cache (for ``system df``)."""
        from .builder import cache_usage

        return cache_usage(self)
