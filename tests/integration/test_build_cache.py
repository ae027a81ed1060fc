"""The build cache, judged from the build's own events: a rebuild with no change is all
CACHED; a change to one copied file re-runs exactly the steps from that COPY on; what
does not change the copied content (touching a file, editing an ignored one) keeps the
cache; the store's GC keeps cached layers; ``builder prune`` drops them."""

from __future__ import annotations

import os
import shutil

import pytest

from core.dockerfile.builder import BuildOptions
from tests.integration.test_build_fixtures import BASE, FIXTURES, built_on, collect, extract_image, steps_by_state

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(root, busybox_rootfs):
    yield from built_on(root, busybox_rootfs, state_clean=False)


def _context(tmp_path, fixture: str) -> str:
    dest = str(tmp_path / fixture)
    shutil.copytree(os.path.join(FIXTURES, fixture), dest, symlinks=True)
    return dest


def _build(engine, context, tag="localhost/cache:1", **kw):
    events, progress = collect()
    args = {"BASE": BASE, **kw.pop("build_args", {})}
    result = engine.build(BuildOptions(context=context, tags=[tag], build_args=args, **kw), progress)
    return result, events


def test_rebuild_without_change_is_all_cached(engine, tmp_path):
    ctx = _context(tmp_path, "multistage")
    first, ev1 = _build(engine, ctx)
    cached, ran = steps_by_state(ev1)
    assert any(e.action == "Running" for e in ev1)          # the RUN really ran
    assert len(ran) == 7                                     # everything but the 3 FROMs
    second, ev2 = _build(engine, ctx)
    cached, ran = steps_by_state(ev2)
    assert ran == []
    assert len(cached) == 10
    assert not any(e.action in ("Running", "Output") for e in ev2)
    assert all(r.cached for r in second.steps)
    # the same steps give the same layers, config and so the same image ID
    assert second.image_id == first.image_id


@pytest.mark.parametrize("fixture, path, text, cached_steps, rerun_steps, result, result_text", [
    pytest.param(
        "copy-chown", "config.txt", "key=changed\n",
        ["FROM ${BASE}", "ARG APP_UID=1000", "COPY --chown=${APP_UID}:${APP_UID} app/ /app/"],
        ["COPY --chown=1234 config.txt /etc/app/config.txt", "COPY *.md /docs/",
         "COPY important.log /logs/", "USER ${APP_UID}"],
        "etc/app/config.txt", "key=changed\n",
        id="one-copied-file-reruns-only-later-steps"),
    pytest.param(
        "multistage", "hello.sh", 'echo "changed"\n',
        ["FROM ${BASE} AS builder", "WORKDIR /src", "FROM scratch AS artifact", "FROM ${BASE}"],
        ["COPY hello.sh ./", "RUN sh hello.sh > /src/greeting.txt",
         "COPY --from=builder /src/greeting.txt /greeting.txt",
         "COPY --from=artifact /greeting.txt /app/greeting.txt",
         "COPY --from=builder /src/hello.sh /app/",
         'CMD ["cat", "/app/greeting.txt"]'],
        "app/greeting.txt", "changed\n",
        id="a-file-of-the-first-stage-reruns-what-depends-on-it"),
])
def test_changing_a_file_reruns_what_depends_on_it(engine, tmp_path, fixture, path, text, cached_steps,
                                                    rerun_steps, result, result_text):
    ctx = _context(tmp_path, fixture)
    _build(engine, ctx)
    with open(os.path.join(ctx, path), "w") as f:
        f.write(text)
    _, events = _build(engine, ctx)
    cached, ran = steps_by_state(events)
    assert cached == cached_steps
    assert ran == rerun_steps
    extract_image(engine, "localhost/cache:1", str(tmp_path / "tree"))
    with open(tmp_path / "tree" / result) as f:
        assert f.read() == result_text


def test_touch_and_ignored_files_keep_the_cache(engine, tmp_path):
    ctx = _context(tmp_path, "copy-chown")
    _build(engine, ctx)
    os.utime(os.path.join(ctx, "config.txt"), (1, 1))            # mtime only
    with open(os.path.join(ctx, "debug.log"), "a") as f:         # excluded by .dockerignore
        f.write("more noise\n")
    with open(os.path.join(ctx, "app", "cache", "new.bin"), "w") as f:   # app/**/cache
        f.write("x")
    _, events = _build(engine, ctx)
    cached, ran = steps_by_state(events)
    assert ran == []


def test_a_mode_change_is_a_change(engine, tmp_path):
    ctx = _context(tmp_path, "copy-chown")
    _build(engine, ctx)
    os.chmod(os.path.join(ctx, "important.log"), 0o600)
    _, events = _build(engine, ctx)
    cached, ran = steps_by_state(events)
    assert ran == ["COPY important.log /logs/", "USER ${APP_UID}"]


def test_a_changed_build_arg_misses_from_its_arg_on(engine, tmp_path):
    ctx = os.path.join(FIXTURES, "args-env")
    _build(engine, ctx, build_args={"NAME": "one"})
    _, events = _build(engine, ctx, build_args={"NAME": "two"})
    cached, ran = steps_by_state(events)
    assert cached == ["FROM ${BASE}", "ARG GREETING=hello"]
    assert ran[0] == "ARG NAME"
    assert len(ran) == 10


def test_no_cache_runs_everything(engine, tmp_path):
    ctx = _context(tmp_path, "multistage")
    _build(engine, ctx)
    _, events = _build(engine, ctx, no_cache=True)
    cached, ran = steps_by_state(events)
    assert all(text.startswith("FROM") for text in cached)
    assert len(ran) == 7


def test_store_gc_keeps_cached_layers_and_prune_drops_them(engine, tmp_path):
    ctx = _context(tmp_path, "multistage")
    first, _ = _build(engine, ctx)
    layer_blobs = {r.layer for r in first.steps if r.layer}
    assert layer_blobs
    engine.rmi(["localhost/cache:1"])
    engine.image_prune(all=False)
    engine.store.gc()
    assert all(engine.store.has_blob(d) for d in layer_blobs), "GC removed cached layers"
    again, events = _build(engine, ctx)
    assert steps_by_state(events)[1] == []
    assert again.image_id == first.image_id
    # builder prune drops the entries; the blobs go with the next GC (prune runs it)
    engine.rmi(["localhost/cache:1"])
    result = engine.build_cache_prune()
    assert len(result["CachesDeleted"]) >= 7
    assert result["SpaceReclaimed"] > 0
    assert not any(engine.store.has_blob(d) for d in layer_blobs)
    _, events = _build(engine, ctx)
    assert len(steps_by_state(events)[1]) == 7


def test_builder_prune_cli(engine, tmp_path, capsys):
    from workbench.cli import main

    _build(engine, _context(tmp_path, "multistage"))
    capsys.readouterr()
    assert main(["--root", engine.paths.root, "builder", "prune", "-f"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Deleted build cache objects:\n")
    assert "Total reclaimed space: " in out
    assert not os.listdir(os.path.join(engine.paths.builds, "v1"))


def test_cache_usage(engine, tmp_path):
    result, _ = _build(engine, _context(tmp_path, "multistage"))
    usage = engine.build_cache_usage()
    layers = {r.layer for r in result.steps if r.layer}
    assert usage["Entries"] == 7                    # every step but the FROMs
    assert usage["Layers"] == len(layers) == 6      # WORKDIR, COPY, RUN, 3 x COPY --from
    assert usage["Size"] == sum(os.path.getsize(engine.store.blob_path(d)) for d in layers)
    engine.build_cache_prune()
    assert engine.build_cache_usage() == {"Entries": 0, "Layers": 0, "Size": 0}
