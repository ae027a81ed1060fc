"""Generate docs/cli.md from the argparse parsers, so the reference is the code.

    python -m workbench.cli.docgen > docs/cli.md

tests/unit/test_cli_docs.py fails when docs/cli.md is out of date.
"""

from __future__ import annotations

import argparse
import io

HEADER = """# Command reference

Generated from the parsers by `python -m workbench.cli.docgen > docs/cli.md`; a unit test
keeps it in step with the code. Global flags go before the verb:
`nutshell [--root DIR] [--debug] VERB ...`. `nutshell` with no verb opens the workbench.

Exit codes follow Docker: `125` when Nutshell itself fails (bad flags, unknown objects,
conflicts), `126` when the container command cannot be invoked, `127` when it cannot be
found; otherwise the container's own exit code. Errors are one line on stderr.
"""


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _options(p: argparse.ArgumentParser) -> list[tuple[str, str]]:
    rows = []
    for a in p._actions:
        if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if a.option_strings:
            flags = ", ".join(a.option_strings)
            if a.nargs != 0 and not isinstance(a, (argparse._StoreTrueAction, argparse._StoreFalseAction,
                                                   argparse._CountAction)):
                flags += " " + (a.metavar or a.dest.upper()) if isinstance(a.metavar or "", str) else ""
            rows.append((f"`{flags}`", (a.help or "").replace("|", "\\|")))
    return rows


def _usage(p: argparse.ArgumentParser) -> str:
    u = p.format_usage().strip()
    return u.removeprefix("usage: ")


def generate() -> str:
    """The reference, laid out for 100 columns whatever the terminal is."""
    import os

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return _generate()
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def _generate() -> str:
    from . import build_parser

    top = build_parser()
    out = io.StringIO()
    out.write(HEADER)
    sub = _subparsers(top)
    helps = {a.dest: a.help for a in sub._choices_actions}
    plain, groups = [], []
    for name, p in sorted(sub.choices.items()):
        (groups if _subparsers(p) else plain).append((name, p))
    out.write("\n## Verbs\n")
    for name, p in plain:
        _verb(out, name, p, helps.get(name, ""), "###")
    out.write("\n## Management commands\n")
    for name, p in groups:
        out.write(f"\n### {name}\n")
        gsub = _subparsers(p)
        ghelps = {a.dest: a.help for a in gsub._choices_actions}
        for sname, sp in sorted(gsub.choices.items()):
            _verb(out, f"{name} {sname}", sp, ghelps.get(sname, ""), "####")
    return out.getvalue()


def _verb(out, name, p, help, level) -> None:
    out.write(f"\n{level} {name}\n\n")
    if help:
        out.write(f"{help}.\n\n" if not help.endswith(".") else f"{help}\n\n")
    out.write(f"```\n{_usage(p)}\n```\n")
    rows = _options(p)
    if rows:
        out.write("\n| option | meaning |\n| --- | --- |\n")
        for f, h in rows:
            out.write(f"| {f} | {h} |\n")


if __name__ == "__main__":
    print(generate(), end="")
