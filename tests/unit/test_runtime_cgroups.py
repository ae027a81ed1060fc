"""core.runtime.cgroups on fake v1, v2 and hybrid trees.

The fake is a tiny "kernel" over a tmp directory: mkdir fills a cgroup with the control
files the real kernel would show, and writes to control files follow the kernel's rules
that matter here (subtree_control delegation, memory <= memsw ordering, the empty v1
cpuset refusing tasks, the devices list, freezer state, cgroup.kill, EBUSY on rmdir).
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest

from core.errors import RuntimeFailure, UsageError
from core.runtime import cgmove
from core.runtime import cgroups as C

MiB = 1 << 20
V1_UNLIMITED = "9223372036854771712"
V2_ALL = "cpuset cpu io memory hugetlb pids rdma misc"

# Real-format samples (shapes taken from a 6.x kernel).
V1_MEMORY_STAT = """cache 9580544
rss 5001216
rss_huge 0
shmem 9166848
mapped_file 7000064
dirty 8192
writeback 0
swap 0
pgpgin 21337
pgpgout 17777
inactive_anon 0
active_anon 1531904
inactive_file 8192
active_file 405504
unevictable 0
hierarchical_memory_limit 33554432
hierarchical_memsw_limit 67108864
total_cache 9580544
total_rss 5001216
total_inactive_anon 0
total_active_anon 1531904
total_inactive_file 2097152
total_active_file 405504
"""
V1_BLKIO = """8:0 Read 1974272
8:0 Write 4096
8:0 Sync 1978368
8:0 Async 0
8:0 Discard 0
8:0 Total 1978368
253:0 Read 12288
253:0 Write 8192
253:0 Sync 20480
253:0 Async 0
253:0 Discard 0
253:0 Total 20480
Total 1998848
"""
V2_MEMORY_STAT = """anon 5001216
file 9580544
kernel 1220608
kernel_stack 65536
sock 0
shmem 0
file_mapped 7000064
file_dirty 8192
inactive_anon 0
active_anon 5001216
inactive_file 3145728
active_file 6434816
unevictable 0
"""
V2_CPU_STAT = """usage_usec 1234567
user_usec 1000000
system_usec 234567
nice_usec 0
nr_periods 40
nr_throttled 12
throttled_usec 600000
nr_bursts 0
burst_usec 0
"""
V2_IO_STAT = (
    "8:0 rbytes=1974272 wbytes=4096 rios=42 wios=1 dbytes=0 dios=0\n"
    "253:0 rbytes=12288 wbytes=8192 rios=3 wios=2 dbytes=0 dios=0\n"
)
V2_MEMORY_EVENTS = "low 0\nhigh 0\nmax 37\noom 2\noom_kill 1\noom_group_kill 0\n"

# What `cat /sys/fs/cgroup/devices/devices.list` shows inside a default Docker container
# (moby's deny-all + runc's AllowedDevices + /dev/console), in our write order.
DOCKER_DEVICES = [
    "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
]

V1_CHILD_FILES = {
    "cpu": {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1", "cpu.shares": "1024",
            "cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n"},
    "cpuacct": {"cpuacct.usage": "0", "cpuacct.stat": "user 0\nsystem 0\n"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "memory": {"memory.limit_in_bytes": V1_UNLIMITED, "memory.memsw.limit_in_bytes": V1_UNLIMITED,
               "memory.usage_in_bytes": "0", "memory.stat": "cache 0\nrss 0\ntotal_inactive_file 0\n",
               "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"},
    "pids": {"pids.max": "max", "pids.current": "0"},
    "blkio": {"blkio.throttle.io_service_bytes_recursive": "Total 0\n"},
    "freezer": {"freezer.state": "THAWED"},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm\n"},
    "systemd": {},
}
V2_CONTROLLER_FILES = {
    "cpu": {"cpu.max": "max 100000", "cpu.weight": "100"},
    "memory": {"memory.max": "max", "memory.swap.max": "max", "memory.current": "0",
               "memory.stat": "anon 0\ninactive_file 0\n", "memory.events": "oom 0\noom_kill 0\n"},
    "pids": {"pids.max": "max", "pids.current": "0"},
    "io": {"io.stat": ""},
    "cpuset": {"cpuset.cpus": "", "cpuset.cpus.effective": "0-1"},
    "hugetlb": {}, "rdma": {}, "misc": {},
}


class FakeKernel:
    """A fake cgroup filesystem under ``root`` with kernel-like write semantics."""

    def __init__(self, root: Path, layout: str, *, v2_controllers: str = V2_ALL,
                 swap: bool = True, comount: bool = False, freeze_lag: int = 0,
                 refuse_root: bool = False, own_v2: str = "/"):
        self.root = root
        self.layout = layout
        self.swap = swap
        self.freeze_lag = freeze_lag  # how many writes a freeze needs before it settles
        self.refuse_root = refuse_root
        self.kills: list[tuple[int, int]] = []
        self.cgroup_kills: list[str] = []
        self.writes: list[tuple[str, str]] = []
        self.own_v2 = own_v2
        if layout in ("v1", "hybrid"):
            for ctrl in V1_CHILD_FILES:
                if comount and ctrl in ("cpu", "cpuacct"):
                    continue
                self._v1_root(root / ctrl, ctrl)
            if comount:
                both = root / "cpu,cpuacct"
                self._v1_root(both, "cpu,cpuacct")
                os.symlink("cpu,cpuacct", root / "cpu")
                os.symlink("cpu,cpuacct", root / "cpuacct")
            if layout == "hybrid":
                self._v2_root(root / "unified", "")
        else:
            self._v2_root(root, v2_controllers)
        proc = root.parent / "proc-self-cgroup"
        proc.write_text(f"0::{own_v2}\n" if layout == "v2" else "4:memory:/process_api/abc\n0::/\n")
        self.proc_self_cgroup = str(proc)

    # ---- tree building

    def _v1_root(self, path: Path, ctrl: str) -> None:
        path.mkdir(parents=True)
        (path / "cgroup.procs").write_text("")
        (path / ".ctrl").write_text(ctrl)  # fake-only marker: which controllers live here
        if ctrl == "cpuset":
            (path / "cpuset.cpus").write_text("0-1\n")
            (path / "cpuset.mems").write_text("0\n")

    def _v2_root(self, path: Path, controllers: str) -> None:
        path.mkdir(parents=True, exist_ok=True)
        for name, text in {"cgroup.controllers": controllers, "cgroup.subtree_control": "",
                           "cgroup.procs": "", "cgroup.stat": "nr_descendants 0\n"}.items():
            (path / name).write_text(text)
        (path / ".v2root").write_text("")

    def _v1_ctrl(self, path: Path) -> str | None:
        for parent in [path, *path.parents]:
            marker = parent / ".ctrl"
            if marker.exists():
                return marker.read_text()
        return None

    def _is_v2(self, path: Path) -> bool:
        return self._v1_ctrl(path) is None

    def _v2_root_of(self, path: Path) -> Path:
        for parent in [path, *path.parents]:
            if (parent / ".v2root").exists():
                return parent
        raise AssertionError(path)

    def _add_v2_controller_files(self, path: Path, ctrl: str) -> None:
        for name, text in V2_CONTROLLER_FILES.get(ctrl, {}).items():
            if name == "memory.swap.max" and not self.swap:
                continue
            (path / name).write_text(text)

    # ---- the syscalls

    def mkdir(self, path: str) -> None:
        p = Path(path)
        if self.refuse_root and self._is_v2(p) and p.parent == self.root:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        os.mkdir(path)
        (p / "cgroup.procs").write_text("")
        ctrl = self._v1_ctrl(p)
        if ctrl is not None:
            for c in ctrl.split(","):
                for name, text in V1_CHILD_FILES[c].items():
                    if name == "memory.memsw.limit_in_bytes" and not self.swap:
                        continue
                    (p / name).write_text(text)
            return
        enabled = (p.parent / "cgroup.subtree_control").read_text().split()
        ptype = p.parent / "cgroup.type"
        parent_type = ptype.read_text().strip() if ptype.exists() else "domain"
        (p / "cgroup.controllers").write_text(" ".join(enabled))
        (p / "cgroup.subtree_control").write_text("")
        ctype = "domain invalid" if parent_type in ("threaded", "domain threaded") else "domain"
        (p / "cgroup.type").write_text(ctype + "\n")
        (p / "cgroup.events").write_text("populated 0\nfrozen 0\n")
        (p / "cgroup.freeze").write_text("0\n")
        (p / "cgroup.kill").write_text("")
        (p / "cpu.stat").write_text("usage_usec 0\nuser_usec 0\nsystem_usec 0\n")
        for c in enabled:
            self._add_v2_controller_files(p, c)

    def rmdir(self, path: str) -> None:
        p = Path(path)
        if any(c.is_dir() for c in p.iterdir()):
            raise OSError(errno.ENOTEMPTY, "Directory not empty", path)
        if (p / "cgroup.procs").read_text().split():
            raise OSError(errno.EBUSY, "Device or resource busy", path)
        for c in p.iterdir():
            c.unlink()
        os.rmdir(path)

    def write(self, path: str, data: str) -> None:
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        self.writes.append((path, data))
        name = p.name
        d = p.parent
        if name == "cgroup.subtree_control":
            return self._subtree_control(d, data)
        if name == "cgroup.procs":
            return self._procs(d, data)
        if name in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"):
            value = V1_UNLIMITED if data.strip() == "-1" else data.strip()
            other = "memory.memsw.limit_in_bytes" if name == "memory.limit_in_bytes" else "memory.limit_in_bytes"
            if (d / other).exists():
                o = int((d / other).read_text())
                mem, sw = (int(value), o) if name == "memory.limit_in_bytes" else (o, int(value))
                if mem > sw:
                    raise OSError(errno.EINVAL, "Invalid argument", path)
            p.write_text(value + "\n")
            return None
        if name == "devices.deny":
            if data.strip() == "a":
                (d / "devices.list").write_text("")
            return None
        if name == "devices.allow":
            with open(d / "devices.list", "a") as f:
                f.write(data.strip() + "\n")
            return None
        if name == "freezer.state":
            state = data.strip()
            current = (d / "freezer.state").read_text().strip()
            if state == "FROZEN" and self.freeze_lag and current != "FREEZING":
                p.write_text("FREEZING\n")
                return None
            if state == "FROZEN" and self.freeze_lag < 0:
                return None  # never settles
            p.write_text(state + "\n")
            return None
        if name == "cgroup.freeze":
            p.write_text(data.strip() + "\n")
            (d / "cgroup.events").write_text(f"populated 0\nfrozen {data.strip()}\n")
            return None
        if name == "cgroup.kill":
            self.cgroup_kills.append(str(d))
            for sub in [d, *[x for x in d.rglob("*") if x.is_dir()]]:
                (sub / "cgroup.procs").write_text("")
            return None
        if name == "cgroup.type":
            p.write_text(data.strip() + "\n")
            return None
        p.write_text(data if data.endswith("\n") else data + "\n")
        return None

    def _subtree_control(self, d: Path, data: str) -> None:
        available = (d / "cgroup.controllers").read_text().split()
        enabled = (d / "cgroup.subtree_control").read_text().split()
        is_root = (d / ".v2root").exists()
        for token in data.split():
            op, ctrl = token[0], token[1:]
            if ctrl not in available:
                raise OSError(errno.ENOENT, "No such file or directory", str(d))
            if op == "+":
                if not is_root and (d / "cgroup.procs").read_text().split():
                    raise OSError(errno.EBUSY, "Device or resource busy", str(d))
                if ctrl not in enabled:
                    enabled.append(ctrl)
                    for child in d.iterdir():
                        if child.is_dir():
                            cc = (child / "cgroup.controllers").read_text().split()
                            (child / "cgroup.controllers").write_text(" ".join(cc + [ctrl]))
                            self._add_v2_controller_files(child, ctrl)
            elif ctrl in enabled:
                enabled.remove(ctrl)
        (d / "cgroup.subtree_control").write_text(" ".join(enabled))

    def _procs(self, d: Path, data: str) -> None:
        pid = data.strip()
        ctrl = self._v1_ctrl(d)
        if ctrl == "cpuset" and (d / "cpuset.cpus").read_text().strip() == "":
            raise OSError(errno.ENOSPC, "No space left on device", str(d))
        if ctrl is None and not (d / ".v2root").exists() and (d / "cgroup.subtree_control").read_text().split():
            raise OSError(errno.EBUSY, "Device or resource busy", str(d))
        top = self.root / ctrl if ctrl else self._v2_root_of(d)
        for procs in top.rglob("cgroup.procs"):
            pids = [x for x in procs.read_text().split() if x != pid]
            procs.write_text("".join(x + "\n" for x in pids))
        with open(d / "cgroup.procs", "a") as f:
            f.write(pid + "\n")

    def kill(self, pid: int, sig: int) -> None:
        self.kills.append((pid, sig))
        if sig == signal.SIGKILL:
            for procs in self.root.rglob("cgroup.procs"):
                pids = [x for x in procs.read_text().split() if x != str(pid)]
                procs.write_text("".join(x + "\n" for x in pids))

    def install(self, monkeypatch) -> FakeKernel:
        monkeypatch.setattr(C, "_mkdir", self.mkdir)
        monkeypatch.setattr(C, "_rmdir", self.rmdir)
        monkeypatch.setattr(C, "_write", self.write)
        monkeypatch.setattr(C, "_kill", self.kill)
        monkeypatch.setattr(C, "CGROUP_ROOT", str(self.root))
        monkeypatch.setattr(C, "PROC_SELF_CGROUP", self.proc_self_cgroup)
        return self


def make(tmp_path, monkeypatch, layout, **kw) -> FakeKernel:
    root = tmp_path / "cgroup"
    return FakeKernel(root, layout, **kw).install(monkeypatch)


def read(path) -> str:
    return Path(path).read_text().strip()


# ------------------------------------------------------------------------------ detect


def test_detect_each_layout(tmp_path, monkeypatch):
    for layout in ("v1", "v2", "hybrid"):
        k = FakeKernel(tmp_path / layout / "cgroup", layout)
        assert C.detect(str(k.root)) == layout
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeFailure):
        C.detect(str(tmp_path / "empty"))


def test_bad_names_are_refused(tmp_path, monkeypatch):
    make(tmp_path, monkeypatch, "v2")
    for bad in ("", "/abs/x", "../escape", "nutshell/../x", "a//b"):
        with pytest.raises(UsageError):
            C.Cgroup.create(bad)


# ------------------------------------------------------------------------------ v1


def test_v1_create_makes_a_dir_per_hierarchy_and_writes_limits(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v1")
    cg = C.Cgroup.create("nutshell/c1", memory=32 * MiB, cpus=0.5, pids_limit=20)
    root = k.root
    assert cg.version == "v1"
    for ctrl in ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer", "devices"):
        assert cg.paths[ctrl] == str(root / ctrl / "nutshell" / "c1")
        assert (root / ctrl / "nutshell" / "c1").is_dir()
    assert cg.paths["name=systemd"] == str(root / "systemd" / "nutshell" / "c1")
    assert "unified" not in cg.paths
    mem = root / "memory" / "nutshell" / "c1"
    assert read(mem / "memory.limit_in_bytes") == str(32 * MiB)
    assert read(mem / "memory.memsw.limit_in_bytes") == str(64 * MiB)  # Docker: swap = memory
    cpu = root / "cpu" / "nutshell" / "c1"
    assert read(cpu / "cpu.cfs_period_us") == "100000"
    assert read(cpu / "cpu.cfs_quota_us") == "50000"
    assert read(root / "pids" / "nutshell" / "c1" / "pids.max") == "20"
    # cpuset copied level by level, so the new cgroup accepts tasks
    for level in (root / "cpuset" / "nutshell", root / "cpuset" / "nutshell" / "c1"):
        assert read(level / "cpuset.cpus") == "0-1"
        assert read(level / "cpuset.mems") == "0"
    # Docker's default device list: deny all, then the allow rules in order
    assert read(root / "devices" / "nutshell" / "c1" / "devices.list").splitlines() == DOCKER_DEVICES
    assert cg.devices_enforced


def test_v1_add_pid_joins_every_hierarchy(tmp_path, monkeypatch):
    make(tmp_path, monkeypatch, "v1")
    cg = C.Cgroup.create("nutshell/c2")
    cg.add_pid(4242)
    for key, d in cg.paths.items():
        assert read(Path(d) / "cgroup.procs") == "4242", key
    assert cg.procs() == [4242]


def test_v1_devices_can_be_left_alone(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v1")
    cg = C.Cgroup.create("nutshell/priv", devices_default=False)
    assert read(k.root / "devices" / "nutshell" / "priv" / "devices.list") == "a *:* rwm"
    assert not cg.devices_enforced


def test_v1_memory_and_swap_are_written_in_a_valid_order(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v1")
    cg = C.Cgroup.create("nutshell/m", memory=32 * MiB, memory_swap=32 * MiB)
    mem = k.root / "memory" / "nutshell" / "m"
    assert read(mem / "memory.memsw.limit_in_bytes") == str(32 * MiB)
    # growing: memsw must be raised before memory (the fake kernel enforces mem <= memsw)
    cg.set_limits(memory=128 * MiB, memory_swap=256 * MiB)
    assert (read(mem / "memory.limit_in_bytes"), read(mem / "memory.memsw.limit_in_bytes")) == (
        str(128 * MiB), str(256 * MiB))
    # shrinking: memory first
    cg.set_limits(memory=16 * MiB, memory_swap=16 * MiB)
    assert (read(mem / "memory.limit_in_bytes"), read(mem / "memory.memsw.limit_in_bytes")) == (
        str(16 * MiB), str(16 * MiB))
    # unlimited swap, then no limit at all
    cg.set_limits(memory=16 * MiB, memory_swap=-1)
    assert read(mem / "memory.memsw.limit_in_bytes") == V1_UNLIMITED
    cg.set_limits(memory=0)
    assert read(mem / "memory.limit_in_bytes") == V1_UNLIMITED
    assert cg.stats().memory_limit is None


def test_swap_below_memory_is_a_usage_error(tmp_path, monkeypatch):
    make(tmp_path, monkeypatch, "v1")
    with pytest.raises(UsageError):
        C.Cgroup.create("nutshell/bad", memory=64 * MiB, memory_swap=32 * MiB)
    with pytest.raises(UsageError):
        C.Cgroup.create("nutshell/bad2", memory_swap=32 * MiB)


def test_v1_without_swap_accounting_warns(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v1", swap=False)
    cg = C.Cgroup.create("nutshell/ns", memory=32 * MiB)
    assert read(k.root / "memory" / "nutshell" / "ns" / "memory.limit_in_bytes") == str(32 * MiB)
    assert any("swap" in w for w in cg.warnings)


def test_v1_unlimited_values(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v1")
    cg = C.Cgroup.create("nutshell/u", memory=32 * MiB, cpus=1.5, pids_limit=5)
    cg.set_limits(cpus=0, pids_limit=0)
    assert read(k.root / "cpu" / "nutshell" / "u" / "cpu.cfs_quota_us") == "-1"
    assert read(k.root / "pids" / "nutshell" / "u" / "pids.max") == "max"
    s = cg.stats()
    assert (s.pids_limit, s.cpu_quota_us, s.cpus_limit) == (None, None, None)
    with pytest.raises(UsageError):
        cg.set_limits(cpus=-1)


def test_v1_comounted_cpu_cpuacct(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v1", comount=True)
    cg = C.Cgroup.create("nutshell/co", cpus=2)
    assert os.path.realpath(cg.paths["cpu"]) == os.path.realpath(cg.paths["cpuacct"])
    assert (k.root / "cpu,cpuacct" / "nutshell" / "co").is_dir()
    assert read(k.root / "cpu,cpuacct" / "nutshell" / "co" / "cpu.cfs_quota_us") == "200000"
    (k.root / "cpu,cpuacct" / "nutshell" / "co" / "cpuacct.usage").write_text("987654321\n")
    assert cg.stats().cpu_usage_ns == 987654321
    cg.add_pid(7)
    assert read(k.root / "cpu,cpuacct" / "nutshell" / "co" / "cgroup.procs") == "7"
    cg.destroy()
    assert not (k.root / "cpu,cpuacct" / "nutshell" / "co").exists()


def test_v1_stats_parse_real_formats(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v1")
    cg = C.Cgroup.create("nutshell/s", memory=32 * MiB, cpus=0.5, pids_limit=20)
    d = {c: k.root / c / "nutshell" / "s" for c in ("memory", "cpuacct", "pids", "blkio", "cpu")}
    (d["memory"] / "memory.usage_in_bytes").write_text("14581760\n")
    (d["memory"] / "memory.stat").write_text(V1_MEMORY_STAT)
    (d["memory"] / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    (d["cpuacct"] / "cpuacct.usage").write_text("50954059\n")
    (d["pids"] / "pids.current").write_text("7\n")
    (d["blkio"] / "blkio.throttle.io_service_bytes_recursive").write_text(V1_BLKIO)
    (d["cpu"] / "cpu.stat").write_text("nr_periods 40\nnr_throttled 12\nthrottled_time 600000000\n")
    s = cg.stats()
    assert s.cpu_usage_ns == 50954059
    assert s.memory_usage == 14581760
    assert s.memory_limit == 32 * MiB
    assert s.memory_cache == 2097152  # total_inactive_file, what docker subtracts
    assert s.memory_used == 14581760 - 2097152
    assert (s.pids_current, s.pids_limit) == (7, 20)
    assert (s.io_read_bytes, s.io_write_bytes) == (1974272 + 12288, 4096 + 8192)
    assert s.oom_kills == 3
    assert (s.cpu_quota_us, s.cpu_period_us, s.cpus_limit) == (50000, 100000, 0.5)
    assert s.cpu_throttled_periods == 12
    assert s.to_dict()["memory_used"] == s.memory_used


def test_v1_oom_detection(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v1")
    cg = C.Cgroup.create("nutshell/o", memory=32 * MiB)
    oc = k.root / "memory" / "nutshell" / "o" / "memory.oom_control"
    assert cg.oom_killed() is False
    oc.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert cg.oom_killed() is True
    # kernels before 4.13 have no oom_kill counter: under_oom is all there is
    oc.write_text("oom_kill_disable 0\nunder_oom 1\n")
    assert cg.oom_killed() is True
    oc.write_text("oom_kill_disable 0\nunder_oom 0\n")
    assert cg.oom_killed() is False


def test_v1_freeze_waits_for_frozen(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v1", freeze_lag=1)
    cg = C.Cgroup.create("nutshell/f")
    state = k.root / "freezer" / "nutshell" / "f" / "freezer.state"
    cg.freeze()
    assert read(state) == "FROZEN"  # went through FREEZING and was written again
    assert [w for w in k.writes if w[0] == str(state)].count((str(state), "FROZEN")) == 2
    assert cg.is_frozen()
    cg.thaw()
    assert read(state) == "THAWED" and not cg.is_frozen()


def test_v1_freeze_that_never_settles_is_undone(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v1", freeze_lag=-1)
    cg = C.Cgroup.create("nutshell/stuck")
    with pytest.raises(RuntimeFailure):
        cg.freeze(timeout=0.2)
    assert read(k.root / "freezer" / "nutshell" / "stuck" / "freezer.state") == "THAWED"


def test_v1_destroy_kills_and_removes_everything(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v1")
    cg = C.Cgroup.create("nutshell/d", memory=32 * MiB)
    cg.add_pid(101)
    cg.add_pid(102)
    cg.destroy()
    assert sorted(k.kills) == [(101, signal.SIGKILL), (102, signal.SIGKILL)]
    for d in cg.paths.values():
        assert not os.path.exists(d)
    assert (k.root / "memory" / "nutshell").is_dir()  # the shared parent stays
    assert not cg.exists()
    cg.destroy()  # idempotent
    assert C.Cgroup.open("nutshell/d") is None


def test_v1_create_failure_leaves_nothing(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v1")
    import shutil
    shutil.rmtree(k.root / "pids")  # a host without the pids controller
    with pytest.raises(RuntimeFailure, match="pids"):
        C.Cgroup.create("nutshell/nopids", pids_limit=20)
    assert not list(k.root.rglob("nopids"))
    # without a pids limit the same host is fine
    cg = C.Cgroup.create("nutshell/nopids2", memory=32 * MiB)
    assert "pids" not in cg.paths and cg.stats().pids_current is None


def test_open_reattaches(tmp_path, monkeypatch):
    make(tmp_path, monkeypatch, "v1")
    assert C.Cgroup.open("nutshell/x") is None
    cg = C.Cgroup.create("nutshell/x", pids_limit=9)
    again = C.Cgroup.open("nutshell/x")
    assert again is not None and again.paths == cg.paths and again.version == "v1"
    assert again.stats().pids_limit == 9


def test_limit_files_are_full_paths(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v1")
    cg = C.Cgroup.create("nutshell/l", memory=32 * MiB, cpus=0.25, pids_limit=3)
    files = cg.limit_files()
    assert files[str(k.root / "memory/nutshell/l/memory.limit_in_bytes")] == str(32 * MiB)
    assert files[str(k.root / "cpu/nutshell/l/cpu.cfs_quota_us")] == "25000"
    assert files[str(k.root / "pids/nutshell/l/pids.max")] == "3"
    assert "c 1:3 rwm" in files[str(k.root / "devices/nutshell/l/devices.list")]


# ----------------------------------------------------------------------------- hybrid


def test_hybrid_also_joins_unified_and_kills_through_it(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "hybrid")
    cg = C.Cgroup.create("nutshell/h", memory=32 * MiB)
    assert cg.version == "hybrid"
    assert cg.paths["unified"] == str(k.root / "unified" / "nutshell" / "h")
    assert read(k.root / "memory" / "nutshell" / "h" / "memory.limit_in_bytes") == str(32 * MiB)
    cg.add_pid(55)
    assert read(k.root / "unified" / "nutshell" / "h" / "cgroup.procs") == "55"
    # the v1 freezer is the one used on hybrid hosts
    cg.freeze()
    assert read(k.root / "freezer" / "nutshell" / "h" / "freezer.state") == "FROZEN"
    cg.thaw()
    # cgroup.kill empties the unified cgroup; the v1 copies are killed by the loop
    cg.destroy()
    assert k.cgroup_kills == [str(k.root / "unified" / "nutshell" / "h")]
    assert not list(k.root.rglob("h"))


# --------------------------------------------------------------------------------- v2


def test_v2_create_delegates_controllers_and_writes_limits(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v2")
    cg = C.Cgroup.create("nutshell/c1", memory=32 * MiB, cpus=0.5, pids_limit=20)
    leaf = k.root / "nutshell" / "c1"
    assert cg.version == "v2" and cg.paths["unified"] == str(leaf)
    wanted = {"cpuset", "cpu", "io", "memory", "pids", "hugetlb"}
    assert set(read(k.root / "cgroup.subtree_control").split()) == wanted
    assert set(read(k.root / "nutshell" / "cgroup.subtree_control").split()) == wanted
    assert read(leaf / "cgroup.subtree_control") == ""  # a leaf may hold processes
    assert read(leaf / "memory.max") == str(32 * MiB)
    assert read(leaf / "memory.swap.max") == str(32 * MiB)  # swap alone: (2 x 32) - 32
    assert read(leaf / "cpu.max") == "50000 100000"
    assert read(leaf / "pids.max") == "20"
    assert not (leaf / "devices.list").exists()  # v2 devices need eBPF: not done
    assert not cg.devices_enforced
    assert cg.paths["memory"] == str(leaf)
    cg.add_pid(77)
    assert read(leaf / "cgroup.procs") == "77"


def test_v2_unlimited_and_swap(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v2")
    cg = C.Cgroup.create("nutshell/u", memory=64 * MiB, memory_swap=96 * MiB, cpus=1, pids_limit=5)
    leaf = k.root / "nutshell" / "u"
    assert read(leaf / "memory.swap.max") == str(32 * MiB)
    cg.set_limits(memory_swap=-1)
    assert read(leaf / "memory.swap.max") == "max"
    cg.set_limits(memory=0, cpus=0, pids_limit=-1)
    assert (read(leaf / "memory.max"), read(leaf / "cpu.max"), read(leaf / "pids.max")) == (
        "max", "max 100000", "max")
    s = cg.stats()
    assert (s.memory_limit, s.pids_limit, s.cpu_quota_us) == (None, None, None)
    cg.set_limits(cpus=0.001)  # below the kernel's 1 ms minimum quota
    assert read(leaf / "cpu.max") == "1000 100000"


def test_v2_stats_parse_real_formats(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v2")
    cg = C.Cgroup.create("nutshell/s", memory=32 * MiB, cpus=0.5, pids_limit=20)
    leaf = k.root / "nutshell" / "s"
    (leaf / "cpu.stat").write_text(V2_CPU_STAT)
    (leaf / "memory.current").write_text("14581760\n")
    (leaf / "memory.stat").write_text(V2_MEMORY_STAT)
    (leaf / "pids.current").write_text("4\n")
    (leaf / "io.stat").write_text(V2_IO_STAT)
    (leaf / "memory.events").write_text(V2_MEMORY_EVENTS)
    s = cg.stats()
    assert s.cpu_usage_ns == 1234567 * 1000
    assert s.cpu_throttled_periods == 12
    assert (s.memory_usage, s.memory_limit, s.memory_cache) == (14581760, 32 * MiB, 3145728)
    assert s.memory_used == 14581760 - 3145728
    assert (s.pids_current, s.pids_limit) == (4, 20)
    assert (s.io_read_bytes, s.io_write_bytes) == (1974272 + 12288, 4096 + 8192)
    assert s.oom_kills == 1
    assert s.cpus_limit == 0.5
    assert cg.oom_killed() is True
    (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 37\noom 2\noom_kill 0\n")
    assert cg.oom_killed() is False  # hitting the limit is not being killed


def test_v2_freeze_and_kill(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v2")
    cg = C.Cgroup.create("nutshell/f")
    leaf = k.root / "nutshell" / "f"
    cg.freeze()
    assert read(leaf / "cgroup.freeze") == "1" and cg.is_frozen()
    cg.thaw()
    assert read(leaf / "cgroup.freeze") == "0" and not cg.is_frozen()
    cg.add_pid(300)
    cg.kill_all()
    assert k.cgroup_kills == [str(leaf)] and k.kills == [] and cg.procs() == []
    cg.add_pid(301)
    cg.kill_all(signal.SIGTERM)  # other signals go process by process, without waiting
    assert k.kills == [(301, signal.SIGTERM)]


def test_v2_kill_without_cgroup_kill_file_loops(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v2")
    cg = C.Cgroup.create("nutshell/old")
    leaf = k.root / "nutshell" / "old"
    (leaf / "cgroup.kill").unlink()  # kernel < 5.14
    cg.add_pid(11)
    cg.add_pid(12)
    cg.destroy()
    assert sorted(k.kills) == [(11, 9), (12, 9)]
    assert not leaf.exists()


def test_v2_falls_back_to_own_cgroup_when_root_refuses(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v2", refuse_root=True, own_v2="/user.slice/me")
    me = k.root / "user.slice"
    os.mkdir(me)
    (me / "cgroup.controllers").write_text(V2_ALL)
    (me / "cgroup.subtree_control").write_text("")
    (me / "cgroup.procs").write_text("")
    (me / "me").mkdir()
    for name, text in {"cgroup.controllers": V2_ALL, "cgroup.subtree_control": "",
                       "cgroup.procs": "", "cgroup.type": "domain"}.items():
        (me / "me" / name).write_text(text)
    cg = C.Cgroup.create("nutshell/fb", pids_limit=3)
    leaf = me / "me" / "nutshell" / "fb"
    assert cg.paths["unified"] == str(leaf)
    assert read(leaf / "pids.max") == "3"
    assert C.Cgroup.open("nutshell/fb").paths["unified"] == str(leaf)
    assert not (k.root / "nutshell").exists()


def test_v2_missing_controller_is_a_clear_error_and_cleans_up(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v2", v2_controllers="cpu memory")
    with pytest.raises(RuntimeFailure, match="pids"):
        C.Cgroup.create("nutshell/np", pids_limit=20)
    assert not (k.root / "nutshell" / "np").exists()
    cg = C.Cgroup.create("nutshell/np2", memory=16 * MiB, cpus=1)
    assert read(k.root / "cgroup.subtree_control").split() == ["cpu", "memory"]
    assert cg.stats().pids_current is None


def test_v2_threaded_subtree(tmp_path, monkeypatch):
    k = make(tmp_path, monkeypatch, "v2")
    (k.root / "nutshell").mkdir()
    for name, text in {"cgroup.controllers": V2_ALL, "cgroup.subtree_control": "",
                       "cgroup.procs": "", "cgroup.type": "threaded"}.items():
        (k.root / "nutshell" / name).write_text(text)
    with pytest.raises(RuntimeFailure, match="memory"):
        C.Cgroup.create("nutshell/t1", memory=32 * MiB)
    assert not (k.root / "nutshell" / "t1").exists()
    C.Cgroup.create("nutshell/t2", pids_limit=4)
    assert read(k.root / "nutshell" / "t2" / "cgroup.type") == "threaded"
    assert read(k.root / "nutshell" / "t2" / "pids.max") == "4"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_files_kept_open_read_the_same_and_follow_changes(tmp_path, monkeypatch, version):
    """StatsSampler's cgroups keep their files open and pread them: the same sample as a
    fresh open, new values seen, a vanished cgroup read as nothing (not an error)."""
    k = make(tmp_path, monkeypatch, version)
    C.Cgroup.create("nutshell/held", memory=32 * MiB, pids_limit=20)
    pids = (k.root / "nutshell" / "held" / "pids.current" if version == "v2"
            else k.root / "pids" / "nutshell" / "held" / "pids.current")
    pids.write_text("4\n")
    fresh = C.Cgroup.open("nutshell/held")
    held = C.Cgroup.open("nutshell/held").keep_files_open()
    a, b = fresh.stats().to_dict(), held.stats().to_dict()
    a.pop("timestamp"), b.pop("timestamp")
    assert a == b and b["pids_current"] == 4 and b["memory_limit"] == 32 * MiB
    with open(pids, "r+") as f:            # the same file, a new value (as the kernel's)
        f.write("7\n")
    assert held.stats().pids_current == 7
    assert held._held and all(f is False or not f.closed for f in held._held.values())
    # a removed cgroup's open files fail with ENODEV: read as nothing, and let go
    import errno

    def gone(fd, n, off):
        raise OSError(errno.ENODEV, "No such device")

    monkeypatch.setattr(C.os, "pread", gone)
    s = held.stats()
    assert s.pids_current is None and s.memory_limit is None
    assert all(f is False for f in held._held.values())


def test_read_keys_finds_whole_keys_at_line_starts(tmp_path):
    """memory.stat's wanted values without splitting every line; a key that is the tail
    of another (inactive_file in total_inactive_file) or a prefix (cache in cache_x) is
    not taken for it."""
    p = tmp_path / "memory.stat"
    p.write_text("cache_x 9\ncache 7\ntotal_inactive_file 42\ninactive_file 5\nbad nan\n"
                 "last 3")
    got = C._read_keys(str(p), ("inactive_file", "cache", "total_inactive_file", "last",
                                "bad", "missing"))
    assert got == {"inactive_file": 5, "cache": 7, "total_inactive_file": 42, "last": 3}
    p.write_text("total_inactive_file 42\n")
    assert C._read_keys(str(p), ("inactive_file",)) == {}
    assert C._read_keys(str(tmp_path / "nope"), ("cache",)) == {}
    # the same answers as the full parse, on a real-looking file
    p.write_text(V1_MEMORY_STAT)
    full = C._read_keyed(str(p))
    assert C._read_keys(str(p), tuple(full)) == full


def test_files_kept_open_fall_back_to_plain_reads_when_fds_run_out(tmp_path, monkeypatch):
    """Hundreds of containers under a soft RLIMIT_NOFILE of 1024 (a desktop's default):
    a sampler that cannot hold another file still reads it, and does not fail."""
    import errno

    make(tmp_path, monkeypatch, "v1")
    C.Cgroup.create("nutshell/many", memory=32 * MiB, pids_limit=20)
    fresh = C.Cgroup.open("nutshell/many").stats().to_dict()
    held = C.Cgroup.open("nutshell/many").keep_files_open()
    real_open = open

    def no_fds(path, *a, **kw):
        if a and a[0] == "rb":
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, *a, **kw)

    monkeypatch.setattr("builtins.open", no_fds)
    got = held.stats().to_dict()
    fresh.pop("timestamp"), got.pop("timestamp")
    assert got == fresh and got["memory_limit"] == 32 * MiB
    assert not held._held            # nothing held, nothing marked missing


# --- prime_migration: a no-op move of our own before a container's init joins ---------

@pytest.mark.parametrize("layout, proc, target", [
    ("v2", "0::/user.slice/s1\n", "user.slice/s1/cgroup.procs"),
    ("hybrid", "9:name=systemd:/s1\n8:pids:/s1\n0::/s1\n", "systemd/s1/cgroup.procs"),
    ("v1", "4:cpu,cpuacct:/a/b\n", "cpu/a/b/cgroup.procs"),
])
def test_prime_migration_writes_our_pid_where_we_are(tmp_path, monkeypatch, layout, proc,
                                                     target):
    root = tmp_path / "cg"
    (root / os.path.dirname(target)).mkdir(parents=True)
    (root / target).write_text("")
    self_cgroup = tmp_path / "self_cgroup"
    self_cgroup.write_text(proc)
    monkeypatch.setattr(cgmove, "PROC_SELF_CGROUP", str(self_cgroup))
    assert cgmove.prime_migration(str(root)) is True
    assert (root / target).read_text() == "0"     # the writer itself
    # only our own cgroup is written: nothing else was created or changed
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [target]


def test_prime_migration_without_a_usable_cgroup_is_a_no_op(tmp_path, monkeypatch):
    self_cgroup = tmp_path / "self_cgroup"
    self_cgroup.write_text("0::/gone\n12:memory:/gone\nnonsense\n")
    monkeypatch.setattr(cgmove, "PROC_SELF_CGROUP", str(self_cgroup))
    assert cgmove.prime_migration(str(tmp_path / "cg")) is False
    assert not (tmp_path / "cg").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="writes cgroup.procs")
def test_prime_migration_on_this_host_moves_nothing():
    """On the real host: it works, and we are in the same cgroups afterwards."""
    with open("/proc/self/cgroup") as f:
        before = f.read()
    assert cgmove.prime_migration() is True
    with open("/proc/self/cgroup") as f:
        assert f.read() == before


def test_prime_until_readable_moves_while_waiting_and_stops_when_the_request_comes(monkeypatch):
    """A prepared init or exec waits for its request with no-op moves every few ms, and
    returns as soon as the request is there, or after PRIME_FOR when it never comes."""
    import time

    calls = []
    monkeypatch.setattr(cgmove, "prime_migration", lambda: calls.append(time.monotonic()) or True)
    r, w = os.pipe()
    try:
        os.write(w, b"x")                       # already there: no move at all
        cgmove.prime_until_readable(r)
        assert calls == []
        os.read(r, 1)
        monkeypatch.setattr(cgmove, "PRIME_FOR", 0.1)
        t0 = time.monotonic()
        cgmove.prime_until_readable(r)         # never comes: gives up after PRIME_FOR
        assert 0.1 <= time.monotonic() - t0 < 2
        assert len(calls) >= 10                 # every ~2 ms, not once
        gaps = [b - a for a, b in zip(calls, calls[1:])]
        assert max(gaps) < 0.05
    finally:
        os.close(r)
        os.close(w)


def test_prime_until_readable_stops_when_no_move_works(monkeypatch):
    """Where no cgroup can be written (prime_migration False), it does not spin."""
    calls = []
    monkeypatch.setattr(cgmove, "prime_migration", lambda: calls.append(1) and False)
    r, w = os.pipe()
    try:
        cgmove.prime_until_readable(r)
        assert calls == [1]
    finally:
        os.close(r)
        os.close(w)


def test_prime_in_child_moves_in_a_child_that_holds_none_of_our_fds(tmp_path, monkeypatch):
    """The prepared interpreter's first (slow) move is made by a child while it imports:
    the move is the child's, made once; the child drops every fd before it waits in the
    kernel (a pipe of ours reaches end of file while the move still blocks); reaped."""
    import time

    root = tmp_path / "cg"
    (root / "s1").mkdir(parents=True)
    (root / "s1" / "cgroup.procs").write_text("")
    self_cgroup = tmp_path / "self_cgroup"
    self_cgroup.write_text("0::/s1\n")
    monkeypatch.setattr(cgmove, "PROC_SELF_CGROUP", str(self_cgroup))
    monkeypatch.setattr(cgmove, "CGROUP_ROOT", str(root))
    real = cgmove.prime_migration

    def slow_move(root_arg=None):          # a move that waits out a long grace period
        ok = real(root_arg)
        time.sleep(1.5)
        return ok

    monkeypatch.setattr(cgmove, "prime_migration", slow_move)
    r, w = os.pipe()
    t0 = time.monotonic()
    pid = cgmove.prime_in_child()
    os.close(w)
    try:
        assert os.read(r, 1) == b""                  # the child's copy is closed already
        assert time.monotonic() - t0 < 1.0
    finally:
        os.close(r)
    cgmove.reap(pid)
    assert (root / "s1" / "cgroup.procs").read_text() == "0"
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, 0)                           # reaped
    cgmove.reap(None)                                # no child (fork failed): nothing to do
