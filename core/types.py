"""The shapes Engine methods return where the result is Docker's JSON.

Every type here is a ``TypedDict``: at run time the value is the plain dict Docker's
Engine API returns (the same key names), so the CLI's ``--format`` templates, the app and
an API server consume it as is, and mypy checks the keys. Results with no Docker shape
are dataclasses next to the code that makes them (``Image``, ``LoadResult``,
``BuildResult``, ``ImageTree``, ...).

``total=False`` marks a shape whose keys are not all always present; nested objects that
carry a container's whole configuration (``Config``, ``HostConfig``) stay ``dict``.
"""

from __future__ import annotations

from typing import Any, TypedDict

# --------------------------------------------------------------------------- engine


class Version(TypedDict):
    """``version``: Docker's ``/version`` keys plus Python's and the runtime dir."""

    Version: str
    ApiVersion: str
    Os: str
    Arch: str
    KernelVersion: str
    PythonVersion: str
    Root: str
    RuntimeDir: str


class Info(TypedDict):
    """``info``: Docker's ``/info`` keys this runtime can fill."""

    Containers: int
    ContainersRunning: int
    ContainersPaused: int
    ContainersStopped: int
    Images: int
    Driver: str
    LoggingDriver: str
    CgroupDriver: str
    CgroupVersion: str
    NetworkTool: str
    ServerVersion: str
    KernelVersion: str
    OperatingSystem: str
    OSType: str
    Architecture: str
    NCPU: int
    MemTotal: int
    Name: str
    DockerRootDir: str
    RuntimeDir: str
    PythonVersion: str
    Runtime: str


# --------------------------------------------------------------------------- events


class EventActor(TypedDict):
    """What an event is about: an ID and string attributes (name, image, exitCode...)."""

    ID: str
    Attributes: dict[str, str]


class _EventMessageBase(TypedDict):
    Type: str
    Action: str
    Actor: EventActor
    scope: str
    time: int
    timeNano: int


# Docker's legacy fields, on container and image events only ("from" is a keyword)
_EventLegacy = TypedDict("_EventLegacy", {"status": str, "id": str, "from": str},
                         total=False)


class EventMessage(_EventMessageBase, _EventLegacy):
    """``events``: one of Docker's ``events.Message`` (core/journal.py writes them)."""


# --------------------------------------------------------------------------- images


class ImageLayerInfo(TypedDict):
    Digest: str
    DiffID: str
    ChainID: str
    MediaType: str
    CompressedSize: int
    Size: int | None
    Unpacked: bool


class ImageInspect(TypedDict):
    """``image inspect`` (plus ``Layers``: each layer's digests, sizes, unpack state)."""

    Id: str
    RepoTags: list[str]
    RepoDigests: list[str]
    Parent: str
    Comment: str
    Created: str | None
    DockerVersion: str
    Author: str
    Config: dict[str, Any]
    Architecture: str | None
    Variant: str | None
    Os: str | None
    Size: int
    RootFS: dict[str, Any]
    Metadata: dict[str, Any]
    Descriptor: dict[str, Any]
    Layers: list[ImageLayerInfo]


class HistoryRow(TypedDict, total=False):
    """One ``history`` row, newest first."""

    Id: str
    Created: str | None
    CreatedBy: str
    Comment: str
    Size: int
    EmptyLayer: bool
    Tags: list[str]


class RmiEntry(TypedDict, total=False):
    """One line of ``rmi``/``image prune``: exactly one of the two keys."""

    Untagged: str
    Deleted: str


class ImagePruneReport(TypedDict):
    ImagesDeleted: list[RmiEntry]
    SpaceReclaimed: int


class DfUsage(TypedDict):
    Total: int
    Active: int
    Size: int
    Reclaimable: int


class SystemDf(TypedDict):
    """``system df``: one usage row per kind."""

    Images: DfUsage
    Containers: DfUsage
    Volumes: DfUsage
    BuildCache: DfUsage
    Leftovers: DfUsage      # what killed pulls, loads, commits left (Store.leftovers)


class CheckFinding(TypedDict):
    """One problem ``system check`` found: what kind of object, which, what is wrong, and
    whether ``--repair`` fixed it (Action: what it did, or what to do)."""

    Kind: str           # blob, image, layer, container, leftover, runtime, index
    Object: str
    Problem: str
    Repaired: bool
    Action: str


class CheckReport(TypedDict):
    """``system check``: how many of each were checked, the findings, how many remain."""

    Checked: dict[str, int]
    Findings: list[CheckFinding]
    Repaired: int
    Remaining: int


# --------------------------------------------------------------------------- containers


class ContainerSummary(TypedDict):
    """One ``ps`` row (Docker's ``/containers/json`` keys plus the state's times)."""

    Id: str
    ID: str
    Names: str
    Image: str
    ImageID: str
    Command: str
    Created: str
    State: str
    Status: str
    ExitCode: int
    Pid: int
    StartedAt: str | None
    FinishedAt: str | None
    OOMKilled: bool
    Labels: dict[str, str]
    Networks: str
    Ports: str
    AutoRemove: bool


class ContainerState(TypedDict, total=False):
    """A container's ``State`` (``inspect``'s, and the record ``container_state`` reads)."""

    Status: str
    Running: bool
    Paused: bool
    Restarting: bool
    OOMKilled: bool
    Dead: bool
    Pid: int
    ExitCode: int
    Error: str
    StartedAt: str
    FinishedAt: str
    ShimPid: int


class ContainerInspect(TypedDict):
    """``inspect`` of a container (Docker's keys, plus ``Nutshell``: shim, caps, paths)."""

    Id: str
    Created: str
    Path: str
    Args: list[str]
    State: ContainerState
    Image: str
    ResolvConfPath: str
    HostnamePath: str
    HostsPath: str
    LogPath: str
    Name: str
    RestartCount: int
    Driver: str
    Platform: str
    MountLabel: str
    ProcessLabel: str
    AppArmorProfile: str
    ExecIDs: list[str] | None
    HostConfig: dict[str, Any]
    GraphDriver: dict[str, Any]
    Mounts: list[dict[str, Any]]
    Config: dict[str, Any]
    NetworkSettings: NetworkSettings
    Nutshell: dict[str, Any]


class ContainerTop(TypedDict):
    """``top``: column titles and one row of strings per process."""

    Titles: list[str]
    Processes: list[list[str]]


class ContainerStats(TypedDict, total=False):
    """``stats`` of one container: identity, the cgroup counters (``cpu_usage_ns``,
    ``memory_used``, ``pids_current``, ...) and ``Network`` (see :class:`NetStats`)."""

    Id: str
    Name: str
    State: str
    Pid: int
    Network: NetStats
    cpu_usage_ns: int | None
    cpu_user_ns: int | None
    cpu_system_ns: int | None
    memory_usage: int | None
    memory_limit: int | None
    memory_cache: int | None
    memory_used: int | None
    cpus_limit: float | None
    pids_current: int | None
    pids_limit: int | None
    io_read_bytes: int | None
    io_write_bytes: int | None
    oom_kills: int | None
    cpu_quota_us: int | None
    cpu_period_us: int | None
    cpu_throttled_periods: int | None
    timestamp: float


class ContainerSize(TypedDict):
    SizeRw: int
    SizeRootFs: int


class ContainerPruneReport(TypedDict):
    ContainersDeleted: list[str]
    SpaceReclaimed: int


class ContainerChange(TypedDict):
    """One ``diff`` row: Kind 0 = changed, 1 = added, 2 = deleted."""

    Path: str
    Kind: int


# --------------------------------------------------------------------------- networks


class NetworkSummary(TypedDict):
    """One ``network ls`` row."""

    ID: str
    Name: str
    Driver: str
    Scope: str
    Subnet: str
    Gateway: str
    Internal: bool
    Containers: int
    Bridge: str
    CreatedAt: str


class NetworkInspect(TypedDict):
    """``network inspect``."""

    Name: str
    Id: str
    Created: str
    Scope: str
    Driver: str
    EnableIPv6: bool
    IPAM: dict[str, Any]
    Internal: bool
    Attachable: bool
    Ingress: bool
    Containers: dict[str, dict[str, Any]]
    Options: dict[str, str]
    Labels: dict[str, str]


class NetworkSettings(TypedDict, total=False):
    """A container's ``NetworkSettings``: ``Networks`` {name: endpoint}, ``Ports`` in
    Docker's map shape, ``PublishedPorts`` as our port dicts, ``Warnings``."""

    Mode: str
    SandboxKey: str | None
    NetnsName: str | None
    Networks: dict[str, dict[str, Any]]
    Ports: dict[str, list[dict[str, str]]]
    PublishedPorts: list[dict[str, Any]]
    IPAddress: str
    Gateway: str
    MacAddress: str
    HostsPath: str | None
    ResolvConfPath: str | None
    Warnings: list[str]


class NetStats(TypedDict):
    """rx/tx counters per interface and their totals (``lo`` left out of the totals)."""

    Interfaces: dict[str, dict[str, int]]
    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int


# --------------------------------------------------------------------------- volumes


class VolumeUsage(TypedDict):
    Size: int
    RefCount: int


class Volume(TypedDict, total=False):
    """``volume inspect`` / one ``volume ls`` row."""

    CreatedAt: str
    Driver: str
    Labels: dict[str, str] | None
    Mountpoint: str
    Name: str
    Options: dict[str, str] | None
    Scope: str
    UsageData: VolumeUsage


class VolumePruneReport(TypedDict):
    VolumesDeleted: list[str]
    SpaceReclaimed: int


# --------------------------------------------------------------------------- cp


class PathStat(TypedDict):
    """Docker's ``X-Docker-Container-Path-Stat``: what ``cp`` copied from."""

    name: str
    size: int
    mode: int
    mtime: int
    linkTarget: str
    isDir: bool


class CopyResult(TypedDict, total=False):
    """What a ``cp`` wrote: entries and bytes (and, towards the host, the source's stat)."""

    entries: int
    bytes: int
    stat: PathStat


# --------------------------------------------------------------------------- build cache


class BuildCachePruneReport(TypedDict):
    CachesDeleted: list[str]
    SpaceReclaimed: int


class BuildCacheUsage(TypedDict):
    Entries: int
    Layers: int
    Size: int


# --------------------------------------------------------------------------- registry


class LoginResult(TypedDict):
    """``login``: Docker's ``Status`` plus the key it was stored under and where."""

    Status: str
    ServerAddress: str
    Stored: str


class LogoutResult(TypedDict):
    Removed: bool
    ServerAddress: str
