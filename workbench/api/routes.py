"""Every endpoint, area by area (docs/api.md lists them with the tests that cover them)."""

from __future__ import annotations

from .router import Router


def register(r: Router) -> None:
    from . import archive, build, containers, execs, images, networks, stats, system, volumes

    for area in (system, containers, execs, archive, stats, images, build, networks, volumes):
        r.include(area.routes)
