"""Engine: the one facade every caller (CLI, app, tests) goes through.

The methods live in one mixin per area so the areas can grow in their own modules:

    core/store/api.py       ImageOps      images, load/save/import, tag, rmi, history, commit, df
    core/runtime/api.py     ContainerOps  create/start/run/stop/kill/rm/exec/attach/logs/...
    core/registry/api.py    RegistryOps   pull, push, login, logout
    core/network/api.py     NetworkOps    network create/ls/inspect/rm/connect/...
    core/volumes/api.py     VolumeOps     volume create/ls/inspect/rm/prune
    core/fs/api.py          FsOps         diff, cp, export
    core/dockerfile/api.py  BuildOps      build, builder prune

Every method returns a dataclass or a Docker-shaped dict typed in core/types.py, and
reports progress through a
callback (see core/events.py). Nothing here prints.
"""

from __future__ import annotations

from . import paths as _paths
from .dockerfile.api import BuildOps
from .fs.api import FsOps
from .network.api import NetworkOps
from .registry.api import RegistryOps
from .runtime.api import ContainerOps
from .store.api import ImageOps
from .volumes.api import VolumeOps

TYPE_CHECKING = False   # typing is not imported at run time: ~5 ms of every `run`
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from threading import Event

    from .store.store import Store
    from .types import EventMessage, Info, Version


class Engine(ImageOps, ContainerOps, RegistryOps, NetworkOps, VolumeOps, FsOps, BuildOps):
    """Entry point of the runtime library.

    ``Engine(root=None)``: the state root is ``root``, else ``$NUTSHELL_ROOT``, else the
    default (see core/paths.py). Creating an Engine touches nothing on disk until a
    method needs it.
    """

    def __init__(self, root: str | None = None):
        self.paths = _paths.resolve(root)
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        """The image store (core.store.Store), opened lazily."""
        if self._store is None:
            from .store.store import Store

            self._store = Store(self.paths)
        return self._store

    def version(self) -> Version:
        import platform

        from . import __version__

        return {
            "Version": __version__,
            "ApiVersion": "1.44",
            "Os": "linux",
            "Arch": _paths_arch(),
            "KernelVersion": platform.release(),
            "PythonVersion": platform.python_version(),
            "Root": self.paths.root,
            "RuntimeDir": self.paths.run,
        }


    def events(self, since: str | float | None = None, until: str | float | None = None,
               filters: Mapping[str, object] | list[str] | None = None, follow: bool = True,
               stop: Event | Callable[[], bool] | None = None) -> Iterator[EventMessage]:
        """Docker's events, from the journal every process appends to (core/journal.py).

        ``since``/``until``: unix seconds, RFC 3339 or a duration before now (``10m``).
        With neither ``since`` nor ``until`` a follower sees only new events (Docker's
        rule); without ``follow`` the journal's events (from ``since``) and the iterator
        ends. ``filters``: Docker's
        (type, event, container, image, network, volume, label, scope; plus name), as
        ``["k=v", ...]`` or ``{"k": ["v", ...]}``. Following ends when ``until`` passes or
        ``stop`` (a threading.Event or a callable) says so; it checks every 0.1 s.
        """
        from .eventfeed import read

        return read(self.paths.root, since=since, until=until, filters=filters,
                    follow=follow, stop=stop)

    def info(self) -> Info:
        """System-wide facts like ``docker info``: counts, storage, cgroups, host."""
        import os
        import platform

        from . import __version__
        from .errors import NutshellError

        states = {"running": 0, "paused": 0, "stopped": 0}
        containers = self.ps(all=True)
        for c in containers:
            st = c.get("State")
            states[st if st in ("running", "paused") else "stopped"] += 1
        try:
            from .runtime import cgroups

            cg_version = {"v2": "2", "hybrid": "1 (hybrid: v2 mounted at unified/)",
                          "v1": "1"}[cgroups.detect()]
        except NutshellError as e:
            cg_version = f"unavailable ({e})"
        try:
            from .network.nat import nft_binary

            nft = nft_binary()
        except ImportError:
            nft = None
        mem = 0
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemTotal:"):
                        mem = int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
        os_name = ""
        try:
            with open("/etc/os-release") as f:
                for line in f:
                    if line.startswith("PRETTY_NAME="):
                        os_name = line.split("=", 1)[1].strip().strip('"')
        except OSError:
            pass
        return {
            "Containers": len(containers), "ContainersRunning": states["running"],
            "ContainersPaused": states["paused"], "ContainersStopped": states["stopped"],
            "Images": len(self.images()),
            "Driver": "overlay", "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs", "CgroupVersion": cg_version,
            "NetworkTool": nft or "none (no nft: no NAT or published ports)",
            "ServerVersion": __version__, "KernelVersion": platform.release(),
            "OperatingSystem": os_name, "OSType": "linux", "Architecture": platform.machine(),
            "NCPU": os.cpu_count() or 1, "MemTotal": mem,
            "Name": platform.node(), "DockerRootDir": self.paths.root,
            "RuntimeDir": self.paths.run, "PythonVersion": platform.python_version(),
            "Runtime": "nutshell (one python -I -S shim per container, no daemon)",
        }


def _paths_arch() -> str:
    import platform

    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)
