"""The fake Engine of the app's Pilot and snapshot tests: fixed images (layer trees, file
contents), networks and containers (logs, stats, the Learn pane's views, an attach client that
echoes), no kernel, no clock. Every call is recorded (``engine.called(name)``,
``engine.has_call(name, *args, **kwargs)``); ``engine.fail[name] = exc`` makes a method raise.
tests/unit/test_fakes.py checks every public method against core.engine.Engine's signature.

Times are fixed: FIXED_NOW for the panes' clock ("5 minutes ago"), T0 for stats samples."""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field

from core.errors import Conflict, NotFound
from core.events import Progress
from core.paths import Paths
from core.runtime import introspect as I
from core.runtime.logs import LogEntry
from core.store import layertree as lt
from core.store.image import Image, LayerRecord

FIXED_NOW = 1_790_000_000.0          # 2026-09-21T..Z
CREATED_BUSYBOX = "2026-09-21T12:00:00Z"
CREATED_APP = "2026-09-20T08:30:00Z"
T0 = 1_800_000_000.0                # the time of the first stats sample
BUSYBOX = "localhost/busybox:latest"


def _iso(offset: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(FIXED_NOW - offset))


def fe(path, kind="file", size=0, mode=0o644, **kw) -> lt.FileEntry:
    if kind == "dir" and mode == 0o644:
        mode = 0o755
    return lt.FileEntry(path, kind, size, mode, **kw)


def busybox_layers() -> list[list[lt.FileEntry]]:
    return [[fe("bin", "dir"), fe("bin/busybox", size=1_100_000), fe("bin/sh", "symlink", target="busybox"),
             fe("etc", "dir"), fe("etc/passwd", size=120), fe("etc/group", size=80)]]


def app_layers() -> list[list[lt.FileEntry]]:
    base = busybox_layers()[0] + [fe("usr", "dir"), fe("usr/lib", "dir"),
                                  fe("usr/lib/big.so", size=400_000), fe("usr/lib/old.so", size=50_000)]
    l1 = [fe("app", "dir"), fe("app/server", size=2_000_000, mode=0o755),
          fe("app/config.json", size=900), fe("etc", "dir"), fe("etc/passwd", size=150)]
    l2 = [fe("usr", "dir"), fe("usr/lib", "dir"), fe("usr/lib/old.so", "whiteout"),
          fe("app", "dir"), fe("app/server", size=2_100_000, mode=0o755), fe("tmp", "dir", mode=0o1777)]
    return [base, l1, l2]


FILES = {
    "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n",
    "app/config.json": b'{"listen": ":8080"}\n',
    "app/server": bytes(range(256)) * 4,
}


def make_image(ref_tags: list[str], n_layers: int, created: str, config_extra=None, ident="a") -> Image:
    diff_ids = [f"sha256:{ident * 63}{i}" for i in range(n_layers)]
    history = [{"created": created, "created_by": f"/bin/sh -c #(nop) ADD layer{i} /"} for i in range(n_layers)]
    history.insert(1, {"created": created, "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True})
    cfg = {"created": created, "architecture": "amd64", "os": "linux",
           "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], **(config_extra or {})},
           "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history}
    layers = [LayerRecord(i, f"sha256:{ident * 62}b{i}", "application/vnd.oci.image.layer.v1.tar+gzip",
                          1000 * (i + 1), d, d, size=700_000 * (i + 1), unpacked=True)
              for i, d in enumerate(diff_ids)]
    return Image(id=f"sha256:{ident * 64}", manifest_digest=f"sha256:{ident * 63}f", manifest={},
                 config=cfg, repo_tags=ref_tags, layers=layers)


class FakeWatcher:
    """Changes are pushed by the test: ``engine.watch_queue.put(({"images"}, set()))``."""

    def __init__(self, q: queue.Queue):
        self.q = q
        self._closed = False

    def wait(self, timeout=None):
        from core.watch import Changes

        try:
            item = self.q.get(timeout=timeout)
        except queue.Empty:
            return Changes()
        if item is None:
            return Changes()
        kinds, ids = item
        return Changes(set(kinds), set(ids))

    def close(self):
        self._closed = True
        self.q.put(None)

    def release(self):
        self.close()


def _cid(n: int) -> str:
    return (f"{n:02d}" * 32)[:64].replace("0", "a", 1)


# (id, name, state, image) of the containers the Networks tests use: the ids the networks'
# members have, and cache, a running container in no network
NETWORKED = [("c1" * 32, "web", "running", "docker.io/me/app:1.0"),
             ("c2" * 32, "db", "running", BUSYBOX),
             ("c3" * 32, "cache", "running", BUSYBOX)]


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


@dataclass
class Call:
    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)


class FakeEngine:
    """Images busybox, me/app (3 layers, ports, entrypoint) and one untagged; networks bridge
    and backend; containers web (running, with limits and a port), db (running) and old
    (exited). ``n_running`` sets how many run (web, db, then workers); ``containers`` replaces
    them with (id, name, state, image) rows (NETWORKED); ``root`` is what the status line
    shows."""

    def __init__(self, n_running: int = 2, root: str = "/var/lib/nutshell-test",
                 containers: list[tuple[str, str, str, str]] | None = None) -> None:
        self.paths = Paths(root=root, run="/run/nutshell-test", config="/nonexistent-config")
        self.calls: list[Call] = []
        self.fail: dict[str, Exception] = {}
        self.lock = threading.Lock()
        self.watch_queue: queue.Queue = queue.Queue()
        self._images = [
            make_image(["localhost/busybox:latest"], 1, CREATED_BUSYBOX, ident="b"),
            make_image(["docker.io/me/app:1.0", "docker.io/me/app:latest"], 3, CREATED_APP,
                       {"ExposedPorts": {"8080/tcp": {}}, "Entrypoint": ["/app/server"]}, ident="c"),
            make_image([], 1, _iso(86400 * 40), ident="d"),
        ]
        self._trees = {
            self._images[0].id: lt.analyze_entries(busybox_layers(), created_by=["ADD rootfs /"]),
            self._images[1].id: lt.analyze_entries(app_layers(), created_by=[
                "ADD rootfs /", "COPY server config.json /app/", "RUN rm /usr/lib/old.so && make"]),
            self._images[2].id: lt.analyze_entries(busybox_layers()),
        }
        for img in self._images:
            self._trees[img.id].image_id = img.id
        self._networks = {
            "bridge": {"Name": "bridge", "Id": "1" * 64, "Driver": "bridge", "Subnet": "10.90.0.0/16",
                       "Gateway": "10.90.0.1", "Bridge": "nsbr-1eb397f82d", "Internal": False,
                       "members": {"c1" * 32: ("web", "10.90.0.2", "nsv35c73887fd1"),
                                   "c2" * 32: ("db", "10.90.0.3", "nsv9a0b1c2d3e4")}},
            "backend": {"Name": "backend", "Id": "2" * 64, "Driver": "bridge", "Subnet": "10.91.0.0/24",
                        "Gateway": "10.91.0.1", "Bridge": "nsbr-22aa33bb44", "Internal": True,
                        "members": {"c2" * 32: ("db", "10.91.0.2", "nsv5f6e7d8c9b0")}},
        }
        if containers is None:
            names = ["web", "db"] + [f"worker{i}" for i in range(max(0, n_running - 2))]
            containers = [(_cid(i + 1), name, "running", BUSYBOX)
                          for i, name in enumerate(names[:max(n_running, 0)])]
            containers.append((_cid(90), "old", "exited", BUSYBOX))
        self.containers: dict[str, dict] = {}
        for i, (cid, name, state, image) in enumerate(containers):
            self._add(cid, name, state, i, image)
        self.stat_counts: dict[str, int] = {}
        self.attaches: list[FakeAttach] = []

    # -- bookkeeping
    def _call(self, name, *args, **kwargs):
        with self.lock:
            self.calls.append(Call(name, args, kwargs))
        exc = self.fail.get(name)
        if exc is not None:
            raise exc

    def called(self, name) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.name == name]

    def has_call(self, name, *args, **kwargs) -> bool:
        """Whether ``name`` was called with exactly these arguments."""
        return Call(name, args, kwargs) in self.called(name)

    # -- images
    def images(self, **kw):
        self._call("images")
        return list(self._images)

    def image(self, name):
        self._call("image", name)
        for img in self._images:
            if name in (img.id, img.short_id) or any(name in (t, t.split("/", 1)[-1]) or
                                                     t.endswith("/" + name) for t in img.repo_tags):
                return img
            from core.reference import parse

            if any(parse(t).familiar() == name for t in img.repo_tags):
                return img
        raise NotFound(f"no such image: {name}")

    def image_inspect(self, name):
        return self.image(name).inspect()

    def history(self, name):
        return self.image(name).history()

    def image_tree(self, name, progress=None):
        self._call("image_tree", name)
        return self._trees[self.image(name).id]

    def image_diff(self, a, b, progress=None):
        self._call("image_diff", a, b)
        ta, tb = self._trees[self.image(a).id], self._trees[self.image(b).id]
        out = []
        for p in sorted(set(ta.merged) | set(tb.merged)):
            ea, eb = ta.merged.get(p), tb.merged.get(p)
            if ea is None:
                out.append(lt.DiffEntry(p, "added", eb.kind, 0, eb.size))
            elif eb is None:
                out.append(lt.DiffEntry(p, "removed", ea.kind, ea.size, 0))
            elif (ea.kind, ea.size, ea.mode) != (eb.kind, eb.size, eb.mode):
                out.append(lt.DiffEntry(p, "modified", eb.kind, ea.size, eb.size, "content"))
        return out

    def image_file(self, name, path, layer=None, limit=256 * 1024):
        self._call("image_file", name, path, layer=layer)
        tree = self._trees[self.image(name).id]
        e = tree.merged.get(path) if layer is None else tree.layers[layer].entries.get(path)
        if e is None:
            raise NotFound(f"no such file in the image: /{path}")
        data = FILES.get(path, b"")
        return lt.FileContent(path, e.layer, e.kind, e.size, data[:limit], truncated=e.size > len(data),
                              binary=lt.is_binary(data), target=e.target)

    def tag(self, source, target):
        self._call("tag", source, target)
        img = self.image(source)
        from core.reference import parse

        img.repo_tags.append(str(parse(target)))
        return img

    def rmi(self, names, force=False, prune=True):
        self._call("rmi", names, force=force)
        for n in names:
            img = self.image(n)
            self._images.remove(img)
        return [{"Deleted": n} for n in names]

    #: what system_check finds until a repair: a layer with a missing file (repairable)
    #: and an image whose blob is gone (not)
    check_findings = [
        {"Kind": "layer", "Object": "sha256:" + "e" * 64, "Problem": "differs from its blob: bin/sh is missing",
         "Repaired": False, "Action": "--repair fixes this"},
        {"Kind": "image", "Object": "me/app:1.0", "Problem": "layer blob sha256:aaaa is missing",
         "Repaired": False, "Action": "pull or load me/app:1.0 again"},
    ]

    def system_check(self, repair=False, quick=False):
        self._call("system_check", repair=repair)
        found = [dict(f) for f in self.check_findings]
        if repair:
            for f in found:
                if f["Action"] == "--repair fixes this":
                    f["Repaired"], f["Action"] = True, "unpacked it again from sha256:aaaa"
            self.check_findings = [f for f in found if not f["Repaired"]]
        done = sum(1 for f in found if f["Repaired"])
        return {"Checked": {"Blobs": 9, "Images": len(self._images), "Layers": 5, "Containers": 2},
                "Findings": found, "Repaired": done, "Remaining": len(found) - done}

    def pull(self, ref, platform=None, progress=None, insecure=False):
        self._call("pull", ref, insecure=insecure)
        for layer in ("aaaaaaaaaaaa", "bbbbbbbbbbbb"):
            for done in (0, 500, 1000):
                if progress:
                    progress(Progress(layer, "Downloading", done, 1000))
            if progress:
                progress(Progress(layer, "Pull complete"))
        img = make_image([f"docker.io/library/{ref}" if "/" not in ref else ref], 1, CREATED_BUSYBOX,
                         ident="e")
        self._images.append(img)
        self._trees[img.id] = lt.analyze_entries(busybox_layers())
        return img

    def push(self, ref, dest=None, progress=None, insecure=False, chunk_size=None):
        self._call("push", ref, dest, insecure=insecure)
        if progress:
            progress(Progress("cccccccccccc", "Pushed"))
        return "sha256:" + "f" * 64

    def load(self, source, progress=None):
        self._call("load", source)
        if progress:
            progress(Progress("loaded", "Loading", 10, 10))
        img = make_image(["docker.io/library/loaded:latest"], 1, CREATED_BUSYBOX, ident="f")
        self._images.append(img)
        self._trees[img.id] = lt.analyze_entries(busybox_layers())
        return [img]

    # -- containers
    def _add(self, cid: str, name: str, state: str, i: int, image: str = BUSYBOX) -> None:
        self.containers[cid] = {
            "Id": cid, "ID": cid[:12], "Names": name, "Image": image,
            "ImageID": "sha256:" + "b" * 64,
            "Command": "httpd -f -p 80" if name == "web" else "sh",
            "Created": "2027-01-15T08:00:00.000000000Z", "State": state,
            "Status": "Up 5 minutes" if state == "running" else "Exited (0) 2 hours ago",
            "ExitCode": 0, "Pid": 4000 + i if state == "running" else 0,
            "StartedAt": "2027-01-15T08:00:00.000000000Z", "FinishedAt": "0001-01-01T00:00:00Z",
            "OOMKilled": False, "Labels": {}, "Networks": "bridge", "Ports": "",
            "AutoRemove": False,
        }

    def container(self, ref: str) -> str:
        for cid, c in self.containers.items():
            if ref in (cid, c["Names"]) or (len(ref) >= 3 and cid.startswith(ref)):
                return cid
        raise NotFound(f"No such container: {ref}")

    def ps(self, all: bool = False) -> list[dict]:
        self._call("ps", all=all)
        return [dict(c) for c in self.containers.values()
                if all or c["State"] in ("running", "paused")]

    def container_ports(self, ref: str) -> list[dict]:
        if self.containers[self.container(ref)]["Names"] == "web":
            return [{"HostIp": "0.0.0.0", "HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp"}]
        return []

    def container_inspect(self, ref: str) -> dict:
        cid = self.container(ref)
        self._call("container_inspect", cid)
        c = self.containers[cid]
        return {"Id": cid, "Name": "/" + c["Names"], "Created": c["Created"],
                "Path": c["Command"].split()[0], "Args": c["Command"].split()[1:],
                "State": {"Status": c["State"], "Running": c["State"] == "running",
                          "Pid": c["Pid"], "ExitCode": 0},
                "Config": {"Image": c["Image"], "Env": ["PATH=/usr/bin:/bin"], "Tty": True,
                           "Labels": {}},
                "HostConfig": {"Memory": 67108864, "NetworkMode": "bridge"},
                "GraphDriver": {"Name": "overlay", "Data": {"UpperDir": f"/r/{cid[:12]}/upper"}}}

    def create(self, options):
        self._call("create", options)
        cid = "9" * 64
        self._add(cid, options.name or "", "created", len(self.containers), options.image)
        return cid

    def _set(self, ref: str, state: str) -> str:
        cid = self.container(ref)
        self.containers[cid]["State"] = state
        self.containers[cid]["Status"] = "Up 1 second" if state == "running" else "Exited (137) 1 second ago"
        self.containers[cid]["Pid"] = 4321 if state == "running" else 0
        return cid

    def start(self, ref: str, attach: bool = False, rows=None, cols=None):
        self._call("start", ref, rows=rows, cols=cols)
        return self._set(ref, "running"), None

    def stop(self, ref: str, timeout=None, signal=None) -> str:
        self._call("stop", ref)
        return self._set(ref, "exited")

    def restart(self, ref: str, timeout=None) -> str:
        self._call("restart", ref)
        return self._set(ref, "running")

    def pause(self, ref: str) -> str:
        self._call("pause", ref)
        return self._set(ref, "paused")

    def unpause(self, ref: str) -> str:
        self._call("unpause", ref)
        return self._set(ref, "running")

    def kill(self, ref: str, signal="KILL") -> str:
        self._call("kill", ref, signal)
        cid = self.container(ref)
        if self.containers[cid]["State"] != "running":
            raise Conflict(f"cannot kill container: {ref}: container {cid} is not running")
        return self._set(ref, "exited")

    def rm(self, ref: str, force: bool = False, volumes: bool = False) -> str:
        self._call("rm", ref, force=force)
        cid = self.container(ref)
        if self.containers[cid]["State"] == "running" and not force:
            raise Conflict(f'cannot remove container "/{self.containers[cid]["Names"]}": container is '
                           "running: stop the container before removing or force remove")
        del self.containers[cid]
        return cid

    def commit(self, container: str, ref: str | None = None, **kw):
        self._call("commit", container, ref, **kw)
        return {"Id": "sha256:" + "c" * 64}

    def container_diff(self, ref: str):
        self._call("container_diff", ref)
        return [{"Kind": 0, "Path": "/etc"}, {"Kind": 0, "Path": "/etc/hostname"},
                {"Kind": 1, "Path": "/newdir"}, {"Kind": 2, "Path": "/home"}]

    # -- streams
    def logs(self, ref: str, follow: bool = False, tail=None, since=None, until=None, stop=None):
        cid = self.container(ref)
        self._call("logs", cid, follow=follow, tail=tail, since=since)
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
        self._call("exec", ref, list(cmd))
        raise Conflict(f"container {self.container(ref)} is not running")

    # -- stats
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

    # -- the Learn pane's views
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

    # -- networks
    def networks(self):
        self._call("networks")
        out = []
        for n in self._networks.values():
            out.append({"ID": n["Id"][:12], "Name": n["Name"], "Driver": n["Driver"], "Scope": "local",
                        "Subnet": n["Subnet"], "Gateway": n["Gateway"], "Internal": n["Internal"],
                        "Containers": len(n["members"]), "Bridge": n["Bridge"], "CreatedAt": CREATED_APP})
        out.sort(key=lambda n: (n["Name"] != "bridge", n["Name"]))
        for pseudo, driver in (("host", "host"), ("none", "null")):
            out.append({"ID": pseudo * 3, "Name": pseudo, "Driver": driver, "Scope": "local",
                        "Subnet": "", "Gateway": "", "Internal": False, "Containers": 0, "Bridge": "",
                        "CreatedAt": ""})
        return out

    def network_inspect(self, ref):
        self._call("network_inspect", ref)
        n = self._networks.get(ref)
        if n is None:
            raise NotFound(f"network {ref} not found")
        prefix = n["Subnet"].split("/")[1]
        containers = {}
        for i, (cid, (name, ip, veth)) in enumerate(sorted(n["members"].items())):
            containers[cid] = {"Name": name, "EndpointID": "e" * 64, "MacAddress": f"02:42:0a:5a:00:0{i + 2}",
                               "IPv4Address": f"{ip}/{prefix}", "IPv6Address": "", "Interface": "eth0"
                               if ref == "bridge" else "eth1", "HostVeth": veth, "Aliases": []}
        return {"Name": n["Name"], "Id": n["Id"], "Created": CREATED_APP, "Scope": "local",
                "Driver": n["Driver"], "EnableIPv6": False,
                "IPAM": {"Driver": "default", "Options": {},
                         "Config": [{"Subnet": n["Subnet"], "Gateway": n["Gateway"]}]},
                "Internal": n["Internal"], "Containers": containers,
                "Options": {"com.docker.network.bridge.name": n["Bridge"]}, "Labels": {}}

    def network_create(self, name, subnet=None, gateway=None, internal=False, labels=None,
                       driver="bridge", mtu=None):
        self._call("network_create", name, subnet=subnet, gateway=gateway, internal=internal)
        self._networks[name] = {"Name": name, "Id": "3" * 64, "Driver": "bridge",
                                "Subnet": subnet or "10.92.0.0/24", "Gateway": gateway or "10.92.0.1",
                                "Bridge": "nsbr-33cc44dd55", "Internal": internal, "members": {}}
        return {"Id": "3" * 64}

    def network_rm(self, ref):
        self._call("network_rm", ref)
        self._networks.pop(ref)
        return ref

    def network_prune(self):
        self._call("network_prune")
        gone = [n for n, v in self._networks.items() if n != "bridge" and not v["members"]]
        for n in gone:
            self._networks.pop(n)
        return gone

    def network_connect(self, network, container, aliases=None, ip=None):
        self._call("network_connect", network, container)
        name = self.containers[self.container(container)]["Names"]
        self._networks[network]["members"][container] = (name, "10.91.0.9", "nsv0000000000")
        return {}

    def network_disconnect(self, network, container, force=False):
        self._call("network_disconnect", network, container)
        self._networks[network]["members"].pop(container)

    # -- liveness
    def watcher(self, fallback=False):
        return FakeWatcher(self.watch_queue)


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
