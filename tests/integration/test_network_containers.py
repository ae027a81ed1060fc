"""Networking of real containers, through the CLI (`nutshell run` with the runtime's shim).

The image is the busybox rootfs fixture, run with ``--rootfs`` (its directory is the
read-only lower layer). Traffic stays on this machine: containers talk to each other and
to the host's loopback, nothing else. Each test has its own state root; at the end every
container is removed and the root is checked for leaked veths, bridges, namespaces, nft
rules and allocations.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import pytest

from tests.integration.netenv import FETCH, SERVE, free_port

pytestmark = pytest.mark.integration


def test_two_containers_on_a_user_network_by_name_and_alias(host):
    net = f"nstest-{os.urandom(3).hex()}"
    host.ns("network", "create", net)
    web = f"web-{os.urandom(2).hex()}"
    host.run("-d", "--name", web, "--network", net, "--network-alias", "www", "--",
             "sh", "-c", SERVE, "hello from web")
    host.remember()
    for name in (web, "www"):
        r = host.run("--rm", "--network", net, "--", "sh", "-c", FETCH, f"http://{name}/")
        assert r.stdout == "hello from web\n", r.stderr
    # the default bridge has no names, like Docker's
    r = host.run("--rm", "--", "sh", "-c", "grep -c web /etc/hosts", check=False)
    assert r.stdout.strip() == "0"
    with pytest.raises(AssertionError, match="active endpoints"):
        host.ns("network", "rm", net)


def test_published_port_reachable_from_the_host_on_127_0_0_1(host):
    port = free_port(18080)
    cid = host.run("-d", "-p", f"{port}:80", "--", "sh", "-c", SERVE, "published").stdout.strip()
    host.remember()
    for _ in range(100):
        r = subprocess.run(["curl", "-s", "--max-time", "2", f"http://127.0.0.1:{port}/"],
                           capture_output=True, text=True)
        if r.stdout:
            break
        time.sleep(0.1)
    assert r.stdout == "published\n"
    assert host.ns("port", cid).stdout == f"80/tcp -> 0.0.0.0:{port}\n"
    assert host.ns("port", cid, "80").stdout == f"0.0.0.0:{port}\n"
    ps = [json.loads(l) for l in host.ns("ps", "--format", "json").stdout.splitlines()]
    assert [p["Ports"] for p in ps if cid.startswith(p["ID"])] == [f"0.0.0.0:{port}->80/tcp"]
    settings = host.inspect(cid)["NetworkSettings"]
    assert settings["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    stats = host.engine.container_net_stats(cid)
    assert stats["rx_packets"] > 0 and stats["tx_bytes"] > 0


def test_network_none_has_only_loopback(host):
    r = host.run("--rm", "--network", "none", "--", "sh", "-c", "ip -o link; ip -o addr")
    links = [l.split(":")[1].strip() for l in r.stdout.splitlines() if ": <" in l]
    assert links == ["lo"]
    assert "127.0.0.1/8" in r.stdout


def test_network_host_shares_the_hosts_interfaces(host):
    r = host.run("--rm", "--network", "host", "--", "sh", "-c",
                 "readlink /proc/self/ns/net; ip -o link")
    first, _, links = r.stdout.partition("\n")
    assert first == os.readlink("/proc/self/ns/net")
    for name in os.listdir("/sys/class/net"):
        if not name.startswith(("nsv", "veth")):  # others' may come and go meanwhile
            assert f": {name}" in links or f": {name}@" in links


def test_network_container_shares_another_containers_namespace(host):
    a = host.run("-d", "--", "sleep", "60").stdout.strip()
    host.remember()
    info = host.inspect(a)
    pid, ip = info["State"]["Pid"], info["NetworkSettings"]["IPAddress"]
    r = host.run("--rm", "--network", f"container:{a}", "--", "sh", "-c",
                 "readlink /proc/self/ns/net; ip -o addr")
    assert r.stdout.splitlines()[0] == os.readlink(f"/proc/{pid}/ns/net")
    assert f"inet {ip}/" in r.stdout


def test_internal_network_has_no_route_out(host):
    net = f"nstest-{os.urandom(3).hex()}"
    host.ns("network", "create", "--internal", net)
    r = host.run("--rm", "--network", net, "--", "ip", "route")
    assert "default" not in r.stdout and "dev eth0" in r.stdout
    r = host.run("--rm", "--", "ip", "route")
    assert "default via" in r.stdout


def test_dns_add_host_and_resolv_conf(host):
    r = host.run("--rm", "--dns", "10.1.2.3", "--dns-search", "example.test",
                 "--add-host", "db:10.9.9.9", "--", "sh", "-c", "cat /etc/resolv.conf /etc/hosts")
    assert "nameserver 10.1.2.3" in r.stdout and "search example.test" in r.stdout
    assert "10.9.9.9\tdb" in r.stdout
    r = host.run("--rm", "--", "cat", "/etc/resolv.conf")
    assert "nameserver 127." not in r.stdout


def test_run_rm_leaves_no_network_behind(host):
    port = free_port()
    r = host.run("--rm", "-p", f"{port}:80", "--", "true")
    assert r.returncode == 0
    store = host.engine._netops.store
    try:
        _check_nothing_left(host, store)
    finally:  # so that the fixture's own leak check judges the rest, not this again
        for rec in store.containers():
            host.engine.teardown_container_network(rec["Id"])


def _check_nothing_left(host, store) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (store.containers() or any(
            n["Endpoints"] for n in store.all())):
        time.sleep(0.05)
    assert store.containers() == []
    assert all(not n["Endpoints"] for n in store.all())
    assert not os.listdir(host.engine.paths.netns)
    listing = subprocess.run(["nft", "list", "table", "ip", store.nft_table],
                             capture_output=True, text=True).stdout
    assert "c:" not in listing
    assert _settles(store), "a veth of ours is still on the bridge"


def _settles(store) -> bool:
    """The veth pair goes with its namespace, a few ms after the container is gone."""
    bridges = {n["Bridge"] for n in store.all()}
    for _ in range(200):
        left = [l for l in os.listdir("/sys/class/net") if l.startswith("nsv")
                and os.path.exists(f"/sys/class/net/{l}/master")
                and os.path.basename(os.readlink(f"/sys/class/net/{l}/master")) in bridges]
        if not left:
            return True
        time.sleep(0.025)
    return False


@pytest.mark.slow
def test_twenty_containers_started_in_parallel_get_twenty_addresses(host):
    net = f"nstest-{os.urandom(3).hex()}"
    host.ns("network", "create", net)
    ids: list[str] = []
    errors: list[str] = []

    def start():
        r = host.run("-d", "--network", net, "--", "sleep", "120", check=False, timeout=120)
        (ids if r.returncode == 0 else errors).append(r.stdout.strip() or r.stderr)

    threads = [threading.Thread(target=start) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    host.remember()
    assert not errors, errors
    info = host.engine.network_inspect(net)["Containers"]
    addrs = [info[c]["IPv4Address"] for c in ids]
    assert len(ids) == 20 and len(set(addrs)) == 20


def test_stop_releases_the_network_and_start_sets_it_up_again(host):
    cid = host.run("-d", "--", "sleep", "120").stdout.strip()
    host.remember()
    store = host.engine._netops.store
    first = host.inspect(cid)["NetworkSettings"]["IPAddress"]
    assert first and store.container(cid) is not None
    host.ns("stop", "-t", "1", cid)
    assert store.container(cid) is None
    assert cid not in host.engine.network_inspect("bridge")["Containers"]
    host.ns("start", cid)
    host.remember()
    again = host.inspect(cid)["NetworkSettings"]
    assert again["IPAddress"] and store.container(cid) is not None
    r = host.ns("exec", cid, "ip", "-o", "addr", "show", "eth0")
    assert f"inet {again['IPAddress']}/" in r.stdout


def test_network_connect_and_disconnect_a_running_container(host):
    net = f"nstest-{os.urandom(3).hex()}"
    host.ns("network", "create", "--subnet", "10.213.0.0/24", net)
    cid = host.run("-d", "--name", f"c-{os.urandom(2).hex()}", "--", "sleep", "120").stdout.strip()
    host.ns("network", "connect", "--alias", "second", net, cid)
    host.remember()
    ep = host.engine.network_inspect(net)["Containers"][cid]
    assert ep["Interface"] == "eth1" and ep["IPv4Address"].startswith("10.213.0.")
    r = host.ns("exec", cid, "ip", "-o", "addr", "show", "eth1")
    assert f"inet {ep['IPv4Address']}" in r.stdout
    host.ns("network", "disconnect", net, cid)
    r = host.ns("exec", cid, "ip", "-o", "link")
    assert "eth1" not in r.stdout and "eth0" in r.stdout
    assert host.engine.network_inspect(net)["Containers"] == {}
    host.ns("network", "rm", net)


def test_crashed_container_is_cleaned_by_rm(host):
    """kill -9 of the shim and the container: `rm -f` still removes every network piece."""
    port = free_port()
    cid = host.run("-d", "-p", f"127.0.0.1:{port}:80", "--", "sleep", "120").stdout.strip()
    host.remember()
    pid = host.inspect(cid)["State"]["Pid"]
    shim = subprocess.run(["pgrep", "-f", f"core.runtime.start.boot .*id={cid}"],
                          capture_output=True, text=True).stdout.split()
    assert len(shim) == 1, f"the shim of {cid[:12]} should be running: {shim}"
    for p in shim + [str(pid)]:
        os.kill(int(p), 9)
    time.sleep(0.2)
    host.ns("ps", "-a")  # reconciliation marks it exited
    host.ns("rm", "-f", cid)
    store = host.engine._netops.store
    assert store.container(cid) is None
    assert cid not in host.engine.network_inspect("bridge")["Containers"]
    listing = subprocess.run(["nft", "list", "table", "ip", store.nft_table],
                             capture_output=True, text=True).stdout
    assert f"c:{cid[:12]}" not in listing


PROBE = ("cat /sys/class/net/eth0/operstate; ip -o -4 addr show eth0; ip route; "
         "grep \"$(hostname)\" /etc/hosts")


def test_the_payload_starts_with_its_network_complete(host):
    """The netlink work runs while the init sets up the rootfs; the init holds the payload
    back until it is done: the first thing a container does already sees eth0 up with its
    address, the default route and its own name in /etc/hosts."""
    for _ in range(5):
        r = host.run("--rm", "--", "sh", "-c", PROBE)
        lines = r.stdout.splitlines()
        assert lines[0] == "up", r.stdout
        ip = lines[1].split()[3].split("/")[0]
        assert ip.startswith(("10.", "172.", "192.168.")), r.stdout
        assert any(l.startswith("default via ") for l in lines), r.stdout
        assert f"{ip}\t" in r.stdout.split("\n", 3)[-1] or lines[-1].startswith(ip), r.stdout


def test_a_network_failure_after_the_init_started_aborts_cleanly(host):
    """--ip is checked by the half of the set-up that overlaps the init: a taken address
    stops the start with one line and exit 125; the init never runs the payload, the
    shim records the error (the container stays created, as Docker leaves it) or removes
    the container (--rm), and nothing of the network is left."""
    net = f"nstest-{os.urandom(3).hex()}"
    host.ns("network", "create", "--subnet", "10.214.0.0/24", net)
    first = host.run("-d", "--network", net, "--ip", "10.214.0.10", "--", "sleep", "120")
    host.remember()
    marker = f"/tmp/ran-{os.urandom(4).hex()}"
    r = host.run("--name", "second", "--network", net, "--ip", "10.214.0.10", "-v",
                 "/tmp:/hosttmp", "--", "touch", "/hosttmp" + marker[4:], check=False)
    assert r.returncode == 125, r.stderr
    assert r.stderr.strip().splitlines()[0] == \
        f"nutshell: address 10.214.0.10 is already in use on network {net}"
    assert not os.path.exists(marker), "the payload ran without its network"
    st = host.inspect("second")["State"]
    assert st["Status"] == "created" and "already in use" in st["Error"], st
    assert host.inspect("second")["NetworkSettings"]["IPAddress"] in ("", None)
    r = host.run("--rm", "--network", net, "--ip", "10.214.0.10", "--", "true", check=False)
    assert r.returncode == 125 and "already in use" in r.stderr
    names = host.ns("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert len(names) == 2 and "second" in names, names
    store = host.engine._netops.store
    assert {c["Id"] for c in store.containers()} == {first.stdout.strip()}
    eps = host.engine.network_inspect(net)["Containers"]
    assert list(eps) == [first.stdout.strip()]
    assert len(os.listdir(host.engine.paths.netns)) == 1
    host.ns("rm", "-f", "second", first.stdout.strip())
    host.ns("network", "rm", net)
