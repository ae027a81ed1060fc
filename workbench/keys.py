"""The app's keys: every pane's default bindings, read from one table (:data:`TABLE`).

One place to read (and test) which key does what where: ``tests/unit/test_keys.py`` checks
that no pane binds a key twice and that no pane shadows a key of the app's. The ids
(``<pane>.<name>``) are what the user's config rebinds (``[keys] "images.pull" = "ctrl+u"``,
applied with ``App.update_keymap``) and what the help screen (``?``) lists.

The table is Python, not TOML: reading a TOML file at start-up cost the workbench ~6 ms
of its first paint (importing tomllib, then parsing), for a table that never changes.
"""

from __future__ import annotations

from textual.binding import Binding

HIDDEN = "hidden"

#: Every pane's default bindings, one table per pane. A row is
#: ``name: (keys, action, description)``, or with ``HIDDEN`` last for a binding left out
#: of the footer (it still shows in the help screen, ``?``, and in the command palette).
#: The binding id is ``"<pane>.<name>"``: what the user's config file rebinds (docs/app.md)::
#:
#:     [keys]
#:     "images.pull" = "ctrl+u"
TABLE: dict[str, dict[str, tuple[str, ...]]] = {
    "images": {
        "pull":     ("p", "pull", "Pull"),
        "load":     ("l", "load", "Load"),
        "run":      ("r", "run", "Run"),
        "tag":      ("t", "tag", "Tag"),
        "push":     ("P", "push", "Push"),
        "rm":       ("d", "rm", "Remove"),
        "rm_force": ("D", "rm_force", "Force remove", HIDDEN),
        "check":    ("C", "check", "Check store"),
        "layers":   ("enter", "layers", "Layers"),
        "refresh":  ("ctrl+r", "refresh", "Refresh", HIDDEN),
    },
    "layers": {
        "merged":  ("m", "toggle_merged", "Merged/changes"),
        "changes": ("c", "toggle_changes", "Changes only"),
        "sort":    ("o", "toggle_sort", "Sort size/name"),
        "filter":  ("f,slash", "filter_paths", "Filter paths"),
        "view":    ("v", "view_file", "View file"),
        "wasted":  ("w", "wasted", "Wasted space"),
        "diff":    ("x", "diff", "Diff images"),
        "switch":  ("tab", "switch_focus", "Layers/tree", HIDDEN),
    },
    "containers": {
        "start":      ("u", "start", "Start"),
        "stop":       ("x", "stop", "Stop"),
        "restart":    ("r", "restart", "Restart"),
        "kill":       ("K", "kill", "Kill"),
        "pause":      ("p", "pause", "Pause/unpause", HIDDEN),
        "rm":         ("d", "remove", "Remove"),
        "commit":     ("c", "commit", "Commit"),
        "exec":       ("e", "exec", "Exec shell"),
        "attach":     ("a", "attach", "Attach"),
        "logs":       ("l", "view('logs')", "Logs"),
        "inspect":    ("i", "view('inspect')", "Inspect"),
        "diff":       ("D", "view('diff')", "Diff"),
        "follow":     ("f", "toggle_follow", "Follow", HIDDEN),
        "search":     ("slash", "search", "Search log", HIDDEN),
        "next":       ("n", "next_match(True)", "Next match", HIDDEN),
        "prev":       ("N", "next_match(False)", "Prev match", HIDDEN),
        "timestamps": ("t", "toggle_time", "Timestamps", HIDDEN),
    },
    "networks": {
        "create":     ("n", "create", "New network"),
        "rm":         ("d", "rm", "Remove"),
        "connect":    ("C", "connect", "Connect"),
        "disconnect": ("X", "disconnect", "Disconnect"),
        "prune":      ("ctrl+x", "prune", "Prune", HIDDEN),
        "refresh":    ("ctrl+r", "refresh", "Refresh", HIDDEN),
    },
    "stats": {
        "pause": ("p", "toggle_pause", "Pause"),
        "clear": ("c", "clear_history", "Clear history", HIDDEN),
    },
    "terminals": {
        "enter": ("enter", "enter_terminal", "Into terminal"),
        "close": ("x", "close_tab", "Close tab"),
        "host":  ("h", "host_shell", "Host shell"),
    },
    "learn": {
        "namespaces": ("n", "show('namespaces')", "Namespaces"),
        "pids":       ("p", "show('processes')", "PIDs"),
        "overlay":    ("o", "show('overlay')", "Overlay"),
        "cgroups":    ("g", "show('cgroup')", "Cgroups"),
        "network":    ("w", "show('network')", "Network"),
        "security":   ("s", "show('security')", "Security"),
        "refresh":    ("r", "refresh", "Refresh"),
        "prev":       ("left_square_bracket", "cycle(-1)", "Prev container", HIDDEN),
        "next":       ("right_square_bracket", "cycle(1)", "Next container", HIDDEN),
        "terminal":   ("t", "host_terminal", "Host shell"),
    },
}


def pane_bindings(pane: str) -> list[Binding]:
    """The bindings of one pane (a table of :data:`TABLE`: "images", "containers", ...)."""
    return [Binding(keys, action, description, show=HIDDEN not in rest, id=f"{pane}.{name}")
            for name, (keys, action, description, *rest) in TABLE[pane].items()]


def panes() -> list[str]:
    return list(TABLE)
