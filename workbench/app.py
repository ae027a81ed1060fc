"""The Textual workbench. A placeholder screen until the app issue lands."""

from __future__ import annotations


def run_app(root: str | None = None) -> int:
    from textual.app import App, ComposeResult
    from textual.widgets import Footer, Header, Static

    from core.engine import Engine

    engine = Engine(root=root)

    class Placeholder(App):
        TITLE = "Nutshell"
        BINDINGS = [("q", "quit", "Quit")]

        def compose(self) -> ComposeResult:
            yield Header()
            lines = ["Nutshell workbench (the panes arrive with the app issue).", "", "Images:"]
            for img in engine.images():
                lines.append(f"  {', '.join(img.repo_tags) or '<none>'}  {img.short_id}")
            yield Static("\n".join(lines))
            yield Footer()

    Placeholder().run()
    return 0
