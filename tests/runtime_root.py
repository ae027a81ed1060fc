"""State roots for tests on real containers. ``RT``: the runtime tests' busybox image and
the CLI on it (the ``rt`` fixture in tests/conftest.py): ``rt.cli(...)``, ``rt.run(...)``,
``rt.inspect(...)``; ``image_root`` makes one on a new root with the test image;
``leftovers`` lists what a container still has on the host.
``default_image_engine``: an Engine with the offline default image, cleaned up after;
``remove_all_containers``: the cleanup of the scripts that run containers (screenshots,
benchmarks)."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

IMAGE = "nutshell-rt-test/busybox:latest"
CGROUP_ROOT = "/sys/fs/cgroup"


class RT:
    """A state root with the test image, and a way to call the CLI on it."""

    def __init__(self, root: str):
        self.root = root
        from core.engine import Engine

        self.engine = Engine(root)

    def cli(self, *args: str, input: str | None = None, timeout: float = 60,
            check: bool = False) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "workbench", "--root", self.root, *args],
                              input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"nutshell {' '.join(args)} -> {proc.returncode}\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def run(self, *args: str, **kw) -> subprocess.CompletedProcess:
        """``nutshell run --network none ...`` (flags before the image, Docker style)."""
        return self.cli("run", "--network", "none", *args, **kw)

    def inspect(self, ref: str) -> dict:
        return self.engine.container_inspect(ref)


def image_root(make, tmp_dir, rootfs: str, image: str):
    """``make(root)`` (RT or the like) on a new state root in ``tmp_dir`` holding ``image``:
    ``rootfs`` imported with ``CMD ["sh"]``."""
    root = os.path.join(str(tmp_dir), "root")
    os.makedirs(root)
    r = make(root)
    r.engine.import_image(rootfs, image, changes=['CMD ["sh"]'])
    return r


def leftovers(rt: RT, cid: str) -> list[str]:
    """Everything of container ``cid`` still on the host."""
    out = []
    if os.path.exists(rt.engine.paths.container(cid)):
        out.append(rt.engine.paths.container(cid))
    if os.path.exists(rt.engine.paths.run_container(cid)):
        out.append(rt.engine.paths.run_container(cid))
    out += glob.glob(f"{CGROUP_ROOT}/*/nutshell/{cid}")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f"id={cid}".encode() in f.read():
                    out.append(f"shim pid {pid}")
        except OSError:
            continue
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if cid in line:
                out.append("mount: " + line.split()[4])
    return out


def default_image_engine(root: str):
    """An Engine on ``root`` with the offline default image (a fixture's generator:
    ``yield from``); afterwards every container is removed and checked gone (cgroups,
    mounts)."""
    from core.engine import Engine
    from workbench.default_image import ensure_default_image

    eng = Engine(root)
    ensure_default_image(eng)
    yield eng
    ids = [c["Id"] for c in eng.ps(all=True)]
    for cid in ids:
        try:
            eng.rm(cid, force=True)
        except Exception:  # noqa: BLE001
            pass
    try:
        eng.network_reset()
    except Exception:  # noqa: BLE001
        pass
    left = []
    for cid in ids:
        left += glob.glob(f"{CGROUP_ROOT}/*/nutshell/{cid}")
        with open("/proc/self/mountinfo") as f:
            left += [line for line in f if cid in line]
    assert not left, left


def remove_all_containers(engine) -> None:
    """The end of a script's session on its own root: every container removed (a failure
    is printed and the others go on), then the networks reset and the layer mounts
    containers shared released (the root is about to be deleted by hand)."""
    for c in engine.ps(all=True):
        try:
            engine.rm(c["Id"], force=True)
        except Exception as exc:  # noqa: BLE001
            print(f"cleanup: {exc}", file=sys.stderr)
    engine.network_reset()
    engine.store.release_layer_mounts()
