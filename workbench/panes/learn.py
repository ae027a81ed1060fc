"""Learn: what a container really is, shown from the kernel's side, one idea per tab.

For the container selected in Containers (or the first running one):

- Namespaces: the 8 types, the container init's inode beside the host's, new or shared.
- PIDs: every process with its host PID and its PID inside (NSpid).
- Overlay: lowerdir entries mapped to image layers (the history line that made each),
  the upper and work dirs, and what upper holds now (added, modified, whiteouts).
- Cgroups: the files that hold the limits beside the files that hold usage.
- Network: eth0 <-> veth <-> bridge <-> IP, routes, published ports.
- Security: what holds a root process in: capabilities, no_new_privs, the seccomp mode
  and the calls its profile refuses (and why), masked paths.

Each tab has an explanation to read aloud (filled in with the real numbers) and the host
commands that show the same thing, so nothing on screen has to be taken on trust. Data
comes from ``Engine.container_namespaces/processes/overlay/cgroup/network/security``
(core/runtime/introspect.py), loaded in a thread worker on selection, on EngineChanged
and on ``r``; never on a timer.
"""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static, TabbedContent, TabPane, Tabs

from workbench.format import bar, ibytes
from workbench.keys import pane_bindings
from workbench.messages import EngineChanged, OpenTerminal
from workbench.panes import learn_texts as texts
from workbench.panes.base import Pane, error_text

_HEX64 = re.compile(r"[0-9a-f]{64}")
SECTIONS = ("namespaces", "processes", "overlay", "cgroup", "network", "security")
TAB_IDS = {"namespaces": "learn-ns", "processes": "learn-pid", "overlay": "learn-overlay",
           "cgroup": "learn-cgroup", "network": "learn-net", "security": "learn-sec"}
KIND_STYLE = {"added": "green", "modified": "yellow", "deleted": "red bold",
              "opaque": "magenta bold", "mount-target": "dim"}
KIND_LABEL = {"added": "added", "modified": "modified", "deleted": "deleted (whiteout)",
              "opaque": "opaque dir (replaced)", "mount-target": "mount target (runtime)"}


def _commands(cmds: list[str]) -> Text:
    t = Text("Try it on the host:\n", style="bold")
    for c in cmds:
        t.append("  $ ", style="dim")
        t.append(c + "\n", style="cyan")
    t.rstrip()
    return t


# The tabs: title, id, and what each shows top to bottom (a DataTable for "table", else a
# Static of that class); widget ids are learn-<tab>-<part>.
TABS = [
    ("Namespaces", "ns", "explain table note commands"),
    ("PIDs", "pid", "explain table commands"),
    ("Overlay", "overlay", "explain diagram table note commands"),
    ("Cgroups", "cgroup", "explain table note commands"),
    ("Network", "net", "explain diagram commands"),
    ("Security", "sec", "explain diagram table note commands"),
]


class LearnPane(Pane):
    PANE_TITLE = "Learn"
    PANE_KEY = "7"
    MUTATING = frozenset({"host_terminal"})

    DEFAULT_CSS = """
    LearnPane #learn-header { height: auto; padding: 0 1; background: $boost; }
    LearnPane #learn-tabs { height: 1fr; }
    LearnPane VerticalScroll { height: 1fr; }
    LearnPane .explain { padding: 0 1 1 1; color: $text; text-style: italic; }
    LearnPane .commands { padding: 1 1 0 1; height: auto; }
    LearnPane .diagram { padding: 0 1; height: auto; }
    LearnPane .note { padding: 0 1; height: auto; color: $text-muted; }
    LearnPane DataTable { height: auto; max-height: 20; margin: 0 1; }
    LearnPane #learn-overlay-table { max-height: 14; margin: 1 1 0 1; }
    """

    BINDINGS = pane_bindings("learn")

    def __init__(self, engine, read_only: bool = False, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(engine, read_only, id=id, classes=classes)
        self.data: dict[str, Any] = {}
        self.errors: dict[str, BaseException] = {}
        self.loads = 0
        self._seen: list[dict] = []
        self._visible = False
        self._stale = True

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static("", id="learn-header")
        with TabbedContent(id="learn-tabs"):
            for title, tab, parts in TABS:
                with TabPane(title, id=f"learn-{tab}"), VerticalScroll():
                    for part in parts.split():
                        ident = f"learn-{tab}-{part}"
                        if part == "table":
                            yield DataTable(id=ident, cursor_type="row")
                        else:
                            yield Static("", classes=part, id=ident)

    def on_mount(self) -> None:
        self._header()
        self.reload()

    def focus_default(self) -> None:
        tabs = self.query_one("#learn-tabs", TabbedContent)
        pane = tabs.active_pane
        target = pane.query(DataTable).first() if pane is not None and pane.query(DataTable) else None
        # a view without a table (Network): its tab bar, so the pane's keys keep working
        (target or tabs.query_one(Tabs)).focus()

    def on_show(self) -> None:
        self._visible = True
        if self._stale:
            self.reload()

    def on_hide(self) -> None:
        self._visible = False

    # ------------------------------------------------------------------ loading
    def on_engine_changed(self, message: EngineChanged) -> None:
        if message.kinds and "containers" not in message.kinds:
            return
        if message.ids and self.container_id and self.container_id not in message.ids \
                and self.data:
            return
        if self._visible or not self.data:
            self.reload()
        else:
            self._stale = True  # reload when shown: nobody is looking now

    def container_changed(self, container_id: str | None) -> None:
        self.reload()

    def reload(self) -> None:
        """Load every view of the current container (or the first running one)."""
        self._stale = False
        wanted = self.container_id
        engine = self.engine

        def work() -> tuple[str | None, list[dict], dict, dict]:
            running = [c for c in engine.ps(all=True)]
            cid = wanted
            if cid is None or not any(c["Id"] == cid for c in running):
                live = [c for c in running if c.get("State") == "running"]
                cid = live[0]["Id"] if live else (None if cid is None else cid)
            data: dict[str, Any] = {}
            errors: dict[str, BaseException] = {}
            views = {"namespaces": engine.container_namespaces,
                     "processes": engine.container_processes,
                     "overlay": engine.container_overlay, "cgroup": engine.container_cgroup,
                     "network": engine.container_network, "security": engine.container_security}
            if cid is not None:
                for section in SECTIONS:
                    try:
                        data[section] = views[section](cid)
                    except Exception as exc:  # noqa: BLE001 - shown in that tab
                        errors[section] = exc
            return cid, running, data, errors

        self.fetch(work, self._apply, group="learn")

    def _apply(self, result) -> None:
        cid, running, data, errors = result
        self._seen = running
        self.loads += 1
        if cid != self.container_id:
            self.container_id = cid  # picked for the user: no announcement
        self.data, self.errors = data, errors
        self._header()
        self._render_namespaces()
        self._render_processes()
        self._render_overlay()
        self._render_cgroup()
        self._render_network()
        self._render_security()

    def _header(self) -> None:
        header = self.query_one("#learn-header", Static)
        c = next((c for c in self._seen if c["Id"] == self.container_id), None)
        t = Text()
        if c is None:
            t.append("No container to look at: run one (Containers, 3) and come back.", style="bold")
            header.update(t)
            return
        t.append(c.get("Names", ""), style="bold")
        t.append(f"  {c['Id'][:12]}  ")
        state = c.get("State", "")
        t.append(state, style="green" if state == "running" else "red")
        if c.get("Pid"):
            t.append(f"  ·  host PID {c['Pid']}")
        t.append(f"  ·  image {c.get('Image', '')}")
        t.append("   [ ] switch", style="dim")
        header.update(t)

    def _error(self, section: str) -> Text | None:
        exc = self.errors.get(section)
        if exc is None and section not in self.data:
            return Text("Select a running container.", style="dim")
        if exc is None:
            return None
        t = Text(error_text(exc), style="red")
        from core.errors import Conflict

        if isinstance(exc, Conflict):
            t.append("\nNamespaces, processes and cgroups exist only while the container runs: "
                     "start it (Containers, u) to see them.", style="italic")
        return t

    # ------------------------------------------------------------------ views
    def _reset(self, table_id: str, columns: list[str], labels: dict | None = None) -> DataTable:
        table = self.query_one(f"#{table_id}", DataTable)
        table.clear(columns=True)
        for col in columns:
            table.add_column((labels or {}).get(col, col), key=col)
        return table

    def _statics(self, tab: str) -> dict[str, Static]:
        """A tab's Statics by part (explain, diagram, note, commands)."""
        parts = next(parts for _, ident, parts in TABS if ident == tab).split()
        return {p: self.query_one(f"#learn-{tab}-{p}", Static) for p in parts if p != "table"}

    def _error_shown(self, section: str, part: dict[str, Static]) -> bool:
        """When ``section`` failed to load: its error in the explain part, the others emptied."""
        err = self._error(section)
        if err is None:
            return False
        for name, widget in part.items():
            widget.update(err if name == "explain" else "")
        return True

    def _render_namespaces(self) -> None:
        part = self._statics("ns")
        m = self.data.get("namespaces")
        table = self._reset("learn-ns-table", ["NAMESPACE", "CONTAINER", "HOST", "", "ISOLATES"],
                            {"HOST": f"HOST ({m.reference})" if m else "HOST"})
        if self._error_shown("namespaces", part):
            return
        m = self.data["namespaces"]
        part["explain"].update(texts.namespaces(m))
        for r in m.rows:
            if r.shared is None:
                state = Text("unknown", style="dim")
            elif r.shared:
                state = Text(f" shared: {r.shared_with} ", style="black on yellow")
            elif r.shared_with.startswith("container"):
                state = Text(f" shared: {r.shared_with} ", style="black on cyan")
            else:
                state = Text(" new ", style="black on green")
            table.add_row(Text(r.type, style="bold"), str(r.container or "?"), str(r.host or "?"),
                          state, r.meaning, key=r.type)
        maps = "  ".join(f"{a} {b} {c}" for a, b, c in m.uid_map) or "-"
        part["note"].update(Text.assemble(("uid_map ", "bold"), maps,
                                          ("  (inside, outside, count: "
                                           + ("root inside is root outside" if (0, 0) == tuple(m.uid_map[0][:2])
                                              else "ids are shifted") + ")" if m.uid_map else "", "dim")))
        part["commands"].update(_commands(m.commands))

    def _render_processes(self) -> None:
        part = self._statics("pid")
        table = self._reset("learn-pid-table", ["HOST PID", "CONTAINER PID", "NSpid", "PPID (host)",
                                                "PPID (inside)", "USER", "STATE", "RSS", "COMMAND"])
        if self._error_shown("processes", part):
            return
        p = self.data["processes"]
        part["explain"].update(texts.processes(p))
        for r in p.rows:
            table.add_row(Text(str(r.host_pid), style="bold yellow"),
                          Text(str(r.container_pid), style="bold green"),
                          " ".join(map(str, r.nspid)), str(r.host_ppid),
                          str(r.container_ppid) if r.container_ppid else Text("outside", style="dim"),
                          r.user, r.state, ibytes(r.rss), r.command[:60], key=str(r.host_pid))
        part["commands"].update(_commands(p.commands))

    def _render_overlay(self) -> None:
        part = self._statics("overlay")
        table = self._reset("learn-overlay-table", ["IN UPPER", "WHAT IT MEANS", "TYPE", "SIZE"])
        if self._error_shown("overlay", part):
            return
        o = self.data["overlay"]
        part["explain"].update(texts.overlay(o))
        d = Text()
        d.append(" merged  ", style="bold")
        d.append(abbrev(o.merged), style="cyan")
        d.append("   ← the container's /" + ("" if o.mounted else " (not mounted now)") + "\n",
                 style="dim")
        d.append(" upper   ", style="bold green")
        d.append(abbrev(o.upper), style="green")
        d.append(f"   read-write · {o.entries_total} entries\n", style="dim")
        d.append(" work    ", style="bold")
        d.append(abbrev(o.work), style="dim")
        d.append("   overlayfs scratch space\n", style="dim")
        for layer in o.lower:
            where = " top " if layer.position == 1 else (" base" if layer.position == len(o.lower) else "     ")
            d.append(f" lower {layer.position}{where} ", style="bold yellow")
            d.append(f"{layer.chain_id[7:19] or '-':12} ", style="yellow")
            d.append(f"{ibytes(layer.size):>8} ", style="dim")
            d.append((layer.created_by or "(no history)")[:70])
            d.append("\n")
        if o.mount_options:
            d.append(" kernel: ", style="bold")
            d.append(abbrev(o.mount_options)[:400], style="dim")
        d.rstrip()
        part["diagram"].update(d)
        for e in o.entries:
            table.add_row(e.path, Text(KIND_LABEL.get(e.kind, e.kind), style=KIND_STYLE.get(e.kind, "")),
                          e.type, ibytes(e.size) if e.type == "file" else "", key=e.path)
        part["note"].update("upper is empty: the container has changed nothing yet" if not o.entries else
                            (f"first {len(o.entries)} of {o.entries_total} entries" if o.truncated else ""))
        part["commands"].update(_commands(o.commands))

    def _render_cgroup(self) -> None:
        part = self._statics("cgroup")
        table = self._reset("learn-cgroup-table", ["RESOURCE", "LIMIT FILE", "LIMIT", "USAGE FILE",
                                                   "USAGE", "USED"])
        if self._error_shown("cgroup", part):
            return
        c = self.data["cgroup"]
        part["explain"].update(texts.cgroup(c))
        for r in c.rows:
            usage = r.usage_text or "-"
            if r.resource == "cpu" and r.usage is not None:
                usage = f"{r.usage:.2f} CPU s"
            elif r.unit == "bytes" and r.usage is not None:
                usage = f"{ibytes(r.usage)} ({int(r.usage)})"
            elif r.resource == "io":
                usage = "see file"
            limit = r.limit_text if r.limit_text is not None else "-"
            if r.unit == "cpus" and r.limit is not None:
                limit = f"{r.limit:g} CPUs ({r.limit_text})"
            elif r.unit == "bytes" and r.limit is not None:
                limit = f"{ibytes(r.limit)} ({r.limit_text})"
            elif r.limit is None and r.limit_file:
                limit = Text(f"{r.limit_text} (no limit)", style="dim")
            used = ""
            if r.unit in ("bytes", "count") and r.limit and r.usage is not None:
                frac = r.usage / r.limit
                used = Text(f"{bar(frac, 10)} {frac * 100:4.1f}%",
                            style="red" if frac > 0.9 else "yellow" if frac > 0.6 else "green")
            elif r.resource == "oom":
                used = Text("OOM kills!" if r.usage else "none", style="red bold" if r.usage else "green")
            table.add_row(Text(r.resource, style="bold"), _short(r.limit_file, c.cgroup), limit,
                          _short(r.usage_file, c.cgroup), usage, used, key=r.resource)
        where = ("/sys/fs/cgroup/<controller>/" if c.version != "v2" else "/sys/fs/cgroup/") + \
            abbrev(c.cgroup)
        part["note"].update(Text.assemble(("… = ", "bold"), where, ("  ·  ", "dim"),
                                          (f"{len(set(c.dirs.values()))} director"
                                           f"{'ies' if len(set(c.dirs.values())) != 1 else 'y'}", "dim")))
        part["commands"].update(_commands(c.commands[:6]))

    def _render_network(self) -> None:
        part = self._statics("net")
        if self._error_shown("network", part):
            return
        n = self.data["network"]
        part["explain"].update(texts.network(n))
        part["diagram"].update(network_diagram(n))
        part["commands"].update(_commands(n.commands))

    def _render_security(self) -> None:
        part = self._statics("sec")
        table = self._reset("learn-sec-table", ["SYSTEM CALL", "WHAT THE CONTAINER GETS"])
        if self._error_shown("security", part):
            return
        v = self.data["security"]
        part["explain"].update(texts.security(v))
        mode = {"2": ("filter", "green"), "0": ("disabled", "red bold"),
                "1": ("strict", "yellow")}.get(v.seccomp, (v.seccomp, "yellow"))
        dot = (" · ", "dim")
        t = Text.assemble(("seccomp       ", "bold"), mode,
                          (f" (Seccomp: {v.seccomp}"
                           + (f", {v.seccomp_filters} filter)" if v.seccomp_filters else ")"),
                           "dim"), dot, f"profile: {v.profile}")
        if v.summary is not None:
            t.append_text(Text.assemble(("\nunlisted call ", "bold"), v.summary.default_action,
                                        dot, f"{v.summary.allowed} names allowed", dot,
                                        f"newer calls: {v.summary.newer_syscalls or '-'}"))
        nnp = {True: ("on", "green"), False: ("off", "yellow"), None: ("?", "dim")}[v.no_new_privs]
        t.append_text(Text.assemble(("\nno_new_privs  ", "bold"), nnp, dot,
                                    f"capabilities: {len(v.capabilities)} of {v.caps_known} "
                                    f"(CapEff {v.cap_eff})"))
        part["diagram"].update(t)
        for syscall, reason in (v.summary.blocked if v.summary is not None else []):
            table.add_row(Text(syscall, style="bold"), reason, key=syscall)
        caps = ", ".join(v.capabilities) if len(v.capabilities) < v.caps_known else "all"
        masked = ", ".join(v.masked_paths) or "none"
        part["note"].update(Text.assemble(("capabilities ", "bold"), caps, ("\nmasked ", "bold"),
                                          masked, ("\nread-only ", "bold"),
                                          ", ".join(v.readonly_paths) or "none"))
        part["commands"].update(_commands(v.commands))

    # ------------------------------------------------------------------ actions
    def action_show(self, section: str) -> None:
        self.query_one("#learn-tabs", TabbedContent).active = TAB_IDS[section]
        # keep the keyboard in the pane: the table of the view now shown
        self.call_after_refresh(self.focus_default)

    def action_refresh(self) -> None:
        self.reload()

    def action_cycle(self, step: int) -> None:
        live = [c["Id"] for c in self._seen if c.get("State") == "running"]
        if not live:
            return
        idx = live.index(self.container_id) if self.container_id in live else -1
        self.choose_container(live[(idx + step) % len(live)])

    def action_host_terminal(self) -> None:
        self.post_message(OpenTerminal("host", title="host shell"))


def _short(path: str | None, cgroup_name: str = "") -> str:
    """A cgroup file without the mount point and the long container directory:
    ``memory/…/memory.limit_in_bytes`` (v1), ``…/memory.max`` (v2)."""
    if not path:
        return "-"
    rel = path[len("/sys/fs/cgroup/"):] if path.startswith("/sys/fs/cgroup/") else path
    if cgroup_name and cgroup_name in rel:
        rel = rel.replace(cgroup_name, "…")
    return rel


def abbrev(text: str) -> str:
    """Long hex ids (container ids, chain ids) cut to 12 characters and an ellipsis."""
    return _HEX64.sub(lambda m: m.group(0)[:12] + "…", text)


def network_diagram(n) -> Text:
    """eth0 <-> veth <-> bridge, as boxes; routes and ports under it."""
    t = Text()
    if not n.links:
        t.append(f" network mode: {n.mode}", style="bold")
        t.append(f"   container net ns {n.netns_inode}  ·  host net ns {n.host_netns_inode}\n")
        t.append(" interfaces inside: " + ", ".join(n.interfaces), style="dim")
        return t
    for link in n.links:
        left = [f"container {n.name}", f"net ns {n.netns_inode}",
                f"{link.interface} {link.ip}/{link.prefix_len}", f"ifindex {link.peer_ifindex}",
                f"mac {link.mac}"]
        right = [f"host (net ns {n.host_netns_inode})", f"bridge {link.bridge}",
                 f"  address {link.bridge_ip}", f"veth {link.host_veth}",
                 f"  ifindex {link.host_ifindex}, iflink {link.peer_ifindex}, {link.operstate}"]
        lw = max(len(s) for s in left) + 2
        rw = max(len(s) for s in right) + 2
        t.append(" ┌" + "─" * lw + "┐          ┌" + "─" * rw + "┐\n")
        for i in range(len(left)):
            t.append(" │ ")
            t.append(left[i].ljust(lw - 1), style="bold green" if i in (0, 2) else "")
            t.append("│")
            if i == 2:
                t.append("══ veth ══", style="bold magenta")
            elif i == 3:
                t.append(" pair     ", style="magenta")
            else:
                t.append("          ")
            t.append("│ ")
            t.append(right[i].ljust(rw - 1), style="bold yellow" if i in (0, 1) else "")
            t.append("│\n")
        t.append(" └" + "─" * lw + "┘          └" + "─" * rw + "┘\n")
        if link.rx_bytes is not None:
            t.append(f"  {link.interface} inside: rx {link.rx_bytes} B, tx {link.tx_bytes} B"
                     f"  (the veth's host end counts the same bytes the other way round)\n",
                     style="dim")
    t.append(" routes inside: ", style="bold")
    t.append(" · ".join(f"{r.destination}" + (f" via {r.gateway}" if r.gateway else "") +
                        f" dev {r.interface}" for r in n.routes) or "none")
    if n.ports:
        t.append("\n ports: ", style="bold")
        t.append(", ".join(f"{p.get('HostIp') or '0.0.0.0'}:{p.get('HostPort')} → "
                           f"{p.get('ContainerPort')}/{p.get('Protocol', 'tcp')}" for p in n.ports))
    if n.netns_name:
        t.append(f"\n ip netns name: {n.netns_name}", style="dim")
    return t
