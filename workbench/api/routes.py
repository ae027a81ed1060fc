"""Every endpoint, area by area (docs/api.md lists them with the tests that cover them)."""

from __future__ import annotations

from .router import Router


def register(r: Router) -> None:
    from . import containers, images, system

    system.register(r)
    containers.register(r)
    images.register(r)
