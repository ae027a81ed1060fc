"""``GET /containers/{id}/stats``: the cgroup counters in Docker's ``StatsJSON`` shape.

``stream=true`` (the default) sends one object a second; ``stream=false`` waits for a
second sample so ``precpu_stats`` is filled (dockerd primes the CPU numbers the same way)
and ``one-shot=true`` answers at once with an empty ``precpu_stats``. ``system_cpu_usage``
is the host's CPU time from /proc/stat in nanoseconds, as dockerd computes it, so the CLI's
``(Δcontainer / Δsystem) × online_cpus`` gives the CPU %.
"""

from __future__ import annotations

import os
import time

from core.errors import NotFound

from .http import Request
from .router import Routes

routes = Routes()

ZERO_TIME = "0001-01-01T00:00:00Z"
INTERVAL = 1.0


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK") or 100
    except (ValueError, OSError):
        return 100


def system_cpu_usage() -> int:
    """The host's CPU time in ns: the first seven fields of /proc/stat's ``cpu`` line."""
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("cpu "):
                    ticks = sum(int(x) for x in line.split()[1:8])
                    return ticks * 1_000_000_000 // _clock_ticks()
    except (OSError, ValueError):
        pass
    return 0


def online_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except OSError:
        return os.cpu_count() or 1


def host_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"


def _cpu(s: dict | None, system: int) -> dict:
    s = s or {}
    return {
        "cpu_usage": {"total_usage": int(s.get("cpu_usage_ns") or 0),
                      "usage_in_kernelmode": int(s.get("cpu_system_ns") or 0),
                      "usage_in_usermode": int(s.get("cpu_user_ns") or 0)},
        "system_cpu_usage": system, "online_cpus": online_cpus() if s else 0,
        "throttling_data": {"periods": 0,
                            "throttled_periods": int(s.get("cpu_throttled_periods") or 0),
                            "throttled_time": 0},
    }


def docker_stats(cid: str, name: str, cur: dict, cur_time: float, cur_system: int,
                 prev: dict | None, prev_time: float | None, prev_system: int) -> dict:
    """One ``StatsJSON`` object from two samples of ``Engine.container_stats``."""
    running = cur.get("State") in ("running", "paused")
    mem: dict = {}
    if running:
        usage = int(cur.get("memory_usage") or 0)
        mem = {"usage": usage, "limit": int(cur.get("memory_limit") or host_memory()),
               "stats": {"inactive_file": int(cur.get("memory_cache") or 0)}}
        if cur.get("oom_kills") is not None:
            mem["failcnt"] = 0
    blkio: list = []
    if running and (cur.get("io_read_bytes") is not None or cur.get("io_write_bytes") is not None):
        blkio = [{"major": 0, "minor": 0, "op": "read", "value": int(cur.get("io_read_bytes") or 0)},
                 {"major": 0, "minor": 0, "op": "write", "value": int(cur.get("io_write_bytes") or 0)}]
    out = {
        "name": "/" + name.lstrip("/"), "id": cid,
        "read": _rfc3339(cur_time) if running else ZERO_TIME,
        "preread": _rfc3339(prev_time) if prev_time and prev else ZERO_TIME,
        "pids_stats": ({"current": int(cur.get("pids_current") or 0),
                        **({"limit": int(cur["pids_limit"])} if cur.get("pids_limit") else {})}
                       if running else {}),
        "blkio_stats": {"io_service_bytes_recursive": blkio or None, "io_serviced_recursive": None,
                        "io_queue_recursive": None, "io_service_time_recursive": None,
                        "io_wait_time_recursive": None, "io_merged_recursive": None,
                        "io_time_recursive": None, "sectors_recursive": None},
        "num_procs": 0, "storage_stats": {},
        "cpu_stats": _cpu(cur if running else None, cur_system if running else 0),
        "precpu_stats": _cpu(prev if (prev and running) else None, prev_system if prev else 0),
        "memory_stats": mem,
    }
    net = (cur.get("Network") or {}).get("Interfaces") if running else None
    if net:
        out["networks"] = {
            ifname: {k: int(c.get(k, 0)) for k in ("rx_bytes", "rx_packets", "rx_errors",
                                                      "rx_dropped", "tx_bytes", "tx_packets",
                                                      "tx_errors", "tx_dropped")}
            for ifname, c in net.items() if ifname != "lo"}
    return out


@routes.route("GET", "/containers/{id}/stats")
def stats(engine, req: Request) -> dict | None:
    cid = engine.container(req.params["id"])
    stream = req.qbool("stream", True)
    one_shot = req.qbool("one-shot")
    conn = req.conn

    def sample() -> tuple[dict, float, int]:
        try:
            s = dict(engine.container_stats(cid))
        except NotFound:
            s = {"State": "removed"}
        return s, time.time(), system_cpu_usage()

    name = str(engine.container_inspect(cid).get("Name") or cid[:12])
    prev, prev_t, prev_sys = sample()
    if not stream:
        if not one_shot and prev.get("State") in ("running", "paused"):
            time.sleep(INTERVAL)
            cur, cur_t, cur_sys = sample()
            return docker_stats(cid, name, cur, cur_t, cur_sys, prev, prev_t, prev_sys)
        return docker_stats(cid, name, prev, prev_t, prev_sys, None, None, 0)
    out = req.stream(200, "application/json")
    out.json(docker_stats(cid, name, prev, prev_t, prev_sys, None, None, 0))
    while not conn.peer_gone():
        deadline = time.monotonic() + INTERVAL
        while time.monotonic() < deadline:
            if conn.peer_gone():
                return None
            time.sleep(0.1)
        cur, cur_t, cur_sys = sample()
        out.json(docker_stats(cid, name, cur, cur_t, cur_sys, prev, prev_t, prev_sys))
        if cur.get("State") == "removed":
            break
        prev, prev_t, prev_sys = cur, cur_t, cur_sys
    out.close()
    return None

