"""Networks on the real kernel, with network namespaces standing in for containers.

Each "container" is a sandbox from ``setup_container_network`` (a pinned netns with a
veth on the network's bridge); processes run in it with ``nsenter --net``, and see the
sandbox's hosts file through a bind mount in a private mount namespace (``unshare -m``),
the way the runtime will show it to a container. Only our own namespaces and loopback
are ever contacted.

Every test's engine has its own state root; its teardown removes everything and then
checks that none of the kernel objects that root created is left (leak test).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from core.engine import Engine
from core.errors import Conflict, NotFound
from tests.integration.netenv import BUSYBOX, free_port, net_links, netname

pytestmark = pytest.mark.integration


# ------------------------------------------------------------------------------------------
def test_two_endpoints_on_a_user_network_reach_each_other_by_name_and_alias(env):
    net = netname()
    env.engine.network_create(net)
    web, ws = env.sandbox("web", networks=[net], aliases=["www"])
    cli, cs = env.sandbox("client", networks=[net])
    assert ws["Networks"][net]["Interface"] == "eth0"
    env.serve(ws, "hello from web\n")
    hosts = cs["HostsPath"]
    text = open(hosts).read()
    assert f"{ws['IPAddress']}\tweb www {web[:12]}" in text
    for name in ("web", "www", web[:12]):
        r = env.run_in(cs, BUSYBOX, "wget", "-q", "-O", "-", f"http://{name}/",
                       hosts=hosts)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "hello from web\n"
    # the server's file knows the client too, and its own names
    own = open(ws["HostsPath"]).read()
    assert f"{cs['IPAddress']}\tclient {cli[:12]}" in own
    assert f"{ws['IPAddress']}\t{web[:12]} web www" in own
    # leaving the network rewrites the peers' files in place (same inode)
    ino = os.stat(hosts).st_ino
    env.engine.teardown_container_network(web)
    assert os.stat(hosts).st_ino == ino
    assert "web" not in open(hosts).read().split("ip6-allrouters", 1)[1]


def test_published_port_is_reachable_on_localhost_and_the_host_address(env):
    port = free_port()
    cid, s = env.sandbox("pub", ports=[f"{port}:80"])
    assert s["PublishedPorts"] == [{"HostIp": "0.0.0.0", "HostPort": port, "ContainerPort": 80,
                                    "Protocol": "tcp"}]
    assert s["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    env.serve(s, "published\n")
    for host in ("127.0.0.1", s["Gateway"]):
        r = subprocess.run(["curl", "-s", "--max-time", "5", f"http://{host}:{port}/"],
                           capture_output=True, text=True)
        assert r.stdout == "published\n", (host, r.returncode, r.stderr)
    assert env.engine.container_ports(cid) == s["PublishedPorts"]
    # exact removal: the container's rules go, the network's stay
    table = env.engine._netops.store.nft_table
    env.engine.teardown_container_network(cid)
    listing = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True,
                             text=True).stdout
    assert f"c:{cid[:12]}" not in listing
    assert "masquerade" in listing
    r = subprocess.run(["curl", "-s", "--max-time", "2", f"http://127.0.0.1:{port}/"],
                       capture_output=True, text=True)
    assert r.stdout != "published\n"


def test_port_bound_to_127_0_0_1_only(env):
    port = free_port()
    cid, s = env.sandbox("lo-only", ports=[f"127.0.0.1:{port}:80"])
    env.serve(s, "local only\n")
    r = subprocess.run(["curl", "-s", "--max-time", "5", f"http://127.0.0.1:{port}/"],
                       capture_output=True, text=True)
    assert r.stdout == "local only\n"
    r = subprocess.run(["curl", "-s", "--max-time", "2", f"http://{s['Gateway']}:{port}/"],
                       capture_output=True, text=True)
    assert r.stdout != "local only\n"


def test_publish_all_and_port_conflicts(env):
    cid, s = env.sandbox("pall", publish_all=True, exposed=["80/tcp", "53/udp"])
    got = {(p["ContainerPort"], p["Protocol"]): p["HostPort"] for p in s["PublishedPorts"]}
    assert set(got) == {(80, "tcp"), (53, "udp")} and all(got.values())
    with pytest.raises(Conflict, match="already allocated"):
        env.sandbox("clash", ports=[f"{got[(80, 'tcp')]}:80"])
    # the failed set-up left nothing behind
    assert len(env.engine._netops.store.containers()) == 1


def test_internal_network_has_no_route_out(env):
    net = netname()
    env.engine.network_create(net, internal=True)
    cid, s = env.sandbox("inner", networks=[net])
    routes = env.run_in(s, "ip", "-j", "route").stdout
    assert not [r for r in json.loads(routes) if r["dst"] == "default"]
    r = env.run_in(s, "ip", "route", "get", "192.0.2.1")  # asks the kernel, sends nothing
    assert r.returncode != 0 and "unreachable" in r.stderr.lower()
    table = env.engine._netops.store.nft_table
    listing = subprocess.run(["nft", "list", "chain", "ip", table, "forward"],
                             capture_output=True, text=True).stdout
    bridge = env.engine.network_inspect(net)["Options"]["com.docker.network.bridge.name"]
    assert f'iifname "{bridge}" oifname != "{bridge}" drop' in listing
    # a normal network gets its default route via the gateway
    _, d = env.sandbox("outer")
    default = [r for r in json.loads(env.run_in(d, "ip", "-j", "route").stdout)
               if r["dst"] == "default"]
    assert default and default[0]["gateway"] == d["Gateway"] and default[0]["dev"] == "eth0"


def test_sandbox_layout_mtu_mac_loopback_and_ip_netns(env):
    cid, s = env.sandbox("layout")
    ep = s["Networks"]["bridge"]
    links = {l["ifname"]: l for l in json.loads(env.run_in(s, "ip", "-j", "link").stdout)}
    assert set(links) == {"lo", "eth0"}
    assert "UP" in links["lo"]["flags"] and "UP" in links["eth0"]["flags"]
    assert links["eth0"]["address"] == ep["MacAddress"]
    bridge_mtu = int(open(f"/sys/class/net/{ep['Bridge']}/mtu").read())
    assert links["eth0"]["mtu"] == bridge_mtu
    master = os.path.basename(os.readlink(f"/sys/class/net/{ep['HostVeth']}/master"))
    assert master == ep["Bridge"]
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"nutshell-{cid[:12]}" in names
    r = subprocess.run(["ip", "netns", "exec", f"nutshell-{cid[:12]}", "ip", "-br", "addr"],
                       capture_output=True, text=True)
    assert f"{ep['IPAddress']}/{ep['IPPrefixLen']}" in r.stdout
    resolv = open(s["ResolvConfPath"]).read()
    assert "127.0.0." not in resolv


def test_connect_disconnect_and_network_rm_in_use(env):
    net = netname()
    env.engine.network_create(net, subnet="10.211.0.0/24")
    cid, s = env.sandbox("multi")
    with pytest.raises(Conflict, match="already exists"):
        env.engine.network_create(net)  # name taken
    env.engine.network_connect(net, cid, aliases=["m2"])
    env.remember()
    info = env.engine.network_inspect(net)
    ep = info["Containers"][cid]
    assert ep["Interface"] == "eth1" and ep["IPv4Address"].startswith("10.211.0.")
    addrs = env.run_in(s, "ip", "-br", "addr").stdout
    assert "eth1" in addrs and ep["IPv4Address"] in addrs
    with pytest.raises(Conflict, match="active endpoints"):
        env.engine.network_rm(net)
    with pytest.raises(Conflict):
        env.engine.network_connect(net, cid)  # already connected
    env.engine.network_disconnect(net, "multi")
    assert "eth1" not in env.run_in(s, "ip", "-br", "link").stdout
    assert env.engine.network_inspect(net)["Containers"] == {}
    assert env.engine.network_rm(net) == net
    with pytest.raises(NotFound):
        env.engine.network_inspect(net)


def test_network_create_pick_avoids_host_routes(env):
    a = env.engine.network_create(netname())
    b = env.engine.network_create(netname())
    import ipaddress

    na = ipaddress.ip_network(a["IPAM"]["Config"][0]["Subnet"])
    nb = ipaddress.ip_network(b["IPAM"]["Config"][0]["Subnet"])
    assert not na.overlaps(nb)
    routes = json.loads(subprocess.run(["ip", "-j", "route"], capture_output=True,
                                       text=True).stdout)
    for r in routes:
        if r["dst"] != "default" and "/" in r["dst"] and r.get("dev") not in (
                a["Options"]["com.docker.network.bridge.name"],
                b["Options"]["com.docker.network.bridge.name"]):
            other = ipaddress.ip_network(r["dst"], strict=False)
            assert not other.overlaps(na) and not other.overlaps(nb)


def test_net_stats_count_traffic(env):
    cid, s = env.sandbox("stats")
    _, t = env.sandbox("peer")
    env.serve(s, "x" * 20000)
    before = env.engine.container_net_stats(cid)
    r = env.run_in(t, BUSYBOX, "wget", "-q", "-O", "-", f"http://{s['IPAddress']}/")
    assert len(r.stdout) == 20000
    after = env.engine.container_net_stats(cid)
    assert after["tx_bytes"] - before["tx_bytes"] >= 20000
    assert after["rx_packets"] > before["rx_packets"]
    assert set(after["Interfaces"]) == {"lo", "eth0"}


def test_teardown_is_idempotent_and_survives_a_lost_record(env):
    port = free_port()
    cid, s = env.sandbox("crashy", ports=[f"{port}:80"])
    store = env.engine._netops.store
    veth = s["Networks"]["bridge"]["HostVeth"]
    # a crash that lost the sandbox record: everything is still found from the id
    store.remove_container(cid)
    assert env.engine.cleanup_container(cid) is True
    assert veth not in net_links()
    assert not os.path.exists(s["SandboxKey"])
    assert cid not in env.engine.network_inspect("bridge")["Containers"]
    table = store.nft_table
    assert f"c:{cid[:12]}" not in subprocess.run(["nft", "list", "table", "ip", table],
                                                 capture_output=True, text=True).stdout
    assert env.engine.cleanup_container(cid) is False
    env.engine.teardown_container_network(cid)


def _wait_gone(name: str, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if name not in net_links():
            return True
        time.sleep(0.01)
    return False


def test_fast_teardown_after_exit_lets_the_kernel_remove_the_pair(env):
    from core.network.sandbox import teardown_after_exit

    cid, s = env.sandbox("fast")
    veth = s["Networks"]["bridge"]["HostVeth"]
    assert teardown_after_exit(env.engine.paths.root, cid) is True
    assert not os.path.exists(s["SandboxKey"])
    assert cid not in env.engine.network_inspect("bridge")["Containers"]
    assert _wait_gone(veth), "the kernel did not remove the veth pair"
    # a restart right away reuses the same veth name, even if the old one still exists
    s2 = env.engine.setup_container_network(cid, name="fast")
    assert teardown_after_exit(env.engine.paths.root, cid)
    s3 = env.engine.setup_container_network(cid, name="fast")
    assert s3["Networks"]["bridge"]["HostVeth"] == veth == s2["Networks"]["bridge"]["HostVeth"]
    assert veth in net_links()


SHIM_PROBE = r"""
import sys, json
sys.path.insert(0, sys.argv[1])
from core.network.sandbox import teardown_after_exit
found = teardown_after_exit(sys.argv[2], sys.argv[3], sys.argv[4])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in (
    "pyroute2", "subprocess", "dataclasses", "ipaddress", "socket", "tempfile", "typing"))
print(json.dumps({"found": found, "heavy": heavy}))
"""


def test_teardown_after_exit_runs_in_the_shims_bare_interpreter(env):
    """The shim is `python -I -S`: no site-packages, no Engine. Its teardown must work
    there and load none of the heavy modules (a container without published ports)."""
    cid, s = env.sandbox("shimmed")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-I", "-S", "-c", SHIM_PROBE, repo,
                          env.engine.paths.root, cid, env.engine.paths.run],
                         capture_output=True, text=True, check=True, cwd="/").stdout
    assert json.loads(out) == {"found": True, "heavy": []}
    assert not os.path.exists(s["SandboxKey"])
    assert cid not in env.engine.network_inspect("bridge")["Containers"]
    assert _wait_gone(s["Networks"]["bridge"]["HostVeth"])


def test_sweep_removes_a_veth_whose_namespace_outlived_a_fast_teardown(env):
    from core.network.sandbox import teardown_after_exit

    cid, s = env.sandbox("held")
    veth = s["Networks"]["bridge"]["HostVeth"]
    holder = os.open(s["SandboxKey"], os.O_RDONLY)  # a stray process keeping it alive
    try:
        teardown_after_exit(env.engine.paths.root, cid)
        time.sleep(0.2)
        assert veth in net_links()
        assert env.engine._netops.sweep() == [veth]
        assert veth not in net_links()
    finally:
        os.close(holder)


def test_restart_replaces_a_leftover_veth_of_the_same_container(env):
    from core.network.sandbox import teardown_after_exit

    cid, s = env.sandbox("again")
    veth = s["Networks"]["bridge"]["HostVeth"]
    holder = os.open(s["SandboxKey"], os.O_RDONLY)  # the old pair cannot go away yet
    try:
        teardown_after_exit(env.engine.paths.root, cid)
        old = open(f"/sys/class/net/{veth}/ifindex").read()
        s2 = env.engine.setup_container_network(cid, name="again")
        assert s2["Networks"]["bridge"]["HostVeth"] == veth
        assert open(f"/sys/class/net/{veth}/ifindex").read() != old
        r = env.run_in(s2, "ip", "-br", "addr", "show", "eth0")
        assert s2["IPAddress"] in r.stdout
    finally:
        os.close(holder)


def test_setup_failure_leaves_nothing(env):
    with pytest.raises(NotFound):
        env.sandbox("nonet", networks=["nstest-does-not-exist"])
    net = netname()
    env.engine.network_create(net, subnet="10.212.0.0/30")  # one usable address
    env.sandbox("first", networks=[net])
    with pytest.raises(Conflict, match="no free address"):
        env.sandbox("second", networks=[net])
    assert len(env.engine._netops.store.containers()) == 1
    assert len(os.listdir(env.engine.paths.netns)) == 1


def _attach_child(root: str, run: str, net: str, cid: str, q) -> None:
    os.environ["NUTSHELL_RUNTIME_DIR"] = run
    try:
        s = Engine(root).setup_container_network(cid, name=f"p{cid[:6]}", networks=[net])
        q.put((cid, s["IPAddress"], s["Networks"][net]["HostVeth"]))
    except BaseException as e:  # noqa: BLE001
        q.put((cid, f"error: {e}", None))


@pytest.mark.slow
def test_twenty_parallel_attaches_get_twenty_addresses(env):
    net = netname()
    env.engine.network_create(net)
    root, run = env.engine.paths.root, os.environ["NUTSHELL_RUNTIME_DIR"]
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    cids = [os.urandom(32).hex() for _ in range(20)]
    env.cids += cids
    procs = [ctx.Process(target=_attach_child, args=(root, run, net, c, q)) for c in cids]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    env.remember()
    ips = [ip for _, ip, _ in results]
    assert not [ip for ip in ips if ip.startswith("error")], ips
    assert len(set(ips)) == 20
    links = net_links()
    for cid, ip, veth in results:
        assert veth in links
        out = subprocess.run(["ip", "-n", f"nutshell-{cid[:12]}", "-br", "addr", "show",
                              "eth0"], capture_output=True, text=True).stdout
        assert ip in out
    assert len(env.engine.network_inspect(net)["Containers"]) == 20


def test_without_nft_containers_still_talk_and_one_message_says_why(env, monkeypatch):
    from core.errors import RuntimeFailure
    from core.network import nat

    monkeypatch.setattr(nat, "_nft_path", [None])
    net = netname()
    env.engine.network_create(net)
    _, a = env.sandbox("a", networks=[net])
    _, b = env.sandbox("b", networks=[net])
    assert a["Warnings"] == [nat.MISSING]
    env.serve(a, "no nat needed\n")
    r = env.run_in(b, BUSYBOX, "wget", "-q", "-O", "-", "http://a/", hosts=b["HostsPath"])
    assert r.stdout == "no nat needed\n"
    with pytest.raises(RuntimeFailure, match="nft not found"):
        env.sandbox("c", ports=["127.0.0.1::80"])
    assert len(env.engine._netops.store.containers()) == 2
