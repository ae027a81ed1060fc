"""Network state on disk, and the names of the kernel objects it owns.

Files (all JSON, written atomically):

    $ROOT/networks/<name>.json           one network: subnet, gateway, bridge, options,
                                         and its Endpoints {container id: endpoint} --
                                         the endpoints *are* the IP allocations
    $ROOT/networks/containers/<id>.json  one container's network sandbox: mode, netns,
                                         networks joined, aliases, ports, dns, hosts file
    $ROOT/networks/.lock                 every read-modify-write of the above holds it

Kernel object names are derived from ids, so a crash that loses a record still leaves
enough to find (and remove) what it created:

    bridge   nutshell0 for the default network of the default root, else nsbr-<hash>
    veth     nsv<hash of container id + network id>   (host end; eth0, eth1... inside)
    netns    <runtime dir>/netns/<id[:16]> and /run/netns/nutshell-<id[:12]>
    nft      table ip nutshell (default root) or nutshell_<hash of root>;
             rules commented "n:<network id[:12]>" or "c:<container id[:12]>"
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator

from core.errors import NotFound, UsageError

DEFAULT_ROOT = "/var/lib/nutshell"
DEFAULT_NETWORK = "bridge"
RESERVED = {"none", "host", "default"}
NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}\Z"


def now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def _h(*parts: str) -> str:
    import hashlib

    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


# The same contracts as core.fsutil's locked() and atomic_write_json(sync=False), written
# out here so that the shim's teardown path does not import fsutil's tempfile/shutil.
@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when the process dies, even by kill -9
        yield
    finally:
        os.close(fd)


def _write_json(path: str, obj) -> None:
    """Readers see the old or the new file, never half of one (temp name + rename)."""
    data = (json.dumps(obj, indent=1) + "\n").encode()
    tmp = os.path.join(os.path.dirname(path), f".tmp-{os.getpid()}-{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_json(path: str) -> dict | None:
    """A record, or None when there is none."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return None


def _read_all(directory: str) -> list[dict]:
    """Every ``*.json`` record of ``directory``, by file name."""
    out: list[dict] = []
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return out
    for fn in names:
        if fn.endswith(".json") and not fn.startswith("."):
            rec = _read_json(os.path.join(directory, fn))
            if rec is not None:
                out.append(rec)
    return out


class NetworkStore:
    def __init__(self, paths):
        self.paths = paths
        self.dir = paths.networks
        self.cdir = os.path.join(paths.networks, "containers")

    def _ensure_dirs(self) -> None:
        """networks/ and networks/containers/, the owner's only like the whole root."""
        if not os.path.isdir(self.cdir):
            from ..paths import ensure_root, private_dir

            ensure_root(self.paths)
            private_dir(self.dir)
            private_dir(self.cdir)

    # --- locking ------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self._ensure_dirs()
        with _locked(os.path.join(self.dir, ".lock")):
            yield

    @staticmethod
    @contextlib.contextmanager
    def host_lock() -> Iterator[None]:
        """Held while choosing a subnet and creating its bridge: stores with different
        roots share the host's address space."""
        base = "/run/lock" if os.path.isdir("/run/lock") and os.access("/run/lock", os.W_OK) \
            else os.environ.get("XDG_RUNTIME_DIR", "/tmp")
        with _locked(os.path.join(base, "nutshell-subnets.lock")):
            yield

    # --- networks -----------------------------------------------------------------------
    def path(self, name: str) -> str:
        return os.path.join(self.dir, f"{name}.json")

    def load(self, name: str) -> dict | None:
        return _read_json(self.path(name))

    def save(self, net: dict) -> None:
        self._ensure_dirs()
        _write_json(self.path(net["Name"]), net)

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(name))

    def all(self) -> list[dict]:
        return _read_all(self.dir)

    def find(self, ref: str) -> dict:
        """A network by name, full id or unique id prefix."""
        if not ref:
            raise UsageError("network name or ID is empty")
        if "/" not in ref and not ref.startswith("."):
            net = self.load(ref)
            if net is not None:
                return net
        matches = [n for n in self.all() if n["Id"].startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UsageError(f"network ID prefix {ref!r} is ambiguous")
        raise NotFound(f"network {ref} not found")

    # --- container sandboxes ------------------------------------------------------------
    def cpath(self, cid: str) -> str:
        return os.path.join(self.cdir, f"{cid}.json")

    def container(self, cid: str) -> dict | None:
        return _read_json(self.cpath(cid))

    def save_container(self, rec: dict) -> None:
        self._ensure_dirs()
        _write_json(self.cpath(rec["Id"]), rec)

    def remove_container(self, cid: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.cpath(cid))

    def containers(self) -> list[dict]:
        return _read_all(self.cdir)

    def find_container(self, ref: str) -> dict:
        """A container sandbox by full id, unique id prefix or name."""
        recs = self.containers()
        for r in recs:
            if r["Id"] == ref or r.get("Name") == ref or r.get("Name") == ref.lstrip("/"):
                return r
        matches = [r for r in recs if r["Id"].startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise NotFound(f"no such container: {ref}")

    # --- names of kernel objects ----------------------------------------------------------
    @property
    def is_default_root(self) -> bool:
        return os.path.abspath(self.paths.root) == DEFAULT_ROOT

    def bridge_name(self, name: str, net_id: str) -> str:
        if name == DEFAULT_NETWORK and self.is_default_root:
            return "nutshell0"
        return "nsbr-" + _h(self.paths.root, net_id)[:10]

    @property
    def nft_table(self) -> str:
        if self.is_default_root:
            return "nutshell"
        return "nutshell_" + _h(self.paths.root)[:10]

    @staticmethod
    def veth_name(cid: str, net_id: str) -> str:
        return "nsv" + _h(cid, net_id)[:12]

    def netns_path(self, cid: str) -> str:
        return os.path.join(self.paths.netns, cid[:16])

    @staticmethod
    def netns_id(cid: str) -> str:
        return cid[:12]


def validate_name(name: str) -> None:
    import re

    if not re.match(NAME_PATTERN, name or ""):
        raise UsageError(f"invalid network name {name!r}",
                         hint="use letters, digits, '_', '.', '-'; start with a letter or digit")
    if name in RESERVED:
        raise UsageError(f"network name {name!r} is reserved")


def new_id() -> str:
    return os.urandom(32).hex()
