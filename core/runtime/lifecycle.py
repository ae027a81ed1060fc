"""The container lifecycle: create, start, stop, kill, restart (by hand and by policy),
update, wait, rm, prune, rename."""

from __future__ import annotations

import _signal  # not signal.py: its enums cost ~1 ms of every `run`
import _socket  # not socket.py (enum, selectors: ~4 ms of every `run`)
import contextlib
import os

from .. import journal
from ..errors import Conflict, NotFound, NutshellError, RuntimeFailure, UsageError
from ..importcost import LazyPattern
from ..paths import LAYER_IMAGE
from . import security as _security
from . import spec as _spec
from .attach import AttachClient
from .runtime_base import RuntimeBase, anonymous_volumes, cgroup_dirs
from .state import kill_verified, now_rfc3339, wait_gone

NAME_RE = LazyPattern(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+\Z")      # only with --name
# RFC 1123 host names, as dockerd checks --hostname
HOSTNAME_RE = LazyPattern(r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])\.)*"
                          r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])\Z")

_ADJ = ("admiring", "agitated", "amazing", "awesome", "bold", "brave", "busy", "clever",
        "cool", "dazzling", "eager", "elegant", "epic", "festive", "focused", "friendly",
        "gifted", "happy", "hopeful", "jolly", "keen", "kind", "lucid", "modest", "nifty",
        "pensive", "quirky", "relaxed", "serene", "sharp", "stoic", "tender", "vibrant",
        "wizardly", "zealous")

_NAMES = ("babbage", "bohr", "curie", "darwin", "dijkstra", "einstein", "euler", "fermi",
          "feynman", "galileo", "hamilton", "hopper", "hypatia", "kepler", "knuth",
          "lamarr", "lovelace", "meitner", "newton", "noether", "pascal", "ritchie",
          "shannon", "thompson", "torvalds", "turing", "wozniak", "yalow")


class ImageMissing(NotFound):
    """The image is not in the store (the CLI may pull it and try again)."""


class Lifecycle(RuntimeBase):
    """Creating, starting, stopping and removing containers."""
    def _image(self, opts: _spec.RunOptions):
        """(image id, chain ids, lower dirs base first, image config, display ref)."""
        if opts.rootfs:
            root = os.path.abspath(opts.rootfs)
            if not os.path.isdir(root) and not (root.endswith("/" + LAYER_IMAGE) and os.path.isfile(root)):
                raise NotFound(f"rootfs directory not found: {opts.rootfs}")
            return "", [], [root], {}, root
        if not opts.image:
            raise UsageError("requires at least 1 argument: an image")
        try:
            img = self.engine.store.image(opts.image)
        except NotFound:
            raise ImageMissing(f"No such image: {opts.image}") from None
        lower = self.engine.store.layer_dirs(img)
        if not lower:  # an image without layers: an empty dir as the only lower
            empty = os.path.join(self.paths.root, "empty-layer")
            os.makedirs(empty, exist_ok=True)
            lower = [empty]
        cfg = (img.config or {}).get("config") or {}
        return img.id, list(img.chain_ids), lower, cfg, opts.image

    def create(self, opts: _spec.RunOptions) -> str:
        if opts.name is not None and not NAME_RE.match(opts.name):
            raise UsageError(f"Invalid container name ({opts.name}), only "
                             "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if opts.hostname and not HOSTNAME_RE.match(opts.hostname):
            raise UsageError(f"invalid hostname format: {opts.hostname}")
        image_id, chains, lower, image_cfg, image_ref = self._image(opts)
        requested = []
        if opts.volumes or opts.mounts or opts.tmpfs:
            from ..volumes.mounts import parse_all

            requested = parse_all(opts.volumes, opts.mounts, opts.tmpfs)
        with self.records.global_lock():
            if opts.name:
                name = opts.name.lstrip("/")
                other = self.records.name_in_use(name)
                if other:
                    raise Conflict(f'Conflict. The container name "/{name}" is already in use '
                                   f'by container "{other}". You have to remove (or rename) '
                                   "that container to be able to reuse that name.")
            else:
                name = _random_name()
                while self.records.name_in_use(name):
                    name = _random_name() + f"_{os.urandom(1)[0]}"
            cid = os.urandom(32).hex()
            cdir = self.paths.container(cid)
            config = _spec.build_config(
                cid, name, opts, image_cfg, image_id=image_id, image_ref=image_ref,
                chain_ids=chains, lower_dirs=lower, created=now_rfc3339(), container_dir=cdir,
                host_hostname=os.uname().nodename)
            stop_signal = config["Config"].get("StopSignal")
            if stop_signal:  # the flag's or the image's: refused here, not at the first stop
                try:
                    _signal_number(stop_signal)
                except UsageError:
                    raise UsageError(f"Invalid signal: {stop_signal}") from None
            new_volumes: list[str] = []
            if requested or image_cfg.get("Volumes"):
                from ..volumes.mounts import prepare

                config["Mounts"], new_volumes = prepare(self.engine, requested,
                                                        image_cfg.get("Volumes"), lower)
                anon: dict[str, dict] = {m["Destination"]: {} for m in config["Mounts"] if m.get("Anonymous")}
                if anon:
                    config["Config"]["Volumes"] = dict(config["Config"].get("Volumes") or {},
                                                       **anon)
            os.mkdir(cdir, 0o700)
            try:
                for d in ("upper", "work", "merged"):
                    os.mkdir(os.path.join(cdir, d), 0o755)
                with open(os.path.join(cdir, "hostname"), "w") as f:
                    f.write(config["Config"]["Hostname"] + "\n")
                for fname in ("hosts", "resolv.conf"):
                    open(os.path.join(cdir, fname), "a").close()
                self.records.write_state(cid, _spec_initial_state())
                self.records.index_name(name, cid)
                self.records.write_config(cid, config)  # last: makes the container visible
            except BaseException:
                import shutil

                shutil.rmtree(cdir, ignore_errors=True)
                self._remove_volumes(config, only=new_volumes)
                raise
        for vol in new_volumes:
            journal.record(self.paths.root, "volume", "create", vol, {"driver": "local"})
        return cid

    def start(self, ref: str, attach: bool = False, rows: int | None = None,
              cols: int | None = None) -> tuple[str, AttachClient | None]:
        """Start a created or stopped container. With ``attach``, the returned client is
        connected before the payload runs, so no output is missed."""
        cid = self.resolve(ref)
        with self.records.oplock(cid):
            st = self.state(cid)
            if st.get("Status") in ("running", "paused"):
                return cid, (self.attach(cid) if attach else None)
            cfg = self.records.read_config(cid)
            return cid, self._launch(cid, cfg, attach, rows, cols)

    def _lower_dirs(self, cfg: dict) -> list[str]:
        lower = cfg.get("LowerDirs") or []
        if lower and all(os.path.exists(d) for d in lower):
            return lower
        if cfg.get("ImageID"):
            img = self.engine.store.image(cfg["ImageID"])
            lower = self.engine.store.layer_dirs(img)
            if lower:
                return lower
        raise NotFound(f"the image layers of container {cfg['Id'][:12]} are gone")

    def _launch(self, cid: str, cfg: dict, attach: bool, rows, cols) -> AttachClient | None:
        from ..paths import ensure_run_dir
        from . import cgroups as _cg
        from .caps import mask as caps_mask
        from .start.initspec import InitSpec
        from .start.launch import launch

        hc, c = cfg["HostConfig"], cfg["Config"]
        cdir = self.paths.container(cid)
        try:
            os.unlink(os.path.join(cdir, "stopped"))  # a start undoes a user's stop
        except FileNotFoundError:
            pass
        lower = self._lower_dirs(cfg)
        ensure_run_dir(self.paths)  # /run is emptied at boot: made private again here
        rows = rows or 24
        cols = cols or 80
        conf = _security.confinement(hc)
        bpf = self._seccomp_filter(cfg, conf)
        cg = _cg.Cgroup.create(f"nutshell/{cid}", memory=hc.get("Memory") or None,
                               memory_swap=hc.get("MemorySwap") or None,
                               cpus=(hc.get("NanoCpus") or 0) / 1e9 or None,
                               pids_limit=hc.get("PidsLimit"),
                               devices_default=not conf.privileged)
        client = shim_end = None
        shim_started = False
        try:
            net, finish_net = self._setup_network(cid, cfg)
            caps = caps_mask(cfg.get("Capabilities") or [])
            if not cg.devices_enforced and not conf.privileged:
                # no device cgroup (v2 without eBPF): mknod of host disks must not work
                caps &= ~(1 << 27)
            required, optional = cgroup_dirs(cg)
            spec = InitSpec(
                args=[cfg["Path"]] + list(cfg.get("Args") or []),
                env=list(c.get("Env") or []), user=c.get("User") or "",
                cwd=c.get("WorkingDir") or "", caps=caps, tty=bool(c.get("Tty")),
                rows=rows, cols=cols, no_new_privs=conf.no_new_privileges, seccomp=bpf,
                cid=cid, container_dir=cdir, run_dir=self.paths.run_container(cid),
                state_root=self.paths.root, runtime_root=self.paths.run,
                hostname=c["Hostname"], network_mode=net["mode"], netns=net.get("netns"),
                lower_dirs=lower, upper_dir=os.path.join(cdir, "upper"),
                work_dir=os.path.join(cdir, "work"), merged_dir=os.path.join(cdir, "merged"),
                links_dir=os.path.join(cdir, "l"),
                readonly_rootfs=bool(hc.get("ReadonlyRootfs")),
                etc_files={k: v for k, v in (
                    ("etc/hosts", os.path.join(cdir, "hosts")),
                    ("etc/hostname", os.path.join(cdir, "hostname")),
                    ("etc/resolv.conf", os.path.join(cdir, "resolv.conf")))
                    if "/" + k not in {m.get("Destination") for m in cfg.get("Mounts") or []}},
                mounts=cfg.get("Mounts") or [],
                mountpoints_file=os.path.join(cdir, "mountpoints"),
                masked_paths=_paths_or_default(hc, "MaskedPaths", _spec.MASKED_PATHS),
                readonly_paths=_paths_or_default(hc, "ReadonlyPaths", _spec.READONLY_PATHS),
                privileged=conf.privileged,
                devices=_security.host_devices() if conf.privileged else [],
                cgroup_version=cg.version, cgroups_required=required,
                cgroups_optional=optional, memory_cgroup=cg.paths.get("memory"),
                stdin_open=bool(c.get("OpenStdin")), auto_remove=bool(hc.get("AutoRemove")),
                name=str(cfg.get("Name") or "").lstrip("/"),
                network_teardown=net["mode"] == "bridge", restart=_restart_arg(cfg),
                volume_root=self.paths.volumes, remove_volumes=anonymous_volumes(cfg),
                event_attributes=journal.container_attributes(cfg))
            if attach:
                client_end, shim_end = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
                client = client_end
            journal.volume_mounts(self.paths.root, cid, cfg.get("Mounts"), "mount")
            try:
                launch(spec, attach_fd=shim_end.fileno() if shim_end else None,
                       before_go=finish_net)
            except BaseException as e:
                shim_started = getattr(e, "from_shim", False)
                raise
            finally:
                if shim_end is not None:
                    shim_end.close()
            return AttachClient(client) if client is not None else None
        except BaseException:
            if client is not None:
                client.close()
            if not shim_started:
                try:
                    cg.destroy()
                except NutshellError:
                    pass
                self._teardown_network(cid, cfg)
                if hc.get("AutoRemove"):
                    self._remove_files(cid)
                    self._remove_volumes(cfg)
            raise

    def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> str:
        cid = self.resolve(ref)
        self._mark_stopped(cid)  # no --restart after a stop, also one waiting to happen
        with self.records.oplock(cid):
            st = self.state(cid)
            if st.get("Status") not in ("running", "paused"):
                return cid
            cfg = self.records.read_config(cid)
            if timeout is None:
                timeout = cfg["Config"].get("StopTimeout")
                if timeout is None:
                    timeout = 10
            sig = _signal_number(signal or cfg["Config"].get("StopSignal") or "SIGTERM")
            client = self._connect(cid)
            if timeout != 0 and sig != _signal.SIGKILL:
                journal.container(self.paths.root, cfg, "kill", signal=int(sig))
                kill_verified(st["Pid"], st.get("PidStartTime"), sig)
                self._thaw_if_paused(cid, st)  # a paused container gets to handle it
                if self._wait_exit(cid, st, client, None if timeout < 0 else float(timeout)):
                    journal.container(self.paths.root, cfg, "stop")
                    return cid
            journal.container(self.paths.root, cfg, "kill", signal=int(_signal.SIGKILL))
            kill_verified(st["Pid"], st.get("PidStartTime"), _signal.SIGKILL)
            self._thaw_if_paused(cid, st)  # v1 frozen tasks die only once thawed
            self._wait_exit(cid, st, client, 30.0)
            if client is not None:
                client.close()
            journal.container(self.paths.root, cfg, "stop")
        return cid

    def kill(self, ref: str, signal: str | int | None = "KILL") -> str:
        cid = self.resolve(ref)
        st = self.state(cid)
        if st.get("Status") not in ("running", "paused"):
            raise Conflict(f"Cannot kill container: {ref}: container {cid} is not running")
        sig = _signal_number(signal)
        if sig in (_signal.SIGKILL, _signal.SIGTERM, _signal.SIGINT):
            self._mark_stopped(cid)  # Docker: a kill by the user is not restarted either
        with contextlib.suppress(Exception):  # the event goes before the die it causes
            journal.container(self.paths.root, self.records.read_config(cid), "kill",
                              signal=int(sig))
        if not kill_verified(st["Pid"], st.get("PidStartTime"), sig):
            raise Conflict(f"Cannot kill container: {ref}: container {cid} is not running")
        if sig == _signal.SIGKILL:
            self._thaw_if_paused(cid, st)  # other signals wait for unpause, as in Docker
        return cid

    def restart_by_policy(self, cid: str) -> str:
        """The restart helper's start (core/runtime/restart.py): only if the container is
        still exited and was not stopped by the user; counts ``RestartCount``."""
        cid = self.resolve(cid)
        with self.records.oplock(cid):
            if os.path.exists(os.path.join(self.paths.container(cid), "stopped")):
                raise Conflict(f"container {cid[:12]} was stopped by the user")
            st = self.state(cid)
            if st.get("Status") != "exited":
                raise Conflict(f"container {cid[:12]} is {st.get('Status')}, not exited")
            cfg = self.records.read_config(cid)
            cfg["RestartCount"] = int(cfg.get("RestartCount") or 0) + 1
            self.records.write_config(cid, cfg)
            self._launch(cid, cfg, False, None, None)
        return cid

    def update(self, ref: str, memory: int | None = None, memory_swap: int | None = None,
               cpus: float | None = None, pids_limit: int | None = None) -> tuple[str, list[str]]:
        """``docker update``: change resource limits. A running (or paused) container's
        cgroup is changed at once, and the config too, so they hold after a restart.
        None leaves a limit as it is; ``memory``/``pids_limit`` <= 0 and ``cpus`` 0 lift
        it. Returns (id, warnings)."""
        from . import cgroups as _cg

        if memory is not None and 0 < memory < 6 * 1024 * 1024:
            raise UsageError("Minimum memory limit allowed is 6MB")
        if cpus is not None and cpus < 0:
            raise UsageError(f"invalid value {cpus} for --cpus: must be >= 0")
        if all(v is None for v in (memory, memory_swap, cpus, pids_limit)):
            raise UsageError("you must provide one or more flags when using this command")
        cid = self.resolve(ref)
        warnings: list[str] = []
        with self.records.oplock(cid):
            cfg = self.records.read_config(cid)
            hc = cfg["HostConfig"]
            new = dict(hc)
            if memory is not None:
                new["Memory"] = max(memory, 0)
                if memory_swap is None:
                    new["MemorySwap"] = 0 if memory <= 0 else 2 * memory
            if memory_swap is not None:
                new["MemorySwap"] = memory_swap
            if cpus is not None:
                new["NanoCpus"] = int(round(cpus * 1e9))
            if pids_limit is not None:
                new["PidsLimit"] = pids_limit if pids_limit > 0 else None
            st = self.state(cid)
            if st.get("Status") in ("running", "paused"):
                cg = _cg.Cgroup.open(f"nutshell/{cid}")
                if cg is None:
                    raise RuntimeFailure(f"the cgroup of container {cid[:12]} is gone")
                try:
                    cg.set_limits(memory=memory, memory_swap=memory_swap, cpus=cpus,
                                  pids_limit=pids_limit)
                except RuntimeFailure as e:
                    raise RuntimeFailure(f"Cannot update container {cid[:12]}: {e}") from None
                warnings = list(cg.warnings)
            cfg["HostConfig"] = new
            self.records.write_config(cid, cfg)
        return cid, warnings

    def edit_networks(self, ref: str, network: str, connect: bool,
                      aliases: list[str] | None = None) -> str:
        """``network connect/disconnect`` of a container that is not running: its config
        changes and its next start joins (or leaves out) ``network`` (a user network's
        name or ``bridge``), as with dockerd. Disconnecting the last network leaves it on
        ``none`` until a network is connected again (Compose disconnects and reconnects a
        created container's network before it starts it)."""
        cid = self.resolve(ref)
        with self.records.oplock(cid):
            if self.state(cid).get("Status") in ("running", "paused", "restarting"):
                raise Conflict(f"container {cid[:12]} is running: connect it live instead")
            cfg = self.records.read_config(cid)
            hc = cfg["HostConfig"]
            opts = dict(hc.get("NetworkOptions") or {})
            mode = hc.get("NetworkMode") or "default"
            emptied = bool(cfg.get("NetworksEmptied"))
            if (mode in ("host", "none") and not emptied) or mode.startswith("container:"):
                raise Conflict(f"container {cid[:12]} uses --network {mode}: it cannot be "
                               "connected to or disconnected from other networks")
            nets = [] if emptied else [n for n in opts.get("networks") or []
                                       if n and n != "default"]
            primary = "bridge" if mode == "default" else mode
            if not emptied and primary not in nets:
                nets.insert(0, primary)
            per = dict(opts.get("net_aliases") or {})
            name = cfg["Name"].lstrip("/")
            if connect:
                if network in nets:
                    raise Conflict(f"endpoint with name {name} already exists in network "
                                   f"{network}")
                nets.append(network)
                per[network] = list(aliases or [])
            else:
                if network not in nets:
                    raise Conflict(f"container {cid[:12]} is not connected to network {network}")
                nets.remove(network)
                per.pop(network, None)
            if nets:
                hc["NetworkMode"] = "default" if (mode == "default" and nets[0] == "bridge") else nets[0]
                cfg.pop("NetworksEmptied", None)
            else:
                hc["NetworkMode"] = "none"
                cfg["NetworksEmptied"] = True
            opts["networks"] = nets
            opts["net_aliases"] = per
            hc["NetworkOptions"] = opts
            self.records.write_config(cid, cfg)
        return cid

    def restart(self, ref: str, timeout: int | None = None) -> str:
        cid = self.stop(ref, timeout)
        self.start(cid)
        return cid

    def wait(self, ref: str) -> int:
        """Block until the container is not running; its exit code."""
        cid = self.resolve(ref)
        st = self.state(cid)
        if st.get("Status") in ("running", "paused"):
            client = self._connect(cid)
            if client is not None:
                with client:
                    code = client.wait()
                if code is not None:
                    return code
            wait_gone(st.get("ShimPid") or 0, st.get("ShimStartTime"), 10.0)
            try:
                st = self.state(cid)
            except NotFound:  # --rm removed it
                return 0 if client is None or client.exit_code is None else client.exit_code
        return int(st.get("ExitCode") or 0)

    def rm(self, ref: str, force: bool = False, volumes: bool = False) -> str:
        """Remove a container (``force``: kill it first); ``volumes``: its anonymous
        volumes too (named volumes are never removed with a container, as in Docker)."""
        cid = self.resolve(ref)
        with self.records.oplock(cid):
            st = self.state(cid)
            cfg = self.records.read_config(cid)
            if st.get("Status") in ("running", "paused"):
                if not force:
                    raise Conflict(f'cannot remove container "{cfg["Name"]}": container is '
                                   "running: stop the container before removing or force remove")
                client = self._connect(cid)
                journal.container(self.paths.root, cfg, "kill", signal=int(_signal.SIGKILL))
                kill_verified(st["Pid"], st.get("PidStartTime"), _signal.SIGKILL)
                self._thaw_if_paused(cid, st)
                self._wait_exit(cid, st, client, 30.0)
                if client is not None:
                    client.close()
            self._release(cid, cfg)
            self._remove_files(cid)
            journal.container(self.paths.root, cfg, "destroy")
        if volumes:
            self._remove_volumes(cfg)
        return cid

    def prune(self, filters: list[str] | None = None) -> dict:
        """Remove stopped containers (``filters``: ``until=``, ``label=``, ``label!=``)."""
        from .. import prunefilter
        from ..fsutil import dir_size
        from ..timestamps import parse_rfc3339

        want = prunefilter.parse(filters)
        deleted, space = [], 0
        for cid in self.records.ids():
            try:
                st = self.state(cid)
            except NotFound:
                continue
            if st.get("Status") in ("running", "paused"):
                continue
            if want:
                try:
                    cfg = self.records.read_config(cid)
                except (NotFound, OSError, ValueError):
                    continue
                if not prunefilter.matches(want, parse_rfc3339(cfg.get("Created") or ""),
                                           (cfg.get("Config") or {}).get("Labels")):
                    continue
            space += dir_size(os.path.join(self.paths.container(cid), "upper"))
            try:
                self.rm(cid)
                deleted.append(cid)
            except NotFound:
                continue
        return {"ContainersDeleted": deleted, "SpaceReclaimed": space}

    def rename(self, ref: str, new_name: str) -> str:
        if not NAME_RE.match(new_name or ""):
            raise UsageError(f"Invalid container name ({new_name}), only "
                             "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        new_name = new_name.lstrip("/")
        cid = self.resolve(ref)
        with self.records.global_lock():
            other = self.records.name_in_use(new_name, except_id=cid)
            if other:
                raise Conflict(f'Conflict. The container name "/{new_name}" is already in use '
                               f'by container "{other}". You have to remove (or rename) that '
                               "container to be able to reuse that name.")
            with self.records.lock(cid):
                cfg = self.records.read_config(cid)
                if cfg["Name"] == "/" + new_name:
                    raise UsageError(f"Renaming a container with the same name as its current "
                                     f"name: {new_name}")
                old = str(cfg["Name"]).lstrip("/")
                cfg["Name"] = "/" + new_name
                self.records.index_name(new_name, cid)
                self.records.write_config(cid, cfg)
                self.records.unindex_name(old, cid)
        return cid


def _signal_number(sig: str | int | None) -> int:
    if sig is None or sig == "":
        return _signal.SIGKILL
    if isinstance(sig, int) or str(sig).isdigit():
        n = int(sig)
        if not 0 < n < 65:
            raise UsageError(f"invalid signal: {sig}")
        return n
    name = str(sig).upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    number = None if name.startswith("SIG_") else getattr(_signal, name, None)  # not SIG_DFL
    if isinstance(number, int):
        return number
    offset = name[9:]
    if name.startswith("SIGRTMIN+") and offset.isdigit() and int(offset) <= 30:
        return _signal.SIGRTMIN + int(offset)
    raise UsageError(f"invalid signal: {sig}")


def _random_name() -> str:
    b = os.urandom(2)
    return f"{_ADJ[b[0] % len(_ADJ)]}_{_NAMES[b[1] % len(_NAMES)]}"


def _paths_or_default(hc: dict, key: str, default: list[str]) -> list[str]:
    """Masked/read-only paths: the config's list, even empty (--privileged,
    systempaths=unconfined); Docker's defaults for a config from before the key."""
    value = hc.get(key)
    return list(default) if value is None else list(value)


def _spec_initial_state() -> dict:
    from .state import initial_state

    return initial_state()


def _restart_arg(cfg: dict) -> str:
    """The shim's ``restart=`` argument: policy, maximum retries, restarts so far."""
    rp = cfg.get("HostConfig", {}).get("RestartPolicy") or {}
    name = rp.get("Name") or "no"
    if name == "no":
        return ""
    return f"{name}:{int(rp.get('MaximumRetryCount') or 0)}:{int(cfg.get('RestartCount') or 0)}"
