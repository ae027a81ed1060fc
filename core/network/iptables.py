"""Accept rules for our bridges in iptables' FORWARD chain, on hosts whose FORWARD drops.

Why: a packet is forwarded only if *every* base chain at the forward hook lets it
through. Where dockerd runs, iptables' ``filter`` table has ``FORWARD`` policy DROP (and
br_netfilter is loaded, so with ``net.bridge.bridge-nf-call-iptables=1`` even traffic
between two ports of one bridge passes FORWARD). An accept in our nft table cannot
override that drop: containers of a user network could not reach each other nor the
outside. So, like Podman's netavark (``NETAVARK_FORWARD``), we add a chain of our own::

    -A FORWARD -m comment --comment "nutshell networks" -j NUTSHELL-FORWARD  (inserted first)
    -A NUTSHELL-FORWARD -i BR -j ACCEPT                                  from our bridge
    -A NUTSHELL-FORWARD -o BR -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    -A NUTSHELL-FORWARD -o BR -m conntrack --ctstate DNAT -j ACCEPT      published ports
    -A NUTSHELL-FORWARD -i BR -o BR -j ACCEPT                            --internal: only this

Every rule is commented ``nutshell n:<network id[:12]>``. Nothing else on the host is
accepted: traffic not involving our bridges falls through our chain (RETURN) to the
host's rules and policy. Isolation is not weakened either: it is enforced by drops in
our nft table (core/network/nat.py), which still see every packet these rules accept.

When: only if a backend has a filter table whose FORWARD chain can drop (policy not
ACCEPT, or any rule in it). A host without iptables, or with an empty ACCEPT chain,
gets nothing, and no iptables binary is needed. The check runs when a network's bridge
is made and at every container set-up (``ensure``: one ``iptables -S`` per backend,
~1-2 ms, and nothing more when all is in place), so rules lost to a firewall reload or
a Docker installed after our networks are put back by the next container start.
The chain is shared by every state root on the host (iptables has no per-root tables);
a rule leaves with its network (``remove``), the chain and its jump with the last rule.
Changes are serialised by a host-wide lock.

Which backend: both, each through its own binary. iptables-nft keeps its rules in nft's
``table ip filter`` and marks it "managed by iptables-nft, do not touch": rules written
there with ``nft`` may use expressions iptables-nft cannot read back, which breaks
``iptables -S`` and the ``iptables`` calls dockerd itself makes. iptables-legacy's
xtables are invisible to ``nft`` altogether. So we run ``iptables-nft`` for the first
(found by ``iptables-nft -S``, which creates nothing) and ``iptables-legacy`` for the
second (only when ``/proc/net/ip_tables_names`` lists ``filter``: listing through the
legacy binary would instantiate the table), or ``iptables`` when its ``-V`` names the
backend. Docker uses whichever ``iptables`` points to; we serve both should both drop.

When dockerd restarts it re-creates its own chains and re-inserts its jumps at the top
of FORWARD; it does not flush FORWARD nor touch other chains, so ours survives behind
Docker's (whose chains RETURN for bridges that are not Docker's). A firewall reload that
flushes FORWARD removes our jump until the next container start or network creation.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess

from core.errors import RuntimeFailure

CHAIN = "NUTSHELL-FORWARD"
JUMP = ["-m", "comment", "--comment", "nutshell networks", "-j", CHAIN]
LOCK_NAME = "nutshell-iptables.lock"
HINT = "check the host's firewall (iptables -S FORWARD) or run with --network host"


def tag(net_id: str) -> str:
    return "nutshell n:" + net_id[:12]


def network_rules(net_id: str, bridge: str, internal: bool) -> list[list[str]]:
    """Our rules for one network, as ``iptables -S`` prints them after ``-A CHAIN``."""
    c = ["-m", "comment", "--comment", tag(net_id)]
    if internal:  # its nft rules keep it on its bridge; only that must be let through
        return [["-i", bridge, "-o", bridge, *c, "-j", "ACCEPT"]]
    return [
        ["-i", bridge, *c, "-j", "ACCEPT"],
        ["-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", *c,
         "-j", "ACCEPT"],
        ["-o", bridge, "-m", "conntrack", "--ctstate", "DNAT", *c, "-j", "ACCEPT"],
    ]


class Ruleset:
    """The filter table as ``iptables -S`` shows it."""

    def __init__(self, text: str):
        self.policies: dict[str, str] = {}
        self.chains: set[str] = set()
        self.rules: dict[str, list[list[str]]] = {}
        for line in text.splitlines():
            args = shlex.split(line)
            if len(args) >= 3 and args[0] == "-P":
                self.policies[args[1]] = args[2]
            elif len(args) >= 2 and args[0] == "-N":
                self.chains.add(args[1])
            elif len(args) >= 2 and args[0] == "-A":
                self.rules.setdefault(args[1], []).append(args[2:])

    @property
    def forward_can_drop(self) -> bool:
        return self.policies.get("FORWARD", "ACCEPT") != "ACCEPT" or bool(
            self.rules.get("FORWARD"))

    def jumps(self) -> list[list[str]]:
        return [r for r in self.rules.get("FORWARD", []) if r[-2:] == ["-j", CHAIN]]

    def tagged(self, net_id: str) -> list[list[str]]:
        t = tag(net_id)
        return [r for r in self.rules.get(CHAIN, []) if t in r]


class Backend:
    """One iptables backend and the binary that speaks to it."""

    def __init__(self, name: str, binary: str):
        self.name = name  # "nft" or "legacy"
        self.binary = binary

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, {self.binary!r})"

    def _run(self, args: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, "-w", "10", "-t", "filter", *args],
                              capture_output=True, text=True)

    def run(self, *args: str) -> None:
        p = self._run(list(args))
        if p.returncode != 0:
            err = (p.stderr.strip().splitlines() or ["failed"])[0]
            raise RuntimeFailure(f"{os.path.basename(self.binary)}: {err}", hint=HINT)

    def ruleset(self) -> Ruleset | None:
        """The filter table, or None when it cannot be read (not ours to manage)."""
        p = self._run(["-S"])
        return Ruleset(p.stdout) if p.returncode == 0 else None


_binaries: dict[str, str | None] = {}


def _binary(backend: str) -> str | None:
    """``iptables-nft`` / ``iptables-legacy``, or ``iptables`` when it is that backend."""
    if backend not in _binaries:
        path = shutil.which(f"iptables-{backend}")
        if path is None:
            plain = shutil.which("iptables")
            if plain is not None:
                with contextlib.suppress(OSError):
                    v = subprocess.run([plain, "-V"], capture_output=True, text=True).stdout
                    if ("nf_tables" in v) == (backend == "nft"):
                        path = plain
        _binaries[backend] = path
    return _binaries[backend]


def _legacy_filter_table() -> bool:
    """xtables' filter table exists in this network namespace (reading the list creates
    nothing; ``iptables-legacy -S`` would instantiate the table)."""
    try:
        with open("/proc/net/ip_tables_names") as f:
            return "filter" in f.read().split()
    except OSError:
        return False


def backends() -> list[Backend]:
    """The backends worth looking at here; [] (and no exec) without iptables."""
    out = []
    nft = _binary("nft")
    if nft:
        out.append(Backend("nft", nft))
    legacy = _binary("legacy")
    if legacy and _legacy_filter_table():
        out.append(Backend("legacy", legacy))
    return out


@contextlib.contextmanager
def _host_lock():
    import fcntl

    base = "/run/lock" if os.access("/run/lock", os.W_OK) else "/tmp"
    fd = os.open(os.path.join(base, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure(networks: list[tuple[str, str, bool]]) -> list[str]:
    """Make sure each ``(network id, bridge, internal)`` has its accept rules in every
    backend whose FORWARD can drop. Returns the names of the backends it changed."""
    changed = []
    for b in backends():
        rs = b.ruleset()
        if rs is None or not (rs.forward_can_drop or CHAIN in rs.chains):
            continue
        if CHAIN in rs.chains and rs.jumps() and all(
                rs.tagged(i) == network_rules(i, br, internal) for i, br, internal in networks):
            continue  # the usual case: one `-S`, nothing to do
        with _host_lock():
            rs = b.ruleset()
            if rs is None:
                continue
            if CHAIN not in rs.chains:
                b.run("-N", CHAIN)
            for net_id, bridge, internal in networks:
                want = network_rules(net_id, bridge, internal)
                have = rs.tagged(net_id)
                if have == want:
                    continue
                for rule in have:
                    b.run("-D", CHAIN, *rule)
                for rule in want:
                    b.run("-A", CHAIN, *rule)
            if not rs.jumps():
                b.run("-I", "FORWARD", "1", *JUMP)
        changed.append(b.name)
    return changed


def remove(net_id: str) -> list[str]:
    """Delete the network's rules from every backend; with the chain's last rule, the
    chain and its jump. Returns the names of the backends it changed."""
    changed = []
    for b in backends():
        rs = b.ruleset()
        if rs is None or CHAIN not in rs.chains:
            continue
        with _host_lock():
            rs = b.ruleset()
            if rs is None or CHAIN not in rs.chains:
                continue
            mine = rs.tagged(net_id)
            for rule in mine:
                b.run("-D", CHAIN, *rule)
            if len(rs.rules.get(CHAIN, [])) == len(mine):
                for jump in rs.jumps():
                    b.run("-D", "FORWARD", *jump)
                b.run("-X", CHAIN)
            elif not mine:
                continue
        changed.append(b.name)
    return changed
