"""Messages the workbench's panes and the app exchange (the contract between them).

- The app posts ``EngineChanged`` to every pane when the store or a container changed
  (its own actions, or another process such as a CLI in another SSH session). Panes
  reload what they show in a worker; they never poll in a tight loop.
- A pane posts ``CommandRun`` for every action it performs, with the equivalent headless
  command (``nutshell run -d --name web busybox httpd -f``); the app keeps the history.
- ``ContainerSelected`` / ``ImageSelected`` keep panes in step (Stats and the teaching
  views follow the container chosen in Containers).
- ``OpenTerminal`` asks the app to open a terminal tab: attach to a container, exec a
  shell in it, or run a host command.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message
from textual.widget import Widget


class AboutWidget(Message):
    """A message a widget posts about itself: ``control`` is that widget, so a handler can
    be scoped to one of them with ``@on(Table.Highlighted, "#id")``."""

    def __init__(self, widget: Widget) -> None:
        super().__init__()
        self._about = widget

    @property
    def control(self) -> Widget:
        return self._about


class RowMessage(AboutWidget):
    """A row of a table (``FilterTable``, ``LineTable``) was highlighted or activated;
    ``key`` is the row's key (None: no row)."""

    def __init__(self, table: Widget, key: str | None) -> None:
        super().__init__(table)
        self.table: Any = table
        self.key = key


class EngineChanged(Message):
    """Something in the engine changed. ``kinds`` ⊆ {"images", "containers", "networks",
    "volumes"}; ``ids`` are the affected object ids when known (else empty)."""

    def __init__(self, kinds: set[str], ids: set[str] | None = None) -> None:
        super().__init__()
        self.kinds = set(kinds)
        self.ids = set(ids or ())


class CommandRun(Message):
    """The equivalent CLI command of an action the user performed in the app."""

    def __init__(self, command: str, ok: bool = True, error: str | None = None) -> None:
        super().__init__()
        self.command = command
        self.ok = ok
        self.error = error


class ContainerSelected(Message):
    def __init__(self, container_id: str | None) -> None:
        super().__init__()
        self.container_id = container_id


class ImageSelected(Message):
    def __init__(self, image_id: str | None) -> None:
        super().__init__()
        self.image_id = image_id


class OpenTerminal(Message):
    """kind: "attach" | "exec" | "host"; target: container id (attach/exec);
    argv: the command for exec/host (None: shell probing bash -> ash -> sh for exec)."""

    def __init__(self, kind: str, target: str | None = None, argv: list[str] | None = None,
                 title: str | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.target = target
        self.argv = argv
        self.title = title
