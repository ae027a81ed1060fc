"""CLI verbs for a container's file system: ``diff``, ``cp``, ``export`` (also as
``container <verb>``). ``commit`` is with the image verbs (workbench/cli/images.py), the
volume verbs in workbench/cli/volumes.py.
"""

from __future__ import annotations

import json
import os
import sys

from workbench.format import human_size


def register(sub, group) -> None:
    container = group("container", "Manage containers")

    for s in (sub, container):
        p = s.add_parser("diff", help="Show the changes to a container's file system")
        p.add_argument("container")
        p.add_argument("--format", help="json for one {Path, Kind} object per line")
        p.set_defaults(func=cmd_diff)

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


# ---------------------------------------------------------------- diff

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
        return _copied(args, res, dst)
    if src == "-":
        if sys.stdin.isatty():
            raise UsageError("a tar archive is expected on stdin")
        engine.copy_to_container(dst_c, dst, sys.stdin.buffer, archive=args.archive)
        return 0
    res = engine.copy_to_container(dst_c, dst, src, archive=args.archive,
                                   follow_link=args.follow_link)
    return _copied(args, res, f"{dst_c}:{dst}")


def _copied(args, res: dict, dest: str) -> int:
    """Docker's summary line, on a terminal only and not with -q."""
    if not args.quiet and sys.stderr.isatty():
        sys.stderr.write(f"Successfully copied {human_size(res['bytes'])} to {dest}\n")
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
