"""Make the SVG screenshots of every pane and teaching view from a real session.

    sudo .venv/bin/python screenshots/make_screenshots.py [--out screenshots] [--root DIR] [--keep]

It needs root (real containers). In a temporary state root (or --root) it makes the offline
busybox image, builds a small demo image with a Dockerfile (a layer that a later layer
deletes, so the Layers pane has wasted space to show), creates a user network, and runs
three real containers (a web server with a published port, a database stand-in on two
networks, a CPU-busy worker with limits). Then it drives the app headless at 160x48
(App.run_test + App.save_screenshot) through every pane, the Learn views and the dialogs.
Everything it started is removed at the end unless --keep.

Files: images.svg, images-100x30.svg, images-run.svg, layers.svg, layers-100x30.svg,
layers-wasted.svg, layers-file.svg, layers-diff.svg, containers.svg, networks.svg,
stats.svg, terminals.svg, learn-namespaces.svg, learn-pids.svg, learn-overlay.svg,
learn-cgroups.svg, learn-network.svg, learn-security.svg, help.svg, history.svg, palette.svg.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from screenshots.shots import arguments, new_app, run_named, wait_for  # noqa: E402 - after the path is set

DOCKERFILE = """\
FROM localhost/busybox:latest
LABEL org.opencontainers.image.title="nutshell demo"
RUN mkdir -p /app/data && dd if=/dev/zero of=/app/data/cache.bin bs=1024 count=768 2>/dev/null
COPY index.html /app/www/index.html
COPY serve.sh /app/serve.sh
RUN rm /app/data/cache.bin && echo "cleaned" > /app/data/README && chmod 755 /app/serve.sh
ENV GREETING=hello
EXPOSE 80
CMD ["/app/serve.sh"]
"""
SERVE = "#!/bin/sh\nexec httpd -f -p 80 -h /app/www\n"
INDEX = "<h1>hello from a nutshell</h1>\n"
WORKER = "while :; do i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 0.3; done"


def prepare(engine, work: str) -> dict:
    """The demo image, network and containers. Returns names for the shots."""
    from tests.integration.netenv import free_port
    from workbench.default_image import ensure_default_image

    ensure_default_image(engine)
    ctx = os.path.join(work, "context")
    os.makedirs(ctx, exist_ok=True)
    for name, text in (("Dockerfile", DOCKERFILE), ("serve.sh", SERVE), ("index.html", INDEX)):
        with open(os.path.join(ctx, name), "w") as f:
            f.write(text)
    engine.build(context=ctx, tags=["localhost/demo:1"])
    try:
        engine.network_create("backend")
    except Exception:  # noqa: BLE001 - kept from an earlier --keep run
        pass
    port = free_port(18080)
    runs = [
        ["run", "-d", "--name", "web", "-p", f"{port}:80", "localhost/demo:1"],
        ["run", "-d", "--name", "db", "--network", "backend", "-m", "64m",
         "localhost/busybox:latest", "sleep", "100000"],
        ["run", "-d", "--name", "worker", "--cpus", "0.5", "-m", "32m", "--pids-limit", "64",
         "localhost/busybox:latest", "sh", "-c", WORKER],
    ]
    ids = {argv[argv.index("--name") + 1]: run_named(engine, argv) for argv in runs}
    engine.network_connect("backend", ids["web"])
    return ids


async def shoot(engine, out: str, ids: dict) -> list[str]:
    from textual.widgets import TabbedContent

    from workbench.messages import ContainerSelected, OpenTerminal

    made: list[str] = []
    app, save = new_app(engine, out, made)
    async with app.run_test(size=(160, 48)) as pilot:
        images = app.pane("images")
        await wait_for(pilot, lambda: "localhost/demo:1" in images.rows, what="images")
        images.table.select("localhost/demo:1")
        await wait_for(pilot, lambda: "demo" in str(app.query_one("#image-info").render()), what="details")
        await pilot.pause(0.3)
        save("images")

        await pilot.press("r")
        await pilot.pause(0.3)
        form = app.screen
        form.query_one("#field-name").value = "web2"
        form.query_one("#field-ports").value = "8081:80"
        form.query_one("#field-memory").value = "64m"
        await pilot.pause(0.2)
        save("images-run")
        await pilot.press("escape")

        # the store check: what a killed pull left (a staging dir of a process that is gone)
        staging = os.path.join(engine.paths.layers, ".staging-4000000-shot")
        os.makedirs(os.path.join(staging, "diff"), exist_ok=True)
        with open(os.path.join(staging, "diff", "partial"), "wb") as f:
            f.write(b"\0" * 300_000)
        await pilot.press("C")
        await wait_for(pilot, lambda: len(app.screen_stack) == 2, what="check")
        await pilot.pause(0.3)
        save("images-check")
        await pilot.press("escape")                      # the repair offer
        await wait_for(pilot, lambda: len(app.screen_stack) == 2, what="repair offer")
        await pilot.press("y")
        await wait_for(pilot, lambda: not os.path.exists(staging), what="repaired")
        await wait_for(pilot, lambda: len(app.screen_stack) == 2, what="repair result")
        await pilot.press("escape")

        # Layers of the demo image: the step that deleted the cache
        await pilot.press("enter")
        layers = app.pane("layers")
        await wait_for(pilot, lambda: layers.tree_data is not None and layers.image_label == "localhost/demo:1",
                       what="layers")
        table = layers.query_one("#layer-table")
        last = str(len(layers.tree_data.layers) - 1)
        rm_layer = next((str(lc.index) for lc in layers.tree_data.layers if lc.deleted), last)
        table.select(rm_layer)
        await wait_for(pilot, lambda: layers.layer_key == rm_layer, what="layer selected")
        tree = layers.query_one("#file-tree")
        tree.reveal("app/data/cache.bin")
        tree.reveal("app/serve.sh")
        await pilot.pause(0.3)
        save("layers")

        await pilot.press("w")
        await wait_for(pilot, lambda: len(app.screen_stack) == 2, what="wasted")
        await pilot.pause(0.2)
        save("layers-wasted")
        await pilot.press("escape")

        table.select("merged")
        await wait_for(pilot, lambda: layers.layer_key == "merged")
        tree.focus()
        tree.reveal("app/serve.sh")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.screen_stack) == 2, what="file view")
        await pilot.pause(0.2)
        save("layers-file")
        await pilot.press("escape")

        layers.show_diff(engine.image("localhost/busybox:latest").id)
        await wait_for(pilot, lambda: len(app.screen_stack) == 2, what="diff")
        await pilot.pause(0.3)
        save("layers-diff")
        await pilot.press("escape")

        # Containers (web selected), Networks, Stats
        app.action_show_tab("containers")
        await pilot.pause(0.5)
        web = ids["web"]
        app.post_message(ContainerSelected(web))
        containers = app.pane("containers")
        if hasattr(containers, "query") and containers.query("#containers-table"):
            await wait_for(pilot, lambda: web in containers.query_one("#containers-table").shown_keys,
                           what="containers")
            containers.query_one("#containers-table").select(web)
        await pilot.pause(1.5)
        save("containers")

        app.action_show_tab("networks")
        nets = app.pane("networks")
        await wait_for(pilot, lambda: "backend" in nets.networks, what="networks")
        await wait_for(pilot, lambda: nets.query_one("#members").shown_keys, what="members")
        await pilot.pause(0.3)
        save("networks")

        app.action_show_tab("stats")
        await pilot.pause(8.0)         # a few samples for the sparklines
        save("stats")

        # Terminals: an exec shell in web, running ps
        app.post_message(OpenTerminal("exec", web, ["/bin/sh"], title="web: sh"))
        await pilot.pause(2.0)
        from workbench.terminal.widget import Terminal

        terms = list(app.query(Terminal))
        if terms:
            terms[-1].send(b"ps -o pid,user,args; echo; cat /etc/hostname\n")
            await pilot.pause(1.5)
        save("terminals")
        if terms:
            terms[-1].send(b"exit\n")
            await pilot.pause(0.5)

        # Learn: every view, for web
        app.action_show_tab("teaching")
        app.post_message(ContainerSelected(web))
        await pilot.pause(1.5)
        learn = app.pane("teaching")
        inner = list(learn.query(TabbedContent)) if learn is not None else []
        for tab_id, name in (("learn-ns", "learn-namespaces"), ("learn-pid", "learn-pids"),
                             ("learn-overlay", "learn-overlay"), ("learn-cgroup", "learn-cgroups"),
                             ("learn-net", "learn-network"), ("learn-sec", "learn-security")):
            if inner:
                inner[0].active = tab_id
            await pilot.pause(1.5)
            save(name)

        # dialogs
        app.action_show_tab("images")
        await pilot.pause(0.3)
        await pilot.press("question_mark")
        await pilot.pause(0.5)
        save("help")
        await pilot.press("escape")
        await pilot.press("H")
        await pilot.pause(0.5)
        save("history")
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"images")
        await pilot.pause(0.8)
        save("palette")
        await pilot.press("escape")

    # the SSH-sized layout
    app, save = new_app(engine, out, made, watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        images = app.pane("images")
        await wait_for(pilot, lambda: "localhost/demo:1" in images.rows, what="images")
        images.table.select("localhost/demo:1")
        await pilot.pause(0.8)
        save("images-100x30")
        await pilot.press("enter")
        layers = app.pane("layers")
        await wait_for(pilot, lambda: layers.tree_data is not None and layers.image_label == "localhost/demo:1")
        await pilot.pause(0.5)
        save("layers-100x30")
    return made


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, argv)
    if args is None:
        return 1
    work = tempfile.mkdtemp(prefix="nutshell-shots-")
    root = args.root or os.path.join(work, "root")
    os.environ.setdefault("NUTSHELL_RUNTIME_DIR", os.path.join(work, "run"))
    os.environ["NUTSHELL_CONFIG_DIR"] = os.path.join(work, "config")   # no user keymap/theme
    from core.engine import Engine
    from tests.runtime_root import remove_all_containers

    engine = Engine(root)
    try:
        ids = prepare(engine, work)
        made = asyncio.run(shoot(engine, os.path.abspath(args.out), ids))
        print(f"wrote {len(made)} screenshots to {args.out}: " + ", ".join(made))
    finally:
        if not args.keep:
            remove_all_containers(engine)
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
