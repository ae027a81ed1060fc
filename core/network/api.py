"""Engine methods for networks, IPAM, published ports, names.

The user-facing verbs (``network create/ls/inspect/rm/connect/disconnect/prune``, ``port``)
and the calls the runtime makes around a container's life:

    settings = engine.setup_container_network(cid, name=..., networks=["bridge"], ...)
        -> netns pinned at settings["SandboxKey"]: the container's init joins it with
           setns(open(path), CLONE_NEWNET) instead of unsharing a new one
    pending = engine.prepare_container_network(cid, ...)   # the same, in two halves:
        pending.netns now, pending.finish() -> settings while the init sets up its rootfs
    engine.teardown_container_network(cid)      # at rm / when the container is gone
    engine.cleanup_container(cid)               # the same, for crash reconciliation

Nothing here imports pyroute2 at module level; the ``none`` and ``host`` modes never
import it at all (see core/network/rtnl.py for what the bridge path loads and why).
"""

from __future__ import annotations

from ..enginebase import EngineBase

TYPE_CHECKING = False   # typing is not imported at run time: ~5 ms of every `run`
if TYPE_CHECKING:
    from ..types import NetStats, NetworkInspect, NetworkSettings, NetworkSummary
    from .sandbox import Networks, PendingNetwork


class NetworkOps(EngineBase):
    """Mixed into core.engine.Engine; `self.paths` and `self.store` are available."""

    @property
    def _netops(self) -> Networks:
        n = self.__dict__.get("_netops_impl")
        if n is None:
            from .sandbox import Networks

            n = self.__dict__["_netops_impl"] = Networks(self.paths)
        return n

    # --- network verbs ---------------------------------------------------------------
    def network_create(self, name: str, subnet: str | None = None, gateway: str | None = None,
                       internal: bool = False, labels: dict | None = None,
                       driver: str = "bridge", mtu: int | None = None) -> NetworkInspect:
        """Create a user-defined bridge network (its own bridge, subnet, NAT rules)."""
        if driver != "bridge":
            from core.errors import UsageError

            raise UsageError(f"network driver {driver!r} is not supported", hint="use bridge")
        net = self._netops.create(name, subnet=subnet, gateway=gateway, internal=internal,
                                    labels=labels, mtu=mtu)
        view = self._network_view(net)
        self._event("network", "create", view["Id"], {"name": view["Name"], "type": "bridge"})
        return view

    def networks(self) -> list[NetworkSummary]:
        """Every network of this root, the default ``bridge`` first (created if missing),
        plus the pseudo networks ``host`` and ``none``."""
        from .store import DEFAULT_NETWORK

        nets = self._netops.store.all()
        if not any(n["Name"] == DEFAULT_NETWORK for n in nets):
            nets.insert(0, self._netops.default())
        nets.sort(key=lambda n: (n["Name"] != DEFAULT_NETWORK, n["Name"]))
        out = [self._network_summary(n) for n in nets]
        for pseudo in ("host", "none"):
            out.append({"ID": _pseudo_id(pseudo), "Name": pseudo,
                        "Driver": "host" if pseudo == "host" else "null", "Scope": "local",
                        "Subnet": "", "Gateway": "", "Internal": False, "Containers": 0,
                        "Bridge": "", "CreatedAt": ""})
        return out

    def network_inspect(self, ref: str) -> NetworkInspect:
        from .store import DEFAULT_NETWORK

        net = (self._netops.default() if ref == DEFAULT_NETWORK
               else self._netops.store.find(ref))
        return self._network_view(net)

    def network_rm(self, ref: str) -> str:
        """Remove a network; refused while any container is attached to it."""
        ids = {n["Name"]: n["Id"] for n in self._netops.store.all()}
        name = self._netops.remove(ref)
        self._event("network", "destroy", ids.get(name, name), {"name": name, "type": "bridge"})
        return name

    def network_prune(self) -> list[str]:
        """Remove every user network with no container attached; returns their names."""
        ids = {n["Name"]: n["Id"] for n in self._netops.store.all()}
        names = self._netops.prune()
        for name in names:
            self._event("network", "destroy", ids.get(name, name),
                        {"name": name, "type": "bridge"})
        return names

    def network_connect(self, network: str, container: str, aliases: list[str] | None = None,
                        ip: str | None = None) -> NetworkSettings | None:
        """Attach a running container to one more network (next ethN inside); a container
        that is not running gets it in its config, for its next start (None)."""
        cid = self._stopped_container(container)
        if cid is None:
            # the connect event is the network area's (sandbox.py): also a start's networks
            return self._netops.connect(network, container, aliases=aliases, ip=ip)
        if ip:
            from core.errors import UsageError

            raise UsageError("an IP address for network connect needs a running container")
        self.container_edit_networks(cid, self.network_inspect(network)["Name"], True, aliases)
        return None

    def network_disconnect(self, network: str, container: str, force: bool = False) -> None:
        cid = self._stopped_container(container)
        if cid is None:
            self._netops.disconnect(network, container, force=force)
            return
        self.container_edit_networks(cid, self.network_inspect(network)["Name"], False)

    def _stopped_container(self, ref: str) -> str | None:
        """The id of a container that exists and is not running (None otherwise: a running
        one, or one this root does not know, which the network store may still name)."""
        from core.errors import NotFound

        try:
            cid = self.container(ref)
            status = self.container_state(cid).get("Status")
        except NotFound:
            return None
        return None if status in ("running", "paused", "restarting") else cid

    def network_reset(self) -> None:
        """Remove all networks, sandboxes, bridges and nft rules of this root."""
        self._netops.reset()

    # --- what the runtime calls -------------------------------------------------------
    def setup_container_network(self, cid: str, name: str | None = None,
                                networks: list[str] | None = None,
                                aliases: list[str] | None = None,
                                ports: list | None = None, publish_all: bool = False,
                                exposed: list[str] | None = None,
                                dns: list[str] | None = None,
                                dns_search: list[str] | None = None,
                                dns_options: list[str] | None = None,
                                add_hosts: list[str] | None = None,
                                hostname: str | None = None,
                                hosts_path: str | None = None,
                                resolv_path: str | None = None,
                                ip: str | None = None,
                                netns_path: str | None = None,
                                net_aliases: dict[str, list[str]] | None = None) -> NetworkSettings:
        """Give container ``cid`` its network before its init starts.

        ``networks``: ``["bridge"]`` (default), user network names, or one of ``["none"]``,
        ``["host"]``, ``["container:<id>"]``. ``ports``: ``-p`` strings or port dicts;
        ``publish_all`` + ``exposed`` for ``-P``. ``hosts_path``/``resolv_path`` default to
        ``$ROOT/containers/<id>/{hosts,resolv.conf}`` when that directory exists; they are
        written in place (bind-mount safe).

        Returns the container's NetworkSettings: ``SandboxKey`` (the pinned netns for bridge
        mode, else None), ``Networks`` {name: {IPAddress, Gateway, MacAddress, Interface,
        HostVeth, Aliases...}}, ``Ports`` (Docker's map ``{"80/tcp": [{HostIp, HostPort}]}``),
        ``PublishedPorts`` (our list of port dicts), ``IPAddress``, ``Warnings`` (e.g. no
        nft).
        On failure everything already done is undone before the error is raised.
        """
        from . import names

        if names.files_only_mode(networks):    # no sandbox: the network area stays unloaded
            return names.setup_files_only(
                self.paths.container(cid), list(networks or ()), ports=ports,
                publish_all=publish_all, add_hosts=add_hosts, dns=dns, dns_search=dns_search,
                dns_options=dns_options, hosts_path=hosts_path, resolv_path=resolv_path)
        return self._netops.setup(
            cid, name=name, networks=networks, aliases=aliases, ports=ports,
            publish_all=publish_all, exposed=exposed, dns=dns, dns_search=dns_search,
            dns_options=dns_options, add_hosts=add_hosts, hostname=hostname,
            hosts_path=hosts_path, resolv_path=resolv_path, ip=ip, netns_path=netns_path,
            net_aliases=net_aliases)

    def prepare_container_network(self, cid: str, **kw) -> PendingNetwork:
        """:meth:`setup_container_network` in two halves, to overlap with the init.

        Takes the same arguments and refuses the same bad input; returns a
        ``PendingNetwork``: ``.netns`` is the namespace the init joins (None unless bridge
        mode), and ``.finish()`` wires it (veths, addresses, routes, ports, hosts) and
        returns the NetworkSettings. Until ``finish()`` returns, nothing may run in the
        namespace: the runtime holds the payload back (the init waits on a pipe).
        A failure in either half undoes everything before it is raised.
        """
        return self._netops.prepare(cid, **kw)

    def teardown_container_network(self, cid: str) -> bool:
        """Remove the container's nft rules, veths, addresses and netns. Idempotent."""
        return self._netops.teardown(cid)

    def cleanup_container(self, cid: str) -> bool:
        """Crash reconciliation: the same as teardown, safe on any partial state."""
        return self._netops.teardown(cid)

    def container_network_settings(self, cid: str) -> NetworkSettings | None:
        """NetworkSettings of a container set up on bridge networks, or None."""
        rec = self._netops.store.container(cid)
        return self._netops._settings(rec) if rec else None

    def container_netns(self, cid: str) -> str | None:
        """The pinned namespace of a bridge-mode container (for ``container:<id>`` mode,
        exec, and the app's namespace view)."""
        rec = self._netops.store.container(cid)
        return rec.get("Netns") if rec else None

    def container_ports(self, ref: str) -> list[dict]:
        """Published ports of a container (for ``port`` and ``ps``)."""
        from core.errors import NotFound

        try:
            return list(self._netops.store.find_container(ref).get("Ports") or [])
        except NotFound:
            return []

    def container_net_stats(self, cid: str, pid: int | None = None) -> NetStats:
        """rx/tx bytes and packets: ``{"Interfaces": {ifname: counters}, "rx_bytes", ...}``.

        With ``pid`` (any process of the container) it reads /proc/<pid>/net/dev, which
        works for every network mode; without, it reads the pinned namespace.
        """
        return self._netops.stats(cid, pid=pid)

    # --- views ------------------------------------------------------------------------
    def _network_summary(self, net: dict) -> NetworkSummary:
        return {"ID": net["Id"][:12], "Name": net["Name"], "Driver": net["Driver"],
                "Scope": net["Scope"], "Subnet": net["Subnet"], "Gateway": net["Gateway"],
                "Internal": net["Internal"], "Containers": len(net["Endpoints"]),
                "Bridge": net["Bridge"], "CreatedAt": net["Created"]}

    def _network_view(self, net: dict) -> NetworkInspect:
        """Docker's ``network inspect`` shape."""
        containers = {}
        for cid, ep in net["Endpoints"].items():
            containers[cid] = {"Name": ep.get("Name", ""), "EndpointID": ep["EndpointID"],
                               "MacAddress": ep["MacAddress"],
                               "IPv4Address": f"{ep['IPv4Address']}/{ep['PrefixLen']}",
                               "IPv6Address": "", "Interface": ep["Interface"],
                               "HostVeth": ep["HostVeth"], "Aliases": ep.get("Aliases", [])}
        return {
            "Name": net["Name"], "Id": net["Id"], "Created": net["Created"],
            "Scope": net["Scope"], "Driver": net["Driver"], "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": {},
                     "Config": [{"Subnet": net["Subnet"], "Gateway": net["Gateway"]}]},
            "Internal": net["Internal"], "Attachable": False, "Ingress": False,
            "Containers": containers,
            "Options": {"com.docker.network.bridge.name": net["Bridge"],
                        "com.docker.network.driver.mtu": str(net.get("MTU", 1500))},
            "Labels": net.get("Labels", {}),
        }


def _pseudo_id(name: str) -> str:
    import hashlib

    return hashlib.sha256(f"nutshell-{name}".encode()).hexdigest()[:12]
