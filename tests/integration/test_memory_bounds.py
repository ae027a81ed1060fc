"""Memory stays under a fixed ceiling whatever the archive (issue 13, item 1).

Each bomb is built here, small on disk (about 1 MB: gzip members that each stand for
megabytes of zeros, concatenated), and fed to a real ``nutshell`` (or the code path it
runs) in a child process whose peak RSS is read from ``wait4``. On the code before the
fix, the same tests measured: ``load`` of 250 members of 4 MiB 1,994 MB; a 768 MiB PAX
header read whole and accepted; 60,000 entries with a 4 KB PAX record each, all kept in
``tarfile``'s member list: load 622 MB, build context 307 MB, ADD 348 MB, cp over 448 MB
and still running after 11 minutes; a layer whose gzip stream inflates 1,000:1, out of
zlib as one 1 GiB string: load 1,554 MB, pull 1,556 MB. Now each stays within a few MB of
an idle CLI (35-40 MB).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tarfile

import pytest

from tests.registry_servers import (
    LAYER_TYPES,
    OCI_CONFIG,
    OCI_MANIFEST,
    TestImage,
    push_with_skopeo,
    sha256,
    unique_repo,
)
from tests.runtime_root import IMAGE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CEILING_MB = 150        # an idle CLI is about 35 MB here
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MiB = 1 << 20


# ---- bombs: concatenated gzip members (a valid multi-member gzip stream) -----------------


def header(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size, ti.type, ti.mode = size, kind, 0o755
    return ti.tobuf(format=tarfile.USTAR_FORMAT)


ZEROS_1M = gzip.compress(bytes(MiB), 9)
TRAILER = gzip.compress(bytes(1024))


def many_members(path: str, n: int = 250, size: int = 4 * MiB) -> None:
    """n regular files of ``size`` zero bytes (each would once have been held in memory)."""
    with open(path, "wb") as f:
        for i in range(n):
            f.write(gzip.compress(header(f"m{i}", size)))
            f.write(ZEROS_1M * (size // MiB))
        f.write(TRAILER)


def huge_pax(path: str, size: int = 768 * MiB) -> None:
    """A PAX extended header of ``size`` bytes, then one file."""
    with open(path, "wb") as f:
        f.write(gzip.compress(header("././@PaxHeader", size, tarfile.XHDTYPE)))
        f.write(ZEROS_1M * (size // MiB))
        f.write(gzip.compress(header("f")) + TRAILER)


def many_headers(path: str, n: int = 60_000) -> None:
    """n entries of the same directory ``d/``, each with a 4 KB PAX record (tarfile kept a
    TarInfo and its PAX dict per entry: 557 MB for 100,000). One gzip member, as the old
    tarfile-based readers stopped at the end of the first."""
    ti = tarfile.TarInfo("d/")
    ti.type, ti.mode, ti.pax_headers = tarfile.DIRTYPE, 0o755, {"NUTSHELL.pad": "x" * 4000}
    chunk = ti.tobuf(format=tarfile.PAX_FORMAT) * 1000
    with gzip.GzipFile(path, "wb", compresslevel=6) as f:
        for _ in range(n // 1000):
            f.write(chunk)
        f.write(bytes(1024))


def fifo_bomb() -> tuple[bytes, str]:
    """A valid layer (one FIFO whose header claims 1 GiB of data, skipped by readers) whose
    gzip stream inflates 1,000:1: (blob, diff_id)."""
    h = header("p", 1 << 30, tarfile.FIFOTYPE)
    blob = gzip.compress(h) + ZEROS_1M * 1024 + TRAILER
    diff = hashlib.sha256(h)
    zeros = bytes(MiB)
    for _ in range(1024):
        diff.update(zeros)
    diff.update(bytes(1024))
    return blob, "sha256:" + diff.hexdigest()


# ---- measuring ---------------------------------------------------------------------------


# A small process that forks the command and reports its peak RSS. Measured from the test
# process directly, ru_maxrss would include the test worker's own peak: exec records the
# old address space's high-water mark, and subprocess starts children with vfork.
_RSS = """import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"\\nRSS_KB={usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak(cmd: list[str], stdin_path: str | None = None, env: dict | None = None) -> tuple[int, str, int]:
    """(exit code, stderr, peak RSS in MB) of ``cmd`` run as a child process."""
    with open(stdin_path or os.devnull, "rb") as stdin:
        p = subprocess.run([sys.executable, "-c", _RSS, *cmd], stdin=stdin, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, cwd=REPO, env=env)
    err, _, rss = p.stderr.decode(errors="replace").rpartition("\nRSS_KB=")
    return p.returncode, err, int(rss) // 1024


def nutshell(root: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "workbench", "--root", root, *args]


def blobs(root: str) -> set[str]:
    d = os.path.join(root, "blobs", "sha256")
    return set(os.listdir(d)) if os.path.isdir(d) else set()


# ---- load ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bomb, message", [
    (many_members, "archive contains no images"),
    (huge_pax, "tar header of 805306368 bytes exceeds the 1048576 byte cap"),
    (many_headers, "archive contains no files"),
])
def test_load_of_a_bomb_stays_under_the_ceiling_and_stores_nothing(tmp_path, bomb, message):
    path = str(tmp_path / "bomb.tar.gz")
    bomb(path)
    assert os.path.getsize(path) < 2 * MiB
    root = str(tmp_path / "root")
    rc, err, rss = peak(nutshell(root, "load", "-i", path))
    assert rc == 125 and message in err and len(err.strip().splitlines()) == 1, (rc, err)
    assert rss < CEILING_MB, f"load peaked at {rss} MB"
    assert blobs(root) == set()


def test_load_of_a_layer_that_inflates_a_thousandfold(tmp_path):
    """A valid image whose layer is the FIFO bomb: loaded, within the ceiling."""
    layer, diff_id = fifo_bomb()
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    path = str(tmp_path / "image.tar")
    with tarfile.open(path, "w") as tf:
        for name, data in [("layer.tar.gz", layer), ("config.json", cfg),
                           ("manifest.json", json.dumps([{"Config": "config.json",
                                                          "RepoTags": ["bomb:1"],
                                                          "Layers": ["layer.tar.gz"]}]).encode())]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, __import__("io").BytesIO(data))
    root = str(tmp_path / "root")
    rc, err, rss = peak(nutshell(root, "load", "-i", path))
    assert rc == 0, err
    assert rss < CEILING_MB, f"load peaked at {rss} MB"


def test_import_of_60k_pax_entries(tmp_path):
    """import stores the decompressed tar as a blob, then unpacks it as pull does."""
    path = str(tmp_path / "rootfs.tar.gz")
    many_headers(path)
    root = str(tmp_path / "root")
    rc, err, rss = peak(nutshell(root, "import", path, "bomb/imported:1"))
    assert rc == 0, err
    assert rss < CEILING_MB, f"import peaked at {rss} MB"


# ---- pull ----------------------------------------------------------------------------------


def test_pull_of_a_layer_that_inflates_a_thousandfold(tmp_path, registry, registry_env):
    layer, diff_id = fifo_bomb()
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": [diff_id]}}, sort_keys=True).encode()
    desc = {"mediaType": LAYER_TYPES[("oci", "gzip")], "digest": sha256(layer), "size": len(layer)}
    man = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                      "config": {"mediaType": OCI_CONFIG, "digest": sha256(cfg), "size": len(cfg)},
                      "layers": [desc]}).encode()
    image = TestImage(man, cfg, [desc], {sha256(layer): layer, sha256(cfg): cfg})
    ref = push_with_skopeo(str(tmp_path), registry, unique_repo("bomb"), "v1", [image])
    root = str(tmp_path / "root")
    rc, err, rss = peak(nutshell(root, "pull", ref), env=dict(os.environ, **registry_env))
    assert rc == 0, err
    assert rss < CEILING_MB, f"pull peaked at {rss} MB"


# ---- cp, build contexts, ADD -------------------------------------------------------------------


def test_cp_of_60k_headers_into_a_container(rt, tmp_path):
    path = str(tmp_path / "headers.tar.gz")
    many_headers(path)
    cid = rt.cli("create", "--network", "none", IMAGE, "true", check=True).stdout.strip()
    try:
        rc, err, rss = peak(nutshell(rt.root, "cp", "-", f"{cid}:/tmp"), stdin_path=path)
        assert rc == 0, err
        assert rss < CEILING_MB, f"cp peaked at {rss} MB"
    finally:
        rt.cli("rm", "-f", cid)


def test_build_context_of_60k_headers(tmp_path):
    """The API's POST /build context goes through core/dockerfile/tarcontext.unpacked."""
    path = str(tmp_path / "context.tar.gz")
    many_headers(path)
    code = ("import sys\nfrom core.dockerfile.tarcontext import unpacked\n"
            "with open(sys.argv[1], 'rb') as f, unpacked(f, sys.argv[2]) as d:\n"
            "    pass\n")
    rc, err, rss = peak([sys.executable, "-c", code, path, str(tmp_path / "ctx")])
    assert rc == 0, err
    assert rss < CEILING_MB, f"context unpack peaked at {rss} MB"


def test_add_of_an_archive_of_60k_headers(rt, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    many_headers(str(ctx / "bomb.tar.gz"))
    (ctx / "Dockerfile").write_text(f"FROM {IMAGE}\nADD bomb.tar.gz /x/\n")
    rc, err, rss = peak(nutshell(rt.root, "build", "-q", "-t", "bomb-add:1", str(ctx)))
    try:
        assert rc == 0, err
        assert rss < CEILING_MB, f"build peaked at {rss} MB"
    finally:
        rt.cli("rmi", "-f", "bomb-add:1")
