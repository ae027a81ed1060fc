"""The event journal: what changed in the store, one JSON line per event, Docker's shape.

Nutshell has no daemon to keep Docker's event stream, so every process that changes
something (the CLI, the app, an API server, a container's shim when its init exits)
appends the event to ``$ROOT/events.log`` itself. ``Engine.events`` (core/eventfeed.py)
reads it back, follows it, filters it. A line is Docker's ``events.Message``::

    {"status": "start", "id": "3f2a...", "from": "busybox",      (containers and images)
     "Type": "container", "Action": "start",
     "Actor": {"ID": "3f2a...", "Attributes": {"image": "busybox", "name": "web"}},
     "scope": "local", "time": 1796300000, "timeNano": 1796300000123456789}

Writes: ``O_APPEND`` and one ``write()`` per line, so lines from concurrent processes
never interleave. The file is 0600, like the rest of the store. Recording never fails
the operation it records: a journal that cannot be written is ignored. When it passes
:data:`MAX_BYTES` it becomes ``events.log.1`` (replacing the one before), so the journal
holds between 8 and 16 MiB of recent history.

This module is imported by the shim (for ``die``), so it imports only ``os`` and ``time``
and has its own small JSON encoder.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

#: The journal's name at the state root; the rotated one adds ``.1``.
NAME = "events.log"
#: Rotate when the journal grows past this.
MAX_BYTES = 8 << 20
#: The journal's mode (the store's files are the owner's only).
MODE = 0o600

_ESC = {i: "\\u%04x" % i for i in range(32)}
_ESC.update({34: '\\"', 92: "\\\\", 10: "\\n", 13: "\\r", 9: "\\t"})


def path(root: str) -> str:
    return os.path.join(root, NAME)


def _s(v: object) -> str:
    return '"' + str(v).translate(_ESC) + '"'


def encode(type: str, action: str, actor_id: str, attributes: Mapping[str, object] | None,
           time_ns: int | None = None) -> bytes:
    """One journal line (with its newline), Docker's field order; attributes as strings."""
    ns = time.time_ns() if time_ns is None else time_ns
    attrs = {str(k): "" if v is None else str(v) for k, v in (attributes or {}).items()}
    parts = []
    if type in ("container", "image"):
        parts.append('"status": %s, "id": %s' % (_s(action), _s(actor_id)))
        if type == "container" and attrs.get("image"):
            parts.append('"from": %s' % _s(attrs["image"]))
    parts.append('"Type": %s, "Action": %s' % (_s(type), _s(action)))
    parts.append('"Actor": {"ID": %s, "Attributes": {%s}}' % (
        _s(actor_id), ", ".join(_s(k) + ": " + _s(v) for k, v in attrs.items())))
    parts.append('"scope": "local", "time": %d, "timeNano": %d' % (ns // 1000000000, ns))
    return ("{" + ", ".join(parts) + "}\n").encode("utf-8", "replace")


def record(root: str, type: str, action: str, actor_id: str,
           attributes: Mapping[str, object] | None = None) -> None:
    """Append one event to the journal of the store at ``root``. Never raises."""
    try:
        append(root, encode(type, action, actor_id, attributes))
    except Exception:  # noqa: BLE001, S110 - an event is never worth failing the operation
        pass


def append(root: str, line: bytes) -> None:
    """One ``write()`` with ``O_APPEND`` (whole lines across processes), then rotate when
    the file passed :data:`MAX_BYTES`. Only into an existing root: recording never creates
    a store."""
    p = path(root)
    fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                 MODE)
    try:
        os.write(fd, line)
        if os.fstat(fd).st_size > MAX_BYTES:
            _rotate(p, fd)
    finally:
        os.close(fd)


def _rotate(p: str, fd: int) -> None:
    """Rename the full journal to ``.1``, under its lock and only if ``p`` still is the
    file we wrote (another writer may have rotated it meanwhile)."""
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        if os.stat(p).st_ino == os.fstat(fd).st_ino:
            os.rename(p, p + ".1")
    except OSError:
        pass
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def container_attributes(config: Mapping, **extra: object) -> dict[str, object]:
    """Docker's attributes of a container event from its config.json: its labels, then
    ``image`` (as the user gave it) and ``name``, then ``extra`` (exitCode, signal...)."""
    c = config.get("Config") or {}
    attrs: dict[str, object] = dict(c.get("Labels") or {})
    attrs["image"] = c.get("Image") or config.get("Image") or ""
    attrs["name"] = str(config.get("Name") or "").lstrip("/")
    attrs.update(extra)
    return attrs


def volume_mounts(root: str, cid: str, mounts: list | None, action: str) -> None:
    """Docker's volume ``mount``/``unmount`` events for a container's volume mounts
    (config.json's ``Mounts``)."""
    for m in mounts or []:
        try:
            if m.get("Type") != "volume" or not m.get("Name"):
                continue
            attrs: dict[str, object] = {"container": cid, "driver": m.get("Driver") or "local"}
            if action == "mount":
                attrs.update({"destination": m.get("Destination") or "",
                              "propagation": m.get("Propagation") or "",
                              "read/write": "true" if m.get("RW", True) else "false"})
            record(root, "volume", action, m["Name"], attrs)
        except Exception:  # noqa: BLE001, S112 - a mount of an odd shape: no event
            continue


def container(root: str, config: Mapping, action: str, **extra: object) -> None:
    """Record a container event from its config.json (``ID`` is the config's ``Id``)."""
    try:
        record(root, "container", action, str(config.get("Id") or ""),
               container_attributes(config, **extra))
    except Exception:  # noqa: BLE001, S110 - a config of an odd shape: no event
        pass
