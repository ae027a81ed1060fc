"""System endpoints: ``/_ping``, ``/version``, ``/info``, ``/system/df``, ``/auth``, ``/events``."""

from __future__ import annotations

import os
import platform

from .http import HTTPError, Request
from .router import MAX_API_VERSION, MIN_API_VERSION, Routes

routes = Routes()


@routes.route("HEAD", "/_ping")
@routes.route("GET", "/_ping")
def ping(engine, req: Request) -> None:
    headers = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
               "Builder-Version": "1", "Swarm": "inactive"}
    if req.method == "HEAD":               # dockerd: no body, Content-Length 0
        headers["Content-Length"] = "0"
    req.send_bytes(200, b"OK", "text/plain; charset=utf-8", headers)


@routes.route("GET", "/version")
def version(engine, req: Request) -> dict:
    v = engine.version()
    return {
        "Platform": {"Name": "Nutshell"},
        "Components": [{"Name": "Engine", "Version": v["Version"],
                        "Details": {"ApiVersion": MAX_API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                                    "Os": "linux", "Arch": v["Arch"],
                                    "KernelVersion": v["KernelVersion"],
                                    "PythonVersion": v["PythonVersion"]}}],
        "Version": v["Version"], "ApiVersion": MAX_API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "", "GoVersion": f"python{v['PythonVersion']}", "Os": "linux",
        "Arch": v["Arch"], "KernelVersion": v["KernelVersion"], "BuildTime": "",
    }


@routes.route("GET", "/info")
def info(engine, req: Request) -> dict:
    i = engine.info()
    cg = "2" if str(i["CgroupVersion"]).startswith("2") else "1"
    return {
        "ID": _host_id(engine), "Containers": i["Containers"],
        "ContainersRunning": i["ContainersRunning"], "ContainersPaused": i["ContainersPaused"],
        "ContainersStopped": i["ContainersStopped"], "Images": i["Images"],
        "Driver": i["Driver"], "DriverStatus": [["Backing Filesystem", "overlay"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                    "Authorization": None, "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": True, "KernelMemory": False, "CpuCfsPeriod": True,
        "CpuCfsQuota": True, "CPUShares": False, "CPUSet": False, "PidsLimit": True,
        "IPv4Forwarding": True, "BridgeNfIptables": True, "BridgeNfIp6tables": True,
        "Debug": False, "NFd": len(os.listdir("/proc/self/fd")), "OomKillDisable": False,
        "NGoroutines": 0, "SystemTime": _now_rfc3339(), "LoggingDriver": i["LoggingDriver"],
        "CgroupDriver": i["CgroupDriver"], "CgroupVersion": cg, "NEventsListener": 0,
        "KernelVersion": i["KernelVersion"], "OperatingSystem": i["OperatingSystem"],
        "OSVersion": "", "OSType": "linux", "Architecture": i["Architecture"],
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": [],
                           "AllowNondistributableArtifactsHostnames": [],
                           "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {},
                           "Mirrors": []},
        "NCPU": i["NCPU"], "MemTotal": i["MemTotal"], "GenericResources": None,
        "DockerRootDir": i["DockerRootDir"], "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
        "Name": i["Name"], "Labels": [], "ExperimentalBuild": False,
        "ServerVersion": i["ServerVersion"],
        "Runtimes": {"nutshell": {"path": "nutshell-shim"}}, "DefaultRuntime": "nutshell",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""}, "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
        "Warnings": [],
    }


def _host_id(engine) -> str:
    try:
        with open("/etc/machine-id") as f:
            return f.read().strip()
    except OSError:
        return platform.node()


def _now_rfc3339() -> str:
    import time

    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


@routes.route("GET", "/system/df")
def system_df(engine, req: Request) -> dict:
    from .shapes import container_list_entry, image_list_entry, volume_entry

    df = engine.system_df()
    containers = []
    for c in engine.ps(all=True):
        try:
            entry = container_list_entry(engine, c["Id"], c)
            size = engine.container_size(c["Id"])
        except Exception:  # noqa: BLE001 - removed meanwhile
            continue
        entry["SizeRw"], entry["SizeRootFs"] = size["SizeRw"], size["SizeRootFs"]
        containers.append(entry)
    images = [image_list_entry(engine, img) for img in engine.images(all=False)]
    volumes = []
    for vol in engine.volumes():
        v = volume_entry(vol)
        v["UsageData"] = {"Size": int(vol.get("Size") or -1) if isinstance(vol, dict) else -1,
                          "RefCount": len(vol.get("UsedBy") or []) if isinstance(vol, dict) else 0}
        volumes.append(v)
    return {"LayersSize": df["Images"]["Size"], "Images": images, "Containers": containers,
            "Volumes": volumes, "BuildCache": []}


@routes.route("POST", "/auth")
def auth(engine, req: Request) -> dict:
    """Check credentials against a registry, as dockerd does: nothing is stored (the client
    keeps its credentials and sends them with each pull and push)."""
    from .createbody import field

    body = req.json(default={})
    username = field(body, "username", str) or ""
    password = field(body, "password", str) or ""
    server = field(body, "serveraddress", str) or None
    if not username:
        raise HTTPError(400, "username is required")
    engine.login(server, username, password, store=False)
    return {"Status": "Login Succeeded", "IdentityToken": ""}


@routes.route("GET", "/events")
def events(engine, req: Request) -> None:
    filters = _filters(req)
    since = req.q("since")
    until = req.q("until")
    out = req.stream(200, "application/json")
    req.stream_writer = out                       # type: ignore[attr-defined]
    conn_closed = req.conn
    for ev in engine.events(since=since or None, until=until or None, filters=filters,
                            follow=True, stop=lambda: conn_closed.closed or conn_closed.peer_gone()):
        out.json(ev)
    out.close()


def _filters(req: Request) -> dict[str, list[str]]:
    """Docker's ``filters`` parameter: ``{"key": ["v", ...]}`` or the old ``{"key": {"v": true}}``."""
    raw = req.qjson("filters", {}) or {}
    if not isinstance(raw, dict):
        raise HTTPError(400, "invalid filter: expected a JSON object")
    out: dict[str, list[str]] = {}
    for k, v in raw.items():
        if isinstance(v, dict):
            out[k] = [key for key, on in v.items() if on]
        elif isinstance(v, list):
            out[k] = [str(x) for x in v]
        else:
            raise HTTPError(400, f"invalid filter {k!r}")
    return out


filters_of = _filters

