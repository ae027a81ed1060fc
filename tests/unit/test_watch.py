"""core.watch: inotify and stat-polling watchers on a fake state root (no containers)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from core import fsutil
from core.paths import Paths
from core.watch import KINDS, Watcher


def _paths(root: str) -> Paths:
    return Paths(root=root, run=os.path.join(root, "run"), config=os.path.join(root, "cfg"))


@pytest.fixture(params=["inotify", "poll"])
def mode(request):
    return request.param


def _watcher(paths, mode):
    w = Watcher(paths, fallback=(mode == "poll"), poll_interval=0.05, quiet=0.05)
    assert w.mode == mode
    return w


def _later(delay: float, fn) -> threading.Thread:
    def run():
        time.sleep(delay)
        fn()

    t = threading.Thread(target=run)
    t.start()
    return t


def test_idle_reports_nothing(root, mode):
    with _watcher(_paths(root), mode) as w:
        start = time.monotonic()
        assert not w.wait(0.3)
        assert time.monotonic() - start >= 0.28


def test_index_json_is_images(root, mode):
    p = _paths(root)
    with _watcher(p, mode) as w:
        fsutil.atomic_write_json(p.index, {"manifests": []})
        ch = w.wait(2)
        assert ch.kinds == {"images"}


def test_container_lifecycle(root, mode):
    p = _paths(root)
    os.makedirs(p.containers)
    with _watcher(p, mode) as w:
        cid = "c0ffee" * 4
        os.makedirs(p.container(cid))
        fsutil.atomic_write_json(os.path.join(p.container(cid), "config.json"), {"Id": cid})
        ch = w.wait(2)
        assert ch.kinds == {"containers"}
        assert ch.ids == {cid}
        time.sleep(0.1)
        if mode == "inotify":
            assert p.container(cid) in w.watched
        # a state transition written by another process (the shim)
        fsutil.atomic_write_json(os.path.join(p.container(cid), "state.json"), {"Status": "running"})
        ch = w.wait(2)
        assert ch.kinds == {"containers"} and ch.ids == {cid}
        # taking the container's lock is not a change
        with fsutil.locked(os.path.join(p.container(cid), "lock")):
            pass
        with open(os.path.join(p.container(cid), "log.json"), "a") as f:
            f.write("{}\n")
        assert not w.wait(0.3)
        # removed
        import shutil

        shutil.rmtree(p.container(cid))
        ch = w.wait(2)
        assert "containers" in ch.kinds and cid in ch.ids


def test_networks_and_volumes(root, mode):
    p = _paths(root)
    os.makedirs(os.path.join(p.networks, "containers"))
    os.makedirs(p.volumes)
    with _watcher(p, mode) as w:
        fsutil.atomic_write_json(os.path.join(p.networks, "net1.json"), {"Name": "net1"})
        assert w.wait(2).kinds == {"networks"}
        fsutil.atomic_write_json(os.path.join(p.networks, "containers", "abc.json"), {})
        ch = w.wait(2)
        assert ch.kinds == {"networks"} and ch.ids == {"abc"}
        os.makedirs(os.path.join(p.volumes, "vol1", "_data"))
        assert w.wait(2).kinds == {"volumes"}


def test_burst_is_one_change(root, mode):
    """run writes config, state, network records and state again: one report."""
    p = _paths(root)
    os.makedirs(os.path.join(p.networks, "containers"))
    os.makedirs(p.containers)
    with _watcher(p, mode) as w:
        cid = "ab" * 32
        os.makedirs(p.container(cid))
        for i in range(5):
            fsutil.atomic_write_json(os.path.join(p.container(cid), "state.json"), {"n": i})
        fsutil.atomic_write_json(os.path.join(p.networks, "containers", f"{cid}.json"), {})
        fsutil.atomic_write_json(p.index, {"manifests": []})
        ch = w.wait(2)
        assert ch.kinds == {"containers", "networks", "images"}
        assert cid in ch.ids
        assert not w.wait(0.3)


def test_close_wakes_a_blocked_wait(root, mode):
    w = _watcher(_paths(root), mode)
    t = _later(0.2, w.close)
    start = time.monotonic()
    assert not w.wait(None)
    assert time.monotonic() - start < 2
    t.join()
    w.release()
    w.release()  # twice is fine


def test_root_created_later(tmp_path, mode):
    root = str(tmp_path / "later")
    p = _paths(root)
    w = Watcher(p, fallback=(mode == "poll"), poll_interval=0.05, quiet=0.05)
    try:
        assert not w.wait(0.15)
        os.makedirs(p.containers)
        ch = w.wait(2)
        assert ch  # the new root is picked up
        if mode == "inotify":
            assert root in w.watched and p.containers in w.watched
        fsutil.atomic_write_json(p.index, {"manifests": []})
        assert "images" in w.wait(2).kinds
    finally:
        w.release()


def test_changes_returns_kinds(root, mode):
    p = _paths(root)
    with _watcher(p, mode) as w:
        fsutil.atomic_write_json(p.index, {})
        assert w.changes(2) == {"images"}
        assert w.changes(0.1) == set()


def test_inotify_overflow_reports_everything(root):
    from core.watch import IN_Q_OVERFLOW, Changes

    with Watcher(_paths(root)) as w:
        out = Changes()
        w._event(-1, IN_Q_OVERFLOW, "", out)
        assert out.kinds == set(KINDS)


def test_idle_inotify_wait_uses_no_cpu(root):
    with Watcher(_paths(root)) as w:
        c0 = time.process_time()
        assert not w.wait(0.5)
        assert time.process_time() - c0 < 0.05
