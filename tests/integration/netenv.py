"""Networking test set-ups on the real kernel (the ``host`` and ``env`` fixtures in
tests/integration/conftest.py): ``Host``, a state root driven through the CLI with the
busybox rootfs; ``Env``, an engine whose network namespaces stand in for containers.
Both check at the end that nothing of theirs is left."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time

from core.engine import Engine

NUTSHELL = [sys.executable, "-m", "workbench"]
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
SERVE = "mkdir -p /tmp/www && echo \"$0\" > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"
# busybox wget: no -T here (the Debian 1.35 static build crashes with it); retry instead
FETCH = "for i in $(seq 100); do wget -q -O - \"$0\" 2>/dev/null && exit 0; sleep 0.1; done; exit 1"


def free_port(preferred: int | None = None) -> int:
    cands = ([preferred] if preferred else []) + [random.randint(20000, 40000)
                                                    for _ in range(100)]
    for port in cands:
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def net_links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def netname() -> str:
    return f"nstest-{os.urandom(3).hex()}"


def network_links(engine) -> set[str]:
    """The kernel links of every network ``engine`` knows: bridges and host-side veths."""
    links = set()
    for net in engine._netops.store.all():
        links.add(net["Bridge"])
        links.update(ep["HostVeth"] for ep in net["Endpoints"].values())
    return links


class Host:
    def __init__(self, tmp_path, rootfs):
        self.root = str(tmp_path / "root")
        self.rootfs = rootfs
        self.env = dict(os.environ, NUTSHELL_RUNTIME_DIR=str(tmp_path / "run"))
        self.env.pop("NUTSHELL_ROOT", None)
        from core.engine import Engine

        os.environ["NUTSHELL_RUNTIME_DIR"] = self.env["NUTSHELL_RUNTIME_DIR"]
        self.engine = Engine(self.root)
        self.names: set[str] = set()

    def ns(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        p = subprocess.run(NUTSHELL + ["--root", self.root, *args], capture_output=True,
                           text=True, env=self.env, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"nutshell {' '.join(args)} -> {p.returncode}\n{p.stderr}")
        return p

    def run(self, *args: str, **kw) -> subprocess.CompletedProcess:
        """``run OPTIONS... --rootfs ROOTFS CMD...``: options before ``--``, command after."""
        i = args.index("--")
        return self.ns("run", *args[:i], "--rootfs", self.rootfs, *args[i + 1:], **kw)

    def inspect(self, ref: str) -> dict:
        return json.loads(self.ns("inspect", ref).stdout)[0]

    def remember(self) -> None:
        self.names |= network_links(self.engine)

    def close(self) -> None:
        self.remember()
        ids = self.ns("ps", "-aq", check=False).stdout.split()
        if ids:
            self.ns("rm", "-f", *ids, check=False)
        table = self.engine._netops.store.nft_table
        records = self.engine._netops.store.containers()
        self.engine.network_reset()
        links = set(os.listdir("/sys/class/net"))
        assert not records, f"sandboxes left after rm -f: {[r['Id'][:12] for r in records]}"
        assert not (self.names & links), f"leaked links: {self.names & links}"
        netns_dir = self.engine.paths.netns
        assert not (os.path.isdir(netns_dir) and os.listdir(netns_dir))
        assert subprocess.run(["nft", "list", "table", "ip", table],
                              capture_output=True).returncode != 0


class Env:
    """An engine on a private root plus what its tests created, for the leak check."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.engine = Engine(str(tmp_path / "root"))
        self.cids: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.kernel_names: set[str] = set()

    def sandbox(self, name: str, **kw) -> tuple[str, dict]:
        cid = os.urandom(32).hex()
        self.cids.append(cid)
        d = self.tmp / cid[:12]
        d.mkdir()
        kw.setdefault("hosts_path", str(d / "hosts"))
        kw.setdefault("resolv_path", str(d / "resolv.conf"))
        s = self.engine.setup_container_network(cid, name=name, **kw)
        self.remember()
        return cid, s

    def remember(self) -> None:
        self.kernel_names |= network_links(self.engine)

    def run_in(self, settings: dict, *argv: str, hosts: str | None = None,
               timeout: float = 10) -> subprocess.CompletedProcess:
        cmd = ["nsenter", f"--net={settings['SandboxKey']}", *argv]
        if hosts:
            script = 'mount --bind "$0" /etc/hosts && exec "$@"'
            cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, hosts, *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def serve(self, settings: dict, text: str, port: int = 80) -> None:
        www = self.tmp / f"www-{len(self.procs)}"
        www.mkdir()
        (www / "index.html").write_text(text)
        p = subprocess.Popen(["nsenter", f"--net={settings['SandboxKey']}", BUSYBOX, "httpd",
                              "-f", "-p", str(port), "-h", str(www)])
        self.procs.append(p)
        want = f":{port:04X} "
        for _ in range(200):  # until it listens (nsenter execs httpd: same pid)
            rows = []
            for table in ("tcp", "tcp6"):  # httpd listens on [::] when it can
                with open(f"/proc/{p.pid}/net/{table}") as f:
                    rows += f.read().splitlines()[1:]
            if any(r.split()[1].endswith(want.strip()) and r.split()[3] == "0A" for r in rows):
                return
            time.sleep(0.02)
        raise AssertionError(f"httpd did not start in {settings['IPAddress']}")

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        self.remember()
        paths = self.engine.paths
        table = self.engine._netops.store.nft_table
        self.engine.network_reset()
        leaked = self.kernel_names & net_links()
        assert not leaked, f"leaked links: {leaked}"
        left = os.listdir(paths.netns) if os.path.isdir(paths.netns) else []
        assert not left, f"leaked netns files: {left}"
        published = [c for c in self.cids
                     if os.path.lexists(f"/run/netns/nutshell-{c[:12]}")]
        assert not published, f"leaked /run/netns entries: {published}"
        mounts = open("/proc/self/mountinfo").read()
        assert paths.netns not in mounts
        assert subprocess.run(["nft", "list", "table", "ip", table],
                              capture_output=True).returncode != 0, "leaked nft table"
        nets_dir = paths.networks
        if os.path.isdir(nets_dir):
            assert not [f for f in os.listdir(nets_dir) if f.endswith(".json")]
            assert not os.listdir(os.path.join(nets_dir, "containers"))
