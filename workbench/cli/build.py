"""CLI verbs for Dockerfile builds: ``build`` (also ``image build``, ``builder build``)
and ``builder prune``.

Progress comes from core.events.Progress events (see core/dockerfile/builder.py) and is drawn
in one of three ways:

* ``--progress auto`` (default): Docker's classic builder lines::

      Step 4/9 : RUN sh hello.sh > /src/greeting.txt
       ---> Running in 3f2a1b0c9d8e
      Removing intermediate container 3f2a1b0c9d8e
       ---> 1c72eb8b58ed

* ``--progress plain``: BuildKit's plain lines (``#4 [builder 4/4] RUN ...``,
  ``#4 CACHED``, ``#4 0.105 <output>``, ``#4 DONE 0.1s``);
* ``--progress tty``: a live view of the steps (rich) when stdout is a terminal, else
  plain.

``-q`` prints only the image ID. Exit codes follow Docker: 1 when the build fails, the
RUN's own code when a RUN fails (classic ``docker build`` does the same), 125 for bad
flags.

``--allow network.host`` / ``--allow security.insecure`` are buildx's entitlements: without
them a Dockerfile's ``RUN --network=host`` / ``RUN --security=insecure`` is refused before
anything runs (core/dockerfile/builder.py).
"""

from __future__ import annotations

import os
import sys
import time

from workbench.format import human_size


def _add_build_args(p) -> None:
    p.add_argument("context", metavar="PATH", help="the build context directory")
    p.add_argument("-t", "--tag", action="append", default=[],
                   help="name and optionally a tag (name:tag); repeatable")
    p.add_argument("-f", "--file", help="the Dockerfile (default: PATH/Dockerfile; - reads stdin)")
    p.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="set a build-time variable (KEY alone takes it from the environment)")
    p.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    p.add_argument("--target", help="build this stage (and the stages it needs) only")
    p.add_argument("--pull", action="store_true", help="always pull the base images")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")
    p.add_argument("--progress", choices=("auto", "plain", "tty"), default="auto",
                   help="auto: classic Docker lines; plain: BuildKit lines; tty: live view")
    p.add_argument("--network", default="none",
                   help="network for RUN steps: none (default), host, or bridge")
    p.add_argument("--allow", action="append", default=[], metavar="ENTITLEMENT",
                   help="let the Dockerfile use network.host (RUN --network=host) or "
                        "security.insecure (RUN --security=insecure); repeatable")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                   help="set a label on the image")
    p.set_defaults(func=cmd_build)


def register(sub, group) -> None:
    image = group("image", "Manage images")
    builder = group("builder", "Manage builds")
    for s, name in ((sub, "build"), (image, "build"), (builder, "build")):
        _add_build_args(s.add_parser(name, help="Build an image from a Dockerfile"))
    p = builder.add_parser("prune", help="Remove the build cache")
    p.add_argument("-a", "--all", action="store_true", help="remove all of it (the default here)")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.add_argument("--filter", action="append", default=[], metavar="until=DURATION",
                   help="only entries not used for DURATION (e.g. until=24h)")
    p.set_defaults(func=cmd_builder_prune)


# --------------------------------------------------------------------------- printers

class ClassicPrinter:
    """Docker's classic builder output (``Step 3/9 : ...``, `` ---> Using cache``)."""

    def __init__(self, out=None, err=None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._from: set[str] = set()

    def _line(self, text: str, stream=None) -> None:
        s = stream or self.out
        s.write(text + "\n")
        s.flush()

    def __call__(self, ev) -> None:
        a = ev.action
        if a == "Step":
            if ev.detail.get("instruction") == "FROM":
                self._from.add(ev.id)
            self._line(f"Step {ev.current}/{ev.total} : {ev.message}")
        elif a == "CACHED":
            if ev.id not in self._from:
                self._line(" ---> Using cache")
        elif a == "Running":
            self._line(f" ---> Running in {ev.message}")
        elif a == "Output":
            self._line(ev.message)
        elif a == "Removed":
            self._line(f"Removing intermediate container {ev.message}")
        elif a == "Done":
            self._line(f" ---> {ev.message}")
        elif a == "Warning":
            self._line(ev.message, self.err)
        elif a in ("Built", "Tagged", "Writing"):
            return
        elif ev.id and a not in ("Downloading", "Extracting"):
            self._line(f"{ev.id}: {a}" + (f" {ev.message}" if ev.message else ""))

    def close(self) -> None:
        pass


class PlainPrinter:
    """BuildKit's ``--progress plain`` lines."""

    def __init__(self, out=None, err=None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.started: dict[str, float] = {}
        self.cached: set[str] = set()
        self.last = 0
        self.export_started = None

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def __call__(self, ev) -> None:
        a = ev.action
        if a == "Step":
            self.started[ev.id] = time.monotonic()
            self.last = max(self.last, ev.current)
            stage = ev.detail.get("stage") or ""
            pos = f"{ev.detail.get('stage_step')}/{ev.detail.get('stage_steps')}"
            self._line(f"#{ev.id} [{stage + ' ' if stage else ''}{pos}] {ev.message}")
        elif a == "CACHED":
            self.cached.add(ev.id)
            self._line(f"#{ev.id} CACHED")
        elif a == "Output":
            elapsed = time.monotonic() - self.started.get(ev.id, time.monotonic())
            self._line(f"#{ev.id} {elapsed:.3f} {ev.message}")
        elif a == "Running":
            self._line(f"#{ev.id} running in container {ev.message}")
        elif a == "Writing" and ev.id != "build" and ev.message.startswith("sha256:"):
            self._line(f"#{ev.id} writing layer {ev.message[:19]} {human_size(ev.detail.get('size', 0))}")
        elif a == "Done" and ev.id not in self.cached:
            self._line(f"#{ev.id} DONE {ev.detail.get('seconds', 0):.1f}s")
        elif a == "Writing" and ev.id == "build":
            n = self.last + 1
            self.export_started = time.monotonic()
            self._line(f"#{n} exporting to image")
            self._line(f"#{n} writing {ev.message} done")
        elif a == "Tagged":
            self._line(f"#{self.last + 1} naming to {ev.message} done")
        elif a == "Built":
            secs = time.monotonic() - (self.export_started or time.monotonic())
            self._line(f"#{self.last + 1} DONE {secs:.1f}s")
        elif a == "Warning":
            self.err.write(ev.message + "\n")

    def close(self) -> None:
        pass


class TtyPrinter:
    """A live view (rich): one line per step with its state, the running step's last
    output lines under it. Falls back to :class:`PlainPrinter` off a terminal."""

    TAIL = 6

    def __init__(self, out=None):
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=out or sys.stdout)
        self.steps: dict[str, dict] = {}
        self.order: list[str] = []
        self.started = time.monotonic()
        self.total = 0
        self.live = Live(self._render(), console=self.console, refresh_per_second=8,
                         transient=False)
        self.live.start()

    def _render(self):
        from rich.text import Text

        done = sum(1 for s in self.steps.values() if s["state"] in ("done", "cached"))
        text = Text()
        text.append(f"[+] Building {time.monotonic() - self.started:.1f}s ({done}/{self.total})\n",
                    style="bold")
        for sid in self.order:
            s = self.steps[sid]
            secs = (s.get("end") or time.monotonic()) - s["start"]
            status = {"cached": "CACHED", "done": f"{secs:.1f}s", "running": f"{secs:.1f}s"}[s["state"]]
            style = "blue" if s["state"] != "running" else "yellow"
            text.append(f" => {s['label']} {s['text']}"[: max(20, self.console.width - 10)], style=style)
            text.append(f"  {status}\n", style="dim")
            if s["state"] == "running":
                for line in s["tail"][-self.TAIL:]:
                    text.append(f"    {line}"[: self.console.width - 1] + "\n", style="dim")
        return text

    def __call__(self, ev) -> None:
        a = ev.action
        if a == "Step":
            self.total = max(self.total, ev.total)
            stage = ev.detail.get("stage") or ""
            label = f"[{stage + ' ' if stage else ''}{ev.detail.get('stage_step')}/{ev.detail.get('stage_steps')}]"
            self.steps[ev.id] = {"label": label, "text": ev.message, "state": "running",
                                 "start": time.monotonic(), "tail": []}
            self.order.append(ev.id)
        elif ev.id in self.steps:
            s = self.steps[ev.id]
            if a == "CACHED":
                s["state"] = "cached"
                s["end"] = time.monotonic()
            elif a == "Output":
                s["tail"].append(ev.message)
            elif a == "Done" and s["state"] != "cached":
                s["state"] = "done"
                s["end"] = time.monotonic()
        elif a == "Warning":
            self.console.print(ev.message, style="yellow")
        self.live.update(self._render())

    def close(self) -> None:
        self.live.update(self._render())
        self.live.stop()


def _printer(mode: str):
    if mode == "tty":
        if sys.stdout.isatty():
            return TtyPrinter()
        return PlainPrinter()
    if mode == "plain":
        return PlainPrinter()
    return ClassicPrinter()


# --------------------------------------------------------------------------- verbs

def _pairs(items: list[str], what: str, from_env: bool) -> dict[str, str]:
    from core.errors import UsageError

    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid {what}: {item!r} (expected KEY=VALUE)")
        if sep:
            out[key] = value
        elif from_env:
            if key in os.environ:
                out[key] = os.environ[key]
        else:
            out[key] = ""
    return out


def cmd_build(engine, args) -> int:
    from core.dockerfile.builder import BuildOptions, RunFailed, check_entitlements
    from core.errors import NutshellError, UsageError

    allow = check_entitlements(args.allow)     # a bad flag: exit 125, before anything
    if args.context == "-":
        raise UsageError("building from a tar stream on stdin is not supported",
                         hint="give a context directory")
    text = None
    dockerfile = None
    if args.file == "-":
        text = sys.stdin.read()
    elif args.file:
        dockerfile = os.path.abspath(args.file)
        if not os.path.exists(dockerfile) and not os.path.isabs(args.file):
            inside = os.path.join(args.context, args.file)   # friendlier than Docker
            if os.path.exists(inside):
                dockerfile = os.path.abspath(inside)
    options = BuildOptions(
        context=os.path.abspath(args.context), dockerfile=dockerfile, dockerfile_text=text,
        tags=list(args.tag), build_args=_pairs(args.build_arg, "--build-arg", True),
        target=args.target, no_cache=args.no_cache, pull=args.pull, network=args.network,
        labels=_pairs(args.label, "--label", False), allow=allow)
    printer = None if args.quiet else _printer(args.progress)
    try:
        result = engine.build(options, progress=printer)
    except NutshellError as exc:
        if not isinstance(exc, RunFailed):
            exc.exit_code = 1          # docker build exits 1 for any failed build
        raise
    finally:
        if printer is not None:
            printer.close()
    if args.quiet:
        print(result.image_id)
        return 0
    print(f"Successfully built {result.short_id}")
    for tag in result.tags:
        print(f"Successfully tagged {tag}")
    return 0


def _duration(text: str) -> float:
    from core.errors import UsageError

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except (ValueError, IndexError):
        raise UsageError(f"invalid duration {text!r} (e.g. 30m, 24h)") from None


def cmd_builder_prune(engine, args) -> int:
    from core.errors import UsageError

    from .output import confirm, print_pruned

    older = None
    for f in args.filter:
        key, _, value = f.partition("=")
        if key != "until" or not value:
            raise UsageError(f"invalid filter {f!r}: only until=DURATION is supported")
        older = _duration(value)
    if not confirm("This will remove the build cache.", args.force):
        print("Total reclaimed space: 0B")
        return 0
    result = engine.build_cache_prune(all=older is None, older_than=older)
    print_pruned("build cache objects", [key.split(":", 1)[-1][:25] for key in result["CachesDeleted"]],
                 result["SpaceReclaimed"])
    return 0
