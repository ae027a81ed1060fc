"""Benchmark: pull a ~200 MB multi-layer image from a local registry into a cold store.

    .venv/bin/python tests/benchmarks/bench_pull.py [--runs 5] [--dirs /usr/include ...]

Builds the image offline (busybox base + one layer per directory tree from /usr, gzip),
pushes it with skopeo to Debian's docker-registry on 127.0.0.1, then times:

* ``Engine.pull`` into a fresh root (median of --runs; also ``nutshell pull`` once as a
  subprocess, to include interpreter start-up);
* ``podman pull`` (overlay driver, a fresh store each run, initialised before timing) of
  the same image from the same registry, when podman is installed;
* ``skopeo copy docker://... oci:DIR`` + ``umoci unpack`` of the same image, same
  registry, same run;
* plain Python zlib decompression of the same layers, the floor for one-pass gzip.

Nothing here is asserted: it prints figures.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from tests.registry_servers import RegistryServer, skopeo_copy  # noqa: E402
from tests.rootfs import make_busybox_rootfs  # noqa: E402

DEFAULT_DIRS = ["/usr/include", "/usr/lib/python3.11", "/usr/lib/python3"]
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def _tar_tree(src: str, arcname: str, out_path: str) -> tuple[int, int]:
    """Tar ``src`` as ``arcname`` into ``out_path``; returns (bytes, entries)."""
    n = 0

    def filt(ti: tarfile.TarInfo):
        nonlocal n
        if not (ti.isreg() or ti.isdir() or ti.issym() or ti.islnk()):
            return None
        ti.mtime = int(ti.mtime)
        ti.uname = ti.gname = ""
        n += 1
        return ti

    with tarfile.open(out_path, "w", format=tarfile.PAX_FORMAT) as tf:
        tf.add(src, arcname=arcname, filter=filt)
    return os.path.getsize(out_path), n


def _gzip_file(src: str, dst: str) -> tuple[str, str, int]:
    """gzip ``src`` to ``dst``: (blob digest, diff id, blob size)."""
    h_raw, h_gz = hashlib.sha256(), hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        comp = zlib.compressobj(6, zlib.DEFLATED, 31)
        while True:
            chunk = fin.read(1 << 20)
            if not chunk:
                break
            h_raw.update(chunk)
            out = comp.compress(chunk)
            h_gz.update(out)
            fout.write(out)
        out = comp.flush()
        h_gz.update(out)
        fout.write(out)
    return "sha256:" + h_gz.hexdigest(), "sha256:" + h_raw.hexdigest(), os.path.getsize(dst)


def build_layout(workdir: str, dirs: list[str]) -> tuple[str, int, int]:
    """An OCI layout with the image; returns (layout dir, unpacked bytes, entries)."""
    layout = os.path.join(workdir, "layout")
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    bb = make_busybox_rootfs(os.path.join(workdir, "busybox"))
    sources = [(bb, ".")] + [(d, d.lstrip("/")) for d in dirs]
    tars, total, entries = [], 0, 0
    for i, (src, arc) in enumerate(sources):
        path = os.path.join(workdir, f"layer{i}.tar")
        size, n = _tar_tree(src, arc, path)
        tars.append(path)
        total += size
        entries += n
    results: list = [None] * len(tars)

    def work(i: int) -> None:
        tmp = os.path.join(workdir, f"layer{i}.tar.gz")
        digest, diff_id, size = _gzip_file(tars[i], tmp)
        os.replace(tmp, os.path.join(blobs, digest.split(":")[1]))
        results[i] = (digest, diff_id, size)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(tars))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in tars:
        os.unlink(p)
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [r[1] for r in results]},
        "history": [{"created_by": f"bench layer {i}"} for i in range(len(results))],
    }).encode()
    cd = "sha256:" + hashlib.sha256(config).hexdigest()
    with open(os.path.join(blobs, cd.split(":")[1]), "wb") as f:
        f.write(config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": r[0], "size": r[2]} for r in results],
    }).encode()
    md = "sha256:" + hashlib.sha256(manifest).hexdigest()
    with open(os.path.join(blobs, md.split(":")[1]), "wb") as f:
        f.write(manifest)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
            "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, f)
    return layout, total, entries


def _drop_tree(path: str) -> None:
    subprocess.run(["rm", "-rf", "--one-file-system", path], check=False)


def _settle() -> None:
    """Flush dirty pages (the previous run's files, their deletion) before timing the next
    run, so one run's writeback is not billed to the next."""
    os.sync()
    time.sleep(0.5)


def time_nutshell(ref: str, runs: int, workdir: str) -> list[float]:
    from core.engine import Engine

    times = []
    for i in range(runs):
        root = os.path.join(workdir, f"root-{i}")
        e = Engine(root)
        _settle()
        t = time.perf_counter()
        e.pull(ref)
        times.append(time.perf_counter() - t)
        _drop_tree(root)
    return times


def time_nutshell_cli(ref: str, workdir: str) -> float:
    root = os.path.join(workdir, "root-cli")
    _settle()
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "workbench", "--root", root, "pull", "-q", ref],
                   check=True, capture_output=True)
    dt = time.perf_counter() - t
    _drop_tree(root)
    return dt


def time_skopeo_umoci(ref: str, runs: int, workdir: str) -> list[float]:
    times = []
    for i in range(runs):
        oci = os.path.join(workdir, f"skopeo-{i}")
        bundle = os.path.join(workdir, f"bundle-{i}")
        _settle()
        t = time.perf_counter()
        skopeo_copy(f"docker://{ref}", f"oci:{oci}:bench", timeout=600)
        subprocess.run(["umoci", "unpack", "--image", f"{oci}:bench", bundle], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - t)
        _drop_tree(oci)
        _drop_tree(bundle)
    return times


def time_podman(ref: str, runs: int, workdir: str) -> list[float] | None:
    """``podman pull`` of the same image from the same registry into a fresh store each run
    (overlay driver; the store initialised before the clock starts), or None when podman
    is not installed or does not work here."""
    podman = shutil.which("podman")
    if not podman:
        return None
    times = []
    for i in range(runs):
        root = os.path.join(workdir, f"podman-{i}")
        runroot = tempfile.mkdtemp(prefix="nsp-", dir="/tmp")
        base = [podman, "--root", root, "--runroot", runroot, "--storage-driver", "overlay",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
        try:
            init = subprocess.run(base + ["images"], capture_output=True, text=True, timeout=120)
            if init.returncode != 0:
                print(f"podman does not work here: {init.stderr.strip()[:300]}")
                return None
            _settle()
            t = time.perf_counter()
            p = subprocess.run(base + ["pull", "-q", "--tls-verify=false", ref], capture_output=True,
                               text=True, timeout=600)
            dt = time.perf_counter() - t
            if p.returncode != 0:
                print(f"podman pull failed: {p.stderr.strip()[:300]}")
                return None
            times.append(dt)
        finally:
            subprocess.run(base + ["system", "reset", "-f"], capture_output=True, timeout=120)
            _drop_tree(root)
            _drop_tree(runroot)
    return times


def time_zlib(layout: str) -> float:
    with open(os.path.join(layout, "index.json")) as f:
        md = json.load(f)["manifests"][0]["digest"]
    with open(os.path.join(layout, "blobs", "sha256", md.split(":")[1])) as f:
        layers = json.load(f)["layers"]
    t = time.perf_counter()
    for layer in layers:
        with gzip.open(os.path.join(layout, "blobs", "sha256", layer["digest"].split(":")[1])) as g:
            while g.read(1 << 20):
                pass
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dirs", nargs="*", default=DEFAULT_DIRS)
    ap.add_argument("--no-peer", action="store_true", help="skip podman and skopeo + umoci")
    ap.add_argument("--cache", metavar="DIR", help="keep/reuse the built image layout in DIR")
    ap.add_argument("--dest", default="/var/tmp", metavar="DIR",
                    help="where stores/bundles are written (e.g. /dev/shm to take the disk out)")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="nutshell-bench-pull-", dir=args.dest)
    print(f"destination file system: {args.dest}")
    srv = None
    try:
        t = time.perf_counter()
        cached = os.path.join(args.cache, "layout") if args.cache else None
        if cached and os.path.exists(os.path.join(cached, "index.json")):
            layout = cached
            with open(os.path.join(args.cache, "stats.json")) as f:
                unpacked, entries = json.load(f)
        else:
            build_dir = args.cache or workdir
            os.makedirs(build_dir, exist_ok=True)
            layout, unpacked, entries = build_layout(build_dir, [d for d in args.dirs if os.path.isdir(d)])
            if args.cache:
                with open(os.path.join(args.cache, "stats.json"), "w") as f:
                    json.dump([unpacked, entries], f)
        blob_bytes = sum(os.path.getsize(os.path.join(layout, "blobs", "sha256", n))
                         for n in os.listdir(os.path.join(layout, "blobs", "sha256")))
        print(f"image: {len(args.dirs) + 1} layers, {unpacked / 1e6:.0f} MB unpacked tar, "
              f"{entries} entries, {blob_bytes / 1e6:.0f} MB gzip (built in {time.perf_counter() - t:.1f} s)")
        srv = RegistryServer("anonymous", workdir=os.path.join(workdir, "registry")).start()
        ref = f"{srv.host}/bench/usr:latest"
        skopeo_copy(f"oci:{layout}:bench", f"docker://{ref}", timeout=600)
        zl = time_zlib(layout)
        print(f"python zlib inflate of all layers (one thread): {zl:.2f} s")
        from core.store.layerimage import layer_format

        fmt = layer_format()
        ns = time_nutshell(ref, args.runs, workdir)
        print(f"nutshell Engine.pull, cold store, layers as {fmt}: median {statistics.median(ns):.2f} s "
              f"(runs: {', '.join(f'{x:.2f}' for x in ns)})")
        if fmt != "dir":
            os.environ["NUTSHELL_LAYER_FORMAT"] = "dir"
            try:
                nd = time_nutshell(ref, args.runs, workdir)
            finally:
                del os.environ["NUTSHELL_LAYER_FORMAT"]
            print(f"nutshell Engine.pull, cold store, layers as dir: median {statistics.median(nd):.2f} s "
                  f"(runs: {', '.join(f'{x:.2f}' for x in nd)})")
        cli = time_nutshell_cli(ref, workdir)
        print(f"nutshell pull (CLI subprocess, once): {cli:.2f} s")
        if not args.no_peer:
            pm = time_podman(ref, args.runs, workdir)
            if pm:
                print(f"podman pull (overlay), cold store: median {statistics.median(pm):.2f} s "
                      f"(runs: {', '.join(f'{x:.2f}' for x in pm)})")
                print(f"ratio nutshell / podman: {statistics.median(ns) / statistics.median(pm):.2f}")
        if not args.no_peer and shutil.which("skopeo") and shutil.which("umoci"):
            su = time_skopeo_umoci(ref, args.runs, workdir)
            print(f"skopeo copy + umoci unpack: median {statistics.median(su):.2f} s "
                  f"(runs: {', '.join(f'{x:.2f}' for x in su)})")
            print(f"ratio nutshell / (skopeo + umoci): {statistics.median(ns) / statistics.median(su):.2f}")
    finally:
        if srv is not None:
            srv.stop()
        _drop_tree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
