"""pause / unpause: the container's cgroup frozen and thawed (v1 freezer.state, v2
cgroup.freeze), recorded in state.json under the lock the shim writes it with."""

from __future__ import annotations

from ..errors import Conflict, NutshellError, RuntimeFailure
from .runtime_base import RuntimeBase
from .state import init_alive


class Freezer(RuntimeBase):
    """pause and unpause."""
    def pause(self, ref: str) -> str:
        """Freeze every process of a running container with the cgroup freezer (v1
        ``freezer.state``, v2 ``cgroup.freeze``), as ``docker pause``."""
        from . import cgroups as _cg

        cid = self.resolve(ref)
        with self.records.oplock(cid):
            st = self.state(cid)
            if st.get("Status") == "paused":
                raise Conflict(f"Container {cid} is already paused")
            if st.get("Status") != "running" or not init_alive(st):
                raise Conflict(f"Container {cid} is not running")
            cg = _cg.Cgroup.open(f"nutshell/{cid}")
            if cg is None:
                raise RuntimeFailure(f"the cgroup of container {cid[:12]} is gone")
            cg.freeze()
            if not self._set_paused(cid, True):  # it exited meanwhile
                cg.thaw()
                raise Conflict(f"Container {cid} is not running")
        return cid

    def unpause(self, ref: str) -> str:
        from . import cgroups as _cg

        cid = self.resolve(ref)
        with self.records.oplock(cid):
            st = self.state(cid)
            if st.get("Status") != "paused":
                raise Conflict(f"Container {cid} is not paused")
            cg = _cg.Cgroup.open(f"nutshell/{cid}")
            if cg is not None:
                cg.thaw()
            self._set_paused(cid, False)
        return cid

    def _set_paused(self, cid: str, paused: bool) -> bool:
        """Record paused/running in state.json under the lock the shim writes it with;
        False when the container is no longer running (the shim recorded its exit)."""
        with self.records.lock(cid):
            st = self.records.read_state_raw(cid)
            if st.get("Status") not in ("running", "paused"):
                return False
            st["Status"] = "paused" if paused else "running"
            st["Paused"] = paused
            self.records.write_state(cid, st)
        return True

    def _thaw_if_paused(self, cid: str, st: dict) -> None:
        if st.get("Status") != "paused":
            return
        from . import cgroups as _cg

        cg = _cg.Cgroup.open(f"nutshell/{cid}")
        try:
            if cg is not None and cg.is_frozen():
                cg.thaw()
        except NutshellError:
            pass
        self._set_paused(cid, False)
