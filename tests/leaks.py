"""What the test suite may leave on the host: checked after the whole run.

The kernel objects Nutshell makes are recognisable by name: bridges ``nsbr-*`` /
``nutshell0``, host veths ``nsv*``, nft tables ``nutshell*``, ``/run/netns/nutshell-*``
links, ``NUTSHELL-*`` iptables chains (nft and legacy backends), netns bind mounts under ``/run/nutshell``, cgroups below ``nutshell/`` in every
hierarchy, shim processes, loop devices bound to layer images, and runtime dirs under
``/run/nutshell`` (removed before the check when nothing is mounted in them). A snapshot is taken when the session starts;
``leftover`` compares at the end. tests/test_zz_leaks.py asks for that check: in a plain
run it is the last test; under xdist each worker has its own session and the others may
still be running, so the test only tells the controller, which checks once every
worker has ended (tests/conftest.py) and fails the session with the list.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import time


def _links() -> set[str]:
    try:
        out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    except OSError:
        return set()
    names = set()
    for line in out.splitlines():
        name = line.split(":", 2)[1].strip().split("@")[0]
        if name.startswith(("nsbr-", "nsv", "nutshell")):
            names.add(f"link {name}")
    return names


def _nft() -> set[str]:
    try:
        out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    except OSError:
        return set()
    return {f"nft {line.strip()}" for line in out.splitlines() if "nutshell" in line}


def _iptables() -> set[str]:
    out = set()
    for tool in ("iptables-save", "iptables-legacy-save"):
        try:
            text = subprocess.run([tool], capture_output=True, text=True).stdout
        except OSError:
            continue
        table = ""
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":NUTSHELL"):
                out.add(f"iptables {tool} {table} {line[1:].split()[0]}")
    return out


def _netns() -> set[str]:
    return {f"netns {n}" for n in (os.listdir("/run/netns") if os.path.isdir("/run/netns") else [])
            if n.startswith("nutshell")}


def _mounts() -> set[str]:
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if "/nutshell" in mp or "pytest-of-" in mp:
                out.add(f"mount {mp}")
    return out


_LAYER_MOUNT = re.compile(r"/layers/[0-9a-f]{64}\.\d+\.\d+$")


RUN_BASE = "/run/nutshell"


def _run_dirs() -> set[str]:
    """The stores' runtime dirs (/run/nutshell/<hash of the root>): a test's root is
    deleted by hand, never through Nutshell, so its runtime dir would stay until reboot
    (8,839 of them had gathered on this machine over the sessions)."""
    try:
        return {f"rundir {os.path.join(RUN_BASE, t)}" for t in os.listdir(RUN_BASE)}
    except OSError:
        return set()


def _backing_file(mountinfo_line: str) -> str | None:
    """The image file behind a layer mount (its loop device's backing file)."""
    source = mountinfo_line.split(" - ", 1)[-1].split()[1]
    if not source.startswith("/dev/loop"):
        return None
    try:
        with open(f"/sys/block/{os.path.basename(source)}/loop/backing_file") as f:
            return f.read().strip()
    except OSError:
        return None


def release_layer_mounts(keep: set[str] = frozenset(), under: str | None = None) -> None:
    """Release the shared layer mounts not in ``keep`` (of images below ``under`` only,
    when given). They last until their layer is deleted, by design; a test's temporary
    root is never deleted through Nutshell, so the suite releases them: after each test,
    those of its worker's temporary roots (tests/conftest.py; never another worker's,
    which may be looking at its own), and whatever is left before the leak check."""
    from core.fs.imagemount import release_shared

    with open("/proc/self/mountinfo") as f:
        lines = [line for line in f if _LAYER_MOUNT.search(line.split()[4])]
    for line in lines:
        mp = line.split()[4]
        if mp in keep:
            continue
        if under is not None:
            backing = _backing_file(line)
            if backing is None or not backing.startswith(under.rstrip("/") + "/"):
                continue
        base, name = os.path.split(mp)
        try:
            release_shared(base, name)
        except OSError:
            pass


def _loops() -> set[str]:
    """Loop devices bound to a layer image (core/fs/imagemount.py): they detach themselves
    when the last mount of the image goes, so any still bound after the run leaked."""
    out = set()
    for d in glob.glob("/sys/block/loop*/loop/backing_file"):
        try:
            with open(d) as f:
                backing = f.read().strip()
        except OSError:
            continue
        if backing.endswith("/layer.sqfs") or "/layer.sqfs " in backing:
            out.add(f"loop {d.split('/')[3]} {backing}")
    return out


def _cgroups() -> set[str]:
    out = set()
    for base in glob.glob("/sys/fs/cgroup/*/nutshell") + glob.glob("/sys/fs/cgroup/nutshell"):
        for entry in os.listdir(base):
            if os.path.isdir(os.path.join(base, entry)):
                out.add(f"cgroup {base}/{entry}")
    return out


def _shims() -> set[str]:
    out = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        # a shim is boot.py's process C (or, started on its own by a unit test, shim.py)
        if b"core.runtime.start.boot" in cmd or b"core.runtime.start.shim" in cmd:
            out.add(f"shim pid {pid}")
    return out


def snapshot() -> set[str]:
    if os.geteuid() != 0:
        return set()
    return (_links() | _nft() | _iptables() | _netns() | _mounts() | _cgroups() | _shims()
            | _loops() | _run_dirs())


def remove(objects: set[str]) -> None:
    """Best-effort removal of leaked objects, so one leaky test does not poison the host."""
    for obj in sorted(objects):
        kind, _, name = obj.partition(" ")
        try:
            if kind == "shim":
                os.kill(int(name.split()[-1]), 9)
            elif kind == "link":
                subprocess.run(["ip", "link", "del", name], capture_output=True)
            elif kind == "nft":
                fam_tbl = name.split()[1:]
                subprocess.run(["nft", "delete", "table", *fam_tbl], capture_output=True)
            elif kind == "iptables":
                tool, table, chain = name.split()
                base = tool.removesuffix("-save")
                # unhook it from whatever jumps to it, then flush and delete it
                rules = subprocess.run([tool, "-t", table], capture_output=True,
                                       text=True).stdout.splitlines()
                for rule in rules:
                    if rule.startswith("-A ") and f"-j {chain}" in rule:
                        subprocess.run([base, "-t", table, "-D", *rule.split()[1:]],
                                       capture_output=True)
                subprocess.run([base, "-t", table, "-F", chain], capture_output=True)
                subprocess.run([base, "-t", table, "-X", chain], capture_output=True)
            elif kind == "netns":
                os.unlink(os.path.join("/run/netns", name))
            elif kind == "mount":
                subprocess.run(["umount", "-l", name], capture_output=True)
            elif kind == "loop":
                subprocess.run(["losetup", "-d", "/dev/" + name.split()[0]], capture_output=True)
            elif kind == "rundir":
                with open("/proc/self/mountinfo") as f:
                    mounted = any(f" {name}/" in line for line in f)
                if not mounted:             # (a mount inside is reported as a mount)
                    import shutil

                    shutil.rmtree(name, ignore_errors=True)
        except OSError:
            pass
    for obj in sorted(objects, reverse=True):
        kind, _, name = obj.partition(" ")
        if kind == "cgroup":
            try:
                os.rmdir(name)
            except OSError:
                pass


def before_layer_mounts(before: set[str]) -> set[str]:
    return {obj.split(" ", 1)[1] for obj in before
            if obj.startswith("mount ") and _LAYER_MOUNT.search(obj)}


def leftover(before: set[str], grace: float = 5.0) -> set[str]:
    """What appeared since ``before`` and is still there after ``grace`` seconds (shims of
    --rm containers finish their teardown asynchronously); removed, best-effort. Shared
    layer mounts made since are released first (see release_layer_mounts), and the
    runtime dirs of the session's stores removed."""
    release_layer_mounts(keep=before_layer_mounts(before))
    # the runtime dirs of the session's stores: expected, removed (see _run_dirs)
    remove({obj for obj in _run_dirs() - before})
    deadline = time.monotonic() + grace
    while True:
        leaked = snapshot() - before
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    remove(leaked)
    return leaked


def report(leaked: set[str]) -> str:
    return "left behind by the test suite:\n" + "\n".join(sorted(leaked))
