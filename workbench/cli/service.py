"""CLI verb ``system service``: serve the Docker Engine API (workbench/api, docs/api.md)."""

from __future__ import annotations


def register(sub, group) -> None:
    system = group("system", "Manage Nutshell")
    p = system.add_parser("service", help="Serve the Docker Engine API on a UNIX socket")
    p.add_argument("--socket", metavar="PATH",
                   help="the socket to listen on (default: api.sock in the runtime directory); "
                        "ignored when systemd passes one (LISTEN_FDS)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                   help="exit after this long without a request in flight (0: never; default 5)")
    p.add_argument("--group", metavar="GROUP",
                   help="group owner of the socket (mode 0660): its members are root on this host")
    p.add_argument("--log-requests", action="store_true", help="print each request on stderr")
    p.set_defaults(func=cmd_service)


def cmd_service(engine, args) -> int:
    from workbench.api.server import serve

    if args.timeout < 0:
        from core.errors import UsageError

        raise UsageError("--timeout must be 0 (never) or a number of seconds")
    return serve(engine, socket_path=args.socket, timeout=args.timeout, group=args.group,
                 verbose=args.log_requests)
