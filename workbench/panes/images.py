"""Images pane: the image list, an image's history and details; pull (per-layer progress),
load, tag, push, remove and run (a form with the common ``run`` flags).

Every action is the same Engine call the CLI verb makes, and posts the equivalent command:
``nutshell pull busybox``, ``nutshell tag a b``, ``nutshell rmi a``, ``nutshell push a``,
``nutshell load -i x.tar``, ``nutshell run -d --name web -p 8080:80 busybox httpd -f``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from workbench.format import ago as _ago
from workbench.format import human_size
from workbench.keys import pane_bindings
from workbench.messages import ImageSelected, OpenTerminal
from workbench.panes.base import ListPane, error_text, now, quote
from workbench.runopts import parse_run
from workbench.widgets.progress import ProgressPanel
from workbench.widgets.table import Col, FilterTable, SortCell


def ago(value: Any) -> str:
    return _ago(value, now=now())


@dataclass
class ImageRow:
    """One row of the Images pane."""
    key: str            # the reference the actions use (familiar repo:tag, or the short id)
    repository: str
    tag: str
    short_id: str
    image_id: str
    created: str | None
    size: int
    tags: list[str] = field(default_factory=list)


def image_rows(images: list) -> list[ImageRow]:
    from core.reference import parse

    rows = []
    for img in images:
        refs = [parse(t) for t in img.repo_tags]
        if not refs:
            rows.append(ImageRow(img.short_id, "<none>", "<none>", img.short_id, img.id,
                                 img.created, img.size))
        for r in refs:
            rows.append(ImageRow(r.familiar(), r.familiar_name, r.tag or "<none>", img.short_id,
                                 img.id, img.created, img.size,
                                 [parse(t).familiar() for t in img.repo_tags]))
    return rows


# ---------------------------------------------------------------------- store check

def check_summary(report: dict) -> str:
    c = report["Checked"]
    n = len(report["Findings"])
    head = f"{c['Blobs']} blobs, {c['Images']} images, {c['Layers']} layers, {c['Containers']} containers"
    if not n:
        return head + ": no problems"
    return head + f": {n} found, {report['Repaired']} repaired, {report['Remaining']} remaining"


def check_text(report: dict) -> str:
    """The findings of ``system check``, one paragraph each."""
    if not report["Findings"]:
        return "The store is sound: every blob matches its digest, every image has its\n" \
               "manifest, config and layers, every layer matches its blob, every container\n" \
               "has its layers, and nothing was left by interrupted work."
    out = []
    for f in report["Findings"]:
        mark = "repaired" if f["Repaired"] else "open"
        action = f["Action"]
        if action == "--repair fixes this":
            action = "repairable: close this dialog to be offered the repair"
        out.append(f"[{mark}] {f['Kind']} {f['Object']}\n    {f['Problem']}\n    -> {action}")
    return "\n\n".join(out)


# ---------------------------------------------------------------------- run form → argv

def run_argv(image: str, v: dict) -> list[str]:
    """The ``nutshell run`` arguments for the run form's values (the history shows them,
    and they are parsed by the CLI's own parser so the options are the CLI's)."""
    argv = ["run"]
    argv.append("-it" if v.get("mode") == "it" else "-d")
    if v.get("rm"):
        argv.append("--rm")
    if v.get("name"):
        argv += ["--name", v["name"]]
    for item in shlex.split(v.get("env") or ""):
        argv += ["-e", item]
    for item in shlex.split(v.get("ports") or ""):
        argv += ["-p", item]
    net = v.get("network") or "default"
    if net not in ("default", ""):
        argv += ["--network", net]
    if v.get("memory"):
        argv += ["-m", v["memory"]]
    if v.get("cpus"):
        argv += ["--cpus", v["cpus"]]
    argv.append(image)
    argv += shlex.split(v.get("command") or "")
    return argv


def run_options(argv: list[str]):
    """RunOptions exactly as ``nutshell <argv>`` would build them (the CLI's own flags)."""
    return parse_run(argv)


# ---------------------------------------------------------------------- the pane

class ImagesPane(ListPane):
    PANE_TITLE = "Images"
    PANE_KEY = "1"
    WATCH = {"images", "containers"}
    MUTATING = {"pull", "load", "tag", "rm", "rm_force", "push", "run"}

    DEFAULT_CSS = """
    ImagesPane #images-list { width: 3fr; }
    ImagesPane #images-details { width: 2fr; min-width: 40; }
    Screen.-narrow ImagesPane #images-list { height: 1fr; width: 1fr; }
    Screen.-narrow ImagesPane #images-details { height: 1fr; width: 1fr; min-width: 0; }
    ImagesPane #image-info { height: auto; }
    ImagesPane #history { height: 1fr; }
    """

    BINDINGS = pane_bindings("images")

    def __init__(self, engine: Any, read_only: bool = False, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(engine, read_only, id=id, classes=classes)
        self.rows: dict[str, ImageRow] = {}
        self._details_for: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="images-split", classes="pane-split"):
            with Vertical(id="images-list"):
                yield FilterTable([Col("REPOSITORY", "repository"), Col("TAG", "tag"),
                                   Col("IMAGE ID", "id", 12), Col("CREATED", "created"),
                                   Col("SIZE", "size", 9, justify="right")],
                                  id="images-table")
            with Vertical(id="images-details", classes="pane-details"):
                yield Static("", id="image-info", markup=False)
                yield Static("History", classes="section-title")
                yield FilterTable([Col("SIZE", "size", 8, justify="right"), Col("CREATED", "created", 14),
                                   Col("CREATED BY", "created_by")], id="history")
        yield ProgressPanel(id="images-progress")

    def focus_default(self) -> None:
        self.query_one("#images-table", FilterTable).focus()

    @property
    def table(self) -> FilterTable:
        return self.query_one("#images-table", FilterTable)

    # ------------------------------------------------------------------ data
    def load(self) -> list[ImageRow]:
        return image_rows(self.engine.images())

    def show(self, rows: list[ImageRow]) -> None:
        self.rows = {r.key: r for r in rows}
        self.table.set_rows([(r.key, [r.repository, r.tag, r.short_id,
                                      SortCell(r.created or "", ago(r.created), justify="left"),
                                      SortCell(r.size, human_size(r.size))]) for r in rows])
        if not rows:
            self.query_one("#image-info", Static).update(
                "No images. p pulls one, l loads an archive (nutshell save / docker save).")
            self.query_one("#history", FilterTable).set_rows([])
            self._details_for = None
        else:
            self._load_details(self.table.selected_key, force=True)

    @property
    def selected(self) -> ImageRow | None:
        key = self.table.selected_key
        return self.rows.get(key) if key else None

    @on(FilterTable.Highlighted, "#images-table")
    def _highlighted(self, event: FilterTable.Highlighted) -> None:
        event.stop()
        if event.key != event.table.selected_key:
            return  # stale: the cursor moved again since
        row = self.rows.get(event.key) if event.key else None
        self.post_message(ImageSelected(row.image_id if row else None))
        self._load_details(event.key)

    @on(FilterTable.Activated, "#images-table")
    def _activated(self, event: FilterTable.Activated) -> None:
        event.stop()
        self.action_layers()

    def _load_details(self, key: str | None, force: bool = False) -> None:
        if key is None or (key == self._details_for and not force):
            return
        self._details_for = key
        self._details_worker(key)

    def _details_worker(self, key: str) -> None:
        def work() -> tuple[str, dict, list[dict]]:
            return key, self.engine.image_inspect(key), self.engine.history(key)

        self.run_worker(work, thread=True, exclusive=True, group="details", exit_on_error=False,
                        description="details")

    def on_worker_state_changed(self, event) -> None:
        from textual.worker import WorkerState

        if event.worker.description == "details":
            if event.state == WorkerState.SUCCESS and event.worker.result:
                self._show_details(*event.worker.result)
            elif event.state == WorkerState.ERROR:
                self.query_one("#image-info", Static).update(error_text(event.worker.error))
        # (Textual also calls Pane.on_worker_state_changed: handlers run for every class)

    def _show_details(self, key: str, info: dict, history: list[dict]) -> None:
        if key != self._details_for or not self.is_mounted:
            return
        cfg = info.get("Config") or {}
        t = Text()
        t.append(key, style="bold")
        t.append(f"   {info.get('Id', '')[7:19]}   {info.get('Os')}/{info.get('Architecture')}\n",
                 style="dim")
        tags = ", ".join(info.get("RepoTags") or []) or "<none>"
        t.append("tags ", style="dim")
        t.append(tags + "\n")
        if cfg.get("Entrypoint"):
            t.append("entrypoint ", style="dim")
            t.append(quote(cfg["Entrypoint"]) + "\n")
        t.append("cmd ", style="dim")
        t.append((quote(cfg["Cmd"]) if cfg.get("Cmd") else "-") + "\n")
        if cfg.get("ExposedPorts"):
            t.append("ports ", style="dim")
            t.append(" ".join(cfg["ExposedPorts"]) + "\n")
        t.append("layers ", style="dim")
        t.append(f"{len(info.get('Layers') or [])}   size {human_size(info.get('Size') or 0)}")
        self.query_one("#image-info", Static).update(t)
        rows = []
        for i, h in enumerate(history):
            by = (h.get("CreatedBy") or "").replace("\n", " ")
            by = by.removeprefix("/bin/sh -c #(nop) ").strip()
            style = "dim" if h.get("EmptyLayer") else ""
            rows.append((str(i), [SortCell(h.get("Size") or 0, human_size(h.get("Size") or 0)),
                                  SortCell(h.get("Created") or "", ago(h.get("Created")), justify="left"),
                                  Text(by or "-", style=style, no_wrap=True)]))
        self.query_one("#history", FilterTable).set_rows(rows)

    # ------------------------------------------------------------------ actions
    def _need_selection(self) -> ImageRow | None:
        row = self.selected
        if row is None:
            self.app.notify("no image selected", severity="warning", timeout=3)
        return row

    def action_refresh(self) -> None:
        self.reload()

    def action_layers(self) -> None:
        row = self.selected
        if row is None:
            return
        self.post_message(ImageSelected(row.image_id))
        show = getattr(self.app, "action_show_tab", None)
        if show is not None:
            show("layers")

    def action_pull(self) -> None:
        from workbench.screens.form import Field, FormScreen

        def preview(v: dict) -> str:
            return self._pull_command(v)

        def done(v: dict | None) -> None:
            if v:
                self.pull(v["ref"], insecure=bool(v.get("insecure")))

        self.app.push_screen(FormScreen("Pull an image", [
            Field("ref", "Image", placeholder="busybox:latest or host:5000/repo:tag", required=True),
            Field("insecure", "No TLS (HTTP)", kind="bool"),
        ], submit="Pull", preview=preview), done)

    @staticmethod
    def _pull_command(v: dict) -> str:
        args = ["nutshell", "pull"]
        if v.get("insecure"):
            args.append("--tls-verify=false")
        args.append(v.get("ref") or "REF")
        return quote(args)

    def pull(self, ref: str, insecure: bool = False):
        panel = self.query_one(ProgressPanel)
        panel.start(f"Pulling {ref}")
        sink = panel.sink()
        command = self._pull_command({"ref": ref, "insecure": insecure})
        return self.engine_action(command, self.engine.pull, ref, progress=sink, insecure=insecure,
                                  done=f"Pulled {ref}",
                                  on_done=lambda img: panel.finish(f"Pulled {ref}"),
                                  on_error=lambda _e: panel.finish(f"Pull of {ref} failed", keep=True))

    def action_load(self) -> None:
        from workbench.screens.form import Field, FormScreen

        def done(v: dict | None) -> None:
            if v:
                self.load_archive(v["path"])

        self.app.push_screen(FormScreen("Load images from an archive (docker save / OCI)", [
            Field("path", "Archive", placeholder="/path/to/image.tar", required=True),
        ], submit="Load", preview=lambda v: quote(["nutshell", "load", "-i", v.get("path") or "FILE"])),
            done)

    def load_archive(self, path: str):
        panel = self.query_one(ProgressPanel)
        panel.start(f"Loading {path}")
        sink = panel.sink()

        def loaded(result) -> None:
            names = []
            for img in (result if isinstance(result, list) else [result]):
                names += [t for t in getattr(img, "repo_tags", [])] or [getattr(img, "short_id", "")]
            panel.finish("Loaded " + ", ".join(n for n in names if n))

        return self.engine_action(quote(["nutshell", "load", "-i", path]), self.engine.load, path,
                                  progress=sink, done=f"Loaded {path}", on_done=loaded,
                                  on_error=lambda _e: panel.finish("Load failed", keep=True))

    def action_tag(self) -> None:
        from workbench.screens.form import Field, FormScreen

        row = self._need_selection()
        if row is None:
            return
        src = row.key

        def done(v: dict | None) -> None:
            if v:
                self.engine_action(quote(["nutshell", "tag", src, v["target"]]), self.engine.tag,
                                   src, v["target"], done=f"Tagged {v['target']}")

        self.app.push_screen(FormScreen(f"Tag {src}", [
            Field("target", "New tag", placeholder="repo:tag or host:5000/repo:tag", required=True),
        ], submit="Tag", preview=lambda v: quote(["nutshell", "tag", src, v.get("target") or "TARGET"])),
            done)

    def action_rm(self, force: bool = False) -> None:
        row = self._need_selection()
        if row is None:
            return
        ref = row.key
        args = ["nutshell", "rmi"] + (["-f"] if force else []) + [ref]
        command = quote(args)
        self.confirm(f"Remove image {ref}?" + (" (forced)" if force else ""),
                     lambda: self.engine_action(command, self.engine.rmi, [ref], force=force,
                                                done=f"Removed {ref}"),
                     detail=command, yes_label="Remove")

    def action_rm_force(self) -> None:
        self.action_rm(force=True)

    def action_check(self) -> None:
        """``nutshell system check``: the findings in a dialog, then an offer to repair."""
        self.perform("nutshell system check", self.engine.system_check, done=self._show_check)

    def _show_check(self, report: dict, repaired: bool = False) -> None:
        from workbench.screens.viewers import TextScreen

        fixable = [f for f in report["Findings"] if not f["Repaired"] and f["Action"] == "--repair fixes this"]

        def closed(_result: object = None) -> None:
            if not fixable or repaired:
                return
            command = "nutshell system check --repair"
            self.confirm(f"Repair {len(fixable)} problem{'s' if len(fixable) != 1 else ''}?",
                         lambda: self.engine_action(command, self.engine.system_check, repair=True,
                                                    on_done=lambda r: self._show_check(r, True)),
                         detail=command + "\n(no image or container is removed)", yes_label="Repair")

        title = "Store check" + (" and repair" if repaired else "")
        self.app.push_screen(TextScreen(title, check_text(report), summary=check_summary(report)), closed)

    def action_push(self) -> None:
        from workbench.screens.form import Field, FormScreen

        row = self._need_selection()
        if row is None:
            return
        ref = row.key

        def command(v: dict) -> str:
            args = ["nutshell", "push"]
            if v.get("insecure"):
                args.append("--tls-verify=false")
            args.append(ref)
            if v.get("dest") and v["dest"] != ref:
                args.append(v["dest"])
            return quote(args)

        def done(v: dict | None) -> None:
            if not v:
                return
            panel = self.query_one(ProgressPanel)
            panel.start(f"Pushing {v.get('dest') or ref}")
            dest = v.get("dest") or None
            self.engine_action(command(v), self.engine.push, ref,
                               dest if dest and dest != ref else None,
                               progress=panel.sink(), insecure=bool(v.get("insecure")),
                               done=f"Pushed {dest or ref}",
                               on_done=lambda digest: panel.finish(f"Pushed {dest or ref}: {digest}"),
                               on_error=lambda _e: panel.finish("Push failed", keep=True))

        self.app.push_screen(FormScreen(f"Push {ref}", [
            Field("dest", "Destination", default=ref, placeholder="host:5000/repo:tag"),
            Field("insecure", "No TLS (HTTP)", kind="bool"),
        ], submit="Push", preview=command), done)

    # -- run
    def action_run(self) -> None:
        from workbench.screens.form import Field, FormScreen

        row = self._need_selection()
        if row is None:
            return
        image = row.key
        nets = [("default (bridge)", "default"), ("none", "none"), ("host", "host")]
        try:
            for n in self.engine.networks():
                name = n.get("Name")
                if name and name not in ("bridge", "host", "none"):
                    nets.append((name, name))
        except Exception:  # noqa: BLE001 - networking unavailable: the defaults remain
            pass
        fields = [
            Field("name", "Name", placeholder="(generated)"),
            Field("mode", "Mode", kind="select", default="d",
                  options=[("detached (-d)", "d"), ("terminal (-it)", "it")]),
            Field("rm", "Remove on exit", kind="bool"),
            Field("command", "Command", placeholder="(the image's CMD)"),
            Field("env", "Environment", placeholder="KEY=VALUE KEY2=VALUE2"),
            Field("ports", "Publish", placeholder="8080:80 9090:90/udp"),
            Field("network", "Network", kind="select", default="default", options=nets),
            Field("memory", "Memory", placeholder="64m"),
            Field("cpus", "CPUs", placeholder="0.5"),
        ]

        def validate(v: dict) -> str | None:
            try:
                run_options(run_argv(image, v))
            except Exception as exc:  # noqa: BLE001
                return error_text(exc)
            return None

        def done(v: dict | None) -> None:
            if v:
                self.run_container(image, v)

        self.app.push_screen(FormScreen(f"Run {image}", fields, submit="Run", validate=validate,
                                        preview=lambda v: quote(["nutshell"] + run_argv(image, v))),
                             done)

    def run_container(self, image: str, values: dict):
        """create + start, as ``nutshell run`` does; -it opens an attached terminal tab."""
        argv = run_argv(image, values)
        interactive = values.get("mode") == "it"
        size = self.app.size
        rows, cols = max(size.height - 6, 10), max(size.width - 2, 20)

        def run() -> str:
            opts, _args = run_options(argv)
            cid = self.engine.create(opts)
            self.engine.start(cid, rows=rows, cols=cols)
            return cid

        def started(cid: str) -> None:
            if interactive:
                self.post_message(OpenTerminal("attach", cid, title=values.get("name") or cid[:12]))

        return self.engine_action(quote(["nutshell"] + argv), run, done=f"Started {image}",
                                  on_done=started)
