"""FileTree: a lazily built tree of layertree.FileEntry values (a layer's changes or a merged
view), marking added (+ green), modified (~ yellow), deleted (- red) and unchanged entries,
with sizes (a directory shows the bytes under it) and an optional sort by size.

    tree.set_entries(entries, sort_by_size=False, expand=False)
    tree.selected_entry -> FileEntry | None

Only expanded directories get child nodes, so an image with 100 000 files stays fast; with
``expand=True`` (a path filter is active) everything shown is expanded, up to EXPAND_LIMIT.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from workbench.format import human_size

EXPAND_LIMIT = 3000

MARKS = {
    "added": ("+", "green"),
    "modified": ("~", "yellow"),
    "deleted": ("-", "red"),
    "unchanged": (" ", ""),
}


def entry_label(e: Any, size: int | None = None) -> Text:
    mark, colour = MARKS.get(e.status, ("?", ""))
    t = Text(no_wrap=True)
    t.append(f"{mark} ", style=f"bold {colour}" if colour else "")
    name_style = {"deleted": "red strike", "added": "green", "modified": "yellow"}.get(e.status, "")
    if e.kind == "dir":
        name_style = (name_style + " bold").strip()
    t.append(e.name or "/", style=name_style)
    if e.kind == "dir":
        t.append("/", style=name_style)
    elif e.kind == "symlink":
        t.append(f" -> {e.target}", style="cyan")
    elif e.kind == "whiteout":
        t.append("  (whiteout)", style="dim red")
    elif e.kind not in ("file",):
        t.append(f"  ({e.kind})", style="dim")
    if getattr(e, "opaque", False):
        t.append("  (opaque)", style="dim magenta")
    if getattr(e, "link", None):
        t.append(f"  (hard link to /{e.link})", style="dim")
    n = e.size if size is None else size
    if n:
        t.append(f"  {human_size(n)}", style="dim")
    return t


class FileTree(Tree):
    """The file tree of one view; node data are FileEntry objects (None for the root)."""

    DEFAULT_CSS = """
    FileTree { height: 1fr; background: $surface; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__("/", id=id)
        self.show_root = False
        self.guide_depth = 2
        self._entries: dict[str, Any] = {}
        self._kids: dict[str, list] = {}
        self._sizes: dict[str, int] = {}
        self._sort_by_size = False
        self._populated: set[int] = set()
        self.node_count = 0

    def set_entries(self, entries: dict[str, Any], sort_by_size: bool = False,
                    expand: bool = False) -> None:
        from core.store.layertree import children_index, subtree_sizes

        keep = self.selected_entry.path if self.selected_entry is not None else None
        self._entries = entries
        self._kids = children_index(entries)
        self._sizes = subtree_sizes(entries)
        self._sort_by_size = sort_by_size
        self._populated.clear()
        self.node_count = 0
        self.clear()
        self.root.data = None
        self.root.set_label(Text(f"/  {human_size(self._sizes.get('', 0))}"))
        self._populate(self.root, "")
        self.root.expand()
        if expand:
            self._expand_all(self.root)
        if keep:
            self.reveal(keep)

    def _children(self, path: str) -> list:
        kids = list(self._kids.get(path, []))
        if self._sort_by_size:
            kids.sort(key=lambda e: (-self._sizes.get(e.path, 0), not e.is_dir, e.name))
        return kids

    def _populate(self, node: TreeNode, path: str) -> None:
        if id(node) in self._populated:
            return
        self._populated.add(id(node))
        for e in self._children(path):
            size = self._sizes.get(e.path, 0) if e.is_dir else e.size
            has_kids = e.is_dir and bool(self._kids.get(e.path))
            if has_kids:
                node.add(entry_label(e, size), data=e, allow_expand=True)
            else:
                node.add_leaf(entry_label(e, size), data=e)
            self.node_count += 1

    def _expand_all(self, node: TreeNode) -> None:
        stack = [node]
        while stack and self.node_count < EXPAND_LIMIT:
            n = stack.pop()
            path = n.data.path if n.data is not None else ""
            self._populate(n, path)
            n.expand()
            stack.extend(reversed([c for c in n.children if c.allow_expand]))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        node = event.node
        if node.data is not None:
            self._populate(node, node.data.path)

    def reveal(self, path: str) -> bool:
        """Expand down to ``path`` and move the cursor there."""
        node = self.root
        parts = path.split("/") if path else []
        walked = ""
        for part in parts:
            walked = f"{walked}/{part}" if walked else part
            self._populate(node, node.data.path if node.data is not None else "")
            node.expand()
            nxt = next((c for c in node.children if c.data is not None and c.data.path == walked), None)
            if nxt is None:
                return False
            node = nxt
        if node is not self.root:
            target = node
            # line numbers of new nodes exist after the next refresh
            self.call_after_refresh(lambda: self.move_cursor(target))
            return True
        return False

    @property
    def selected_entry(self) -> Any | None:
        node = self.cursor_node
        return node.data if node is not None else None

    def visible_paths(self) -> list[str]:
        """Paths of the nodes built so far, in display order (for tests)."""
        out: list[str] = []

        def walk(node: TreeNode) -> None:
            for c in node.children:
                out.append(c.data.path)
                if c.is_expanded:
                    walk(c)

        walk(self.root)
        return out
