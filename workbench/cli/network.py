"""CLI verbs for the network area: network create/ls/inspect/rm/connect/disconnect/prune,
port. The networking flags of run/create are in workbench/runopts.py with the others."""

from __future__ import annotations

import sys

from .output import add_inspect, add_prune_flags, print_inspected, print_listing


def register(sub, group) -> None:
    network = group("network", "Manage networks")

    p = network.add_parser("create", help="Create a network")
    p.add_argument("name")
    p.add_argument("--subnet", help="subnet in CIDR form, e.g. 10.90.0.0/24")
    p.add_argument("--gateway", help="gateway address (default: first of the subnet)")
    p.add_argument("--internal", action="store_true", help="no route out of the network")
    p.add_argument("-d", "--driver", default="bridge", help="only 'bridge'")
    p.add_argument("--label", action="append", default=[], help="KEY=VALUE")
    p.add_argument("-o", "--opt", action="append", default=[],
                   help="driver option; supported: com.docker.network.driver.mtu=N")
    p.set_defaults(func=cmd_create)

    for name in ("ls", "list"):
        p = network.add_parser(name, help="List networks")
        p.add_argument("-q", "--quiet", action="store_true", help="only show network IDs")
        p.add_argument("--no-trunc", action="store_true", help="do not truncate the IDs")
        p.add_argument("-f", "--filter", action="append", default=[], help="name=X, id=X, driver=X")
        p.add_argument("--format", help="json, table, or a {{.Field}} template")
        p.set_defaults(func=cmd_ls)

    add_inspect(network, "Show details of networks", cmd_inspect)

    for name in ("rm", "remove"):
        p = network.add_parser(name, help="Remove networks")
        p.add_argument("names", nargs="+")
        p.add_argument("-f", "--force", action="store_true", help="no error for missing networks")
        p.set_defaults(func=cmd_rm)

    p = network.add_parser("connect", help="Connect a running container to a network")
    p.add_argument("network")
    p.add_argument("container")
    p.add_argument("--alias", action="append", default=[], help="a network-scoped name")
    p.add_argument("--ip", help="IPv4 address to use")
    p.set_defaults(func=cmd_connect)

    p = network.add_parser("disconnect", help="Disconnect a container from a network")
    p.add_argument("network")
    p.add_argument("container")
    p.add_argument("-f", "--force", action="store_true",
                   help="also when the container no longer exists")
    p.set_defaults(func=cmd_disconnect)

    p = network.add_parser("prune", help="Remove all networks no container uses")
    add_prune_flags(p, filters=False)
    p.set_defaults(func=cmd_prune)

    container = group("container", "Manage containers")
    for s in (sub, container):
        p = s.add_parser("port", help="List port mappings of a container")
        p.add_argument("container")
        p.add_argument("private_port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")
        p.set_defaults(func=cmd_port)


# --- handlers ----------------------------------------------------------------------------
def _kv(items: list[str]) -> dict:
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def cmd_create(engine, args) -> int:
    from core.errors import UsageError

    opts = _kv(args.opt)
    mtu = opts.pop("com.docker.network.driver.mtu", None)
    if opts:
        raise UsageError(f"unsupported network option {next(iter(opts))!r}")
    try:
        mtu = int(mtu) if mtu else None
    except ValueError:
        raise UsageError(f"invalid MTU {mtu!r}") from None
    net = engine.network_create(args.name, subnet=args.subnet, gateway=args.gateway,
                                internal=args.internal, labels=_kv(args.label),
                                driver=args.driver, mtu=mtu)
    print(net["Id"])
    return 0


def _match(net: dict, filters: list[str]) -> bool:
    for f in filters:
        key, _, value = f.partition("=")
        if key == "name" and value not in net["Name"]:
            return False
        if key == "id" and not net["ID"].startswith(value):
            return False
        if key == "driver" and net["Driver"] != value:
            return False
        if key == "type":
            builtin = net["Name"] in ("bridge", "host", "none")
            if (value == "builtin") != builtin:
                return False
    return True


def cmd_ls(engine, args) -> int:
    nets = [n for n in engine.networks() if _match(n, args.filter)]
    if args.no_trunc:
        for n in nets:
            if n["Name"] not in ("host", "none"):
                n["ID"] = engine.network_inspect(n["Name"])["Id"]
    print_listing(nets, args.quiet, args.format, "ID",
                  [("NETWORK ID", "ID"), ("NAME", "Name"), ("DRIVER", "Driver"), ("SCOPE", "Scope")])
    return 0


def cmd_inspect(engine, args) -> int:
    return 125 if print_inspected(args.names, engine.network_inspect, args.format,
                                  "network {} not found") else 0


def cmd_rm(engine, args) -> int:
    from core.errors import NotFound, NutshellError

    rc = 0
    for name in args.names:
        try:
            print(engine.network_rm(name))
        except NotFound:
            if not args.force:
                sys.stderr.write(f"nutshell: network {name} not found\n")
                rc = 125
        except NutshellError as e:
            sys.stderr.write(f"nutshell: {e}\n")
            if e.hint:
                sys.stderr.write(f"{e.hint}\n")
            rc = e.exit_code
    return rc


def cmd_connect(engine, args) -> int:
    engine.network_connect(args.network, args.container, aliases=args.alias, ip=args.ip)
    return 0


def cmd_disconnect(engine, args) -> int:
    engine.network_disconnect(args.network, args.container, force=args.force)
    return 0


def cmd_prune(engine, args) -> int:
    from .output import confirm

    if not confirm("This will remove all custom networks not used by at least one container.",
                   args.force):
        return 0
    removed = engine.network_prune()
    if removed:
        print("Deleted Networks:")
        for name in removed:
            print(name)
    return 0


def cmd_port(engine, args) -> int:
    from core.errors import NotFound
    from core.network.ports import port_lines

    ports = engine.container_ports(args.container)
    lines = port_lines(ports, args.private_port)
    if args.private_port and not lines:
        raise NotFound(f"no public port '{args.private_port}' published for {args.container}")
    for line in lines:
        print(line)
    return 0
