"""The container lifecycle: create, start, stop, kill, rm, wait, attach, exec, logs, top,
inspect, rename, prune, ps, stats.

``Runtime(engine)`` does the work; ``core/runtime/api.py`` exposes it as Engine methods.
A container is a directory (config.json, state.json, upper/work/merged, its log and
name files) plus, while it runs, a shim process and its runtime dir (attach socket).
"""

from __future__ import annotations

import os
import re
import shutil
import signal as _signal
import socket
import time

from ..errors import Conflict, NotFound, NutshellError, RuntimeFailure, UsageError
from . import security as _security
from . import spec as _spec
from .attach import AttachClient
from .state import Records, init_alive, kill_verified, now_rfc3339, wait_gone

NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


class ImageMissing(NotFound):
    """The image is not in the store (the CLI may pull it and try again)."""


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
    try:
        return int(getattr(_signal.Signals, name))
    except AttributeError:
        if name.startswith("SIGRTMIN+"):
            return _signal.SIGRTMIN + int(name[9:])
        raise UsageError(f"invalid signal: {sig}") from None


def human_duration(seconds: float) -> str:
    """go-units HumanDuration (what Docker's Status column uses)."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def _parse_time(value: str | None) -> float | None:
    if not value or value.startswith("0001-"):
        return None
    from .logs import parse_rfc3339

    return parse_rfc3339(value)


_ADJ = ("admiring", "agitated", "amazing", "awesome", "bold", "brave", "busy", "clever",
        "cool", "dazzling", "eager", "elegant", "epic", "festive", "focused", "friendly",
        "gifted", "happy", "hopeful", "jolly", "keen", "kind", "lucid", "modest", "nifty",
        "pensive", "quirky", "relaxed", "serene", "sharp", "stoic", "tender", "vibrant",
        "wizardly", "zealous")
_NAMES = ("babbage", "bohr", "curie", "darwin", "dijkstra", "einstein", "euler", "fermi",
          "feynman", "galileo", "hamilton", "hopper", "hypatia", "kepler", "knuth",
          "lamarr", "lovelace", "meitner", "newton", "noether", "pascal", "ritchie",
          "shannon", "thompson", "torvalds", "turing", "wozniak", "yalow")


def _random_name() -> str:
    b = os.urandom(2)
    return f"{_ADJ[b[0] % len(_ADJ)]}_{_NAMES[b[1] % len(_NAMES)]}"


class Runtime:
    def __init__(self, engine):
        self.engine = engine
        self.paths = engine.paths
        self.records = Records(engine.paths)

    # ================================================================ lookup and state
    def resolve(self, ref: str) -> str:
        return self.records.resolve(ref)

    def state(self, cid: str) -> dict:
        return self.records.state(cid, on_reconciled=self._after_reconcile)

    def _after_reconcile(self, cid: str, st: dict) -> None:
        """The shim died: undo what it would have undone at exit."""
        try:
            cfg = self.records.read_config(cid)
        except NotFound:
            return
        self._release(cid, cfg)
        if cfg.get("HostConfig", {}).get("AutoRemove"):
            self._remove_files(cid)
            self._remove_volumes(cfg)

    # ================================================================ create
    def _image(self, opts: _spec.RunOptions):
        """(image id, chain ids, lower dirs base first, image config, display ref)."""
        if opts.rootfs:
            root = os.path.abspath(opts.rootfs)
            if not os.path.isdir(root):
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
            new_volumes: list[str] = []
            if requested or image_cfg.get("Volumes"):
                from ..volumes.mounts import prepare

                config["Mounts"], new_volumes = prepare(self.engine, requested,
                                                        image_cfg.get("Volumes"), lower)
                anon = {m["Destination"]: {} for m in config["Mounts"] if m.get("Anonymous")}
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
                self.records.write_config(cid, config)  # last: makes the container visible
            except BaseException:
                shutil.rmtree(cdir, ignore_errors=True)
                self._remove_volumes(config, only=new_volumes)
                raise
        return cid

    # ================================================================ start
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
        if lower and all(os.path.isdir(d) for d in lower):
            return lower
        if cfg.get("ImageID"):
            img = self.engine.store.image(cfg["ImageID"])
            lower = self.engine.store.layer_dirs(img)
            if lower:
                return lower
        raise NotFound(f"the image layers of container {cfg['Id'][:12]} are gone")

    def _seccomp_filter(self, cfg: dict, conf) -> tuple[bytes, dict] | None:
        """The container's compiled seccomp filter and its load options (None:
        unconfined); compiled filters are cached in the runtime dir (root's only)."""
        return _security.seccomp_filter(conf, list(cfg.get("Capabilities") or []),
                                        os.path.join(self.paths.run, "seccomp"))

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
            required, optional = _cgroup_dirs(cg)
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
                network_teardown=net["mode"] == "bridge", restart=_restart_arg(cfg),
                volume_root=self.paths.volumes, remove_volumes=_anonymous_volumes(cfg))
            if attach:
                client_end, shim_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                client = client_end
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

    # ---------------------------------------------------------------- network hook
    def _setup_network(self, cid: str, cfg: dict):
        """The network hook: returns ({"mode": "none"|"host"|"bridge", "netns": path|None},
        finish) where ``finish`` is None or the rest of a bridge set-up, which ``launch``
        runs while the init prepares the rootfs (the payload waits for it).

        none: the init unshares a new netns and brings lo up. host: no new netns.
        bridge / a user network: the network area pins a netns with a veth and an address
        (``engine.setup_container_network``) and the init joins it with setns.
        container:<ref>: join that container's netns. Every mode gets /etc/hosts and
        /etc/resolv.conf written into the container dir by the network area.
        """
        hc = cfg["HostConfig"]
        mode = hc.get("NetworkMode") or "default"
        if mode == "default":
            mode = "bridge" if hasattr(self.engine, "setup_container_network") else "none"
        name = cfg["Name"].lstrip("/")
        hostname = cfg["Config"]["Hostname"]
        if mode.startswith("container:"):
            other = self.resolve(mode.split(":", 1)[1])
            ost = self.state(other)
            if ost.get("Status") != "running":
                raise Conflict(f"cannot join network of a non running container: {other[:12]}")
            self._write_name_files(cid, hostname, "none")
            return {"mode": "container", "netns": f"/proc/{ost['Pid']}/ns/net"}, None
        setup = getattr(self.engine, "setup_container_network", None)
        kw = dict(hc.get("NetworkOptions") or {})
        nets = [n for n in (kw.pop("networks", None) or []) if n and n != "default"]
        if mode in ("none", "host"):
            if setup is not None:
                setup(cid, name=name, networks=[mode], hostname=hostname,
                      **{k: v for k, v in kw.items() if k in ("dns", "dns_search",
                                                               "dns_options", "add_hosts",
                                                               "ports")})
            else:
                self._write_name_files(cid, hostname, mode)
            return {"mode": mode, "netns": None}, None
        if setup is None:
            raise UsageError(f"network {mode} is not available", hint="use --network none or host")
        if not nets or nets[0] != mode:
            nets = [mode] + [n for n in nets if n != mode]
        kw["exposed"] = list(dict.fromkeys(
            list((cfg["Config"].get("ExposedPorts") or {}).keys()) + list(kw.get("exposed") or [])))
        prepare = getattr(self.engine, "prepare_container_network", None)
        if prepare is None:
            settings = setup(cid, name=name, networks=nets, hostname=hostname, **kw)
            return {"mode": "bridge", "netns": settings.get("SandboxKey")}, None
        pending = prepare(cid, name=name, networks=nets, hostname=hostname, **kw)
        return {"mode": "bridge", "netns": pending.netns}, pending.finish

    def _write_name_files(self, cid: str, hostname: str, mode: str) -> None:
        cdir = self.paths.container(cid)
        with open(os.path.join(cdir, "hosts"), "w") as f:
            f.write("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        try:
            with open("/etc/resolv.conf") as f:
                resolv = f.read()
        except OSError:
            resolv = ""
        with open(os.path.join(cdir, "resolv.conf"), "w") as f:
            f.write(resolv)

    def _teardown_network(self, cid: str, cfg: dict) -> None:
        mode = cfg.get("HostConfig", {}).get("NetworkMode") or "default"
        if mode in ("none", "host") or mode.startswith("container:"):
            return
        teardown = getattr(self.engine, "teardown_container_network", None)
        if teardown is not None:
            try:
                teardown(cid)
            except Exception:  # noqa: BLE001 - best effort; rm tries again
                pass

    # ================================================================ release / remove
    def _release(self, cid: str, cfg: dict) -> None:
        """What a stopped container no longer needs: cgroup, network, runtime dir."""
        from . import cgroups as _cg

        cg = _cg.Cgroup.open(f"nutshell/{cid}")
        if cg is not None:
            try:
                cg.destroy()
            except NutshellError:
                pass
        self._teardown_network(cid, cfg)
        shutil.rmtree(self.paths.run_container(cid), ignore_errors=True)

    def _remove_files(self, cid: str) -> None:
        shutil.rmtree(self.paths.container(cid), ignore_errors=True)
        shutil.rmtree(self.paths.run_container(cid), ignore_errors=True)

    def _remove_volumes(self, cfg: dict, only: list[str] | None = None) -> list[str]:
        """Remove the container's anonymous volumes no other container uses (``rm -v``,
        ``--rm``, a failed create); ``only`` limits it to those names."""
        names = _anonymous_volumes(cfg)
        if only is not None:
            names = [n for n in names if n in only]
        if not names:
            return []
        from ..volumes.store import Volumes

        try:
            return Volumes(self.paths).remove_unused(names)
        except NutshellError:
            return []

    # ================================================================ stop / kill / wait
    def _attach_socket(self, cid: str) -> str:
        return os.path.join(self.paths.run_container(cid), "attach.sock")

    def _connect(self, cid: str) -> AttachClient | None:
        try:
            return AttachClient.connect(self._attach_socket(cid))
        except OSError:
            return None

    def _wait_exit(self, cid: str, st: dict, client: AttachClient | None,
                   timeout: float | None) -> bool:
        """Wait until the container has exited and its shim has recorded it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if client is not None:
            try:
                while client.exit_code is None:
                    if deadline is not None:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return False
                        client.sock.settimeout(left)
                    try:
                        if client.read() is None:
                            break
                    except (TimeoutError, BlockingIOError):
                        return False
            finally:
                client.sock.settimeout(None)
        # the shim is exiting (or gone): make sure it is
        left = 10.0 if deadline is None else max(0.5, deadline - time.monotonic())
        wait_gone(st.get("ShimPid") or 0, st.get("ShimStartTime"), left)
        self.state(cid)
        return True

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
                kill_verified(st["Pid"], st.get("PidStartTime"), sig)
                self._thaw_if_paused(cid, st)  # a paused container gets to handle it
                if self._wait_exit(cid, st, client, None if timeout < 0 else float(timeout)):
                    return cid
            kill_verified(st["Pid"], st.get("PidStartTime"), _signal.SIGKILL)
            self._thaw_if_paused(cid, st)  # v1 frozen tasks die only once thawed
            self._wait_exit(cid, st, client, 30.0)
            if client is not None:
                client.close()
        return cid

    def kill(self, ref: str, signal: str | int | None = "KILL") -> str:
        cid = self.resolve(ref)
        st = self.state(cid)
        if st.get("Status") not in ("running", "paused"):
            raise Conflict(f"Cannot kill container: {ref}: container {cid} is not running")
        sig = _signal_number(signal)
        if sig in (_signal.SIGKILL, _signal.SIGTERM, _signal.SIGINT):
            self._mark_stopped(cid)  # Docker: a kill by the user is not restarted either
        if not kill_verified(st["Pid"], st.get("PidStartTime"), sig):
            raise Conflict(f"Cannot kill container: {ref}: container {cid} is not running")
        if sig == _signal.SIGKILL:
            self._thaw_if_paused(cid, st)  # other signals wait for unpause, as in Docker
        return cid

    # ================================================================ restart policies
    def _mark_stopped(self, cid: str) -> None:
        """The user stopped it: the shim and the restart helper leave it stopped."""
        try:
            with open(os.path.join(self.paths.container(cid), "stopped"), "w"):
                pass
        except OSError:
            pass

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

    # ================================================================ update
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

    # ================================================================ pause / unpause
    def pause(self, ref: str) -> str:
        """Freeze every process of a running container with the cgroup freezer (v1
        ``freezer.state``, v2 ``cgroup.freeze``), as ``docker pause``."""
        from . import cgroups as _cg

        cid = self.resolve(ref)
        with self.records.oplock(cid):
            st = self.state(cid)
            if st.get("Status") == "paused":
                raise Conflict(f"Container {cid} is already paused")
            if st.get("Status") != "running" or not init_alive(st):
                raise Conflict(f"Container {cid} is not running")
            cg = _cg.Cgroup.open(f"nutshell/{cid}")
            if cg is None:
                raise RuntimeFailure(f"the cgroup of container {cid[:12]} is gone")
            cg.freeze()
            if not self._set_paused(cid, True):  # it exited meanwhile
                cg.thaw()
                raise Conflict(f"Container {cid} is not running")
        return cid

    def unpause(self, ref: str) -> str:
        from . import cgroups as _cg

        cid = self.resolve(ref)
        with self.records.oplock(cid):
            st = self.state(cid)
            if st.get("Status") != "paused":
                raise Conflict(f"Container {cid} is not paused")
            cg = _cg.Cgroup.open(f"nutshell/{cid}")
            if cg is not None:
                cg.thaw()
            self._set_paused(cid, False)
        return cid

    def _set_paused(self, cid: str, paused: bool) -> bool:
        """Record paused/running in state.json under the lock the shim writes it with;
        False when the container is no longer running (the shim recorded its exit)."""
        with self.records.lock(cid):
            st = self.records.read_state_raw(cid)
            if st.get("Status") not in ("running", "paused"):
                return False
            st["Status"] = "paused" if paused else "running"
            st["Paused"] = paused
            self.records.write_state(cid, st)
        return True

    def _thaw_if_paused(self, cid: str, st: dict) -> None:
        if st.get("Status") != "paused":
            return
        from . import cgroups as _cg

        cg = _cg.Cgroup.open(f"nutshell/{cid}")
        try:
            if cg is not None and cg.is_frozen():
                cg.thaw()
        except NutshellError:
            pass
        self._set_paused(cid, False)

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

    # ================================================================ rm / prune
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
                kill_verified(st["Pid"], st.get("PidStartTime"), _signal.SIGKILL)
                self._thaw_if_paused(cid, st)
                self._wait_exit(cid, st, client, 30.0)
                if client is not None:
                    client.close()
            self._release(cid, cfg)
            self._remove_files(cid)
        if volumes:
            self._remove_volumes(cfg)
        return cid

    def prune(self, filters: list[str] | None = None) -> dict:
        """Remove stopped containers (``filters``: ``until=``, ``label=``, ``label!=``)."""
        from .. import prunefilter
        from ..fsutil import dir_size
        from .logs import parse_rfc3339

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
                cfg["Name"] = "/" + new_name
                self.records.write_config(cid, cfg)
        return cid

    # ================================================================ attach / exec / logs
    def attach(self, ref: str) -> AttachClient:
        cid = self.resolve(ref)
        st = self.state(cid)
        if st.get("Status") not in ("running", "paused"):
            raise Conflict("You cannot attach to a stopped container, start it first")
        client = self._connect(cid)
        if client is None:
            st = self.state(cid)
            raise Conflict("You cannot attach to a stopped container, start it first")
        return client

    def exec(self, ref: str, cmd: list[str], *, tty: bool = False, interactive: bool = False,
             env: list[str] | None = None, user: str | None = None, workdir: str | None = None,
             detach: bool = False, rows: int = 24, cols: int = 80, privileged: bool = False):
        from . import cgroups as _cg
        from .caps import NAMES, mask
        from .start.exec import exec_in

        if not cmd:
            raise UsageError("exec requires at least 1 command argument")
        cid = self.resolve(ref)
        st = self.state(cid)
        if st.get("Status") == "paused":
            raise Conflict(f"Container {cid} is paused, unpause the container before exec")
        if st.get("Status") != "running" or not init_alive(st):
            raise Conflict(f"container {cid} is not running")
        cfg = self.records.read_config(cid)
        c = cfg["Config"]
        envs = _spec.merge_env(list(c.get("Env") or []), _spec.resolve_env(list(env or [])))
        if tty and not any(e.startswith("TERM=") for e in envs):
            envs.append("TERM=xterm")
        cg = _cg.Cgroup.open(f"nutshell/{cid}")
        if cg is None:  # never run an exec'd process outside the container's limits
            raise RuntimeFailure(f"cannot exec in container {cid[:12]}: its cgroup is gone")
        required, optional = _cgroup_dirs(cg)
        caps = mask(NAMES if privileged else (cfg.get("Capabilities") or []))
        if not cg.devices_enforced and not cfg["HostConfig"].get("Privileged"):
            caps &= ~(1 << 27)
        if workdir and not workdir.startswith("/"):
            raise UsageError(f"the working directory '{workdir}' is invalid, it needs to be an "
                             "absolute path")
        conf = _security.confinement(cfg["HostConfig"])
        return exec_in(cid, st["Pid"], st.get("PidStartTime"), required, list(cmd), envs,
                       user if user is not None else (c.get("User") or ""),
                       workdir or c.get("WorkingDir") or "/", caps, tty=tty,
                       interactive=interactive, detach=detach, rows=rows, cols=cols,
                       cgroups_optional=optional, no_new_privs=conf.no_new_privileges,
                       seccomp=self._seccomp_filter(cfg, conf))

    def logs(self, ref: str, *, follow: bool = False, tail: int | None = None,
             since: str | None = None, until: str | None = None, stop=None):
        from . import logs as _logs

        cid = self.resolve(ref)
        path = os.path.join(self.paths.container(cid), f"{cid}-json.log")

        def running() -> bool:
            try:
                return self.state(cid).get("Status") in ("running", "paused")
            except NotFound:
                return False

        return _logs.read(path, tail=tail, since=_logs.parse_since(since),
                          until=_logs.parse_since(until), follow=follow, running=running,
                          stop=stop)

    # ================================================================ views
    def _summary(self, cid: str, cfg: dict, st: dict, now: float) -> dict:
        status = st.get("Status", "created")
        if status == "running":
            started = _parse_time(st.get("StartedAt")) or now
            text = "Up " + human_duration(now - started)
        elif status == "paused":
            started = _parse_time(st.get("StartedAt")) or now
            text = "Up " + human_duration(now - started) + " (Paused)"
        elif status == "exited":
            finished = _parse_time(st.get("FinishedAt")) or now
            text = f"Exited ({st.get('ExitCode', 0)}) {human_duration(now - finished)} ago"
        elif status == "dead":
            text = "Dead"
        else:
            text = "Created"
        argv = [cfg.get("Path", "")] + list(cfg.get("Args") or [])
        hc = cfg.get("HostConfig", {})
        return {
            "Id": cid, "ID": cid[:12], "Names": cfg.get("Name", "").lstrip("/"),
            "Image": cfg.get("Config", {}).get("Image", ""), "ImageID": cfg.get("ImageID", ""),
            "Command": " ".join(argv), "Created": cfg.get("Created", ""),
            "State": status, "Status": text, "ExitCode": st.get("ExitCode", 0),
            "Pid": st.get("Pid", 0), "StartedAt": st.get("StartedAt"),
            "FinishedAt": st.get("FinishedAt"), "OOMKilled": st.get("OOMKilled", False),
            "Labels": cfg.get("Config", {}).get("Labels") or {},
            "Networks": hc.get("NetworkMode", ""), "Ports": "",
            "AutoRemove": bool(hc.get("AutoRemove")),
        }

    def ps(self, all: bool = False) -> list[dict]:
        out = []
        now = time.time()
        for cid in self.records.ids():
            try:
                cfg = self.records.read_config(cid)
                st = self.state(cid)
            except (NotFound, ValueError):
                continue
            if not all and st.get("Status") not in ("running", "paused"):
                continue
            out.append(self._summary(cid, cfg, st, now))
        out.sort(key=lambda s: s["Created"], reverse=True)
        return out

    def size(self, ref: str) -> dict:
        """Docker's ``SizeRw`` (bytes in the container's upper dir: what it wrote) and
        ``SizeRootFs`` (that plus its image)."""
        from ..fsutil import dir_size

        cid = self.resolve(ref)
        cfg = self.records.read_config(cid)
        rw = dir_size(os.path.join(self.paths.container(cid), "upper"))
        base = 0
        if cfg.get("ImageID"):
            try:
                base = int(self.engine.store.image(cfg["ImageID"]).size or 0)
            except NutshellError:
                base = 0
        else:
            base = sum(dir_size(d) for d in cfg.get("LowerDirs") or [] if os.path.isdir(d))
        return {"SizeRw": rw, "SizeRootFs": base + rw}

    def inspect(self, ref: str) -> dict:
        cid = self.resolve(ref)
        cfg = self.records.read_config(cid)
        st = self.state(cid)
        cdir = self.paths.container(cid)
        state = {k: st.get(k) for k in ("Status", "Running", "Paused", "Restarting",
                                         "OOMKilled", "Dead", "Pid", "ExitCode", "Error",
                                         "StartedAt", "FinishedAt")}
        lower = cfg.get("LowerDirs") or []
        net = None
        getter = getattr(self.engine, "container_network_settings", None)
        mode = cfg["HostConfig"].get("NetworkMode")
        if getter is not None and mode not in ("none", "host"):
            try:
                net = getter(cid)
            except Exception:  # noqa: BLE001
                net = None
        if net is None:
            net = {"SandboxKey": "", "Networks": {mode: {}} if mode else {}, "Ports": {},
                   "IPAddress": "", "Gateway": "", "MacAddress": ""}
        return {
            "Id": cid, "Created": cfg["Created"], "Path": cfg["Path"], "Args": cfg["Args"],
            "State": state, "Image": cfg.get("ImageID", ""),
            "ResolvConfPath": cfg["ResolvConfPath"], "HostnamePath": cfg["HostnamePath"],
            "HostsPath": cfg["HostsPath"], "LogPath": cfg["LogPath"], "Name": cfg["Name"],
            "RestartCount": int(cfg.get("RestartCount") or 0), "Driver": "overlay", "Platform": "linux", "MountLabel": "",
            "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None,
            "HostConfig": cfg["HostConfig"],
            "GraphDriver": {"Name": "overlay", "Data": {
                "LowerDir": ":".join(reversed(lower)),
                "UpperDir": os.path.join(cdir, "upper"), "WorkDir": os.path.join(cdir, "work"),
                "MergedDir": os.path.join(cdir, "merged")}},
            "Mounts": cfg.get("Mounts") or [],
            "Config": cfg["Config"],
            "NetworkSettings": net,
            "Nutshell": {
                "ShimPid": st.get("ShimPid") or 0,
                "Capabilities": cfg.get("Capabilities") or [],
                "LayerChainIDs": cfg.get("LayerChainIDs") or [],
                "RuntimeDir": self.paths.run_container(cid),
                "AttachSocket": self._attach_socket(cid),
                "Cgroup": f"nutshell/{cid}",
                "Rootfs": cfg.get("RootfsDir"),
            },
        }

    def top(self, ref: str) -> dict:
        cid = self.resolve(ref)
        st = self.state(cid)
        if st.get("Status") not in ("running", "paused") or not init_alive(st):
            raise Conflict(f"container {cid} is not running")
        pids = container_pids(st["Pid"])
        return {"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
                "Processes": [row for row in (_ps_row(p) for p in pids) if row]}

    def stats(self, ref: str) -> dict:
        from . import cgroups as _cg

        cid = self.resolve(ref)
        cfg = self.records.read_config(cid)
        st = self.state(cid)
        out = {"Id": cid, "Name": cfg["Name"].lstrip("/"), "State": st.get("Status"),
               "Pid": st.get("Pid", 0)}
        cg = _cg.Cgroup.open(f"nutshell/{cid}")
        out.update(cg.stats().to_dict() if cg is not None else {})
        if st.get("Status") == "running":
            getter = getattr(self.engine, "container_net_stats", None)
            if getter is not None:
                try:
                    out["Network"] = getter(cid, pid=st["Pid"])
                except Exception:  # noqa: BLE001
                    pass
        return out


def _paths_or_default(hc: dict, key: str, default: list[str]) -> list[str]:
    """Masked/read-only paths: the config's list, even empty (--privileged,
    systempaths=unconfined); Docker's defaults for a config from before the key."""
    value = hc.get(key)
    return list(default) if value is None else list(value)


def _cgroup_dirs(cg) -> tuple[list[str], list[str]]:
    """(dirs a container process must join, dirs it joins if it can): every hierarchy's
    dir once; a hybrid host's unified dir is optional (it may hold no controllers)."""
    required: list[str] = []
    optional: list[str] = []
    seen = set()
    for key, d in cg.paths.items():
        real = os.path.realpath(d)
        if real in seen:
            continue
        seen.add(real)
        (optional if key == "unified" and cg.version == "hybrid" else required).append(d)
    return required, optional


def _anonymous_volumes(cfg: dict) -> list[str]:
    return [m["Name"] for m in cfg.get("Mounts") or []
            if m.get("Type") == "volume" and m.get("Anonymous") and m.get("Name")]


def _spec_initial_state() -> dict:
    from .state import initial_state

    return initial_state()


# --- processes of a container --------------------------------------------------------------

def container_pids(init_pid: int) -> list[int]:
    """Every host pid in the init's PID namespace, init first."""
    try:
        target = os.stat(f"/proc/{init_pid}/ns/pid").st_ino
    except OSError:
        return []
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}/ns/pid").st_ino == target:
                pids.append(int(name))
        except OSError:
            continue
    pids.sort(key=lambda p: (p != init_pid, p))
    return pids


_BOOT_TIME = None


def _boot_time() -> float:
    global _BOOT_TIME
    if _BOOT_TIME is None:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    _BOOT_TIME = float(line.split()[1])
                    break
            else:
                _BOOT_TIME = 0.0
    return _BOOT_TIME


def _ps_row(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except OSError:
        return None
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    ppid = fields[1]
    tty_nr = int(fields[4])
    hz = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) // hz
    start = _boot_time() + int(fields[19]) / hz
    uid = next((line.split()[1] for line in status.splitlines() if line.startswith("Uid:")), "0")
    try:
        import pwd

        user = pwd.getpwuid(int(uid)).pw_name
    except (KeyError, ValueError):
        user = uid
    if tty_nr:
        major, minor = os.major(tty_nr), os.minor(tty_nr)
        tty = f"pts/{minor}" if 136 <= major <= 143 else f"tty{minor}"
    else:
        tty = "?"
    cmd = cmdline.replace(b"\0", b" ").decode(errors="replace").strip() or f"[{comm}]"
    return [user, str(pid), ppid, "0", time.strftime("%H:%M", time.localtime(start)), tty,
            "%02d:%02d:%02d" % (cpu // 3600, cpu // 60 % 60, cpu % 60), cmd]


def _restart_arg(cfg: dict) -> str:
    """The shim's ``restart=`` argument: policy, maximum retries, restarts so far."""
    rp = cfg.get("HostConfig", {}).get("RestartPolicy") or {}
    name = rp.get("Name") or "no"
    if name == "no":
        return ""
    return f"{name}:{int(rp.get('MaximumRetryCount') or 0)}:{int(cfg.get('RestartCount') or 0)}"
