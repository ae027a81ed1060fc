"""Real containers for the pane integration tests (root): one state root per test module
with the offline busybox image, containers named ``nsteach-tui-*``, everything removed at
the end and checked gone (cgroups, mounts)."""

from __future__ import annotations

from tests.tui.app_helpers import pane_of
from tests.waiting import pilot_wait_for
from workbench.widgets.table import FilterTable

PREFIX = "nsteach-tui"
IMAGE = "localhost/busybox:latest"


def run(engine, name: str, argv: list[str], **kw) -> str:
    from core.runtime.spec import RunOptions

    kw.setdefault("network", "none")
    cid, _ = engine.run(RunOptions(image=IMAGE, command=argv, name=f"{PREFIX}-{name}", **kw))
    return cid


def state(engine, cid: str) -> str:
    return engine.container_state(cid).get("Status", "")


async def select_container(pilot, app, cid: str):
    """The app's Containers pane with ``cid`` listed and selected (so the other panes follow)."""
    containers = await pane_of(pilot, app, "containers")
    await pilot_wait_for(pilot, lambda: cid in containers.items, what="the container listed")
    containers.query_one("#containers-table", FilterTable).select(cid)
    await pilot_wait_for(pilot, lambda: containers.container_id == cid)
    return containers
