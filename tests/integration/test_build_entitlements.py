"""Build entitlements, as BuildKit: ``RUN --network=host`` needs ``--allow network.host``
and ``RUN --security=insecure`` needs ``--allow security.insecure``; without them the
build is refused before anything runs and stores nothing.

The refusal is BuildKit's wording, "network.host is not allowed" /
"security.insecure is not allowed": moby/buildkit util/entitlements/entitlements.go
(``Set.Check``), called from solver/llbsolver/vertex.go (``ValidateEntitlements``) when
the build graph is loaded, before any step runs. An unknown ``--allow`` value is
buildx's "invalid entitlement: <v>" (docker/buildx util/buildflags/entitlements.go).
The build-level ``--network host`` is the user's own choice: buildx adds network.host
to the allowed entitlements with it (docker/buildx build/opt.go), and so do we.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from core.dockerfile.builder import BuildError, BuildOptions
from core.dockerfile.cache import BuildCache
from core.errors import NotFound, UsageError
from tests.integration.test_build_fixtures import BASE, built_on, collect

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(root, busybox_rootfs):
    yield from built_on(root, busybox_rootfs)


@pytest.fixture
def host_only_link():
    """An interface that only the host has, left down, removed afterwards. A dummy
    device where the kernel has the module, else an empty bridge (no traffic either)."""
    name = f"entl{os.getpid() % 100000}{os.urandom(2).hex()}"[:15]
    if subprocess.run(["ip", "link", "add", name, "type", "dummy"],
                      capture_output=True).returncode != 0:
        subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True,
                       capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


def _ctx(tmp_path, dockerfile: str) -> str:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    return str(ctx)


def _cli(engine, *argv) -> int:
    from workbench.cli import main

    return main(["--root", engine.paths.root, *argv])


def _stored(engine) -> tuple:
    """What a refused build must not change: tags, blobs, cache entries, containers."""
    return (sorted((img.id, t) for img in engine.images() for t in img.repo_tags),
            sorted(os.listdir(engine.paths.blobs)),
            sorted(e.key for e in BuildCache(engine.paths).entries()),
            engine.ps(all=True))


def _file(engine, ref: str, path: str) -> str:
    with open(os.path.join(engine.image_layer_dirs(ref)[-1], path)) as f:
        return f.read()


def _interfaces(text: str) -> list[str]:
    return [line.split(":")[0].strip() for line in text.splitlines()[2:]]


NET_HOST = "FROM {base}\nRUN echo first > /first\nRUN --network=host cat /proc/net/dev > /ifaces\n"


@pytest.mark.parametrize("flag,entitlement", [("--network=host", "network.host"),
                                              ("--security=insecure", "security.insecure")])
def test_refused_without_allow_before_anything_runs(engine, tmp_path, capfd, flag, entitlement):
    ctx = _ctx(tmp_path, f"FROM {BASE}\nRUN echo first > /first\nRUN {flag} true\n")
    before = _stored(engine)
    events, progress = collect()
    with pytest.raises(BuildError) as err:
        engine.build(BuildOptions(context=ctx, tags=["localhost/ent:x"]), progress)
    assert str(err.value) == f"Dockerfile:3: {entitlement} is not allowed"
    assert err.value.hint == f"grant it with --allow {entitlement} if you trust this Dockerfile"
    assert not [e for e in events if e.action in ("Step", "Running")]
    # the CLI: exit 1 (docker buildx exits 1 on "failed to solve"), one line + the hint
    capfd.readouterr()
    assert _cli(engine, "build", "-t", "localhost/ent:x", ctx) == 1
    out = capfd.readouterr()
    assert out.out == ""
    assert out.err == (f"nutshell: Dockerfile:3: {entitlement} is not allowed\n"
                       f"grant it with --allow {entitlement} if you trust this Dockerfile\n")
    # the other entitlement does not grant this one
    other = "security.insecure" if entitlement == "network.host" else "network.host"
    with pytest.raises(BuildError, match=f"{entitlement} is not allowed"):
        engine.build(BuildOptions(context=ctx, tags=["localhost/ent:x"], allow=[other]))
    assert _stored(engine) == before
    with pytest.raises(NotFound):
        engine.image("localhost/ent:x")


def test_network_host_with_allow_sees_the_host_interfaces(engine, tmp_path, capfd,
                                                          host_only_link):
    ctx = _ctx(tmp_path, NET_HOST.format(base=BASE))
    capfd.readouterr()
    assert _cli(engine, "build", "-q", "--allow", "network.host", "-t", "localhost/ent:host",
                ctx) == 0
    assert capfd.readouterr().err == ""
    assert host_only_link in _interfaces(_file(engine, "localhost/ent:host", "ifaces"))
    # the same step without --network=host: only the container's loopback
    ctx = _ctx(tmp_path, f"FROM {BASE}\nRUN cat /proc/net/dev > /ifaces\n")
    engine.build(BuildOptions(context=ctx, tags=["localhost/ent:none"]))
    assert _interfaces(_file(engine, "localhost/ent:none", "ifaces")) == ["lo"]


def test_build_level_network_host_is_consent_and_part_of_the_cache_key(engine, tmp_path,
                                                                      host_only_link):
    # buildx grants network.host with --network host: RUN --network=host needs no --allow
    ctx = _ctx(tmp_path, NET_HOST.format(base=BASE))
    engine.build(BuildOptions(context=ctx, tags=["localhost/ent:a"], network="host"))
    assert host_only_link in _interfaces(_file(engine, "localhost/ent:a", "ifaces"))
    # the same plain RUN under --network none, then host, then none again: the network is
    # in the key, so a step run on the host network is never reused for an isolated one
    ctx = _ctx(tmp_path, f"FROM {BASE}\nRUN cat /proc/net/dev > /ifaces\n")
    seen = []
    for network in ("none", "host", "none"):
        events, progress = collect()
        engine.build(BuildOptions(context=ctx, tags=[f"localhost/ent:{network}"],
                                  network=network), progress)
        seen.append("2" in {e.id for e in events if e.action == "CACHED"})
        ifaces = _interfaces(_file(engine, f"localhost/ent:{network}", "ifaces"))
        assert (host_only_link in ifaces) == (network == "host")
    assert seen == [False, False, True]


def test_security_insecure_with_allow_runs_the_step_privileged(engine, tmp_path, monkeypatch):
    created = []
    real_create = engine.create

    def create(options):
        created.append((options.command[-1], options.privileged))
        return real_create(options)

    monkeypatch.setattr(engine, "create", create)
    ctx = _ctx(tmp_path, f"FROM {BASE}\nRUN --security=insecure echo a > /a\n"
                         "RUN --security=sandbox echo b > /b\nRUN echo c > /c\n")
    engine.build(BuildOptions(context=ctx, tags=["localhost/ent:ins"],
                              allow=["security.insecure"]))
    assert created == [("echo a > /a", True), ("echo b > /b", False), ("echo c > /c", False)]
    # a cached privileged step is never reused for a sandboxed one, nor the reverse
    created.clear()
    ctx = _ctx(tmp_path, f"FROM {BASE}\nRUN echo a > /a\n")
    engine.build(BuildOptions(context=ctx, tags=["localhost/ent:sand"]))
    ctx = _ctx(tmp_path, f"FROM {BASE}\nRUN --security=insecure echo a > /a\n")
    events, progress = collect()
    engine.build(BuildOptions(context=ctx, tags=["localhost/ent:ins"],
                              allow=["security.insecure"]), progress)
    assert created == [("echo a > /a", False)]      # the sandboxed one ran, not reused
    assert "2" in {e.id for e in events if e.action == "CACHED"}     # its own earlier run


def _all_caps() -> int:
    """Every capability a privileged container can be given: all we hold ourselves
    (a sandbox may have taken some from us, e.g. CAP_SYS_RESOURCE)."""
    with open("/proc/self/status") as f:
        line = next(ln for ln in f if ln.startswith("CapPrm:"))
    return int(line.split()[1], 16)


def test_security_insecure_step_has_every_capability(engine, tmp_path):
    ctx = _ctx(tmp_path, f"FROM {BASE}\n"
                         "RUN --security=insecure grep CapEff /proc/self/status > /caps\n")
    engine.build(BuildOptions(context=ctx, tags=["localhost/ent:caps"],
                              allow=["security.insecure"]))
    caps = int(_file(engine, "localhost/ent:caps", "caps").split()[1], 16)
    assert caps == _all_caps()


def test_unknown_entitlement_and_security_mode_are_refused(engine, tmp_path, capfd):
    ctx = _ctx(tmp_path, f"FROM {BASE}\nRUN true\n")
    before = _stored(engine)
    capfd.readouterr()
    assert _cli(engine, "build", "--allow", "network.host", "--allow", "device", ctx) == 125
    out = capfd.readouterr()
    assert out.err == ("nutshell: invalid entitlement: device (expected network.host or "
                       "security.insecure)\n")
    with pytest.raises(UsageError, match=r"^invalid entitlement: net\.host "):
        engine.build(BuildOptions(context=ctx, allow=["net.host"]))
    ctx = _ctx(tmp_path, f"FROM {BASE}\nRUN --security=bogus true\n")
    with pytest.raises(BuildError) as err:
        engine.build(BuildOptions(context=ctx, allow=["security.insecure"]))
    assert str(err.value) == 'Dockerfile:2: security "bogus" is not valid'
    assert _stored(engine) == before


def test_a_base_image_trigger_needs_the_entitlement_too(engine, tmp_path):
    """An ONBUILD RUN --network=host in a base image is refused before any stage runs."""
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "Dockerfile").write_text(f"FROM {BASE}\nONBUILD RUN --network=host true\n")
    engine.build(BuildOptions(context=str(parent), tags=["localhost/ent:parent"]))
    ctx = _ctx(tmp_path, f"FROM {BASE} AS first\nRUN echo first > /first\n"
                         "FROM localhost/ent:parent\nCOPY --from=first /first /first\n")
    before = _stored(engine)
    events, progress = collect()
    with pytest.raises(BuildError) as err:
        engine.build(BuildOptions(context=ctx, tags=["localhost/ent:child"]), progress)
    assert str(err.value) == "Dockerfile:3: network.host is not allowed"
    assert not [e for e in events if e.action == "Step"]
    assert _stored(engine) == before
    result = engine.build(BuildOptions(context=ctx, tags=["localhost/ent:child"],
                                       allow=["network.host"]))
    assert result.tags == ["localhost/ent:child"]
