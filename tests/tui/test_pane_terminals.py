"""The Terminals pane against a fake Engine (Pilot): OpenTerminal opens tabs, keys reach the
terminal, ctrl+] leaves it, x closes the tab and detaches (never stops the container),
errors become notifications with the CLI's text, host commands run under a PTY."""

from __future__ import annotations

import pytest
from textual.widgets import Static, Tabs

from tests.tui.app_helpers import pane_alone, sync
from tests.waiting import pilot_wait_for
from workbench.messages import OpenTerminal
from workbench.panes.terminals import TerminalsPane
from workbench.terminal.widget import Terminal

pytestmark = pytest.mark.tui


def screen_text(term: Terminal) -> str:
    return "\n".join(term.emulator.display())


def terminals_pane(engine, read_only=False):
    """The pane alone on ``engine``: ``async with`` gives (app, pilot, pane)."""
    return pane_alone(lambda: TerminalsPane(engine, read_only=read_only, id="terms"), (100, 30))


@sync
async def test_attach_tab_typing_leave_close_detaches(engine):
    async with terminals_pane(engine) as (app, pilot, pane):
        assert pane.query_one("#terminals-empty", Static).display
        web = engine.container("web")
        pane.post_message(OpenTerminal("attach", web))
        await pilot_wait_for(pilot, lambda: len(pane.terminals) == 1)
        term = pane.terminals[0]
        await pilot_wait_for(pilot, lambda: app.focused is term)
        tab = pane.tabs.get_tab(pane.tabs.active)
        assert tab.label.plain == "attach web"
        assert ("nutshell attach web", True, None) in app.commands
        # keys go to the container (the fake echoes them), Tab and ctrl+c included
        await pilot.press(*"echo", "space", *"hi", "tab", "ctrl+c", "enter")
        client = engine.attaches[0]
        await pilot_wait_for(pilot, lambda: "echo hi" in screen_text(term))
        assert client.written == b"echo hi\t\x03\r"
        # the pane told the container its size
        assert client.resizes and client.resizes[-1] == (term.size.height, term.size.width)
        # ctrl+] leaves: the tab bar gets the keyboard and the footer shows pane keys
        await pilot.press("ctrl+right_square_bracket")
        await pilot_wait_for(pilot, lambda: isinstance(app.focused, Tabs))
        # x closes the tab: the attach socket is closed (a detach), the container runs on
        await pilot.press("x")
        await pilot_wait_for(pilot, lambda: not pane.terminals)
        assert client.closed
        assert engine.containers[web]["State"] == "running"
        assert not [c for c in engine.calls if c.name in ("stop", "kill", "rm")]
        assert pane.query_one("#terminals-empty", Static).display


@sync
async def test_attach_to_stopped_container_is_an_error_notification(engine):
    async with terminals_pane(engine) as (app, pilot, pane):
        pane.open_terminal("attach", engine.container("old"))
        text = "You cannot attach to a stopped container, start it first"
        await pilot_wait_for(pilot, lambda: any(n.message == text for n in app._notifications))
        # the notification is shown at once; the CommandRun message reaches the app after
        # the pane handled it: wait for it rather than read app.commands right away
        await pilot_wait_for(pilot, lambda: app.commands, what="the failed attach recorded")
        assert not pane.terminals
        assert app.commands[-1] == ("nutshell attach old", False, text)


@sync
async def test_exec_failure_is_shown_in_the_tab_and_recorded(engine):
    async with terminals_pane(engine) as (app, pilot, pane):
        pane.post_message(OpenTerminal("exec", engine.container("web"), ["sh"]))
        await pilot_wait_for(pilot, lambda: any(not ok for _, ok, _ in app.commands))
        cmd, ok, err = app.commands[-1]
        assert cmd == "nutshell exec -it web sh" and not ok and err == f"container {engine.container('web')} is not running"
        assert engine.has_call("exec", engine.container("web"), ["sh"])


@sync
async def test_host_command_tabs_and_read_only(engine):
    async with terminals_pane(engine) as (app, pilot, pane):
        pane.open_terminal("host", argv=["/bin/sh", "-c", "echo from-the-host; sleep 30"],
                           title="demo")
        pane.open_terminal("host", argv=["/bin/sh", "-c", "echo second; sleep 30"])
        await pilot_wait_for(pilot, lambda: len(pane.terminals) == 2)
        t1, t2 = pane.terminals
        await pilot_wait_for(pilot, lambda: "from-the-host" in screen_text(t1))
        await pilot_wait_for(pilot, lambda: "second" in screen_text(t2))
        # a tab given a title keeps it; the other is named after its program
        assert pane.tabs.get_tab("term-1").label.plain == "demo"
        assert pane.tabs.get_tab("term-2").label.plain == "sh"
        assert pane.tabs.active == "term-2"
        await pilot_wait_for(pilot, lambda: app.focused is t2)
        # leave, go to the first tab with the arrow keys, enter it again
        await pilot.press("ctrl+right_square_bracket")
        await pilot_wait_for(pilot, lambda: isinstance(app.focused, Tabs))
        await pilot.press("left")
        await pilot_wait_for(pilot, lambda: pane.tabs.active == "term-1")
        await pilot.press("enter")
        await pilot_wait_for(pilot, lambda: app.focused is t1)
        backend = t1.backend
        await pilot.press("ctrl+right_square_bracket")
        await pilot_wait_for(pilot, lambda: isinstance(app.focused, Tabs))
        await pilot.press("x")
        await pilot_wait_for(pilot, lambda: len(pane.terminals) == 1)
        # closing hung up the host command
        await pilot_wait_for(pilot, lambda: backend.exit_code is not None or backend._status is not None)

    async with terminals_pane(engine, read_only=True) as (ro, pilot, pane):
        pane.tabs.query_one(Tabs).focus()
        await pilot.press("h")
        await pilot.pause(0.2)
        assert not pane.terminals
        assert pane.check_action("host_shell", ()) is False


@sync
async def test_a_sequence_the_emulator_cannot_handle_is_dropped_counted_and_the_tab_stays_live(
        engine, monkeypatch):
    from workbench.terminal.emulator import VTScreen

    def broken(self, *args):  # a handler bug, as pyte's VPA assertion was (issue 17 item 1)
        raise AssertionError("a handler that fails")

    monkeypatch.setattr(VTScreen, "cursor_to_line", broken)
    async with terminals_pane(engine) as (app, pilot, pane):
        pane.open_terminal("host", argv=["/bin/sh", "-c",
                                         r"printf 'before\033[5dafter\n'; read x; echo got-$x; sleep 30"],
                           title="demo")
        await pilot_wait_for(pilot, lambda: len(pane.terminals) == 1)
        term = pane.terminals[0]
        await pilot_wait_for(pilot, lambda: "beforeafter" in screen_text(term))
        await pilot_wait_for(pilot, lambda: pane.tabs.get_tab("term-1").label.plain == "demo [1 dropped]")
        assert term.emulator.dropped == 1
        # the tab is live: keys reach the program and its output is parsed
        await pilot_wait_for(pilot, lambda: app.focused is term)
        await pilot.press("o", "k", "enter")
        await pilot_wait_for(pilot, lambda: "got-ok" in screen_text(term))
