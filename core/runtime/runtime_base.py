"""What every part of ``Runtime`` (containers.py) stands on: the engine's paths and
records, looking a container up (with reconciliation when its shim died), releasing
and removing what a container holds, the attach socket, and waiting for an exit."""

from __future__ import annotations

import os
import time

from ..errors import NotFound, NutshellError
from . import security as _security
from .attach import AttachClient
from .state import Records, wait_gone

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class RuntimeBase:
    """The state every part shares and the steps more than one part takes."""
    if TYPE_CHECKING:  # provided by the other parts of Runtime (containers.py)
        def _setup_network(self, cid: str, cfg: dict) -> tuple[dict, Any]: ...
        def _teardown_network(self, cid: str, cfg: dict) -> None: ...
        def _thaw_if_paused(self, cid: str, st: dict) -> None: ...
        def attach(self, ref: str) -> AttachClient: ...

    def __init__(self, engine):
        self.engine = engine
        self.paths = engine.paths
        self.records = Records(engine.paths)

    def resolve(self, ref: str) -> str:
        return self.records.resolve(ref)

    def state(self, cid: str) -> dict:
        return self.records.state(cid, on_reconciled=self._after_reconcile)

    def _after_reconcile(self, cid: str, st: dict) -> None:
        """The shim died: undo what it would have undone at exit."""
        try:
            cfg = self.records.read_config(cid)
        except NotFound:
            return
        self._release(cid, cfg)
        if cfg.get("HostConfig", {}).get("AutoRemove"):
            self._remove_files(cid)
            self._remove_volumes(cfg)

    def _release(self, cid: str, cfg: dict) -> None:
        """What a stopped container no longer needs: cgroup, network, runtime dir."""
        from . import cgroups as _cg

        cg = _cg.Cgroup.open(f"nutshell/{cid}")
        if cg is not None:
            try:
                cg.destroy()
            except NutshellError:
                pass
        self._teardown_network(cid, cfg)
        _rmtree(self.paths.run_container(cid))

    def _remove_files(self, cid: str) -> None:
        try:
            name = str(self.records.read_config(cid).get("Name") or "").lstrip("/")
        except (NutshellError, ValueError, OSError):
            name = ""
        _rmtree(self.paths.container(cid))
        if name:
            # under the lock create takes to claim a name: a create of the same name that
            # runs now cannot have its new index entry removed by ours
            with self.records.global_lock():
                self.records.unindex_name(name, cid)
        _rmtree(self.paths.run_container(cid))

    def _remove_volumes(self, cfg: dict, only: list[str] | None = None) -> list[str]:
        """Remove the container's anonymous volumes no other container uses (``rm -v``,
        ``--rm``, a failed create); ``only`` limits it to those names."""
        names = anonymous_volumes(cfg)
        if only is not None:
            names = [n for n in names if n in only]
        if not names:
            return []
        from ..volumes.store import Volumes

        try:
            removed = Volumes(self.paths).remove_unused(names)
        except NutshellError:
            return []
        from .. import journal

        for name in removed:
            journal.record(self.paths.root, "volume", "destroy", name, {"driver": "local"})
        return removed

    def _seccomp_filter(self, cfg: dict, conf) -> tuple[bytes, dict] | None:
        """The container's compiled seccomp filter and its load options (None:
        unconfined); compiled filters are cached in the runtime dir (root's only)."""
        return _security.seccomp_filter(conf, list(cfg.get("Capabilities") or []),
                                        os.path.join(self.paths.run, "seccomp"))

    def _attach_socket(self, cid: str) -> str:
        return os.path.join(self.paths.run_container(cid), "attach.sock")

    def _connect(self, cid: str) -> AttachClient | None:
        try:
            return AttachClient.connect(self._attach_socket(cid))
        except OSError:
            return None

    def _wait_exit(self, cid: str, st: dict, client: AttachClient | None,
                   timeout: float | None) -> bool:
        """Wait until the container has exited and its shim has recorded it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if client is not None:
            try:
                while client.exit_code is None:
                    if deadline is not None:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return False
                        client.sock.settimeout(left)
                    try:
                        if client.read() is None:
                            break
                    except (TimeoutError, BlockingIOError):
                        return False
            finally:
                client.sock.settimeout(None)
        # the shim is exiting (or gone): make sure it is
        left = 10.0 if deadline is None else max(0.5, deadline - time.monotonic())
        wait_gone(st.get("ShimPid") or 0, st.get("ShimStartTime"), left)
        self.state(cid)
        return True

    def _mark_stopped(self, cid: str) -> None:
        """The user stopped it: the shim and the restart helper leave it stopped."""
        try:
            with open(os.path.join(self.paths.container(cid), "stopped"), "w"):
                pass
        except OSError:
            pass


def anonymous_volumes(cfg: dict) -> list[str]:
    return [m["Name"] for m in cfg.get("Mounts") or []
            if m.get("Type") == "volume" and m.get("Anonymous") and m.get("Name")]


def cgroup_dirs(cg) -> tuple[list[str], list[str]]:
    """(dirs a container process must join, dirs it joins if it can): every hierarchy's
    dir once; a hybrid host's unified dir is optional (it may hold no controllers)."""
    required: list[str] = []
    optional: list[str] = []
    seen = set()
    for key, d in cg.paths.items():
        real = os.path.realpath(d)
        if real in seen:
            continue
        seen.add(real)
        (optional if key == "unified" and cg.version == "hybrid" else required).append(d)
    return required, optional


def _rmtree(path: str) -> None:
    """shutil.rmtree, ignoring errors; shutil imported here (3 ms with bz2 and lzma: the
    CLI's `run` does not remove anything itself)."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)
