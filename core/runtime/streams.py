"""A running container's streams: attach (to its shim), exec (a new process in it), logs."""

from __future__ import annotations

import os

from ..errors import Conflict, NotFound, RuntimeFailure, UsageError
from . import security as _security
from . import spec as _spec
from .attach import AttachClient
from .runtime_base import RuntimeBase, cgroup_dirs
from .state import init_alive


class Streams(RuntimeBase):
    """attach, exec and logs."""
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
        required, optional = cgroup_dirs(cg)
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
