"""Save SVG screenshots of terminal tabs: ``python -m workbench.terminal.screenshots [out_dir]``.

Writes terminal-top.svg (host ``top`` in a tab) and terminal-vi.svg (busybox ``vi``, or vim, on a
small file) into out_dir (default: screenshots/ at the repository root), using the demo app run
headless and ``App.save_screenshot``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from workbench.terminal.demo import TerminalDemo
from workbench.terminal.widget import Terminal

SIZE = (110, 32)
SAMPLE = """\
# An embedded terminal in a Textual pane
#
# - real PTY, xterm-256color, alternate screen, scroll regions
# - keys: everything goes to the program; Ctrl-] leaves the pane
# - wide characters: 中文, emoji 🐚
FROM busybox
RUN echo "I could be bounded in a nutshell" > /motd
CMD ["sh"]
"""


def _vi_command(path: str) -> list[str]:
    busybox = shutil.which("busybox")
    if busybox:
        return [busybox, "vi", path]
    return [shutil.which("vim") or "vi", "-u", "NONE", path]


async def _wait(pilot, predicate, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        await pilot.pause(0.05)
    return False


async def shoot(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="nutshell-shots-") as tmp:
        sample = os.path.join(tmp, "Dockerfile")
        Path(sample).write_text(SAMPLE)
        env = {"HOME": tmp, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "TZ": "UTC"}
        app = TerminalDemo([["top", "-d", "2"], _vi_command(sample)], env=env)
        async with app.run_test(size=SIZE) as pilot:
            top = app.query_one("#term-1", Terminal)
            vi = app.query_one("#term-2", Terminal)
            if not await _wait(pilot, lambda: any("PID" in row for row in top.emulator.display())):
                raise RuntimeError("top did not draw")
            await pilot.pause(0.5)
            saved.append(Path(app.save_screenshot("terminal-top.svg", str(out_dir))))
            app.query_one("TabbedContent").active = "tab-2"
            if not await _wait(pilot, lambda: vi.emulator.screen.alt_active
                               and "FROM busybox" in vi.emulator.display()):
                raise RuntimeError("vi did not draw")
            await pilot.press("j", "j", "j")
            await pilot.pause(0.5)
            saved.append(Path(app.save_screenshot("terminal-vi.svg", str(out_dir))))
            await pilot.press("escape", ":", "q", "!", "enter")
    return saved


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else Path(__file__).resolve().parents[2] / "screenshots"
    for path in asyncio.run(shoot(out_dir)):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
