"""Fixtures of the Textual tests shared by several modules."""

import pytest

from tests.runtime_root import default_image_engine


@pytest.fixture
def engine():
    """The fake engine (tests/tui/fakes.py), new for each test."""
    from tests.tui.fakes import FakeEngine

    return FakeEngine()


@pytest.fixture(scope="module")
def real_engine(tmp_path_factory):
    """An engine with the default image on a root of its own, per test module."""
    yield from default_image_engine(str(tmp_path_factory.mktemp("teach-tui-root")))


@pytest.fixture
def deterministic(monkeypatch):
    """No timer-driven samples, and the same core count on every machine (the pane
    snapshots use it: ``pytest.mark.usefixtures("deterministic")``)."""
    from workbench.panes import stats

    monkeypatch.setattr(stats.StatsPane, "SAMPLE_INTERVAL", 3600)
    monkeypatch.setattr(stats.os, "cpu_count", lambda: 2)
