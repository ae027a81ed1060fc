"""Read-only views of containers: ps, size, inspect, top, stats."""

from __future__ import annotations

import os
import time

from ..durations import human_duration
from ..errors import Conflict, NotFound, NutshellError, RuntimeFailure, UsageError
from ..importcost import LazyPattern
from .runtime_base import RuntimeBase
from .state import init_alive

_BOOT_TIME = None


class Views(RuntimeBase):
    """ps, size, inspect, top and stats."""
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
        mode = cfg["HostConfig"].get("NetworkMode")
        if mode not in ("none", "host"):
            try:
                net = self.engine.container_network_settings(cid)
            except Exception:  # noqa: BLE001
                net = None
        if net is None:
            net = {"SandboxKey": "", "Networks": _configured_networks(cfg), "Ports": {},
                   "IPAddress": "", "Gateway": "", "MacAddress": ""}
        return {
            "Id": cid, "Created": cfg["Created"], "Path": cfg["Path"], "Args": cfg["Args"],
            "State": state, "Image": cfg.get("ImageID", ""),
            "ResolvConfPath": cfg["ResolvConfPath"], "HostnamePath": cfg["HostnamePath"],
            "HostsPath": cfg["HostsPath"], "LogPath": cfg["LogPath"], "Name": cfg["Name"],
            "RestartCount": int(cfg.get("RestartCount") or 0), "Driver": "overlay", "Platform": "linux",
            "MountLabel": "",
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

    def top(self, ref: str, ps_args: str | None = None) -> dict:
        cid = self.resolve(ref)
        st = self.state(cid)
        if st.get("Status") not in ("running", "paused") or not init_alive(st):
            raise Conflict(f"container {cid} is not running")
        pids = container_pids(st["Pid"])
        if ps_args:
            return ps_top(ps_args, pids)
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
            try:
                out["Network"] = self.engine.container_net_stats(cid, pid=st["Pid"])
            except Exception:  # noqa: BLE001 - no network numbers is not an error
                pass
        return out


_PS_PID_OVERRIDE = LazyPattern(r"\s+([^\s]*)=\s*(PID[^\s]*)")     # only for top


def ps_top(ps_args: str, pids: list[int]) -> dict:
    """dockerd's ``top`` with ps arguments: ``ps ARGS -qPIDS`` (``ps ARGS`` when ps refuses
    ``-q`` with them), the rows whose PID is the container's (a thread row ``-`` follows its
    process), the last column joined. The arguments go to ps as words, never to a shell."""
    import subprocess

    for m in _PS_PID_OVERRIDE.finditer(ps_args):
        if m.group(1) != "pid":
            raise UsageError(f'specifying "{m.group(1)}={m.group(2)}" is not allowed')
    args = ps_args.split(" ")
    pid_arg = "-q" + ",".join(str(p) for p in pids)
    env = dict(os.environ, LC_ALL="C")
    try:
        out = subprocess.run(["ps", *args, pid_arg], capture_output=True, env=env, timeout=30)
        if out.returncode != 0:
            out = subprocess.run(["ps", *args], capture_output=True, env=env, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeFailure(f"ps: {e}") from None
    if out.returncode != 0:
        first = out.stderr.decode(errors="replace").split("\n", 1)[0]
        raise RuntimeFailure(f"ps: {first or f'exit status {out.returncode}'}")
    lines = out.stdout.decode(errors="replace").split("\n")
    titles = lines[0].split()
    if "PID" not in titles:
        raise UsageError("Couldn't find PID field in ps output")
    at = titles.index("PID")
    wanted = set(pids)
    rows: list[list[str]] = []
    inside = False
    for line in lines[1:]:
        fields = line.split()
        if not fields or len(fields) <= at:
            continue
        if fields[at] == "-":
            if inside:
                rows.append(_ps_fields(fields, len(titles)))
            continue
        try:
            pid = int(fields[at])
        except ValueError:
            raise RuntimeFailure(f"Unexpected pid '{fields[at]}'") from None
        inside = pid in wanted
        if inside:
            rows.append(_ps_fields(fields, len(titles)))
    return {"Titles": titles, "Processes": rows}


def _ps_fields(fields: list[str], n: int) -> list[str]:
    return fields[:n - 1] + [" ".join(fields[n - 1:])]


def _configured_networks(cfg: dict) -> dict:
    """The networks a container that is not running will join, as inspect shows them:
    its network mode, the networks it was created with or connected to since."""
    hc = cfg["HostConfig"]
    mode = hc.get("NetworkMode") or ""
    if cfg.get("NetworksEmptied"):
        return {}
    opts = hc.get("NetworkOptions") or {}
    nets = [n for n in opts.get("networks") or [] if n and n != "default"]
    if mode and mode not in nets and not (mode == "default" and "bridge" in nets):
        nets.insert(0, mode)
    per = opts.get("net_aliases") or {}
    common = list(opts.get("aliases") or [])
    out = {}
    for n in nets:
        aliases = per.get(n, common if n not in ("bridge", "default") else [])
        out[n] = {"Aliases": list(aliases) or None} if n not in ("none", "host") else {}
    return out


def _parse_time(value: str | None) -> float | None:
    if not value or value.startswith("0001-"):
        return None
    from ..timestamps import parse_rfc3339

    return parse_rfc3339(value)


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
