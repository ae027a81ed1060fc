"""JsonTree: a foldable tree of a JSON document (``inspect`` output).

Objects and arrays are branches labelled with their size; scalars are leaves
``key: value`` coloured by type. The root and its first level start expanded. Space or
Enter folds/unfolds; ``+`` expands everything, ``-`` collapses to the first level;
``y`` copies the value under the cursor as JSON.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

MAX_CHILDREN = 2000  # per node: a huge array is cut (the rest is one "… N more" leaf)


def _scalar(value: Any) -> Text:
    if value is None:
        return Text("null", style="dim italic")
    if isinstance(value, bool):
        return Text("true" if value else "false", style="magenta")
    if isinstance(value, (int, float)):
        return Text(repr(value), style="cyan")
    return Text(json.dumps(value, ensure_ascii=False), style="green")


class JsonTree(Tree):
    BINDINGS = [
        Binding("plus", "expand_all", "Expand all", id="json.expand"),
        Binding("minus", "collapse_all", "Collapse", id="json.collapse"),
        Binding("y", "copy_value", "Copy", show=False, id="json.copy"),
    ]

    def __init__(self, label: str = "inspect", *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(Text(label, style="bold"), id=id, classes=classes)
        self.document: Any = None

    def load(self, document: Any, label: str | None = None) -> None:
        self.document = document
        self.clear()
        if label is not None:
            self.root.set_label(Text(label, style="bold"))
        self._add(self.root, document)
        self.root.expand()
        for child in self.root.children:
            if child.allow_expand and len(child.children) <= 40:
                child.expand()

    def _add(self, node: TreeNode, value: Any) -> None:
        node.data = value
        if isinstance(value, dict):
            items = list(value.items())
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            return
        for key, child in items[:MAX_CHILDREN]:
            label = Text(str(key), style="bold" if isinstance(value, dict) else "dim")
            if isinstance(child, (dict, list)):
                size = f" {{{len(child)}}}" if isinstance(child, dict) else f" [{len(child)}]"
                label.append(size, style="dim")
                branch = node.add(label, data=child)
                self._add(branch, child)
            else:
                label.append(": ")
                label.append_text(_scalar(child))
                node.add_leaf(label, data=child)
        if len(items) > MAX_CHILDREN:
            node.add_leaf(Text(f"… {len(items) - MAX_CHILDREN} more", style="dim"))

    def action_expand_all(self) -> None:
        self.root.expand_all()

    def action_collapse_all(self) -> None:
        self.root.collapse_all()
        self.root.expand()

    def action_copy_value(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        text = json.dumps(node.data, indent=2, ensure_ascii=False)
        self.app.copy_to_clipboard(text)
        self.app.notify(f"copied {len(text)} characters", timeout=2)
