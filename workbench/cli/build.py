"""CLI verbs for layers out: ``diff``, ``commit``, ``cp``, ``export`` (also as ``container
<verb>``) and ``volume create/ls/inspect/rm/prune``.

The ``build`` verb is NOT here: it belongs to the Dockerfile builder and lives in
workbench/cli/buildverb.py (registered as its own area in workbench/cli/__init__.py).
``run``/``create``'s ``-v/--volume``, ``--mount`` and ``--tmpfs`` flags are in
workbench/cli/containers.py with the other create flags.
"""

from __future__ import annotations

import json
import os
import sys

from workbench.format import human_size
from workbench.runopts import parse_bool

from .output import emit_formatted, print_table


def register(sub, group) -> None:
    container = group("container", "Manage containers")
    volume = group("volume", "Manage volumes")

    for s in (sub, container):
        p = s.add_parser("diff", help="Show the changes to a container's file system")
        p.add_argument("container")
        p.add_argument("--format", help="json for one {Path, Kind} object per line")
        p.set_defaults(func=cmd_diff)

        p = s.add_parser("commit", help="Create a new image from a container's changes")
        p.add_argument("-m", "--message", help="commit message")
        p.add_argument("-a", "--author", help='author (e.g. "Jane <jane@example.com>")')
        p.add_argument("-c", "--change", action="append", default=[],
                       help="apply a Dockerfile instruction (CMD, ENV, LABEL, ...)")
        p.add_argument("-p", "--pause", type=parse_bool, nargs="?", const=True, default=True,
                       metavar="BOOL", help="pause the container while committing (default true)")
        p.add_argument("--compression", default="gzip", choices=["gzip", "zstd", "none"],
                       help="layer compression (default gzip)")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        p.add_argument("container")
        p.add_argument("reference", nargs="?", help="REPOSITORY[:TAG] for the new image")
        p.set_defaults(func=cmd_commit)

        p = s.add_parser("cp", help="Copy files between a container and the host")
        p.add_argument("-a", "--archive", action="store_true", help="keep uid/gid")
        p.add_argument("-L", "--follow-link", action="store_true",
                       help="follow a symbolic link given as the source")
        p.add_argument("-q", "--quiet", action="store_true", help="no summary line")
        p.add_argument("src", help="CONTAINER:SRC_PATH, a host path, or - (a tar on stdin)")
        p.add_argument("dest", help="CONTAINER:DEST_PATH, a host path, or - (a tar on stdout)")
        p.set_defaults(func=cmd_cp)

        p = s.add_parser("export", help="Export a container's file system as a tar archive")
        p.add_argument("-o", "--output", help="write to a file instead of stdout")
        p.add_argument("container")
        p.set_defaults(func=cmd_export)

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

    p = volume.add_parser("inspect", help="Show details of volumes")
    p.add_argument("names", nargs="+")
    p.add_argument("-f", "--format", help="a {{.Field}} template")
    p.set_defaults(func=cmd_volume_inspect)

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


# ---------------------------------------------------------------- diff / commit

def cmd_diff(engine, args) -> int:
    changes = engine.container_diff(args.container)
    if args.format == "json":
        for c in changes:
            print(json.dumps(c))
        return 0
    letters = {0: "C", 1: "A", 2: "D"}
    for c in changes:
        print(f"{letters[c['Kind']]} {c['Path']}")
    return 0


def cmd_commit(engine, args) -> int:
    from .progress import ProgressPrinter

    with ProgressPrinter(quiet=args.quiet) as pp:
        img = engine.commit(args.container, args.reference, message=args.message,
                            author=args.author, changes=args.change, pause=args.pause,
                            compression=args.compression, progress=pp)
    print(img.id)
    return 0


# ---------------------------------------------------------------- cp

def _split(arg: str) -> tuple[str | None, str]:
    """Docker's splitCpArg: ``name:path`` is a container path unless the part before the
    colon looks like a local path (starts with / or ., or is a Windows-less plain path)."""
    if arg == "-" or arg.startswith(("/", ".")):
        return None, arg
    name, sep, path = arg.partition(":")
    if not sep:
        return None, arg
    return name, path


def cmd_cp(engine, args) -> int:
    from core.errors import UsageError

    src_c, src = _split(args.src)
    dst_c, dst = _split(args.dest)
    if src_c and dst_c:
        raise UsageError("copying between containers is not supported")
    if not src_c and not dst_c:
        raise UsageError("must specify at least one container source")
    if src_c and not src:
        raise UsageError("source path cannot be empty")
    if dst_c and not dst:
        raise UsageError("destination path cannot be empty")
    if src_c:
        if dst == "-":
            with engine.copy_from_container(src_c, src, args.follow_link) as tar:
                out = sys.stdout.buffer
                while True:
                    chunk = tar.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
                out.flush()
            return 0
        res = engine.copy_to_host(src_c, src, dst, archive=args.archive,
                                  follow_link=args.follow_link)
        if not args.quiet and sys.stderr.isatty():
            sys.stderr.write(f"Successfully copied {human_size(res['bytes'])} to {dst}\n")
        return 0
    if src == "-":
        if sys.stdin.isatty():
            raise UsageError("a tar archive is expected on stdin")
        engine.copy_to_container(dst_c, dst, sys.stdin.buffer, archive=args.archive)
        return 0
    res = engine.copy_to_container(dst_c, dst, src, archive=args.archive,
                                   follow_link=args.follow_link)
    if not args.quiet and sys.stderr.isatty():
        sys.stderr.write(f"Successfully copied {human_size(res['bytes'])} to {dst_c}:{dst}\n")
    return 0


# ---------------------------------------------------------------- export

def cmd_export(engine, args) -> int:
    from core.errors import UsageError

    if args.output:
        d = os.path.dirname(os.path.abspath(args.output))
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=".nutshell-export-", dir=d)
        try:
            with os.fdopen(fd, "wb") as f:
                engine.export_container(args.container, f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, args.output)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return 0
    if sys.stdout.isatty():
        raise UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    out = os.fdopen(os.dup(1), "wb")
    with out:
        engine.export_container(args.container, out)
    return 0


# ---------------------------------------------------------------- volumes

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
    if args.quiet:
        for v in vols:
            print(v["Name"])
        return 0
    rows = [{"Driver": v["Driver"], "Name": v["Name"], "Mountpoint": v["Mountpoint"],
             "Labels": ",".join(f"{k}={val}" for k, val in (v.get("Labels") or {}).items()),
             "Scope": v["Scope"], "CreatedAt": v["CreatedAt"]} for v in vols]
    if emit_formatted(args.format, rows):
        return 0
    print_table(["DRIVER", "VOLUME NAME"], [[r["Driver"], r["Name"]] for r in rows])
    return 0


def cmd_volume_inspect(engine, args) -> int:
    from .output import print_inspected

    missing = print_inspected(args.names, engine.volume_inspect, args.format)
    for m in missing:
        sys.stderr.write(f"nutshell: no such volume: {m}\n")
    return 1 if missing else 0


def cmd_volume_rm(engine, args) -> int:
    from core.errors import NutshellError

    code = 0
    for n in args.names:
        try:
            engine.volume_rm(n, force=args.force)
            print(n)
        except NutshellError as e:
            sys.stderr.write(f"nutshell: {e}\n")
            code = 1
    return code


def cmd_volume_prune(engine, args) -> int:
    from .output import confirm, print_pruned

    what = "all local volumes" if args.all else "anonymous local volumes"
    if not confirm(f"This will remove {what} not used by at least one container.", args.force):
        return 0
    res = engine.volume_prune(all=args.all, filters=_filters(args.filter) or None)
    print_pruned("Volumes", res["VolumesDeleted"], res["SpaceReclaimed"])
    return 0
