"""Terminal tabs on real containers (root): attach to a busybox sh from the Containers pane,
type ``echo hi``, see ``hi``; close the tab: a detach, the container keeps running. Exec a
shell (probing bash -> ash -> sh), exit it, the container keeps running."""

from __future__ import annotations

import pytest

from tests.tui.app_helpers import make_app, pane_of
from tests.tui.real_containers import run, select_container, state
from tests.waiting import pilot_wait_for, wait_for

pytestmark = [pytest.mark.tui, pytest.mark.integration]

PROMPT = "/ #"


def screen(term) -> str:
    return "\n".join(term.emulator.display())


async def type_line(pilot, term, text: str) -> None:
    # busybox ash asks for the cursor position after each prompt: wait for the prompt first
    await pilot_wait_for(pilot, lambda: screen(term).rstrip().endswith(PROMPT), what="the prompt")
    await pilot.press(*[{" ": "space"}.get(c, c) for c in text], "enter")


def test_attach_echo_hi_close_tab_container_keeps_running(real_engine):  # noqa: F811
    import asyncio

    cid = run(real_engine, "attach", ["sh"], tty=True, interactive=True)

    async def scenario():
        app = make_app(real_engine, panes=["containers", "terminals"])
        async with app.run_test(size=(100, 30)) as pilot:
            await select_container(pilot, app, cid)
            await pilot.press("a")  # attach: the app switches to Terminals
            terms = await pane_of(pilot, app, "terminals")
            await pilot_wait_for(pilot, lambda: len(terms.terminals) == 1, what="the attach tab")
            term = terms.terminals[0]
            await pilot_wait_for(pilot, lambda: app.focused is term, what="the terminal focused")
            await pilot.press("enter")  # the first prompt was printed before we attached
            await type_line(pilot, term, "echo hi")
            await pilot_wait_for(pilot, lambda: "hi" in term.emulator.display(), what="hi")
            assert any(h.command == "nutshell attach nsteach-tui-attach" for h in app.history)
            backend = term.backend
            await pilot.press("ctrl+right_square_bracket")
            await pilot_wait_for(pilot, lambda: app.focused is not term, what="leaving the terminal")
            await pilot.press("x")
            await pilot_wait_for(pilot, lambda: not terms.terminals, what="the tab closed")
            assert backend._closed  # the attach socket is closed: a detach

    asyncio.run(scenario())
    wait_for(lambda: state(real_engine, cid) == "running")
    # and it still works: attach again and see the shell answer
    client = real_engine.attach_client(cid)
    try:
        client.write(b"echo still-here\r")
        seen = b""
        for _ in range(50):
            packet = client.read()
            if packet is None:
                break
            seen += bytes(packet[1]) if packet[0] in (1, 2) else b""
            if b"still-here\r\n" in seen:
                break
        assert b"still-here\r\n" in seen
    finally:
        client.close()
    real_engine.rm(cid, force=True)


def test_exec_shell_probe_and_exit(real_engine):  # noqa: F811
    import asyncio

    cid = run(real_engine, "exec", ["sleep", "300"])

    async def scenario():
        app = make_app(real_engine, panes=["containers", "terminals"])
        async with app.run_test(size=(100, 30)) as pilot:
            await select_container(pilot, app, cid)
            await pilot.press("e")
            terms = await pane_of(pilot, app, "terminals")
            await pilot_wait_for(pilot, lambda: len(terms.terminals) == 1)
            term = terms.terminals[0]
            await pilot_wait_for(pilot, lambda: PROMPT in screen(term), what="a shell prompt")
            # busybox has no bash: the probe found ash
            assert any(h.command == "nutshell exec -it nsteach-tui-exec /bin/ash" for h in app.history)
            await type_line(pilot, term, "echo in-$((6*7))")
            await pilot_wait_for(pilot, lambda: "in-42" in term.emulator.display())
            await type_line(pilot, term, "exit 3")
            await pilot_wait_for(pilot, lambda: term.exited, what="the shell to end")
            assert term.exit_code == 3

    asyncio.run(scenario())
    assert state(real_engine, cid) == "running"
    real_engine.rm(cid, force=True)
