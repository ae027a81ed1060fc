"""The lazy CLI dispatch: each fast verb is registered by exactly the area it names."""

import importlib

import pytest

from workbench.cli import AREAS, FAST_VERBS, _verb_of, build_parser
from workbench.runopts import ArgumentParser


def _verbs_of(area: str) -> set[str]:
    p = ArgumentParser(prog="x")
    sub = p.add_subparsers(dest="verb", parser_class=ArgumentParser)
    groups = {}

    def group(name, help):
        if name not in groups:
            groups[name] = sub.add_parser(name).add_subparsers(parser_class=ArgumentParser)
        return groups[name]

    importlib.import_module(f"workbench.cli.{area}").register(sub, group)
    return set(sub.choices) - set(groups)


def test_fast_verbs_name_their_registering_area():
    owners = {}
    for area in AREAS:
        for verb in _verbs_of(area):
            assert verb not in owners, f"{verb} registered by {owners.get(verb)} and {area}"
            owners[verb] = area
    for verb, area in FAST_VERBS.items():
        assert owners.get(verb) == area, verb



@pytest.mark.parametrize("argv", [
    ["--root", "/tmp/x", "run", "--rm", "-e", "A=1", "-p", "8080:80", "--network", "none", "busybox", "echo", "hi"],
    ["ps", "-a", "--format", "json"],
    ["exec", "-it", "-u", "app", "c1", "sh"],
    ["images", "-q"],
    ["rmi", "-f", "a", "b"],
    ["pull", "--platform", "linux/arm64", "busybox"],
    ["port", "web", "80/tcp"],
    ["logs", "-f", "--tail", "5", "web"],
    ["events", "--since", "10m", "-f", "type=container", "--format", "{{json .}}"],
])
def test_fast_parser_parses_like_the_full_one(argv):
    from workbench.cli import _verb_of

    verb = _verb_of(argv)
    fast = build_parser((FAST_VERBS[verb],), only_verb=verb).parse_args(argv)
    full = build_parser().parse_args(argv)
    assert {k: v for k, v in vars(fast).items() if k != "func"} == \
        {k: v for k, v in vars(full).items() if k != "func"}
    assert fast.func.__name__ == full.func.__name__


def test_verb_detection():
    assert _verb_of(["--root", "r", "--debug", "ps", "-a"]) == "ps"
    assert _verb_of(["--help"]) is None
    assert _verb_of([]) is None
