"""CLI verbs for containers: run, create, start, stop, kill, restart, rm, wait, logs, exec,
attach, top, rename, ps, stats, and the ``container <verb>`` forms (ls, inspect, prune...).

Docker's flags, output columns and exit codes: ``run`` returns the container's exit
code, or 125 (engine error), 126 (cannot invoke), 127 (command not found). Verbs that
take several containers go on after a failure, print one line per failure and return 1,
as Docker does. Only the standard library is imported at the top: ``run`` is on the
fast path.
"""

from __future__ import annotations

import argparse
import os
import sys

from workbench.format import ago, cpu_percent, human_size, parse_time, ports_column
from workbench.runopts import (
    add_create_flags,
    add_env_flags,
    add_limit_flags,
    add_run_flags,
    parse_bool,
    run_options,
)

from .output import add_inspect, add_prune_flags, each, emit_formatted, print_table, render_template


def register(sub, group) -> None:
    container = group("container", "Manage containers")

    def both(name: str, help: str, func, containers: str | None = None, aliases_top=(),
             aliases_group=(), add_help=True):
        """The parsers of ``name`` and its aliases, as a verb and under ``container``, each
        calling ``func``; ``containers`` is the nargs of a ``containers`` positional."""
        parsers = []
        for s, names in ((sub, (name, *aliases_top)), (container, (name, *aliases_group))):
            for n in names:
                p = s.add_parser(n, help=help, add_help=add_help)
                if not add_help:  # -h is --hostname, as in Docker
                    p.add_argument("--help", action="help", help="show this help message and exit")
                if containers:
                    p.add_argument("containers", nargs=containers)
                p.set_defaults(func=func)
                parsers.append(p)
        return parsers

    def stop_timeout(p) -> None:
        p.add_argument("-t", "--time", "--timeout", dest="time", type=int, default=None,
                       help="seconds to wait before killing (default: the container's "
                            "--stop-timeout, else 10)")

    for p in both("run", "Create and run a new container from an image", cmd_run, add_help=False):
        add_run_flags(p)

    for p in both("create", "Create a new container", cmd_create, add_help=False):
        add_create_flags(p)
        p.add_argument("image")
        p.add_argument("command", nargs=argparse.REMAINDER)

    for p in both("start", "Start one or more stopped containers", cmd_start, "+"):
        p.add_argument("-a", "--attach", action="store_true", help="attach stdout/stderr")
        p.add_argument("-i", "--interactive", action="store_true", help="attach stdin")
        p.add_argument("--detach-keys",
                       help="override the detach keys with -a or -i (default ctrl-p,ctrl-q)")

    for p in both("stop", "Stop one or more running containers", cmd_stop, "+"):
        stop_timeout(p)
        p.add_argument("-s", "--signal", help="signal to send (default: the image's StopSignal)")

    for p in both("restart", "Restart one or more containers", cmd_restart, "+"):
        stop_timeout(p)

    for p in both("update", "Update the resource limits of one or more containers", cmd_update, "+"):
        add_limit_flags(p, update=True)

    both("pause", "Pause all processes within one or more containers", cmd_pause, "+")
    both("unpause", "Unpause all processes within one or more containers", cmd_unpause, "+")

    for p in both("kill", "Kill one or more running containers", cmd_kill, "+"):
        p.add_argument("-s", "--signal", default="KILL", help="signal to send (default KILL)")

    for p in both("rm", "Remove one or more containers", cmd_rm, "+", aliases_group=("remove",)):
        p.add_argument("-f", "--force", action="store_true", help="kill a running container first")
        p.add_argument("-v", "--volumes", action="store_true",
                       help="remove the container's anonymous volumes too")

    both("wait", "Block until containers stop, print their exit codes", cmd_wait, "+")

    for p in both("logs", "Fetch the logs of a container", cmd_logs):
        p.add_argument("-f", "--follow", action="store_true", help="follow the log output")
        p.add_argument("-n", "--tail", default="all", help="lines from the end (default all)")
        p.add_argument("-t", "--timestamps", action="store_true",
                       help="prefix each line with its timestamp")
        p.add_argument("--since", help="RFC 3339, unix time, or a duration like 10m")
        p.add_argument("--until", help="only logs before this time (same forms as --since)")
        p.add_argument("--details", action="store_true", help="(accepted for compatibility)")
        p.add_argument("container")

    for p in both("exec", "Run a command in a running container", cmd_exec):
        p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
        p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
        p.add_argument("-d", "--detach", action="store_true",
                       help="run the command in the background")
        add_env_flags(p)
        p.add_argument("-u", "--user", help="user to run as: name or UID, optionally :group or GID")
        p.add_argument("-w", "--workdir", help="working directory (an absolute path)")
        p.add_argument("--privileged", action="store_true",
                       help="give the command every capability")
        p.add_argument("--detach-keys", help="accepted for Docker compatibility; ignored")
        p.add_argument("container")
        p.add_argument("command", nargs=argparse.REMAINDER)

    for p in both("attach", "Attach to a running container's input and output", cmd_attach):
        p.add_argument("--no-stdin", action="store_true", help="do not attach stdin")
        p.add_argument("--sig-proxy", type=parse_bool, default=True, metavar="BOOL",
                       help="proxy received signals to the container (non-TTY)")
        p.add_argument("--detach-keys", help="override the detach keys (default ctrl-p,ctrl-q)")
        p.add_argument("container")

    for p in both("top", "Show the processes of a container", cmd_top):
        p.add_argument("container")
        p.add_argument("ps_args", nargs=argparse.REMAINDER,
                       help="arguments for the host's ps (as docker top); its rows are kept "
                            "for the container's processes")

    for p in both("rename", "Rename a container", cmd_rename):
        p.add_argument("container")
        p.add_argument("new_name")

    for p in both("ps", "List containers", cmd_ps, aliases_group=("ls", "list")):
        p.add_argument("-a", "--all", action="store_true",
                       help="show all containers (default: running ones)")
        p.add_argument("-q", "--quiet", action="store_true", help="only show container IDs")
        p.add_argument("-l", "--latest", action="store_true",
                       help="show only the latest created container (any state)")
        p.add_argument("-n", "--last", type=int, default=-1,
                       help="show the N latest created containers (any state)")
        p.add_argument("--no-trunc", action="store_true", help="do not truncate IDs and commands")
        p.add_argument("-s", "--size", action="store_true",
                       help="display total file sizes: written by the container (virtual: "
                            "with its image)")
        p.add_argument("-f", "--filter", action="append", default=[],
                       help="status=, name=, id=, label=, ancestor=, exited=")
        p.add_argument("--format", help="json, table, or a {{.Field}} template")

    for p in both("stats", "Live resource usage of containers", cmd_stats, "*"):
        p.add_argument("-a", "--all", action="store_true",
                       help="all containers (default: running ones)")
        p.add_argument("--no-stream", action="store_true",
                       help="print one sample and exit")
        p.add_argument("--no-trunc", action="store_true", help="do not truncate container IDs")
        p.add_argument("--format", help="json, table, or a {{.Field}} template")

    p = add_inspect(container, "Show details of containers", cmd_inspect, objects="containers")
    p.add_argument("-s", "--size", action="store_true",
                   help="add SizeRw and SizeRootFs (bytes written; with the image)")

    p = container.add_parser("prune", help="Remove all stopped containers")
    add_prune_flags(p)
    p.set_defaults(func=cmd_prune)


def _exit1(fn):
    """Docker's exit code for an engine error in a verb other than run/create: 1.

    (``run``/``create`` keep 125; 126/127 from a command that cannot run are kept.)"""
    import functools

    @functools.wraps(fn)
    def wrapper(engine, args):
        from core.errors import CannotInvoke, CommandNotFound, NutshellError

        try:
            return fn(engine, args)
        except (CannotInvoke, CommandNotFound):
            raise
        except NutshellError as e:
            if e.exit_code != 125:
                raise
            sys.stderr.write(f"nutshell: {e}\n")
            if e.hint:
                sys.stderr.write(f"{e.hint}\n")
            return 1

    return wrapper





# ---------------------------------------------------------------- run / create / start

def _create(engine, args) -> str:
    from core.runtime.containers import ImageMissing

    opts = run_options(args)
    if args.cidfile and os.path.exists(args.cidfile):
        from core.errors import UsageError

        raise UsageError(f"container ID file found, make sure the other container isn't "
                         f"running or delete {args.cidfile}")
    if args.pull == "always" and not args.rootfs:
        _pull(engine, args, "always")
    try:
        cid = engine.create(opts)
    except ImageMissing:
        if args.pull == "never":
            raise
        _pull(engine, args, "missing")
        cid = engine.create(opts)
    if args.cidfile:
        with open(args.cidfile, "w") as f:
            f.write(cid)
    return cid


def _pull(engine, args, policy: str) -> None:
    from .progress import RegistryProgress

    with RegistryProgress(sys.stderr, quiet=args.quiet) as pp:
        engine.ensure_image(args.image, policy=policy, progress=pp)


def _term_size() -> tuple[int, int]:
    for fd in (0, 1, 2):
        try:
            sz = os.get_terminal_size(fd)
            return sz.lines, sz.columns
        except OSError:
            continue
    return 24, 80


def cmd_create(engine, args) -> int:
    print(_create(engine, args))
    return 0


def _detach_keys(spec: str | None) -> bytes:
    """--detach-keys as bytes; a bad value is a usage error (exit 125), not a crash."""
    from core.errors import UsageError
    from core.runtime.attach import parse_detach_keys

    try:
        return parse_detach_keys(spec)
    except ValueError as e:
        raise UsageError(str(e)) from None


def cmd_run(engine, args) -> int:
    if args.tty and args.interactive and not args.detach and not sys.stdin.isatty():
        sys.stderr.write("nutshell: the input device is not a TTY\n")
        return 1
    keys = _detach_keys(args.detach_keys)
    cid = _create(engine, args)
    rows, cols = _term_size() if args.tty else (24, 80)
    if args.detach:
        engine.start(cid, rows=rows, cols=cols)
        print(cid)
        return 0
    _cid, client = engine.start(cid, attach=True, rows=rows, cols=cols)
    code = pump_attach(engine, cid, client, tty=args.tty, stdin=args.interactive,
                       detach_keys=keys, sig_proxy=args.sig_proxy and not args.tty)
    if code is None:  # detached
        return 0
    return code


@_exit1
def cmd_start(engine, args) -> int:
    if args.attach or args.interactive:
        if len(args.containers) > 1:
            sys.stderr.write("nutshell: you cannot start and attach multiple containers at once\n")
            return 1
        keys = _detach_keys(args.detach_keys)
        st = engine.container_inspect(args.containers[0])
        tty = bool(st["Config"].get("Tty"))
        rows, cols = _term_size() if tty else (24, 80)
        cid, client = engine.start(args.containers[0], attach=True, rows=rows, cols=cols)
        code = pump_attach(engine, cid, client, tty=tty,
                           stdin=args.interactive and bool(st["Config"].get("OpenStdin")),
                           detach_keys=keys, sig_proxy=not tty)
        return 0 if code is None else code
    return each(args.containers, lambda r: (engine.start(r), r)[1])


# ---------------------------------------------------------------- the terminal pump

def _make_raw(fd: int | None):
    """Put the terminal ``fd`` in raw mode; returns what :func:`_restore_terminal` needs
    to undo it (None when ``fd`` is not a terminal)."""
    if fd is None or not os.isatty(fd):
        return None
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    return saved


def _read(fd: int, size: int) -> bytes:
    """``os.read``, an error counting as the end of the input."""
    try:
        return os.read(fd, size)
    except OSError:
        return b""


def _restore_terminal(saved) -> None:
    if saved is not None:
        import termios

        termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)


def pump_attach(engine, cid: str, client, tty: bool, stdin: bool, detach_keys: bytes,
                sig_proxy: bool = False) -> int | None:
    """Copy between our terminal and an AttachClient until the container exits (its code)
    or the user detaches (None)."""
    import _signal as signal  # not signal.py: its enums cost ~1 ms of every `run`
    import select

    from core.runtime.attach import DetachDetector

    in_fd = sys.stdin.fileno() if stdin else None
    out = sys.stdout.buffer
    err = sys.stderr.buffer
    detector = DetachDetector(detach_keys)
    saved_tc = None
    old_handlers = {}

    def on_winch(_sig, _frm):
        r, c = _term_size()
        client.resize(r, c)

    def on_signal(sig, _frm):
        try:
            engine.kill(cid, sig)
        except Exception:  # noqa: BLE001
            pass

    try:
        if tty:
            saved_tc = _make_raw(in_fd)
            old_handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, on_winch)
            client.resize(*_term_size())
        if sig_proxy:
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                      signal.SIGUSR1, signal.SIGUSR2):
                old_handlers[s] = signal.signal(s, on_signal)
        poller = select.poll()
        poller.register(client.fileno(), select.POLLIN)
        if in_fd is not None:
            poller.register(in_fd, select.POLLIN)
        while True:
            for fd, _ev in poller.poll():
                if fd == client.fileno():
                    item = client.read()
                    if item is None:  # the shim went away: ask the engine what happened
                        try:
                            return engine.wait(cid)
                        except Exception:  # noqa: BLE001
                            return 125
                    kind, data = item
                    if kind == 1:
                        out.write(data)
                        out.flush()
                    elif kind == 2:
                        err.write(data)
                        err.flush()
                    elif kind == 3:
                        return client.exit_code
                elif fd == in_fd:
                    data = _read(in_fd, 32768)
                    if not data:
                        poller.unregister(in_fd)
                        in_fd = None
                        if not tty:
                            client.close_stdin()
                        continue
                    data, detach = detector.feed(data)
                    if data:
                        client.write(data)
                    if detach:
                        return None
    finally:
        client.close()
        for s, h in old_handlers.items():
            signal.signal(s, h)
        _restore_terminal(saved_tc)


def pump_exec(proc, tty: bool, stdin: bool) -> int:
    """Copy between our terminal and an exec'd process (PTY master or pipes)."""
    import select
    import signal

    saved_tc = None
    in_fd = sys.stdin.fileno() if stdin else None
    old = None
    try:
        if tty:
            saved_tc = _make_raw(in_fd)
            old = signal.signal(signal.SIGWINCH, lambda *_: proc.resize(*_term_size()))
            proc.resize(*_term_size())
            outputs = {proc.master_fd: sys.stdout.buffer}
            stdin_target = proc.master_fd
        else:
            outputs = {proc.stdout_fd: sys.stdout.buffer, proc.stderr_fd: sys.stderr.buffer}
            stdin_target = proc.stdin_fd
        poller = select.poll()
        for fd in outputs:
            poller.register(fd, select.POLLIN)
        if in_fd is not None and stdin_target is not None:
            poller.register(in_fd, select.POLLIN)
        else:
            in_fd = None
        while outputs:
            for fd, _ev in poller.poll():
                if fd in outputs:
                    data = _read(fd, 65536)
                    if not data:
                        poller.unregister(fd)
                        del outputs[fd]
                        continue
                    outputs[fd].write(data)
                    outputs[fd].flush()
                elif fd == in_fd:
                    data = os.read(in_fd, 32768)
                    if not data:
                        poller.unregister(in_fd)
                        in_fd = None
                        if not tty and proc.stdin_fd is not None:
                            os.close(proc.stdin_fd)
                            proc.stdin_fd = None
                        continue
                    try:
                        os.write(stdin_target, data)
                    except OSError:
                        pass
        return proc.wait()
    finally:
        if old is not None:
            signal.signal(signal.SIGWINCH, old)
        _restore_terminal(saved_tc)
        proc.close()


# ---------------------------------------------------------------- multi-container verbs

def cmd_stop(engine, args) -> int:
    return each(args.containers, lambda r: (engine.stop(r, timeout=args.time, signal=args.signal), r)[1])


def cmd_restart(engine, args) -> int:
    return each(args.containers, lambda r: (engine.restart(r, timeout=args.time), r)[1])


def cmd_kill(engine, args) -> int:
    return each(args.containers, lambda r: (engine.kill(r, args.signal), r)[1])


def cmd_update(engine, args) -> int:
    from core.runtime.spec import parse_bytes

    memory = parse_bytes(args.memory, "memory")
    swap = parse_bytes(args.memory_swap, "memory-swap")

    def one(ref):
        _cid, warnings = engine.update(ref, memory=memory, memory_swap=swap, cpus=args.cpus,
                                       pids_limit=args.pids_limit)
        for w in warnings:
            sys.stderr.write(f"WARNING: {w}\n")
        return ref

    return each(args.containers, one)


def cmd_pause(engine, args) -> int:
    return each(args.containers, lambda r: (engine.pause(r), r)[1])


def cmd_unpause(engine, args) -> int:
    return each(args.containers, lambda r: (engine.unpause(r), r)[1])


def cmd_rm(engine, args) -> int:
    return each(args.containers,
                 lambda r: (engine.rm(r, force=args.force, volumes=args.volumes), r)[1])


def cmd_wait(engine, args) -> int:
    return each(args.containers, lambda r: engine.wait(r))


@_exit1
def cmd_rename(engine, args) -> int:
    engine.rename(args.container, args.new_name)
    return 0


@_exit1
def cmd_logs(engine, args) -> int:
    from core.errors import UsageError

    tail = None
    if args.tail not in ("all", "", None):
        try:
            tail = int(args.tail)
        except ValueError:
            raise UsageError(f"invalid value for --tail: {args.tail!r}") from None
        if tail < 0:
            tail = None
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for entry in engine.logs(args.container, follow=args.follow, tail=tail, since=args.since,
                             until=args.until):
        target = err if entry.stream == "stderr" else out
        if args.timestamps:
            target.write(entry.time.encode() + b" ")
        target.write(entry.data)
        if args.follow:
            target.flush()
    return 0


@_exit1
def cmd_exec(engine, args) -> int:
    from core.runtime.spec import parse_env_file

    if not args.command:
        from core.errors import UsageError

        raise UsageError("exec requires at least 2 arguments: a container and a command")
    if args.tty and args.interactive and not args.detach and not sys.stdin.isatty():
        sys.stderr.write("nutshell: the input device is not a TTY\n")
        return 1
    env = []
    for f in args.env_file:
        env += parse_env_file(f)
    env += args.env
    rows, cols = _term_size() if args.tty else (24, 80)
    proc = engine.exec(args.container, list(args.command), tty=args.tty,
                       interactive=args.interactive, env=env, user=args.user,
                       workdir=args.workdir, detach=args.detach, rows=rows, cols=cols,
                       privileged=args.privileged)
    if args.detach:
        proc.close()
        return 0
    return pump_exec(proc, tty=args.tty, stdin=args.interactive)


@_exit1
def cmd_attach(engine, args) -> int:
    keys = _detach_keys(args.detach_keys)  # before attaching: a bad value leaves nothing open
    client = engine.attach(args.container)
    tty = bool(client.hello.get("tty"))
    stdin = not args.no_stdin and bool(client.hello.get("stdin"))
    if tty and stdin and not sys.stdin.isatty():
        client.close()
        sys.stderr.write("nutshell: the input device is not a TTY\n")
        return 1
    cid = engine.container(args.container)
    code = pump_attach(engine, cid, client, tty=tty, stdin=stdin,
                       detach_keys=keys, sig_proxy=args.sig_proxy and not tty)
    return 0 if code is None else code


@_exit1
def cmd_top(engine, args) -> int:
    res = engine.top(args.container, " ".join(args.ps_args) or None)
    print_table(res["Titles"], res["Processes"])
    return 0


def _print_json(objs) -> None:
    import json

    sys.stdout.write(json.dumps(objs, indent=4) + "\n")


def cmd_inspect(engine, args) -> int:
    from core.errors import NotFound

    objs, failed = [], False
    for ref in args.containers:
        try:
            obj = engine.container_inspect(ref)
            if args.size:
                obj.update(engine.container_size(obj["Id"]))
            objs.append(obj)
        except NotFound as e:
            sys.stderr.write(f"nutshell: {e}\n")
            failed = True
    if args.format:
        for o in objs:
            print(render_template(args.format, o))
    else:
        _print_json(objs)
    return 1 if failed else 0


@_exit1
def cmd_prune(engine, args) -> int:
    from .output import confirm, print_pruned

    if not confirm("This will remove all stopped containers.", args.force):
        return 0
    res = engine.container_prune(filters=args.filter)
    print_pruned("Containers", res["ContainersDeleted"], res["SpaceReclaimed"])
    return 0


# ---------------------------------------------------------------- ps

def _ps_filter(items: list[dict], filters: list[str]) -> list[dict]:
    from core.errors import UsageError

    out = items
    for f in filters:
        k, sep, v = f.partition("=")
        if not sep:
            raise UsageError(f"bad format of filter (expected name=value): {f}")
        if k == "status":
            out = [i for i in out if i["State"] == v]
        elif k == "name":
            out = [i for i in out if v in i["Names"]]
        elif k == "id":
            out = [i for i in out if i["Id"].startswith(v)]
        elif k == "label":
            lk, _, lv = v.partition("=")
            out = [i for i in out if lk in i["Labels"] and (not lv or i["Labels"][lk] == lv)]
        elif k == "ancestor":
            out = [i for i in out if i["Image"] == v or i["ImageID"].startswith(v)
                   or i["ImageID"].split(":")[-1].startswith(v)]
        elif k == "exited":
            out = [i for i in out if i["State"] == "exited" and str(i["ExitCode"]) == v]
        else:
            raise UsageError(f"invalid filter '{k}'")
    return out


def cmd_ps(engine, args) -> int:
    from core.errors import NutshellError

    items = engine.ps(all=args.all or args.latest or args.last > 0 or any(
        f.startswith(("status=", "exited=")) for f in args.filter))
    items = _ps_filter(items, args.filter)
    if args.latest:
        items = items[:1]
    elif args.last > 0:
        items = items[:args.last]
    if args.quiet:
        for i in items:
            print(i["Id"] if args.no_trunc else i["ID"])
        return 0
    rows = []
    sizes = {}
    if args.size or (args.format and ".Size" in args.format):
        for i in items:
            try:
                z = engine.container_size(i["Id"])
                sizes[i["Id"]] = (f"{human_size(z['SizeRw'])} "
                                  f"(virtual {human_size(z['SizeRootFs'])})")
            except NutshellError:
                sizes[i["Id"]] = "0B"
    for i in items:
        cmd = i["Command"]
        if not args.no_trunc and len(cmd) > 20:
            cmd = cmd[:19] + "…"
        created = parse_time(i["Created"])
        labels = ",".join(f"{k}={v}" for k, v in sorted(i["Labels"].items()))
        rows.append({
            "Command": f'"{cmd}"', "CreatedAt": _docker_time(created), "ID": i["Id"] if args.no_trunc else i["ID"],
            "Image": i["Image"] or "<none>", "Labels": labels, "LocalVolumes": "0", "Mounts": "",
            "Names": i["Names"], "Networks": i["Networks"], "Ports": ports_column(engine, i),
            "RunningFor": ago(i["Created"]), "Size": sizes.get(i["Id"], "0B"), "State": i["State"],
            "Status": i["Status"],
        })
    if emit_formatted(args.format, rows):
        return 0
    headers = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    table = [[r["ID"], r["Image"], r["Command"], r["RunningFor"], r["Status"], r["Ports"],
              r["Names"]] for r in rows]
    if args.size:
        headers.append("SIZE")
        for r, line in zip(rows, table):
            line.append(r["Size"])
    print_table(headers, table)
    return 0


def _docker_time(t: float | None) -> str:
    import time

    if not t:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(t))


# ---------------------------------------------------------------- stats

def _stats_rows(engine, refs, prev: dict, no_trunc: bool = False) -> list[dict]:
    import time

    from core.errors import NotFound

    rows = []
    ncpu = os.cpu_count() or 1
    for ref in refs:
        try:
            s = engine.container_stats(ref)
        except NotFound:
            continue
        now = time.monotonic()
        cpu = s.get("cpu_usage_ns")
        cpu_pct = (cpu_percent(cpu, now, *prev[ref]) if ref in prev else None) or 0.0
        if cpu is not None:
            prev[ref] = (cpu, now)
        used = s.get("memory_used") or 0
        limit = s.get("memory_limit") or _host_memory()
        net = s.get("Network") or {}
        rows.append({
            "ID": s["Id"] if no_trunc else s["Id"][:12],
            "Container": s["Id"] if no_trunc else s["Id"][:12], "Name": s["Name"],
            "CPUPerc": f"{min(cpu_pct, 100.0 * ncpu):.2f}%",
            "MemUsage": f"{_ibytes(used)} / {_ibytes(limit)}",
            "MemPerc": f"{(used / limit * 100.0) if limit else 0:.2f}%",
            "NetIO": f"{human_size(net.get('rx_bytes', 0))} / {human_size(net.get('tx_bytes', 0))}",
            "BlockIO": f"{human_size(s.get('io_read_bytes') or 0)} / "
                       f"{human_size(s.get('io_write_bytes') or 0)}",
            "PIDs": str(s.get("pids_current") or 0),
        })
    return rows


def _ibytes(n: float) -> str:
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    i = 0
    n = float(n)
    while n >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return f"{n:.4g}{units[i]}"


def _host_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


@_exit1
def cmd_stats(engine, args) -> int:
    import time

    refs = args.containers or [i["Id"] for i in engine.ps(all=args.all)]
    prev: dict = {}
    headers = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
               "BLOCK I/O", "PIDS"]
    _stats_rows(engine, refs, prev, args.no_trunc)
    time.sleep(0.5)
    while True:
        rows = _stats_rows(engine, refs, prev, args.no_trunc)
        if not args.no_stream and sys.stdout.isatty():
            sys.stdout.write("\033[2J\033[H")
        if not emit_formatted(args.format, rows):
            print_table(headers, [[r["ID"], r["Name"], r["CPUPerc"], r["MemUsage"], r["MemPerc"],
                                   r["NetIO"], r["BlockIO"], r["PIDs"]] for r in rows])
        sys.stdout.flush()
        if args.no_stream:
            return 0
        time.sleep(1.0)
        if not args.containers:
            refs = [i["Id"] for i in engine.ps(all=args.all)]
