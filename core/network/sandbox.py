"""Networks and container sandboxes: the steps, in the order they happen.

Set-up of a container on bridge networks (``setup``):

1. parse published ports (fail before touching anything);
2. make sure the networks exist (the default ``bridge`` is created on first use);
3. pin a fresh network namespace, and write the sandbox record first, so that a crash
   from here on leaves a record that ``teardown`` can follow;
4. allocate one address per network (under the networks lock: endpoint = allocation);
5. per network: make sure its bridge is up (created after a reboot or on first use),
   then one veth pair: host end on the bridge, peer born inside the namespace as ethN;
6. inside the namespace, in one netlink round trip: lo up, ethN up, addresses, default
   route via the first non-internal network's gateway;
7. published ports: nft DNAT rules tagged with the container id;
8. hosts and resolv.conf for the container, and the hosts files of its peers.

``teardown`` undoes each step and tolerates any of them missing, so it is also the crash
clean-up: it is idempotent and works from the record, from the networks' endpoints,
and from the names derived from the container id.

Imports are lazy (``_Lazy``): the shim runs ``teardown_after_exit`` under ``python -I
-S`` on the path that reports the exit code, so that path loads only what it touches
(json, ctypes, fcntl) -- not ipaddress, socket, subprocess or dataclasses.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time

from core.errors import Conflict, NotFound, RuntimeFailure, UsageError

from . import netns
from .store import DEFAULT_NETWORK, NetworkStore, new_id, now_rfc3339, validate_name

TYPE_CHECKING = False          # typing is not imported: the shim loads this module
if TYPE_CHECKING:
    from core.types import NetStats, NetworkSettings


class _Lazy:
    """A module imported on first attribute access."""

    def __init__(self, name: str):
        self._name = name
        self._mod = None

    def __getattr__(self, attr):
        if self._mod is None:
            self._mod = importlib.import_module(self._name, __package__)
        return getattr(self._mod, attr)


ipaddress = _Lazy("ipaddress")
ipam = _Lazy(".ipam")
names = _Lazy(".names")
portsmod = _Lazy(".ports")
nat = _Lazy(".nat")
iptables = _Lazy(".iptables")

DEFAULT_MTU = 1500


# --- small host helpers --------------------------------------------------------------------
def _sysctl(path: str, value: str) -> bool:
    try:
        with open(path) as f:
            if f.read().strip() == value:
                return True
        with open(path, "w") as f:
            f.write(value)
        return True
    except OSError:
        return False


def _rtnl(netns_path: str | None = None):
    from .rtnl import Rtnl  # pyroute2's codecs: only on the bridge path

    return Rtnl(netns_path)


def _bridge_mac(net_id: str) -> str:
    b = bytes.fromhex(net_id[:10])
    return "02:" + ":".join(f"{x:02x}" for x in b)


class PendingNetwork:
    """A container sandbox made by :meth:`Networks.prepare`: ``netns`` (the pinned
    namespace to join, None for none/host/container modes) and ``finish()``, which
    completes it and returns the NetworkSettings (at most once)."""

    def __init__(self, netns: str | None, finish=None,
                 settings: NetworkSettings | None = None):
        self.netns = netns
        self._finish = finish
        self._settings = settings

    def finish(self) -> NetworkSettings:
        if self._finish is not None:
            fn, self._finish = self._finish, None
            self._settings = fn()
        settings = self._settings
        assert settings is not None     # given at construction, or made by finish()
        return settings


class Networks:
    """Everything the NetworkOps mixin does, over one NetworkStore."""

    def __init__(self, paths):
        self.paths = paths
        self.store = NetworkStore(paths)
        self._nft = None

    @property
    def nft(self):
        if self._nft is None:
            self._nft = nat.Nft(self.store.nft_table)
        return self._nft

    # ======================================================================================
    # networks
    # ======================================================================================
    def _host_subnets(self) -> list:
        used = []
        with _rtnl() as r:
            for rt in r.routes():
                if rt["dst_len"] and rt["dst"]:
                    used.append(ipaddress.IPv4Network(f"{rt['dst']}/{rt['dst_len']}",
                                                      strict=False))
            for a in r.addresses():
                if a["address"]:
                    used.append(ipaddress.IPv4Network(f"{a['address']}/{a['prefixlen']}",
                                                      strict=False))
        return used

    def _new_network(self, name: str, subnet: str | None, gateway: str | None,
                     internal: bool, labels: dict | None, mtu: int | None) -> dict:
        """Build a network record (caller holds the store lock and the host lock)."""
        ours = [ipaddress.IPv4Network(n["Subnet"]) for n in self.store.all()]
        if subnet:
            net = ipam.parse_subnet(subnet)
            for other in self.store.all():
                if net.overlaps(ipaddress.IPv4Network(other["Subnet"])):
                    raise Conflict(f"subnet {net} overlaps network {other['Name']} "
                                   f"({other['Subnet']})")
        else:
            net = ipam.choose_subnet(ours + self._host_subnets())
        gw = ipam.parse_gateway(gateway, net) if gateway else ipam.default_gateway(net)
        net_id = new_id()
        return {
            "Name": name, "Id": net_id, "Created": now_rfc3339(), "Driver": "bridge",
            "Scope": "local", "Internal": bool(internal), "Subnet": str(net),
            "Gateway": str(gw), "Bridge": self.store.bridge_name(name, net_id),
            "MTU": int(mtu or DEFAULT_MTU), "Labels": dict(labels or {}), "LastIP": None,
            "Endpoints": {},
        }

    def create(self, name: str, subnet: str | None = None, gateway: str | None = None,
               internal: bool = False, labels: dict | None = None,
               mtu: int | None = None) -> dict:
        validate_name(name)
        if name == DEFAULT_NETWORK:
            raise Conflict(f"network with name {name} already exists",
                           hint="'bridge' is the pre-defined default network")
        with self.store.lock(), self.store.host_lock():
            if self.store.load(name) is not None:
                raise Conflict(f"network with name {name} already exists")
            return self._make(name, subnet, gateway, internal, labels, mtu)

    def default(self) -> dict:
        """The default ``bridge`` network, created on first use -- record *and* bridge
        together under the host-wide lock, so that another root choosing a subnet at the
        same time sees our route and cannot pick the same one."""
        net = self.store.load(DEFAULT_NETWORK)
        if net is not None:
            return net
        with self.store.lock(), self.store.host_lock():
            net = self.store.load(DEFAULT_NETWORK)
            if net is None:
                net = self._make(DEFAULT_NETWORK, None, None, False, {}, None)
        return net

    def _make(self, name: str, subnet: str | None, gateway: str | None, internal: bool,
              labels: dict | None, mtu: int | None) -> dict:
        """A new network's record and bridge (the caller holds the store and host locks);
        on failure both are undone."""
        net = self._new_network(name, subnet, gateway, internal, labels, mtu)
        self.store.save(net)
        try:
            with _rtnl() as r:
                self._bridge_up(net, r)
        except BaseException:
            self._bridge_down(net)
            self.store.remove(name)
            raise
        return net

    def _bridge_up(self, net: dict, r) -> int:
        """Create the bridge of ``net`` with its gateway address and nft rules; returns
        its ifindex. Caller holds the store lock (creation is serialised)."""
        link = r.link(net["Bridge"])
        if link is not None:
            return link["index"]
        r.add_bridge(net["Bridge"], mac=_bridge_mac(net["Id"]), mtu=net.get("MTU"))
        link = r.link(net["Bridge"])
        prefix = ipaddress.IPv4Network(net["Subnet"]).prefixlen
        try:
            r.add_address(link["index"], net["Gateway"], prefix)
        except FileExistsError:
            pass
        # published ports reached at 127.0.0.1: loopback-sourced packets may leave
        # through this bridge (the guard chain drops the reverse direction)
        _sysctl(f"/proc/sys/net/ipv4/conf/{net['Bridge']}/route_localnet", "1")
        if self.nft.available:
            self.nft.delete_tagged(nat.network_tag(net["Id"]))  # leftovers of a crash
            self.nft.add_network(net["Id"], net["Bridge"], net["Subnet"], net["Internal"])
            if not net["Internal"]:
                _sysctl("/proc/sys/net/ipv4/ip_forward", "1")
        self._let_through([net])
        return link["index"]

    @staticmethod
    def _let_through(nets: list[dict]) -> None:
        """Accept rules for these networks in iptables' FORWARD, on hosts where it drops
        (dockerd's policy): see core/network/iptables.py. Checked for every container
        set-up too, so a firewall reload is repaired by the next start."""
        iptables.ensure([(n["Id"], n["Bridge"], bool(n["Internal"])) for n in nets])

    def _ensure_bridge(self, net: dict, r) -> dict:
        link = r.link(net["Bridge"])
        if link is None:
            with self.store.lock():
                self._bridge_up(net, r)
            link = r.link(net["Bridge"])
        return link

    def _bridge_down(self, net: dict) -> None:
        if self.nft.available:
            self.nft.delete_tagged(nat.network_tag(net["Id"]))
        iptables.remove(net["Id"])
        with _rtnl() as r:
            r.delete_link(net["Bridge"])

    def sweep(self) -> list[str]:
        """Delete host veths of ours that no endpoint owns (their namespace outlived a
        fast teardown, or a crash lost them). Returns their names."""
        nets = self.store.all()
        if not nets:
            return []
        owned = {ep["HostVeth"] for n in nets for ep in n["Endpoints"].values()}
        removed = []
        with _rtnl() as r:
            links = r.links()
            bridges = {l["index"] for l in links if l["name"] in {n["Bridge"] for n in nets}}
            for l in links:
                if (l["name"] or "").startswith("nsv") and l["kind"] == "veth" \
                        and l["master"] in bridges and l["name"] not in owned:
                    if r.delete_link(l["name"]):
                        removed.append(l["name"])
        return removed

    def _stale_endpoints(self, net: dict) -> list[str]:
        """Endpoints whose container no longer exists anywhere: no sandbox record and no
        container directory, for more than a minute (never one being set up now)."""
        stale = []
        for cid, ep in net.get("Endpoints", {}).items():
            if (self.store.container(cid) is None
                    and not os.path.isdir(self.paths.container(cid))
                    and time.time() - ep.get("Since", 0) > 60):
                stale.append(cid)
        return stale

    def remove(self, ref: str) -> str:
        net = self.store.find(ref)
        if net["Name"] == DEFAULT_NETWORK:
            raise Conflict(f"{DEFAULT_NETWORK} is a pre-defined network and cannot be removed")
        for cid in self._stale_endpoints(net):
            self.teardown(cid)
        self.sweep()
        with self.store.lock():
            net = self.store.load(net["Name"])
            if net is None:
                raise NotFound(f"network {ref} not found")
            if net["Endpoints"]:
                users = ", ".join(ep.get("Name") or cid[:12]
                                  for cid, ep in net["Endpoints"].items())
                raise Conflict(f"network {net['Name']} has active endpoints ({users})",
                               hint="stop or disconnect those containers first")
            self._bridge_down(net)
            self.store.remove(net["Name"])
        return net["Name"]

    def prune(self) -> list[str]:
        self.sweep()
        removed = []
        for net in self.store.all():
            if net["Name"] == DEFAULT_NETWORK:
                continue
            with contextlib.suppress(Conflict, NotFound):
                removed.append(self.remove(net["Name"]))
        return removed

    def reset(self) -> None:
        """Remove every sandbox, network (the default one too), bridge and the nft table
        of this root. For tests and for wiping a store."""
        for rec in self.store.containers():
            self.teardown(rec["Id"])
        self.sweep()
        for net in self.store.all():
            for cid in list(net.get("Endpoints", {})):
                self.teardown(cid)
            with self.store.lock():
                self._bridge_down(net)
                self.store.remove(net["Name"])
        self.nft.delete_table()

    # ======================================================================================
    # container sandboxes
    # ======================================================================================
    def setup(self, cid: str, **kw) -> NetworkSettings:
        """Give ``cid`` its network: :meth:`prepare` then its ``finish()``."""
        return self.prepare(cid, **kw).finish()

    def prepare(self, cid: str, name: str | None = None, networks: list[str] | None = None,
                aliases: list[str] | None = None, ports: list | None = None,
                publish_all: bool = False, exposed: list[str] | None = None,
                dns: list[str] | None = None, dns_search: list[str] | None = None,
                dns_options: list[str] | None = None, add_hosts: list[str] | None = None,
                hostname: str | None = None, hosts_path: str | None = None,
                resolv_path: str | None = None, ip: str | None = None,
                netns_path: str | None = None,
                net_aliases: dict[str, list[str]] | None = None) -> PendingNetwork:
        """The part of the set-up an init needs before it starts, and the rest for later.
        ``net_aliases``: aliases per network (``network connect --alias`` of a container
        that was not running), over ``aliases``.

        Everything that can refuse (bad flags, unknown networks, published ports without
        nft or on an internal network) is checked here; for a bridge-mode sandbox the
        record is saved, the namespace is pinned and the name files exist, so the
        container's init can join the namespace and bind the files. ``finish()`` then
        does the netlink work (the pyroute2 load, veths, addresses, routes), the port
        rules and the final /etc/hosts: the runtime runs it while the init sets up the
        rootfs, which waits for it before exec (see core/runtime/start/launch.py).
        """
        networks = list(networks or [DEFAULT_NETWORK])
        if names.files_only_mode(networks):
            return PendingNetwork(None, settings=names.setup_files_only(
                self.paths.container(cid), networks, ports=ports, publish_all=publish_all,
                add_hosts=add_hosts, dns=dns, dns_search=dns_search, dns_options=dns_options,
                hosts_path=hosts_path, resolv_path=resolv_path))
        hostname = hostname or cid[:12]
        extra = [names.parse_add_host(h) for h in add_hosts or []]

        wanted: list[dict] = []
        for p in ports or []:
            wanted += portsmod.parse_publish(p) if isinstance(p, str) else [dict(p)]
        if publish_all:
            have = {(p["ContainerPort"], p["Protocol"]) for p in wanted}
            wanted += [p for p in portsmod.publish_all(exposed or [])
                       if (p["ContainerPort"], p["Protocol"]) not in have]
        warnings = []
        if not self.nft.available:
            if wanted:
                raise RuntimeFailure(nat.MISSING.replace("are disabled", "are unavailable"),
                                     hint=nat.MISSING_HINT)
            warnings.append(nat.MISSING)
        nets = []
        for n in dict.fromkeys(networks):
            net = self.default() if n == DEFAULT_NETWORK else self.store.find(n)
            nets.append(net)
        if wanted and all(n["Internal"] for n in nets):
            raise UsageError("published ports need a network that is not --internal")

        if self.store.container(cid) is not None or os.path.lexists(self.store.netns_path(cid)):
            self.teardown(cid)  # a stale sandbox (crash, reboot): start clean
        if netns_path is None:
            netns_path = self.store.netns_path(cid)
        hosts_path, resolv_path = self._default_files(cid, hosts_path, resolv_path)
        rec = {
            "Id": cid, "Name": (name or "").lstrip("/"), "Mode": "bridge",
            "Netns": netns_path, "NetnsName": netns.LINK_PREFIX + self.store.netns_id(cid),
            "Networks": [n["Name"] for n in nets], "Hostname": hostname,
            "Aliases": list(aliases or []), "Ports": [], "Dns": list(dns or []),
            "DnsSearch": dns_search, "DnsOptions": dns_options,
            "AddHosts": [f"{h}:{i}" for h, i in extra], "HostsPath": hosts_path,
            "ResolvPath": resolv_path, "Created": now_rfc3339(),
        }
        if net_aliases:
            rec["NetAliases"] = {k: list(v) for k, v in net_aliases.items()}
        with self.store.lock():
            self.store.save_container(rec)
        try:
            netns.create(netns_path, self.store.netns_id(cid))
            self._write_files(rec)  # without its address yet: finish() writes it
        except BaseException:
            with contextlib.suppress(Exception):
                self.teardown(cid)
            raise

        def finish() -> NetworkSettings:
            try:
                endpoints = self._allocate(cid, rec, nets, ip)
                with _rtnl() as host:
                    self._wire(host, netns_path, nets, endpoints, first=True)
                self._let_through(nets)
                if wanted:
                    target = next(n for n in nets if not n["Internal"])
                    rec["Ports"] = self._publish(
                        cid, endpoints[target["Name"]]["IPv4Address"], wanted)
                    with self.store.lock():
                        self.store.save_container(rec)
                self._write_files(rec)
                self._refresh_peers([n["Name"] for n in nets], exclude=cid)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.teardown(cid)
                raise
            return self._settings(rec, warnings)

        return PendingNetwork(netns_path, finish=finish)

    def _default_files(self, cid, hosts_path, resolv_path):
        cdir = self.paths.container(cid)
        if os.path.isdir(cdir):
            hosts_path = hosts_path or os.path.join(cdir, "hosts")
            resolv_path = resolv_path or os.path.join(cdir, "resolv.conf")
        return hosts_path, resolv_path

    def _allocate(self, cid: str, rec: dict, nets: list[dict], ip: str | None,
                  first_index: int = 0) -> dict[str, dict]:
        endpoints = {}
        with self.store.lock():
            for i, n in enumerate(nets):
                net = self.store.load(n["Name"])
                if net is None:
                    raise NotFound(f"network {n['Name']} not found")
                if cid in net["Endpoints"]:
                    raise Conflict(f"container {rec.get('Name') or cid[:12]} is already "
                                   f"connected to network {net['Name']}")
                addr = ipam.allocate(net, ip if i == 0 else None)
                aliases = rec["Aliases"] if net["Name"] != DEFAULT_NETWORK else []
                if isinstance(rec.get("NetAliases"), dict):
                    aliases = rec["NetAliases"].get(net["Name"], aliases)
                ep = {
                    "EndpointID": new_id(), "Name": rec.get("Name", ""),
                    "IPv4Address": addr,
                    "PrefixLen": ipaddress.IPv4Network(net["Subnet"]).prefixlen,
                    "MacAddress": ipam.mac_for(addr), "Gateway": net["Gateway"],
                    "HostVeth": self.store.veth_name(cid, net["Id"]),
                    "Interface": f"eth{first_index + i}", "Aliases": list(aliases),
                    "Since": time.time(),
                }
                net["Endpoints"][cid] = ep
                self.store.save(net)
                _net_event(self.paths.root, "connect", net, cid)
                n.update(net)
                endpoints[net["Name"]] = ep
        return endpoints

    def _wire(self, host, netns_path: str, nets: list[dict], endpoints: dict,
              first: bool) -> None:
        """Veth pairs into the namespace, then its whole configuration in one batch."""
        from .rtnl import NLM_F_CREATE, NLM_F_EXCL, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE

        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            for net in nets:
                ep = endpoints[net["Name"]]
                br = self._ensure_bridge(net, host)
                veth = dict(peer_netns_fd=fd, master=br["index"], mtu=br["mtu"],
                            peer_mac=ep["MacAddress"])
                try:
                    host.add_veth(ep["HostVeth"], ep["Interface"], **veth)
                except FileExistsError:
                    # our name: a previous life of this container whose namespace the
                    # kernel is still tearing down (restart), or an orphan
                    host.delete_link(ep["HostVeth"])
                    host.add_veth(ep["HostVeth"], ep["Interface"], **veth)
        finally:
            os.close(fd)
        with _rtnl(netns_path) as inside:
            batch = []
            if first:
                lo = inside.link("lo")
                batch.append((inside.msg_link(index=lo["index"], up=True), RTM_NEWLINK, 0))
            routed = False
            have_default = not first and any(
                r["dst_len"] == 0 and r["table"] == 254 for r in inside.routes())
            for net in nets:
                ep = endpoints[net["Name"]]
                idx = inside.link(ep["Interface"])["index"]
                ep["_index"] = idx
                batch.append((inside.msg_addr(idx, ep["IPv4Address"], ep["PrefixLen"]),
                              RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL))
                batch.append((inside.msg_link(index=idx, up=True), RTM_NEWLINK, 0))
            for net in nets:
                if not net["Internal"] and not routed and not have_default:
                    ep = endpoints[net["Name"]]
                    batch.append((inside.msg_default_route(net["Gateway"], ep.pop("_index")),
                                  RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL))
                    routed = True
            for ep in endpoints.values():
                ep.pop("_index", None)
            inside.transact(batch)

    def _publish(self, cid: str, ip: str, wanted: list[dict]) -> list[dict]:
        with self.store.lock():
            elsewhere = [p for r in self.store.containers() if r["Id"] != cid
                         for p in r.get("Ports") or []]
            published = portsmod.assign(wanted, elsewhere)
            rec = self.store.container(cid)
            rec["Ports"] = published
            self.store.save_container(rec)  # reserved before the rules exist
        self.nft.add_ports(cid, ip, published)
        return published

    # --- names ------------------------------------------------------------------------
    def _hosts_for(self, rec: dict, nets: dict[str, dict], recs: dict[str, dict]) -> str:
        cid = rec["Id"]
        own_names = [rec.get("Hostname") or cid[:12]]
        own, peers = [], []
        for nname in rec.get("Networks", []):
            net = nets.get(nname)
            if net is None or cid not in net["Endpoints"]:
                continue
            ep = net["Endpoints"][cid]
            user = nname != DEFAULT_NETWORK
            own.append((ep["IPv4Address"],
                        own_names + ([rec.get("Name")] + ep.get("Aliases", []) if user else [])))
            if not user:
                continue
            for pid, pep in net["Endpoints"].items():
                if pid == cid:
                    continue
                peers.append((pep["IPv4Address"],
                              [pep.get("Name")] + pep.get("Aliases", []) + [pid[:12]]))
        extra = []
        for spec in rec.get("AddHosts") or []:
            host, ip = names.parse_add_host(spec)
            if ip == names.HOST_GATEWAY:
                first = nets.get((rec.get("Networks") or [None])[0])
                ip = first["Gateway"] if first else "127.0.0.1"
            extra.append((host, ip))
        return names.render_hosts(own=own, peers=peers, extra=extra)

    def _write_files(self, rec: dict) -> None:
        nets = {n["Name"]: n for n in self.store.all()}
        if rec.get("HostsPath"):
            names.write_in_place(rec["HostsPath"], self._hosts_for(rec, nets, {}))
        if rec.get("ResolvPath"):
            names.write_in_place(rec["ResolvPath"], names.render_resolv(
                names.host_resolv_text(), rec.get("Dns"), rec.get("DnsSearch"),
                rec.get("DnsOptions")))

    def _refresh_peers(self, net_names: list[str], exclude: str | None = None) -> None:
        """Rewrite the hosts file of every member of these user networks."""
        user = [n for n in net_names if n != DEFAULT_NETWORK]
        if not user:
            return
        with self.store.lock():
            nets = {n["Name"]: n for n in self.store.all()}
            members = {cid for n in user if n in nets for cid in nets[n]["Endpoints"]}
            for cid in sorted(members - {exclude}):
                rec = self.store.container(cid)
                if rec and rec.get("HostsPath") and os.path.exists(rec["HostsPath"]):
                    with contextlib.suppress(OSError):
                        names.write_in_place(rec["HostsPath"], self._hosts_for(rec, nets, {}))

    # --- settings as the runtime and inspect see them -----------------------------------
    def _settings(self, rec: dict, warnings: list[str] | None = None) -> NetworkSettings:
        nets = {n["Name"]: n for n in self.store.all()}
        out_nets = {}
        for nname in rec.get("Networks", []):
            net = nets.get(nname)
            if net is None or rec["Id"] not in net["Endpoints"]:
                continue
            ep = net["Endpoints"][rec["Id"]]
            out_nets[nname] = {
                "NetworkID": net["Id"], "EndpointID": ep["EndpointID"],
                "Gateway": ep["Gateway"], "IPAddress": ep["IPv4Address"],
                "IPPrefixLen": ep["PrefixLen"], "MacAddress": ep["MacAddress"],
                "Aliases": ep.get("Aliases", []), "Interface": ep["Interface"],
                "HostVeth": ep["HostVeth"], "Bridge": net["Bridge"],
                "DNSNames": [x for x in [rec.get("Name"), *ep.get("Aliases", []),
                                         rec["Id"][:12]] if x]
                if nname != DEFAULT_NETWORK else None,
            }
        first = next(iter(out_nets.values()), {})
        return {
            "Mode": rec.get("Mode", "bridge"), "SandboxKey": rec.get("Netns"),
            "NetnsName": rec.get("NetnsName"), "Networks": out_nets,
            "Ports": docker_ports(rec.get("Ports")), "PublishedPorts": rec.get("Ports") or [],
            "IPAddress": first.get("IPAddress", ""),
            "Gateway": first.get("Gateway", ""), "MacAddress": first.get("MacAddress", ""),
            "HostsPath": rec.get("HostsPath"), "ResolvConfPath": rec.get("ResolvPath"),
            "Warnings": list(warnings or []),
        }

    # --- teardown --------------------------------------------------------------------
    def teardown(self, cid: str, delete_links: bool = True) -> bool:
        """Undo everything ``setup`` (and ``connect``) did for ``cid``. Idempotent; returns
        True when anything was found.

        ``delete_links=False`` is for when the container's processes are all gone (its
        shim, after the init exited): the veth pairs are not deleted one by one (a
        synchronous ~25 ms RTM_DELLINK each, and the netlink import) -- unpinning the
        namespace makes the kernel destroy it and every interface in it. Should a stray
        process keep the namespace alive, the orphaned host end is swept by the next
        ``network rm``/``prune``, and a restart replaces it by name.
        """
        rec = self.store.container(cid)
        path = (rec or {}).get("Netns") or self.store.netns_path(cid)
        nets = self.store.all()
        joined = [n for n in nets if cid in n.get("Endpoints", {})]
        if rec is None and not joined and not os.path.lexists(path) \
                and not os.path.lexists(netns.link_path(self.store.netns_id(cid))):
            return False  # never had a sandbox (--network none/host), or already gone
        # 1. port rules: they exist only once the record lists the ports; without a
        #    record (lost in a crash) look for them anyway
        if (rec is None or rec.get("Ports")) and self.nft.available:
            self.nft.delete_tagged(nat.container_tag(cid))
        # 2. veths (before their addresses are released: a crash in between must not
        #    leave a veth no record points to); with the record lost, also every name
        #    this id would have had on any network
        veths = {n["Endpoints"][cid]["HostVeth"] for n in joined}
        if rec is None:
            veths |= {self.store.veth_name(cid, n["Id"]) for n in nets}
        if veths and delete_links:
            with _rtnl() as r:
                for v in sorted(veths):
                    r.delete_link(v)
        # 3. addresses back to the networks
        released: list[str] = []
        with self.store.lock():
            for net in self.store.all():
                if net["Endpoints"].pop(cid, None) is not None:
                    self.store.save(net)
                    _net_event(self.paths.root, "disconnect", net, cid)
                    released.append(net["Name"])
        # 4. the namespace, then the record
        netns.delete(path, self.store.netns_id(cid))
        with self.store.lock():
            self.store.remove_container(cid)
        self._refresh_peers(released, exclude=cid)
        return True

    # --- connect / disconnect ---------------------------------------------------------
    def connect(self, ref: str, container: str, aliases: list[str] | None = None,
                ip: str | None = None) -> NetworkSettings:
        net = self.default() if ref == DEFAULT_NETWORK else self.store.find(ref)
        rec = self.store.find_container(container)
        cid = rec["Id"]
        if rec.get("Mode", "bridge") != "bridge":
            raise Conflict(f"container {container} uses --network {rec['Mode']}: "
                           f"it cannot be connected to other networks")
        if not netns.is_pinned(rec["Netns"]):
            raise Conflict(f"container {container} is not running")
        with _rtnl(rec["Netns"]) as inside:
            used = {l["name"] for l in inside.links()}
        index = next(i for i in range(64) if f"eth{i}" not in used)
        rec.setdefault("NetAliases", {})[net["Name"]] = list(aliases or [])
        endpoints = self._allocate(cid, rec, [net], ip, first_index=index)
        try:
            with _rtnl() as host:
                self._wire(host, rec["Netns"], [net], endpoints, first=False)
            self._let_through([net])
        except BaseException:
            self._release(cid, net["Name"])
            raise
        with self.store.lock():
            rec = self.store.container(cid)
            rec["Networks"].append(net["Name"])
            rec.setdefault("NetAliases", {})[net["Name"]] = list(aliases or [])
            self.store.save_container(rec)
        self._write_files(rec)
        self._refresh_peers([net["Name"]], exclude=cid)
        return self._settings(rec)

    def _release(self, cid: str, net_name: str) -> dict | None:
        with self.store.lock():
            net = self.store.load(net_name)
            ep = net["Endpoints"].pop(cid, None) if net else None
            if ep is not None:
                self.store.save(net)
                _net_event(self.paths.root, "disconnect", net, cid)
        if ep is not None:
            with _rtnl() as r:
                r.delete_link(ep["HostVeth"])
        return ep

    def disconnect(self, ref: str, container: str, force: bool = False) -> None:
        net = self.store.find(ref)
        try:
            rec = self.store.find_container(container)
        except NotFound:
            if not force:
                raise
            rec = None
        cid = rec["Id"] if rec else container
        if rec is None or cid not in net["Endpoints"]:
            if force and cid in net["Endpoints"]:
                self._release(cid, net["Name"])
                return
            raise Conflict(f"container {container} is not connected to network {net['Name']}")
        self._release(cid, net["Name"])
        with self.store.lock():
            rec = self.store.container(cid) or rec
            rec["Networks"] = [n for n in rec["Networks"] if n != net["Name"]]
            if isinstance(rec.get("NetAliases"), dict):
                rec["NetAliases"].pop(net["Name"], None)
            self.store.save_container(rec)
        self._write_files(rec)
        self._refresh_peers([net["Name"]], exclude=cid)

    # --- stats ------------------------------------------------------------------------
    def stats(self, cid: str, pid: int | None = None) -> NetStats:
        """rx/tx bytes and packets per interface of the container, plus totals (lo left
        out of the totals, like Docker's NET I/O)."""
        ifaces: dict[str, dict] = {}
        rec = None
        if pid:
            with contextlib.suppress(OSError):
                with open(f"/proc/{pid}/net/dev") as f:
                    ifaces = netns.parse_proc_net_dev(f.read())
        if not ifaces and cid:
            rec = self.store.container(cid)
            if rec is None:
                with contextlib.suppress(NotFound):
                    rec = self.store.find_container(cid)
            if rec and rec.get("Netns") and netns.is_pinned(rec["Netns"]):
                ifaces = netns.dev_counters(rec["Netns"])
        totals = {k: 0 for k in ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets")}
        for name, c in ifaces.items():
            if name == "lo":
                continue
            for k in totals:
                totals[k] += c.get(k, 0)
        return {"Interfaces": ifaces, "rx_bytes": totals["rx_bytes"],
                "tx_bytes": totals["tx_bytes"], "rx_packets": totals["rx_packets"],
                "tx_packets": totals["tx_packets"]}


def docker_ports(ports: list[dict] | None) -> dict:
    """Docker's NetworkSettings.Ports: {"80/tcp": [{"HostIp": ..., "HostPort": "18080"}]}."""
    out: dict = {}
    for p in ports or []:
        out.setdefault(f"{p['ContainerPort']}/{p['Protocol']}", []).append(
            {"HostIp": p["HostIp"], "HostPort": str(p["HostPort"])})
    return out


def teardown_after_exit(root: str, cid: str, run: str | None = None) -> bool:
    """For the shim once the container's init has exited: release the container's
    network without the Engine, netlink or site-packages (the shim runs ``python -I -S``:
    only the standard library and this package are importable), loading as little as
    possible. ``run``: the runtime dir (``Paths.run``), found as
    ``core.paths.resolve`` finds it when not given. See ``Networks.teardown(delete_links=False)``."""
    try:
        _children_in_own_pid_namespace()
        from core.paths import resolve

        return Networks(resolve(root, run)).teardown(cid, delete_links=False)
    except BaseException:
        import traceback  # the shim logs only the message: keep where it came from

        traceback.print_exc()
        raise


def _net_event(root: str, action: str, net: dict, cid: str) -> None:
    """Docker's network connect/disconnect event (core/journal.py); never raises."""
    from .. import journal

    journal.record(root, "network", action, net.get("Id") or "",
                   {"container": cid, "name": net.get("Name") or "", "type": "bridge"})


def _children_in_own_pid_namespace() -> None:
    """Removing port rules runs ``nft`` from the shim: see
    ``core.runtime.linux.own_pid_namespace_for_children``."""
    from core.runtime import linux

    linux.own_pid_namespace_for_children()
