"""IP address management: subnets for networks, addresses for endpoints.

A network's allocations are its endpoints: an address is taken exactly when some
endpoint in ``$ROOT/networks/<name>.json`` holds it (plus the gateway). Callers mutate
that file only under the networks lock (core.network.store), so two processes can never
hand out the same address. Allocation is serial (next free address after the last one
handed out, wrapping) like Docker's, so a freed address is not reused at once: a new
container does not inherit a just-removed one's ARP and conntrack entries.

Subnets for new networks are chosen so they do not overlap any IPv4 route or address on
the host, nor any network this root already has.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

from core.errors import Conflict, UsageError

IPv4Network = ipaddress.IPv4Network
IPv4Address = ipaddress.IPv4Address


def candidate_subnets() -> Iterator[IPv4Network]:
    """Where new networks go, in order: 10.88-10.99/16, 172.17-31/16, 192.168.x.0/20."""
    for b in range(88, 100):
        yield IPv4Network(f"10.{b}.0.0/16")
    for b in range(17, 32):
        yield IPv4Network(f"172.{b}.0.0/16")
    for c in range(0, 256, 16):
        yield IPv4Network(f"192.168.{c}.0/20")


def choose_subnet(in_use: Iterable[IPv4Network],
                  candidates: Iterable[IPv4Network] | None = None) -> IPv4Network:
    """The first candidate overlapping none of ``in_use`` (routes, addresses, networks)."""
    taken = [n for n in in_use if n.prefixlen > 0]  # a default route overlaps everything
    for cand in candidates if candidates is not None else candidate_subnets():
        if not any(cand.overlaps(n) for n in taken):
            return cand
    raise Conflict("no free private subnet for a new network",
                   hint="pass one with --subnet, or remove unused networks (network prune)")


def parse_subnet(text: str) -> IPv4Network:
    try:
        net = IPv4Network(text, strict=False)
    except ValueError:
        raise UsageError(f"invalid subnet {text!r}", hint="expected CIDR, e.g. 10.90.0.0/24") from None
    if str(net.network_address) != text.split("/")[0]:
        raise UsageError(f"invalid subnet {text}: host bits are set",
                         hint=f"did you mean {net}?")
    if net.prefixlen > 30:
        raise UsageError(f"subnet {net} is too small", hint="use a /30 or larger")
    return net


def default_gateway(subnet: IPv4Network) -> IPv4Address:
    return subnet.network_address + 1


def _address(text: str, what: str) -> IPv4Address:
    try:
        return IPv4Address(text)
    except ValueError:
        raise UsageError(f"invalid {what} {text!r}") from None


def _host_of(addr: IPv4Address, subnet: IPv4Network) -> bool:
    """May a host have ``addr`` in ``subnet`` (in it, and not its network or broadcast
    address)?"""
    return addr in subnet and addr not in (subnet.network_address, subnet.broadcast_address)


def parse_gateway(text: str, subnet: IPv4Network) -> IPv4Address:
    gw = _address(text, "gateway")
    if not _host_of(gw, subnet):
        raise UsageError(f"gateway {gw} is not a usable address of {subnet}")
    return gw


def taken(net: dict) -> set[str]:
    """Addresses of the network no one else may get: gateway and every endpoint's."""
    used = {net["Gateway"]}
    for ep in net.get("Endpoints", {}).values():
        used.add(ep["IPv4Address"])
    return used


def allocate(net: dict, requested: str | None = None) -> str:
    """Pick an address in ``net`` (mutates its ``LastIP``; caller holds the lock and
    stores the endpoint that owns the address in the same write)."""
    subnet = IPv4Network(net["Subnet"])
    used = taken(net)
    if requested:
        addr = _address(requested, "IP address")
        if not _host_of(addr, subnet):
            raise UsageError(f"address {addr} is not in network {net['Name']} ({subnet})")
        if str(addr) in used:
            raise Conflict(f"address {addr} is already in use on network {net['Name']}")
        return str(addr)
    first = int(subnet.network_address) + 1
    last = int(subnet.broadcast_address) - 1
    size = last - first + 1
    start = int(IPv4Address(net.get("LastIP") or net["Gateway"]))
    if not first <= start <= last:
        start = first
    for step in range(1, size + 1):
        cand = first + (start - first + step) % size
        text = str(IPv4Address(cand))
        if text not in used:
            net["LastIP"] = text
            return text
    raise Conflict(f"no free address left in network {net['Name']} ({subnet})",
                   hint="remove containers from it, or create a network with a larger --subnet")


def mac_for(ip: str) -> str:
    """A stable, locally administered MAC derived from the address (Docker's 02:42:...)."""
    a, b, c, d = IPv4Address(ip).packed
    return f"02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}"
