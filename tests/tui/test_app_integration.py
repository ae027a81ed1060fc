"""The app on a real store with real containers (root): Images actions (load, tag, run, rm),
Layers on a real multi-layer image with whiteouts, Networks with the real bridge and veths,
and liveness — a CLI in another process changes the store and the app follows.

Each test has its own state root; at the end every container is removed, the root's
networks are reset, and the test checks no veth/bridge of its root is left."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest

from tests.imagebuild import TarBuilder, docker_archive, image_config, sha
from tests.integration.netenv import network_links
from tests.tui.app_helpers import make_app, screen_text, sync_all
from tests.waiting import pilot_wait_for
from workbench.default_image import ensure_default_image
from workbench.widgets.filetree import FileTree
from workbench.widgets.table import FilterTable

pytestmark = [pytest.mark.integration, pytest.mark.tui]

NUTSHELL = [sys.executable, "-m", "workbench"]


class Host:
    def __init__(self, tmp_path):
        from core.engine import Engine

        self.root = str(tmp_path / "root")
        self.tmp = tmp_path
        self.env = dict(os.environ, NUTSHELL_RUNTIME_DIR=str(tmp_path / "run"))
        self.env.pop("NUTSHELL_ROOT", None)
        self.engine = Engine(self.root)
        ensure_default_image(self.engine)
        self.links: set[str] = set()

    def cli(self, *args, check=True) -> subprocess.CompletedProcess:
        p = subprocess.run(NUTSHELL + ["--root", self.root, *args], capture_output=True, text=True,
                           env=self.env, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError(f"nutshell {' '.join(args)} -> {p.returncode}: {p.stderr}")
        return p

    def remember(self) -> None:
        self.links |= network_links(self.engine)

    def close(self) -> None:
        self.remember()
        for c in self.engine.ps(all=True):
            self.engine.rm(c["Id"], force=True)
        self.engine.network_reset()
        left = self.links & set(os.listdir("/sys/class/net"))
        assert not left, f"leaked links: {left}"


@pytest.fixture
def host(tmp_path, monkeypatch):
    monkeypatch.setenv("NUTSHELL_RUNTIME_DIR", str(tmp_path / "run"))
    with contextlib.closing(Host(tmp_path)) as h:
        yield h


def layered_archive(path: str) -> None:
    """3 layers: base files; an overwrite + a new dir; a whiteout, an opaque dir, an overwrite."""
    l0 = (TarBuilder().dir("etc").dir("opt").dir("opt/lib").file("etc/motd", b"m" * 1000)
          .file("opt/lib/a.so", b"a" * 3000).file("opt/lib/b.so", b"b" * 2000).file("big", b"x" * 10000).bytes())
    l1 = TarBuilder().file("big", b"y" * 20000).dir("app").file("app/run.sh", b"#!/bin/sh\necho hi\n").bytes()
    l2 = (TarBuilder().file("etc/.wh.motd").dir("opt/lib").file("opt/lib/.wh..wh..opq")
          .file("opt/lib/c.so", b"c" * 500).file("big", b"z" * 5).bytes())
    layers = [l0, l1, l2]
    cfg = image_config([sha(x) for x in layers], cmd=["sh"],
                       history=[{"created_by": f"step {i}"} for i in range(3)])
    docker_archive(path, layers, ["localhost/layered:1"], config=cfg)


@pytest.mark.slow
async def test_images_load_tag_run_remove(host):
    archive = str(host.tmp / "layered.tar")
    layered_archive(archive)
    app = make_app(host.engine, panes=["images", "layers", "networks"], watch=True)
    async with app.run_test(size=(160, 48)) as pilot:
        pane = app.pane("images")
        await pilot_wait_for(pilot, lambda: "localhost/busybox:latest" in pane.rows, what="busybox")
        # load an archive through the form
        await pilot.press("l")
        await pilot.pause()
        app.screen.query_one("#field-path").value = archive
        await pilot.press("enter")
        await pilot_wait_for(pilot, lambda: "localhost/layered:1" in pane.rows, timeout=20, what="loaded image")
        assert app.history[-1].command == f"nutshell load -i {archive}"
        # tag it
        pane.table.select("localhost/layered:1")
        await pilot.pause()
        await pilot.press("t", *"localhost/layered:two", "enter")
        await pilot_wait_for(pilot, lambda: "localhost/layered:two" in pane.rows, what="new tag")
        assert "localhost/layered:two" in host.cli("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
        # remove the tag (asks first)
        pane.table.select("localhost/layered:two")
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await pilot_wait_for(pilot, lambda: "localhost/layered:two" not in pane.rows, what="tag removed")
        # run busybox detached from the form: a real container
        pane.table.select("localhost/busybox:latest")
        await pilot.pause()
        await pilot.press("r")
        await pilot.pause()
        app.screen.query_one("#field-name").value = "tui-web"
        app.screen.query_one("#field-command").value = "sleep 300"
        app.screen.query_one("#field-memory").value = "32m"
        await pilot.press("ctrl+s")
        await pilot_wait_for(pilot, lambda: app.history[-1].command.startswith("nutshell run"), timeout=20)
        assert app.history[-1].ok, app.history[-1].error
        assert app.history[-1].command == "nutshell run -d --name tui-web -m 32m localhost/busybox:latest sleep 300"
        ps = {c["Names"]: c for c in host.engine.ps()}
        assert ps["tui-web"]["State"] == "running"
        assert host.engine.container_inspect("tui-web")["HostConfig"]["Memory"] == 32 << 20
        # removing an image a container uses fails with the CLI's own message
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await pilot_wait_for(pilot, lambda: not app.history[-1].ok, what="refused rmi")
        cli = host.cli("rmi", "localhost/busybox:latest", check=False)
        assert app.history[-1].error == cli.stderr.splitlines()[0].removeprefix("nutshell: ")
        assert ("error", app.history[-1].error) in app.notifications_seen


async def test_layers_of_a_real_image(host):
    archive = str(host.tmp / "layered.tar")
    layered_archive(archive)
    host.engine.load(archive)
    app = make_app(host.engine, panes=["images", "layers"])
    async with app.run_test(size=(160, 48)) as pilot:
        images = app.pane("images")
        await pilot_wait_for(pilot, lambda: "localhost/layered:1" in images.rows)
        images.table.select("localhost/layered:1")
        await pilot.pause()
        await pilot.press("enter")              # -> Layers for this image
        layers = app.pane("layers")
        await pilot_wait_for(pilot, lambda: layers.tree_data is not None and
                             layers.image_label == "localhost/layered:1", timeout=10)
        tree = layers.tree_data
        # big: 10000 (l0) and 20000 (l1) shadowed; motd 1000 deleted; a.so + b.so hidden by opaque
        assert [lc.wasted for lc in tree.layers] == [10000 + 1000 + 3000 + 2000, 20000, 0]
        assert tree.wasted == 36000
        l2 = tree.layers[2].entries
        assert l2["etc/motd"].status == "deleted" and l2["opt/lib"].opaque
        assert l2["opt/lib/a.so"].status == "deleted" and l2["big"].status == "modified"
        assert "wasted 36kB" in screen_text(app)
        # the content of a file, from the real layer dir
        ftree = layers.query_one(FileTree)
        ftree.focus()
        assert ftree.reveal("app/run.sh")
        await pilot.pause()
        await pilot.press("enter")
        await pilot_wait_for(pilot, lambda: len(app.screen_stack) == 2, timeout=10)
        assert app.screen.query_one("TextArea").text == "#!/bin/sh\necho hi\n"
        await pilot.press("escape")
        # diff against busybox
        layers.show_diff(host.engine.image("localhost/busybox:latest").id)
        await pilot_wait_for(pilot, lambda: len(app.screen_stack) == 2 and app.screen.query(FilterTable), timeout=10)
        rows = {str(c[1]): str(c[0]) for _, c in app.screen.query_one(FilterTable).rows}
        assert rows["/app/run.sh"] == "removed" and rows["/bin/busybox"] == "added"


async def test_networks_and_liveness_from_another_process(host):
    app = make_app(host.engine, panes=["images", "networks"], watch=True)
    async with app.run_test(size=(160, 48)) as pilot:
        app.action_show_tab("networks")
        nets = app.pane("networks")
        await pilot_wait_for(pilot, lambda: "bridge" in nets.networks, timeout=10)
        # a container started by the CLI in another process shows up on the bridge
        cid = host.cli("run", "-d", "--name", "from-cli", "localhost/busybox:latest", "sleep", "300").stdout.strip()
        host.remember()
        members = nets.query_one("#members", FilterTable)
        await pilot_wait_for(pilot, lambda: cid in members.shown_keys, timeout=5, what="member from the CLI")
        ep = host.engine.network_inspect("bridge")["Containers"][cid]
        text = screen_text(app)
        assert ep["HostVeth"] in text and ep["IPv4Address"] in text and "from-cli" in text
        assert os.path.exists(f"/sys/class/net/{ep['HostVeth']}")     # really there
        # an image tagged by the CLI shows up in the Images pane
        host.cli("tag", "localhost/busybox:latest", "localhost/seen:now")
        await pilot_wait_for(pilot, lambda: "localhost/seen:now" in app.pane("images").rows, timeout=5)
        # a network created from the pane is a real bridge
        await pilot.press("n")
        await pilot.pause()
        name = f"tui{os.urandom(2).hex()}"
        app.screen.query_one("#field-name").value = name
        await pilot.press("ctrl+s")
        await pilot_wait_for(pilot, lambda: name in nets.networks, timeout=10)
        bridge = nets.networks[name]["Bridge"]
        host.links.add(bridge)
        assert os.path.exists(f"/sys/class/net/{bridge}")
        # connect the running container to it (a second interface inside), then disconnect
        table = nets.query_one("#networks-table", FilterTable)
        table.select(name)
        await pilot.pause()
        await pilot.press("C")
        await pilot.pause()
        app.screen.query_one("#field-container").value = cid
        await pilot.press("ctrl+s")
        await pilot_wait_for(pilot, lambda: cid in members.shown_keys, timeout=10, what="connected")
        host.remember()
        ep2 = host.engine.network_inspect(name)["Containers"][cid]
        assert ep2["Interface"] == "eth1" and os.path.exists(f"/sys/class/net/{ep2['HostVeth']}")
        assert app.history[-1].command == f"nutshell network connect {name} from-cli"
        members.select(cid)
        await pilot.pause()
        await pilot.press("X")
        await pilot.pause()
        await pilot.press("y")
        await pilot_wait_for(pilot, lambda: cid not in members.shown_keys, timeout=10, what="disconnected")
        assert not os.path.exists(f"/sys/class/net/{ep2['HostVeth']}")
        # removed by the CLI: gone from the bridge's members
        host.cli("rm", "-f", cid)
        table.select("bridge")
        await pilot_wait_for(pilot, lambda: nets.details.get("bridge") is not None and
                             cid not in nets.details["bridge"]["Containers"], timeout=5, what="member gone")
        table.select(name)
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await pilot_wait_for(pilot, lambda: name not in nets.networks, timeout=10)
        assert not os.path.exists(f"/sys/class/net/{bridge}")
        assert app.changes_seen >= 3



@pytest.mark.registry
async def test_push_and_pull_through_a_real_registry(host, registry, docker_config):
    """Push busybox from the Images pane to a local docker-registry, remove it, pull it back
    with the per-layer progress of the real pull."""
    from workbench.widgets.progress import ProgressPanel

    dest = registry.ref(f"tui{os.urandom(2).hex()}/bb", "1")
    app = make_app(host.engine, panes=["images"], watch=True)
    async with app.run_test(size=(160, 48)) as pilot:
        pane = app.pane("images")
        await pilot_wait_for(pilot, lambda: "localhost/busybox:latest" in pane.rows)
        pane.table.select("localhost/busybox:latest")
        await pilot.pause()
        await pilot.press("P")
        await pilot.pause()
        app.screen.query_one("#field-dest").value = dest
        await pilot.press("ctrl+s")
        await pilot_wait_for(pilot, lambda: app.history, timeout=30, what="push")
        assert app.history[-1].ok, app.history[-1].error
        assert app.history[-1].command == f"nutshell push localhost/busybox:latest {dest}"
        # pull it back under its registry name
        await pilot.press("p")
        await pilot.pause()
        app.screen.query_one("#field-ref").value = dest
        await pilot.press("ctrl+s")
        await pilot_wait_for(pilot, lambda: len(app.history) == 2, timeout=30, what="pull")
        assert app.history[-1].ok, app.history[-1].error
        await pilot_wait_for(pilot, lambda: any(k.startswith("127.0.0.1") for k in pane.rows), timeout=10)
        panel = app.query_one(ProgressPanel)
        assert panel.events_seen > 0 and panel.items
        assert host.engine.image(dest).id == host.engine.image("localhost/busybox:latest").id


sync_all(globals())
