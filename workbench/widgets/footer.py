"""The key footer, rebuilt only when what it shows changes.

Textual's Footer rebuilds all of its keys (a recompose: ~15-50 ms here with our panes'
bindings) every time the screen's bindings *may* have changed, which is every focus
change: switching tabs moved the focus twice and rebuilt it twice with the same keys.
This one compares what it would show (keys, labels, actions, enabled, tooltips, groups,
the command palette's key) with what it shows, and rebuilds only on a difference.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class KeyFooter(Footer):
    """Footer that recomposes only when its keys change (see the module's docstring)."""

    _shown: tuple | None = None

    def _what_it_shows(self) -> tuple:
        active = self.screen.active_bindings
        keys = tuple(
            (b.key, self.app.get_key_display(b), b.description, b.action, enabled, tooltip,
             id(b.group), b.group.description if b.group else None)
            for (_node, b, enabled, tooltip) in active.values() if b.show)
        palette = active.get(self.app.COMMAND_PALETTE_BINDING) if (
            self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE) else None
        if palette is not None:
            _node, b, enabled, tooltip = palette
            return keys, (b.key, b.description, enabled, tooltip or b.tooltip)
        return keys, None

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        if not self.is_attached:
            return
        shown = self._what_it_shows()
        if shown != self._shown:
            self._shown = shown
            await self.recompose()
