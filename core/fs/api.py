"""Engine methods on a container's file system: diff, cp, export.

    engine.container_diff("web") -> [{"Path": "/etc/x", "Kind": 0|1|2}]   (C, A, D)
    with engine.copy_from_container("web", "/etc") as tar: tar.read(...); tar.stat
    engine.copy_to_container("web", "/tmp", "/host/file" or a readable tar stream)
    engine.copy_to_host("web", "/etc/hosts", "/tmp/out", archive=False)
    engine.export_container("web", out)                    the merged file system, one tar

The machinery lives in core/fs/{diff,cp,rootview}.py; every module is imported on first use.
"""

from __future__ import annotations

from ..enginebase import EngineBase

TYPE_CHECKING = False   # typing is not imported at run time: ~5 ms of every `run`
if TYPE_CHECKING:
    from typing import BinaryIO

    from ..types import ContainerChange, CopyResult
    from .cp import ArchiveStream


class FsOps(EngineBase):
    """Mixed into core.engine.Engine; `self.paths` and `self.store` are available."""

    def container_diff(self, ref: str) -> list[ContainerChange]:
        """The container's changes: [{"Path", "Kind"}], Kind 0 = C, 1 = A, 2 = D."""
        from .diff import container_changes

        return container_changes(self, ref)

    def copy_from_container(self, ref: str, path: str,
                            follow_link: bool = False) -> ArchiveStream:
        """A tar stream (core.fs.cp.ArchiveStream: read(), close(), .stat) of ``path``
        in the container, resolved inside its root."""
        from .cp import copy_from_container

        return copy_from_container(self, ref, path, follow_link)

    def copy_to_container(self, ref: str, path: str, source: str | BinaryIO,
                          archive: bool = False, follow_link: bool = False,
                          replace_kinds: bool = False) -> CopyResult:
        """Copy a host path (Docker's cp rules) or a tar stream into the container.
        ``replace_kinds`` (a tar stream only): an entry may replace a directory with a
        file or the reverse (the API's ``noOverwriteDirNonDir=false``); by default that
        is refused, as ``docker cp`` asks."""
        from .cp import copy_to_container

        return copy_to_container(self, ref, path, source, archive, follow_link, replace_kinds)

    def copy_to_host(self, ref: str, path: str, dest: str, archive: bool = False,
                     follow_link: bool = False) -> CopyResult:
        """``cp CONTAINER:PATH DEST`` onto the host (Docker's cp rules)."""
        from .cp import copy_to_host

        return copy_to_host(self, ref, path, dest, archive, follow_link)

    def export_container(self, ref: str, out: BinaryIO) -> int:
        """Write the container's merged file system to ``out`` as one tar."""
        from .cp import export_container

        return export_container(self, ref, out)
