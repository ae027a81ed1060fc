"""The store hands other local users nothing (CVE-2021-41091 class).

An image may carry a setuid-root binary and a 0666 device node; a container's root may
``chmod u+s`` or ``mknod`` in its upper dir or in a volume. Checked with real attempts
by ``nobody`` (a forked child that drops to 65534 with setgroups/setresgid/setresuid):
exec, open and list of everything under the store and the runtime dir fail with EACCES.

Each store lives in a directory ``nobody`` CAN traverse (pytest's own tmp dirs are 0700,
which would hide any mistake), and a control file beside it proves the probe really
executes and lists what it may. The migration test also shows the old 0755 layout
exposed the setuid binary before the first command fixed it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

from core.engine import Engine
from core.paths import OWN_DIRS
from tests import imagebuild as ib
from tests.rootfs import BUSYBOX

pytestmark = pytest.mark.integration

NOBODY = 65534
HOSTILE = "localhost/hostile:1"
NUTSHELL = [sys.executable, "-m", "workbench"]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --------------------------------------------------------------------------- helpers

def _probe(kind: str, path: str) -> str:
    try:
        if kind == "list":
            os.listdir(path)
        elif kind == "stat":
            os.stat(path)
        elif kind == "read":
            os.close(os.open(path, os.O_RDONLY))
        elif kind == "write":
            os.close(os.open(path, os.O_WRONLY))
        elif kind == "exec":
            p = subprocess.run(["busybox", "true"], executable=path, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
            return "ok" if p.returncode == 0 else f"exit {p.returncode}"
        else:
            raise ValueError(kind)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return "ok"


def as_nobody(probes: list[tuple[str, str]]) -> dict[str, str]:
    """Run each (kind, path) probe as uid/gid 65534 without supplementary groups;
    ``{"kind path": "ok" | "EACCES" | ...}``."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                    # pragma: no cover - child
        code = 0
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            assert os.getresuid() == (NOBODY,) * 3 and os.getgroups() == []
            out = {f"{k} {p}": _probe(k, p) for k, p in probes}
            data = json.dumps(out).encode()
            while data:
                data = data[os.write(w, data):]
        except BaseException:                      # noqa: BLE001
            code = 99
        os._exit(code)
    os.close(w)
    chunks = []
    with os.fdopen(r, "rb") as f:
        chunks.append(f.read())
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the probe child failed"
    return json.loads(b"".join(chunks))


def cli(root: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(NUTSHELL + ["--root", root, *args], capture_output=True, text=True,
                       cwd=REPO, timeout=180)
    if check:
        assert p.returncode == 0, f"nutshell {' '.join(args)} -> {p.returncode}: {p.stderr}"
    return p


@pytest.fixture
def open_dir():
    """A directory ``nobody`` can traverse, with a control executable in it."""
    base = tempfile.mkdtemp(prefix="nutshell-perm-", dir="/tmp")
    os.chmod(base, 0o755)
    control = os.path.join(base, "control")
    os.mkdir(control, 0o755)
    shutil.copy(BUSYBOX, os.path.join(control, "busybox"))
    os.chmod(os.path.join(control, "busybox"), 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def control_probes(base: str) -> list[tuple[str, str]]:
    return [("list", base), ("exec", os.path.join(base, "control", "busybox"))]


def load_hostile_image(engine: Engine, tmp: str, busybox_rootfs: str) -> str:
    """An image whose top layer has a setuid-root busybox and a 0666 c 1:3 node; returns
    that layer's diff dir (unpacked)."""
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    top = (ib.TarBuilder().dir("usr").dir("usr/local").dir("usr/local/bin")
           .file("usr/local/bin/rootme", bb, mode=0o4755)
           .dir("evil").chardev("evil/null", 1, 3, mode=0o666).bytes())
    arc = os.path.join(tmp, "hostile.tar")
    ib.docker_archive(arc, [ib.gnu_tar(busybox_rootfs), top], [HOSTILE])
    engine.load(arc)
    diff = engine.image_layer_dirs(HOSTILE)[-1]
    st = os.lstat(os.path.join(diff, "usr/local/bin/rootme"))
    assert st.st_mode & stat.S_ISUID and st.st_uid == 0          # the setup is real
    st = os.lstat(os.path.join(diff, "evil/null"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(st.st_mode) == 0o666
    # where it is stored: the diff dir, or the squashfs image (whose detached mount,
    # above, only this process can reach)
    return engine.store.layer_path(engine.store.image(HOSTILE).chain_ids[-1])


def store_probes(engine: Engine, diff: str) -> list[tuple[str, str]]:
    p = engine.paths
    layer = os.path.dirname(diff)
    blob = os.path.join(p.blobs, sorted(os.listdir(p.blobs))[0])
    if diff.endswith("/layer.sqfs"):
        out = [("read", diff), ("stat", diff)]
    else:
        out = [("exec", os.path.join(diff, "usr/local/bin/rootme")),
               ("write", os.path.join(diff, "evil/null")),
               ("read", os.path.join(diff, "evil/null")),
               ("stat", os.path.join(diff, "usr/local/bin/rootme")),
               ("list", diff)]
    out += [("list", layer), ("list", p.layers), ("list", p.root),
           ("list", p.blobs), ("read", blob), ("read", p.index), ("list", p.tmp),
           ("list", p.containers), ("list", p.run)]
    for d in (p.volumes, p.builds):
        if os.path.isdir(d):
            out.append(("list", d))
    return out


def _remove_run_dir(engine: Engine) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(engine.paths.run)


# --------------------------------------------------------------------------- tests

@pytest.mark.parametrize("fmt", ["dir", "squashfs"])
def test_other_users_can_not_exec_open_or_list_anything(open_dir, tmp_path, busybox_rootfs, fmt,
                                                         monkeypatch):
    monkeypatch.setenv("NUTSHELL_LAYER_FORMAT", fmt)
    root = os.path.join(open_dir, "root")
    engine = Engine(root)
    diff = load_hostile_image(engine, str(tmp_path), busybox_rootfs)
    # a container whose root makes a setuid binary and a device node in its upper dir and
    # a setuid binary in a volume (Docker's default capabilities allow all three)
    cli(root, "run", "--name", "permc", "--network", "none", "-v", "permvol:/vol", HOSTILE,
        "sh", "-c", "cp /bin/busybox /suid && chmod 4755 /suid && mknod /null2 c 1 3 && "
        "chmod 666 /null2 && cp /bin/busybox /vol/suid && chmod 4755 /vol/suid")
    try:
        cid = engine.container("permc")
        cdir = engine.paths.container(cid)
        upper = os.path.join(cdir, "upper")
        data = engine.volume_inspect("permvol")["Mountpoint"]
        assert os.stat(os.path.join(upper, "suid")).st_mode & stat.S_ISUID
        assert os.stat(os.path.join(upper, "null2")).st_rdev == os.makedev(1, 3)
        assert os.stat(os.path.join(data, "suid")).st_mode & stat.S_ISUID
        probes = store_probes(engine, diff) + [
            ("exec", os.path.join(upper, "suid")), ("write", os.path.join(upper, "null2")),
            ("list", upper), ("list", cdir), ("read", os.path.join(cdir, "config.json")),
            ("exec", os.path.join(data, "suid")), ("list", data),
            ("list", os.path.dirname(data))]
        got = as_nobody(control_probes(open_dir) + probes)
        assert [got[f"{k} {p}"] for k, p in control_probes(open_dir)] == ["ok", "ok"]
        denied = {f"{k} {p}": "EACCES" for k, p in probes}
        assert {k: got[k] for k in denied} == denied
        # the modes that do it: the root and our top-level dirs 0700
        for d in [root] + [os.path.join(root, n) for n in OWN_DIRS
                           if os.path.isdir(os.path.join(root, n))]:
            assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, d
        assert stat.S_IMODE(os.stat(engine.paths.run).st_mode) == 0o700
        # and a layer's diff/ keeps the mode the image gives "/" (the container's root)
        assert stat.S_IMODE(os.stat(diff).st_mode) == (0o755 if fmt == "dir" else 0o644)
    finally:
        engine.rm("permc", force=True, volumes=True)
        engine.volume_rm("permvol", force=True)
        _remove_run_dir(engine)


def test_an_old_store_is_made_private_on_first_use(open_dir, tmp_path, busybox_rootfs, monkeypatch):
    monkeypatch.setenv("NUTSHELL_LAYER_FORMAT", "dir")      # what an older version made
    root = os.path.join(open_dir, "root")
    engine = Engine(root)
    diff = load_hostile_image(engine, str(tmp_path), busybox_rootfs)
    engine.volume_create("oldvol")
    data = engine.volume_inspect("oldvol")["Mountpoint"]
    shutil.copy(BUSYBOX, os.path.join(data, "suid"))
    os.chmod(os.path.join(data, "suid"), 0o4755)
    # what an older version left: every directory it made 0755
    old = [root, os.path.join(root, "blobs", "sha256"), engine.paths.run]
    old += [os.path.join(root, n) for n in OWN_DIRS if os.path.isdir(os.path.join(root, n))]
    old += [os.path.join(engine.paths.layers, n) for n in os.listdir(engine.paths.layers)]
    old += [os.path.join(engine.paths.volumes, n) for n in os.listdir(engine.paths.volumes)]
    for d in old:
        os.chmod(d, 0o755)
    rootme = os.path.join(diff, "usr/local/bin/rootme")
    exposed = [("list", root), ("exec", rootme), ("write", os.path.join(diff, "evil/null")),
               ("exec", os.path.join(data, "suid"))]
    try:
        before = as_nobody(exposed)
        assert set(before.values()) == {"ok"}, before        # the hole this closes
        # the first command on it: images are still there
        rows = [json.loads(line) for line in
                cli(root, "images", "--format", "json").stdout.splitlines()]
        assert [(r["Repository"], r["Tag"]) for r in rows] == [("localhost/hostile", "1")]
        probes = store_probes(engine, diff) + exposed[1:]
        got = as_nobody(control_probes(open_dir) + probes)
        assert [got[f"{k} {p}"] for k, p in control_probes(open_dir)] == ["ok", "ok"]
        denied = {f"{k} {p}": "EACCES" for k, p in probes}
        assert {k: got[k] for k in denied} == denied
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(engine.paths.layers).st_mode) == 0o700
        # the image's content is untouched, and it still runs, as root or as nobody
        assert stat.S_IMODE(os.lstat(rootme).st_mode) == 0o4755
        assert stat.S_IMODE(os.stat(diff).st_mode) == 0o755
        out = cli(root, "run", "--rm", "--network", "none", "--user", "65534:65534",
                  "-v", "oldvol:/vol", HOSTILE, "sh", "-c",
                  "id -u; ls -l /usr/local/bin/rootme; ls /vol").stdout.split("\n")
        assert out[0] == "65534"
        assert out[1].startswith("-rwsr-xr-x")
        assert out[2] == "suid"
    finally:
        engine.volume_rm("oldvol", force=True)
        _remove_run_dir(engine)


def test_a_user_given_root_keeps_everything_that_is_not_ours(open_dir):
    root = os.path.join(open_dir, "mine")
    os.mkdir(root, 0o755)
    os.chmod(root, 0o755)
    with open(os.path.join(root, "notes.txt"), "w") as f:
        f.write("my notes\n")
    os.chmod(os.path.join(root, "notes.txt"), 0o644)
    os.mkdir(os.path.join(root, "secret"), 0o750)
    with open(os.path.join(root, "secret", "key"), "w") as f:
        f.write("k")
    os.mkdir(os.path.join(root, "scripts"), 0o755)
    shutil.copy(BUSYBOX, os.path.join(root, "scripts", "tool"))
    os.chmod(os.path.join(root, "scripts", "tool"), 0o755)
    elsewhere = os.path.join(open_dir, "elsewhere")
    os.mkdir(elsewhere, 0o755)
    os.symlink(elsewhere, os.path.join(root, "tmp"))      # even one of our names, linked
    before = ib.snapshot(root)
    before_elsewhere = os.stat(elsewhere)
    engine = Engine(root)
    try:
        assert cli(root, "images", "--format", "json").stdout == ""
        after = ib.snapshot(root)
        assert {k: after.get(k) for k in before} == before
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
        st = os.stat(elsewhere)
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == \
            (stat.S_IMODE(before_elsewhere.st_mode), before_elsewhere.st_uid) == (0o755, 0)
        assert os.path.islink(os.path.join(root, "tmp"))
        # what is new is ours: the layout, private
        new = sorted(k for k in after if k not in before and "/" not in k)
        assert new == sorted([".lock", "blobs", "containers", "index.json", "layers",
                              "oci-layout"]), new
        for name in ("blobs", "containers", "layers"):
            assert after[name][1] == 0o700
    finally:
        _remove_run_dir(engine)


def test_a_shared_directory_is_refused_as_the_root(open_dir):
    shared = os.path.join(open_dir, "shared")
    os.mkdir(shared)
    os.chmod(shared, 0o1777)
    p = cli(shared, "images", check=False)
    assert p.returncode == 125
    assert p.stderr.splitlines()[0] == (f"nutshell: refusing to use {shared} as the state "
                                        "root: it is shared with other users (world-writable "
                                        "or /)")
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777
    assert os.listdir(shared) == []
