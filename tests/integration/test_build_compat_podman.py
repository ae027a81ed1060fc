"""The same Dockerfiles built by Nutshell and by `podman build` (4.3, with runc, installed by
setup.sh) from the same context must give the same image: the config fields a container
uses and the flattened file system (every path's type, mode, owner, size and content hash,
link targets, hardlinks). Both images are read the same way: `save` as a docker-archive,
layers applied in order with their whiteouts.

Each base is built from scratch in the build itself (`ADD rootfs.tar /`, a busybox tree), so
neither builder needs a registry. podman runs on a private root (vfs, runc, cgroupfs, the file
events backend) and never touches the host's podman store.

Known podman-4.3 deviations from BuildKit, left out of the comparison: EXPOSE with a port
range (podman keeps "8000-8001/tcp" as one key, BuildKit expands it) and the owner of a
directory WORKDIR creates after USER (podman: root; BuildKit: the user) - the Dockerfiles
here avoid both; heredocs (podman 4.3's buildah has none: "COPY <<EOF" is a file named
"<<EOF"), so the heredoc Dockerfile is built by Nutshell only and checked against BuildKit's
documented result; after a RUN, buildah leaves the empty mount points /etc/hosts,
/etc/resolv.conf and /run in the image, which are ignored; podman adds the label
io.buildah.version, which is ignored. podman builds with --format docker (its OCI format
drops HEALTHCHECK).

What the comparison found, fixed before it passed: a stage without PATH in its Env (FROM
scratch) gets BuildKit's default PATH (dockerfile2llb: "make sure that PATH is always set").
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

import pytest

from core.dockerfile.builder import BuildOptions
from core.engine import Engine

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG_FIELDS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts",
                 "Volumes", "StopSignal", "Healthcheck", "Shell", "OnBuild")
IGNORED_LABELS = ("io.buildah.version",)
BUILDAH_MOUNT_POINTS = ("/etc/hosts", "/etc/resolv.conf", "/run")
PODMAN_LACKS = {"heredocs": "podman 4.3 (buildah 1.28) has no heredocs"}
# seen here, where podman 4.3 departs from BuildKit and Docker:
# - ADD of a local tar: buildah 1.28 gives the members 0:0 and 0644 (Docker's untar and
#   BuildKit keep the archive's owners and modes, as Nutshell does): owner and mode of those
#   paths are not compared;
# - WORKDIR with no later step using it: buildah does not create the directory in the image
#   (BuildKit's dispatchWorkdir makes it): those paths may be ours alone.
PODMAN_KEEPS_NO_OWNER_UNDER = {"files": "/opt/bundle/lib/"}
PODMAN_SKIPS_WORKDIR = {"metadata": ("/srv", "/srv/app")}

DOCKERFILES = {
    "metadata": """\
        FROM scratch
        ADD rootfs.tar /
        ARG VERSION=1.0
        ENV APP_HOME=/srv/app PATH=/bin:/usr/bin
        ENV APP_VERSION=${VERSION}
        LABEL org.example.name="demo app" org.example.version=$VERSION
        EXPOSE 80 443/tcp 53/udp
        VOLUME /data
        STOPSIGNAL SIGQUIT
        HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["true"]
        WORKDIR $APP_HOME
        ENTRYPOINT ["/bin/sh", "-c"]
        CMD ["echo hello"]
        """,
    "files": """\
        FROM scratch
        ADD rootfs.tar /
        COPY --chown=1000:1000 app/ /srv/app/
        COPY --chmod=0750 tool.sh /usr/local/bin/tool
        ADD bundle.tar /opt/bundle/
        RUN mkdir -p /var/cache/demo && echo built > /var/cache/demo/stamp \\
            && ln -s /srv/app/config.json /etc/demo.json && chmod 4755 /usr/local/bin/tool
        RUN rm -rf /opt/bundle/drop && touch /opt/bundle/new
        """,
    "multistage": """\
        FROM scratch AS base
        ADD rootfs.tar /

        FROM base AS builder
        RUN mkdir -p /out/bin && echo '#!/bin/sh' > /out/bin/run && echo 'echo ok' >> /out/bin/run \\
            && chmod 755 /out/bin/run && ln /out/bin/run /out/bin/run-hardlink

        FROM base
        COPY --from=builder /out /app
        USER 1000:1000
        CMD ["/app/bin/run"]
        """,
    "heredocs": """\
        FROM scratch
        ADD rootfs.tar /
        ENV GREETING=hello
        COPY <<EOF /etc/greeting
        $GREETING world
        EOF
        COPY <<"EOF" /etc/literal
        $GREETING stays
        EOF
        RUN <<EOF
        mkdir -p /made/by/heredoc
        echo one > /made/by/heredoc/one
        EOF
        """,
}


def _bundle() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        def add(name, kind, data=b"", mode=0o644, uid=0, gid=0, link=""):
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.mode, ti.uid, ti.gid = 1_600_000_000, mode, uid, gid
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, link
                tf.addfile(ti)
            elif kind == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, link
                tf.addfile(ti)
            else:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
        add("lib/", "dir", mode=0o755)
        add("lib/data.bin", "file", os.urandom(3000), mode=0o640, uid=12, gid=34)
        add("lib/data-link", "hardlink", link="lib/data.bin")
        add("lib/current", "symlink", link="data.bin")
        add("drop/", "dir", mode=0o700)
        add("drop/gone", "file", b"x")
        add("bin/", "dir", mode=0o755)
        add("bin/suid", "file", b"#!/bin/sh\n", mode=0o4755)
    return buf.getvalue()


def _context(path: str, name: str, rootfs_tar: bytes) -> str:
    ctx = os.path.join(path, name)
    os.makedirs(os.path.join(ctx, "app"))
    lines = [line[8:] if line.startswith("        ") else line
             for line in DOCKERFILES[name].splitlines()]
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(ctx, "rootfs.tar"), "wb") as f:
        f.write(rootfs_tar)
    with open(os.path.join(ctx, "bundle.tar"), "wb") as f:
        f.write(_bundle())
    with open(os.path.join(ctx, "app", "config.json"), "w") as f:
        f.write('{"a": 1}\n')
    with open(os.path.join(ctx, "app", "run.sh"), "w") as f:
        f.write("#!/bin/sh\necho app\n")
    os.chmod(os.path.join(ctx, "app", "run.sh"), 0o755)
    with open(os.path.join(ctx, "tool.sh"), "w") as f:
        f.write("#!/bin/sh\necho tool\n")
    return ctx


# ---- reading an image the same way for both ---------------------------------------------------


def flatten(archive: str) -> tuple[dict, dict]:
    """(config, {path: entry}) of the one image in a docker-archive, layers applied in
    order with their whiteouts; an entry is (type, mode, uid, gid, size, sha256 or link)."""
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        config = json.load(outer.extractfile(manifest["Config"]))
        tree: dict[str, tuple] = {}
        links: dict[str, str] = {}
        for layer_name in manifest["Layers"]:
            raw = outer.extractfile(layer_name).read()
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as layer:
                for m in layer:
                    path = "/" + m.name.lstrip("./").rstrip("/") if m.name not in (".", "./") else "/"
                    parent, _, base = path.rpartition("/")
                    if base == ".wh..wh..opq":
                        for p in [p for p in tree if p.startswith(parent + "/")]:
                            del tree[p]
                        continue
                    if base.startswith(".wh."):
                        gone = parent + "/" + base[4:]
                        for p in [p for p in tree if p == gone or p.startswith(gone + "/")]:
                            del tree[p]
                        continue
                    if m.isdir():
                        kind, extra = "dir", ""
                    elif m.issym():
                        kind, extra = "symlink", m.linkname
                    elif m.islnk():
                        target = "/" + m.linkname.lstrip("./")
                        kind, extra = "hardlink-to", target
                        links[path] = target
                    elif m.isreg():
                        kind = "file"
                        extra = hashlib.sha256(layer.extractfile(m).read()).hexdigest()
                    else:
                        kind, extra = f"type-{m.type!r}", f"{m.devmajor}:{m.devminor}"
                    tree[path] = (kind, m.mode & 0o7777, m.uid, m.gid, m.size, extra)
    # a hard link is the same file: compare it as its target's content, not as a link
    for path, target in links.items():
        if path in tree and target in tree:
            tree[path] = tree[target][:5] + (tree[target][5],)
            tree[path] = ("file",) + tree[path][1:]
    return config, tree


def runtime_config(config: dict) -> dict:
    c = config.get("config") or {}
    # "" / [] / {} and a missing field mean the same to a runtime (podman writes the former)
    out = {k: c.get(k) or None for k in CONFIG_FIELDS}
    labels = {k: v for k, v in (out["Labels"] or {}).items() if k not in IGNORED_LABELS}
    out["Labels"] = labels or None
    for k in ("ExposedPorts", "Volumes"):
        out[k] = sorted(out[k]) if out[k] else None
    return out


# ---- the builders -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    exe = shutil.which("podman")
    if exe is None:
        pytest.skip("podman is not installed (setup.sh installs it)")
    root = str(tmp_path_factory.mktemp("podman"))
    runroot = tempfile.mkdtemp(prefix="nsp-", dir="/tmp")  # podman wants it under 50 characters
    base = [exe, "--root", f"{root}/storage", "--runroot", runroot, "--storage-driver", "vfs",
            "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
    probe = os.path.join(root, "probe")
    os.makedirs(probe)
    with open(os.path.join(probe, "Dockerfile"), "w") as f:
        f.write("FROM scratch\nLABEL probe=1\n")
    p = subprocess.run(base + ["build", "-q", "-t", "probe", probe], capture_output=True, text=True,
                       timeout=300)
    if p.returncode != 0:
        pytest.skip(f"podman cannot build here: {p.stderr.strip()[-300:]}")
    yield base
    subprocess.run(base + ["system", "reset", "-f"], capture_output=True, timeout=300)
    subprocess.run(["umount", "-R", f"{root}/storage"], capture_output=True)
    shutil.rmtree(runroot, ignore_errors=True)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return Engine(str(tmp_path_factory.mktemp("compat-root")))


@pytest.fixture(scope="module")
def rootfs_tar(busybox_rootfs) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(busybox_rootfs, arcname=".")
    return buf.getvalue()


@pytest.mark.parametrize("name", sorted(set(DOCKERFILES) - set(PODMAN_LACKS)))
def test_same_image_as_podman_build(engine, podman, rootfs_tar, tmp_path, name):
    ctx = _context(str(tmp_path), name, rootfs_tar)
    tag = f"localhost/compat-{name}:1"
    engine.build(BuildOptions(context=ctx, tags=[tag]))
    ours = str(tmp_path / "ours.tar")
    engine.save([tag], ours)
    p = subprocess.run(podman + ["build", "-q", "--format", "docker", "--ulimit", "nofile=20000:20000",
                                 "-t", tag, ctx],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    theirs = str(tmp_path / "podman.tar")
    p = subprocess.run(podman + ["save", "--format", "docker-archive", "-o", theirs, tag],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    our_cfg, our_tree = flatten(ours)
    their_cfg, their_tree = flatten(theirs)
    for path in BUILDAH_MOUNT_POINTS:
        if path not in our_tree and their_tree.get(path, ("",))[0] in ("file", "dir") \
                and their_tree[path][4] == 0:
            del their_tree[path]
    assert runtime_config(our_cfg) == runtime_config(their_cfg)
    for path in PODMAN_SKIPS_WORKDIR.get(name, ()):
        if path not in their_tree and our_tree.get(path, ("",))[0] == "dir":
            del our_tree[path]
    under = PODMAN_KEEPS_NO_OWNER_UNDER.get(name)
    if under:
        for tree in (our_tree, their_tree):
            for path in [p for p in tree if p.startswith(under) and tree[p][0] == "file"]:
                tree[path] = (tree[path][0], None, None, None) + tree[path][4:]
    missing = sorted(set(their_tree) - set(our_tree))
    extra = sorted(set(our_tree) - set(their_tree))
    differ = {p: (our_tree[p], their_tree[p]) for p in sorted(set(our_tree) & set(their_tree))
              if our_tree[p] != their_tree[p] and p != "/"}
    assert (missing, extra, differ) == ([], [], {})


def test_heredoc_image_as_buildkit_documents_it(engine, rootfs_tar, tmp_path):
    """The heredoc Dockerfile (podman 4.3 cannot build it): BuildKit's documented result -
    an unquoted terminator expands, a quoted one does not, a RUN heredoc is a script."""
    ctx = _context(str(tmp_path), "heredocs", rootfs_tar)
    engine.build(BuildOptions(context=ctx, tags=["localhost/compat-heredocs:1"]))
    out = str(tmp_path / "ours.tar")
    engine.save(["localhost/compat-heredocs:1"], out)
    _, tree = flatten(out)
    expected = {"/etc/greeting": b"hello world\n", "/etc/literal": b"$GREETING stays\n",
                "/made/by/heredoc/one": b"one\n"}
    for path, data in expected.items():
        assert tree[path][0] == "file" and tree[path][5] == hashlib.sha256(data).hexdigest(), path
