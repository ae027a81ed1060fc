"""The tests' fake engines cannot drift from core.engine.Engine: every public method a fake
defines exists on Engine, and takes the Engine's parameters (same positional order, no
parameter Engine does not have, every Engine parameter accepted)."""

from __future__ import annotations

import inspect

import pytest

from core.engine import Engine

# what a fake offers its tests besides the Engine's methods
TEST_HELPERS = {"called", "has_call"}


def _fakes():
    from tests.tui import fakes
    from tests.unit import test_terminal_backend

    return [fakes.FakeEngine, test_terminal_backend.FakeEngine]


def mismatches(fake: type) -> list[str]:
    out = []
    for name, member in inspect.getmembers(fake, callable):
        if name.startswith("_") or name in TEST_HELPERS:
            continue
        real = getattr(Engine, name, None)
        if not callable(real):
            out.append(f"{name}: not a method of Engine")
            continue
        fake_params = list(inspect.signature(member).parameters.values())[1:]
        real_params = list(inspect.signature(real).parameters.values())[1:]
        kinds = {p.kind for p in fake_params}
        var = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        real_names = [p.name for p in real_params if p.kind not in var]
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        real_pos = [p.name for p in real_params if p.kind in positional]
        fake_pos = [p.name for p in fake_params if p.kind in positional]
        for i, pname in enumerate(fake_pos):
            if i < len(real_pos) and real_pos[i] != pname:
                out.append(f"{name}: parameter {i + 1} is {pname!r}, Engine's is {real_pos[i]!r}")
        for p in fake_params:
            if p.kind not in var and p.name not in real_names and \
                    inspect.Parameter.VAR_KEYWORD not in {q.kind for q in real_params}:
                out.append(f"{name}: {p.name!r} is not a parameter of Engine.{name}")
        fake_names = {p.name for p in fake_params}
        for p in real_params:
            if p.kind in var or p.name in fake_names or inspect.Parameter.VAR_KEYWORD in kinds:
                continue
            out.append(f"{name}: Engine.{name}'s {p.name!r} is not accepted by the fake")
    return out


@pytest.mark.parametrize("fake", _fakes(), ids=lambda f: f.__module__)
def test_fake_engine_methods_have_the_engines_signatures(fake):
    assert mismatches(fake) == []


def test_the_check_sees_drift():
    class Drifted:
        def rm(self, ref, force=False):  # no volumes
            pass

        def exec(self, ref, argv, **kw):  # argv, Engine's is cmd
            pass

        def frobnicate(self):
            pass

    found = "\n".join(mismatches(Drifted))
    assert "frobnicate: not a method of Engine" in found
    assert "rm: Engine.rm's 'volumes' is not accepted" in found
    assert "exec: parameter 2 is 'argv'" in found
