"""Networks pane: the networks, their subnets and members, and for each member the path
container ``eth0`` (IP) <-> host veth <-> bridge (gateway). Create, remove, prune, connect
and disconnect are the ``nutshell network ...`` verbs.

Everything shown comes from Engine.networks() / network_inspect() (the network area's own
records); the pane never reads the kernel itself.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from workbench.keys import pane_bindings
from workbench.panes.base import ListPane, error_text, quote
from workbench.widgets.table import Col, FilterTable

PSEUDO = ("host", "none")


def topology(net: dict, names: dict[str, str] | None = None) -> Text:
    """The bridge and its members as text: bridge (gateway) ─ veth ─ eth0 IP container."""
    names = names or {}
    t = Text()
    ipam = (net.get("IPAM") or {}).get("Config") or [{}]
    subnet = ipam[0].get("Subnet", "")
    gateway = ipam[0].get("Gateway", "")
    bridge = (net.get("Options") or {}).get("com.docker.network.bridge.name", "")
    driver = net.get("Driver", "")
    if driver == "host":
        t.append("host", style="bold")
        t.append(" — containers share the host's network namespace: its interfaces, "
                 "addresses and ports; no veth, no bridge\n", style="dim")
        return t
    if driver == "null":
        t.append("none", style="bold")
        t.append(" — a network namespace with only a loopback interface\n", style="dim")
        return t
    t.append("host ", style="dim")
    t.append(f"bridge {bridge or '?'}", style="bold cyan")
    t.append(f"  {gateway}", style="bold")
    t.append(f"  subnet {subnet}", style="dim")
    if net.get("Internal"):
        t.append("  internal (no NAT to the outside)", style="yellow")
    t.append("\n")
    members = sorted((net.get("Containers") or {}).items(), key=lambda kv: kv[1].get("IPv4Address", ""))
    if not members:
        t.append("  (no containers attached)\n", style="dim")
    for i, (cid, ep) in enumerate(members):
        last = i == len(members) - 1
        t.append("  └─ " if last else "  ├─ ", style="dim")
        t.append(f"{ep.get('HostVeth') or '?'}", style="cyan")
        t.append(" ═══ ", style="dim")
        t.append(f"{ep.get('Interface') or 'eth0'} ", style="magenta")
        t.append(f"{ep.get('IPv4Address', '')}", style="bold")
        name = ep.get("Name") or names.get(cid, "")
        t.append(f"  {name or cid[:12]}", style="green")
        t.append(f" ({cid[:12]})\n", style="dim")
    t.append("veth pairs: the host end is enslaved to the bridge, the other end is eth0 "
             "inside the container's network namespace", style="dim italic")
    return t


class NetworksPane(ListPane):
    PANE_TITLE = "Networks"
    PANE_KEY = "4"
    WATCH = {"networks", "containers"}
    MUTATING = {"create", "rm", "prune", "connect", "disconnect"}

    DEFAULT_CSS = """
    NetworksPane #networks-list { width: 1fr; }
    NetworksPane #networks-details { width: 1fr; }
    Screen.-narrow NetworksPane #networks-list { height: 2fr; width: 1fr; }
    Screen.-narrow NetworksPane #networks-details { height: 3fr; width: 1fr; }
    NetworksPane #topology-box { height: auto; max-height: 50%; }
    NetworksPane #members { height: 1fr; }
    """

    BINDINGS = pane_bindings("networks")

    def __init__(self, engine: Any, read_only: bool = False, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(engine, read_only, id=id, classes=classes)
        self.networks: dict[str, dict] = {}
        self.details: dict[str, dict] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(id="networks-split", classes="pane-split"):
            with Vertical(id="networks-list"):
                yield FilterTable([Col("NAME", "name"), Col("DRIVER", "driver", 7),
                                   Col("SUBNET", "subnet"), Col("GATEWAY", "gateway"),
                                   Col("BRIDGE", "bridge"), Col("#", "count", 3, justify="right")],
                                  id="networks-table")
            with Vertical(id="networks-details", classes="pane-details"):
                with VerticalScroll(id="topology-box"):
                    yield Static("", id="topology", markup=False)
                yield Static("Members", classes="section-title")
                yield FilterTable([Col("CONTAINER", "name"), Col("IP", "ip"), Col("IFACE", "iface", 5),
                                   Col("HOST VETH", "veth"), Col("MAC", "mac")], id="members")

    def focus_default(self) -> None:
        self.query_one("#networks-table", FilterTable).focus()

    # ------------------------------------------------------------------ data
    def load(self) -> tuple[list[dict], dict[str, dict]]:
        nets = self.engine.networks()
        details: dict[str, dict] = {}
        for n in nets:
            if n["Name"] in PSEUDO:
                details[n["Name"]] = {"Name": n["Name"], "Driver": n["Driver"], "Containers": {}}
                continue
            try:
                details[n["Name"]] = self.engine.network_inspect(n["Name"])
            except Exception:  # noqa: BLE001 - removed meanwhile
                continue
        return nets, details

    def show(self, data: tuple[list[dict], dict[str, dict]]) -> None:
        nets, details = data
        self.networks = {n["Name"]: n for n in nets}
        self.details = details
        rows = []
        for n in nets:
            rows.append((n["Name"], [Text(n["Name"], style="bold" if n["Name"] == "bridge" else ""),
                                     n.get("Driver", ""), n.get("Subnet", "") or "-",
                                     n.get("Gateway", "") or "-", n.get("Bridge", "") or "-",
                                     str(n.get("Containers", 0))]))
        table = self.query_one("#networks-table", FilterTable)
        table.set_rows(rows)
        self._show_details(table.selected_key)

    @property
    def selected(self) -> str | None:
        return self.query_one("#networks-table", FilterTable).selected_key

    @on(FilterTable.Highlighted, "#networks-table")
    def _highlighted(self, event: FilterTable.Highlighted) -> None:
        event.stop()
        self._show_details(event.key)

    @on(FilterTable.Highlighted, "#members")
    def _member(self, event: FilterTable.Highlighted) -> None:
        event.stop()
        if event.key:
            self.choose_container(event.key)

    def _show_details(self, name: str | None) -> None:
        net = self.details.get(name or "")
        topo = self.query_one("#topology", Static)
        members = self.query_one("#members", FilterTable)
        if net is None:
            topo.update("")
            members.set_rows([])
            return
        topo.update(topology(net))
        rows = []
        for cid, ep in sorted((net.get("Containers") or {}).items(),
                              key=lambda kv: kv[1].get("IPv4Address", "")):
            rows.append((cid, [ep.get("Name") or cid[:12], ep.get("IPv4Address", ""),
                               ep.get("Interface", ""), ep.get("HostVeth", ""), ep.get("MacAddress", "")]))
        members.set_rows(rows)

    # ------------------------------------------------------------------ actions
    def action_refresh(self) -> None:
        self.reload()

    def action_create(self) -> None:
        from workbench.screens.form import Field, FormScreen

        def argv(v: dict) -> list[str]:
            a = ["nutshell", "network", "create"]
            if v.get("subnet"):
                a += ["--subnet", v["subnet"]]
            if v.get("gateway"):
                a += ["--gateway", v["gateway"]]
            if v.get("internal"):
                a.append("--internal")
            a.append(v.get("name") or "NAME")
            return a

        def done(v: dict | None) -> None:
            if v:
                self.engine_action(quote(argv(v)), self.engine.network_create, v["name"],
                                   subnet=v.get("subnet") or None, gateway=v.get("gateway") or None,
                                   internal=bool(v.get("internal")), done=f"Created network {v['name']}")

        self.app.push_screen(FormScreen("Create a bridge network", [
            Field("name", "Name", required=True, placeholder="backend"),
            Field("subnet", "Subnet", placeholder="(automatic) e.g. 10.89.0.0/24"),
            Field("gateway", "Gateway", placeholder="(first address)"),
            Field("internal", "Internal", kind="bool"),
        ], submit="Create", preview=lambda v: quote(argv(v))), done)

    def _user_network(self) -> str | None:
        name = self.selected
        if name is None:
            return None
        if name in PSEUDO or name == "bridge":
            self.app.notify(f"{name} is a predefined network", severity="warning", timeout=3)
            return None
        return name

    def action_rm(self) -> None:
        name = self._user_network()
        if name is None:
            return
        command = quote(["nutshell", "network", "rm", name])
        self.confirm(f"Remove network {name}?",
                     lambda: self.engine_action(command, self.engine.network_rm, name,
                                                done=f"Removed network {name}"),
                     detail=command, yes_label="Remove")

    def action_prune(self) -> None:
        command = "nutshell network prune -f"
        self.confirm("Remove every user network no container uses?",
                     lambda: self.engine_action(command, self.engine.network_prune,
                                                on_done=lambda names: self.app.notify(
                                                    "Removed: " + (", ".join(names) or "nothing"),
                                                    timeout=4)),
                     detail=command, yes_label="Prune")

    def action_connect(self) -> None:
        from workbench.screens.form import Field, FormScreen

        name = self.selected
        if name is None or name in PSEUDO:
            return
        try:
            running = [c for c in self.engine.ps() if c.get("State") == "running"]
        except Exception as exc:  # noqa: BLE001
            self.notify_error(exc)
            return
        members = set((self.details.get(name) or {}).get("Containers") or {})
        options = [(f"{c.get('Names') or c['Id'][:12]}  {c['Id'][:12]}", c["Id"])
                   for c in running if c["Id"] not in members]
        if not options:
            self.app.notify("no running container to connect", severity="warning", timeout=3)
            return

        def done(v: dict | None) -> None:
            if v:
                cid = v["container"]
                label = next((o[0].split()[0] for o in options if o[1] == cid), cid[:12])
                self.engine_action(quote(["nutshell", "network", "connect", name, label]),
                                   self.engine.network_connect, name, cid,
                                   done=f"Connected {label} to {name}")

        self.app.push_screen(FormScreen(f"Connect a container to {name}", [
            Field("container", "Container", kind="select", options=options)], submit="Connect"), done)

    def action_disconnect(self) -> None:
        name = self.selected
        cid = self.query_one("#members", FilterTable).selected_key
        if name is None or cid is None:
            self.app.notify("select a member (the Members list) first", severity="warning", timeout=3)
            return
        ep = ((self.details.get(name) or {}).get("Containers") or {}).get(cid, {})
        label = ep.get("Name") or cid[:12]
        command = quote(["nutshell", "network", "disconnect", name, label])
        self.confirm(f"Disconnect {label} from {name}?",
                     lambda: self.engine_action(command, self.engine.network_disconnect, name, cid,
                                                done=f"Disconnected {label}"),
                     detail=command, yes_label="Disconnect")


__all__ = ["NetworksPane", "topology", "error_text"]
