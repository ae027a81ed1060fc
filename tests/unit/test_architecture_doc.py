"""docs/architecture.md is the map of the tree: every folder of core/, workbench/ and
tests/ (and screenshots/, docs/) is listed there with its purpose, and every folder it
lists exists."""

from __future__ import annotations

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKIP = {"__pycache__", "__snapshots__"}


def _mapped() -> set[str]:
    text = open(os.path.join(REPO, "docs", "architecture.md")).read()
    block = text.split("## The map", 1)[1].split("```", 2)[1]
    return {m.group(1).rstrip("/") for m in re.finditer(r"^([a-z0-9_/]+/)\s", block, re.M)}


def _tree() -> set[str]:
    found = {"screenshots", "docs"}
    for top in ("core", "workbench", "tests"):
        found.add(top)
        for dirpath, dirnames, _files in os.walk(os.path.join(REPO, top)):
            dirnames[:] = [d for d in dirnames if d not in SKIP]
            rel = os.path.relpath(dirpath, REPO)
            if rel.startswith(os.path.join("tests", "fixtures") + os.sep):
                continue  # the fixtures' own folders are data
            found.add(rel)
    return found


def test_every_folder_is_on_the_map():
    missing = _tree() - _mapped()
    assert not missing, f"folders not described in docs/architecture.md: {sorted(missing)}"


def test_the_map_names_only_folders_that_exist():
    stale = _mapped() - _tree()
    assert not stale, f"docs/architecture.md lists folders that do not exist: {sorted(stale)}"
