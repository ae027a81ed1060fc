"""Where the network set-up of a container spends its time, and what the choices cost.

    sudo .venv/bin/python tests/benchmarks/bench_network.py [-n 15] [--run [--image busybox]]

Every figure is the median wall time of N fresh processes (imports included, which is
what a `nutshell run` pays), except the in-process rows. Prints:

1. import cost: bare interpreter, full ``import pyroute2``, ``pyroute2.iproute.linux``,
   pyroute2's rtnl codecs loaded our way (core.network._pyroute2), core.network.rtnl;
2. one container attach (netns + veth on a bridge + lo/eth0 up + address + default
   route), four ways: ``ip`` commands, pyroute2's IPRoute (as documented), ours (pyroute2
   codecs over our socket), a hand-written minimal rtnetlink (this file);
3. teardown: RTM_DELLINK of the veth vs unpinning the netns (the kernel removes the pair);
4. ``Engine.setup_container_network`` + teardown on the default bridge, in a fresh process;
5. with ``--run``: median ``nutshell run --rm ... true`` (busybox rootfs) with the default
   bridge beside ``--network none``, and podman/docker (``--image``) when they work.

Everything it creates is named nsbench-* / in a temporary root, and removed at the end.
Not collected by pytest (bench_*.py).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PY = sys.executable
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ENV = dict(os.environ)
ENV.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with .pyc files, as installed
ENV["PYTHONPATH"] = REPO
BRIDGE = "nsbench0"


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime + r.ru_stime) * 1000


def timed(argv: list[str], env=None, **kw) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall ms, CPU ms of the child and its children, result)."""
    c = _children_cpu()
    t = time.perf_counter()
    p = subprocess.run(argv, check=True, env=env or ENV, **kw)
    return (time.perf_counter() - t) * 1000, _children_cpu() - c, p


def median_ms(argv: list[str], n: int) -> tuple[float, float]:
    """Median wall and median CPU time of ``n`` runs (CPU time is the steadier figure
    when other work shares the machine)."""
    walls, cpus = [], []
    for _ in range(n):
        w, c, _p = timed(argv, stdout=subprocess.DEVNULL)
        walls.append(w)
        cpus.append(c)
    return statistics.median(walls), statistics.median(cpus)


def row(label: str, wall: float, cpu: float | None = None, extra: str = "") -> None:
    cpu_s = f"{cpu:8.1f}" if cpu is not None else " " * 8
    print(f"   {label:<52} {wall:8.1f} {cpu_s}{extra}")


def py(code: str) -> list[str]:
    return [PY, "-c", code]


# --- a minimal hand-written rtnetlink (for comparison only) -------------------------------
HANDMADE = r'''
import os, socket, struct, sys
sys.path.insert(0, %(repo)r)
from core.network import netns
def attr(t, payload):
    l = 4 + len(payload)
    return struct.pack("=HH", l, t) + payload + b"\0" * ((4 - l %% 4) %% 4)
def nest(t, *a):
    return attr(t | 0x8000, b"".join(a))
def s(x):
    return x.encode() + b"\0"
def msg(sock, mtype, flags, body):
    hdr = struct.pack("=IHHII", 16 + len(body), mtype, flags | 1 | 4, 1, 0)
    sock.send(hdr + body)
    data = sock.recv(65536)
    err = struct.unpack_from("=i", data, 16)[0]
    if err:
        raise OSError(-err, os.strerror(-err))
def ifinfo(index=0, flags=0, change=0):
    return struct.pack("=BxHiII", 0, 0, index, flags, change)
path, veth, br, ip, gw = sys.argv[1:6]
fd = os.open(path, os.O_RDONLY)
sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
bri = socket.if_nametoindex(br)
peer = ifinfo() + attr(3, s("eth0")) + attr(28, struct.pack("=I", fd))
body = ifinfo(0, 1, 1) + attr(3, s(veth)) + attr(10, struct.pack("=I", bri)) + \
    nest(18, attr(1, s("veth")), nest(2, nest(1, peer)))
msg(sock, 16, 0x600, body)
with netns.entered(path):
    ns = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    lo, eth = socket.if_nametoindex("lo"), socket.if_nametoindex("eth0")
msg(ns, 16, 0, ifinfo(lo, 1, 1))
msg(ns, 16, 0, ifinfo(eth, 1, 1))
a = socket.inet_aton(ip)
msg(ns, 20, 0x600, struct.pack("=BBBBI", 2, 16, 0, 0, eth) + attr(2, a) + attr(1, a))
msg(ns, 24, 0x600, struct.pack("=BBBBBBBBI", 2, 0, 0, 0, 254, 3, 0, 1, 0) +
    attr(5, socket.inet_aton(gw)) + attr(4, struct.pack("=I", eth)))
'''

OURS = r'''
import os, sys
sys.path.insert(0, %(repo)r)
from core.network import netns
from core.network.rtnl import Rtnl, RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE, NLM_F_CREATE, NLM_F_EXCL
path, veth, br, ip, gw = sys.argv[1:6]
fd = os.open(path, os.O_RDONLY)
with Rtnl() as r:
    r.add_veth(veth, "eth0", fd, master=r.link(br)["index"])
with Rtnl(path) as n:
    lo, eth = n.link("lo")["index"], n.link("eth0")["index"]
    n.transact([(n.msg_link(index=lo, up=True), RTM_NEWLINK, 0),
                (n.msg_link(index=eth, up=True), RTM_NEWLINK, 0),
                (n.msg_addr(eth, ip, 16), RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL),
                (n.msg_default_route(gw, eth), RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL)])
'''

PYROUTE2_FULL = r'''
import os, sys
sys.path.insert(0, %(repo)r)
from core.network import netns
from pyroute2 import IPRoute
path, veth, br, ip, gw = sys.argv[1:6]
with IPRoute() as r:
    r.link("add", ifname=veth, kind="veth", peer={"ifname": "eth0", "net_ns_fd": path})
    idx = r.link_lookup(ifname=veth)[0]
    r.link("set", index=idx, master=r.link_lookup(ifname=br)[0], state="up")
with IPRoute(netns=path) as n:
    lo, eth = n.link_lookup(ifname="lo")[0], n.link_lookup(ifname="eth0")[0]
    n.link("set", index=lo, state="up")
    n.link("set", index=eth, state="up")
    n.addr("add", index=eth, address=ip, prefixlen=16)
    n.route("add", dst="default", gateway=gw)
'''

IP_CMDS = r'''
set -e
ip link add "$2" master "$3" up type veth peer name eth0 netns "$1"
ip -n "$1" -b - <<EOF
link set lo up
link set eth0 up
addr add $4/16 dev eth0
route add default via $5
EOF
'''


def attach_rows(n: int, tmp: str) -> list[tuple]:
    from core.network import netns
    from core.network.rtnl import Rtnl

    with Rtnl() as r:
        r.add_bridge(BRIDGE)
        r.add_address(r.link(BRIDGE)["index"], "10.250.0.1", 16)
    rows = []
    sh = os.path.join(tmp, "attach.sh")
    with open(sh, "w") as f:
        f.write(IP_CMDS % {"repo": REPO})
    ways = [
        ("ip commands (ip link + ip -n -batch)", lambda p, v: [
            "sh", sh, "nutshell-" + os.path.basename(p), v, BRIDGE]),
        ("pyroute2 IPRoute (full import, NetNS child)", lambda p, v: py(
            PYROUTE2_FULL % {"repo": REPO}) + [p, v, BRIDGE]),
        ("ours: pyroute2 codecs + own socket", lambda p, v: py(OURS % {"repo": REPO}) + [
            p, v, BRIDGE]),
        ("hand-written minimal rtnetlink", lambda p, v: py(HANDMADE % {"repo": REPO}) + [
            p, v, BRIDGE]),
    ]
    try:
        for label, make in ways:
            paths = [os.path.join(tmp, f"nsbench{i}") for i in range(n)]

            def teardown(i):
                with Rtnl() as r:
                    r.delete_link(f"nsbv{i}")
                netns.delete(paths[i], os.path.basename(paths[i]))

            walls, cpus = [], []
            for i in range(n):
                netns.create(paths[i], os.path.basename(paths[i]))
                argv = make(paths[i], f"nsbv{i}") + [f"10.250.1.{i + 2}", "10.250.0.1"]
                w, c, _p = timed(argv, stdout=subprocess.DEVNULL)
                walls.append(w)
                cpus.append(c)
                teardown(i)
            rows.append((label, statistics.median(walls), statistics.median(cpus)))
    finally:
        with Rtnl() as r:
            r.delete_link(BRIDGE)
            for i in range(n):
                r.delete_link(f"nsbv{i}")
        for i in range(n):
            netns.delete(os.path.join(tmp, f"nsbench{i}"), f"nsbench{i}")
    return rows


def teardown_rows(n: int, tmp: str) -> list[tuple]:
    from core.network import netns
    from core.network.rtnl import Rtnl

    dl, um, gone = [], [], []
    with Rtnl() as r:
        for i in range(n):
            p = netns.create(os.path.join(tmp, f"td{i}"))
            fd = os.open(p, os.O_RDONLY)
            r.add_veth("nsbvtd", "eth0", fd)
            os.close(fd)
            t = time.perf_counter()
            r.delete_link("nsbvtd")
            dl.append((time.perf_counter() - t) * 1000)
            netns.delete(p)
            p = netns.create(os.path.join(tmp, f"td{i}"))
            fd = os.open(p, os.O_RDONLY)
            r.add_veth("nsbvtd", "eth0", fd)
            os.close(fd)
            t = time.perf_counter()
            netns.delete(p)
            um.append((time.perf_counter() - t) * 1000)
            while r.link("nsbvtd") is not None:
                time.sleep(0.0005)
            gone.append((time.perf_counter() - t) * 1000)
    return [("RTM_DELLINK of the host veth (synchronous)", statistics.median(dl), None),
            ("unpin netns (umount + unlink)", statistics.median(um), None),
            ("  ... until the kernel has removed the veth pair", statistics.median(gone), None)]


ENGINE = r'''
import sys, time
sys.path.insert(0, %(repo)r)
t0 = time.perf_counter()
from core.engine import Engine
e = Engine(sys.argv[1])
t1 = time.perf_counter()
s = e.setup_container_network(sys.argv[2], networks=[sys.argv[3]])
t2 = time.perf_counter()
e.teardown_container_network(sys.argv[2])
t3 = time.perf_counter()
print(f"{(t1-t0)*1e3:.2f} {(t2-t1)*1e3:.2f} {(t3-t2)*1e3:.2f}")
'''


def engine_rows(n: int, tmp: str) -> list[tuple]:
    root = os.path.join(tmp, "root")
    env = dict(ENV, NUTSHELL_RUNTIME_DIR=os.path.join(tmp, "run"))
    from core.engine import Engine

    os.environ["NUTSHELL_RUNTIME_DIR"] = env["NUTSHELL_RUNTIME_DIR"]
    eng = Engine(root)
    rows = []
    try:
        for net in ("none", "bridge"):
            # first use creates the default network and its bridge: not measured
            warm = os.urandom(32).hex()
            eng.setup_container_network(warm, networks=[net])
            eng.teardown_container_network(warm)
            imp, setup, down, total, cpu = [], [], [], [], []
            for _ in range(n):
                w, cp, out = timed(py(ENGINE % {"repo": REPO}) + [root, os.urandom(32).hex(),
                                                                   net],
                                   env=env, capture_output=True, text=True)
                total.append(w)
                cpu.append(cp)
                a, b, c = map(float, out.stdout.split())
                imp.append(a)
                setup.append(b)
                down.append(c)
            rows += [(f"--network {net}: import core.engine", statistics.median(imp), None),
                     (f"--network {net}: setup_container_network", statistics.median(setup),
                      None),
                     (f"--network {net}: teardown_container_network", statistics.median(down),
                      None),
                     (f"--network {net}: whole process", statistics.median(total),
                      statistics.median(cpu))]
    finally:
        eng.network_reset()
    return rows


def run_rows(n: int, tmp: str, image: str | None) -> list[tuple]:
    """`nutshell run --rm` of busybox `true` (a --rootfs directory made offline from the
    host's busybox-static) on --network none and the default bridge, in a fresh root;
    podman/docker beside it when they are installed and working (with ``image``)."""
    from tests.rootfs import make_busybox_rootfs

    rootfs = make_busybox_rootfs(os.path.join(tmp, "busybox"))
    root = os.path.join(tmp, "run-root")
    env = dict(ENV, NUTSHELL_RUNTIME_DIR=os.path.join(tmp, "run-run"))
    nutshell = [PY, "-m", "workbench", "--root", root]
    rows = []
    try:
        for net in ("none", "bridge"):
            argv = nutshell + ["run", "--rm", "--network", net, "--rootfs", rootfs, "true"]
            subprocess.run(argv, env=env, check=True)  # warm-up: creates the bridge
            walls, cpus = [], []
            for _ in range(n):
                w, c, _p = timed(argv, env=env)
                walls.append(w)
                cpus.append(c)
            rows.append((f"nutshell run --rm --network {net} (busybox) true",
                         statistics.median(walls), statistics.median(cpus)))
    finally:
        os.environ["NUTSHELL_RUNTIME_DIR"] = env["NUTSHELL_RUNTIME_DIR"]
        from core.engine import Engine

        Engine(root).network_reset()
    for tool in ("podman", "docker"):
        if not image or not shutil.which(tool):
            continue
        if subprocess.run([tool, "info"], capture_output=True).returncode != 0:
            rows.append((f"{tool}: installed but not working (no daemon?)", float("nan"), None))
            continue
        for net in ("none", "bridge"):
            argv = [tool, "run", "--rm", "--network", net, image, "true"]
            if subprocess.run(argv, capture_output=True).returncode == 0:
                rows.append((f"{tool} run --rm --network {net} {image} true",
                             *median_ms(argv, n)))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=15, help="repetitions per row")
    ap.add_argument("--run", action="store_true",
                    help="also time `nutshell run --rm ... true` (none vs default bridge)")
    ap.add_argument("--image", help="image for podman/docker beside it, e.g. busybox")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 1
    sys.path.insert(0, REPO)
    n = args.n
    print(f"medians of {n} runs, milliseconds; fresh processes unless said otherwise")
    print(f"   {'':<52} {'wall':>8} {'CPU':>8}")
    print("1. import cost")
    imports = [
        ("bare interpreter (python -c pass)", "pass"),
        ("import pyroute2", "import pyroute2"),
        ("import pyroute2.iproute.linux", "import pyroute2.iproute.linux"),
        ("pyroute2 rtnl codecs via core.network._pyroute2",
         "from core.network._pyroute2 import rtnl_messages; rtnl_messages()"),
        ("core.network.rtnl + codecs", "from core.network.rtnl import Rtnl; Rtnl().close()"),
        ("import core.engine", "import core.engine"),
    ]
    base = None
    for label, code in imports:
        wall, cpu = median_ms(py(code), n)
        base = cpu if base is None else base
        row(label, wall, cpu, "" if cpu is base else f"   (+{cpu - base:.1f} CPU)")
    with tempfile.TemporaryDirectory(prefix="nsbench-") as tmp:
        print("\n2. one attach: veth into a netns, on a bridge + lo/eth0 up + address + route")
        print("   (the netns is pinned beforehand: netns.create costs ~1 ms in process)")
        for r in attach_rows(n, tmp):
            row(*r)
        print("\n3. teardown (in process)")
        for r in teardown_rows(n, tmp):
            row(*r)
        print("\n4. Engine, fresh process, default bridge already up")
        for r in engine_rows(n, tmp):
            row(*r)
        if args.run:
            print("\n5. run --rm (the whole client; the shim's teardown included)")
            for r in run_rows(n, tmp, args.image):
                row(*r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
