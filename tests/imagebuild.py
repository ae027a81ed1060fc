"""Build image archives offline for tests, independently of Nutshell's own writer.

Layers are made with GNU tar (a second implementation), archives with plain tarfile and
json, so the store is tested against formats it did not produce itself.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def gnu_tar(directory: str, xattrs: bool = True) -> bytes:
    """An uncompressed layer tar of ``directory`` made by GNU tar."""
    cmd = ["tar", "--numeric-owner", "--sort=name", "-C", directory, "-cf", "-"]
    if xattrs:
        cmd[1:1] = ["--xattrs", "--xattrs-include=*"]
    cmd.append(".")
    return subprocess.run(cmd, check=True, capture_output=True).stdout


def compress(data: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(data, compresslevel=1, mtime=0)
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    return data


class TarBuilder:
    """Hand-made tar streams (for hostile layers and precise fixtures)."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tf = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _ti(self, name, type_, mode=0o644, uid=0, gid=0, **kw):
        ti = tarfile.TarInfo(name)
        ti.type = type_
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.mtime = kw.pop("mtime", 1_600_000_000)
        for k, v in kw.items():
            setattr(ti, k, v)
        return ti

    def dir(self, name, mode=0o755, **kw):
        self.tf.addfile(self._ti(name, tarfile.DIRTYPE, mode, **kw))
        return self

    def file(self, name, data: bytes = b"", mode=0o644, **kw):
        ti = self._ti(name, tarfile.REGTYPE, mode, **kw)
        ti.size = len(data)
        self.tf.addfile(ti, io.BytesIO(data))
        return self

    def symlink(self, name, target, **kw):
        self.tf.addfile(self._ti(name, tarfile.SYMTYPE, 0o777, linkname=target, **kw))
        return self

    def hardlink(self, name, target, **kw):
        self.tf.addfile(self._ti(name, tarfile.LNKTYPE, 0o644, linkname=target, **kw))
        return self

    def chardev(self, name, major, minor, mode=0o666, **kw):
        self.tf.addfile(self._ti(name, tarfile.CHRTYPE, mode, devmajor=major, devminor=minor, **kw))
        return self

    def bytes(self) -> bytes:
        self.tf.close()
        return self.buf.getvalue()


def image_config(diff_ids: list[str], cmd=None, env=None, arch="amd64", history=None) -> dict:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "created": created,
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": cmd or ["sh"], "Env": env or ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history or [{"created": created, "created_by": f"layer {i}"} for i in range(len(diff_ids))],
    }


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mtime = 0
    tf.addfile(ti, io.BytesIO(data))


def docker_archive(path: str, layers: list[bytes], repo_tags: list[str], config: dict | None = None,
                   legacy: bool = True, compression: str = "none") -> dict:
    """Write a ``docker save`` tarball. ``legacy``: the <id>/layer.tar form of Docker < 25;
    otherwise the Docker 25+ form (blobs/sha256 + manifest.json + index.json)."""
    diff_ids = [sha(l) for l in layers]
    cfg = config or image_config(diff_ids)
    cfg_bytes = json.dumps(cfg).encode()
    stored = [compress(l, compression) for l in layers]
    with tarfile.open(path, "w") as tf:
        if legacy:
            names = []
            for i, data in enumerate(stored):
                d = hashlib.sha256(f"v1-{i}-{diff_ids[i]}".encode()).hexdigest()
                _add(tf, f"{d}/VERSION", b"1.0")
                _add(tf, f"{d}/json", json.dumps({"id": d}).encode())
                _add(tf, f"{d}/layer.tar", data)
                names.append(f"{d}/layer.tar")
            cfg_name = sha(cfg_bytes)[7:] + ".json"
            _add(tf, cfg_name, cfg_bytes)
        else:
            names = []
            for data in stored:
                _add(tf, f"blobs/sha256/{sha(data)[7:]}", data)
                names.append(f"blobs/sha256/{sha(data)[7:]}")
            cfg_name = f"blobs/sha256/{sha(cfg_bytes)[7:]}"
            _add(tf, cfg_name, cfg_bytes)
            _add(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(tf, "manifest.json", json.dumps([{"Config": cfg_name, "RepoTags": repo_tags,
                                                "Layers": names}]).encode())
    return {"config": cfg, "diff_ids": diff_ids, "image_id": sha(cfg_bytes)}


def oci_layout(files: dict[str, bytes], layers: list[bytes], ref: str | None, config: dict | None = None,
               compression: str = "gzip", ref_name_key: str = "org.opencontainers.image.ref.name") -> dict:
    """Fill ``files`` (name -> bytes) with an OCI image layout holding one image."""
    diff_ids = [sha(l) for l in layers]
    cfg = config or image_config(diff_ids)
    cfg_bytes = json.dumps(cfg).encode()
    stored = [compress(l, compression) for l in layers]
    mt = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
          "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}.get(compression,
                                                                    "application/vnd.oci.image.layer.v1.tar")
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": sha(cfg_bytes), "size": len(cfg_bytes)},
                "layers": [{"mediaType": mt, "digest": sha(s), "size": len(s)} for s in stored]}
    man_bytes = json.dumps(manifest).encode()
    for blob in [cfg_bytes, man_bytes] + stored:
        files[f"blobs/sha256/{sha(blob)[7:]}"] = blob
    desc = {"mediaType": OCI_MANIFEST, "digest": sha(man_bytes), "size": len(man_bytes)}
    if ref:
        desc["annotations"] = {ref_name_key: ref}
    files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    files["index.json"] = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                      "manifests": [desc]}).encode()
    return {"config": cfg, "diff_ids": diff_ids, "image_id": sha(cfg_bytes),
            "manifest_digest": sha(man_bytes)}


def oci_archive(path: str, layers: list[bytes], ref: str | None, **kw) -> dict:
    files: dict[str, bytes] = {}
    info = oci_layout(files, layers, ref, **kw)
    with tarfile.open(path, "w") as tf:
        for name in sorted(files):
            _add(tf, name, files[name])
    return info


def oci_dir(path: str, layers: list[bytes], ref: str | None, **kw) -> dict:
    files: dict[str, bytes] = {}
    info = oci_layout(files, layers, ref, **kw)
    for name, data in files.items():
        full = os.path.join(path, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
    return info


def snapshot(root: str, skip: tuple[str, ...] = ()) -> dict[str, tuple]:
    """Everything tests compare about a tree: type, mode, owner, size, content hash or link
    target, device numbers, xattrs, and hardlink groups (by first path of the inode)."""
    import stat as st_

    out: dict[str, tuple] = {}
    inode_first: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if rel.startswith(skip):
                continue
            s = os.lstat(full)
            try:
                xattrs = tuple(sorted((k, os.getxattr(full, k, follow_symlinks=False))
                                      for k in os.listxattr(full, follow_symlinks=False)))
            except OSError:
                xattrs = ()
            mode = s.st_mode
            if st_.S_ISREG(mode):
                with open(full, "rb") as f:
                    content = hashlib.sha256(f.read()).hexdigest()
                key = (s.st_dev, s.st_ino)
                link_group = inode_first.setdefault(key, rel) if s.st_nlink > 1 else None
                extra = (content, s.st_size, link_group)
            elif st_.S_ISLNK(mode):
                extra = (os.readlink(full),)
            elif st_.S_ISCHR(mode) or st_.S_ISBLK(mode):
                extra = (os.major(s.st_rdev), os.minor(s.st_rdev))
            else:
                extra = ()
            mtime = int(s.st_mtime) if not st_.S_ISLNK(mode) else None
            out[rel] = (st_.S_IFMT(mode), st_.S_IMODE(mode), s.st_uid, s.st_gid, mtime, xattrs) + extra
    return out
