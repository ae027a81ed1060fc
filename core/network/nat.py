"""Outbound NAT, published ports and isolation rules, in an nftables table of our own.

Each state root owns one table (``ip nutshell``, or ``ip nutshell_<hash>`` for another
root) with five base chains and one regular chain::

    guard        filter  prerouting  raw (-300)  drop 127.0.0.0/8 arriving from our bridges
    prerouting   nat     prerouting  dstnat      published ports (traffic from outside,
                                                 from other containers: hairpin)
    output       nat     output      -100        published ports seen from the host itself,
                                                 127.0.0.1 included
    postrouting  nat     postrouting srcnat      masquerade: outbound, 127.0.0.1 -> bridge,
                                                 hairpin
    forward      filter  forward     0           --internal networks cannot route out;
                                                 every other network jumps to isolation
                                                 for traffic leaving or entering its bridge
    isolation    (regular chain)                 drop what goes between two different
                                                 bridges of ours or Docker's

Isolation between networks works as Docker's DOCKER-ISOLATION-STAGE-1/2: stage 1 is
one pair of rules per network in ``forward`` (``iifname BR oifname != BR jump
isolation`` and the same inbound), stage 2 is the ``isolation`` chain, the same in every
root's table. It recognises the other side by *name*: our bridges are ``nsbr-*`` and
``nutshell0`` in every state root, Docker's are ``docker0`` and ``br-<id>``. Matching
the prefix rather than keeping a set of our bridges means nothing is shared between
roots (nft sets cannot be referenced from another table, so a shared set would mean a
shared table that some root must create and the last one delete): isolation holds
between bridges of different roots, of roots whose records a crash lost, of older
versions, and as long as *either* side's table exists. The price: a bridge someone else
names ``nsbr-*`` counts as ours, and a Linux bridge named ``br-*`` as Docker's. Traffic
with conntrack's DNAT status is let through (``ct status dnat return``): a published
port is open to anyone who can reach the host's address -- the outside world included --
so a container on another network may use it too (Docker with its userland proxy
behaves so); reaching the container's own address across networks stays dropped.

Every rule of a network or container carries a comment naming its owner,
``n:<network id[:12]>`` or ``c:<container id[:12]>``; removing an owner deletes exactly
its rules by handle. The ``isolation`` chain's rules have no owner: every script that
(re)creates the table flushes and rewrites them in the same atomic batch, and they go
with the table (``network_reset``).

Why DNAT for 127.0.0.1 and not a userland proxy: Nutshell has no daemon, so a proxy
would be one more process per published port to keep alive (and to copy every byte),
owned by no one once the client exits. With ``route_localnet`` on the bridge, a DNAT
in the output chain, and a masquerade of 127.0.0.0/8 leaving to the bridge, the kernel
does it: no process, and the ``guard`` chain keeps containers from abusing
``route_localnet`` to reach the host's loopback services.

We drive the ``nft`` command (one exec per change, a few ms) rather than a netlink
library: its batch input is atomic, and it is what users read in ``nft list ruleset``.
A host firewall in *another* table (iptables' FORWARD DROP under Docker) is handled by
``core/network/iptables.py``: an accept here cannot override a drop there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from core.errors import RuntimeFailure

CHAINS = (
    ("guard", "type filter hook prerouting priority -300; policy accept;"),
    ("prerouting", "type nat hook prerouting priority dstnat; policy accept;"),
    ("output", "type nat hook output priority -100; policy accept;"),
    ("postrouting", "type nat hook postrouting priority srcnat; policy accept;"),
    ("forward", "type filter hook forward priority 0; policy accept;"),
)

# Bridges by name: ours in every state root (store.bridge_name), and Docker's.
OUR_BRIDGES = ("nsbr-*", "nutshell0")
DOCKER_BRIDGES = ("docker0", "br-*")

# Stage 2 of the isolation (see the module docstring). Reached only for packets where
# one side is a bridge of ours and the other side is a different interface.
ISOLATION = (
    "ct status dnat return",
    "iifname {ours} oifname {ours} drop",
    'iifname {docker} meta iifkind "bridge" drop',
    'oifname {docker} meta oifkind "bridge" drop',
)

MISSING = ("nft not found: outbound NAT and published ports are disabled "
           "(container-to-container networking still works)")
MISSING_HINT = "install nftables (apt-get install nftables)"

_nft_path: list = []


def nft_binary() -> str | None:
    if not _nft_path:
        _nft_path.append(shutil.which("nft") or next(
            (p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p)), None))
    return _nft_path[0]


def _names(names: tuple[str, ...]) -> str:
    return "{ " + ", ".join(f'"{n}"' for n in names) + " }"


def isolation_rules() -> list[str]:
    return [r.format(ours=_names(OUR_BRIDGES), docker=_names(DOCKER_BRIDGES))
            for r in ISOLATION]


def network_tag(net_id: str) -> str:
    return "n:" + net_id[:12]


def container_tag(cid: str) -> str:
    return "c:" + cid[:12]


class Nft:
    def __init__(self, table: str):
        self.table = table
        self.binary = nft_binary()

    @property
    def available(self) -> bool:
        return self.binary is not None

    def run(self, script: str) -> None:
        if not self.binary:
            raise RuntimeFailure(MISSING, hint=MISSING_HINT)
        p = subprocess.run([self.binary, "-f", "-"], input=script.encode(), capture_output=True)
        if p.returncode != 0:
            err = p.stderr.decode(errors="replace").strip().splitlines()
            raise RuntimeFailure(f"nft: {err[0] if err else 'failed'}",
                                 hint=" ".join(err[1:3]) or None)

    def _table_script(self) -> str:
        """The table and its chains (idempotent), and the isolation chain's rules
        rewritten in the same batch: nft applies a batch atomically, so no packet ever
        sees the chain empty."""
        t = self.table
        lines = [f"add table ip {t}"]
        lines += [f"add chain ip {t} {name} {{ {spec} }}" for name, spec in CHAINS]
        lines += [f"add chain ip {t} isolation", f"flush chain ip {t} isolation"]
        lines += [f"add rule ip {t} isolation {rule}" for rule in isolation_rules()]
        return "\n".join(lines) + "\n"

    # --- networks -------------------------------------------------------------------------
    def add_network(self, net_id: str, bridge: str, subnet: str, internal: bool) -> None:
        t, c = self.table, network_tag(net_id)
        rules = [f'add rule ip {t} guard iifname "{bridge}" ip daddr 127.0.0.0/8 drop '
                 f'comment "{c}"']
        if internal:
            rules += [
                f'add rule ip {t} forward iifname "{bridge}" oifname != "{bridge}" drop '
                f'comment "{c}"',
                f'add rule ip {t} forward oifname "{bridge}" iifname != "{bridge}" drop '
                f'comment "{c}"',
            ]
        else:
            rules += [
                f'add rule ip {t} forward iifname "{bridge}" oifname != "{bridge}" '
                f'jump isolation comment "{c}"',
                f'add rule ip {t} forward oifname "{bridge}" iifname != "{bridge}" '
                f'jump isolation comment "{c}"',
                f'add rule ip {t} postrouting ip saddr {subnet} oifname != "{bridge}" '
                f'masquerade comment "{c}"',
            ]
        # the host reaching a published port via 127.0.0.1, and containers reaching one via
        # the host's address (hairpin): the reply must come back through us
        rules += [
            f'add rule ip {t} postrouting oifname "{bridge}" ip saddr 127.0.0.0/8 '
            f'masquerade comment "{c}"',
            f'add rule ip {t} postrouting ct status dnat iifname "{bridge}" '
            f'oifname "{bridge}" masquerade comment "{c}"',
        ]
        self.run(self._table_script() + "\n".join(rules) + "\n")

    # --- published ports ----------------------------------------------------------------
    def add_ports(self, cid: str, container_ip: str, ports: list[dict]) -> None:
        if not ports:
            return
        t, c = self.table, container_tag(cid)
        rules = []
        for p in ports:
            proto = p["Protocol"]
            match = "fib daddr type local"
            if p.get("HostIp") and p["HostIp"] != "0.0.0.0":
                match = f'ip daddr {p["HostIp"]}'
            target = f'dnat to {container_ip}:{p["ContainerPort"]}'
            for chain in ("prerouting", "output"):
                rules.append(f'add rule ip {t} {chain} {match} {proto} dport {p["HostPort"]} '
                             f'{target} comment "{c}"')
        self.run(self._table_script() + "\n".join(rules) + "\n")

    # --- removal ------------------------------------------------------------------------
    def listing(self) -> list[dict]:
        """Rules of our table: {chain, handle, comment, text-ish expr}; [] without table."""
        if not self.binary:
            return []
        p = subprocess.run([self.binary, "-j", "-a", "list", "table", "ip", self.table],
                           capture_output=True)
        if p.returncode != 0:
            return []
        out = []
        for item in json.loads(p.stdout or b"{}").get("nftables", []):
            rule = item.get("rule")
            if rule:
                out.append({"chain": rule["chain"], "handle": rule["handle"],
                            "comment": rule.get("comment", ""), "expr": rule.get("expr", [])})
        return out

    def delete_tagged(self, tag: str) -> int:
        """Delete every rule commented ``tag``; returns how many."""
        rules = [r for r in self.listing() if r["comment"] == tag]
        if rules:
            self.run("".join(f'delete rule ip {self.table} {r["chain"]} handle {r["handle"]}\n'
                             for r in rules))
        return len(rules)

    def delete_table(self) -> None:
        if self.binary:
            subprocess.run([self.binary, "delete", "table", "ip", self.table],
                           capture_output=True)

    def table_exists(self) -> bool:
        if not self.binary:
            return False
        return subprocess.run([self.binary, "list", "table", "ip", self.table],
                              capture_output=True).returncode == 0
