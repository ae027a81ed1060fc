import os
import subprocess

import pytest

from core.errors import NotFound, UsageError
from core.paths import resolve
from core.runtime import state as st
from core.runtime.linux import proc_start_time


def _make(records, cid, name, state=None):
    os.makedirs(records.dir(cid))
    records.write_config(cid, {"Id": cid, "Name": "/" + name})
    if state is not None:
        records.write_state(cid, state)


@pytest.fixture
def records(tmp_path):
    return st.Records(resolve(str(tmp_path / "root")))


def test_resolve_by_name_id_and_prefix(records):
    a, b = "ab" + "0" * 62, "ac" + "1" * 62
    _make(records, a, "alpha")
    _make(records, b, "beta")
    assert records.resolve("alpha") == a and records.resolve("/beta") == b
    assert records.resolve(a) == a and records.resolve("ac1") == b
    with pytest.raises(UsageError, match="multiple IDs"):
        records.resolve("a")
    with pytest.raises(NotFound, match="No such container: gamma"):
        records.resolve("gamma")
    assert records.name_in_use("alpha") == a
    assert records.name_in_use("alpha", except_id=a) is None


def test_state_defaults_and_not_found(records):
    cid = "c" * 64
    _make(records, cid, "x")
    assert records.state(cid)["Status"] == "created"
    with pytest.raises(NotFound):
        records.state("d" * 64)


def test_reconcile_kills_orphan_and_marks_exited(records):
    cid = "e" * 64
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = subprocess.Popen(["sleep", "30"])
    start = proc_start_time(orphan.pid)
    _make(records, cid, "orphan", {**st.initial_state(), "Status": "running", "Running": True,
                                   "Pid": orphan.pid, "PidStartTime": start,
                                   "ShimPid": dead.pid, "ShimStartTime": 12345})
    called = []
    s = records.state(cid, on_reconciled=lambda c, s: called.append(c))
    assert s["Status"] == "exited" and s["ExitCode"] == 137 and s["Error"] == "shim died"
    assert orphan.wait(timeout=5) == -9
    assert called == [cid]
    assert records.state(cid)["Status"] == "exited" and called == [cid]  # only once


def test_kill_verified_checks_start_time():
    p = subprocess.Popen(["sleep", "30"])
    try:
        assert not st.kill_verified(p.pid, 1, 9)          # wrong start time: untouched
        assert p.poll() is None
        assert st.kill_verified(p.pid, proc_start_time(p.pid), 9)
        assert p.wait(timeout=5) == -9
        assert not st.kill_verified(p.pid, None, 9)
    finally:
        p.kill()
        p.wait()


def test_running_with_live_shim_is_kept(records):
    cid = "f" * 64
    me = os.getpid()
    _make(records, cid, "live", {**st.initial_state(), "Status": "running", "Running": True,
                                 "Pid": me, "PidStartTime": proc_start_time(me),
                                 "ShimPid": me, "ShimStartTime": proc_start_time(me)})
    assert records.state(cid)["Status"] == "running"


def test_now_rfc3339_format():
    assert st.now_rfc3339(0) == "1970-01-01T00:00:00.000000000Z"


def test_the_name_index_is_built_once_then_kept_and_verified(records):
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    _make(records, a, "alpha")                  # made before any index: found by the scan
    assert records.lookup_name("alpha") == a
    names = os.path.join(records.paths.containers, ".names")
    assert sorted(os.listdir(names)) == ["alpha"]
    # from now on the index is what is read: a container written without an entry is not
    # found by name (create writes the entry first), one with an entry is
    _make(records, b, "beta")
    assert records.lookup_name("beta") is None
    records.index_name("beta", b)
    assert records.resolve("beta") == b and records.name_in_use("beta") == b
    # stale entries are harmless: a removed container, or one renamed since
    records.index_name("gone", c)
    assert records.lookup_name("gone") is None and records.name_in_use("gone") is None
    records.write_config(a, {"Id": a, "Name": "/renamed"})
    assert records.lookup_name("alpha") is None
    records.unindex_name("beta", a)             # not beta's container: the entry stays
    assert records.lookup_name("beta") == b
    records.unindex_name("beta", b)
    assert records.lookup_name("beta") is None


@pytest.mark.parametrize("name", ["../x", "a/b", ".names", "", "-x", "x\n", "/abs"])
def test_the_name_index_never_opens_a_path_outside_it(records, name):
    _make(records, "d" * 64, "delta")
    assert records.lookup_name(name) is None
    with pytest.raises(NotFound):
        records.resolve(name + "zz" if name else "zz-not-hex")
