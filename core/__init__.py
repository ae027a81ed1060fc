"""Nutshell's runtime library: images, containers, networks, volumes, builds.

No Textual, no printing, no argparse here. Callers use :class:`core.Engine`.
Importing this package is cheap: the Engine is loaded on first use.
"""

__version__ = "0.1.0"

__all__ = ["Engine", "__version__"]


def __getattr__(name):
    if name == "Engine":
        from .engine import Engine

        return Engine
    raise AttributeError(name)
