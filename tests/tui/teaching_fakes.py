"""A fake Engine with fixed data for the Containers, Stats, Terminals and Learn pane tests
(unit and snapshot): no kernel, no clock, every call recorded in ``engine.calls``.

Also a tiny host app that mounts one pane standalone (``PaneApp``), and ``FakeAttach``: an
attach client that echoes what is typed, like a shell's line discipline would.
"""

from __future__ import annotations

import os
import time

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer

from core.errors import Conflict, NotFound
from core.paths import Paths
from core.runtime import introspect as I
from core.runtime.logs import LogEntry

T0 = 1_800_000_000.0  # a fixed "now" for every timestamp


def _cid(n: int) -> str:
    return (f"{n:02d}" * 32)[:64].replace("0", "a", 1)


class FakeAttach:
    """core.runtime.attach.AttachClient's surface over a pipe: writes come back as output
    (CR -> CRLF), so typing ``echo hi`` shows it; ``hello`` says tty + stdin."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        self.hello = {"tty": True, "stdin": True}
        self.closed = False
        self.resizes: list[tuple[int, int]] = []
        self.written = b""
        self._pending: list = []

    def fileno(self) -> int:
        return self._r

    def read(self):
        try:
            data = os.read(self._r, 65536)
        except BlockingIOError:
            raise
        if not data:
            return None
        return 1, data

    def write(self, data: bytes) -> None:
        self.written += data
        os.write(self._w, data.replace(b"\r", b"\r\n"))

    def resize(self, rows: int, cols: int) -> None:
        self.resizes.append((rows, cols))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self._r)
            os.close(self._w)


class FakeEngine:
    """Three containers: web (running, limits), db (running, no limits), old (exited)."""

    def __init__(self, n_running: int = 2) -> None:
        self.calls: list[tuple] = []
        self.containers: dict[str, dict] = {}
        names = ["web", "db"] + [f"worker{i}" for i in range(max(0, n_running - 2))]
        for i, name in enumerate(names[:max(n_running, 0)]):
            self._add(_cid(i + 1), name, "running", i)
        self._add(_cid(90), "old", "exited", 90)
        self.stat_counts: dict[str, int] = {}
        self.attaches: list[FakeAttach] = []
        # the status line shows no root for this fake (as the snapshots were made)
        self.paths = Paths(root="", run="/run/nutshell-test", config="/nonexistent-config")
        self.fail: dict[str, Exception] = {}

    def _add(self, cid: str, name: str, state: str, i: int) -> None:
        self.containers[cid] = {
            "Id": cid, "ID": cid[:12], "Names": name, "Image": "localhost/busybox:latest",
            "ImageID": "sha256:" + "b" * 64,
            "Command": "httpd -f -p 80" if name == "web" else "sh",
            "Created": "2027-01-15T08:00:00.000000000Z", "State": state,
            "Status": "Up 5 minutes" if state == "running" else "Exited (0) 2 hours ago",
            "ExitCode": 0, "Pid": 4000 + i if state == "running" else 0,
            "StartedAt": "2027-01-15T08:00:00.000000000Z", "FinishedAt": "0001-01-01T00:00:00Z",
            "OOMKilled": False, "Labels": {}, "Networks": "bridge", "Ports": "",
            "AutoRemove": False,
        }

    # ------------------------------------------------------------------ lookup
    def container(self, ref: str) -> str:
        for cid, c in self.containers.items():
            if ref in (cid, c["Names"]) or (len(ref) >= 3 and cid.startswith(ref)):
                return cid
        raise NotFound(f"No such container: {ref}")

    def _check(self, op: str) -> None:
        if op in self.fail:
            raise self.fail[op]

    def ps(self, all: bool = False) -> list[dict]:
        self.calls.append(("ps", all))
        return [dict(c) for c in self.containers.values()
                if all or c["State"] in ("running", "paused")]

    def container_ports(self, ref: str) -> list[dict]:
        if self.containers[self.container(ref)]["Names"] == "web":
            return [{"HostIp": "0.0.0.0", "HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp"}]
        return []

    def container_inspect(self, ref: str) -> dict:
        cid = self.container(ref)
        self.calls.append(("inspect", cid))
        c = self.containers[cid]
        return {"Id": cid, "Name": "/" + c["Names"], "Created": c["Created"],
                "Path": c["Command"].split()[0], "Args": c["Command"].split()[1:],
                "State": {"Status": c["State"], "Running": c["State"] == "running",
                          "Pid": c["Pid"], "ExitCode": 0},
                "Config": {"Image": c["Image"], "Env": ["PATH=/usr/bin:/bin"], "Tty": True,
                           "Labels": {}},
                "HostConfig": {"Memory": 67108864, "NetworkMode": "bridge"},
                "GraphDriver": {"Name": "overlay", "Data": {"UpperDir": f"/r/{cid[:12]}/upper"}}}

    # ------------------------------------------------------------------ lifecycle
    def _set(self, ref: str, state: str) -> str:
        cid = self.container(ref)
        self.containers[cid]["State"] = state
        self.containers[cid]["Status"] = "Up 1 second" if state == "running" else "Exited (137) 1 second ago"
        self.containers[cid]["Pid"] = 4321 if state == "running" else 0
        return cid

    def start(self, ref: str, attach: bool = False, rows=None, cols=None):
        self.calls.append(("start", ref))
        self._check("start")
        return self._set(ref, "running"), None

    def stop(self, ref: str, timeout=None, signal=None) -> str:
        self.calls.append(("stop", ref))
        self._check("stop")
        return self._set(ref, "exited")

    def restart(self, ref: str, timeout=None) -> str:
        self.calls.append(("restart", ref))
        return self._set(ref, "running")

    def pause(self, ref: str) -> str:
        self.calls.append(("pause", ref))
        self._check("pause")
        return self._set(ref, "paused")

    def unpause(self, ref: str) -> str:
        self.calls.append(("unpause", ref))
        return self._set(ref, "running")

    def kill(self, ref: str, signal="KILL") -> str:
        self.calls.append(("kill", ref, signal))
        cid = self.container(ref)
        if self.containers[cid]["State"] != "running":
            raise Conflict(f"cannot kill container: {ref}: container {cid} is not running")
        return self._set(ref, "exited")

    def rm(self, ref: str, force: bool = False, volumes: bool = False) -> str:
        self.calls.append(("rm", ref, force))
        cid = self.container(ref)
        if self.containers[cid]["State"] == "running" and not force:
            raise Conflict(f'cannot remove container "/{self.containers[cid]["Names"]}": container is '
                           "running: stop the container before removing or force remove")
        del self.containers[cid]
        return cid

    def commit(self, container: str, ref: str | None = None, **kw):
        self.calls.append(("commit", container, ref, kw))
        return {"Id": "sha256:" + "c" * 64}

    def container_diff(self, ref: str):
        self.calls.append(("diff", ref))
        return [{"Kind": 0, "Path": "/etc"}, {"Kind": 0, "Path": "/etc/hostname"},
                {"Kind": 1, "Path": "/newdir"}, {"Kind": 2, "Path": "/home"}]

    # ------------------------------------------------------------------ streams
    def logs(self, ref: str, follow: bool = False, tail=None, since=None, until=None, stop=None):
        cid = self.container(ref)
        self.calls.append(("logs", cid, follow, tail, since))
        lines = [f"line {i} from {self.containers[cid]['Names']}" for i in range(1, 31)]
        lines[4] = "ERROR something failed"
        lines[20] = "warning: an ERROR again"
        if tail is not None:
            lines = lines[-tail:] if tail else []
        for i, text in enumerate(lines):
            yield LogEntry("stderr" if "ERROR" in text else "stdout", (text + "\n").encode(),
                           f"2027-01-15T08:00:{i:02d}.000000000Z")
        while follow and not (stop and stop()):
            time.sleep(0.02)

    def attach_client(self, ref: str):
        cid = self.container(ref)
        if self.containers[cid]["State"] != "running":
            raise Conflict("You cannot attach to a stopped container, start it first")
        client = FakeAttach()
        self.attaches.append(client)
        return client

    attach = attach_client

    def exec(self, ref: str, cmd, **kw):
        self.calls.append(("exec", ref, list(cmd)))
        raise Conflict(f"container {self.container(ref)} is not running")

    # ------------------------------------------------------------------ stats
    def container_stats_sampler(self) -> FakeSampler:
        return FakeSampler(self)

    def container_stats(self, ref: str) -> dict:
        cid = self.container(ref)
        c = self.containers[cid]
        n = self.stat_counts.get(cid, 0)
        self.stat_counts[cid] = n + 1
        idx = list(self.containers).index(cid)
        busy = [5, 40, 15, 70, 25, 55, 10, 90][(n + idx) % 8]
        limited = c["Names"] == "web"
        return {
            "Id": cid, "Name": c["Names"], "State": c["State"], "Pid": c["Pid"],
            "cpu_usage_ns": sum([5, 40, 15, 70, 25, 55, 10, 90][(k + idx) % 8]
                                for k in range(n)) * 10_000_000,
            "timestamp": T0 + n,
            "memory_used": (8 + 2 * ((n + idx) % 5)) * 1024 * 1024,
            "memory_usage": (9 + 2 * ((n + idx) % 5)) * 1024 * 1024,
            "memory_limit": 64 * 1024 * 1024 if limited else None,
            "pids_current": 3 + idx, "pids_limit": 50 if limited else None,
            "io_read_bytes": 4096 * (n + 1), "io_write_bytes": 1000 * n,
            "oom_kills": 0, "cpus_limit": 0.5 if limited else None,
            "cpu_quota_us": 50000 if limited else None, "cpu_period_us": 100000,
            "cpu_throttled_periods": 0 if busy < 50 else 3,
            "Network": {"rx_bytes": 1500 * (n + 1), "tx_bytes": 700 * n, "Interfaces": {}},
        }

    # ------------------------------------------------------------------ teaching
    def _running(self, ref: str) -> tuple[str, dict]:
        cid = self.container(ref)
        c = self.containers[cid]
        if c["State"] != "running":
            raise Conflict(f"container {cid[:12]} is not running")
        return cid, c

    def container_namespaces(self, ref: str) -> I.NamespaceMatrix:
        cid, c = self._running(ref)
        pid = c["Pid"]
        rows = []
        for k, t in enumerate(I.NAMESPACE_TYPES):
            host = 4026531830 + k
            shared = t in ("time", "user")
            rows.append(I.NamespaceRow(t, host if shared else 4026532200 + k, host, shared,
                                       "host" if shared else "new", I.NAMESPACE_MEANING[t],
                                       f"/proc/{pid}/ns/{t}"))
        return I.NamespaceMatrix(cid, c["Names"], pid, "pid 1", 1, rows, [(0, 0, 4294967295)],
                                 [(0, 0, 4294967295)], [f"ls -l /proc/{pid}/ns", "ls -l /proc/1/ns"])

    def container_processes(self, ref: str) -> I.ProcessTable:
        cid, c = self._running(ref)
        pid = c["Pid"]
        rows = [I.ProcessRow(pid, 1, [pid, 1], 3999, 0, "root", "S", 1, 2_000_000, 0.25,
                             "httpd -f -p 80"),
                I.ProcessRow(pid + 7, 8, [pid + 7, 8], pid, 1, "root", "S", 1, 1_500_000, 0.0,
                             "sh")]
        return I.ProcessTable(cid, c["Names"], pid, rows, [f"grep NSpid /proc/{pid}/status"])

    def container_overlay(self, ref: str) -> I.OverlayView:
        cid = self.container(ref)
        c = self.containers[cid]
        base = "/var/lib/nutshell"
        layers = [
            I.OverlayLayer(1, f"{base}/layers/3333/diff", "layers/3333/diff", "sha256:" + "3" * 64,
                           "sha256:" + "6" * 64, "RUN /bin/sh -c echo hello > /greeting", "2027-01-01T00:00:00Z",
                           4096, 3, True),
            I.OverlayLayer(2, f"{base}/layers/1111/diff", "layers/1111/diff", "sha256:" + "1" * 64,
                           "sha256:" + "1" * 64, "ADD busybox.tar /", "2027-01-01T00:00:00Z",
                           2_140_160, 287, True),
        ]
        entries = [I.UpperEntry("/etc", "modified", "dir", 0),
                   I.UpperEntry("/etc/hosts", "mount-target", "file", 0),
                   I.UpperEntry("/home", "deleted", "whiteout", 0),
                   I.UpperEntry("/newdir", "added", "dir", 0),
                   I.UpperEntry("/newdir/notes.txt", "added", "file", 12)]
        running = c["State"] == "running"
        return I.OverlayView(cid, c["Names"], c["Image"], running,
                             "rw,lowerdir=layers/3333/diff:layers/1111/diff,upperdir=containers/x/upper"
                             if running else None, layers,
                             f"{base}/containers/{cid[:12]}/upper", f"{base}/containers/{cid[:12]}/work",
                             f"{base}/containers/{cid[:12]}/merged", entries, len(entries), 12, False,
                             ["ls -la upper"])

    def container_cgroup(self, ref: str) -> I.CgroupView:
        cid, c = self._running(ref)
        d = f"/sys/fs/cgroup/nutshell/{cid}"
        rows = [
            I.CgroupRow("memory", f"{d}/memory.max", "67108864", 67108864, f"{d}/memory.current",
                        "10485760", 10485760, "bytes", "page cache counts"),
            I.CgroupRow("cpu", f"{d}/cpu.max", "50000 100000", 0.5, f"{d}/cpu.stat",
                        "usage_usec 250000", 0.25, "cpus", "quota/period"),
            I.CgroupRow("pids", f"{d}/pids.max", "50", 50, f"{d}/pids.current", "3", 3, "count"),
            I.CgroupRow("oom", None, None, None, f"{d}/memory.events", "oom_kill 0", 0.0, "count",
                        "processes killed for memory"),
        ]
        return I.CgroupView(cid, c["Names"], "v2", f"nutshell/{cid}", {"unified": d}, rows,
                            {f"{d}/memory.max": "67108864"}, {"oom_kill": 0}, [f"cat {d}/memory.max"])

    def container_network(self, ref: str) -> I.NetworkView:
        cid, c = self._running(ref)
        link = I.NetLink("bridge", "eth0", 2, "nsv0123456789ab", 17, "nutshell0", "10.88.0.1",
                         "10.88.0.2", 16, "02:42:0a:58:00:02", "up", 1500, 700)
        return I.NetworkView(cid, c["Names"], "bridge", "/run/nutshell/netns/" + cid[:16],
                             "nutshell-" + cid[:12], 4026532178, 4026531833, [link],
                             [I.Route("default", "10.88.0.1", "eth0"), I.Route("10.88.0.0/16", "", "eth0")],
                             ["eth0", "lo"], [{"HostIp": "0.0.0.0", "HostPort": 8080,
                                               "ContainerPort": 80, "Protocol": "tcp"}],
                             ["ip netns exec nutshell-x ip addr"])

    def container_security(self, ref: str) -> I.SecurityView:
        from core.runtime import seccomp
        from core.runtime.caps import DOCKER_DEFAULT, mask
        from core.runtime.spec import MASKED_PATHS, READONLY_PATHS

        cid, c = self._running(ref)
        pid = c["Pid"]
        summary = seccomp.describe(seccomp.default_profile(), list(DOCKER_DEFAULT))
        return I.SecurityView(cid, c["Names"], pid, False, "Docker's default", "2", 1, False,
                              f"{mask(DOCKER_DEFAULT):016x}", sorted(DOCKER_DEFAULT), 14, 41,
                              summary, list(MASKED_PATHS), list(READONLY_PATHS),
                              [f"grep -E 'Cap|NoNewPrivs|Seccomp' /proc/{pid}/status"])


class PaneApp(App):
    """One pane, standalone, with a Footer; records the messages panes post to the app."""

    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False)]
    CSS = "Screen { layout: vertical; }"

    def __init__(self, pane_factory, **kw) -> None:
        super().__init__(**kw)
        self.pane_factory = pane_factory
        self.commands: list = []
        self.selected: list = []
        self.terminals: list = []

    def compose(self) -> ComposeResult:
        self.pane = self.pane_factory()
        yield self.pane
        yield Footer()

    def on_mount(self) -> None:
        # what the workbench does when a pane's tab is shown
        self.call_after_refresh(self._focus_pane)

    def _focus_pane(self) -> None:
        focus_default = getattr(self.pane, "focus_default", None)
        if callable(focus_default):
            focus_default()
            return
        for widget in self.pane.query("*"):
            if widget.focusable and widget.display and widget.visible:
                widget.focus()
                return

    def on_command_run(self, message) -> None:
        self.commands.append((message.command, message.ok, message.error))

    def on_container_selected(self, message) -> None:
        self.selected.append(message.container_id)

    def on_open_terminal(self, message) -> None:
        self.terminals.append((message.kind, message.target, message.argv))
        handler = getattr(self, "route_terminal", None)
        if handler is not None:
            handler(message)


def sync(fn):
    """Run an ``async def test_...`` with asyncio.run (no pytest-asyncio here)."""
    import asyncio
    import functools
    import inspect

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    wrapper.__signature__ = inspect.signature(fn)
    return wrapper


class FakeSampler:
    """The engine's batch sampler (core.runtime.introspect.StatsSampler) over the fake's
    container_stats: None for a container that stopped or vanished."""

    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine

    def forget(self, keep: set[str] | None = None) -> None:
        pass

    def sample(self, ids: list[str]) -> dict[str, dict | None]:
        out: dict[str, dict | None] = {}
        for cid in ids:
            try:
                out[cid] = self.engine.container_stats(cid)
            except Exception:  # noqa: BLE001 - stopped or gone, as the real sampler says
                out[cid] = None
        return out
