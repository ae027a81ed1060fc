"""Published ports: parsing ``-p``/``-P``, choosing host ports, formatting for ``ps``/``port``.

A published port is a dict::

    {"HostIp": "0.0.0.0", "HostPort": 18080, "ContainerPort": 80, "Protocol": "tcp"}
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from core.errors import Conflict, UsageError

PROTOCOLS = ("tcp", "udp")


def _port(text: str, spec: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise UsageError(f"invalid port {text!r} in {spec!r}") from None
    if not 1 <= n <= 65535:
        raise UsageError(f"port {n} out of range in {spec!r}")
    return n


def _range(text: str, spec: str) -> list[int]:
    lo, sep, hi = text.partition("-")
    a = _port(lo, spec)
    b = _port(hi, spec) if sep else a
    if b < a:
        raise UsageError(f"invalid port range {text!r} in {spec!r}")
    return list(range(a, b + 1))


def parse_publish(spec: str) -> list[dict]:
    """``[ip:][hostport:]containerport[/proto]``; ranges ``8000-8001:80-81`` allowed.

    A missing host port (``80``, ``127.0.0.1::80``) is 0: chosen at set-up.
    """
    body, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise UsageError(f"invalid protocol {proto!r} in {spec!r}", hint="use tcp or udp")
    if body.startswith("["):
        raise UsageError(f"IPv6 host addresses are not supported: {spec!r}")
    parts = body.split(":")
    if len(parts) == 1:
        host_ip, host, cont = "0.0.0.0", "", parts[0]
    elif len(parts) == 2:
        host_ip, host, cont = "0.0.0.0", parts[0], parts[1]
    elif len(parts) == 3:
        host_ip, host, cont = parts[0] or "0.0.0.0", parts[1], parts[2]
    else:
        raise UsageError(f"invalid port specification {spec!r}",
                         hint="expected [ip:][hostport:]containerport[/tcp|udp]")
    try:
        ipaddress.IPv4Address(host_ip)
    except ValueError:
        raise UsageError(f"invalid host IP {host_ip!r} in {spec!r}") from None
    cports = _range(cont, spec)
    hports = _range(host, spec) if host else [0] * len(cports)
    if len(hports) != len(cports):
        raise UsageError(f"host and container port ranges differ in size in {spec!r}")
    return [{"HostIp": host_ip, "HostPort": h, "ContainerPort": c, "Protocol": proto}
            for h, c in zip(hports, cports)]


def parse_exposed(spec: str) -> tuple[int, str]:
    """``80``, ``80/tcp`` (image ExposedPorts keys, ``--expose``) -> (80, "tcp")."""
    port, _, proto = str(spec).partition("/")
    return _port(port, spec), (proto or "tcp").lower()


def publish_all(exposed: list[str]) -> list[dict]:
    """``-P``: every exposed port to a host port chosen at set-up, on all addresses."""
    out = []
    for e in exposed or []:
        port, proto = parse_exposed(e)
        if proto in PROTOCOLS:
            out.append({"HostIp": "0.0.0.0", "HostPort": 0, "ContainerPort": port,
                        "Protocol": proto})
    return out


def _overlap(a: dict, b: dict) -> bool:
    """Same protocol and host port, on the same address or one of them on all."""
    return (a["Protocol"] == b["Protocol"] and a["HostPort"] == b["HostPort"]
            and (a["HostIp"] == b["HostIp"] or "0.0.0.0" in (a["HostIp"], b["HostIp"])))


def _bindable(ip: str, port: int, proto: str) -> bool:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC)
    try:
        s.bind((ip, port))
        return True
    except OSError as e:
        if e.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        if e.errno == errno.EADDRNOTAVAIL:
            raise UsageError(f"host address {ip} is not an address of this host") from None
        raise
    finally:
        s.close()


def _ephemeral(ip: str, proto: str) -> int:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC)
    try:
        s.bind((ip, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def assign(ports: list[dict], published_elsewhere: list[dict]) -> list[dict]:
    """Fill in chosen host ports and refuse ones already taken (by another container of
    this store, or by a socket on the host). Returns new dicts."""
    out: list[dict] = []
    for p in ports:
        p = dict(p)
        if not p["HostPort"]:
            for _ in range(50):
                cand = dict(p, HostPort=_ephemeral(p["HostIp"], p["Protocol"]))
                if not any(_overlap(cand, o) for o in published_elsewhere + out):
                    p = cand
                    break
            else:
                raise Conflict("could not find a free host port")
        else:
            if any(_overlap(p, o) for o in published_elsewhere + out):
                raise Conflict(f"bind for {p['HostIp']}:{p['HostPort']} failed: port is already "
                               f"allocated")
            if not _bindable(p["HostIp"], p["HostPort"], p["Protocol"]):
                raise Conflict(f"bind for {p['HostIp']}:{p['HostPort']}/{p['Protocol']} failed: "
                               f"port is already in use on the host")
        out.append(p)
    return out


def format_ports(ports: list[dict] | None, exposed: list[str] | None = None) -> str:
    """The PORTS column of ``ps``: ``0.0.0.0:18080->80/tcp, 443/tcp``."""
    items = []
    published = set()
    for p in sorted(ports or [], key=lambda p: (p["ContainerPort"], p["Protocol"], p["HostIp"])):
        items.append(f"{p['HostIp']}:{p['HostPort']}->{p['ContainerPort']}/{p['Protocol']}")
        published.add((p["ContainerPort"], p["Protocol"]))
    for e in sorted(exposed or []):
        try:
            port, proto = parse_exposed(e)
        except UsageError:
            continue
        if (port, proto) not in published:
            items.append(f"{port}/{proto}")
    return ", ".join(items)


def port_lines(ports: list[dict] | None, query: str | None = None) -> list[str]:
    """What the ``port`` verb prints: all mappings, or the host side of one port."""
    if query:
        port, proto = parse_exposed(query)
        return [f"{p['HostIp']}:{p['HostPort']}" for p in ports or []
                if p["ContainerPort"] == port and p["Protocol"] == proto]
    return [f"{p['ContainerPort']}/{p['Protocol']} -> {p['HostIp']}:{p['HostPort']}"
            for p in sorted(ports or [], key=lambda p: (p["ContainerPort"], p["Protocol"]))]
