"""A fake Engine with fixed data for the app's unit and snapshot tests (Images, Layers,
Networks panes and the app frame). Records every call; ``fail[name] = exc`` makes a method
raise. Times are fixed (see FIXED_NOW) so "5 minutes ago" is deterministic."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

from core.errors import NotFound
from core.events import Progress
from core.paths import Paths
from core.store import layertree as lt
from core.store.image import Image, LayerRecord

FIXED_NOW = 1_790_000_000.0          # 2026-09-21T..Z
CREATED_BUSYBOX = "2026-09-21T12:00:00Z"
CREATED_APP = "2026-09-20T08:30:00Z"


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


@dataclass
class Call:
    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)


class FakeEngine:
    def __init__(self, root: str = "/var/lib/nutshell-test"):
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
        self.containers = [
            {"Id": "c1" * 32, "ID": ("c1" * 32)[:12], "Names": "web", "State": "running",
             "Image": "docker.io/me/app:1.0"},
            {"Id": "c2" * 32, "ID": ("c2" * 32)[:12], "Names": "db", "State": "running",
             "Image": "localhost/busybox:latest"},
            {"Id": "c3" * 32, "ID": ("c3" * 32)[:12], "Names": "cache", "State": "running",
             "Image": "localhost/busybox:latest"},
        ]

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
    def create(self, options):
        self._call("create", options)
        return "9" * 64

    def start(self, ref, attach=False, rows=None, cols=None):
        self._call("start", ref, rows=rows, cols=cols)
        return ref, None

    def ps(self, all=False):
        self._call("ps")
        return [dict(c) for c in self.containers]

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
        self._networks[network]["members"][container] = ("cache", "10.91.0.9", "nsv0000000000")
        return {}

    def network_disconnect(self, network, container, force=False):
        self._call("network_disconnect", network, container)
        self._networks[network]["members"].pop(container)

    # -- liveness
    def watcher(self, fallback=False):
        return FakeWatcher(self.watch_queue)
