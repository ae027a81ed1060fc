"""FormScreen: a small modal form (text fields, switches, choices) returning a dict.

    fields = [Field("ref", "Image", placeholder="busybox:latest"),
              Field("insecure", "Plain HTTP / no TLS verification", kind="bool"),
              Field("mode", "Mode", kind="select", options=[("detached (-d)", "d"), ("terminal (-it)", "it")])]

    def done(values: dict | None) -> None:      # None: cancelled
        ...
    self.app.push_screen(FormScreen("Pull an image", fields, submit="Pull"), done)
    # or, in a worker: values = await self.app.push_screen_wait(FormScreen(...))

Tab / Shift-Tab move between fields; Enter in a text field or Ctrl-S anywhere submits;
Escape cancels. ``Field.required`` fields must be non-empty. ``validate``
(values -> error text or None) runs before the form closes; its error stays on screen.
``preview`` (values -> str) shows a live line under the fields — the workbench uses it to
show the equivalent ``nutshell ...`` command while the user types.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, Switch


@dataclass
class Field:
    """One field of a form screen."""
    name: str
    label: str
    kind: str = "text"                     # text | bool | select
    default: Any = ""
    placeholder: str = ""
    options: list[tuple[str, Any]] = field(default_factory=list)
    required: bool = False
    password: bool = False


class FormScreen(ModalScreen[dict | None]):
    DEFAULT_CSS = """
    FormScreen { align: center middle; }
    FormScreen > #form-box {
        width: 80%; max-width: 100; min-width: 50; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    FormScreen #form-fields { height: auto; }
    FormScreen .form-title { text-style: bold; color: $accent; margin-bottom: 1; }
    FormScreen .form-row { height: auto; margin-bottom: 1; }
    FormScreen .form-label { width: 18; }
    FormScreen .form-row > Input, FormScreen .form-row > Select { width: 1fr; }
    FormScreen .form-row > Switch { height: 1; border: none; padding: 0; width: auto; }
    FormScreen #form-preview { color: $text-muted; margin-top: 1; height: auto; }
    FormScreen #form-error { color: $error; height: auto; }
    FormScreen #form-buttons { height: auto; align-horizontal: right; margin-top: 1; }
    FormScreen #form-buttons Button { margin-left: 1; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
        Binding("ctrl+s", "submit", "Submit", id="form.submit"),
    ]

    def __init__(self, title: str, fields: list[Field], submit: str = "OK",
                 validate: Callable[[dict], str | None] | None = None,
                 preview: Callable[[dict], str] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.submit_label = submit
        self.validate = validate
        self.preview = preview

    def compose(self) -> ComposeResult:
        # the fields scroll; the command preview, the error and the buttons stay in view
        with Vertical(id="form-box"):
            yield Static(self.title_text, classes="form-title", markup=False)
            with VerticalScroll(id="form-fields"):
                yield from self._rows()
            yield Static("", id="form-preview", markup=False)
            yield Static("", id="form-error", markup=False)
            with Horizontal(id="form-buttons"):
                yield Button(self.submit_label, variant="primary", id="form-ok")
                yield Button("Cancel", id="form-cancel")

    def _rows(self) -> ComposeResult:
        for f in self.fields:
            with Horizontal(classes="form-row"):
                yield Label(f.label, classes="form-label", markup=False)
                if f.kind == "bool":
                    yield Switch(value=bool(f.default), id=f"field-{f.name}")
                elif f.kind == "select":
                    yield Select(f.options, value=f.default if f.default not in ("", None)
                                 else f.options[0][1], allow_blank=False, id=f"field-{f.name}",
                                 compact=True)
                else:
                    yield Input(value=str(f.default or ""), placeholder=f.placeholder,
                                password=f.password, id=f"field-{f.name}", compact=True)

    def on_resize(self) -> None:
        """The fields get what the box (90% of the screen) leaves after the title, the
        preview, the error and the buttons, and scroll beyond that (Textual's CSS cannot say
        "the rest of an auto-height box")."""
        box = self.query_one("#form-box")
        others = sum(w.outer_size.height + w.styles.margin.height
                     for w in box.children if w.id != "form-fields")
        chrome = box.styles.gutter.height
        self.query_one("#form-fields").styles.max_height = max(
            3, int(self.size.height * 0.9) - chrome - others)

    def on_mount(self) -> None:
        first = self.query("Input, Switch, Select").first()
        if first is not None:
            first.focus()
        self._update_preview()

    def values(self) -> dict:
        out: dict[str, Any] = {}
        for f in self.fields:
            w = self.query_one(f"#field-{f.name}")
            if isinstance(w, Input):
                out[f.name] = w.value.strip()
            elif isinstance(w, Switch):
                out[f.name] = w.value
            elif isinstance(w, Select):
                out[f.name] = w.value
        return out

    def _update_preview(self) -> None:
        if self.preview is None:
            return
        try:
            text = self.preview(self.values())
        except Exception as exc:  # noqa: BLE001
            text = f"({exc})"
        self.query_one("#form-preview", Static).update(f"$ {text}" if text else "")

    @on(Input.Changed)
    @on(Switch.Changed)
    @on(Select.Changed)
    def _changed(self, event) -> None:
        self._update_preview()
        self.query_one("#form-error", Static).update("")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "form-ok":
            self.action_submit()
        else:
            self.action_cancel()

    def action_submit(self) -> None:
        values = self.values()
        for f in self.fields:
            if f.required and not values.get(f.name):
                self._error(f"{f.label} is required")
                self.query_one(f"#field-{f.name}").focus()
                return
        if self.validate is not None:
            try:
                err = self.validate(values)
            except Exception as exc:  # noqa: BLE001
                err = str(exc)
            if err:
                self._error(err)
                return
        self.dismiss(values)

    def _error(self, text: str) -> None:
        self.query_one("#form-error", Static).update(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
