"""Layers pane: for the selected image, its layers in order and a file tree per layer (what the
layer adds, modifies and deletes) or merged (the file system a container starts from), with
sizes, sort by size, a path filter, wasted space, a file's content, and a diff of two images.

The analysis is core/store/layertree.py (Engine.image_tree / image_diff / image_file); the
definition of wasted space is documented there and in docs/app.md.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Static, Tree

from workbench.format import human_size as hs
from workbench.keys import pane_bindings
from workbench.messages import ImageSelected
from workbench.panes.base import ListPane, error_text
from workbench.widgets.filetree import FileTree
from workbench.widgets.table import Col, FilterTable, SortCell

MERGED = "merged"
CHANGES = {"added", "modified", "deleted"}


class LayersPane(ListPane):
    PANE_TITLE = "Layers"
    PANE_KEY = "2"
    WATCH = {"images"}
    MUTATING: set[str] = set()   # nothing here changes the store

    DEFAULT_CSS = """
    LayersPane #layers-summary { height: auto; padding: 0 1; }
    LayersPane #layers-left { width: 1fr; min-width: 44; }
    LayersPane #layers-right { width: 1fr; }
    Screen.-narrow LayersPane #layers-left { height: 2fr; width: 1fr; min-width: 0; }
    Screen.-narrow LayersPane #layers-right { height: 3fr; width: 1fr; }
    LayersPane #layer-table { height: 1fr; }
    LayersPane #tree-filter { display: none; height: 1; border: none; }
    LayersPane.-filtering #tree-filter { display: block; }
    LayersPane #tree-title { height: 1; }
    LayersPane #entry-info { height: auto; max-height: 3; color: $text-muted; }
    """

    BINDINGS = pane_bindings("layers")

    def __init__(self, engine: Any, read_only: bool = False, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(engine, read_only, id=id, classes=classes)
        self.image_ref: str | None = None      # what the user chose (an image id or reference)
        self.tree_data = None                   # layertree.ImageTree
        self.image_label = ""
        self.layer_key: str = MERGED
        self.aggregate = False                  # per layer: its changes (False) or merged up to it
        self.changes_only = False
        self.sort_by_size = False
        self.path_filter = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="layers-summary", markup=False)
        with Horizontal(id="layers-split", classes="pane-split"):
            with Vertical(id="layers-left"):
                yield FilterTable([Col("#", "n", 3, justify="right"), Col("SIZE", "size", 8, justify="right"),
                                   Col("+", "added", 5, justify="right"), Col("~", "modified", 4, justify="right"),
                                   Col("-", "deleted", 4, justify="right"),
                                   Col("WASTED", "wasted", 8, justify="right"), Col("CREATED BY", "by")],
                                  id="layer-table")
            with Vertical(id="layers-right", classes="pane-details"):
                yield Static("", id="tree-title", markup=False)
                yield Input(placeholder="path filter (a leading / anchors at the root; Esc clears)",
                            id="tree-filter", compact=True)
                yield FileTree(id="file-tree")
                yield Static("", id="entry-info", markup=False)

    def focus_default(self) -> None:
        self.query_one("#layer-table", FilterTable).focus()

    # ------------------------------------------------------------------ which image
    def on_image_selected(self, message: ImageSelected) -> None:
        if message.image_id and message.image_id != self.image_ref:
            self.image_ref = message.image_id
            self.reload()

    def reload(self) -> None:
        # analysing a big image costs: while the tab is hidden only remember to do it
        if self._loaded_once and not self._on_screen():
            self._stale = True
            return
        self._stale = False
        super().reload()

    def _on_screen(self) -> bool:
        node = self
        while node is not None:
            if not node.display:
                return False
            node = node.parent
        return True

    def on_show(self) -> None:
        if getattr(self, "_stale", False):
            self.reload()

    def load(self) -> tuple[Any, str] | None:
        ref = self.image_ref
        if ref is None:
            images = self.engine.images()
            if not images:
                return None
            ref = images[0].id
        try:
            img = self.engine.image(ref)
        except Exception:  # noqa: BLE001 - the image went away: fall back to the newest
            images = self.engine.images()
            if not images:
                return None
            img = images[0]
        from core.reference import parse

        label = parse(img.repo_tags[0]).familiar() if img.repo_tags else img.short_id
        return self.engine.image_tree(img.id), label

    def show(self, data: tuple[Any, str] | None) -> None:
        table = self.query_one("#layer-table", FilterTable)
        if data is None:
            self.tree_data = None
            self.query_one("#layers-summary", Static).update("No images.")
            table.set_rows([])
            self.query_one(FileTree).set_entries({})
            return
        tree, label = data
        self.tree_data = tree
        self.image_label = label
        self.image_ref = self.image_ref or tree.image_id
        s = Text()
        s.append(label, style="bold")
        s.append(f"  {len(tree.layers)} layers, {hs(tree.total)} in layers, "
                 f"{hs(tree.merged_size)} visible   ")
        s.append("wasted ", style="bold")
        s.append(f"{hs(tree.wasted)} ({tree.wasted_percent:.1f}%)",
                 style="red" if tree.wasted else "green")
        s.append("  = bytes of files a later layer overwrote or deleted", style="dim")
        self.query_one("#layers-summary", Static).update(s)
        rows = [(MERGED, [Text("all", style="bold"), SortCell(tree.merged_size, hs(tree.merged_size)),
                          "", "", "", SortCell(tree.wasted, hs(tree.wasted) if tree.wasted else ""),
                          Text("merged view (what a container sees)", style="italic")])]
        for lc in tree.layers:
            by = (lc.created_by or "").replace("\n", " ").removeprefix("/bin/sh -c #(nop) ")
            by = by.removeprefix("/bin/sh -c ").strip()
            rows.append((str(lc.index), [
                str(lc.index), SortCell(lc.size, hs(lc.size)),
                SortCell(lc.added, str(lc.added)), SortCell(lc.modified, str(lc.modified)),
                SortCell(lc.deleted, str(lc.deleted)),
                SortCell(lc.wasted, hs(lc.wasted) if lc.wasted else "", style="red"),
                Text(by or lc.diff_id[7:19], no_wrap=True)]))
        table.set_rows(rows)
        self._show_view()

    # ------------------------------------------------------------------ the tree view
    @on(FilterTable.Highlighted, "#layer-table")
    def _layer_highlighted(self, event: FilterTable.Highlighted) -> None:
        event.stop()
        if event.key and event.key != self.layer_key:
            self.layer_key = event.key
            self._show_view()

    @on(FilterTable.Activated, "#layer-table")
    def _layer_activated(self, event: FilterTable.Activated) -> None:
        event.stop()
        self.query_one(FileTree).focus()

    def current_entries(self) -> dict:
        from core.store.layertree import filter_entries

        tree = self.tree_data
        if tree is None:
            return {}
        if self.layer_key == MERGED or not tree.layers:
            entries = tree.merged
        else:
            k = int(self.layer_key)
            entries = tree.merged_at(k) if self.aggregate else tree.layers[k].entries
        statuses = CHANGES if self.changes_only else None
        if self.path_filter or statuses:
            entries = filter_entries(entries, self.path_filter, statuses)
        return entries

    def _show_view(self) -> None:
        tree = self.tree_data
        title = Text()
        if tree is None:
            self.query_one("#tree-title", Static).update("")
            return
        if self.layer_key == MERGED:
            title.append("merged", style="bold")
            title.append(" — every file as a container sees it; marks: the last layer's change")
        else:
            lc = tree.layers[int(self.layer_key)]
            title.append(f"layer {lc.index}", style="bold")
            title.append(" merged up to here" if self.aggregate else " changes")
            title.append(f"  +{lc.added} ~{lc.modified} -{lc.deleted}", style="dim")
        flags = []
        if self.changes_only:
            flags.append("changes only")
        if self.sort_by_size:
            flags.append("by size")
        if self.path_filter:
            flags.append(f"filter {self.path_filter!r}")
        if flags:
            title.append("  [" + ", ".join(flags) + "]", style="italic")
        self.query_one("#tree-title", Static).update(title)
        self.query_one(FileTree).set_entries(self.current_entries(), sort_by_size=self.sort_by_size,
                                             expand=bool(self.path_filter))

    @on(Tree.NodeHighlighted, "#file-tree")
    def _node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        e = event.node.data
        info = self.query_one("#entry-info", Static)
        if e is None:
            info.update("")
            return
        t = Text(f"/{e.path}", style="bold")
        t.append(f"  {e.kind}  {e.status}  {oct(e.mode)[2:]:>4}  {e.uid}:{e.gid}")
        if e.kind == "file":
            t.append(f"  {hs(e.size)}")
        t.append(f"  layer {e.layer}", style="dim")
        info.update(t)

    @on(Tree.NodeSelected, "#file-tree")
    def _node_selected(self, event: Tree.NodeSelected) -> None:
        e = event.node.data
        if e is not None and e.kind != "dir":
            self.action_view_file()

    # ------------------------------------------------------------------ actions
    def action_switch_focus(self) -> None:
        tree = self.query_one(FileTree)
        if tree.has_focus:
            self.query_one("#layer-table", FilterTable).focus()
        else:
            tree.focus()

    def action_toggle_merged(self) -> None:
        if self.layer_key == MERGED:
            self.app.notify("the merged row is already the whole image", timeout=2)
            return
        self.aggregate = not self.aggregate
        self._show_view()

    def action_toggle_changes(self) -> None:
        self.changes_only = not self.changes_only
        self._show_view()

    def action_toggle_sort(self) -> None:
        self.sort_by_size = not self.sort_by_size
        self._show_view()

    def action_filter_paths(self) -> None:
        self.add_class("-filtering")
        self.query_one("#tree-filter", Input).focus()

    @on(Input.Changed, "#tree-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.path_filter = event.value.strip()
        self._show_view()

    @on(Input.Submitted, "#tree-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(FileTree).focus()

    def on_key(self, event) -> None:
        box = self.query_one("#tree-filter", Input)
        if event.key == "escape" and box.has_focus:
            event.stop()
            box.value = ""
            self.remove_class("-filtering")
            self.query_one(FileTree).focus()

    def action_view_file(self) -> None:
        e = self.query_one(FileTree).selected_entry
        if e is None or self.tree_data is None:
            return
        if e.kind == "dir":
            self.app.notify("a directory: Enter expands it", timeout=2)
            return
        if e.status == "deleted":
            self.app.notify(f"/{e.path} is deleted in this layer", severity="warning", timeout=3)
            return
        image = self.tree_data.image_id
        layer = None if (self.layer_key == MERGED or self.aggregate) else e.layer

        def fetch():
            return self.engine.image_file(image, e.path, layer=layer)

        def shown(worker) -> None:
            from workbench.screens.viewers import TextScreen

            fc = worker.result
            summary = f"{fc.kind}, {hs(fc.size)}, from layer {fc.layer}"
            if fc.truncated:
                summary += f" — showing the first {hs(len(fc.data))}"
            if fc.binary:
                summary += " — binary: hex dump"
            self.app.push_screen(TextScreen(f"/{fc.path}  ({self.image_label})", fc.text(), summary))

        self._run(fetch, shown, "file")

    def action_wasted(self) -> None:
        from workbench.screens.viewers import TableScreen

        tree = self.tree_data
        if tree is None:
            return
        rows = []
        for i, w in enumerate(tree.top_wasted(1000)):
            rows.append((f"{i}", [SortCell(w.size, hs(w.size)), f"/{w.path}", str(w.layer),
                                  str(w.by_layer), w.how]))
        summary = (f"{hs(tree.wasted)} of {hs(tree.total)} ({tree.wasted_percent:.1f}%) stored in layers "
                   f"is shadowed: each file version a later layer overwrote, deleted or hid (opaque "
                   f"dir) counts once; hard links once. Nothing counts twice; the base layer is not special.")
        self.app.push_screen(TableScreen(f"Wasted space in {self.image_label}",
                                         [Col("SIZE", "size", 9, justify="right"), Col("PATH", "path"),
                                          Col("LAYER", "layer", 5, justify="right"),
                                          Col("BY", "by", 4, justify="right"), Col("HOW", "how")],
                                         rows, summary))

    def action_diff(self) -> None:
        from workbench.screens.form import Field, FormScreen

        if self.tree_data is None:
            return
        this = self.tree_data.image_id
        try:
            images = self.engine.images()
        except Exception as exc:  # noqa: BLE001
            self.notify_error(exc)
            return
        from core.reference import parse

        options = []
        for img in images:
            if img.id == this:
                continue
            label = parse(img.repo_tags[0]).familiar() if img.repo_tags else img.short_id
            options.append((f"{label}  {img.short_id}", img.id))
        if not options:
            self.app.notify("there is no other image to compare with", severity="warning", timeout=3)
            return

        def done(v: dict | None) -> None:
            if v:
                self.show_diff(v["other"])

        self.app.push_screen(FormScreen(f"Compare {self.image_label} with", [
            Field("other", "Other image", kind="select", options=options)], submit="Diff"), done)

    def show_diff(self, other: str) -> None:
        this = self.tree_data.image_id if self.tree_data else None
        if this is None:
            return

        def fetch():
            return self.engine.image_diff(this, other)

        def shown(worker) -> None:
            from workbench.screens.viewers import TableScreen

            entries = worker.result
            colours = {"added": "green", "removed": "red", "modified": "yellow"}
            rows = []
            counts = {"added": 0, "removed": 0, "modified": 0}
            for i, d in enumerate(entries):
                counts[d.status] = counts.get(d.status, 0) + 1
                rows.append((str(i), [Text(d.status, style=colours.get(d.status, "")), f"/{d.path}",
                                      d.kind, SortCell(d.size_a, hs(d.size_a) if d.size_a else ""),
                                      SortCell(d.size_b, hs(d.size_b) if d.size_b else ""), d.detail]))
            other_label = other[7:19] if other.startswith("sha256:") else other
            summary = (f"from {self.image_label} to {other_label}: {counts['added']} added, "
                       f"{counts['removed']} removed, {counts['modified']} modified")
            self.app.push_screen(TableScreen(f"Diff {self.image_label} → {other_label}",
                                             [Col("STATUS", "status", 9), Col("PATH", "path"),
                                              Col("KIND", "kind", 8), Col("SIZE A", "a", 9, justify="right"),
                                              Col("SIZE B", "b", 9, justify="right"),
                                              Col("WHAT", "detail", 8)], rows, summary))

        self._run(fetch, shown, "diff")

    # ------------------------------------------------------------------ helpers
    def _run(self, fn, on_success, what: str) -> None:
        worker = self.run_worker(fn, thread=True, group=what, exclusive=True, exit_on_error=False,
                                 description=f"layers:{what}")
        worker._layers_done = on_success  # type: ignore[attr-defined]

    def on_worker_state_changed(self, event) -> None:
        from textual.worker import WorkerState

        done = getattr(event.worker, "_layers_done", None)
        if done is None:
            return
        if event.state == WorkerState.SUCCESS:
            done(event.worker)
        elif event.state == WorkerState.ERROR:
            self.notify_error(error_text(event.worker.error))
