"""CLI verbs for the registry area: pull, push, login, logout (and ``image pull|push``).

Progress: on a terminal, rich bars, one per layer (``abc123def456  Downloading  ━━━━━  3.1/9.8 MB``);
otherwise one plain line per layer state change (``abc123def456: Pull complete``), like
``docker pull`` in a log; ``-q`` prints only the digest. The same callback serves
``run``/``create`` when they pull a missing image: see :func:`registry_progress`.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading

_LAYER_ID = re.compile(r"^[0-9a-f]{12}$")
# events that only move a bar
_MOVING = {"Downloading", "Pushing", "Extracting"}


def _tls_verify(value: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {value!r}")


def _header_line(ev) -> str | None:
    """Lines that are about the whole image, not a layer."""
    a = ev.action
    if a == "Pulling from":
        return f"{ev.id}: Pulling from {ev.message}"
    if a == "The push refers to repository":
        return f"The push refers to repository {ev.message}"
    if a in ("Digest", "Status"):
        return f"{a}: {ev.message}"
    if a == "Pushed manifest":
        return ev.message
    if a == "Unable to find image locally":
        return f"Unable to find image '{ev.id}' locally"
    return None


class RegistryProgress:
    """A ``progress=`` callback for pull/push; a context manager around the rich display.

    Thread-safe: pull and push report from worker threads.
    """

    def __init__(self, stream=None, quiet: bool = False, tty: bool | None = None):
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.tty = (hasattr(self.stream, "isatty") and self.stream.isatty()) if tty is None else tty
        self.digest: str | None = None
        self._lock = threading.Lock()
        self._rich = None
        self._tasks: dict[str, int] = {}
        self._last: dict[str, str] = {}
        self._after: list[str] = []   # summary lines printed below the bars at the end

    def __enter__(self) -> "RegistryProgress":
        if self.tty and not self.quiet:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            self._rich = Progress(
                TextColumn("{task.fields[sid]}"),
                TextColumn("{task.description:<22}"),
                BarColumn(bar_width=36),
                DownloadColumn(),
                console=Console(file=self.stream, highlight=False),
                transient=False,
                refresh_per_second=8,
            )
            self._rich.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
            for line in self._after:
                self._write(line)
            self._after.clear()

    def _write(self, line: str, err: bool = False) -> None:
        if self._rich is not None:
            self._rich.console.print(line, markup=False)
            return
        out = sys.stderr if err else self.stream
        out.write(line + "\n")
        out.flush()

    def __call__(self, ev) -> None:
        with self._lock:
            if ev.action == "Digest":
                self.digest = ev.message
            if ev.action == "Pushed manifest":
                self.digest = ev.detail.get("digest") or self.digest
            if self.quiet:
                if ev.action == "Warning":
                    sys.stderr.write(f"WARNING: {ev.message}\n")
                return
            header = _header_line(ev)
            if header is not None:
                if self._rich is not None and ev.action in ("Digest", "Status", "Pushed manifest"):
                    self._after.append(header)  # Docker prints these under the bars
                else:
                    self._write(header)
                return
            if ev.action == "Warning":
                self._write(f"WARNING: {ev.message}", err=True)
                return
            if self._rich is not None and _LAYER_ID.match(ev.id or ""):
                self._bar(ev)
                return
            if ev.action in _MOVING:
                return
            key = f"{ev.action}|{ev.message}"
            if self._last.get(ev.id) == key:
                return
            self._last[ev.id] = key
            line = f"{ev.id}: {ev.action}" if ev.id else ev.action
            if ev.message:
                line += f" {ev.message}"
            self._write(line)

    def _bar(self, ev) -> None:
        tid = self._tasks.get(ev.id)
        total = ev.total or None
        desc = ev.action + (f" {ev.message}" if ev.action == "Mounted from" and ev.message else "")
        if tid is None:
            tid = self._rich.add_task(desc, sid=ev.id, total=total, completed=ev.current)
            self._tasks[ev.id] = tid
        else:
            self._rich.update(tid, description=desc, completed=ev.current,
                              **({"total": total} if total else {}))
        if ev.action == "Retrying" and ev.message:
            self._rich.console.print(f"{ev.id}: {ev.message}", markup=False)


def registry_progress(stream=None, quiet: bool = False) -> RegistryProgress:
    """The progress display ``run``/``create`` use when they pull (write to stderr)."""
    return RegistryProgress(stream or sys.stderr, quiet=quiet)


# --- verbs --------------------------------------------------------------------------------
def cmd_pull(engine, args) -> int:
    from core.reference import parse

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
