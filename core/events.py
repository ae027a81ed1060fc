"""Progress events: how long Engine work reports what it is doing.

Engine methods that take time accept ``progress: Callable[[Progress], None] | None``.
The CLI turns the stream into rich progress bars (or plain lines when stdout is not a
terminal); the app turns the same stream into widgets. Events are plain data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Progress:
    """One step of long work.

    ``id``      what the event is about (a short layer digest, a build step, a file)
    ``action``  what is happening: "Pulling fs layer", "Downloading", "Extracting",
                "Pull complete", "Already exists", "Pushing", "Pushed", "Loading",
                "Step", "CACHED", "Writing", "Done", "Warning" ...
    ``current``/``total``  bytes (or items) done and expected, when known.
    """

    id: str
    action: str
    current: int = 0
    total: int = 0
    message: str = ""
    detail: dict = field(default_factory=dict)


ProgressFn = Callable[[Progress], None] | None


def emit(progress: ProgressFn, id: str, action: str, current: int = 0, total: int = 0,
         message: str = "", **detail) -> None:
    if progress is not None:
        progress(Progress(id, action, current, total, message, detail))
