"""Volumes: named and anonymous data directories mounted into containers (store.py), and
the parsing and preparation of a container's mounts (mounts.py)."""
