"""What every area's Engine mixin may use of the Engine it is mixed into.

``core.engine.Engine`` sets ``paths`` and provides ``store``; the mixins in
core/<area>/api.py inherit this class so that their ``self.paths`` and ``self.store`` are
typed. It adds nothing at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .paths import Paths
    from .store.store import Store
    from .types import BuildCacheUsage, ContainerState


class EngineBase:
    """The Engine's state as the mixins see it (annotations only)."""

    paths: Paths

    if TYPE_CHECKING:
        @property
        def store(self) -> Store: ...

        # BuildOps' method, used by ImageOps.system_df
        def build_cache_usage(self) -> BuildCacheUsage: ...

        # ContainerOps' methods, used by NetworkOps.network_connect/disconnect
        def container(self, ref: str) -> str: ...

        def container_state(self, ref: str) -> ContainerState: ...

        def container_edit_networks(self, ref: str, network: str, connect: bool,
                                    aliases: list[str] | None = None) -> str: ...
