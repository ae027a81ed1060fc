"""Nutshell's runtime library: images, containers, networks, volumes, builds.

No Textual, no printing, no argparse here. Callers use :class:`core.Engine`.
Importing this package is cheap: the Engine is loaded on first use.
"""

__version__ = "0.1.0"

__all__ = ["Engine", "__version__", "prepare_container_start"]


def prepare_container_start(exec_: bool = False) -> None:
    """Start the sealed interpreter a container start (or, with ``exec_``, an exec) needs
    before it is needed: the CLI calls this as ``run``, ``start`` and ``exec`` begin, so
    that interpreter's ~20 ms start runs while the CLI imports and parses
    (core/runtime/start/seal.py, ``prepare``)."""
    from .runtime.start import seal

    seal.prepare("core.runtime.start.enter" if exec_ else "core.runtime.start.boot")


def __getattr__(name):
    if name == "Engine":
        from .engine import Engine

        return Engine
    raise AttributeError(name)
