"""CLI verbs for images: images, image ls/inspect/history/rm/prune/tag/load/save/import,
history, tag, rmi, load, save, import, commit (also ``container commit``), inspect,
system df, system check, version."""

from __future__ import annotations

import json
import sys

from workbench.format import ago, human_size
from workbench.runopts import parse_bool

from .output import add_inspect, add_prune_flags, emit_formatted, print_listing, print_table, short_id


def register(sub, group) -> None:
    image = group("image", "Manage images")
    container = group("container", "Manage containers")
    system = group("system", "Manage Nutshell")

    for s, name in ((sub, "images"), (image, "ls"), (image, "list")):
        p = s.add_parser(name, help="List images")
        p.add_argument("reference", nargs="?", help="only images matching this repository[:tag]")
        p.add_argument("-a", "--all", action="store_true", help="show all images")
        p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
        p.add_argument("--digests", action="store_true", help="show digests")
        p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
        p.add_argument("-f", "--filter", action="append", default=[], help="dangling=true|false, reference=PATTERN")
        p.add_argument("--format", help="json, table, or a Go-template-like {{.Field}} string")
        p.set_defaults(func=cmd_images)

    for s, name in ((sub, "history"), (image, "history")):
        p = s.add_parser(name, help="Show the history of an image")
        p.add_argument("image")
        p.add_argument("-H", "--human", action="store_true", default=True,
                       help="sizes and dates for people (the default; -H=false is not "
                            "supported)")
        p.add_argument("--no-trunc", action="store_true",
                       help="do not truncate IDs and CREATED BY")
        p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
        p.add_argument("--format", help="json, table, or a {{.Field}} template")
        p.set_defaults(func=cmd_history)

    for s, name in ((sub, "tag"), (image, "tag")):
        p = s.add_parser(name, help="Create a tag TARGET that refers to SOURCE")
        p.add_argument("source")
        p.add_argument("target")
        p.set_defaults(func=cmd_tag)

    for s, name in ((sub, "rmi"), (image, "rm"), (image, "remove")):
        p = s.add_parser(name, help="Remove one or more images")
        p.add_argument("images", nargs="+")
        p.add_argument("-f", "--force", action="store_true",
                       help="also remove images with several tags or used by stopped containers")
        p.add_argument("--no-prune", action="store_true",
                       help="do not delete the layers no image uses any more")
        p.set_defaults(func=cmd_rmi)

    add_inspect(image, "Show details of images", cmd_image_inspect)

    p = add_inspect(sub, "Show details of containers or images", cmd_inspect)
    p.add_argument("--type", choices=["container", "image", "network", "volume"],
                   help="only look for objects of this type")
    p.add_argument("-s", "--size", action="store_true",
                   help="containers: add SizeRw and SizeRootFs (bytes written; with the image)")

    p = image.add_parser("prune", help="Remove unused images")
    p.add_argument("-a", "--all", action="store_true", help="all images without containers, not just dangling ones")
    add_prune_flags(p)
    p.set_defaults(func=cmd_image_prune)

    for s, name in ((sub, "load"), (image, "load")):
        p = s.add_parser(name, help="Load images from a docker-archive or OCI archive")
        p.add_argument("-i", "--input", help="read from a file instead of stdin")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        p.set_defaults(func=cmd_load)

    for s, name in ((sub, "save"), (image, "save")):
        p = s.add_parser(name, help="Save images to an archive")
        p.add_argument("images", nargs="+")
        p.add_argument("-o", "--output", help="write to a file instead of stdout")
        p.add_argument("--format", default="docker", choices=["docker", "oci", "docker-archive", "oci-archive"],
                       help="docker: docker-archive that is also an OCI layout (default); "
                            "oci: OCI layout only")
        p.set_defaults(func=cmd_save)

    for s, name in ((sub, "import"), (image, "import")):
        p = s.add_parser(name, help="Import a rootfs tarball or directory as an image")
        p.add_argument("source", help="a tarball, a directory, or - for stdin")
        p.add_argument("reference", nargs="?")
        p.add_argument("-c", "--change", action="append", default=[], help="Dockerfile instruction to apply")
        p.add_argument("-m", "--message", help="commit message")
        p.add_argument("--platform", help="os/arch[/variant]")
        p.set_defaults(func=cmd_import)

    p = system.add_parser("df", help="Show disk usage")
    p.add_argument("--format", help="json, table, or a {{.Field}} template")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show space usage per image, container and volume")
    p.set_defaults(func=cmd_df)

    p = system.add_parser("check", help="Check the store and optionally repair it")
    p.add_argument("--repair", action="store_true",
                   help="fix what can be fixed without losing an image or a container")
    p.add_argument("--quick", action="store_true",
                   help="skip hashing blobs and comparing layers with their blobs")
    p.add_argument("--format", help="json, or a {{.Field}} template per finding")
    p.set_defaults(func=cmd_system_check)

    for s, name in ((sub, "info"), (system, "info")):
        p = s.add_parser(name, help="Display system-wide information")
        p.add_argument("-f", "--format", help="json or a {{.Field}} template")
        p.set_defaults(func=cmd_info)

    for s, name in ((sub, "version"), (system, "version")):
        p = s.add_parser(name, help="Show version information")
        p.add_argument("-f", "--format", help="json, or a {{.Field}} template")
        p.set_defaults(func=cmd_version)

    for s in (sub, container):
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


# ---------------------------------------------------------------- helpers

def _progress(quiet: bool = False):
    from .progress import ProgressPrinter

    return ProgressPrinter(quiet=quiet)


def image_rows(imgs, no_trunc=False, digests=False) -> list[dict]:
    from core.reference import parse

    rows = []
    for img in imgs:
        tags = [parse(t) for t in img.repo_tags] or [None]
        digest_by_name = {rd.split("@")[0]: rd.split("@")[1] for rd in img.repo_digests}
        for r in tags:
            rows.append({
                "Containers": "N/A",
                "CreatedAt": img.created or "",
                "CreatedSince": ago(img.created),
                "Digest": digest_by_name.get(r.name, "<none>") if r else "<none>",
                "ID": img.id if no_trunc else img.short_id,
                "Repository": r.familiar_name if r else "<none>",
                "SharedSize": "N/A",
                "Size": human_size(img.size),
                "Tag": r.tag if r else "<none>",
                "UniqueSize": "N/A",
                "VirtualSize": human_size(img.size),
            })
    return rows


# ---------------------------------------------------------------- verbs

def cmd_images(engine, args) -> int:
    dangling = None
    ref = args.reference
    for f in args.filter:
        k, _, v = f.partition("=")
        if k == "dangling":
            dangling = v.lower() in ("true", "1", "yes")
        elif k == "reference":
            ref = v
        else:
            from core.errors import UsageError

            raise UsageError(f"invalid filter {k!r} (supported: dangling, reference)")
    imgs = engine.images(all=args.all, dangling=dangling, reference=ref)
    rows = image_rows(imgs, args.no_trunc, args.digests)
    columns = [("REPOSITORY", "Repository"), ("TAG", "Tag"), ("IMAGE ID", "ID"),
               ("CREATED", "CreatedSince"), ("SIZE", "Size")]
    if args.digests:
        columns.insert(2, ("DIGEST", "Digest"))
    print_listing(rows, args.quiet, args.format, "ID", columns, unique=True)
    return 0


def cmd_history(engine, args) -> int:
    rows = engine.history(args.image)
    items = []
    for r in rows:
        created_by = r["CreatedBy"]
        if not args.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        ident = r["Id"]
        if ident != "<missing>" and not args.no_trunc:
            ident = short_id(ident)
        items.append({"ID": ident, "CreatedAt": r["Created"] or "", "CreatedSince": ago(r["Created"]),
                      "CreatedBy": created_by, "Size": human_size(r["Size"]), "Comment": r["Comment"]})
    print_listing(items, args.quiet, args.format, "ID",
                  [("IMAGE", "ID"), ("CREATED", "CreatedSince"), ("CREATED BY", "CreatedBy"),
                   ("SIZE", "Size"), ("COMMENT", "Comment")])
    return 0


def cmd_tag(engine, args) -> int:
    engine.tag(args.source, args.target)
    return 0


def cmd_rmi(engine, args) -> int:
    from core.errors import NutshellError

    rc = 0
    for name in args.images:
        try:
            for line in engine.rmi([name], force=args.force, prune=not args.no_prune):
                k, v = next(iter(line.items()))
                print(f"{k}: {v}")
        except NutshellError as exc:
            sys.stderr.write(f"nutshell: {exc}\n")
            rc = exc.exit_code
    return rc


def cmd_image_inspect(engine, args) -> int:
    from .output import print_inspected

    return 125 if print_inspected(args.names, engine.image_inspect, args.format,
                                  "no such image: {}") else 0


def cmd_inspect(engine, args) -> int:
    """Generic inspect: containers first, then images (then networks, volumes)."""
    from core.errors import NotFound

    from .output import print_inspected

    kinds = [args.type] if args.type else ["container", "image", "network", "volume"]
    lookups = {
        "container": engine.container_inspect,
        "image": engine.image_inspect,
        "network": engine.network_inspect,
        "volume": engine.volume_inspect,
    }

    def find(name: str):
        for k in kinds:
            fn = lookups[k]
            try:
                obj = fn(name)
            except NotFound:
                continue
            obj = obj[0] if isinstance(obj, list) and len(obj) == 1 else obj
            if k == "container" and args.size:
                obj.update(engine.container_size(obj["Id"]))
            return obj
        raise NotFound(f"no such object: {name}")

    return 125 if print_inspected(args.names, find, args.format, "no such object: {}") else 0


def cmd_image_prune(engine, args) -> int:
    from .output import confirm, print_pruned

    warning = ("This will remove all images without at least one container associated to them."
               if args.all else "This will remove all dangling images.")
    if not confirm(warning, args.force):
        return 0
    res = engine.image_prune(all=args.all, filters=args.filter)
    deleted = []
    for line in res["ImagesDeleted"]:
        k, v = next(iter(line.items()))   # {"Untagged": ref} or {"Deleted": id}
        deleted.append(f"{k.lower()}: {v}")
    print_pruned("Images", deleted, res["SpaceReclaimed"])
    return 0


def cmd_load(engine, args) -> int:
    from core.errors import UsageError

    if args.input:
        src = args.input
    else:
        if sys.stdin.isatty():
            raise UsageError("requested load from stdin, but stdin is empty",
                             hint="use -i FILE or pipe an archive in")
        src = sys.stdin.buffer
    with _progress(quiet=args.quiet) as pp:
        res = engine.load(src, progress=pp)
    from core.reference import parse

    for t in res.tags:
        print(f"Loaded image: {parse(t).familiar()}")
    for i in res.untagged_ids:
        print(f"Loaded image ID: {i}")
    return 0


def cmd_save(engine, args) -> int:
    from core.errors import UsageError

    dest = args.output
    if not dest:
        if sys.stdout.isatty():
            raise UsageError("cowardly refusing to save to a terminal", hint="use -o FILE or redirect stdout")
        dest = "-"
        sys.stdout.flush()
    fmt = args.format
    with _progress(quiet=dest == "-") as pp:
        engine.save(args.images, dest, fmt, progress=pp)
    return 0


def cmd_commit(engine, args) -> int:
    with _progress(args.quiet) as pp:
        img = engine.commit(args.container, args.reference, message=args.message,
                            author=args.author, changes=args.change, pause=args.pause,
                            compression=args.compression, progress=pp)
    print(img.id)
    return 0


def cmd_import(engine, args) -> int:
    src = sys.stdin.buffer if args.source == "-" else args.source
    img = engine.import_image(src, args.reference, changes=args.change, message=args.message,
                              platform=args.platform)
    print(img.id)
    return 0


def _df_verbose(engine) -> int:
    """``system df -v``: Docker's four sections. An image's SHARED SIZE is the bytes of
    its layers that another stored image also has (each layer is stored once)."""
    from collections import Counter

    from core.reference import parse

    images = engine.images()
    layer_users = Counter(layer.chain_id for img in images for layer in img.layers)
    using = engine.store.containers_using()
    print("Images space usage:\n")
    rows = []
    for img in images:
        shared = sum(layer.size or 0 for layer in img.layers if layer_users[layer.chain_id] > 1)
        size = sum(layer.size or 0 for layer in img.layers)
        names = [(r.familiar_name, r.tag or "<none>") for r in map(parse, img.repo_tags)]
        for repo, tag in names or [("<none>", "<none>")]:
            rows.append([repo, tag, short_id(img.id), ago(img.created), human_size(size),
                         human_size(shared), human_size(size - shared),
                         len(using.get(img.id, []))])
    print_table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE",
                 "UNIQUE SIZE", "CONTAINERS"], rows)
    print("\nContainers space usage:\n")
    rows = []
    for c in engine.ps(all=True):
        try:
            size = human_size(engine.container_size(c["Id"])["SizeRw"])
            mounts = engine.container_inspect(c["Id"]).get("Mounts") or []
        except Exception:  # noqa: BLE001 - removed meanwhile
            continue
        vols = sum(1 for m in mounts if m.get("Type") == "volume")
        cmd = c["Command"] if len(c["Command"]) <= 20 else c["Command"][:19] + "…"
        rows.append([c["ID"], c["Image"] or "<none>", f'"{cmd}"', vols, size,
                     ago(c["Created"]), c["Status"], c["Names"]])
    print_table(["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED",
                 "STATUS", "NAMES"], rows)
    print("\nLocal Volumes space usage:\n")
    rows = []
    for v in engine.volumes():
        usage = engine.volume_inspect(v["Name"]).get("UsageData") or {}
        rows.append([v["Name"], usage.get("RefCount", 0), human_size(usage.get("Size", 0))])
    print_table(["VOLUME NAME", "LINKS", "SIZE"], rows)
    df = engine.system_df()
    print(f"\nBuild cache usage: {human_size(df['BuildCache']['Size'])}")
    left = df.get("Leftovers")
    if left and left["Total"]:
        print(f"\nInterrupted work (image prune removes it): {left['Total']} "
              f"left behind, {human_size(left['Size'])}")
    return 0


def cmd_df(engine, args) -> int:
    if args.verbose and not args.format:
        return _df_verbose(engine)
    df = engine.system_df()
    rows = []
    for label, key in (("Images", "Images"), ("Containers", "Containers"), ("Local Volumes", "Volumes"),
                       ("Build Cache", "BuildCache"), ("Interrupted Work", "Leftovers")):
        d = df.get(key)
        if d is None or key == "Leftovers" and not d["Total"]:
            continue        # Docker's four rows; the fifth only when a killed pull left something
        pct = f" ({100 * d['Reclaimable'] // d['Size']}%)" if d["Size"] else ""
        rows.append({"Type": label, "TotalCount": d["Total"], "Active": d["Active"],
                     "Size": human_size(d["Size"]), "Reclaimable": human_size(d["Reclaimable"]) + pct})
    if emit_formatted(args.format, rows):
        return 0
    print_table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
                [[r["Type"], r["TotalCount"], r["Active"], r["Size"], r["Reclaimable"]] for r in rows])
    return 0


def cmd_system_check(engine, args) -> int:
    """Findings as a table, then a summary; exit 0 when none remain, 1 when some do."""
    report = engine.system_check(repair=args.repair, quick=args.quick)
    if args.format == "json":
        print(json.dumps(report, indent=2))
        return 1 if report["Remaining"] else 0
    if emit_formatted(args.format, report["Findings"]):
        return 1 if report["Remaining"] else 0
    if report["Findings"]:
        print_table(["KIND", "OBJECT", "PROBLEM", "ACTION"],
                    [[f["Kind"], f["Object"], f["Problem"],
                      ("repaired: " if f["Repaired"] else "") + f["Action"]]
                     for f in report["Findings"]])
        print()
    c = report["Checked"]
    n = len(report["Findings"])
    summary = (f"Checked {c['Blobs']} blobs, {c['Images']} images, {c['Layers']} layers, "
               f"{c['Containers']} containers: ")
    if not n:
        print(summary + "no problems found.")
    else:
        print(summary + f"{n} problem{'s' if n != 1 else ''} found, {report['Repaired']} repaired"
              + (f", {report['Remaining']} remaining" + ("" if args.repair else " (--repair fixes "
                 "what it can)") if report["Remaining"] else "") + ".")
    return 1 if report["Remaining"] else 0


def _print_formatted(obj: dict, fmt: str | None) -> bool:
    """``--format json`` or a ``{{.Field}}`` template of one object; False without one."""
    if not fmt:
        return False
    if fmt == "json":
        print(json.dumps(obj))
    else:
        from .output import render_template

        print(render_template(fmt, obj))
    return True


def cmd_info(engine, args) -> int:
    i = engine.info()
    if _print_formatted(i, args.format):
        return 0
    print(f"""Containers: {i['Containers']}
 Running: {i['ContainersRunning']}
 Paused: {i['ContainersPaused']}
 Stopped: {i['ContainersStopped']}
Images: {i['Images']}
Version: {i['ServerVersion']}
Storage Driver: {i['Driver']}
Logging Driver: {i['LoggingDriver']}
Cgroup Driver: {i['CgroupDriver']}
Cgroup Version: {i['CgroupVersion']}
Runtime: {i['Runtime']}
NAT: {i['NetworkTool']}
Kernel Version: {i['KernelVersion']}
Operating System: {i['OperatingSystem']}
OSType: {i['OSType']}
Architecture: {i['Architecture']}
CPUs: {i['NCPU']}
Total Memory: {human_size(i['MemTotal'])}
Name: {i['Name']}
Root Dir: {i['DockerRootDir']}
Runtime Dir: {i['RuntimeDir']}
Python: {i['PythonVersion']}""")
    return 0


def cmd_version(engine, args) -> int:
    v = engine.version()
    if _print_formatted(v, args.format):
        return 0
    print("Nutshell:")
    for k in ("Version", "ApiVersion", "Os", "Arch", "KernelVersion", "PythonVersion", "Root", "RuntimeDir"):
        print(f" {k + ':':<16}{v[k]}")
    return 0
