"""Engine methods for the container lifecycle.

Everything is delegated to :class:`core.runtime.containers.Runtime`, imported on first
use so that ``import core.engine`` stays cheap.

    cid = engine.create(RunOptions(image="busybox", command=["sh"], tty=True, ...))
    cid, client = engine.start(cid, attach=True)       # AttachClient, connected first
    cid, client = engine.run(RunOptions(...), attach=True)
    engine.stop(cid); engine.kill(cid, "TERM"); engine.wait(cid) -> exit code
    engine.rm(cid, force=True); engine.container_prune()
    engine.ps(all=True) -> [summary dicts]; engine.container_inspect(cid) -> dict
    engine.exec(cid, ["sh"], tty=True) -> ExecProcess (PTY master / pipes, wait())
    engine.logs(cid, follow=True) -> iterator of LogEntry(stream, data, time)
    engine.attach(cid) / engine.attach_client(cid) -> AttachClient
    engine.top(cid), engine.rename(cid, name), engine.container_stats(cid)
"""

from __future__ import annotations

from .. import journal

TYPE_CHECKING = False   # typing is not imported at run time: ~5 ms of every `run`
if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..paths import Paths
    from ..types import (
        ContainerInspect,
        ContainerPruneReport,
        ContainerSize,
        ContainerState,
        ContainerStats,
        ContainerSummary,
        ContainerTop,
    )
    from .attach import AttachClient
    from .exec import ExecProcess
    from .introspect import (
        CgroupView,
        NamespaceMatrix,
        NetworkView,
        OverlayView,
        ProcessTable,
        SecurityView,
        StatsSampler,
    )
    from .logs import LogEntry
    from .spec import RunOptions


class ContainerOps:
    """Mixed into core.engine.Engine; `self.paths` and `self.store` are available."""

    paths: Paths

    @property
    def _runtime(self):
        rt = self.__dict__.get("_runtime_impl")
        if rt is None:
            from .containers import Runtime

            rt = self.__dict__["_runtime_impl"] = Runtime(self)
        return rt

    # --- lifecycle -----------------------------------------------------------------------
    def _container_event(self, ref: str, action: str, **extra: object) -> None:
        """Record a container event (core/journal.py) with its name, image and labels."""
        try:
            cfg = self._runtime.records.read_config(self._runtime.resolve(ref))
        except Exception:  # noqa: BLE001 - gone meanwhile: no event
            return
        journal.container(self.paths.root, cfg, action, **extra)

    def create(self, options: RunOptions) -> str:
        """Create a container from ``RunOptions`` (core.runtime.spec); returns its id."""
        cid = self._runtime.create(options)
        self._container_event(cid, "create")
        return cid

    def start(self, ref: str, attach: bool = False, rows: int | None = None,
              cols: int | None = None) -> tuple[str, AttachClient | None]:
        """Start a container; returns (id, AttachClient or None). With ``attach`` the client
        is connected before the payload runs. Raises CommandNotFound (127), CannotInvoke
        (126) or another NutshellError (125) if the command cannot start."""
        if attach:
            self._container_event(ref, "attach")
        return self._runtime.start(ref, attach=attach, rows=rows, cols=cols)

    def run(self, options: RunOptions, attach: bool = False, rows: int | None = None,
            cols: int | None = None) -> tuple[str, AttachClient | None]:
        """create + start; returns (id, AttachClient or None)."""
        cid = self.create(options)
        return self.start(cid, attach=attach, rows=rows, cols=cols)

    def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> str:
        return self._runtime.stop(ref, timeout=timeout, signal=signal)

    def kill(self, ref: str, signal: str | int | None = "KILL") -> str:
        return self._runtime.kill(ref, signal)

    def restart(self, ref: str, timeout: int | None = None) -> str:
        cid = self._runtime.restart(ref, timeout)
        self._container_event(cid, "restart")
        return cid

    def wait(self, ref: str) -> int:
        return self._runtime.wait(ref)

    def rm(self, ref: str, force: bool = False, volumes: bool = False) -> str:
        """Remove a container; ``volumes`` removes its anonymous volumes too (``rm -v``)."""
        return self._runtime.rm(ref, force=force, volumes=volumes)

    def container_prune(self, filters: list[str] | None = None) -> ContainerPruneReport:
        """Remove stopped containers; ``filters``: ``until=``, ``label=``, ``label!=``."""
        return self._runtime.prune(filters)

    def container_size(self, ref: str) -> ContainerSize:
        """``{"SizeRw": bytes the container wrote, "SizeRootFs": that plus its image}``."""
        return self._runtime.size(ref)

    def update(self, ref: str, memory: int | None = None, memory_swap: int | None = None,
               cpus: float | None = None, pids_limit: int | None = None) -> tuple[str, list[str]]:
        """Change a container's memory, CPU and pids limits (live when it runs);
        (id, warnings)."""
        result = self._runtime.update(ref, memory=memory, memory_swap=memory_swap, cpus=cpus,
                                      pids_limit=pids_limit)
        self._container_event(result[0], "update")
        return result

    def pause(self, ref: str) -> str:
        """Freeze every process of a running container (cgroup freezer)."""
        cid = self._runtime.pause(ref)
        self._container_event(cid, "pause")
        return cid

    def unpause(self, ref: str) -> str:
        cid = self._runtime.unpause(ref)
        self._container_event(cid, "unpause")
        return cid

    def rename(self, ref: str, new_name: str) -> str:
        try:
            old = self._runtime.records.read_config(self._runtime.resolve(ref))["Name"]
        except Exception:  # noqa: BLE001 - the rename below reports it
            old = ""
        cid = self._runtime.rename(ref, new_name)
        self._container_event(cid, "rename", oldName=old)
        return cid

    def container_edit_networks(self, ref: str, network: str, connect: bool,
                                aliases: list[str] | None = None) -> str:
        """Connect (or disconnect) a container that is not running to a network: its
        config changes, its next start uses it. ``network_connect`` calls this for such
        containers; a running one is connected live."""
        return self._runtime.edit_networks(ref, network, connect, aliases)

    # --- streams -------------------------------------------------------------------------
    def attach(self, ref: str) -> AttachClient:
        """An AttachClient on a running container (raises Conflict if it is not running)."""
        client = self._runtime.attach(ref)
        self._container_event(ref, "attach")
        return client

    attach_client = attach

    def exec(self, ref: str, cmd: list[str], **kw) -> ExecProcess:
        """Start ``cmd`` in a running container: tty, interactive, env, user, workdir,
        detach, rows, cols. Returns core.runtime.start.exec.ExecProcess."""
        proc = self._runtime.exec(ref, cmd, **kw)
        line = " ".join(cmd)
        self._container_event(ref, "exec_create: " + line)
        self._container_event(ref, "exec_start: " + line)
        return proc

    def logs(self, ref: str, follow: bool = False, tail: int | None = None,
             since: str | None = None, until: str | None = None,
             stop=None) -> Iterator[LogEntry]:
        return self._runtime.logs(ref, follow=follow, tail=tail, since=since, until=until,
                                  stop=stop)

    # --- views ---------------------------------------------------------------------------
    def ps(self, all: bool = False) -> list[ContainerSummary]:
        return self._runtime.ps(all=all)

    containers = ps

    def container(self, ref: str) -> str:
        """The full id of a container given by name, id or id prefix."""
        return self._runtime.resolve(ref)

    def container_state(self, ref: str) -> ContainerState:
        rt = self._runtime
        return rt.state(rt.resolve(ref))

    def container_inspect(self, ref: str) -> ContainerInspect:
        return self._runtime.inspect(ref)

    def top(self, ref: str, ps_args: str | None = None) -> ContainerTop:
        """The container's processes. With ``ps_args`` (``docker top C aux``): the host's
        ``ps`` run with them, its rows kept for the container's processes (as dockerd)."""
        return self._runtime.top(ref, ps_args)

    def container_stats(self, ref: str) -> ContainerStats:
        return self._runtime.stats(ref)

    # --- teaching views (core/runtime/introspect.py) -------------------------------------
    def container_namespaces(self, ref: str) -> NamespaceMatrix:
        """NamespaceMatrix: the init's 8 namespaces vs the host's, shared or new."""
        from .introspect import namespaces

        return namespaces(self, ref)

    def container_processes(self, ref: str) -> ProcessTable:
        """ProcessTable: every process with its host PID and container PID (NSpid)."""
        from .introspect import processes

        return processes(self, ref)

    def container_overlay(self, ref: str) -> OverlayView:
        """OverlayView: lowerdir entries mapped to image layers, upper/work, whiteouts."""
        from .introspect import overlay

        return overlay(self, ref)

    def container_cgroup(self, ref: str) -> CgroupView:
        """CgroupView: the cgroup files holding limits, beside the ones holding usage."""
        from .introspect import cgroup

        return cgroup(self, ref)

    def container_network(self, ref: str) -> NetworkView:
        """NetworkView: eth0 <-> host veth <-> bridge, addresses and routes."""
        from .introspect import network

        return network(self, ref)

    def container_security(self, ref: str) -> SecurityView:
        """SecurityView: capabilities, no_new_privs, seccomp mode and what it refuses."""
        from .introspect import security

        return security(self, ref)

    def container_stats_sampler(self) -> StatsSampler:
        """A StatsSampler: ``sample(ids)`` -> {id: container_stats dict or None}, for
        callers that sample many containers every second (the app's Stats pane)."""
        from .introspect import StatsSampler

        return StatsSampler(self)
