"""The teaching data on real containers (root, real kernel): namespaces, NSpid, the overlay
mount mapped to layers with whiteouts, cgroup limits beside usage, veth <-> bridge.

Every value is checked against the kernel's own files (/proc, /sys), read here
independently of core/runtime/introspect.py."""

from __future__ import annotations

import os

import pytest

from core.errors import Conflict
from tests.runtime_root import default_image_engine
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

PREFIX = "nsteach-intro"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    yield from default_image_engine(str(tmp_path_factory.mktemp("introspect-root")))


def run(engine, name: str, cmd: str, network: str | None = None, **kw) -> str:
    from core.runtime.spec import RunOptions

    opts = RunOptions(image="localhost/busybox:latest", command=["sh", "-c", cmd],
                      name=f"{PREFIX}-{name}", network=network or "default", **kw)
    cid, _ = engine.run(opts)
    return cid


@pytest.fixture(scope="module")
def web(engine):
    """A bridge-networked container with limits that changed its file system."""
    cid = run(engine, "web", "mkdir /newdir; echo data > /newdir/file; rm -rf /home; "
              "echo changed >> /etc/group; exec sleep 300",
              memory=64 * 1024 * 1024, pids_limit=50, cpus=0.5)
    wait_for(lambda: os.path.exists(engine.container_overlay(cid).upper + "/newdir/file"))
    return cid


def _inode(pid: int, t: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{t}").st_ino


def test_namespace_matrix(engine, web):
    m = engine.container_namespaces(web)
    pid = engine.container_inspect(web)["State"]["Pid"]
    assert m.pid == pid and m.name == f"{PREFIX}-web"
    assert [r.type for r in m.rows] == ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"]
    ref = m.reference_pid
    for r in m.rows:
        assert r.container == _inode(pid, r.type)
        assert r.host == _inode(ref, r.type)
        assert r.shared == (r.container == r.host)
    by = {r.type: r for r in m.rows}
    for t in ("cgroup", "ipc", "mnt", "net", "pid", "uts"):
        assert by[t].shared is False and by[t].shared_with == "new", t
    assert by["user"].shared is True  # no user namespace: root is root
    assert m.uid_map == [(0, 0, 4294967295)] or m.uid_map[0][:2] == (0, 0)
    assert f"ls -l /proc/{pid}/ns" in m.commands


def test_shared_namespace_is_named(engine, web):
    other = run(engine, "joiner", "exec sleep 300", network=f"container:{web}")
    try:
        m = engine.container_namespaces(other)
        net = next(r for r in m.rows if r.type == "net")
        assert net.shared is False and net.shared_with == f"container {PREFIX}-web"
    finally:
        engine.rm(other, force=True)


def test_processes_host_and_container_pids(engine, web):
    proc = engine.exec(web, ["sleep", "123"], detach=True)
    try:
        table = wait_for(lambda: (lambda t: t if len(t.rows) >= 2 else None)(
            engine.container_processes(web)), what="the exec'd process to show up")
        init = table.rows[0]
        assert init.host_pid == table.init_pid and init.container_pid == 1
        assert init.container_ppid == 0  # the shim is outside
        sleeper = next(r for r in table.rows if r.command == "sleep 123")
        with open(f"/proc/{sleeper.host_pid}/status") as f:
            nspid = next(line.split()[1:] for line in f if line.startswith("NSpid:"))
        assert sleeper.nspid == [int(x) for x in nspid]
        assert sleeper.container_pid == int(nspid[-1]) and sleeper.container_pid != sleeper.host_pid
        assert sleeper.host_pid != init.host_pid and sleeper.rss > 0
    finally:
        proc.close()
        for r in engine.container_processes(web).rows:
            if r.command == "sleep 123":
                os.kill(r.host_pid, 9)


def test_overlay_layers_upper_and_whiteouts(engine, web):
    o = engine.container_overlay(web)
    img = engine.image("localhost/busybox:latest")
    assert o.mounted and o.mount_options and "lowerdir=" in o.mount_options
    assert [layer.chain_id for layer in o.lower] == list(reversed(img.chain_ids))
    top = o.lower[0]
    assert top.position == 1 and top.exists and top.size and top.size > 1_000_000
    assert top.path == engine.store.layer_path(img.chain_ids[-1])
    made = [h for h in img.config["history"] if not h.get("empty_layer")]
    assert top.created_by == made[-1]["created_by"]
    if top.path.endswith("/layer.sqfs"):
        # a layer image: the init mounted it (detached) and gave overlayfs its fd
        assert top.mount_entry and top.mount_entry.startswith("/proc/self/fd/")
    else:
        # the kernel's lowerdir entry is the same directory
        base = os.path.commonpath([o.upper, o.work, o.merged, top.path])
        assert os.path.realpath(os.path.join(base, top.mount_entry)) == os.path.realpath(top.path)
    kinds = {e.path: e.kind for e in o.entries}
    assert kinds["/home"] == "deleted" and kinds["/newdir"] == "added"
    assert kinds["/newdir/file"] == "added" and kinds["/etc/group"] == "modified"
    assert kinds.get("/etc/hosts") == "mount-target"
    assert [e.path for e in o.whiteouts] == ["/home"]
    assert os.stat(o.upper + "/home").st_rdev == 0
    assert o.upper_bytes >= len("data\n")


def test_cgroup_limits_beside_usage(engine, web):
    c = engine.container_cgroup(web)
    rows = {r.resource: r for r in c.rows}
    assert rows["memory"].limit == 64 * 1024 * 1024
    assert rows["memory"].usage and 0 < rows["memory"].usage < rows["memory"].limit
    with open(rows["memory"].limit_file) as f:
        assert int(f.read()) == 64 * 1024 * 1024
    assert rows["pids"].limit == 50 and rows["pids"].usage >= 1
    assert rows["cpu"].limit == pytest.approx(0.5)
    assert rows["oom"].usage == 0
    pid = engine.container_inspect(web)["State"]["Pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        assert f"nutshell/{web}" in f.read()
    assert all(os.path.exists(p) for p in c.files)


def test_network_veth_bridge_ip(engine, web):
    n = engine.container_network(web)
    ins = engine.container_inspect(web)
    assert n.mode == "bridge" and len(n.links) == 1
    link = n.links[0]
    assert link.ip == ins["NetworkSettings"]["IPAddress"] and link.interface == "eth0"
    assert os.path.basename(os.readlink(f"/sys/class/net/{link.host_veth}/master")) == link.bridge
    with open(f"/sys/class/net/{link.host_veth}/iflink") as f:
        assert int(f.read()) == link.peer_ifindex
    assert any(r.destination == "default" and r.gateway == link.bridge_ip for r in n.routes)
    assert n.netns_inode == _inode(ins["State"]["Pid"], "net") and n.netns_inode != n.host_netns_inode
    assert "eth0" in n.interfaces and "lo" in n.interfaces


def test_network_none_and_stopped(engine):
    cid = run(engine, "lonely", "exec sleep 300", network="none")
    try:
        n = engine.container_network(cid)
        assert n.links == [] and n.interfaces == ["lo"] and n.routes == []
        engine.kill(cid)
        wait_for(lambda: engine.container_state(cid)["Status"] != "running")
        with pytest.raises(Conflict):
            engine.container_namespaces(cid)
        with pytest.raises(Conflict):
            engine.container_cgroup(cid)
        o = engine.container_overlay(cid)  # the upper dir outlives the run
        assert not o.mounted and o.mount_options is None and o.lower
    finally:
        engine.rm(cid, force=True)


def test_stats_sampler_on_real_containers(engine, web):
    """The app's batch sampler: the kernel's numbers (pids.current from the cgroup's own
    file), the same keys as container_stats, and a container that stops, is started again
    or removed noticed at the next sample (its state file is re-read only when replaced)."""
    cid = run(engine, "sampled", "exec sleep 300", network="none", pids_limit=20)
    try:
        sampler = engine.container_stats_sampler()
        got = sampler.sample([cid, web])
        one = got[cid]
        assert one is not None and one["Id"] == cid and one["Name"] == f"{PREFIX}-sampled"
        assert one["State"] == "running" and one["Pid"] == engine.container_state(cid)["Pid"]
        cg = engine.container_cgroup(cid)
        pids_max = next(f for f in cg.files if f.endswith("/pids.max"))
        with open(pids_max[:-len("pids.max")] + "pids.current") as f:
            assert one["pids_current"] == int(f.read()) == 1
        assert one["pids_limit"] == 20 and one["cpu_usage_ns"] > 0
        assert set(engine.container_stats(cid)) == set(one)
        assert got[web]["memory_limit"] == 64 * 1024 * 1024
        engine.kill(cid)
        wait_for(lambda: engine.container_state(cid)["Status"] != "running")
        assert sampler.sample([cid])[cid] is None
        engine.start(cid)
        again = sampler.sample([cid])[cid]
        assert again is not None and again["Pid"] == engine.container_state(cid)["Pid"] != one["Pid"]
    finally:
        engine.rm(cid, force=True)
    assert sampler.sample([cid])[cid] is None
