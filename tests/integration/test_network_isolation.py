"""Isolation between networks, and our networks on a host with Docker's firewall.

Nothing here touches the firewall of the host's own network namespace (other people run
network tests on this machine at the same time). Instead,
``test_in_a_private_host_namespace[CONDITION]`` makes a fresh network namespace that
plays the host, prepares CONDITION in it, and runs a nested pytest session there
(its own mount namespace with a sysfs of that network namespace and the host's cgroups):

    plain                   no iptables at all (a host without Docker)
    docker-iptables-nft     Docker's condition: filter FORWARD policy DROP, Docker's
    docker-iptables-legacy  chains (DOCKER-USER, DOCKER-ISOLATION-STAGE-1/2, DOCKER),
                            net.bridge.bridge-nf-call-iptables=1 -- through iptables-nft
                            (nft's ``table ip filter``) or iptables-legacy (xtables)

The nested session runs the ``private`` tests below (skipped in an ordinary session: they
make a fake ``docker0``, a ``br-<12 hex>`` and an "outside" namespace, which only belong
in a namespace of our own) and the four existing tests that Docker's FORWARD DROP breaks.
br_netfilter's sysctls are per network namespace on this kernel, which the outer test
checks. Traffic only ever goes to namespaces these tests create.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.integration.netenv import BUSYBOX, FETCH, SERVE, Env, free_port, netname

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST_NETNS = os.environ.get("NUTSHELL_TEST_HOST_NETNS", "")
CONDITION = os.environ.get("NUTSHELL_TEST_CONDITION", "")
TOKEN = os.environ.get("NUTSHELL_TEST_TOKEN", "")
PORT = 7007

# Docker 27's filter table, as `iptables -S` shows it with one default bridge
DOCKER_FILTER = [
    "-N DOCKER", "-N DOCKER-ISOLATION-STAGE-1", "-N DOCKER-ISOLATION-STAGE-2",
    "-N DOCKER-USER",
    "-P FORWARD DROP",
    "-A FORWARD -j DOCKER-USER",
    "-A FORWARD -j DOCKER-ISOLATION-STAGE-1",
    "-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-A FORWARD -o docker0 -j DOCKER",
    "-A FORWARD -i docker0 ! -o docker0 -j ACCEPT",
    "-A FORWARD -i docker0 -o docker0 -j ACCEPT",
    "-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2",
    "-A DOCKER-ISOLATION-STAGE-1 -j RETURN",
    "-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP",
    "-A DOCKER-ISOLATION-STAGE-2 -j RETURN",
    "-A DOCKER-USER -j RETURN",
]
CONDITIONS = {"plain": None, "docker-iptables-nft": "iptables-nft",
              "docker-iptables-legacy": "iptables-legacy"}


def _private() -> bool:
    """This process runs in the namespace an outer test made to play the host."""
    if not HOST_NETNS:
        return False
    try:
        a, b = os.stat(f"/run/netns/{HOST_NETNS}"), os.stat("/proc/self/ns/net")
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


PRIVATE = _private()
private = pytest.mark.skipif(not PRIVATE, reason="runs in a namespace playing the host: "
                             "see test_in_a_private_host_namespace")


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise AssertionError(f"{shlex.join(argv)} -> {p.returncode}: {p.stderr}")
    return p


def _in(netns: str | None, *argv: str) -> list[str]:
    return (["nsenter", f"--net={netns}"] if netns else []) + list(argv)


# --- what the private tests make besides sandboxes ----------------------------------------
WHOAMI = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
print("ready", flush=True)
while True:
    c, (peer, _) = s.accept()
    c.sendall(f"{sys.argv[2]} {peer}\n".encode())
    c.close()
"""

ASK = r"""
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])) as s:
        print(s.recv(200).decode().strip())
except OSError as e:
    print(f"unreachable: {e}")
    sys.exit(1)
"""


class World:
    """Namespaces, links and servers a private test made; ``close`` removes them all."""

    def __init__(self, token: str):
        self.token = token
        self.names: list[str] = []
        self.links: list[str] = []
        self.procs: list[subprocess.Popen] = []

    def netns(self, suffix: str) -> str:
        name = f"{self.token}-{suffix}"
        sh("ip", "netns", "add", name)
        self.names.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return f"/run/netns/{name}"

    def endpoint(self, bridge: str, suffix: str, gateway: str, addr: str, prefix: int) -> str:
        """A namespace behind a veth on ``bridge``, default route via ``gateway``."""
        path = self.netns(suffix)
        name = os.path.basename(path)
        veth = f"{self.token[-9:]}{suffix}"[:15]
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        self.links.append(veth)
        sh("ip", "link", "set", veth, "master", bridge, "up")
        sh("ip", "-n", name, "addr", "add", f"{addr}/{prefix}", "dev", "eth0")
        sh("ip", "-n", name, "link", "set", "eth0", "up")
        sh("ip", "-n", name, "route", "add", "default", "via", gateway)
        return path

    def bridge(self, name: str, gateway: str, prefix: int) -> None:
        sh("ip", "link", "add", name, "type", "bridge")
        self.links.append(name)
        sh("ip", "addr", "add", f"{gateway}/{prefix}", "dev", name)
        sh("ip", "link", "set", name, "up")

    def serve(self, netns: str | None, name: str, port: int = PORT) -> None:
        p = subprocess.Popen(_in(netns, sys.executable, "-I", "-S", "-c", WHOAMI, str(port),
                                 name), stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        assert p.stdout.readline().strip() == "ready", f"server {name} did not start"

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        for link in reversed(self.links):
            sh("ip", "link", "del", link, check=False)
        for name in self.names:
            sh("ip", "netns", "del", name, check=False)


@pytest.fixture
def world():
    w = World(TOKEN or "nsiso")
    try:
        yield w
    finally:
        w.close()


def ask(netns: str | None, ip: str, port: int = PORT, timeout: float = 5.0) -> str | None:
    """What the server at ip:port answers (``NAME PEER-ADDRESS``), or None."""
    p = subprocess.run(_in(netns, sys.executable, "-I", "-S", "-c", ASK, ip, str(port),
                           str(timeout)), capture_output=True, text=True, timeout=30)
    return p.stdout.strip() if p.returncode == 0 else None


def blocked(netns: str | None, ip: str, port: int = PORT) -> bool:
    """No TCP connection within a second (a dropped SYN; a reachable peer answers in ms)."""
    return ask(netns, ip, port, timeout=1.0) is None


def pings(netns: str | None, ip: str) -> bool:
    return subprocess.run(_in(netns, BUSYBOX, "ping", "-c", "1", "-W", "1", ip),
                          capture_output=True, timeout=30).returncode == 0


@pytest.fixture
def docker(world):
    """Fake Docker networks: ``docker0`` and ``br-0123456789ab``, one endpoint each,
    serving whoami on PORT."""
    out = []
    for i, (bridge, net) in enumerate([("docker0", "172.17.0"), ("br-0123456789ab", "172.18.0")]):
        world.bridge(bridge, f"{net}.1", 16)
        ns = world.endpoint(bridge, f"dk{i}", f"{net}.1", f"{net}.2", 16)
        world.serve(ns, bridge)
        out.append({"bridge": bridge, "netns": ns, "ip": f"{net}.2", "gateway": f"{net}.1"})
    return out


@pytest.fixture
def upstream(world):
    """The outside world: a namespace behind a routed veth, serving whoami on PORT."""
    ns = world.netns("up")
    name = os.path.basename(ns)
    veth = f"{world.token[-9:]}up"
    sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
    world.links.append(veth)
    sh("ip", "addr", "add", "198.18.0.1/30", "dev", veth)
    sh("ip", "link", "set", veth, "up")
    sh("ip", "-n", name, "addr", "add", "198.18.0.2/30", "dev", "eth0")
    sh("ip", "-n", name, "link", "set", "eth0", "up")
    world.serve(ns, "outside")
    return {"ip": "198.18.0.2", "host_side": "198.18.0.1"}


@pytest.fixture
def second_root(tmp_path, monkeypatch, env):
    """A second state root on the same host (its own runtime dir and nft table)."""
    d = tmp_path / "second"
    d.mkdir()
    old = os.environ["NUTSHELL_RUNTIME_DIR"]
    monkeypatch.setenv("NUTSHELL_RUNTIME_DIR", str(d / "run"))
    e = Env(d)
    monkeypatch.setenv("NUTSHELL_RUNTIME_DIR", old)
    try:
        yield e
    finally:
        e.close()


# ==========================================================================================
# private tests: in the namespace playing the host
# ==========================================================================================
@private
def test_networks_are_isolated_from_each_other_within_and_across_roots(env, second_root, world):
    one, two = netname(), netname()
    env.engine.network_create(one)
    env.engine.network_create(two)
    _, a1 = env.sandbox("a1", networks=[one])
    _, a2 = env.sandbox("a2", networks=[one])
    _, b = env.sandbox("b", networks=[two])
    _, both = env.sandbox("both", networks=[one, two])
    _, d = env.sandbox("d")  # the default bridge network
    other = netname()
    second_root.engine.network_create(other)
    _, e = second_root.sandbox("e", networks=[other])
    for name, s in (("a1", a1), ("b", b), ("d", d), ("e", e)):
        world.serve(s["SandboxKey"], name)
    ip = {name: s["IPAddress"] for name, s in (("a1", a1), ("b", b), ("d", d), ("e", e))}

    # within one network, and for a container on both: works (no forwarding between bridges)
    assert ask(a2["SandboxKey"], ip["a1"]) == f"a1 {a2['IPAddress']}"
    assert pings(a2["SandboxKey"], ip["a1"])
    assert ask(both["SandboxKey"], ip["a1"]) == f"a1 {both['Networks'][one]['IPAddress']}"
    assert ask(both["SandboxKey"], ip["b"]) == f"b {both['Networks'][two]['IPAddress']}"
    # the host reaches every one of them: the addresses are routable, forwarding is cut
    for name in ip:
        assert ask(None, ip[name]) is not None, name
    # across networks of one root, with the default bridge, across roots: dropped
    assert blocked(b["SandboxKey"], ip["a1"])
    assert not pings(b["SandboxKey"], ip["a1"])
    assert blocked(a1["SandboxKey"], ip["b"])
    assert not pings(a1["SandboxKey"], ip["b"])
    assert blocked(d["SandboxKey"], ip["a1"])
    assert blocked(a1["SandboxKey"], ip["d"])
    assert blocked(e["SandboxKey"], ip["a1"])
    assert blocked(a1["SandboxKey"], ip["e"])
    assert not pings(e["SandboxKey"], ip["b"])


@private
def test_docker_bridges_and_ours_do_not_reach_each_other(env, world, docker):
    net = netname()
    env.engine.network_create(net)
    _, x = env.sandbox("x", networks=[net])
    _, y = env.sandbox("y")  # default bridge
    world.serve(x["SandboxKey"], "x")
    for dk in docker:
        assert ask(None, dk["ip"]) == f"{dk['bridge']} {dk['gateway']}"  # the host does
        for ours in (x, y):
            assert blocked(ours["SandboxKey"], dk["ip"]), (dk["bridge"], ours["IPAddress"])
        assert not pings(x["SandboxKey"], dk["ip"])
        assert blocked(dk["netns"], x["IPAddress"]), dk["bridge"]
        assert not pings(dk["netns"], x["IPAddress"])
    assert ask(None, x["IPAddress"]) == f"x {x['Gateway']}"


@private
def test_egress_to_the_outside_is_masqueraded(env, world, upstream):
    net = netname()
    env.engine.network_create(net)
    _, u = env.sandbox("u", networks=[net])
    _, d = env.sandbox("d")
    for s in (u, d):
        assert ask(s["SandboxKey"], upstream["ip"]) == f"outside {upstream['host_side']}"
        assert pings(s["SandboxKey"], upstream["ip"])


@private
def test_a_published_port_is_open_to_other_networks_but_the_address_is_not(env, world):
    one, two = netname(), netname()
    env.engine.network_create(one)
    env.engine.network_create(two)
    port = free_port()
    _, p = env.sandbox("p", networks=[two], ports=[f"{port}:{PORT}"])
    _, c = env.sandbox("c", networks=[one])
    world.serve(p["SandboxKey"], "p")
    # through the host's address (DNAT): as open as it is to the outside world
    assert (ask(c["SandboxKey"], c["Gateway"], port) or "").startswith("p ")
    # straight to the container's address on the other network: isolated
    assert blocked(c["SandboxKey"], p["IPAddress"])


@private
def test_real_containers_on_two_networks(host):
    one, two = netname(), netname()
    host.ns("network", "create", one)
    host.ns("network", "create", two)
    w1, w2 = f"w1-{os.urandom(2).hex()}", f"w2-{os.urandom(2).hex()}"
    host.run("-d", "--name", w1, "--network", one, "--", "sh", "-c", SERVE, "one")
    host.run("-d", "--name", w2, "--network", two, "--", "sh", "-c", SERVE, "two")
    host.remember()
    ip2 = host.inspect(w2)["NetworkSettings"]["Networks"][two]["IPAddress"]
    r = host.run("--rm", "--network", one, "--", "sh", "-c", FETCH, f"http://{w1}/")
    assert r.stdout == "one\n", r.stderr
    r = host.run("--rm", "--network", two, "--", "sh", "-c", FETCH, f"http://{w2}/")
    assert r.stdout == "two\n", r.stderr
    r = host.run("--rm", "--network", one, "--", "sh", "-c",
                 f"timeout 3 wget -q -O - http://{ip2}/ || echo blocked")
    assert r.stdout == "blocked\n", r.stdout
    host.ns("rm", "-f", w1, w2)


@private
@pytest.mark.skipif(CONDITION != "plain", reason="only on a host without a FORWARD firewall")
def test_a_host_without_a_forward_firewall_gets_no_iptables_rules(env):
    def tables() -> tuple[str, str, str]:
        legacy = open("/proc/net/ip_tables_names").read() \
            if os.path.exists("/proc/net/ip_tables_names") else ""
        return (legacy, sh("iptables-nft", "-S").stdout,
                sh("nft", "list", "tables").stdout)

    net = netname()
    env.engine.network_create(net)
    env.sandbox("a", networks=[net])
    legacy, nft_rules, nft_tables = tables()
    assert "filter" not in legacy.split()          # never instantiated xtables
    assert "table ip filter" not in nft_tables     # nor iptables-nft's table
    assert "NUTSHELL" not in nft_rules
    # an empty FORWARD chain with policy ACCEPT drops nothing: still no rules of ours
    sh("iptables-legacy", "-w", "-S")
    env.sandbox("b", networks=[net])
    assert "NUTSHELL" not in sh("iptables-legacy", "-w", "-S").stdout


def _docker_binary() -> str:
    return CONDITIONS[CONDITION]


def _ours(binary: str) -> list[str]:
    return [l for l in sh(binary, "-w", "-S").stdout.splitlines() if "NUTSHELL" in l]


@private
@pytest.mark.skipif(not CONDITION.startswith("docker"), reason="needs Docker's condition")
def test_forward_accepts_follow_the_networks_and_survive_dockerd_restarts(env):
    ipt = _docker_binary()
    docker_rules = [l for l in sh(ipt, "-w", "-S").stdout.splitlines() if "NUTSHELL" not in l]
    one, inner = netname(), netname()
    env.engine.network_create(one)
    env.engine.network_create(inner, internal=True)
    ids = {n: env.engine.network_inspect(n)["Id"][:12] for n in (one, inner)}
    bridge = env.engine.network_inspect(one)["Options"]["com.docker.network.bridge.name"]
    ours = _ours(ipt)
    assert ours[:2] == ["-N NUTSHELL-FORWARD",
                        '-A FORWARD -m comment --comment "nutshell networks" '
                        "-j NUTSHELL-FORWARD"]
    assert sh(ipt, "-w", "-S", "FORWARD").stdout.splitlines()[1].endswith("NUTSHELL-FORWARD")
    assert len([l for l in ours if f"n:{ids[one]}" in l]) == 3
    assert len([l for l in ours if f"n:{ids[inner]}" in l]) == 1
    assert f'-A NUTSHELL-FORWARD -i {bridge} -m comment --comment "nutshell n:{ids[one]}" ' \
           "-j ACCEPT" in ours
    _, a = env.sandbox("a", networks=[one])
    _, b = env.sandbox("b", networks=[one])
    _, i1 = env.sandbox("i1", networks=[inner])
    _, i2 = env.sandbox("i2", networks=[inner])
    for name, s in (("a", a), ("i1", i1)):
        env.serve(s, f"hello {name}\n")

    def fetch(s, ip) -> str:
        r = env.run_in(s, "timeout", "3", BUSYBOX, "wget", "-q", "-O", "-", f"http://{ip}/")
        return r.stdout

    assert fetch(b, a["IPAddress"]) == "hello a\n"
    assert fetch(i2, i1["IPAddress"]) == "hello i1\n"  # internal: bridged traffic only

    # dockerd restarts: it re-creates its chains and puts its jumps first again
    forward = [l for l in docker_rules if l.startswith("-A FORWARD ")]
    for line in forward:
        sh(ipt, "-w", "-D", *shlex.split(line)[1:])
    for chain in ("DOCKER-USER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2"):
        sh(ipt, "-w", "-F", chain)
    for line in docker_rules:
        if line.startswith("-A ") and not line.startswith("-A FORWARD "):
            sh(ipt, "-w", *shlex.split(line))
    for line in reversed(forward):
        sh(ipt, "-w", "-I", "FORWARD", "1", *shlex.split(line)[2:])
    assert _ours(ipt) == ours
    assert sh(ipt, "-w", "-S", "FORWARD").stdout.splitlines()[1] == forward[0]
    assert fetch(b, a["IPAddress"]) == "hello a\n"

    # a firewall reload that flushes FORWARD drops our jump: the next start puts it back
    sh(ipt, "-w", "-F", "FORWARD")
    for line in forward:
        sh(ipt, "-w", *shlex.split(line))
    assert fetch(b, a["IPAddress"]) == ""
    env.sandbox("c", networks=[one])
    assert fetch(b, a["IPAddress"]) == "hello a\n"

    # rules leave with their network; the chain and the jump with the last one
    for cid in list(env.cids):
        env.engine.teardown_container_network(cid)
    env.engine.network_rm(inner)
    assert not [l for l in _ours(ipt) if f"n:{ids[inner]}" in l]
    assert [l for l in _ours(ipt) if f"n:{ids[one]}" in l]
    env.engine.network_rm(one)
    assert _ours(ipt) == []
    assert sorted(sh(ipt, "-w", "-S").stdout.splitlines()) == sorted(docker_rules)
    # the other backend was never touched
    if ipt == "iptables-nft":
        assert "filter" not in open("/proc/net/ip_tables_names").read().split()
    else:
        assert "table ip filter" not in sh("nft", "list", "tables").stdout


# ==========================================================================================
# outer tests: make the namespace, prepare the condition, run the nested session
# ==========================================================================================
EXISTING = [
    "tests/integration/test_network_containers.py::"
    "test_two_containers_on_a_user_network_by_name_and_alias",
    "tests/integration/test_network_namespaces.py::"
    "test_two_endpoints_on_a_user_network_reach_each_other_by_name_and_alias",
    "tests/integration/test_network_namespaces.py::test_net_stats_count_traffic",
    "tests/integration/test_network_namespaces.py::"
    "test_without_nft_containers_still_talk_and_one_message_says_why",
]
PRIVATE_TESTS = [
    "test_networks_are_isolated_from_each_other_within_and_across_roots",
    "test_docker_bridges_and_ours_do_not_reach_each_other",
    "test_egress_to_the_outside_is_masqueraded",
    "test_a_published_port_is_open_to_other_networks_but_the_address_is_not",
    "test_real_containers_on_two_networks",
    "test_a_host_without_a_forward_firewall_gets_no_iptables_rules",
    "test_forward_accepts_follow_the_networks_and_survive_dockerd_restarts",
]
NESTED = """set -e
keep=$(mktemp -d)
mount --rbind /sys/fs/cgroup "$keep"
mount -t sysfs sysfs /sys
mount --rbind "$keep" /sys/fs/cgroup
umount -l "$keep"
rmdir "$keep"
exec "$@"
"""


def _set_up(netns: str, condition: str) -> None:
    path = f"/run/netns/{netns}"
    sh("ip", "-n", netns, "link", "set", "lo", "up")
    sysctl = "/proc/sys/net/bridge/bridge-nf-call-iptables"
    host_value = open(sysctl).read()
    binary = CONDITIONS[condition]
    if binary is None:
        return
    sh("nsenter", f"--net={path}", "sh", "-c", f"echo 1 > {sysctl}; "
       "echo 1 > /proc/sys/net/ipv4/ip_forward")
    assert sh("nsenter", f"--net={path}", "cat", sysctl).stdout == "1\n"
    assert open(sysctl).read() == host_value  # per network namespace: the host's is as it was
    for line in DOCKER_FILTER:
        sh("nsenter", f"--net={path}", binary, "-w", *shlex.split(line))


def _results(junit: str) -> dict[str, str]:
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", "")
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
        out[name] = outcome
    return out


def _ours_in(netns: str) -> list[int]:
    """Processes living in the namespace (our nested session's leftovers, if any)."""
    want = os.stat(f"/run/netns/{netns}")
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            st = os.stat(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino):
            pids.append(int(pid))
    return pids


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(bool(HOST_NETNS), reason="already inside a private host namespace")
@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_in_a_private_host_namespace(condition, tmp_path):
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    for tool in ("nsenter", "unshare", "ip", "nft", "iptables-nft", "iptables-legacy"):
        if not shutil.which(tool, path=path):
            pytest.skip(f"{tool} is not installed (apt-get install iptables)")
    token = f"nsiso{os.urandom(3).hex()}"
    sh("ip", "netns", "add", token)
    try:
        _set_up(token, condition)
        junit = str(tmp_path / "nested.xml")
        mine = [f"tests/integration/test_network_isolation.py::{t}" for t in PRIVATE_TESTS]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTEST_", "NUTSHELL_"))}
        env.update(NUTSHELL_TEST_HOST_NETNS=token, NUTSHELL_TEST_CONDITION=condition,
                   NUTSHELL_TEST_TOKEN=token)
        cmd = ["nsenter", f"--net=/run/netns/{token}", "unshare", "--mount",
               "--propagation", "slave", "sh", "-c", NESTED, "nested",
               sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               f"--junitxml={junit}", "-o", "junit_family=xunit1", *mine, *EXISTING]
        p = subprocess.run(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=840)
        tail = "\n".join((p.stdout + p.stderr).splitlines()[-60:])
        assert os.path.exists(junit), tail
        got = _results(junit)
        bad = {k: v for k, v in got.items() if v in ("failure", "error")}
        assert not bad, f"{bad}\n{tail}"
        skipped = {k for k, v in got.items() if v == "skipped"}
        for t in EXISTING:
            assert got.get(t) == "passed", (t, got.get(t), tail)
        expected_skips = {
            "plain": {"test_forward_accepts_follow_the_networks_and_survive_dockerd_restarts"},
        }.get(condition, {"test_a_host_without_a_forward_firewall_gets_no_iptables_rules"})
        assert {k.rsplit("::", 1)[1] for k in skipped} == expected_skips, tail
        assert len(got) == len(mine) + len(EXISTING), tail
        assert p.returncode == 0, tail
    finally:
        for pid in _ours_in(token):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        for name in os.listdir("/run/netns"):
            if name.startswith(token):
                sh("ip", "netns", "del", name, check=False)
