"""``docker cp``'s endpoints: GET/HEAD/PUT ``/containers/{id}/archive``.

Everything goes through ``Engine.copy_from_container`` / ``copy_to_container`` (core/fs/cp.py):
paths are resolved inside the container's root (symlinks clamped to it, never the host's),
and a tar sent by the client is extracted below one directory fd, every entry created
without following symlinks — ``..``, absolute names, links out of the root are refused or
clamped there. The stat header is Docker's: base64 of ``{name, size, mode, mtime,
linkTarget}`` with ``mode`` as Go's ``os.FileMode`` (the CLI tests its directory and
symlink bits) and ``mtime`` in RFC 3339.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import stat
import time
from collections.abc import Iterator

from core.errors import NotFound, UnsafeLayer
from core.fs.cp import CopyError

from .http import HTTPError, Request
from .router import Routes

routes = Routes()

# Go's os.FileMode type bits
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_CHARDEV = 1 << 21
_GO_STICKY = 1 << 20


def go_file_mode(mode: int) -> int:
    """A Unix ``st_mode`` as Go's ``os.FileMode``."""
    out = mode & 0o777
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFDIR:
        out |= _GO_DIR
    elif kind == stat.S_IFLNK:
        out |= _GO_SYMLINK
    elif kind == stat.S_IFBLK:
        out |= _GO_DEVICE
    elif kind == stat.S_IFCHR:
        out |= _GO_DEVICE | _GO_CHARDEV
    elif kind == stat.S_IFIFO:
        out |= _GO_PIPE
    elif kind == stat.S_IFSOCK:
        out |= _GO_SOCKET
    if mode & stat.S_ISUID:
        out |= _GO_SETUID
    if mode & stat.S_ISGID:
        out |= _GO_SETGID
    if mode & stat.S_ISVTX:
        out |= _GO_STICKY
    return out


def stat_header(st: dict) -> str:
    mtime = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(st.get("mtime") or 0)))
    doc = {"name": st["name"], "size": int(st["size"]), "mode": go_file_mode(int(st["mode"])),
           "mtime": mtime, "linkTarget": st.get("linkTarget") or ""}
    return base64.b64encode(json.dumps(doc).encode()).decode()


def _path(req: Request) -> str:
    path = req.q("path")
    if not path:
        raise HTTPError(400, "bad parameter: path cannot be empty")
    if "\x00" in path:
        raise HTTPError(400, "bad parameter: path contains a NUL byte")
    return path


@contextlib.contextmanager
def _copy_errors(req: Request, path: str) -> Iterator[None]:
    """dockerd's answers to a copy that fails: 404 for a missing path, 400 for one that
    would leave the container or is refused, the errno's answer for the rest."""
    try:
        yield
    except NotFound:
        raise HTTPError(404, f"Could not find the file {path} in container {req.params['id']}") from None
    except (UnsafeLayer, CopyError) as exc:
        raise HTTPError(400, str(exc)) from None
    except OSError as exc:
        _refused(exc, path)
        raise


def _open(engine, req: Request):
    cid = engine.container(req.params["id"])
    path = _path(req)
    with _copy_errors(req, path):
        return engine.copy_from_container(cid, path)


def _refused(exc: OSError, path: str) -> None:
    """A file system error of the container's: a path the resolution inside the root
    refused (a magic link such as /proc/self/root, a symlink loop, a way out of the root),
    a file that cannot be created there (procfs, sysfs, read-only): the client's 400 (404
    when a path is missing), not a server error."""
    what = f"{path}: {os.strerror(exc.errno)}" if exc.errno else path
    if exc.errno == errno.ENOENT:
        raise HTTPError(404, f"Could not find the file {what}") from None
    if exc.errno in (errno.ELOOP, errno.EXDEV, errno.ENOTDIR, errno.EISDIR, errno.EROFS,
                     errno.EPERM, errno.EACCES, errno.EINVAL, errno.EEXIST, errno.ENOTEMPTY):
        raise HTTPError(400, f"cannot copy {what}") from None


@routes.route("HEAD", "/containers/{id}/archive")
def head(engine, req: Request) -> None:
    stream = _open(engine, req)
    try:
        header = stat_header(stream.stat)
    finally:
        try:
            stream.close()
        except OSError:
            pass
        except Exception:  # noqa: BLE001 - the producer's error on a stream nobody reads
            pass
    req.send_empty(200, {"X-Docker-Container-Path-Stat": header, "Content-Type": "application/json"})


@routes.route("GET", "/containers/{id}/archive")
def get(engine, req: Request) -> None:
    stream = _open(engine, req)
    try:
        out = req.stream(200, "application/x-tar",
                         {"X-Docker-Container-Path-Stat": stat_header(stream.stat)})
        while True:
            data = stream.read(64 * 1024)
            if not data:
                break
            out.write(data)
    except BaseException:
        try:
            stream.close()
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass
        raise
    stream.close()
    out.close()


@routes.route("PUT", "/containers/{id}/archive")
def put(engine, req: Request) -> None:
    cid = engine.container(req.params["id"])
    path = _path(req)
    keep_owners = req.qbool("copyUIDGID")
    # dockerd: a directory may be replaced by a file (and the reverse) unless the client
    # sends noOverwriteDirNonDir=true, as docker cp does
    replace = not req.qbool("noOverwriteDirNonDir")
    with _copy_errors(req, path):
        engine.copy_to_container(cid, path, req, archive=keep_owners, replace_kinds=replace)
    req.send_empty(200)

