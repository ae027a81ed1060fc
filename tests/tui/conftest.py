"""Fixtures of the Textual tests shared by several modules."""

import glob

import pytest


@pytest.fixture(scope="module")
def real_engine(tmp_path_factory):
    from core.engine import Engine
    from workbench.default_image import ensure_default_image

    root = str(tmp_path_factory.mktemp("teach-tui-root"))
    eng = Engine(root)
    ensure_default_image(eng)
    yield eng
    ids = [c["Id"] for c in eng.ps(all=True)]
    for cid in ids:
        try:
            eng.rm(cid, force=True)
        except Exception:  # noqa: BLE001
            pass
    try:
        eng.network_reset()
    except Exception:  # noqa: BLE001
        pass
    left = []
    for cid in ids:
        left += glob.glob(f"/sys/fs/cgroup/*/nutshell/{cid}")
        with open("/proc/self/mountinfo") as f:
            left += [line for line in f if cid in line]
    assert not left, left


@pytest.fixture
def deterministic(monkeypatch):
    """No timer-driven samples, and the same core count on every machine (the pane
    snapshots use it: ``pytest.mark.usefixtures("deterministic")``)."""
    from workbench.panes import stats

    monkeypatch.setattr(stats.StatsPane, "SAMPLE_INTERVAL", 3600)
    monkeypatch.setattr(stats.os, "cpu_count", lambda: 2)
