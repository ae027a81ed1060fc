"""docs/cli.md is generated from the parsers; it must match the code."""

from pathlib import Path

from workbench.cli import docgen

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_cli_reference_is_current():
    want = docgen.generate()
    have = DOC.read_text()
    assert have == want, "docs/cli.md is stale: python -m workbench.cli.docgen > docs/cli.md"


def test_reference_lists_every_verb():
    text = DOC.read_text()
    for verb in ("run", "exec", "pull", "push", "build", "commit", "network create", "volume create",
                 "image prune", "system df"):
        assert f" {verb}\n" in text, verb


def test_layout_ignores_terminal_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "37")
    assert docgen.generate() == DOC.read_text()
