"""BlankContainer (workbench/widgets/blank.py) draws what the style cache draws for a
container without a border or content of its own, line filters included: the same lines,
segment by segment, with the normal filters and with NO_COLOR's monochrome filter (which
Textual's own BLANK path would skip)."""

from __future__ import annotations

import pytest
from textual.app import App
from textual.containers import Vertical
from textual.geometry import Region
from textual.widgets import Static

from tests.tui.app_helpers import sync_all
from workbench.app import MainTabs, PaneTab
from workbench.panes.base import Pane
from workbench.widgets.blank import BlankContainer
from workbench.widgets.linetable import LineTable
from workbench.widgets.table import FilterTable

pytestmark = pytest.mark.tui


class Plain(Vertical):
    pass


class Blank(BlankContainer, Vertical):
    pass


class Boxes(App):
    # a coloured, tinted background; a child covers one line of five, the rest shows
    CSS = """
    Plain, Blank { height: 5; background: $primary 60%; background-tint: red 20%; color: green; }
    Static { height: 1; }
    """

    def compose(self):
        with Plain(id="plain"):
            yield Static("x")
        with Blank(id="blank"):
            yield Static("x")


@pytest.mark.parametrize("no_color", [False, True])
async def test_blank_lines_are_the_style_cache_lines(monkeypatch, no_color):
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    app = Boxes()
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.pause()
        assert app.no_color is no_color
        plain, blank = app.query_one("#plain"), app.query_one("#blank")
        crop = Region(0, 0, plain.size.width, plain.size.height)
        got = [list(strip) for strip in blank.render_lines(crop)]
        want = [list(strip) for strip in plain.render_lines(crop)]
        assert got == want and len(got) == 5
        styles = {seg.style for line in got for seg in line}
        if no_color:   # monochrome: grey backgrounds only
            assert all(s.bgcolor.triplet.red == s.bgcolor.triplet.green == s.bgcolor.triplet.blue
                       for s in styles)
        else:
            assert any(s.bgcolor.triplet.red != s.bgcolor.triplet.blue for s in styles)


def test_only_borderless_containers_are_blank():
    """The containers drawn blank have no border in any of their CSS (a border would be
    lost): checked on the classes the workbench uses."""
    for cls in (MainTabs, PaneTab, Pane, FilterTable, LineTable):
        assert issubclass(cls, BlankContainer) and cls.BLANK
        css = "".join(getattr(c, "DEFAULT_CSS", "") for c in cls.__mro__)
        rules = [r for r in css.split("}") if cls.__name__ + " {" in r or cls.__name__ + "{" in r]
        assert not any("border" in r for r in rules), cls


sync_all(globals())
