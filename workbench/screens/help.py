"""HelpScreen (``?`` / F1): every key of the app and of each pane, as currently mapped.

The keys shown are the live ones: a remap from workbench.toml shows up here, and actions
hidden in read-only mode are left out. The binding id is listed so remapping is easy.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

INTRO = """\
Nutshell workbench — every action here is a `nutshell ...` command; H shows them.
Tabs: the digits 1-7 (or click). Lists: / filters, y copies the id, s sorts, Enter acts.
Terminals: every key goes to the program; Ctrl-] gives the keyboard back to the app.
Mouse: click, scroll, drag to select text (copied with Ctrl-C where the widget allows).
Keys are remappable in {config} ([keys] "binding.id" = "key").
"""


def _keys_for(app, binding: Binding) -> str:
    keymap = getattr(app, "_keymap", {}) or {}
    keys = keymap.get(binding.id, binding.key) if binding.id else binding.key
    return ", ".join(app.get_key_display(Binding(k.strip(), binding.action))
                     for k in keys.split(","))


def binding_rows(app, node) -> list[tuple[str, str, str]]:
    """(keys, description, id) of the bindings declared by ``node``'s class and bases,
    skipping what ``check_action`` hides (read-only) and undocumented ones."""
    rows = []
    seen = set()
    klass = node if isinstance(node, type) else type(node)
    for cls in klass.__mro__:
        for b in cls.__dict__.get("BINDINGS", []) or []:
            if not isinstance(b, Binding):
                key, action, *rest = b
                b = Binding(key, action, rest[0] if rest else "")
            ident = b.id or f"{b.action}:{b.key}"
            if not b.description or ident in seen:
                continue
            seen.add(ident)
            check = None if isinstance(node, type) else getattr(node, "check_action", None)
            if check is not None:
                try:
                    if check(b.action, ()) is False:   # hidden (read-only)
                        continue
                except Exception:  # noqa: BLE001
                    pass
            rows.append((_keys_for(app, b), b.description, b.id or ""))
    return rows


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 110; height: 90%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    HelpScreen .help-title { text-style: bold; color: $accent; margin-top: 1; }
    """

    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss_help", "Close", id="help.close"),
    ]

    def compose(self) -> ComposeResult:
        app = self.app
        with VerticalScroll():
            cfg = getattr(app, "config", None)
            path = getattr(cfg, "path", None) or "~/.config/nutshell/workbench.toml"
            yield Static(INTRO.format(config=path), markup=False)
            sections = [("App", app)]
            for pane in getattr(app, "panes", lambda: [])():
                sections.append((f"{getattr(pane, 'PANE_KEY', '')} {getattr(pane, 'PANE_TITLE', '')}", pane))
            from workbench.widgets.table import _Table

            sections.append(("Every list", _Table))
            for title, node in sections:
                rows = binding_rows(app, node)
                if not rows:
                    continue
                yield Static(title, classes="help-title", markup=False)
                table = Table.grid(padding=(0, 2))
                table.add_column(style="bold", min_width=14)
                table.add_column(min_width=30)
                table.add_column(style="dim")
                for keys, desc, ident in rows:
                    table.add_row(Text(keys), Text(desc), Text(ident))
                yield Static(table)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
