"""What a container's process must become: one typed description, written by the caller
and read on the other side of the fork.

    ProcessSpec   what the init and exec's child both turn into (process.become)
    InitSpec      a container start: the process, plus namespaces, rootfs and cgroups
                  (the init), plus what the shim needs to watch and clean up after it
    ExecSpec      an exec: the process, plus the container to enter

The caller (containers.py for a start, exec.py for exec) builds one; seal.spawn carries
``to_wire()`` (a dict of plain values, marshalled into a memfd on the child's fd 0) and
the sealed side rebuilds it with ``from_wire``. The shim, which imports only builtin
modules, reads the same dict by these field names.

These are not ``dataclasses``: the sealed side imports this module before the init
forks, and ``dataclasses`` costs about 12 ms of that interpreter's start. They are
``@record`` classes (core/records.py, which imports nothing): the same ``__init__``,
and type checkers see dataclasses.
"""

from __future__ import annotations

from core.records import fields, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Self


class Record:
    """What the three specs add to a record: the wire form ``seal.spawn`` carries."""

    def to_wire(self) -> dict:
        """Every field, as plain values ``marshal`` can carry."""
        return {name: getattr(self, name) for name in fields(self)}

    @classmethod
    def from_wire(cls, wire: dict) -> Self:
        return cls(**wire)


@record
class ProcessSpec(Record):
    args: list[str]                     # argv; args[0] looked up in the container's $PATH
    env: list[str]                      # KEY=value
    user: str = ""                      # name|uid[:group|gid], from the image's passwd/group
    cwd: str = "/"
    caps: int = 0                       # capability mask the process keeps
    tty: bool = False
    rows: int = 24
    cols: int = 80
    no_new_privs: bool = False
    seccomp: tuple[bytes, dict] | None = None   # (BPF, load options); None: unconfined


@record
class InitSpec(ProcessSpec):
    # the container
    cid: str = ""
    container_dir: str = ""
    run_dir: str = ""                   # $RUN/c/<id>: the attach socket
    state_root: str = ""                # Paths.root (the restart helper, network teardown)
    runtime_root: str = ""              # Paths.run (the network teardown)
    hostname: str = ""
    network_mode: str = "none"          # none, host, bridge, container
    netns: str | None = None            # a netns to join (bridge, container:<ref>)
    # the root file system (rootfs.py)
    lower_dirs: tuple[str, ...] | list[str] = ()   # image layers, base first
    upper_dir: str = ""
    work_dir: str = ""
    merged_dir: str = ""
    links_dir: str = ""                 # short symlinks for a long lowerdir
    readonly_rootfs: bool = False
    etc_files: dict | None = None       # "etc/hosts" -> the container dir's file
    mounts: list[dict] | None = None    # config.json's Mounts (volumes, binds)
    mountpoints_file: str = ""          # where the mount targets we created are listed
    masked_paths: list[str] | None = None
    readonly_paths: list[str] | None = None
    privileged: bool = False
    devices: list | None = None         # host device nodes (--privileged)
    # cgroups: dirs the init joins (cgroup.procs in each); optional ones if it can
    cgroup_version: str = "v2"
    cgroups_required: list[str] | None = None
    cgroups_optional: list[str] | None = None
    memory_cgroup: str | None = None    # the shim's OOM check
    # the shim
    stdin_open: bool = False
    auto_remove: bool = False
    name: str = ""                      # the container's name (no /): its name-index entry goes with --rm
    network_teardown: bool = False      # bridge modes: the shim releases the network
    restart: str = ""                   # "<policy>:<max retries>:<restarts so far>"
    volume_root: str = ""               # $ROOT/volumes
    remove_volumes: list[str] | None = None   # anonymous volumes to remove with --rm
    event_attributes: dict | None = None  # the events' name, image, labels (core/journal.py)


@record
class ExecSpec(ProcessSpec):
    cid: str = ""
    init_pid: int = 0                   # the container's init, checked by start time
    init_start: int | None = None
    cgroups_required: list[str] | None = None
    cgroups_optional: list[str] | None = None
    detach: bool = False
