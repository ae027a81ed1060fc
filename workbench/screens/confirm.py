"""ConfirmScreen: the one yes/no dialog every destructive action goes through.

Usage (either form; the result is ``True`` only when the user confirmed):

    # 1. awaiting, from inside a worker (push_screen_wait must run in a worker)
    @work
    async def action_remove(self) -> None:
        if await self.app.push_screen_wait(ConfirmScreen("Remove container web?")):
            ...

    # 2. callback, from anywhere (an action handler, a message handler)
    def action_remove(self) -> None:
        def done(ok: bool | None) -> None:
            if ok:
                ...
        self.app.push_screen(ConfirmScreen("Remove container web?"), done)

Keys: ``y`` / Enter on "Yes" confirm; ``n`` / Escape / Enter on "No" cancel. The focus starts on
"No" unless ``default=True`` so a reflexive Enter never destroys anything. ``detail`` is an
optional second line (the equivalent command, say); ``yes_label`` names the action ("Remove").
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """A modal yes/no question; dismisses with True (yes) or False (no)."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > #confirm-box {
        width: auto; min-width: 40; max-width: 90%; height: auto;
        border: thick $error 70%; background: $surface; padding: 1 2;
    }
    ConfirmScreen #confirm-question { width: auto; max-width: 100%; text-style: bold; }
    ConfirmScreen #confirm-detail { width: auto; max-width: 100%; color: $text-muted; margin-top: 1; }
    ConfirmScreen #confirm-buttons { width: auto; height: auto; margin-top: 1; align-horizontal: right; }
    ConfirmScreen Button { margin-left: 1; min-width: 10; }
    """

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n", "answer(False)", "No", id="confirm.no"),
        Binding("escape", "answer(False)", "Cancel", id="confirm.cancel"),
        Binding("left,right,tab,shift+tab", "app.focus_next", show=False),
    ]

    def __init__(self, question: str, detail: str | None = None, yes_label: str = "Yes",
                 no_label: str = "No", default: bool = False) -> None:
        super().__init__()
        self.question = question
        self.detail = detail
        self.yes_label = yes_label
        self.no_label = no_label
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(self.question, id="confirm-question", markup=False)
            if self.detail:
                yield Static(self.detail, id="confirm-detail", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button(self.yes_label, variant="error", id="confirm-yes")
                yield Button(self.no_label, variant="primary", id="confirm-no")

    def on_mount(self) -> None:
        self.query_one("#confirm-yes" if self.default else "#confirm-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(bool(yes))
