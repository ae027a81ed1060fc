"""Real containers for the pane integration tests (root): one state root per test module
with the offline busybox image, containers named ``nsteach-tui-*``, everything removed at
the end and checked gone (cgroups, mounts)."""

from __future__ import annotations

from tests.waiting import pilot_wait_for

PREFIX = "nsteach-tui"
IMAGE = "localhost/busybox:latest"


def run(engine, name: str, argv: list[str], **kw) -> str:
    from core.runtime.spec import RunOptions

    kw.setdefault("network", "none")
    cid, _ = engine.run(RunOptions(image=IMAGE, command=argv, name=f"{PREFIX}-{name}", **kw))
    return cid


def state(engine, cid: str) -> str:
    return engine.container_state(cid).get("Status", "")


async def pane_of(pilot, app, name: str):
    """The app's pane ``name`` once it is mounted (the workbench may mount panes lazily,
    after its first frame)."""
    await pilot_wait_for(pilot, lambda: app.pane(name) is not None and app.pane(name).is_mounted,
                         what=f"the {name} pane")
    return app.pane(name)
