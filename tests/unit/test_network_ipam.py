"""IPAM: subnet choice, serial allocation, and no double allocation under concurrency.

The concurrency test runs 20 real processes against one network file under the store
lock -- the same code path `setup_container_network` takes, minus the kernel.
"""

from __future__ import annotations

import ipaddress
import multiprocessing
import os

import pytest

from core import paths as paths_mod
from core.errors import Conflict, UsageError
from core.network import ipam
from core.network.sandbox import Networks
from core.network.store import NetworkStore, new_id

N = ipaddress.IPv4Network


def test_choose_subnet_skips_host_routes_and_addresses():
    in_use = [N("0.0.0.0/0"), N("10.88.0.0/16"), N("10.89.3.0/24"), N("192.0.2.2/32")]
    assert ipam.choose_subnet(in_use) == N("10.90.0.0/16")


def test_choose_subnet_falls_back_to_172_then_192_168():
    tens = [N("10.0.0.0/8")]
    assert ipam.choose_subnet(tens) == N("172.17.0.0/16")
    assert ipam.choose_subnet(tens + [N("172.16.0.0/12")]) == N("192.168.0.0/20")
    with pytest.raises(Conflict):
        ipam.choose_subnet(tens + [N("172.16.0.0/12"), N("192.168.0.0/16")])


def test_parse_subnet_and_gateway():
    net = ipam.parse_subnet("10.9.0.0/24")
    assert ipam.default_gateway(net) == ipaddress.IPv4Address("10.9.0.1")
    with pytest.raises(UsageError):
        ipam.parse_subnet("10.9.0.1/24")  # host bits
    with pytest.raises(UsageError):
        ipam.parse_subnet("nonsense")
    with pytest.raises(UsageError):
        ipam.parse_gateway("10.9.1.1", net)
    with pytest.raises(UsageError):
        ipam.parse_gateway("10.9.0.255", net)


def _net(subnet="10.9.0.0/29"):
    return {"Name": "t", "Subnet": subnet, "Gateway": str(N(subnet).network_address + 1),
            "LastIP": None, "Endpoints": {}}


def test_allocation_is_serial_and_skips_gateway_and_used():
    net = _net()
    got = []
    for i in range(5):  # /29: .1 gateway, .2-.6 usable
        ip = ipam.allocate(net)
        net["Endpoints"][str(i)] = {"IPv4Address": ip}
        got.append(ip)
    assert got == [f"10.9.0.{i}" for i in range(2, 7)]
    with pytest.raises(Conflict):
        ipam.allocate(net)
    # a freed address is not the next one handed out while others are free
    del net["Endpoints"]["0"]  # frees .2
    del net["Endpoints"]["3"]  # frees .5
    assert ipam.allocate(net) == "10.9.0.2"  # wraps after .6: next free is .2
    net["Endpoints"]["x"] = {"IPv4Address": "10.9.0.2"}
    assert ipam.allocate(net) == "10.9.0.5"


def test_requested_address():
    net = _net()
    assert ipam.allocate(net, "10.9.0.4") == "10.9.0.4"
    net["Endpoints"]["a"] = {"IPv4Address": "10.9.0.4"}
    with pytest.raises(Conflict):
        ipam.allocate(net, "10.9.0.4")
    with pytest.raises(UsageError):
        ipam.allocate(net, "10.9.1.4")
    with pytest.raises(UsageError):
        ipam.allocate(net, "10.9.0.0")  # the network address


def test_mac_for_is_stable_and_local():
    assert ipam.mac_for("10.88.0.2") == "02:42:0a:58:00:02"


def _allocate_in_child(root: str, run: str, cid: str, q) -> None:
    os.environ["NUTSHELL_RUNTIME_DIR"] = run
    nets = Networks(paths_mod.resolve(root))
    rec = {"Name": cid[:8], "Aliases": []}
    net = nets.store.load("par")
    eps = nets._allocate(cid, rec, [net], None)
    q.put(eps["par"]["IPv4Address"])


def test_twenty_processes_never_get_the_same_address(tmp_path, monkeypatch):
    root, run = str(tmp_path / "root"), str(tmp_path / "run")
    monkeypatch.setenv("NUTSHELL_RUNTIME_DIR", run)
    store = NetworkStore(paths_mod.resolve(root))
    os.makedirs(store.cdir)
    store.save({"Name": "par", "Id": new_id(), "Subnet": "10.77.0.0/24",
                "Gateway": "10.77.0.1", "LastIP": None, "Internal": False, "Endpoints": {}})
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_allocate_in_child, args=(root, run, new_id(), q))
             for _ in range(20)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    got = [q.get(timeout=5) for _ in procs]
    assert len(set(got)) == 20
    assert "10.77.0.1" not in got
    stored = store.load("par")["Endpoints"]
    assert sorted(ep["IPv4Address"] for ep in stored.values()) == sorted(got)
