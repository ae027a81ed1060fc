"""Engine methods for commit, diff, cp, export, volumes and build (issue: layers out).

    engine.container_diff("web") -> [{"Path": "/etc/x", "Kind": 0|1|2}]   (C, A, D)
    engine.commit("web", "me/web:2", message=..., changes=["CMD [\\"sh\\"]"]) -> Image
    with engine.copy_from_container("web", "/etc") as tar: tar.read(...); tar.stat
    engine.copy_to_container("web", "/tmp", "/host/file" or a readable tar stream)
    engine.copy_to_host("web", "/etc/hosts", "/tmp/out", archive=False)
    engine.export_container("web", out)                    the merged file system, one tar
    engine.volume_create("data") / volumes() / volume_inspect / volume_rm / volume_prune

The machinery lives in core/build/{diff,commit,cp,rootview,compress}.py and
core/volumes/; every module is imported on first use.
"""

from __future__ import annotations

from typing import BinaryIO


class BuildOps:
    """Mixed into core.engine.Engine; `self.paths` and `self.store` are available."""

    # ---------------------------------------------------------------- diff / commit
    def container_diff(self, ref: str) -> list[dict]:
        """The container's changes: [{"Path", "Kind"}], Kind 0 = C, 1 = A, 2 = D."""
        from .diff import container_changes

        return container_changes(self, ref)

    def commit(self, container: str, ref: str | None = None, message: str | None = None,
               author: str | None = None, changes: list[str] | None = None, pause: bool = True,
               compression: str = "gzip", progress=None):
        """The container's upper dir as a new layer on its image; returns the new Image
        (tagged ``ref`` when given). Running containers are frozen while it is read."""
        from .commit import commit

        return commit(self, container, ref, message=message, author=author, changes=changes,
                      pause=pause, compression=compression, progress=progress)

    # ---------------------------------------------------------------- cp / export
    def copy_from_container(self, ref: str, path: str, follow_link: bool = False):
        """A tar stream (core.build.cp.ArchiveStream: read(), close(), .stat) of ``path``
        in the container, resolved inside its root."""
        from .cp import copy_from_container

        return copy_from_container(self, ref, path, follow_link)

    def copy_to_container(self, ref: str, path: str, source: str | BinaryIO,
                          archive: bool = False, follow_link: bool = False) -> dict:
        """Copy a host path (Docker's cp rules) or a tar stream into the container."""
        from .cp import copy_to_container

        return copy_to_container(self, ref, path, source, archive, follow_link)

    def copy_to_host(self, ref: str, path: str, dest: str, archive: bool = False,
                     follow_link: bool = False) -> dict:
        """``cp CONTAINER:PATH DEST`` onto the host (Docker's cp rules)."""
        from .cp import copy_to_host

        return copy_to_host(self, ref, path, dest, archive, follow_link)

    def export_container(self, ref: str, out: BinaryIO) -> int:
        """Write the container's merged file system to ``out`` as one tar."""
        from .cp import export_container

        return export_container(self, ref, out)

    # ---------------------------------------------------------------- volumes
    @property
    def _volumes(self):
        from ..volumes.store import Volumes

        return Volumes(self.paths)

    def volume_create(self, name: str | None = None, labels: dict | None = None,
                      driver: str = "local", options: dict | None = None) -> dict:
        return self._volumes.create(name, labels, driver, options)

    def volumes(self, filters: dict | None = None) -> list[dict]:
        return self._volumes.list(filters)

    def volume_inspect(self, name: str) -> dict:
        return self._volumes.inspect(name, usage=True)

    def volume_rm(self, name: str, force: bool = False) -> None:
        self._volumes.remove(name, force)

    def volume_prune(self, all: bool = False, filters: dict | None = None) -> dict:
        return self._volumes.prune(all, filters)

    # ---------------------------------------------------------------- build
    # The Dockerfile builder: core/build/builder.py (+ cache.py).
    def build(self, options=None, progress=None, **kw):
        """Build an image from a Dockerfile: ``build(BuildOptions(...), progress)`` or
        ``build(context=..., tags=[...], build_args={...})``. Returns a BuildResult."""
        from .builder import BuildOptions, build

        return build(self, options if options is not None else BuildOptions(**kw), progress)

    def build_cache_prune(self, all: bool = True, older_than: float | None = None) -> dict:
        """``builder prune``: drop build-cache entries and the blobs only they kept."""
        from .builder import prune_cache

        return prune_cache(self, all=all, older_than=older_than)

    def build_cache_usage(self) -> dict:
        """``{"Entries", "Layers", "Size"}`` of the build cache (for ``system df``)."""
        from .builder import cache_usage

        return cache_usage(self)
