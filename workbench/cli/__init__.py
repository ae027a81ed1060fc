"""The headless CLI: ``nutshell <verb>``, Docker-compatible verbs, flags and exit codes.

argparse -> core.Engine -> tables / JSON / progress. Each area registers its verbs from
its own module (images.py, containers.py, registry.py, network.py, files.py, volumes.py,
build.py, events.py). Errors print one line (``nutshell: no such image: foo:latest``) and exit with
the error's code (125 engine, 126 cannot invoke, 127 not found); ``--debug`` shows the
traceback.
"""

from __future__ import annotations

import gc
import os
import sys

from core.importcost import defer_inspect_for_dataclasses

# argparse (with re, enum and gettext: ~12 ms) is imported when the parser is built, not
# with this module: the console script first sets up the collector (configure_gc) and
# starts a container start's sealed interpreter, and --version needs no parser at all
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from workbench.runopts import ArgumentParser

# Verb modules, imported when the parser is built. Keep their top-level imports light:
# `nutshell ps` must not pay for the TUI, rich or netlink.
AREAS = ("images", "containers", "registry", "network", "files", "volumes", "build", "events",
         "service")


# Top-level verbs whose parser lives in one area module: for these only that module is
# imported and only its parsers are built (argparse construction of every verb costs
# ~100 ms, most of it gettext lookups). Anything not listed builds the full parser, so a
# verb missing here is only slower, never broken. tests/unit/test_cli_lazy.py checks
# that every entry names the area that really registers the verb.
FAST_VERBS = {
    **dict.fromkeys(("run", "create", "start", "stop", "kill", "restart", "rm", "ps", "exec",
                     "logs", "wait", "attach", "top", "rename", "stats", "pause", "unpause",
                     "update"),
                    "containers"),
    **dict.fromkeys(("images", "history", "tag", "rmi", "load", "save", "import", "inspect",
                     "version", "info"), "images"),
    **dict.fromkeys(("pull", "push", "login", "logout"), "registry"),
    "port": "network",
    "build": "build",
    "events": "events",
}


def _verb_of(argv: list[str]) -> str | None:
    """The first positional word, skipping the global flags (``--root DIR``...)."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--root":
            i += 2
            continue
        if a.startswith("-"):
            if a in ("-h", "--help", "-v", "--version"):
                return None
            i += 1
            continue
        return a
    return None


class _Skipped:
    """Stands in for the parsers of verbs this invocation does not use: every call on it
    does nothing, so an area's register() can run unchanged while only one verb is built."""

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self

    def __setattr__(self, name, value):
        pass

    def __iter__(self):
        return iter(())

    def __contains__(self, item):
        return False

    def __len__(self):
        return 0

    def __bool__(self):
        return True


class _OnlyVerb:
    """A subparsers action that really builds only ``verb``."""

    def __init__(self, real, verb: str):
        self._real, self._verb = real, verb

    def add_parser(self, name, **kwargs):
        if name == self._verb or self._verb in kwargs.get("aliases", ()):
            return self._real.add_parser(name, **kwargs)
        return _Skipped()

    def __getattr__(self, name):
        return getattr(self._real, name)


def _quiet_gettext() -> None:
    """argparse looks up a translation catalogue for each of its strings (~40 ms for our
    few hundred flags); Nutshell's messages are English only."""
    import argparse

    argparse._ = lambda s: s  # type: ignore[attr-defined]
    argparse.ngettext = lambda s, p, n: s if n == 1 else p  # type: ignore[attr-defined]


def build_parser(areas: tuple[str, ...] | None = None, only_verb: str | None = None) -> ArgumentParser:
    from workbench.runopts import ArgumentParser

    _quiet_gettext()
    parser = ArgumentParser(prog="nutshell", description="A daemonless container workbench.")
    parser.add_argument("--root", metavar="DIR", help="state root (default: $NUTSHELL_ROOT or /var/lib/nutshell)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-v", "--version", action="store_true", help="print the version and exit")
    parser.add_argument("--read-only", dest="app_read_only", action="store_true",
                        help="with no verb: open the workbench without any action that changes something")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=ArgumentParser)
    groups: dict[str, argparse._SubParsersAction] = {}

    def group(name: str, help: str):
        """A Docker management command (``image``, ``container``, ``network``...)."""
        if name not in groups:
            g = sub.add_parser(name, help=help)
            groups[name] = g.add_subparsers(dest=f"{name}_verb", metavar="COMMAND",
                                            parser_class=ArgumentParser)
            g.set_defaults(func=lambda engine, args, _g=g: (_g.print_help(), 0)[1])
        return groups[name]

    import importlib

    for area in (AREAS if areas is None else areas):
        mod = importlib.import_module(f"workbench.cli.{area}")
        if only_verb:   # a plain verb: no management-command groups are needed
            mod.register(_OnlyVerb(sub, only_verb), lambda name, help: _Skipped())
        else:
            mod.register(sub, group)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv[:3] or os.environ.get("NUTSHELL_DEBUG") == "1"
    try:
        code = _main(argv)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # stdout closed under us (e.g. `nutshell images | head -1`): exit quietly
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        code = 0
    except Exception as exc:  # noqa: BLE001
        from core.errors import NutshellError

        if debug:
            import traceback

            traceback.print_exc()
        if isinstance(exc, NutshellError):
            sys.stderr.write(f"nutshell: {exc}\n")
            if exc.hint:
                sys.stderr.write(f"{exc.hint}\n")
            code = exc.exit_code
        elif isinstance(exc, OSError) and exc.errno == 28:  # ENOSPC
            sys.stderr.write("nutshell: no space left on device\n")
            code = 125
        else:
            sys.stderr.write(f"nutshell: internal error: {type(exc).__name__}: {exc}\n")
            if not debug:
                sys.stderr.write("Run again with --debug for the traceback.\n")
            code = 125
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    return code


def configure_gc(verb: str | None) -> None:
    """The cyclic collector while we start: our imports and Textual's make hundreds of
    thousands of objects that all survive, and the collector's default threshold (700
    new objects) walks them again and again: 16 collections, ~5 ms of a ``run``; 240, ~70
    ms of the workbench's start. A verb raises the threshold (the run path then makes
    no collection; a verb that runs for hours still collects, every 20,000 objects). The
    workbench runs without the collector until its first frame is drawn, then turns it on
    with the usual thresholds (NutshellApp.on_mount)."""
    if verb is None:
        gc.disable()
    else:
        gc.set_threshold(20_000, 10, 10)


def entry() -> None:
    """The ``nutshell`` console script: :func:`main`, then a quick exit.

    A one-shot command has nothing left to finalise once its output is flushed (every
    file it wrote was closed, synced and renamed into place), so it skips the interpreter's
    teardown of every module and object: 25-50 ms on a ``run --rm``, more once pyroute2
    is loaded. The workbench (no verb) exits normally.
    """
    argv = sys.argv[1:]
    verb = _verb_of(argv)
    configure_gc(verb)      # (-h and --version also count as no verb: they print and exit)
    code = main(argv)
    if verb is None:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code & 0xFF if code >= 0 else 125)


def _main(argv: list[str]) -> int:
    if argv and argv[0] in ("-v", "--version"):
        from core import __version__

        print(f"Nutshell version {__version__}")
        return 0
    verb = _verb_of(argv)
    if verb is not None:
        defer_inspect_for_dataclasses()   # ~11 ms of verbs with dataclasses (core/importcost.py)
    if verb in ("run", "start", "exec") and "--help" not in argv:
        import core

        # its start overlaps ours (~20 ms of a `run` or an `exec`)
        core.prepare_container_start(exec_=verb == "exec")
    if verb in FAST_VERBS:
        parser = build_parser((FAST_VERBS[verb],), only_verb=verb)
    elif verb is None and not {"-h", "--help"} & set(argv):
        parser = build_parser(())       # the app: global flags only (the verbs' parsers: 53 ms)
    else:
        parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except Exception as exc:  # noqa: BLE001 - a UsageError from the top-level parser
        if verb and getattr(exc, "hint", None) == "See 'nutshell --help'.":
            exc.hint = f"See 'nutshell {verb} --help'."
        raise
    if args.version:
        from core import __version__

        print(f"Nutshell version {__version__}")
        return 0
    if not args.verb:
        from workbench.app import run_app

        return run_app(root=args.root, read_only=args.app_read_only)
    from core.engine import Engine

    engine = Engine(root=args.root)
    func = getattr(args, "func", None)
    if func is None:
        parser.parse_args([args.verb, "--help"])
        return 0
    rc = func(engine, args)
    return 0 if rc is None else int(rc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
