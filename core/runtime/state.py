"""Container records on disk: config.json, state.json, locks, lookup, reconciliation.

``$ROOT/containers/<id>/config.json``  what the container is (written at create/rename)
``$ROOT/containers/<id>/state.json``   what it is doing (written by the shim and by
                                         whoever stops/reconciles it), atomically
``$ROOT/containers/<id>/lock``         fcntl lock around every state transition
``$ROOT/containers/<id>/oplock``       held for a whole start/stop/rm so two commands
                                         never start or remove the same container at once

A container marked running whose shim is gone (pid + start time no longer match) is
reconciled on read: its init, if still alive, is killed, and it is marked exited with
the error "shim died" — nothing stays "running" forever.
"""

from __future__ import annotations

import errno
import json
import os
import re
import time

from ..errors import NotFound, UsageError
from ..fsutil import atomic_write_json, locked
from .procstat import proc_start_time
from .spec import ZERO_TIME

_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")


def now_rfc3339(t: float | None = None) -> str:
    ns = time.time_ns() if t is None else int(t * 1e9)
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def initial_state() -> dict:
    return {
        "Status": "created", "Running": False, "Paused": False, "Restarting": False,
        "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
        "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME,
    }


class Records:
    """Container records under ``paths.containers``."""

    def __init__(self, paths):
        self.paths = paths

    # --- files -------------------------------------------------------------------------
    def dir(self, cid: str) -> str:
        return self.paths.container(cid)

    def config_path(self, cid: str) -> str:
        return os.path.join(self.dir(cid), "config.json")

    def state_path(self, cid: str) -> str:
        return os.path.join(self.dir(cid), "state.json")

    def lock(self, cid: str):
        return locked(os.path.join(self.dir(cid), "lock"))

    def oplock(self, cid: str):
        return locked(os.path.join(self.dir(cid), "oplock"))

    def global_lock(self):
        from ..paths import ensure_root, private_dir

        ensure_root(self.paths)
        private_dir(self.paths.containers)
        return locked(os.path.join(self.paths.containers, ".lock"))

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.paths.containers)
        except FileNotFoundError:
            return []
        return [n for n in names if len(n) == 64 and
                os.path.exists(os.path.join(self.paths.containers, n, "config.json"))]

    def read_config(self, cid: str) -> dict:
        try:
            with open(self.config_path(cid), "rb") as f:
                return json.loads(f.read())
        except FileNotFoundError:
            raise NotFound(f"No such container: {cid}") from None

    def write_config(self, cid: str, config: dict) -> None:
        atomic_write_json(self.config_path(cid), config, sync=False, indent=None)

    def read_state_raw(self, cid: str) -> dict:
        try:
            with open(self.state_path(cid), "rb") as f:
                return json.loads(f.read())
        except FileNotFoundError:
            if not os.path.isdir(self.dir(cid)):
                raise NotFound(f"No such container: {cid}") from None
            return initial_state()
        except ValueError:
            return initial_state()

    def write_state(self, cid: str, state: dict) -> None:
        atomic_write_json(self.state_path(cid), state, sync=False)

    # --- the name index ------------------------------------------------------------------
    # ``containers/.names/<name>`` holds the id of the container of that name: a hint, read
    # in one open and verified against that container's config.json, so a stale entry (a
    # create or rm killed half-way) is harmless. Without it every create and every lookup
    # by name read every config.json: create took 4 ms with 10 containers and 29 ms with
    # 500 (bench_scale.py). Built from a scan the first time it is missing.
    def _names_dir(self) -> str:
        d = os.path.join(self.paths.containers, ".names")
        if os.path.isdir(d):
            return d
        tmp = f"{d}.build-{os.getpid()}-{os.urandom(3).hex()}"
        os.makedirs(tmp, mode=0o700)
        for cid in self.ids():
            try:
                name = str(self.read_config(cid).get("Name") or "").lstrip("/")
            except (NotFound, ValueError):
                continue
            if _NAME_RE.match(name):
                with open(os.path.join(tmp, name), "w") as f:
                    f.write(cid)
        try:
            os.rename(tmp, d)
        except OSError:             # another process built it first
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        return d

    def index_name(self, name: str, cid: str) -> None:
        """Record that ``name`` is ``cid``'s (before its config says so: see above)."""
        d = self._names_dir()
        tmp = os.path.join(d, f".{name}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            f.write(cid)
        os.replace(tmp, os.path.join(d, name))

    def unindex_name(self, name: str, cid: str) -> None:
        if not _NAME_RE.match(name):
            return
        path = os.path.join(self.paths.containers, ".names", name)
        try:
            with open(path) as f:
                if f.read().strip() == cid:
                    os.unlink(path)
        except OSError:
            pass

    def lookup_name(self, name: str) -> str | None:
        """The id of the container named ``name`` (no leading /), or None."""
        if not _NAME_RE.match(name):
            return None
        try:
            with open(os.path.join(self._names_dir(), name)) as f:
                cid = f.read().strip()
        except OSError:
            return None
        if len(cid) != 64 or not _is_hex(cid):
            return None
        try:
            if self.read_config(cid).get("Name") == "/" + name:
                return cid
        except (NotFound, ValueError, OSError):
            pass
        return None

    # --- lookup ------------------------------------------------------------------------
    def resolve(self, ref: str) -> str:
        """Full id from a name (with or without the leading /), a full id or an id prefix."""
        if not ref:
            raise NotFound("No such container: ")
        name = ref[1:] if ref.startswith("/") else ref
        if len(ref) == 64 and _is_hex(ref) and os.path.exists(self.config_path(ref)):
            return ref
        by_name = self.lookup_name(name)
        if by_name is not None:
            return by_name
        ids = self.ids()
        matches = [cid for cid in ids if cid.startswith(ref)] if _is_hex(ref) else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UsageError(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def name_in_use(self, name: str, except_id: str | None = None) -> str | None:
        cid = self.lookup_name(name)
        return None if cid == except_id else cid

    # --- state with reconciliation -------------------------------------------------------
    def state(self, cid: str, on_reconciled=None) -> dict:
        """The container's state; a 'running' one whose shim is gone is reconciled first
        (and ``on_reconciled(cid, state)`` runs, for the clean-up)."""
        st = self.read_state_raw(cid)
        if st.get("Status") in ("running", "paused") and not shim_alive(st):
            st, changed = self.reconcile(cid)
            if changed and on_reconciled is not None:
                on_reconciled(cid, st)
        return st

    def reconcile(self, cid: str) -> tuple[dict, bool]:
        """The shim of a 'running' container is gone: kill what is left, mark it exited."""
        with self.lock(cid):
            st = self.read_state_raw(cid)
            if st.get("Status") not in ("running", "paused") or shim_alive(st):
                return st, False
            killed = kill_verified(st.get("Pid", 0), st.get("PidStartTime"), 9)
            st.update(Status="exited", Running=False, Paused=False, Pid=0,
                      ExitCode=137 if killed or st.get("ExitCode", 0) == 0 else st["ExitCode"],
                      Error="shim died", FinishedAt=now_rfc3339(), ShimPid=0)
            self.write_state(cid, st)
        return st, True


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdef" for c in s)


def shim_alive(st: dict) -> bool:
    pid = st.get("ShimPid") or 0
    if pid <= 0:
        return False
    return proc_start_time(pid) == st.get("ShimStartTime")


def init_alive(st: dict) -> bool:
    pid = st.get("Pid") or 0
    return pid > 0 and proc_start_time(pid) == st.get("PidStartTime")


def kill_verified(pid: int, start_time: int | None, sig: int) -> bool:
    """Signal ``pid`` only if it is still the process that started at ``start_time``.

    A pidfd pins the process between the check and the signal, so a recycled pid is
    never hit.
    """
    if not pid or pid <= 0 or start_time is None:
        return False
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if proc_start_time(pid) != start_time:
            return False
        import signal

        signal.pidfd_send_signal(pidfd, sig)
        return True
    except OSError as e:
        if e.errno == errno.ESRCH:
            return False
        raise
    finally:
        os.close(pidfd)


def wait_gone(pid: int, start_time: int | None, timeout: float) -> bool:
    """Wait until the process is gone (not a child of ours: poll its pidfd)."""
    if not pid or start_time is None or proc_start_time(pid) != start_time:
        return True
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return True
    try:
        import select

        p = select.poll()
        p.register(pidfd, select.POLLIN)
        return bool(p.poll(int(timeout * 1000)))
    finally:
        os.close(pidfd)

