"""Load pyroute2's rtnetlink message classes without paying for all of pyroute2.

``import pyroute2`` runs pyroute2/__init__.py, which imports every feature of the library
(IPDB, NDB, conntrack, nl80211, ethtool, asyncio ...): about 320 ms of CPU on the
reference machine, and any ``import pyroute2.x.y`` pays it because a package's
``__init__`` runs before its submodules. We only need the rtnetlink message codecs
(``ifinfmsg``, ``ifaddrmsg``, ``rtmsg``): ~30 ms when loaded on their own.

So the ``pyroute2`` package object is created from its spec *without* executing its
``__init__``; submodules import normally underneath it. The package stays fully usable:
the first time anyone asks it for a name that is not a submodule (``from pyroute2
import IPRoute``), the real ``__init__`` runs in place and provides it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading

_lock = threading.Lock()


def _install_lazy_package() -> None:
    spec = importlib.util.find_spec("pyroute2")
    if spec is None:
        from core.errors import RuntimeFailure

        raise RuntimeFailure("pyroute2 is not installed", hint="pip install pyroute2")
    pkg = importlib.util.module_from_spec(spec)  # __path__ and __spec__ set, nothing run
    state = {"initialised": False}

    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        # A submodule (``from pyroute2 import config``): import just that.
        if importlib.util.find_spec(f"pyroute2.{name}") is not None:
            return importlib.import_module(f"pyroute2.{name}")
        # Anything else is one of the package's public names: run the real __init__ now.
        if not state["initialised"]:
            state["initialised"] = True
            del pkg.__dict__["__getattr__"]
            spec.loader.exec_module(pkg)  # type: ignore[union-attr]  # find_spec found it
            return getattr(pkg, name)
        raise AttributeError(name)

    pkg.__getattr__ = __getattr__  # type: ignore[method-assign]  # PEP 562 module __getattr__
    sys.modules["pyroute2"] = pkg


def rtnl_messages():
    """(ifinfmsg, ifaddrmsg, rtmsg) classes of pyroute2."""
    with _lock:
        if "pyroute2" not in sys.modules:
            _install_lazy_package()
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    return ifinfmsg, ifaddrmsg, rtmsg
