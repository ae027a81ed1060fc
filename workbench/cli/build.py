"""CLI verbs for the build area."""

from __future__ import annotations


def register(sub, group) -> None:
    """Add this area's verbs to the parser. `group(name, help)` returns the subparsers of a
    Docker management command (`image`, `container`, `network`, `volume`, `system`)."""
