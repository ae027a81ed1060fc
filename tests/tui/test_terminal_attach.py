"""The terminal widget on real containers: attach to a busybox sh and exec into it (Pilot).

Needs root and the runtime (integration). The container is started detached with a TTY; the pane
attaches through the shim's socket, types, runs vi, resizes, detaches - and the container lives on.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from textual.app import App, ComposeResult

from tests.runtime_root import IMAGE
from tests.waiting import pilot_wait_for
from workbench.terminal.backend import attach_backend, exec_backend_factory
from workbench.terminal.widget import Terminal

pytestmark = [pytest.mark.tui, pytest.mark.integration]

PROMPT = "/ #"


class OnePane(App):
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, terminal: Terminal) -> None:
        super().__init__()
        self.terminal = terminal

    def compose(self) -> ComposeResult:
        yield self.terminal

    def on_mount(self) -> None:
        self.terminal.focus()


async def type_line(pilot, term: Terminal, text: str) -> None:
    # busybox ash asks for the cursor position after each prompt: wait for the prompt first.
    await pilot_wait_for(pilot, lambda: term.emulator.display()[term.emulator.cursor[1]].startswith(PROMPT), timeout=15)
    await pilot.press(*[{" ": "space"}.get(c, c) for c in text], "enter")


def screen(term: Terminal) -> str:
    """For failure messages: what the pane showed."""
    return "screen:\n" + "\n".join(term.emulator.display())


def running(engine) -> set[str]:
    return {c["Id"] for c in engine.ps()}


def test_attach_type_vi_resize_detach_then_exec(rt):  # noqa: F811
    from core.runtime.spec import RunOptions

    cid, _ = rt.engine.run(RunOptions(image=IMAGE, command=["sh"], tty=True, interactive=True,
                                      network="none", name="nutshell-term-attach"))
    try:
        async def attach_scenario() -> None:
            term = Terminal(backend=attach_backend(rt.engine, cid))
            app = OnePane(term)
            async with app.run_test(size=(90, 26)) as pilot:
                await pilot.press("enter")  # the first prompt was printed before we attached
                await pilot_wait_for(pilot, lambda: PROMPT in "\n".join(term.emulator.display()), timeout=15, what=lambda: screen(term))
                await type_line(pilot, term, "echo hi")
                await pilot_wait_for(pilot, lambda: "hi" in term.emulator.display(), timeout=15, what=lambda: screen(term))
                await type_line(pilot, term, "stty size")
                await pilot_wait_for(pilot, lambda: f"{term.size.height} {term.size.width}" in term.emulator.display(), timeout=15, what=lambda: screen(term))
                await pilot.resize_terminal(70, 20)
                await pilot_wait_for(pilot, lambda: term.size.width == 70, timeout=15)
                await type_line(pilot, term, "stty size")
                await pilot_wait_for(pilot, lambda: "20 70" in term.emulator.display(), timeout=15, what=lambda: screen(term))
                await type_line(pilot, term, "vi /tmp/in-container.txt")
                await pilot_wait_for(pilot, lambda: term.emulator.screen.alt_active, timeout=15, what=lambda: screen(term))
                await pilot.press("i", *"typed", "escape")
                # as a person types: ESC and ':' in one read are an Alt+: sequence to vi
                await pilot.pause(0.2)
                await pilot.press(":", "q", "!", "enter")
                await pilot_wait_for(pilot, lambda: not term.emulator.screen.alt_active, timeout=15, what=lambda: screen(term))
                await pilot_wait_for(pilot, lambda: "20 70" in term.emulator.display(), timeout=15)  # main screen back
            # Leaving the app unmounted the pane: a detach.

        asyncio.run(attach_scenario())
        time.sleep(0.3)
        assert cid in running(rt.engine), "detaching must leave the container running"

        async def exec_scenario() -> None:
            term = Terminal(backend_factory=exec_backend_factory(rt.engine, cid))
            app = OnePane(term)
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot_wait_for(pilot, lambda: PROMPT in "\n".join(term.emulator.display()), timeout=15, what=lambda: screen(term))
                assert term.title.endswith(": ash") or term.title.endswith(": sh")
                await type_line(pilot, term, "echo from-exec $((6*7))")
                await pilot_wait_for(pilot, lambda: "from-exec 42" in term.emulator.display(), timeout=15, what=lambda: screen(term))
                await type_line(pilot, term, "stty size")
                await pilot_wait_for(pilot, lambda: "24 80" in term.emulator.display(), timeout=15, what=lambda: screen(term))
                await type_line(pilot, term, "exit 3")
                await pilot_wait_for(pilot, lambda: term.exited, timeout=15, what=lambda: screen(term))
                assert term.exit_code == 3

        asyncio.run(exec_scenario())
        assert cid in running(rt.engine), "ending an exec must not stop the container"
    finally:
        rt.engine.rm(cid, force=True)
