"""CLI verbs for volumes: ``volume create/ls/inspect/rm/prune``.

``run``/``create``'s ``-v/--volume``, ``--mount`` and ``--tmpfs`` flags are in
workbench/runopts.py with the other create flags.
"""

from __future__ import annotations

from .output import add_inspect, each, print_inspected, print_listing


def register(sub, group) -> None:
    volume = group("volume", "Manage volumes")

    p = volume.add_parser("create", help="Create a volume")
    p.add_argument("name", nargs="?")
    p.add_argument("--label", "-l", action="append", default=[], help="key=value")
    p.add_argument("-d", "--driver", default="local", help="only 'local'")
    p.add_argument("-o", "--opt", action="append", default=[], help="(local driver options are not supported)")
    p.set_defaults(func=cmd_volume_create)

    for name in ("ls", "list"):
        p = volume.add_parser(name, help="List volumes")
        p.add_argument("-q", "--quiet", action="store_true", help="only names")
        p.add_argument("-f", "--filter", action="append", default=[],
                       help="dangling=true|false, name=, label=")
        p.add_argument("--format", help="json, or a {{.Field}} template")
        p.set_defaults(func=cmd_volume_ls)

    add_inspect(volume, "Show details of volumes", cmd_volume_inspect)

    for name in ("rm", "remove"):
        p = volume.add_parser(name, help="Remove volumes (refused while a container uses them)")
        p.add_argument("-f", "--force", action="store_true", help="no error for a missing volume")
        p.add_argument("names", nargs="+")
        p.set_defaults(func=cmd_volume_rm)

    p = volume.add_parser("prune", help="Remove unused anonymous volumes (-a: all unused)")
    p.add_argument("-a", "--all", action="store_true", help="named volumes too")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt")
    p.add_argument("--filter", action="append", default=[], help="label=")
    p.set_defaults(func=cmd_volume_prune)


def _filters(items: list[str]) -> dict:
    out = {}
    for f in items:
        k, _, v = f.partition("=")
        out[k.strip()] = v.strip()
    return out


def cmd_volume_create(engine, args) -> int:
    from core.errors import UsageError

    labels = {}
    for item in args.label:
        k, _, v = item.partition("=")
        labels[k] = v
    if args.opt:
        raise UsageError("volume options (-o) are not supported by the local driver here")
    v = engine.volume_create(args.name, labels=labels, driver=args.driver)
    print(v["Name"])
    return 0


def cmd_volume_ls(engine, args) -> int:
    vols = engine.volumes(_filters(args.filter) or None)
    rows = [{"Driver": v["Driver"], "Name": v["Name"], "Mountpoint": v["Mountpoint"],
             "Labels": ",".join(f"{k}={val}" for k, val in (v.get("Labels") or {}).items()),
             "Scope": v["Scope"], "CreatedAt": v["CreatedAt"]} for v in vols]
    print_listing(rows, args.quiet, args.format, "Name", [("DRIVER", "Driver"), ("VOLUME NAME", "Name")])
    return 0


def cmd_volume_inspect(engine, args) -> int:
    return 1 if print_inspected(args.names, engine.volume_inspect, args.format,
                                "no such volume: {}") else 0


def cmd_volume_rm(engine, args) -> int:
    return each(args.names, lambda n: engine.volume_rm(n, force=args.force))


def cmd_volume_prune(engine, args) -> int:
    from .output import confirm, print_pruned

    what = "all local volumes" if args.all else "anonymous local volumes"
    if not confirm(f"This will remove {what} not used by at least one container.", args.force):
        return 0
    res = engine.volume_prune(all=args.all, filters=_filters(args.filter) or None)
    print_pruned("Volumes", res["VolumesDeleted"], res["SpaceReclaimed"])
    return 0
