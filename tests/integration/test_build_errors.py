"""Failed builds: one clear line, Docker's exit codes, nothing tagged, no container left
behind (also after Ctrl-C), and an existing tag untouched."""

from __future__ import annotations

import os

import pytest

from core.dockerfile.builder import BuildError, BuildOptions, RunFailed
from core.dockerfile.context import ContextError
from core.errors import NotFound
from tests.integration.test_build_fixtures import BASE, FIXTURES, built_on, collect

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(root, busybox_rootfs):
    yield from built_on(root, busybox_rootfs)


def _context(tmp_path, dockerfile: str, files: dict | None = None) -> str:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, data in (files or {}).items():
        (ctx / name).write_text(data)
    return str(ctx)


def _cli(engine, *argv) -> int:
    from workbench.cli import main

    return main(["--root", engine.paths.root, *argv])


def test_failing_run_stops_with_its_code_and_tags_nothing(engine, tmp_path, capfd):
    ctx = _context(tmp_path, f"FROM {BASE}\nRUN echo ok > /ok\nRUN echo before; exit 3\nRUN touch /never\n")
    events, progress = collect()
    with pytest.raises(RunFailed) as err:
        engine.build(BuildOptions(context=ctx, tags=["localhost/broken:1"]), progress)
    assert err.value.exit_code == 3
    assert str(err.value) == ("Dockerfile:3: the command '/bin/sh -c echo before; exit 3' "
                              "returned a non-zero code: 3")
    assert "before" in [e.message for e in events if e.action == "Output"]
    assert not any(e.message == "RUN touch /never" for e in events if e.action == "Step")
    with pytest.raises(NotFound):
        engine.image("localhost/broken:1")
    # the CLI: exit code 3 (classic docker build), one line on stderr
    capfd.readouterr()
    assert _cli(engine, "build", "-t", "localhost/broken:1", ctx) == 3
    err_text = capfd.readouterr().err
    assert err_text == ("nutshell: Dockerfile:3: the command '/bin/sh -c echo before; exit 3' "
                        "returned a non-zero code: 3\n")


def test_failure_keeps_the_previous_image_of_the_tag(engine, tmp_path):
    good = engine.build(BuildOptions(context=_context(tmp_path, f"FROM {BASE}\nRUN echo v1 > /v\n"),
                                     tags=["localhost/app:1"]))
    ctx = _context(tmp_path, f"FROM {BASE}\nRUN echo v2 > /v && false\n")
    with pytest.raises(RunFailed):
        engine.build(BuildOptions(context=ctx, tags=["localhost/app:1"]))
    assert engine.image("localhost/app:1").id == good.image_id


def test_command_not_found_is_127(engine, tmp_path, capfd):
    ctx = _context(tmp_path, f'FROM {BASE}\nRUN ["/no/such/program"]\n')
    with pytest.raises(RunFailed) as err:
        engine.build(BuildOptions(context=ctx, tags=["localhost/x:1"]))
    assert err.value.exit_code == 127
    assert str(err.value).startswith("Dockerfile:2: the command '/no/such/program' could not run")


def test_syntax_error_names_the_line_and_exits_1(engine, capfd):
    ctx = os.path.join(FIXTURES, "syntax-error")
    capfd.readouterr()
    assert _cli(engine, "build", "--build-arg", f"BASE={BASE}", ctx) == 1
    out = capfd.readouterr()
    assert out.err == "nutshell: Dockerfile:7: unknown instruction: RUNN\ndid you mean RUN?\n"
    assert out.out == ""


def test_missing_context_and_dockerfile(engine, tmp_path, capfd):
    capfd.readouterr()
    assert _cli(engine, "build", str(tmp_path / "nope")) == 1
    assert capfd.readouterr().err.startswith("nutshell: unable to prepare context: path ")
    (tmp_path / "empty").mkdir()
    assert _cli(engine, "build", str(tmp_path / "empty")) == 1
    err = capfd.readouterr().err.splitlines()
    assert err[0] == (f"nutshell: unable to prepare context: cannot find the Dockerfile "
                      f"{tmp_path / 'empty' / 'Dockerfile'}")


@pytest.mark.parametrize("dockerfile, error, message, hint", [
    pytest.param("FROM {BASE}\n\nCOPY missing.txt /x\n", ContextError,
                 "Dockerfile:3: COPY failed: file not found in build context or "
                 "excluded by .dockerignore: missing.txt", None,
                 id="missing-copy-source-names-the-line"),
    pytest.param("FROM {BASE}\nADD https://example.invalid/x.tar /x\n", ContextError,
                 "Dockerfile:2: ADD failed: remote sources are not supported: "
                 "https://example.invalid/x.tar", "download the file",
                 id="add-url-is-refused"),
    pytest.param("FROM {BASE} AS a\nRUN true\nFROM {BASE}\nCOPY --from=a /nope /x\n", BuildError,
                 "Dockerfile:4: COPY --from=a failed: /nope: no such file or directory in a", None,
                 id="copy-from-missing-path-in-stage"),
])
def test_a_missing_source_is_one_line_naming_the_instruction(engine, tmp_path, dockerfile, error, message,
                                                             hint):
    ctx = _context(tmp_path, dockerfile.format(BASE=BASE))
    with pytest.raises(error) as err:
        engine.build(BuildOptions(context=ctx))
    assert str(err.value) == message
    if hint:
        assert hint in err.value.hint


def test_unsupported_flags_are_refused_before_anything_runs(engine, tmp_path):
    ctx = _context(tmp_path, f"FROM {BASE}\nRUN true\nRUN --mount=type=cache,target=/c true\n")
    events, progress = collect()
    with pytest.raises(BuildError) as err:
        engine.build(BuildOptions(context=ctx), progress)
    assert str(err.value) == "Dockerfile:3: RUN --mount is not supported by this builder"
    assert not [e for e in events if e.action == "Step"]


def test_ctrl_c_during_run_removes_the_container(engine, tmp_path):
    ctx = _context(tmp_path, f"FROM {BASE}\nRUN echo started; sleep 60\n")

    def interrupt(ev):
        if ev.action == "Output" and ev.message == "started":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine.build(BuildOptions(context=ctx, tags=["localhost/int:1"]), interrupt)
    with pytest.raises(NotFound):
        engine.image("localhost/int:1")
    # the fixture's teardown checks: no container, no build scratch dir


def test_bad_tag_is_refused_before_building(engine, tmp_path, capfd):
    ctx = _context(tmp_path, f"FROM {BASE}\nRUN true\n")
    capfd.readouterr()
    assert _cli(engine, "build", "-t", "Bad:Tag:x", ctx) == 1
    err = capfd.readouterr()
    assert err.out == ""
    assert err.err.startswith("nutshell: ")


def test_run_as_an_unknown_user_names_the_line(engine, tmp_path):
    ctx = _context(tmp_path, f"FROM {BASE}\nUSER ghost\nRUN true\n")
    with pytest.raises(BuildError) as err:
        engine.build(BuildOptions(context=ctx))
    assert str(err.value).startswith("Dockerfile:3: RUN failed: ")
    assert "ghost" in str(err.value)
