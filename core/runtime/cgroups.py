"""Control groups for containers: one API over cgroup v1, v2 and hybrid hosts.

A container gets one cgroup, named like ``nutshell/<id>``. Where that name lives depends
on the host:

* **v1** (and **hybrid**, i.e. v1 controllers plus an empty v2 mount at ``unified/``):
  one directory per controller hierarchy we use, e.g. ``/sys/fs/cgroup/memory/nutshell/<id>``
  and ``/sys/fs/cgroup/pids/nutshell/<id>``; the process joins each of them. On a hybrid
  host we also make and join ``unified/nutshell/<id>`` (best effort): it gives us
  ``cgroup.kill`` and lets systemd-style tools see the container.
* **v2**: one directory, ``/sys/fs/cgroup/nutshell/<id>``, after every ancestor has
  delegated the controllers to it through ``cgroup.subtree_control``.

Like Docker (``/docker/<id>``), containers live under the *root* of each hierarchy, not
under the cgroup of the process that creates them. On a v2 host that refuses us the root
(a delegated subtree), we fall back to a subtree of our own cgroup.

Everything goes through ordinary file reads and writes; the cgroup filesystem root is
:data:`CGROUP_ROOT` (or the ``root`` argument), so the unit tests run the same code on a
fake tree. The three primitives that change the tree (:func:`_mkdir`, :func:`_rmdir`,
:func:`_write`) and :func:`_kill` are module functions for the same reason.

Limits follow Docker's units and meanings: memory in bytes, ``memory_swap`` is memory
*plus* swap (``-1`` = unlimited swap; unset = as much swap as memory), ``cpus`` becomes a
CFS quota over a 100 ms period, ``pids_limit`` <= 0 means no limit.
"""

from __future__ import annotations

import _signal  # not signal.py: its enums cost ~1 ms of every `run`
import errno
import os
import time

from core.errors import RuntimeFailure, UsageError
from core.records import field, fields, record

from .cgmove import CGROUP_ROOT, PROC_SELF_CGROUP  # one definition (cgmove.py loads only os)

TYPE_CHECKING = False   # typing is not imported at run time: ~5 ms of every `run`
if TYPE_CHECKING:
    from typing import Any

#: v1 controller hierarchies a container joins (each one that is mounted).
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer", "devices")
#: named v1 hierarchy systemd uses for process tracking: key in ``paths`` -> directory name.
V1_NAMED = {"name=systemd": "systemd"}
#: v2 controllers we delegate to containers when the host offers them.
V2_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids", "hugetlb")
#: v2 controllers that only work in "domain" cgroups (not in threaded subtrees).
V2_DOMAIN_ONLY = frozenset({"memory", "io", "hugetlb", "rdma", "misc"})

CPU_PERIOD_US = 100_000
CPU_MIN_QUOTA_US = 1_000  # the kernel refuses a quota below 1 ms
UNLIMITED = -1
#: v1 reports "no limit" as a page-rounded LONG_MAX; anything this large is "unlimited".
_V1_UNLIMITED_THRESHOLD = 1 << 62

#: Docker's device cgroup on v1: deny everything, then allow what runc always allows
#: (libcontainer/specconv AllowedDevices: mknod of any char/block device, null, zero,
#: full, random, urandom, tty, ptmx, /dev/pts/*, /dev/net/tun) plus /dev/console,
#: which Docker's default spec allows. Rules are written in this order.
DEFAULT_DEVICE_RULES = (
    "c *:* m",  # mknod any char device (opening it is still denied)
    "b *:* m",  # mknod any block device
    "c 1:3 rwm",  # /dev/null
    "c 1:5 rwm",  # /dev/zero
    "c 1:7 rwm",  # /dev/full
    "c 1:8 rwm",  # /dev/random
    "c 1:9 rwm",  # /dev/urandom
    "c 5:0 rwm",  # /dev/tty
    "c 5:1 rwm",  # /dev/console
    "c 5:2 rwm",  # /dev/ptmx
    "c 136:* rwm",  # /dev/pts/*
    "c 10:200 rwm",  # /dev/net/tun
)

# How long to wait for the kernel: freezing, killing, and rmdir of a busy cgroup.
SETTLE_TIMEOUT = 5.0
RMDIR_TIMEOUT = 2.0


# --------------------------------------------------------------------------- primitives
# The only functions that change the cgroup tree; unit tests replace them with a fake
# kernel that keeps the control files consistent.


def _mkdir(path: str) -> None:
    os.mkdir(path, 0o755)


def _rmdir(path: str) -> None:
    os.rmdir(path)


def _write(path: str, data: str) -> None:
    """One write(2) of ``data``, like ``echo data > path`` (no O_CREAT: a missing control
    file means the controller is not there, and must stay an error)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


def _kill(pid: int, sig: int) -> None:
    os.kill(pid, sig)


# ------------------------------------------------------------------------------ reading


def _read(path: str) -> str | None:
    """The file's text, or None when it does not exist (controller absent, cgroup gone)."""
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError, ProcessLookupError):
        return None


def _read_int(path: str, read=_read) -> int | None:
    text = read(path)
    if text is None:
        return None
    text = text.strip()
    if text in ("", "max"):
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _read_keyed(path: str, read=_read) -> dict[str, int]:
    """Parse ``key value`` lines (memory.stat, cpu.stat, memory.events, oom_control...)."""
    out: dict[str, int] = {}
    for line in (read(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def _read_keys(path: str, keys: tuple[str, ...], read=_read) -> dict[str, int]:
    """The values of ``keys`` only, from a ``key value`` file: memory.stat has ~40 lines of
    which the samplers need one (splitting them all was a third of a sample's CPU)."""
    text = read(path)
    out: dict[str, int] = {}
    if not text:
        return out
    for key in keys:
        at = 0
        while True:
            i = text.find(key + " ", at)
            if i < 0:
                break
            if i == 0 or text[i - 1] == "\n":     # a whole key, at a line's start
                end = text.find("\n", i)
                try:
                    out[key] = int(text[i + len(key) + 1:end if end >= 0 else None])
                except ValueError:
                    pass
                break
            at = i + 1
    return out


def _read_pids(path: str) -> list[int]:
    return [int(x) for x in (_read(path) or "").split() if x.isdigit()]


def _limit_or_none(value: int | None) -> int | None:
    """v1 writes "unlimited" as a huge number, v2 as "max" (already None here)."""
    if value is None or value < 0 or value >= _V1_UNLIMITED_THRESHOLD:
        return None
    return value


# ------------------------------------------------------------------------------ detect


def detect(root: str | None = None) -> str:
    """Which cgroup layout the host has: ``"v2"``, ``"hybrid"`` or ``"v1"``.

    v2: the root itself is a cgroup2 mount (it has ``cgroup.controllers``).
    hybrid: v1 controller hierarchies plus a cgroup2 mount at ``unified/``.
    v1: controller hierarchies only.
    """
    root = root or CGROUP_ROOT
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return "v2"
    has_v1 = any(_v1_mount(root, c) for c in V1_CONTROLLERS)
    if not has_v1:
        raise RuntimeFailure(
            f"no cgroup filesystem found at {root}",
            hint="mount cgroup2 (mount -t cgroup2 none /sys/fs/cgroup) or the v1 controllers",
        )
    if os.path.exists(os.path.join(root, "unified", "cgroup.controllers")):
        return "hybrid"
    return "v1"


def _v1_mount(root: str, dirname: str) -> str | None:
    """The mounted hierarchy directory for a v1 controller (or named hierarchy), if any.

    Co-mounted controllers (``cpu,cpuacct`` with ``cpu`` and ``cpuacct`` symlinks) resolve
    to the same directory, which :meth:`Cgroup._hierarchies` de-duplicates.
    """
    path = os.path.join(root, dirname)
    if os.path.exists(os.path.join(path, "cgroup.procs")):
        return path
    return None


def own_cgroup(hierarchy: str = "") -> str | None:
    """Our own cgroup path in a hierarchy, from /proc/self/cgroup.

    ``hierarchy`` is a v1 controller ("memory"), a named hierarchy ("name=systemd") or ""
    for the v2 hierarchy.
    """
    for line in (_read(PROC_SELF_CGROUP) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if hierarchy == "" and parts[0] == "0" and controllers == "":
            return path
        if hierarchy and hierarchy in controllers.split(","):
            return path
    return None


def _check_name(name: str) -> list[str]:
    parts = name.strip("/").split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise UsageError(f"invalid cgroup name {name!r}: use a relative path like nutshell/<id>")
    return parts


# ------------------------------------------------------------------------------- stats


@record
class CgroupStats:
    """One sample of a container's resource use. ``None`` means unlimited or unknown.

    ``memory_usage`` is the kernel's raw usage, page cache included; ``memory_cache`` is
    the inactive file cache Docker subtracts (``total_inactive_file`` on v1,
    ``inactive_file`` on v2), so :attr:`memory_used` matches ``docker stats``.
    """

    cpu_usage_ns: int | None = None
    cpu_user_ns: int | None = None     # the user and kernel (system) parts of cpu_usage_ns
    cpu_system_ns: int | None = None
    memory_usage: int | None = None
    memory_limit: int | None = None
    memory_cache: int | None = None
    pids_current: int | None = None
    pids_limit: int | None = None
    io_read_bytes: int | None = None
    io_write_bytes: int | None = None
    oom_kills: int | None = None
    cpu_quota_us: int | None = None
    cpu_period_us: int | None = None
    cpu_throttled_periods: int | None = None
    timestamp: float = field(default_factory=time.time)

    @property
    def memory_used(self) -> int | None:
        if self.memory_usage is None:
            return None
        cache = self.memory_cache or 0
        return self.memory_usage - cache if cache < self.memory_usage else self.memory_usage

    @property
    def cpus_limit(self) -> float | None:
        """The CPU quota in CPUs (0.5 = half a CPU), None when unlimited."""
        if self.cpu_quota_us is None or not self.cpu_period_us:
            return None
        return self.cpu_quota_us / self.cpu_period_us

    def to_dict(self) -> dict:
        d = {name: getattr(self, name) for name in _STATS_FIELDS}     # (asdict deep-copies)
        d["memory_used"] = self.memory_used
        d["cpus_limit"] = self.cpus_limit
        return d


_STATS_FIELDS = fields(CgroupStats)


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK") or 100
    except (ValueError, OSError):
        return 100


# ------------------------------------------------------------------------------ Cgroup


class Cgroup:
    """A container's cgroup on this host (v1, v2 or hybrid). Build it with :meth:`create`
    or :meth:`open`; the constructor only records where things are."""

    def __init__(self, name: str, version: str, root: str, dirs: dict[str, str]):
        self.name = name
        self.version = version  # "v1" | "v2" | "hybrid"
        self.root = root
        # key -> directory. v1/hybrid keys: controller names, "name=systemd", "unified".
        # v2: the single key "unified".
        self._dirs = dict(dirs)
        self.warnings: list[str] = []
        self._held: dict[str, Any] | None = None     # path -> open file (keep_files_open)
        self._files: dict[tuple[str, str], str | None] = {}    # _file's answers

    def keep_files_open(self) -> Cgroup:
        """Keep the files :meth:`stats` reads open and re-read them with pread: a sampler
        that asks every second saves an open, a close and a text wrapper per file
        (cgroupfs regenerates a file read again from offset 0). Closed with the object."""
        if self._held is None:
            self._held = {}
        return self

    def _read_held(self, path: str) -> str | None:
        assert self._held is not None
        f = self._held.get(path)
        if f is False:                  # not there (a controller or file this host lacks)
            return None
        if f is None:
            try:
                f = open(path, "rb", buffering=0)
            except (FileNotFoundError, NotADirectoryError, ProcessLookupError):
                self._held[path] = False
                return None
            except OSError as e:
                if e.errno not in (errno.EMFILE, errno.ENFILE):
                    raise
                # out of fds (hundreds of containers under a soft limit of 1024): this
                # file is read the plain way, now and next time it is asked for
                return _read(path)
            self._held[path] = f
        try:
            return os.pread(f.fileno(), 1 << 16, 0).decode()
        except OSError:                 # the cgroup went away (ENODEV)
            f.close()
            del self._held[path]
            return None

    def _reader(self):
        return _read if self._held is None else self._read_held

    def __repr__(self) -> str:
        return f"Cgroup({self.name!r}, {self.version}, {sorted(self._dirs)})"

    # ---- construction

    @classmethod
    def create(
        cls,
        name: str,
        memory: int | None = None,
        memory_swap: int | None = None,
        cpus: float | None = None,
        pids_limit: int | None = None,
        devices_default: bool = True,
        root: str | None = None,
    ) -> Cgroup:
        """Make the cgroup in every hierarchy and apply the limits.

        Existing directories are reused (a retried create). If a limit cannot be applied
        the cgroup is removed again and RuntimeFailure (or UsageError) is raised.
        """
        root = root or CGROUP_ROOT
        parts = _check_name(name)
        if memory_swap is not None and memory_swap not in (0, UNLIMITED) and memory is None:
            raise UsageError("you should always set the memory limit when using a memory-swap limit")
        version = detect(root)
        if version == "v2":
            cg = cls._create_v2(name, parts, root, needs_domain=memory is not None)
        else:
            cg = cls._create_v1(name, parts, root, version)
        try:
            if devices_default and version != "v2":
                cg._apply_default_devices()
            cg.set_limits(memory=memory, memory_swap=memory_swap, cpus=cpus, pids_limit=pids_limit)
        except BaseException:
            try:
                cg.destroy()
            except RuntimeFailure:
                pass  # report the first error, not the clean-up's
            raise
        return cg

    @classmethod
    def _create_v1(cls, name: str, parts: list[str], root: str, version: str) -> Cgroup:
        dirs: dict[str, str] = {}
        made: list[str] = []
        keys = [(c, c) for c in V1_CONTROLLERS] + list(V1_NAMED.items())
        try:
            done: set[str] = set()  # real hierarchy dirs already made (co-mounts)
            for key, dirname in keys:
                mount = _v1_mount(root, dirname)
                if mount is None:
                    continue
                real = os.path.realpath(mount)
                if real not in done:
                    _make_chain(mount, parts, made, cpuset=(key == "cpuset"))
                    done.add(real)
                dirs[key] = os.path.join(mount, *parts)
            if not dirs:
                raise RuntimeFailure(f"no cgroup v1 controller is mounted under {root}")
        except OSError as e:
            _remove_made(made)
            raise RuntimeFailure(f"cannot create cgroup {name}: {e.strerror} ({e.filename})") from e
        except BaseException:
            _remove_made(made)
            raise
        if version == "hybrid":
            unified = os.path.join(root, "unified")
            made_unified: list[str] = []
            try:
                _make_chain(unified, parts, made_unified, cpuset=False)
                dirs["unified"] = os.path.join(unified, *parts)
            except OSError:
                _remove_made(made_unified)  # only for cgroup.kill and tracking
        return cls(name, version, root, dirs)

    @classmethod
    def _create_v2(cls, name: str, parts: list[str], root: str, needs_domain: bool) -> Cgroup:
        bases = [root]
        mine = own_cgroup("")
        if mine and mine.strip("/"):
            bases.append(os.path.join(root, mine.strip("/")))
        last_error: OSError | None = None
        for base in bases:
            made: list[str] = []
            try:
                leaf = _make_v2_chain(base, parts, made, needs_domain)
                return cls(name, "v2", root, {"unified": leaf})
            except OSError as e:
                _remove_made(made)
                if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                    raise RuntimeFailure(f"cannot create cgroup {name} under {base}: {e.strerror}") from e
                last_error = e
            except RuntimeFailure:
                _remove_made(made)
                raise
        raise RuntimeFailure(
            f"cannot create cgroup {name}: {last_error.strerror if last_error else 'refused'}",
            hint="run as root, or from a cgroup delegated to you (systemd-run --scope -p Delegate=yes)",
        )

    @classmethod
    def open(cls, name: str, root: str | None = None) -> Cgroup | None:
        """Reopen a cgroup another process created; None if it does not exist."""
        root = root or CGROUP_ROOT
        parts = _check_name(name)
        try:
            version = detect(root)
        except RuntimeFailure:
            return None
        if version == "v2":
            candidates = [os.path.join(root, *parts)]
            mine = own_cgroup("")
            if mine and mine.strip("/"):
                candidates.append(os.path.join(root, mine.strip("/"), *parts))
            for leaf in candidates:
                if os.path.isdir(leaf):
                    return cls(name, "v2", root, {"unified": leaf})
            return None
        dirs: dict[str, str] = {}
        for key, dirname in [(c, c) for c in V1_CONTROLLERS] + list(V1_NAMED.items()):
            mount = _v1_mount(root, dirname)
            if mount and os.path.isdir(os.path.join(mount, *parts)):
                dirs[key] = os.path.join(mount, *parts)
        if not dirs:
            return None
        if version == "hybrid" and os.path.isdir(os.path.join(root, "unified", *parts)):
            dirs["unified"] = os.path.join(root, "unified", *parts)
        return cls(name, version, root, dirs)

    # ---- where things are

    @property
    def paths(self) -> dict[str, str]:
        """Controller -> directory. On v2 every enabled controller maps to the one
        directory, and ``"unified"`` is always there."""
        if self.version != "v2":
            return dict(self._dirs)
        leaf = self._dirs["unified"]
        out = {c: leaf for c in (_read(os.path.join(leaf, "cgroup.controllers")) or "").split()}
        out["unified"] = leaf
        return out

    def _hierarchies(self) -> list[str]:
        """Each cgroup directory once (co-mounted controllers share one)."""
        seen: dict[str, str] = {}
        for path in self._dirs.values():
            seen.setdefault(os.path.realpath(path), path)
        return list(seen.values())

    def _file(self, controller: str, filename: str) -> str | None:
        key = (controller, filename)
        try:
            return self._files[key]
        except KeyError:
            pass
        if self.version == "v2":
            path: str | None = os.path.join(self._dirs["unified"], filename)
        else:
            d = self._dirs.get(controller)
            path = os.path.join(d, filename) if d else None
        self._files[key] = path
        return path

    def _has(self, controller: str, filename: str) -> bool:
        path = self._file(controller, filename)
        return path is not None and os.path.exists(path)

    def _set(self, controller: str, filename: str, value: str) -> None:
        path = self._file(controller, filename)
        if path is None or not os.path.exists(path):
            raise RuntimeFailure(
                f"cgroup controller {controller!r} is not available for {self.name} ({filename} missing)",
                hint="the host does not offer or delegate this controller; run without this limit",
            )
        try:
            _write(path, value)
        except OSError as e:
            raise RuntimeFailure(f"cannot write {value!r} to {path}: {e.strerror}") from e

    @property
    def devices_enforced(self) -> bool:
        """True when a device allow list guards this cgroup (v1 ``devices`` with a list
        narrower than ``a *:* rwm``). False on v2, where we attach no eBPF filter: the
        runtime should then drop CAP_MKNOD."""
        if self.version == "v2" or "devices" not in self._dirs:
            return False
        listing = _read(os.path.join(self._dirs["devices"], "devices.list"))
        return listing is not None and "a *:* rwm" not in listing.splitlines()

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self._dirs.values())

    # ---- membership

    def add_pid(self, pid: int) -> None:
        """Move process ``pid`` (0 = the calling process) into the cgroup, in every
        hierarchy. Do it before the payload runs: from the parent, or in the child."""
        for key, d in self._dirs.items():
            path = os.path.join(d, "cgroup.procs")
            try:
                _write(path, str(pid))
            except OSError as e:
                if key == "unified" and self.version == "hybrid":
                    continue  # the v1 hierarchies are the ones that matter
                if e.errno == errno.ESRCH:
                    raise RuntimeFailure(f"cannot add pid {pid} to cgroup {self.name}: no such process") from e
                raise RuntimeFailure(f"cannot add pid {pid} to {path}: {e.strerror}") from e

    def procs(self) -> list[int]:
        """Every process in the cgroup (and in any sub-cgroup), in every hierarchy."""
        pids: set[int] = set()
        for d in self._hierarchies():
            for dirpath, _dirnames, _files in os.walk(d):
                pids.update(_read_pids(os.path.join(dirpath, "cgroup.procs")))
        return sorted(pids)

    # ---- limits

    def set_limits(
        self,
        memory: int | None = None,
        memory_swap: int | None = None,
        cpus: float | None = None,
        pids_limit: int | None = None,
    ) -> None:
        """Change limits; None leaves a limit as it is.

        ``memory`` bytes (<= 0: unlimited). ``memory_swap`` bytes of memory + swap
        (-1: unlimited swap; None with ``memory``: Docker's default of as much swap as
        memory). ``cpus`` in CPUs (0: unlimited). ``pids_limit`` (<= 0: unlimited).
        """
        if memory is not None or memory_swap is not None:
            self._set_memory(memory, memory_swap)
        if cpus is not None:
            self._set_cpus(cpus)
        if pids_limit is not None:
            value = "max" if pids_limit <= 0 else str(int(pids_limit))
            self._set("pids", "pids.max", value)

    def _set_memory(self, memory: int | None, memory_swap: int | None) -> None:
        if memory is not None and memory <= 0:
            memory = UNLIMITED
        if memory is not None and memory_swap is None:
            # Docker: as much swap as memory; no memory limit, no swap limit either.
            memory_swap = UNLIMITED if memory == UNLIMITED else 2 * memory
        if memory_swap == 0:
            memory_swap = None  # Docker: 0 is "unset"
        if (
            memory_swap not in (None, UNLIMITED)
            and memory not in (None, UNLIMITED)
            and memory_swap < memory
        ):
            raise UsageError("minimum memory-swap limit should be larger than the memory limit")
        if self.version == "v2":
            self._set_memory_v2(memory, memory_swap)
        else:
            self._set_memory_v1(memory, memory_swap)

    def _set_memory_v1(self, memory: int | None, memory_swap: int | None) -> None:
        mem_value = None if memory is None else ("-1" if memory == UNLIMITED else str(memory))
        swap_value = None
        if memory_swap is not None:
            if self._has("memory", "memory.memsw.limit_in_bytes"):
                swap_value = "-1" if memory_swap == UNLIMITED else str(memory_swap)
            else:
                self.warnings.append("the kernel has no swap accounting: memory limited without swap")
        # memory.limit_in_bytes may never exceed memsw.limit_in_bytes, so the order of
        # the two writes depends on whether the limit grows or shrinks (as runc does).
        current = _read_int(self._file("memory", "memory.limit_in_bytes") or "")
        growing = mem_value is not None and (
            memory == UNLIMITED or current is None or (memory is not None and memory > current)
        )
        if swap_value is not None and growing:
            self._set("memory", "memory.memsw.limit_in_bytes", swap_value)
            swap_value = None
        if mem_value is not None:
            self._set("memory", "memory.limit_in_bytes", mem_value)
        if swap_value is not None:
            self._set("memory", "memory.memsw.limit_in_bytes", swap_value)

    def _set_memory_v2(self, memory: int | None, memory_swap: int | None) -> None:
        if memory is not None:
            self._set("memory", "memory.max", "max" if memory == UNLIMITED else str(memory))
        if memory_swap is None:
            return
        if not self._has("memory", "memory.swap.max"):
            self.warnings.append("the kernel has no swap accounting: memory limited without swap")
            return
        if memory_swap == UNLIMITED:
            self._set("memory", "memory.swap.max", "max")
            return
        if memory is None or memory == UNLIMITED:
            memory = _read_int(self._file("memory", "memory.max") or "")
            if memory is None:
                raise UsageError("set a memory limit before a memory-swap limit")
        # v2 limits swap alone; Docker's --memory-swap is memory + swap.
        self._set("memory", "memory.swap.max", str(max(memory_swap - memory, 0)))

    def _set_cpus(self, cpus: float) -> None:
        if cpus < 0:
            raise UsageError(f"invalid cpus value {cpus}: must be >= 0")
        quota = None if cpus == 0 else max(int(round(cpus * CPU_PERIOD_US)), CPU_MIN_QUOTA_US)
        if self.version == "v2":
            self._set("cpu", "cpu.max", f"{'max' if quota is None else quota} {CPU_PERIOD_US}")
            return
        self._set("cpu", "cpu.cfs_period_us", str(CPU_PERIOD_US))
        self._set("cpu", "cpu.cfs_quota_us", "-1" if quota is None else str(quota))

    def _apply_default_devices(self) -> None:
        """v1 only: deny all devices, then allow Docker's default list. (v2 needs an eBPF
        program attached to the cgroup for this; we do not do that, see docs/cgroups.md.)"""
        if "devices" not in self._dirs:
            return
        self._set("devices", "devices.deny", "a")
        for rule in DEFAULT_DEVICE_RULES:
            self._set("devices", "devices.allow", rule)

    # ---- reading

    def stats(self) -> CgroupStats:
        """One sample of usage and limits. Missing controllers give None fields."""
        if self.version == "v2":
            return self._stats_v2()
        return self._stats_v1()

    def _stats_v1(self) -> CgroupStats:
        f = self._file
        r = self._reader()
        s = CgroupStats()
        s.cpu_usage_ns = _read_int(f("cpuacct", "cpuacct.usage") or "", r)
        acct = _read_keyed(f("cpuacct", "cpuacct.stat") or "", r)     # in USER_HZ ticks
        if "user" in acct and "system" in acct:
            tick = 1_000_000_000 // _clock_ticks()
            s.cpu_user_ns, s.cpu_system_ns = acct["user"] * tick, acct["system"] * tick
        s.memory_usage = _read_int(f("memory", "memory.usage_in_bytes") or "", r)
        s.memory_limit = _limit_or_none(_read_int(f("memory", "memory.limit_in_bytes") or "", r))
        mstat = _read_keys(f("memory", "memory.stat") or "",
                           ("total_inactive_file", "inactive_file", "cache"), r)
        for key in ("total_inactive_file", "inactive_file", "cache"):
            if key in mstat:
                s.memory_cache = mstat[key]
                break
        s.pids_current = _read_int(f("pids", "pids.current") or "", r)
        s.pids_limit = _limit_or_none(_read_int(f("pids", "pids.max") or "", r))
        s.io_read_bytes, s.io_write_bytes = self._blkio_bytes()
        oom = _read_keyed(f("memory", "memory.oom_control") or "", r)
        s.oom_kills = oom.get("oom_kill")
        quota = _read_int(f("cpu", "cpu.cfs_quota_us") or "", r)
        s.cpu_quota_us = quota if quota is not None and quota > 0 else None
        s.cpu_period_us = _read_int(f("cpu", "cpu.cfs_period_us") or "", r)
        s.cpu_throttled_periods = _read_keyed(f("cpu", "cpu.stat") or "", r).get("nr_throttled")
        return s

    def _blkio_bytes(self) -> tuple[int | None, int | None]:
        for filename in (
            "blkio.throttle.io_service_bytes_recursive",
            "blkio.throttle.io_service_bytes",
            "blkio.io_service_bytes_recursive",
            "blkio.bfq.io_service_bytes_recursive",
        ):
            text = self._reader()(self._file("blkio", filename) or "")
            if text is None:
                continue
            read = write = 0
            for line in text.splitlines():
                parts = line.split()  # "8:0 Read 4096"; the last line is "Total N"
                if len(parts) == 3 and parts[1] in ("Read", "Write") and parts[2].isdigit():
                    if parts[1] == "Read":
                        read += int(parts[2])
                    else:
                        write += int(parts[2])
            return read, write
        return None, None

    def _stats_v2(self) -> CgroupStats:
        d = self._dirs["unified"]
        p = lambda name: os.path.join(d, name)  # noqa: E731
        r = self._reader()
        s = CgroupStats()
        cpu = _read_keyed(p("cpu.stat"), r)
        if "usage_usec" in cpu:
            s.cpu_usage_ns = cpu["usage_usec"] * 1000
        if "user_usec" in cpu and "system_usec" in cpu:
            s.cpu_user_ns, s.cpu_system_ns = cpu["user_usec"] * 1000, cpu["system_usec"] * 1000
        s.cpu_throttled_periods = cpu.get("nr_throttled")
        s.memory_usage = _read_int(p("memory.current"), r)
        s.memory_limit = _limit_or_none(_read_int(p("memory.max"), r))
        mstat = _read_keys(p("memory.stat"), ("inactive_file",), r)
        if "inactive_file" in mstat:
            s.memory_cache = mstat["inactive_file"]
        s.pids_current = _read_int(p("pids.current"), r)
        s.pids_limit = _limit_or_none(_read_int(p("pids.max"), r))
        io = r(p("io.stat"))
        if io is not None:
            s.io_read_bytes = s.io_write_bytes = 0
            for line in io.splitlines():  # "8:0 rbytes=1 wbytes=2 rios=3 wios=4 ..."
                for item in line.split()[1:]:
                    key, _, value = item.partition("=")
                    if key == "rbytes" and value.isdigit():
                        s.io_read_bytes += int(value)
                    elif key == "wbytes" and value.isdigit():
                        s.io_write_bytes += int(value)
        if r(p("memory.events")) is not None:
            s.oom_kills = _read_keyed(p("memory.events"), r).get("oom_kill", 0)
        cpu_max = (r(p("cpu.max")) or "").split()
        if len(cpu_max) == 2:
            s.cpu_quota_us = None if cpu_max[0] == "max" else int(cpu_max[0])
            s.cpu_period_us = int(cpu_max[1])
        return s

    def oom_killed(self) -> bool:
        """Did the kernel OOM-kill a process of this cgroup?

        v1: the ``oom_kill`` counter of memory.oom_control (kernel >= 4.13), else
        ``under_oom``. v2: ``oom_kill`` in memory.events.
        """
        if self.version == "v2":
            return _read_keyed(os.path.join(self._dirs["unified"], "memory.events")).get("oom_kill", 0) > 0
        oom = _read_keyed(self._file("memory", "memory.oom_control") or "")
        if "oom_kill" in oom:
            return oom["oom_kill"] > 0
        return oom.get("under_oom", 0) > 0

    def limit_files(self) -> dict[str, str]:
        """Full path -> content of the files that hold the limits (for the teaching view)."""
        if self.version == "v2":
            wanted = [
                ("memory", "memory.max"), ("memory", "memory.swap.max"), ("cpu", "cpu.max"),
                ("pids", "pids.max"), ("cpuset", "cpuset.cpus.effective"),
                ("unified", "cgroup.freeze"), ("unified", "cgroup.type"),
            ]
        else:
            wanted = [
                ("memory", "memory.limit_in_bytes"), ("memory", "memory.memsw.limit_in_bytes"),
                ("cpu", "cpu.cfs_quota_us"), ("cpu", "cpu.cfs_period_us"), ("cpu", "cpu.shares"),
                ("pids", "pids.max"), ("cpuset", "cpuset.cpus"), ("cpuset", "cpuset.mems"),
                ("freezer", "freezer.state"), ("devices", "devices.list"),
            ]
        out: dict[str, str] = {}
        for controller, filename in wanted:
            path = self._file(controller, filename)
            text = _read(path) if path else None
            if path and text is not None:
                out[path] = text.strip()
        return out

    # ---- freezing

    def _freezer(self) -> tuple[str, str] | None:
        """(kind, directory) of the freezer to use: v1 ``freezer`` or the v2 core one."""
        if self.version != "v2" and "freezer" in self._dirs:
            return "v1", self._dirs["freezer"]
        d = self._dirs.get("unified")
        if d and os.path.exists(os.path.join(d, "cgroup.freeze")):
            return "v2", d
        return None

    def freeze(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Stop every process of the cgroup; returns once the kernel reports them frozen."""
        self._freeze(True, timeout)

    def thaw(self, timeout: float = SETTLE_TIMEOUT) -> None:
        self._freeze(False, timeout)

    def is_frozen(self) -> bool:
        fz = self._freezer()
        if fz is None:
            return False
        kind, d = fz
        if kind == "v1":
            return (_read(os.path.join(d, "freezer.state")) or "").strip() == "FROZEN"
        return _read_keyed(os.path.join(d, "cgroup.events")).get("frozen", 0) == 1

    def _freeze(self, frozen: bool, timeout: float) -> None:
        fz = self._freezer()
        if fz is None:
            raise RuntimeFailure(f"no freezer for cgroup {self.name}", hint="the freezer controller is not mounted")
        kind, d = fz
        if kind == "v1":
            path, want = os.path.join(d, "freezer.state"), ("FROZEN" if frozen else "THAWED")
            settled = lambda: (_read(path) or "").strip() == want  # noqa: E731
        else:
            path, want = os.path.join(d, "cgroup.freeze"), ("1" if frozen else "0")
            events = os.path.join(d, "cgroup.events")
            settled = lambda: _read_keyed(events).get("frozen", 0) == int(want)  # noqa: E731
        deadline = time.monotonic() + timeout
        delay = 0.001
        last_write = 0.0
        while True:
            now = time.monotonic()
            if now - last_write > 0.1:
                # v1 can stay FREEZING when a task is busy in the kernel; writing again
                # retries the freeze (runc does the same).
                try:
                    _write(path, want)
                except OSError as e:
                    raise RuntimeFailure(f"cannot write {want} to {path}: {e.strerror}") from e
                last_write = now
            if settled():
                return
            if now > deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        if frozen:
            try:
                _write(path, "THAWED" if kind == "v1" else "0")
            except OSError:
                pass
        raise RuntimeFailure(f"cgroup {self.name} did not become {want} within {timeout:.0f}s")

    # ---- killing and removal

    def kill_all(self, sig: int = _signal.SIGKILL, timeout: float = SETTLE_TIMEOUT) -> None:
        """Send ``sig`` to every process in the cgroup.

        For SIGKILL, wait until the cgroup is empty. v2 (and hybrid's unified dir) use
        ``cgroup.kill`` when the kernel has it (>= 5.14): one atomic write, no race with
        fork. Otherwise freeze, signal each process, thaw, and repeat until empty.
        """
        used_kill_file = False
        if sig == _signal.SIGKILL:
            d = self._dirs.get("unified")
            if d and os.path.exists(os.path.join(d, "cgroup.kill")):
                try:
                    _write(os.path.join(d, "cgroup.kill"), "1")
                    used_kill_file = True
                except OSError:
                    pass  # fall back to the loop below
        deadline = time.monotonic() + timeout
        delay = 0.001
        last_signal = 0.0 if used_kill_file else float("-inf")
        while True:
            pids = self.procs()
            if not pids:
                return
            now = time.monotonic()
            if sig != _signal.SIGKILL:
                self._signal_each(pids, sig)
                return
            if now - last_signal >= 0.05:  # again now and then: catches late forks
                self._signal_each(pids, sig)
                last_signal = now
            if now > deadline:
                raise RuntimeFailure(
                    f"cgroup {self.name} still has processes {pids[:10]} after SIGKILL",
                    hint="a process may be stuck in the kernel (uninterruptible sleep)",
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.02)

    def _signal_each(self, pids: list[int], sig: int) -> None:
        """Signal a list of pids with the cgroup frozen, so none can fork a new process
        between our read of cgroup.procs and the kill."""
        frozen = False
        if sig == _signal.SIGKILL and self._freezer() is not None:
            try:
                self._freeze(True, timeout=1.0)
                frozen = True
            except RuntimeFailure:
                pass
        try:
            for pid in pids if not frozen else self.procs():
                try:
                    _kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if frozen:
                try:
                    self._freeze(False, timeout=1.0)
                except RuntimeFailure:
                    pass

    def destroy(self, timeout: float = RMDIR_TIMEOUT) -> None:
        """Kill what is left and remove the cgroup from every hierarchy. Idempotent.

        Parents (``nutshell/``) stay, like Docker's ``/docker``: other containers use them.
        """
        if not self.exists():
            return
        if self.procs():
            try:
                if self.is_frozen():
                    self.thaw()
            except RuntimeFailure:
                pass
            self.kill_all(_signal.SIGKILL)
        problems = []
        for d in self._hierarchies():
            # sub-cgroups first (a container with a writable cgroupfs may have made some)
            subdirs = [dp for dp, _dn, _fn in os.walk(d, topdown=False)]
            for path in subdirs:
                err = _rmdir_retry(path, timeout)
                if err:
                    problems.append(f"{path}: {err}")
        if problems:
            raise RuntimeFailure(f"cannot remove cgroup {self.name}: {'; '.join(problems)}")


# ------------------------------------------------------------------------ tree helpers


def _make_chain(mount: str, parts: list[str], made: list[str], cpuset: bool) -> str:
    """mkdir -p ``mount/parts...``, recording what we made. In the v1 cpuset hierarchy a
    new cgroup starts with empty cpus/mems (and refuses tasks), so copy the parent's."""
    current = mount
    for part in parts:
        parent, current = current, os.path.join(current, part)
        try:
            _mkdir(current)
            made.append(current)
        except FileExistsError:
            pass
        if cpuset:
            for filename in ("cpuset.cpus", "cpuset.mems"):
                mine = os.path.join(current, filename)
                if (_read(mine) or "").strip() == "":
                    value = (_read(os.path.join(parent, filename)) or "").strip()
                    if value:
                        _write(mine, value)
    return current


def _make_v2_chain(base: str, parts: list[str], made: list[str], needs_domain: bool) -> str:
    """mkdir each level under ``base`` and delegate controllers downward.

    Each level that has a child enables (``+ctrl``) in its ``cgroup.subtree_control``
    every controller we want that it has in ``cgroup.controllers``. A level whose
    ``cgroup.type`` is "domain invalid" (made below a threaded cgroup) becomes threaded
    if we need no domain-only controller (memory, io), as runc does.
    """
    levels = [base] + [os.path.join(base, *parts[: i + 1]) for i in range(len(parts))]
    for i, current in enumerate(levels):
        if i > 0:
            try:
                _mkdir(current)
                made.append(current)
            except FileExistsError:
                pass
            ctype = (_read(os.path.join(current, "cgroup.type")) or "domain").strip()
            if ctype == "domain invalid":
                if needs_domain:
                    raise RuntimeFailure(
                        f"cannot use memory limits in cgroup {current}: it is in an invalid (threaded) subtree"
                    )
                _write(os.path.join(current, "cgroup.type"), "threaded")
            elif ctype in ("threaded", "domain threaded") and needs_domain:
                raise RuntimeFailure(f"cannot use memory limits in cgroup {current}: it is {ctype}")
        if i < len(levels) - 1:
            _enable_controllers(current)
    return levels[-1]


def _enable_controllers(path: str) -> None:
    available = set((_read(os.path.join(path, "cgroup.controllers")) or "").split())
    enabled = set((_read(os.path.join(path, "cgroup.subtree_control")) or "").split())
    todo = [c for c in V2_CONTROLLERS if c in available and c not in enabled]
    if not todo:
        return
    target = os.path.join(path, "cgroup.subtree_control")
    try:
        _write(target, " ".join("+" + c for c in todo))
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        # One at a time: a controller the kernel refuses (EBUSY: processes in a
        # non-root cgroup; cpu with realtime tasks) must not block the others. Limits
        # that need a missing controller fail later with a clear message.
        for c in todo:
            try:
                _write(target, "+" + c)
            except OSError:
                pass


def _remove_made(made: list[str]) -> None:
    for path in reversed(made):
        try:
            _rmdir(path)
        except OSError:
            pass


def _rmdir_retry(path: str, timeout: float) -> str | None:
    """rmdir, retrying EBUSY for a moment (exiting tasks leave a cgroup asynchronously)."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            _rmdir(path)
            return None
        except FileNotFoundError:
            return None
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                return e.strerror or str(e)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
