"""CLI verbs for the registry area: pull, push, login, logout (and ``image pull|push``).

Progress is workbench/cli/progress.py's RegistryProgress, the display ``run``/``create``
also use when they pull a missing image; ``-q`` prints only the digest.
"""

from __future__ import annotations

import argparse
import re
import sys


def _tls_verify(value: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {value!r}")


# --- verbs --------------------------------------------------------------------------------
def cmd_pull(engine, args) -> int:
    from core.reference import parse

    from .progress import RegistryProgress

    ref = parse(args.image)  # fail early on a bad reference, before any output
    insecure = not args.tls_verify
    with RegistryProgress(sys.stdout, quiet=args.quiet) as pp:
        image = engine.pull(args.image, platform=args.platform, progress=pp, insecure=insecure)
    if args.quiet:
        print(pp.digest or image.manifest_digest)
    else:
        print(str(ref))
    return 0


def cmd_push(engine, args) -> int:
    from .progress import RegistryProgress

    insecure = not args.tls_verify
    chunk = None
    if args.chunk_size:
        chunk = _parse_size(args.chunk_size)
    with RegistryProgress(sys.stdout, quiet=args.quiet) as pp:
        digest = engine.push(args.image, args.destination, progress=pp, insecure=insecure,
                             chunk_size=chunk)
    if args.quiet:
        print(digest)
    return 0


def _parse_size(text: str) -> int:
    from core.errors import UsageError

    m = re.fullmatch(r"(\d+)\s*([kmg]?)i?b?", text.strip().lower())
    if not m:
        raise UsageError(f"invalid size {text!r}")
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2)]


def cmd_login(engine, args) -> int:
    from core.errors import UsageError

    username = args.username
    password = args.password
    if args.password_stdin:
        if password:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        if not username:
            raise UsageError("must provide --username with --password-stdin")
        password = sys.stdin.read()
        password = password[:-1] if password.endswith("\n") else password
        password = password[:-1] if password.endswith("\r") else password
    elif password:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    interactive = sys.stdin.isatty()
    if not username:
        if not interactive:
            raise UsageError("cannot perform an interactive login from a non-TTY device",
                             hint="use --username and --password-stdin")
        username = input("Username: ").strip()
    if not password:
        if not interactive:
            raise UsageError("cannot perform an interactive login from a non-TTY device",
                             hint="use --password-stdin")
        import getpass

        password = getpass.getpass("Password: ")
    res = engine.login(args.server, username, password, insecure=not args.tls_verify)
    print(res["Status"])
    return 0


def cmd_logout(engine, args) -> int:
    res = engine.logout(args.server)
    if res["Removed"]:
        print(f"Removing login credentials for {res['ServerAddress']}")
    else:
        print(f"Not logged in to {res['ServerAddress']}")
    return 0


def _add_pull(p) -> None:
    p.add_argument("image", metavar="NAME[:TAG|@DIGEST]")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                   help="pick this platform out of a multi-arch image (default: this host)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the digest")
    p.add_argument("--tls-verify", type=_tls_verify, nargs="?", const=True, default=True, metavar="BOOL",
                   help="require HTTPS and verify certificates (default true); "
                        "false also allows plain HTTP")
    p.set_defaults(func=cmd_pull)


def _add_push(p) -> None:
    p.add_argument("image", metavar="NAME[:TAG]")
    p.add_argument("destination", nargs="?", metavar="DEST",
                   help="push to this reference instead (default: NAME[:TAG])")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the manifest digest")
    p.add_argument("--tls-verify", type=_tls_verify, nargs="?", const=True, default=True, metavar="BOOL",
                   help="require HTTPS and verify certificates (default true)")
    p.add_argument("--chunk-size", metavar="SIZE",
                   help="upload blobs bigger than SIZE in PATCH chunks of SIZE (e.g. 8M)")
    p.set_defaults(func=cmd_push)


def register(sub, group) -> None:
    """Add this area's verbs to the parser. `group(name, help)` returns the subparsers of a
    Docker management command (`image`, `container`, `network`, `volume`, `system`)."""
    _add_pull(sub.add_parser("pull", help="download an image from a registry"))
    _add_push(sub.add_parser("push", help="upload an image to a registry"))
    images = group("image", "manage images")
    _add_pull(images.add_parser("pull", help="download an image from a registry"))
    _add_push(images.add_parser("push", help="upload an image to a registry"))

    p = sub.add_parser("login", help="log in to a registry")
    p.add_argument("server", nargs="?", metavar="SERVER", help="registry (default: docker.io)")
    p.add_argument("-u", "--username", help="user name")
    p.add_argument("-p", "--password", help="password (insecure: prefer --password-stdin)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--tls-verify", type=_tls_verify, nargs="?", const=True, default=True, metavar="BOOL",
                   help="require HTTPS and verify certificates (default true)")
    p.set_defaults(func=cmd_login)

    p = sub.add_parser("logout", help="log out from a registry")
    p.add_argument("server", nargs="?", metavar="SERVER", help="registry (default: docker.io)")
    p.set_defaults(func=cmd_logout)
