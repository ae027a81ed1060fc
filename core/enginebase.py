"""What every area's Engine mixin may use of the Engine it is mixed into.

``core.engine.Engine`` sets ``paths`` and provides ``store``; the mixins in
core/<area>/api.py inherit this class so that their ``self.paths`` and ``self.store`` are
typed. At run time it adds only ``_event``
(the event journal).
"""

from __future__ import annotations

TYPE_CHECKING = False   # typing is not imported at run time: ~5 ms of every `run`
if TYPE_CHECKING:
    from .paths import Paths
    from .store.image import Image
    from .store.store import Store
    from .types import BuildCacheUsage, ContainerState


class EngineBase:
    """The Engine's state as the mixins see it (annotations only)."""

    paths: Paths

    def _event(self, type: str, action: str, actor_id: str,
               attributes: dict[str, object] | None = None) -> None:
        """Record a Docker event in the store's journal (core/journal.py); never raises."""
        from . import journal

        journal.record(self.paths.root, type, action, actor_id, attributes)

    if TYPE_CHECKING:
        @property
        def store(self) -> Store: ...

        # BuildOps' method, used by ImageOps.system_df
        def build_cache_usage(self) -> BuildCacheUsage: ...

        # ContainerOps' method: a container event with its name, image and labels
        def _container_event(self, ref: str, action: str, **extra: object) -> None: ...

        # ContainerOps' methods, used by NetworkOps.network_connect/disconnect
        def container(self, ref: str) -> str: ...

        def container_state(self, ref: str) -> ContainerState: ...

        def container_edit_networks(self, ref: str, network: str, connect: bool,
                                    aliases: list[str] | None = None) -> str: ...

    def _image_event(self, action: str, image: Image | None, actor_id: str = "",
                     name: str = "") -> None:
        """An image event as Docker's ``LogImageEvent``: the image's labels, then ``name``
        (the reference, or the image ID)."""
        attrs: dict[str, object] = {}
        if image is not None:
            attrs.update((image.config.get("config") or {}).get("Labels") or {})
            actor_id = actor_id or image.id
        attrs["name"] = name or actor_id
        self._event("image", action, actor_id, attrs)
