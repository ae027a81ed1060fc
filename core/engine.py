"""Engine: the one facade every caller (CLI, app, tests) goes through.

The methods live in one mixin per area so the areas can grow in their own modules:

    core/store/api.py      ImageOps      images, load/save/import, tag, rmi, history, df
    core/runtime/api.py    ContainerOps  create/start/run/stop/kill/rm/exec/attach/logs/...
    core/registry/api.py   RegistryOps   pull, push, login, logout
    core/network/api.py    NetworkOps    network create/ls/inspect/rm/connect/...
    core/build/api.py      BuildOps      commit, diff, cp, export, volumes, build

Every method returns plain dataclasses or dicts and reports progress through a
callback (see core/events.py). Nothing here prints.
"""

from __future__ import annotations

from . import paths as _paths
from .build.api import BuildOps
from .network.api import NetworkOps
from .registry.api import RegistryOps
from .runtime.api import ContainerOps
from .store.api import ImageOps


class Engine(ImageOps, ContainerOps, RegistryOps, NetworkOps, BuildOps):
    """Entry point of the runtime library.

    ``Engine(root=None)``: the state root is ``root``, else ``$NUTSHELL_ROOT``, else the
    default (see core/paths.py). Creating an Engine touches nothing on disk until a
    method needs it.
    """

    def __init__(self, root: str | None = None):
        self.paths = _paths.resolve(root)
        self._store = None

    @property
    def store(self):
        """The image store (core.store.Store), opened lazily."""
        if self._store is None:
            from .store.store import Store

            self._store = Store(self.paths)
        return self._store

    def version(self) -> dict:
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


def _paths_arch() -> str:
    import platform

    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)
