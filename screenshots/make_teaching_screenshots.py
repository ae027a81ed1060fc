"""Make the SVGs of docs/teaching.md: the lesson's own containers, in the app's teaching views.

    sudo .venv/bin/python screenshots/make_teaching_screenshots.py [--out screenshots] [--keep]

Needs root (real containers). In a temporary state root it makes the offline busybox image
and runs the lesson's containers with the very ``nutshell run`` lines the lesson shows
(LESSON below): ``web`` (limits, a deleted /home, a file written), ``sidecar`` (joins web's
network namespace), ``spinner`` (a busy loop capped at half a CPU); then web's changes are
committed as ``localhost/lesson:1`` and ``web2`` runs it (two lower layers). Then it drives the
workbench headless at 160x48 and saves teaching-*.svg. Everything is removed at the end
unless --keep.

Files: teaching-containers.svg, teaching-namespaces.svg, teaching-namespaces-sidecar.svg,
teaching-pids.svg, teaching-overlay-web.svg, teaching-overlay.svg (web2: two layers),
teaching-cgroups.svg, teaching-network.svg, teaching-stats.svg, teaching-terminal.svg.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from screenshots.shots import arguments, new_app, run_named, wait_for  # noqa: E402 - after the path is set

#: the lesson's commands, exactly as docs/teaching.md shows them
LESSON = [
    "nutshell run -d --name web -m 64m --cpus 0.5 --pids-limit 50 localhost/busybox "
    "sh -c 'rm -rf /home; mkdir /www; echo hello > /www/index.html; exec httpd -f -p 80 -h /www'",
    "nutshell run -d --name sidecar --network container:web localhost/busybox sleep 100000",
    "nutshell run -d --name spinner --cpus 0.5 localhost/busybox sh -c 'while :; do :; done'",
]
EXEC = "nutshell exec -d web sleep 3600"
COMMIT = "nutshell commit -m 'the web root' web localhost/lesson:1"
LAYERED = ("nutshell run -d --name web2 localhost/lesson:1 "
           "sh -c 'echo again >> /www/index.html; rm /bin/vi; exec sleep 100000'")


def prepare(engine) -> dict[str, str]:
    from workbench.default_image import ensure_default_image

    ensure_default_image(engine)
    ids: dict[str, str] = {}
    for line in LESSON:
        argv = shlex.split(line)[1:]
        ids[argv[argv.index("--name") + 1]] = run_named(engine, argv)
    proc = engine.exec(ids["web"], shlex.split(EXEC)[4:], detach=True)
    proc.close()
    time.sleep(0.5)
    # a second layer: web's upper dir committed, and a container of that image
    try:
        engine.image("localhost/lesson:1")
    except Exception:  # noqa: BLE001
        engine.commit(ids["web"], "localhost/lesson:1", message="the web root")
    ids["web2"] = run_named(engine, shlex.split(LAYERED)[1:])
    time.sleep(0.5)
    return ids


async def shoot(engine, out: str, ids: dict[str, str]) -> list[str]:
    from workbench.messages import ContainerSelected, OpenTerminal

    made: list[str] = []
    app, save = new_app(engine, out, made)

    async def pane(name: str):
        await wait_for(pilot, lambda: app.pane(name) is not None and app.pane(name).is_mounted,
                       what=f"the {name} pane")
        return app.pane(name)

    async def select(name: str, what: str):
        """Select container ``name`` and wait for the teaching views to load it."""
        n = learn.loads
        app.post_message(ContainerSelected(ids[name]))
        await wait_for(pilot, lambda: learn.loads > n and learn.container_id == ids[name], what=what)

    async def show(section: str, name: str):
        learn.action_show(section)
        await pilot.pause(0.6)
        save(name)

    async with app.run_test(size=(160, 48)) as pilot:
        containers = await pane("containers")
        app.action_show_tab("containers")
        await wait_for(pilot, lambda: ids["web"] in containers.items, what="the containers")
        table = containers.query_one("#containers-table")
        # (select again until it sticks: a reload arriving meanwhile may move the cursor)
        await wait_for(pilot, lambda: table.select(ids["web"]) and containers.container_id == ids["web"],
                       what="web selected")
        await pilot.pause(1.0)
        save("teaching-containers")

        learn = await pane("teaching")
        app.action_show_tab("teaching")
        await wait_for(pilot, lambda: learn.container_id == ids["web"] and "network" in learn.data,
                       what="the teaching data of web")
        for section, name in (("namespaces", "teaching-namespaces"), ("processes", "teaching-pids"),
                              ("overlay", "teaching-overlay-web"), ("cgroup", "teaching-cgroups"),
                              ("network", "teaching-network")):
            await show(section, name)
        await select("web2", "web2's views")
        await show("overlay", "teaching-overlay")
        await select("sidecar", "the sidecar's views")
        await show("namespaces", "teaching-namespaces-sidecar")

        stats = await pane("stats")
        app.post_message(ContainerSelected(ids["spinner"]))
        app.action_show_tab("stats")
        await wait_for(pilot, lambda: stats.samples_taken >= 12, timeout=30, what="stats samples")
        await pilot.pause(0.3)
        save("teaching-stats")

        pid = engine.container_inspect(ids["web"])["State"]["Pid"]
        netns = engine.container_network(ids["web"]).netns_name or ""
        script = (f"echo '$ readlink /proc/{pid}/ns/net /proc/self/ns/net'; "
                  f"readlink /proc/{pid}/ns/net /proc/self/ns/net; "
                  f"echo '$ grep NSpid /proc/{pid}/status'; grep NSpid /proc/{pid}/status; "
                  f"echo '$ ip netns exec {netns} ip -brief addr'; ip netns exec {netns} ip -brief addr; "
                  "exec sleep 3600")
        app.post_message(OpenTerminal("host", argv=["/bin/sh", "-c", script], title="host: proof"))
        await pilot.pause(2.0)
        save("teaching-terminal")
    return made


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, argv)
    if args is None:
        return 1
    from core.engine import Engine

    root = args.root or tempfile.mkdtemp(prefix="nsteach-shots-")
    engine = Engine(root)
    ids: dict[str, str] = {}
    try:
        ids = prepare(engine)
        made = asyncio.run(shoot(engine, os.path.abspath(args.out), ids))
        print("\n".join(os.path.join(args.out, m) for m in made))
    finally:
        if not args.keep:
            for cid in ids.values():
                try:
                    engine.rm(cid, force=True)
                except Exception as exc:  # noqa: BLE001
                    print("cleanup:", exc, file=sys.stderr)
            try:
                engine.rmi(["localhost/lesson:1"])
            except Exception:  # noqa: BLE001
                pass
            try:
                engine.network_reset()
            except Exception:  # noqa: BLE001
                pass
            if not args.root:
                shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
