"""Engine methods for named volumes: create, ls, inspect, rm, prune (core/volumes/store.py)."""

from __future__ import annotations

from ..enginebase import EngineBase

TYPE_CHECKING = False   # typing is not imported at run time: ~5 ms of every `run`
if TYPE_CHECKING:
    from ..types import Volume, VolumePruneReport
    from .store import Volumes


class VolumeOps(EngineBase):
    """Mixed into core.engine.Engine; `self.paths` is available."""

    @property
    def _volumes(self) -> Volumes:
        from .store import Volumes

        return Volumes(self.paths)

    def volume_create(self, name: str | None = None, labels: dict | None = None,
                      driver: str = "local", options: dict | None = None) -> Volume:
        vol = self._volumes.create(name, labels, driver, options)
        self._event("volume", "create", vol["Name"], {"driver": vol.get("Driver") or driver})
        return vol

    def volumes(self, filters: dict | None = None) -> list[Volume]:
        return self._volumes.list(filters)

    def volume_inspect(self, name: str) -> Volume:
        return self._volumes.inspect(name, usage=True)

    def volume_rm(self, name: str, force: bool = False) -> None:
        vols = self._volumes
        existed = vols.exists(name)
        vols.remove(name, force)
        if existed:
            self._event("volume", "destroy", name, {"driver": "local"})

    def volume_prune(self, all: bool = False, filters: dict | None = None) -> VolumePruneReport:
        report = self._volumes.prune(all, filters)
        for name in report["VolumesDeleted"]:
            self._event("volume", "destroy", name, {"driver": "local"})
        return report
