"""core.runtime.cgroups on this host's real cgroup filesystem (root, real kernel).

Every cgroup made here is named ``nutshell-test-<random>/<leaf>``; the fixture kills
whatever is left in it and removes it from every hierarchy, and the leak checks only
look at that name, so helpers running tests at the same time do not disturb us.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import struct
import subprocess
import sys
import time

import pytest

from core.errors import RuntimeFailure
from core.runtime import cgroups as C

pytestmark = pytest.mark.integration

MiB = 1 << 20
ROOT = C.CGROUP_ROOT


def _hierarchy_roots() -> list[str]:
    """Every mounted hierarchy (v1 controllers, named, unified) or the v2 root."""
    version = C.detect()
    if version == "v2":
        return [ROOT]
    roots = [os.path.join(ROOT, e) for e in sorted(os.listdir(ROOT))]
    return [r for r in roots if os.path.exists(os.path.join(r, "cgroup.procs"))]


def _dirs_named(prefix: str) -> list[str]:
    return [os.path.join(r, prefix) for r in _hierarchy_roots() if os.path.isdir(os.path.join(r, prefix))]


def _force_remove(path: str) -> None:
    for dirpath, _dirs, _files in os.walk(path, topdown=False):
        for _ in range(200):
            pids = [int(p) for p in open(os.path.join(dirpath, "cgroup.procs")).read().split()]
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                state = os.path.join(dirpath, "freezer.state")
                if os.path.exists(state):
                    open(state, "w").write("THAWED")
                os.rmdir(dirpath)
                break
            except OSError:
                time.sleep(0.01)


@pytest.fixture
def prefix():
    """A unique parent name for this test's cgroups; removed everywhere afterwards."""
    name = f"nutshell-test-{secrets.token_hex(4)}"
    yield name
    for d in _dirs_named(name):
        _force_remove(d)
    assert _dirs_named(name) == [], "test cgroups leaked"


def _waiting_python(code: str, **kw) -> subprocess.Popen:
    """A Python child that blocks on stdin until released, so it can join a cgroup
    before it does its work."""
    prog = "import sys; sys.stdin.buffer.read(1)\n" + code
    return subprocess.Popen([sys.executable, "-c", prog], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _release(p: subprocess.Popen) -> None:
    p.stdin.write(b"x")
    p.stdin.flush()


def _finish(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.kill()
    p.communicate(timeout=10)


@contextlib.contextmanager
def _python_in(cg: C.Cgroup, code: str):
    """A :func:`_waiting_python` child running ``code`` for a test of ``cg``; afterwards
    the child is ended and the cgroup destroyed."""
    p = _waiting_python(code)
    try:
        yield p
    finally:
        _finish(p)
        cg.destroy()


def test_joined_before_the_payload_runs(prefix):
    cg = C.Cgroup.create(f"{prefix}/join", pids_limit=50)
    try:
        out = subprocess.run(
            [sys.executable, "-c", "print(open('/proc/self/cgroup').read())"],
            preexec_fn=lambda: cg.add_pid(0), capture_output=True, text=True, timeout=30, check=True,
        ).stdout
        lines = dict(line.split(":", 2)[1:] for line in out.strip().splitlines())
        if cg.version == "v2":
            assert lines[""] == "/" + f"{prefix}/join" or lines[""].endswith(f"/{prefix}/join")
        else:
            for ctrl in ("memory", "pids", "cpu", "freezer", "devices"):
                assert lines[ctrl] == f"/{prefix}/join", ctrl
            if cg.version == "hybrid":
                assert lines[""] == f"/{prefix}/join"
    finally:
        cg.destroy()


def test_memory_limit_oom_kills_and_is_detected(prefix):
    cg = C.Cgroup.create(f"{prefix}/oom", memory=32 * MiB)
    with _python_in(cg, "b = bytearray(100 << 20)\nprint('survived', len(b))") as p:
        cg.add_pid(p.pid)
        assert cg.oom_killed() is False
        _release(p)
        out, _err = p.communicate(timeout=30)
        assert p.returncode == -signal.SIGKILL
        assert b"survived" not in out
        assert cg.oom_killed() is True
        s = cg.stats()
        assert s.oom_kills is not None and s.oom_kills >= 1
        assert s.memory_limit == 32 * MiB


def test_memory_below_limit_is_not_oom(prefix):
    cg = C.Cgroup.create(f"{prefix}/fine", memory=64 * MiB)
    with _python_in(cg, "b = bytearray(8 << 20)\nprint('survived', len(b))") as p:
        cg.add_pid(p.pid)
        _release(p)
        out, _err = p.communicate(timeout=30)
        assert p.returncode == 0 and b"survived" in out
        assert cg.oom_killed() is False


FORK_LOOP = """
import os, time
ok = failed = 0
for _ in range(50):
    try:
        pid = os.fork()
    except BlockingIOError:
        failed += 1
        continue
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    ok += 1
print(ok, failed, flush=True)
time.sleep(60)
"""


def test_pids_limit_stops_a_fork_loop(prefix):
    cg = C.Cgroup.create(f"{prefix}/forks", pids_limit=20)
    with _python_in(cg, FORK_LOOP) as p:
        cg.add_pid(p.pid)
        _release(p)
        ok, failed = map(int, p.stdout.readline().split())
        assert (ok, failed) == (19, 31)  # 19 children + the parent = 20
        s = cg.stats()
        assert (s.pids_current, s.pids_limit) == (20, 20)
        assert len(cg.procs()) == 20
        cg.destroy()
        assert cg.procs() == [] and not cg.exists()
        assert p.wait(timeout=10) == -signal.SIGKILL


BUSY = """
import time
end = time.monotonic() + 0.6
while time.monotonic() < end:
    pass
"""


def test_cpu_quota_is_written_and_enforced(prefix):
    cg = C.Cgroup.create(f"{prefix}/cpu", cpus=0.5)
    with _python_in(cg, BUSY) as p:
        files = cg.limit_files()
        if cg.version == "v2":
            assert files[os.path.join(cg.paths["unified"], "cpu.max")] == "50000 100000"
        else:
            assert files[os.path.join(cg.paths["cpu"], "cpu.cfs_quota_us")] == "50000"
            assert files[os.path.join(cg.paths["cpu"], "cpu.cfs_period_us")] == "100000"
        assert cg.stats().cpus_limit == 0.5
        cg.add_pid(p.pid)
        before = cg.stats().cpu_usage_ns
        t0 = time.monotonic()
        _release(p)
        p.wait(timeout=30)
        wall = time.monotonic() - t0
        used = (cg.stats().cpu_usage_ns - before) / 1e9
        # a busy loop with half a CPU: ~0.5 of wall time, never the full CPU
        assert 0 < used / wall < 0.7, (used, wall)


COUNTER = """
import os, struct
fd = os.open(sys.argv[1], os.O_RDWR)
i = 0
while True:
    i += 1
    os.pwrite(fd, struct.pack("Q", i), 0)
"""


def test_freeze_stops_and_thaw_resumes(prefix, tmp_path):
    counter = tmp_path / "counter"
    counter.write_bytes(b"\0" * 8)
    read = lambda: struct.unpack("Q", counter.read_bytes())[0]  # noqa: E731
    cg = C.Cgroup.create(f"{prefix}/freeze")
    prog = "import sys; sys.stdin.buffer.read(1)\n" + COUNTER
    p = subprocess.Popen([sys.executable, "-c", prog, str(counter)], stdin=subprocess.PIPE)
    try:
        cg.add_pid(p.pid)
        _release(p)
        deadline = time.monotonic() + 10
        while read() < 1000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert read() >= 1000
        cg.freeze()
        assert cg.is_frozen()
        a = read()
        time.sleep(0.3)
        assert read() == a  # not one more increment while frozen
        cg.thaw()
        assert not cg.is_frozen()
        time.sleep(0.3)
        assert read() > a
    finally:
        cg.destroy()  # also kills a frozen cgroup
        p.wait(timeout=10)
    assert p.returncode == -signal.SIGKILL


def test_kill_all_and_destroy_leave_nothing(prefix):
    cg = C.Cgroup.create(f"{prefix}/tree", memory=64 * MiB, pids_limit=50)
    p = subprocess.Popen(["/bin/sh", "-c", "read x; sleep 100 & sleep 100 & sleep 100 & wait"],
                         stdin=subprocess.PIPE)
    try:
        cg.add_pid(p.pid)
        p.stdin.write(b"\n")
        p.stdin.flush()
        deadline = time.monotonic() + 10
        while len(cg.procs()) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(cg.procs()) == 4
        cg.kill_all()
        assert cg.procs() == []
        assert p.wait(timeout=10) == -signal.SIGKILL
        cg.destroy()
        cg.destroy()  # idempotent
        leaf = f"{prefix}/tree"
        assert [r for r in _hierarchy_roots() if os.path.exists(os.path.join(r, leaf))] == []
        assert C.Cgroup.open(leaf) is None
    finally:
        _finish(p)
        cg.destroy()


def test_destroy_kills_a_running_cgroup(prefix):
    cg = C.Cgroup.create(f"{prefix}/busy")
    p = subprocess.Popen(["sleep", "100"], preexec_fn=lambda: cg.add_pid(0))
    try:
        assert cg.procs() == [p.pid]
        cg.destroy()
        assert p.wait(timeout=10) == -signal.SIGKILL
        assert _dirs_named(prefix) and not cg.exists()  # only the shared parent remains
    finally:
        _finish(p)


def test_open_sees_the_same_cgroup(prefix):
    cg = C.Cgroup.create(f"{prefix}/open", memory=48 * MiB, cpus=1.5, pids_limit=30)
    p = subprocess.Popen(["sleep", "100"], preexec_fn=lambda: cg.add_pid(0))
    try:
        again = C.Cgroup.open(f"{prefix}/open")
        assert again is not None and again.paths == cg.paths
        s = again.stats()
        assert (s.memory_limit, s.pids_limit, s.pids_current, s.cpus_limit) == (48 * MiB, 30, 1, 1.5)
        assert s.cpu_usage_ns is not None and s.memory_usage is not None
        again.set_limits(memory=96 * MiB, pids_limit=40)
        assert (cg.stats().memory_limit, cg.stats().pids_limit) == (96 * MiB, 40)
    finally:
        cg.destroy()
        _finish(p)


def test_v1_device_allow_list(prefix):
    if C.detect() == "v2":
        pytest.skip("the v2 device controller is eBPF; not implemented")
    if not os.path.exists("/dev/kmsg"):
        pytest.skip("needs /dev/kmsg (c 1:11), a device not on Docker's list")
    cg = C.Cgroup.create(f"{prefix}/dev")
    assert cg.devices_enforced
    code = (
        "import os\n"
        "os.close(os.open('/dev/null', os.O_WRONLY)); print('null ok')\n"
        "try:\n    os.open('/dev/kmsg', os.O_RDONLY)\n    print('kmsg opened')\n"
        "except PermissionError:\n    print('kmsg denied')\n"
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], preexec_fn=lambda: cg.add_pid(0),
                             capture_output=True, text=True, timeout=30).stdout
        assert out.split("\n")[:2] == ["null ok", "kmsg denied"]
        # the same program outside the cgroup can open it: the denial is the cgroup's
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30).stdout
        assert "kmsg opened" in out
    finally:
        cg.destroy()


@pytest.mark.parametrize("with_cgroup_kill", [True, False])
def test_fork_bomb_is_capped_and_destroyed(prefix, with_cgroup_kill):
    cg = C.Cgroup.create(f"{prefix}/bomb", pids_limit=20)
    if not with_cgroup_kill:
        if "unified" not in cg.paths or cg.version == "v2":
            cg.destroy()
            pytest.skip("the freeze-and-kill loop is tested on v1/hybrid hosts")
        cg._dirs.pop("unified")  # force the v1 path: freeze, kill each, thaw, repeat
    bomb = "read x; b() { b | b & }; b; sleep 100"
    p = subprocess.Popen(["/bin/sh", "-c", bomb], stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        cg.add_pid(p.pid)
        p.stdin.write(b"\n")
        p.stdin.flush()
        time.sleep(0.5)
        s = cg.stats()
        assert s.pids_current is not None and 10 <= s.pids_current <= 20
        cg.destroy()
        assert not cg.exists() and cg.procs() == []
    finally:
        _finish(p)
        cg.destroy()


def test_v2_code_on_the_real_unified_mount(prefix, tmp_path):
    """A hybrid host's unified/ mount is a real cgroup2 tree without controllers: enough
    to run the v2 code for mkdir, joining, the core freezer, cgroup.kill and rmdir."""
    if C.detect() != "hybrid":
        pytest.skip("needs a hybrid host (on a v2 host the other tests already run the v2 code)")
    # Our own sub-tree as the "root", so no controller is ever enabled in the host's
    # unified root (the host has hugetlb there, and we leave its subtree_control alone).
    unified = os.path.join(ROOT, "unified", prefix)
    os.mkdir(unified)
    assert C.detect(unified) == "v2"
    with pytest.raises(RuntimeFailure, match="pids"):
        C.Cgroup.create("nolimits", pids_limit=5, root=unified)
    assert not os.path.exists(os.path.join(unified, "nolimits"))

    counter = tmp_path / "counter"
    counter.write_bytes(b"\0" * 8)
    read = lambda: struct.unpack("Q", counter.read_bytes())[0]  # noqa: E731
    cg = C.Cgroup.create("v2core", root=unified)
    assert cg.version == "v2" and cg.paths == {"unified": os.path.join(unified, "v2core")}
    prog = "import sys\n" + COUNTER
    p = subprocess.Popen([sys.executable, "-c", prog, str(counter)], preexec_fn=lambda: cg.add_pid(0))
    try:
        assert open(f"/proc/{p.pid}/cgroup").read().splitlines()[-1] == f"0::/{prefix}/v2core"
        assert C.Cgroup.open("v2core", root=unified).paths == cg.paths
        assert cg.procs() == [p.pid]
        deadline = time.monotonic() + 10
        while read() < 1000 and time.monotonic() < deadline:
            time.sleep(0.01)
        cg.freeze()
        assert cg.is_frozen()
        a = read()
        time.sleep(0.2)
        assert read() == a
        cg.thaw()
        time.sleep(0.2)
        assert read() > a
        cg.kill_all()  # cgroup.kill
        assert p.wait(timeout=10) == -signal.SIGKILL
        cg.destroy()
        assert not cg.exists()
    finally:
        _finish(p)
        cg.destroy()
