"""BlankContainer: a container that draws nothing of its own, drawn as blank lines.

Textual's compositor asks every visible widget under a changed region for all of its lines,
containers too, though their children cover them: before the first frame the tabs, the tab
pane, the pane and the table's frame each build every line of their area through the style
cache. A container with no border and no content of its own is only its background, so it
can say so with Textual's ``BLANK`` (one cached blank strip per line). Textual's BLANK path
skips the app's line filters; this one applies them (``NO_COLOR``'s monochrome, the ANSI
colour filter), so the picture is the same: tests/tui/test_blank_container.py compares it
line by line with the style cache's.

Only for containers without a border, a border title or content of their own.
"""

from __future__ import annotations

from functools import lru_cache

from rich.style import Style
from textual.color import Color
from textual.geometry import Region
from textual.strip import Strip


class BlankContainer:
    """Mix in before the container class: ``class Pane(BlankContainer, Vertical)``."""

    BLANK = True

    def render_lines(self, crop: Region) -> list[Strip]:
        # an empty line as the style cache draws it: the background only (base + own)
        base, background = self.background_colors  # type: ignore[attr-defined]
        strip = Strip.blank(crop.width, _background_style(base + background))
        for line_filter in self.get_line_filters():  # type: ignore[attr-defined]
            strip = strip.apply_filter(line_filter, background)
        return [strip] * crop.height


@lru_cache(maxsize=64)
def _background_style(color: Color) -> Style:
    return Style(bgcolor=color.rich_color)
