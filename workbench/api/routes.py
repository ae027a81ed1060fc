"""Every endpoint, area by area (docs/api.md lists them with the tests that cover them)."""

from __future__ import annotations

from .router import Router


def register(r: Router) -> None:
    from . import containers, system

    system.register(r)
    containers.register(r)
    from . import archive, execs, networks, stats, volumes  # exec, cp, stats, networks, volumes

    for area in (execs, archive, stats, networks, volumes):
        area.register(r)
