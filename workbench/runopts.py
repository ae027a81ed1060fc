"""The flags of ``run`` and ``create`` and how they become ``core`` RunOptions.

One definition for the CLI's ``run``/``create`` parsers (workbench/cli/containers.py) and
the app's run form (workbench/panes/images.py), so a form and the command line it shows
create the same container. Standard library only at the top: ``run`` is on the CLI's
fast path.
"""

from __future__ import annotations

import argparse


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage: one line, exit 125 like Docker."""

    def error(self, message: str):  # noqa: D401
        from core.errors import UsageError

        raise UsageError(message, hint=f"See '{self.prog} --help'.")

    def add_argument(self, *args, **kwargs):
        # argparse formats each new flag's metavar once, to refuse a bad one, with a
        # formatter that asks the terminal its width (and imports shutil): 50 of those
        # on every `run`. The check needs no width; printing help still asks.
        self._checking = True
        try:
            return super().add_argument(*args, **kwargs)
        finally:
            self._checking = False

    def add_subparsers(self, **kwargs):
        self._checking = True       # the same, for the sub-commands' prog ("nutshell")
        try:
            return super().add_subparsers(**kwargs)
        finally:
            self._checking = False

    def _get_formatter(self):
        if getattr(self, "_checking", False):
            return self.formatter_class(prog=self.prog, width=80)
        return super()._get_formatter()


def parse_bool(v: str) -> bool:
    """A BOOL flag value (``--sig-proxy=false``, ``commit -p=0``)."""
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {v!r}")


def add_env_flags(p) -> None:
    """``-e`` and ``--env-file``, as ``run``, ``create`` and ``exec`` take them."""
    p.add_argument("-e", "--env", action="append", default=[],
                   help="set an environment variable (KEY alone takes it from the environment)")
    p.add_argument("--env-file", action="append", default=[],
                   help="read environment variables from a file of KEY=VALUE lines")


def add_limit_flags(p, update: bool = False) -> None:
    """``-m``, ``--memory-swap``, ``--cpus`` and ``--pids-limit``: the resource limits
    ``run``/``create`` set and ``update`` changes (``update`` also lifts them: -1, 0)."""
    p.add_argument("-m", "--memory", help="memory limit, e.g. 512m (minimum 6m"
                                          + ("; -1: none)" if update else ")"))
    p.add_argument("--memory-swap",
                   help="memory plus swap limit (-1: unlimited swap; default: twice --memory)")
    p.add_argument("--cpus", type=float,
                   help="number of CPUs, e.g. 1.5" + (" (0: no limit)" if update else ""))
    p.add_argument("--pids-limit", type=int,
                   help="maximum number of processes (0 or -1: unlimited)")


def add_create_flags(p) -> None:
    """The flags ``run`` and ``create`` share, in the order ``--help`` lists them."""
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--name", help="assign a name to the container")
    add_env_flags(p)
    p.add_argument("-w", "--workdir", help="working directory inside the container (absolute)")
    p.add_argument("-u", "--user", help="user to run as: name or UID, optionally :group or GID")
    p.add_argument("-h", "--hostname",
                   help="container host name (default: the short ID; the host's with --network host)")
    p.add_argument("--entrypoint",
                   help='override the image\'s ENTRYPOINT (drops its CMD too; "" for none)')
    add_limit_flags(p)
    p.add_argument("--read-only", action="store_true",
                   help="mount the container's root file system read-only")
    p.add_argument("--cap-add", action="append", default=[],
                   help="add a Linux capability (ALL for every one)")
    p.add_argument("--cap-drop", action="append", default=[],
                   help="drop a Linux capability (ALL for every one)")
    p.add_argument("--privileged", action="store_true",
                   help="give the container every capability and host device, no seccomp "
                        "and no masked paths (root on the host: see docs/security.md)")
    p.add_argument("--security-opt", action="append", default=[], metavar="OPT",
                   help="seccomp=PROFILE.json|unconfined|builtin, no-new-privileges, "
                        "systempaths=unconfined, apparmor=unconfined, label=disable")
    p.add_argument("-l", "--label", action="append", default=[],
                   help="set a label on the container (KEY=VALUE)")
    p.add_argument("--stop-signal", help="signal that stops the container (default: the image's, "
                                         "else SIGTERM)")
    p.add_argument("--stop-timeout", type=int,
                   help="seconds stop waits before killing (-1: forever; default 10)")
    p.add_argument("--restart", metavar="POLICY",
                   help="no (default), always, unless-stopped or on-failure[:max-retries]: "
                        "start it again when it exits, unless stopped by the user")
    p.add_argument("--cidfile", help="write the container id to this file")
    p.add_argument("--pull", default="missing", choices=["missing", "always", "never"],
                   help="pull the image: missing (default), always, or never")
    p.add_argument("-q", "--quiet", action="store_true", help="no pull output")
    p.add_argument("--rootfs", action="store_true",
                   help="IMAGE is a directory used as the (read-only) root file system")
    p.add_argument("-v", "--volume", action="append", default=[], dest="volume",
                   help="NAME:/path[:ro], /host/dir:/path[:ro] or /path (anonymous volume)")
    p.add_argument("--mount", action="append", default=[],
                   help="type=bind|volume|tmpfs,source=...,target=...[,readonly]")
    p.add_argument("--tmpfs", action="append", default=[], help="/path[:options]")
    add_network_flags(p)


def add_run_flags(p) -> None:
    """Every flag and argument of ``run``: the create flags plus detach and signal proxying."""
    add_create_flags(p)
    p.add_argument("-d", "--detach", action="store_true", help="run in the background, print the id")
    p.add_argument("--detach-keys", help="override the detach keys (default ctrl-p,ctrl-q)")
    p.add_argument("--sig-proxy", type=parse_bool, default=True, metavar="BOOL",
                   help="proxy received signals to the container (non-TTY)")
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


def add_network_flags(parser) -> None:
    """Add the networking flags of ``run``/``create`` (any already defined are skipped)."""
    have = set(getattr(parser, "_option_string_actions", {}))

    def add(*flags, **kw):
        if not have.intersection(flags):
            parser.add_argument(*flags, **kw)

    add("--network", "--net", dest="network", action="append", default=None,
        metavar="NETWORK", help="bridge (default), a network name, none, host, container:ID")
    add("--network-alias", "--net-alias", dest="network_alias", action="append", default=[],
        metavar="ALIAS", help="a name other containers on the network resolve to this one")
    add("-p", "--publish", dest="publish", action="append", default=[],
        metavar="[IP:][HOSTPORT:]PORT[/PROTO]", help="publish a container port on the host")
    add("-P", "--publish-all", dest="publish_all", action="store_true",
        help="publish every exposed port on a random host port")
    add("--expose", dest="expose", action="append", default=[], metavar="PORT[/PROTO]",
        help="expose a port (for -P)")
    add("--dns", dest="dns", action="append", default=[], help="a nameserver for the container")
    add("--dns-search", dest="dns_search", action="append", default=None,
        help="a DNS search domain")
    add("--dns-option", "--dns-opt", dest="dns_option", action="append", default=None,
        help="a resolv.conf option")
    add("--add-host", dest="add_host", action="append", default=[], metavar="HOST:IP",
        help="an extra /etc/hosts line (IP may be host-gateway)")
    add("--ip", dest="ip", help="IPv4 address on the first network")


def network_kwargs(args, exposed: list[str] | None = None) -> dict:
    """``setup_container_network`` keyword arguments from parsed run/create flags.

    ``exposed``: the image's ExposedPorts keys; ``--expose`` values are added."""
    nets = getattr(args, "network", None) or ["bridge"]
    if isinstance(nets, str):
        nets = [nets]
    nets = ["bridge" if n == "default" else n for n in nets]
    return {
        "networks": nets,
        "aliases": list(getattr(args, "network_alias", None) or []),
        "ports": list(getattr(args, "publish", None) or []),
        "publish_all": bool(getattr(args, "publish_all", False)),
        "exposed": list(exposed or []) + list(getattr(args, "expose", None) or []),
        "dns": list(getattr(args, "dns", None) or []),
        "dns_search": getattr(args, "dns_search", None),
        "dns_options": getattr(args, "dns_option", None),
        "add_hosts": list(getattr(args, "add_host", None) or []),
        "ip": getattr(args, "ip", None),
    }


def run_options(args):
    """core RunOptions from parsed ``run``/``create`` flags."""
    from core.runtime.spec import RunOptions, parse_bytes

    nets = args.network or ["default"]
    if isinstance(nets, str):
        nets = [nets]
    net_kw = network_kwargs(args)
    net_kw["networks"] = nets
    labels = {}
    for item in args.label:
        k, _, v = item.partition("=")
        labels[k] = v
    entrypoint = None
    if args.entrypoint is not None:
        entrypoint = [args.entrypoint] if args.entrypoint else []
    return RunOptions(
        image="" if args.rootfs else args.image,
        rootfs=args.image if args.rootfs else None,
        command=list(args.command) or None, entrypoint=entrypoint, env=list(args.env),
        env_files=list(args.env_file), workdir=args.workdir, user=args.user,
        hostname=args.hostname, name=args.name, tty=args.tty, interactive=args.interactive,
        auto_remove=args.rm, memory=parse_bytes(args.memory, "memory"),
        memory_swap=parse_bytes(args.memory_swap, "memory-swap"), cpus=args.cpus,
        pids_limit=args.pids_limit, read_only=args.read_only, cap_add=list(args.cap_add),
        cap_drop=list(args.cap_drop), privileged=args.privileged,
        security_opt=list(args.security_opt), network=nets[0], network_options=net_kw, labels=labels,
        stop_signal=args.stop_signal, stop_timeout=args.stop_timeout, restart=args.restart,
        volumes=list(args.volume), mounts=list(args.mount), tmpfs=list(args.tmpfs))


def parse_run(argv: list[str]):
    """``(RunOptions, args)`` exactly as ``nutshell run ...`` builds them (``argv`` may start
    with ``run``). Bad flags raise a UsageError, as on the command line."""
    if argv[:1] == ["run"]:
        argv = argv[1:]
    p = ArgumentParser(prog="nutshell run", add_help=False)
    p.add_argument("--help", action="help", help="show this help message and exit")
    add_run_flags(p)
    args = p.parse_args(argv)
    return run_options(args), args
