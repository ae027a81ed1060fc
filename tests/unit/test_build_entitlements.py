"""Build entitlements without running anything: which RUN flags need which ``--allow``
(BuildKit's ``network.host`` / ``security.insecure``), the refusal text, what a RUN step
is given (network, privileged), and that both are in its cache key. Real builds are in
tests/integration/test_build_entitlements.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.dockerfile import builder as b
from core.errors import UsageError
from core.paths import Paths


def _builder(tmp_path, dockerfile: str, **opts) -> b.Builder:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    root = str(tmp_path / "root")
    engine = SimpleNamespace(store=None, paths=Paths(root, root + "-run", root + "-cfg"))
    builder = b.Builder(engine, b.BuildOptions(context=str(ctx), **opts))
    builder._prepare()              # parse + the up-front checks; touches no store
    return builder


def _run_steps(builder: b.Builder):
    steps = builder.df.steps(builder.target, base_env=[])
    return [s for s in steps if s.cmd == "RUN"]


def test_check_entitlements():
    assert b.check_entitlements([]) == []
    assert b.check_entitlements(["security.insecure", "network.host", "network.host"]) == \
        ["security.insecure", "network.host"]
    assert b.check_entitlements("network.host") == ["network.host"]
    for bad in ("device", "network.none", "NETWORK.HOST", "", "network.host "):
        with pytest.raises(UsageError) as err:
            b.check_entitlements(["network.host", bad])
        assert str(err.value) == (f"invalid entitlement: {bad} (expected network.host or "
                                  "security.insecure)")
        assert err.value.exit_code == 125 and err.value.hint is None


@pytest.mark.parametrize("line,needs", [
    ("RUN --network=host true", "network.host"),
    ("RUN --security=insecure true", "security.insecure"),
    ("RUN --network=host --security=insecure true", "network.host"),
])
def test_refused_without_the_entitlement(tmp_path, line, needs):
    with pytest.raises(b.BuildError) as err:
        _builder(tmp_path, f"FROM scratch\nRUN true\n{line}\n")
    assert str(err.value) == f"Dockerfile:3: {needs} is not allowed"
    assert err.value.exit_code == 1


@pytest.mark.parametrize("line", ["RUN true", "RUN --network=none true",
                                  "RUN --network=default true", "RUN --security=sandbox true"])
def test_the_sandbox_needs_nothing(tmp_path, line):
    builder = _builder(tmp_path, f"FROM scratch\n{line}\n")
    assert builder._run_sandbox(_run_steps(builder)[0]) == ("none", False)


def test_what_a_granted_step_gets(tmp_path):
    builder = _builder(tmp_path, "FROM scratch\nRUN --network=host true\n"
                                 "RUN --security=insecure true\nRUN true\n",
                       allow=["network.host", "security.insecure"])
    got = [builder._run_sandbox(s) for s in _run_steps(builder)]
    assert got == [("host", False), ("none", True), ("none", False)]


def test_build_network_host_grants_network_host(tmp_path):
    builder = _builder(tmp_path, "FROM scratch\nRUN --network=host true\nRUN true\n"
                                 "RUN --network=none true\n", network="host")
    assert [builder._run_sandbox(s) for s in _run_steps(builder)] == \
        [("host", False), ("host", False), ("none", False)]
    with pytest.raises(b.BuildError, match="security.insecure is not allowed"):
        _builder(tmp_path, "FROM scratch\nRUN --security=insecure true\n", network="host")


def test_an_invalid_security_mode(tmp_path):
    with pytest.raises(b.BuildError) as err:
        _builder(tmp_path, "FROM scratch\nRUN --security=root true\n",
                 allow=["security.insecure"])
    assert str(err.value) == 'Dockerfile:2: security "root" is not valid'


def test_network_and_privilege_are_in_the_cache_key(tmp_path):
    state = b._State(key="sha256:" + "0" * 64, layers=[], config={}, history=[],
                     platform={})

    def key(dockerfile: str, **opts) -> str:
        builder = _builder(tmp_path, dockerfile, **opts)
        step = _run_steps(builder)[0]
        return b.step_key(state.key, builder._key_parts(step, state, list(b.DEFAULT_SHELL)))

    plain = key("FROM scratch\nRUN true\n")
    assert plain == key("FROM scratch\nRUN true\n", allow=["security.insecure"])
    assert plain != key("FROM scratch\nRUN true\n", network="host")
    host = key("FROM scratch\nRUN --network=host true\n", allow=["network.host"])
    assert host != plain
    insecure = key("FROM scratch\nRUN --security=insecure true\n", allow=["security.insecure"])
    sandbox = key("FROM scratch\nRUN --security=sandbox true\n")
    assert len({plain, host, insecure, sandbox}) == 4
    builder = _builder(tmp_path, "FROM scratch\nRUN --security=insecure true\n",
                       allow=["security.insecure"])
    parts = builder._key_parts(_run_steps(builder)[0], state, list(b.DEFAULT_SHELL))
    assert (parts["network"], parts["privileged"]) == ("none", True)
