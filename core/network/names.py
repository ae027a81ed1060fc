"""Name resolution for containers: /etc/hosts and /etc/resolv.conf contents.

Containers on the same user-defined network find each other by name, by short id and by
``--network-alias`` through their /etc/hosts files, which we keep current: when a
container joins or leaves a network, every member's hosts file is rewritten. We chose
this over an embedded DNS server because Nutshell has no daemon: a DNS server would be a
process per network (or per container) that someone must start, keep alive and clean up
after, and that would listen on the gateway or inside each namespace. /etc/hosts needs
nothing running, is read on every lookup by glibc, musl and busybox (no cache), and is a
file the user can read -- good for teaching. The cost is O(members) small writes per
join/leave, and programs that cache lookups themselves can see stale entries. As with
Docker, the default ``bridge`` network has no name resolution between containers.

The runtime bind-mounts each container's hosts and resolv.conf files, so a rewrite must
keep the inode: :func:`write_in_place` opens with O_TRUNC and writes, never renames.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from core.errors import UsageError

TYPE_CHECKING = False   # typing is not imported at run time
if TYPE_CHECKING:
    from core.types import NetworkSettings

LOCALHOST = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)

HOST_GATEWAY = "host-gateway"


def _ip(text: str):
    """ipaddress.ip_address, imported when an address is checked (2 ms a `run` without
    --add-host need not pay)."""
    import ipaddress

    return ipaddress.ip_address(text)


def parse_add_host(spec: str) -> tuple[str, str]:
    """``--add-host NAME:IP`` (or ``NAME=IP``; IP may be ``host-gateway``) -> (name, ip)."""
    sep = "=" if "=" in spec else ":"
    name, _, ip = spec.partition(sep)
    ip = ip.strip("[]")
    if not name or not ip:
        raise UsageError(f"invalid --add-host {spec!r}", hint="expected NAME:IP")
    if ip != HOST_GATEWAY:
        try:
            _ip(ip)
        except ValueError:
            raise UsageError(f"invalid IP address in --add-host {spec!r}") from None
    return name, ip


def render_hosts(own: Sequence[tuple[str, list[str]]] = (),
                 peers: Sequence[tuple[str, list[str]]] = (),
                 extra: Sequence[tuple[str, str]] = (),
                 base: str = LOCALHOST) -> str:
    """The whole hosts file: localhost block, ``--add-host`` entries, the container's own
    addresses, then its peers on shared user networks (one line per address)."""
    lines = [base.rstrip("\n")] if base else []
    for name, ip in extra:
        lines.append(f"{ip}\t{name}")
    for ip, names in own:
        if names:
            lines.append(f"{ip}\t{' '.join(_unique(names))}")
    for ip, names in sorted(peers, key=lambda p: _ip(p[0])):
        if names:
            lines.append(f"{ip}\t{' '.join(_unique(names))}")
    return "\n".join(lines) + "\n"


def _unique(names: list[str]) -> list[str]:
    seen: list[str] = []
    for n in names:
        if n and n not in seen:
            seen.append(n)
    return seen


def _is_loopback(addr: str) -> bool:
    parts = addr.split(".")
    if len(parts) == 4 and all(
            p.isascii() and p.isdigit() and len(p) <= 3 and int(p) < 256
            and (p == "0" or p[0] != "0")
            for p in parts):
        return parts[0] == "127"    # the usual case without ipaddress (every run reads it)
    try:
        return _ip(addr.split("%")[0]).is_loopback
    except ValueError:
        return False


def host_resolv_text(path: str = "/etc/resolv.conf") -> str:
    """The host's resolv.conf; behind systemd-resolved's 127.0.0.53 stub, the upstream
    file it writes (as Docker does)."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return ""
    servers = [l.split()[1] for l in text.splitlines()
               if l.strip().startswith("nameserver") and len(l.split()) > 1]
    upstream = "/run/systemd/resolve/resolv.conf"
    if servers and all(_is_loopback(s) for s in servers) and os.path.exists(upstream):
        with open(upstream) as f:
            return f.read()
    return text


def render_resolv(host_text: str, dns: list[str] | None = None,
                  search: list[str] | None = None,
                  options: list[str] | None = None, keep_loopback: bool = False) -> str:
    """resolv.conf for a container with its own network namespace.

    Nameservers come from ``dns`` when given, else from the host without loopback ones
    (127.0.0.53 and friends mean nothing inside the container's namespace). With none
    left, no nameserver line is written and a comment says why. ``keep_loopback`` is for
    containers sharing the host's namespace, where the host's resolvers work as they are.
    """
    servers, host_search, host_options = [], [], []
    for line in host_text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith(("#", ";")):
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            servers.append(parts[1])
        elif parts[0] in ("search", "domain"):
            host_search = parts[1:]
        elif parts[0] == "options":
            host_options += parts[1:]
    for s in dns or []:
        try:
            _ip(s)
        except ValueError:
            raise UsageError(f"invalid --dns address {s!r}") from None
    if dns:
        servers = list(dns)
    else:
        servers = [s for s in servers if keep_loopback or not _is_loopback(s)]
        v4 = [s for s in servers if ":" not in s]
        if v4:  # no IPv6 inside our networks: v6 servers only if nothing else
            servers = v4
    search = host_search if search is None else [s for s in search if s != "."]
    options = host_options if options is None else options
    out = []
    if not servers:
        out.append("# no usable nameserver: the host has only loopback resolvers; use --dns")
    out += [f"nameserver {s}" for s in servers]
    if search:
        out.append("search " + " ".join(search))
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out) + "\n"


def write_in_place(path: str, content: str) -> None:
    """Replace the file's content keeping its inode (it may be bind-mounted into a
    container: a rename would leave the container reading the old file)."""
    data = content.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW,
                 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


# --- the modes without interfaces of ours: only the name files ----------------------------
def files_only_mode(networks: Sequence[str] | None) -> str | None:
    """``none``, ``host`` or ``container:<ref>`` when that is the container's network
    mode (the first of ``networks``), else None (a bridge or user network)."""
    mode = networks[0] if networks else ""
    return mode if mode in ("none", "host") or mode.startswith("container:") else None


def setup_files_only(container_dir: str, networks: Sequence[str], *, ports=None,
                     publish_all: bool = False, add_hosts: Sequence[str] | None = None,
                     dns: list[str] | None = None, dns_search: list[str] | None = None,
                     dns_options: list[str] | None = None, hosts_path: str | None = None,
                     resolv_path: str | None = None) -> NetworkSettings:
    """A container's network in a ``files_only_mode``: the flags checked, its hosts and
    resolv.conf written (into ``container_dir`` unless paths are given; none for
    ``container:``, which shares the other container's), and its NetworkSettings. Nothing
    of the network store or netlink is touched: ``run --network none`` stays light."""
    mode = networks[0]
    extra = [parse_add_host(h) for h in add_hosts or []]
    if len(networks) > 1:
        raise UsageError(f"--network {mode} cannot be combined with other networks")
    if (ports or publish_all) and mode != "host":
        raise UsageError(f"published ports need a bridge network, not {mode}")
    if os.path.isdir(container_dir):
        hosts_path = hosts_path or os.path.join(container_dir, "hosts")
        resolv_path = resolv_path or os.path.join(container_dir, "resolv.conf")
    if mode.startswith("container:"):
        hosts_path = resolv_path = None  # it shares the other container's files
    elif mode == "host":
        try:
            with open("/etc/hosts") as f:
                base = f.read()
        except FileNotFoundError:
            base = LOCALHOST
        # the host's namespace: its loopback resolvers work as they are
        host_resolv = ""
        try:
            with open("/etc/resolv.conf") as f:
                host_resolv = f.read()
        except FileNotFoundError:
            pass
        hosts = render_hosts(extra=extra, base=base)
        resolv = render_resolv(host_resolv, dns, dns_search, dns_options, keep_loopback=True)
    else:
        hosts = render_hosts(extra=extra)
        resolv = render_resolv(host_resolv_text(), dns, dns_search, dns_options)
    if hosts_path:
        write_in_place(hosts_path, hosts)
    if resolv_path:
        write_in_place(resolv_path, resolv)
    return {"Mode": mode, "SandboxKey": None, "NetnsName": None, "Networks": {},
            "Ports": {}, "PublishedPorts": [], "IPAddress": "", "Gateway": "",
            "MacAddress": "",
            "HostsPath": hosts_path, "ResolvConfPath": resolv_path, "Warnings": []}
