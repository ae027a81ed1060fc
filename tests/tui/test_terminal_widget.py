"""The terminal widget in a running app (Pilot), with real host programs under real PTYs."""

from __future__ import annotations

import asyncio
import os

import pytest
from textual import events
from textual.widgets import Footer, Tabs

from tests.waiting import pilot_wait_for
from workbench.terminal.demo import TerminalDemo
from workbench.terminal.widget import Terminal

pytestmark = pytest.mark.tui

BUSYBOX = "/bin/busybox"
ENV = {"PS1": "$ ", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}


def screen_text(term: Terminal) -> str:
    return "\n".join(term.emulator.display())


def run(scenario, commands=(("/bin/sh",),), size=(100, 30)):
    async def main():
        app = TerminalDemo([list(c) for c in commands], env=dict(ENV))
        async with app.run_test(size=size) as pilot:
            terms = [app.query_one(f"#term-{i + 1}", Terminal) for i in range(len(commands))]
            await pilot_wait_for(pilot, lambda: terms[0].backend is not None and "$" in screen_text(terms[0]))
            await scenario(app, pilot, *terms)

    asyncio.run(main())


async def type_line(pilot, text: str) -> None:
    """Type text and Enter key by key, as a user would."""
    await pilot.press(*[{" ": "space"}.get(c, c) for c in text], "enter")


def run_line(term: Terminal, text: str) -> None:
    """Send a setup line straight to the program (keys are not what such a test is about)."""
    term.send(text.encode() + b"\r")


def test_echo_hi_shows_hi():
    async def scenario(app, pilot, term):
        assert app.focused is term
        await type_line(pilot, "echo hi")
        await pilot_wait_for(pilot, lambda: "hi" in term.emulator.display())
        rows = term.emulator.display()
        assert rows[rows.index("hi") - 1].endswith("echo hi")

    run(scenario)


@pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="needs busybox")
def test_vi_then_quit_restores_the_main_screen():
    async def scenario(app, pilot, term):
        run_line(term, "seq 1 8")
        await pilot_wait_for(pilot, lambda: "8" in term.emulator.display())
        run_line(term, f"{BUSYBOX} vi /tmp/nutshell-terminal-test.txt")
        await pilot_wait_for(pilot, lambda: term.emulator.screen.alt_active and "~" in term.emulator.display())
        await pilot.press("i", *"typed in vi", "escape")
        await pilot.pause(0.2)  # ESC and ':' in one read are an Alt+: sequence to vi
        await pilot.press(":", "q", "!", "enter")
        await pilot_wait_for(pilot, lambda: not term.emulator.screen.alt_active)
        await pilot_wait_for(pilot, lambda: term.emulator.display().count("$") >= 1)
        rows = term.emulator.display()
        start = rows.index("$ seq 1 8")
        assert rows[start : start + 10] == ["$ seq 1 8", *[str(i) for i in range(1, 9)], f"$ {BUSYBOX} vi /tmp/nutshell-terminal-test.txt"]
        assert "typed in vi" not in screen_text(term)

    run(scenario)


def test_less_on_alternate_screen_leaves_main_screen_intact():
    async def scenario(app, pilot, term):
        await type_line(pilot, "echo before-less")
        await pilot_wait_for(pilot, lambda: "before-less" in term.emulator.display())
        main = term.emulator.display()
        run_line(term, "seq 1 500 | less")
        await pilot_wait_for(pilot, lambda: term.emulator.screen.alt_active and "1" in term.emulator.display())
        await pilot.press("space")  # a page forward: less scrolls with its own sequences
        await pilot_wait_for(pilot, lambda: any(r.strip().isdigit() and int(r) > 30 for r in term.emulator.display() if r.strip().isdigit()))
        await pilot.press("q")
        await pilot_wait_for(pilot, lambda: not term.emulator.screen.alt_active)
        await pilot_wait_for(pilot, lambda: term.emulator.display()[len([r for r in main if r]) ].startswith("$"))
        after = term.emulator.display()
        lines_before = [r for r in main if r][:-1]  # the rows before the prompt we typed on
        assert after[: len(lines_before)] == lines_before
        assert not any(r.strip().isdigit() and int(r) > 100 for r in after if r.strip().isdigit())

    run(scenario)


def test_resize_reaches_the_program():
    async def scenario(app, pilot, term):
        await type_line(pilot, "stty size")
        size = f"{term.size.height} {term.size.width}"
        await pilot_wait_for(pilot, lambda: size in term.emulator.display())
        await pilot.resize_terminal(72, 20)
        await pilot_wait_for(pilot, lambda: term.size.width == 72)
        new_size = f"{term.size.height} {term.size.width}"
        assert new_size != size
        await type_line(pilot, "stty size")
        await pilot_wait_for(pilot, lambda: new_size in term.emulator.display())
        assert (term.emulator.rows, term.emulator.cols) == (term.size.height, term.size.width)

    run(scenario)


def test_tab_ctrl_c_ctrl_z_ctrl_d_reach_the_program():
    async def scenario(app, pilot, term):
        # Tab goes to the program (cat -A shows it as ^I) and focus stays in the terminal.
        await type_line(pilot, "cat -A")
        await pilot.press("a", "tab", "b", "enter")
        await pilot_wait_for(pilot, lambda: "a^Ib$" in term.emulator.display())
        assert app.focused is term
        # Ctrl-D at the start of a line ends cat's input.
        await pilot.press("ctrl+d")
        run_line(term, "echo cat-ended-$?")
        await pilot_wait_for(pilot, lambda: "cat-ended-0" in term.emulator.display())
        # Ctrl-C interrupts the foreground program.
        await type_line(pilot, "sleep 30")
        await pilot.pause(0.2)
        await pilot.press("ctrl+c")
        run_line(term, "echo status-$?")
        await pilot_wait_for(pilot, lambda: "status-130" in term.emulator.display())
        # Ctrl-Z stops it (the shell reports a stopped job).
        await type_line(pilot, "sleep 31")
        await pilot.pause(0.2)
        await pilot.press("ctrl+z")
        await pilot_wait_for(pilot, lambda: "Stopped" in screen_text(term))
        run_line(term, "kill -9 %1")
        assert app.focused is term

    run(scenario)


def test_leave_chord_gives_the_keyboard_back_and_shows_in_footer():
    async def scenario(app, pilot, term):
        active = [b.binding for b in app.screen.active_bindings.values() if b.binding.action == "leave_terminal"]
        keys = {binding.key for binding in active}
        displays = {binding.key_display for binding in active}
        assert keys == {"ctrl+right_square_bracket"} and displays == {"^]"}
        # keys the terminal takes for itself are not offered while it has focus
        footer = app.query_one(Footer)
        shown = lambda: {b.binding.action for b in app.screen.active_bindings.values()  # noqa: E731
                         if b.binding.show and b.enabled}
        assert not footer.show_command_palette and "quit" not in shown()
        await pilot.press("ctrl+right_square_bracket")
        await pilot.pause(0.1)
        assert app.focused is not term
        assert isinstance(app.focused, Tabs)
        assert footer.show_command_palette and "quit" in shown()
        await pilot.press("enter")  # the demo's way back in
        await pilot.pause(0.1)
        assert app.focused is term
        assert not footer.show_command_palette and "quit" not in shown()

    run(scenario)


def test_two_tabs_run_separate_programs_and_title_follows_osc():
    async def scenario(app, pilot, one, two):
        run_line(one, "printf '\\033]2;first-tab\\007'; echo set")
        await pilot_wait_for(pilot, lambda: one.title == "first-tab")
        tabs = app.query_one("TabbedContent")
        await pilot_wait_for(pilot, lambda: "first-tab" in str(tabs.get_tab("tab-1").label))  # TitleChanged
        tabs.active = "tab-2"
        await pilot_wait_for(pilot, lambda: app.focused is two)
        await pilot_wait_for(pilot, lambda: "$" in screen_text(two))
        run_line(two, "echo in-two")
        await pilot_wait_for(pilot, lambda: "in-two" in two.emulator.display())
        assert "in-two" not in screen_text(one)

    run(scenario, commands=(("/bin/sh",), ("/bin/sh",)))


def test_exit_posts_exited_with_code_and_closing_a_tab_hangs_up():
    async def scenario(app, pilot, one, two):
        exits = []
        app.screen.call_later(lambda: None)
        original = app._exited

        def record(event):
            exits.append(event.exit_code)
            original(event)

        app._exited = record  # the demo's handler is looked up per message
        await type_line(pilot, "exit 5")
        await pilot_wait_for(pilot, lambda: one.exited)
        assert one.exit_code == 5
        assert "[exited with code 5]" in screen_text(one)
        # Closing a tab: the program in it is hung up.
        tabs = app.query_one("TabbedContent")
        tabs.active = "tab-2"
        await pilot_wait_for(pilot, lambda: app.focused is two)
        pid = two.backend.pid
        await pilot.press("ctrl+right_square_bracket", "w")
        await pilot_wait_for(pilot, lambda: not app.query("#term-2"))

        def gone():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return False

        await pilot_wait_for(pilot, gone, timeout=5)

    run(scenario, commands=(("/bin/sh",), ("/bin/sh",)))


def test_mouse_reporting_and_bracketed_paste_reach_the_program():
    program = (
        "printf 'ready\\033[?1000h\\033[?1006h\\033[?2004h'; stty raw -echo; "
        "dd bs=1 count=32 2>/dev/null | od -An -c; stty sane; printf '\\033[?1000l\\033[?2004l'"
    )

    async def scenario(app, pilot, term):
        term.send(program.encode() + b"\r")  # a long setup line: typing it key by key is slow
        await pilot_wait_for(pilot, lambda: term.emulator.screen.mouse_tracking == 1000 and term.emulator.screen.bracketed_paste)
        await pilot.click(term, offset=(2, 3))  # press and release, SGR encoded: 9 + 9 bytes
        term.post_message(events.Paste("x\n"))  # ESC[200~ x CR ESC[201~: 14 bytes; 32 in all
        await pilot_wait_for(pilot, lambda: not term.emulator.screen.bracketed_paste)  # the program ended
        text = "".join(screen_text(term).split())  # od's columns, without the spacing
        assert "033[<0;3;4M033[<0;3;4m033[200~x\\r033[201~" in text

    run(scenario)


def test_scrollback_with_shift_page_up_and_idle_costs_nothing():
    async def scenario(app, pilot, term):
        await type_line(pilot, "seq 1 200")
        await pilot_wait_for(pilot, lambda: "200" in term.emulator.display())
        assert term.emulator.history_text()[:1] == ["$ seq 1 200"]
        await pilot.press("shift+pageup")
        assert term.scrollback == term.size.height - 1
        top = term.render_line(1).text.strip()
        assert top.isdigit() and int(top) < 200 - term.size.height
        await pilot.press("shift+pagedown")
        assert term.scrollback == 0
        # Idle: no frames, no reads while nothing happens.
        await pilot.pause(0.3)
        frames = term.frames
        await asyncio.sleep(0.5)
        assert term.frames == frames

    run(scenario)


def test_selection_copies_the_rendered_text():
    from textual.geometry import Offset
    from textual.selection import Selection

    async def scenario(app, pilot, term):
        await type_line(pilot, "echo 'select me 中文 ok'")
        await pilot_wait_for(pilot, lambda: "select me 中文 ok" in term.emulator.display())
        rows = term.emulator.display()
        y = len(term.emulator.screen.history) + rows.index("select me 中文 ok")
        text, _ = term.get_selection(Selection(Offset(7, y), Offset(14, y)))
        assert text == "me 中文 o"
        strip_text = term.render_line(rows.index("select me 中文 ok")).text
        assert strip_text.startswith("select me 中文 ok")

    run(scenario)


def test_a_command_that_cannot_start_says_so_and_exits():
    from textual.app import App

    class One(App):
        def compose(self):
            yield Terminal(["/nonexistent/program"], id="t")

    async def main():
        app = One()
        async with app.run_test(size=(60, 10)) as pilot:
            term = app.query_one("#t", Terminal)
            await pilot_wait_for(pilot, lambda: term.exited)
            assert term.exit_code is None
            assert "not found" in screen_text(term) and "[exited]" in screen_text(term)

    asyncio.run(main())
