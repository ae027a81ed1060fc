"""The build context: what COPY and ADD can see, and the cache key of what they copy.

A :class:`BuildContext` is a directory seen through its ``.dockerignore``. It never
follows a symlink while walking, opens every directory and file relative to its parent
with ``O_NOFOLLOW`` (so a directory swapped for a symlink mid-build is refused, not
followed), and resolves COPY sources the way Docker does: a source path that names a
symlink is followed *inside* the context (an absolute target or ``..`` stops at the
context root, like a chroot); symlinks found inside a copied directory are copied as
symlinks. A source written to climb out of the context (``../x``) is an error that names
the Dockerfile line.

``sources(patterns)`` expands COPY/ADD sources (Go ``filepath.Match`` globs, directories
expanded to their contents) into :class:`Source` objects the builder copies from, and
``content_hash(patterns)`` digests exactly that list: for every file its path, type,
mode, owner, size, link target and content sha256 (never its mtime), so the digest is a
build-cache key that changes when a copied file's content, mode or owner changes, or a
file appears or disappears, and not when a file is merely touched.

Docker always sends the Dockerfile and ``.dockerignore`` even when the ignore file
excludes them; :meth:`BuildContext.walk` lists them flagged ``build_file=True``, and
COPY/ADD (as Docker documents) does not see them.
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import hashlib
import json
import lzma
import os
import posixpath
import stat
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import BinaryIO

from core.dockerfile.dockerignore import (
    BadPattern,
    PatternMatcher,
    has_wildcards,
    load,
    match,
)
from core.errors import NutshellError
from core.fsutil import file_kind

__all__ = [
    "ContextError",
    "Entry",
    "Source",
    "BuildContext",
    "walk",
    "content_hash",
    "archive_format",
    "is_url",
]

_READ_CHUNK = 1 << 20
_MAX_SYMLINKS = 255
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class ContextError(NutshellError):
    """A COPY/ADD source that is missing, excluded, outside the context, or unreadable."""


@dataclass(frozen=True)
class Entry:
    """One file of the context, as it would be sent (no mtime in any cache key).

    ``path`` is relative to the context root, '/'-separated; ``type`` one of ``file``,
    ``dir``, ``symlink``, ``fifo``, ``char``, ``block`` (sockets are not sent, as with
    Docker); ``mode`` the permission bits (``0o7777``); ``sha256`` the hex digest of a
    regular file's content when computed; ``build_file`` marks a Dockerfile or
    .dockerignore sent only because Docker always sends them.
    """

    path: str
    type: str
    mode: int
    uid: int
    gid: int
    size: int = 0
    mtime_ns: int = 0
    link: str | None = None
    rdev: int = 0
    sha256: str | None = None
    build_file: bool = False

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def record(self, path: str | None = None) -> list:
        """The fields that identify this entry for a cache key (mtime excluded)."""
        return [self.path if path is None else path, self.type, self.mode, self.uid,
                self.gid, self.size if self.type == "file" else 0, self.link or "",
                self.sha256 or "", self.rdev if self.type in ("char", "block") else 0]


@dataclass
class Source:
    """One resolved COPY/ADD source.

    ``pattern`` is the argument as written; ``path`` the resolved location in the
    context ('' for the root; symlinks named by the argument already followed);
    ``name`` the base name a file source takes in a directory destination; for a
    directory, ``children`` lists ``(path relative to the source, Entry)`` in order, the
    directory itself excluded (Docker copies a directory's contents, not the directory).
    """

    pattern: str
    path: str
    name: str
    entry: Entry
    children: list[tuple[str, Entry]] = field(default_factory=list)

    @property
    def is_dir(self) -> bool:
        return self.entry.type == "dir"


def _entry_type(mode: int) -> str | None:
    kind = file_kind(mode)
    return None if kind in ("socket", "unknown") else kind  # not part of a context


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def is_url(source: str) -> bool:
    """Whether an ADD source is remote (``http://``, ``https://``, a git address)."""
    lowered = source.lower()
    return lowered.startswith(("http://", "https://", "git@", "git://")) or (
        "://" in source and lowered.split("://", 1)[0].isalpha())


def _unescape(component: str) -> str:
    out, i = [], 0
    while i < len(component):
        if component[i] == "\\" and i + 1 < len(component):
            i += 1
        out.append(component[i])
        i += 1
    return "".join(out)


@contextlib.contextmanager
def _reading(rel: str, fd: int) -> Iterator[None]:
    """Close ``fd`` at the end of the block; an ``OSError`` in it is the build's
    "cannot read ``rel``" error."""
    try:
        yield
    except OSError as exc:
        raise ContextError(f"cannot read {rel} from the build context: {exc.strerror}") from None
    finally:
        os.close(fd)


class BuildContext:
    """A build context directory seen through its ``.dockerignore``.

    ``dockerfile`` is the Dockerfile's path (absolute, or relative to ``root``;
    default ``root/Dockerfile``; None when there is none, e.g. a stage's rootfs used
    for ``COPY --from``). ``dockerignore=False`` (or an explicit ``matcher``) replaces
    the ignore file. Directory listings and file digests are cached for the object's
    lifetime: use a new BuildContext for each build.
    """

    def __init__(self, root: str, dockerfile: str | None = "Dockerfile", *,
                 dockerignore: bool = True, matcher: PatternMatcher | None = None):
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise ContextError(f"unable to prepare context: path {root!r} not found")
        self.root = real
        self.dockerfile: str | None = None
        self.filename = "Dockerfile"
        if dockerfile is not None:
            path = dockerfile if os.path.isabs(dockerfile) else os.path.join(self.root, dockerfile)
            self.dockerfile = os.path.normpath(path)
            self.filename = os.path.basename(self.dockerfile)
        if matcher is None:
            matcher = load(self.root, self.dockerfile) if dockerignore else PatternMatcher()
        self.matcher = matcher
        self.build_files: frozenset[str] = frozenset()
        if dockerignore or matcher:
            forced = {".dockerignore"}
            if self.dockerfile is not None:
                rel = os.path.relpath(self.dockerfile, self.root)
                if not rel.startswith(".." + os.sep) and rel != "..":
                    forced.add(rel.replace(os.sep, "/"))
                    forced.add(rel.replace(os.sep, "/") + ".dockerignore")
            self.build_files = frozenset(forced)
        try:
            root_stat = os.lstat(self.root)
        except OSError as exc:
            raise ContextError(f"unable to prepare context: {exc.strerror}: {root}") from None
        self._root_entry = Entry(path="", type="dir", mode=stat.S_IMODE(root_stat.st_mode),
                                 uid=root_stat.st_uid, gid=root_stat.st_gid,
                                 mtime_ns=root_stat.st_mtime_ns)
        self._raw: dict[str, list[tuple[str, os.stat_result, str | None]]] = {}
        self._listing: dict[tuple[str, bool], dict[str, Entry]] = {}
        self._vectors: dict[str, tuple[bool, ...]] = {"": tuple(False for _ in matcher.patterns)}
        self._stats: dict[str, os.stat_result] = {}
        self._digests: dict[tuple, str] = {}

    # -- reading the directory tree ----------------------------------------------------

    def _open_dir(self, rel: str) -> int:
        """An fd for directory ``rel``, opened component by component without following
        any symlink (a component that is not a real directory raises ContextError)."""
        fd = os.open(self.root, _O_DIR)
        try:
            for part in rel.split("/") if rel else ():
                try:
                    nfd = os.open(part, _O_DIR, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                        raise ContextError(
                            f"{rel}: changed while the build was reading the context") from None
                    raise ContextError(f"cannot read context directory {rel}: {exc.strerror}") from None
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _read_dir(self, rel: str) -> list[tuple[str, os.stat_result, str | None]]:
        cached = self._raw.get(rel)
        if cached is not None:
            return cached
        fd = self._open_dir(rel)
        items: list[tuple[str, os.stat_result, str | None]] = []
        try:
            with os.scandir(fd) as it:
                names = [(de.name, de.stat(follow_symlinks=False)) for de in it]
            for name, st in names:
                link = os.readlink(name, dir_fd=fd) if stat.S_ISLNK(st.st_mode) else None
                items.append((name, st, link))
        except OSError as exc:
            raise ContextError(f"cannot read context directory {rel or '.'}: {exc.strerror}") from None
        finally:
            os.close(fd)
        items.sort(key=lambda item: item[0])
        self._raw[rel] = items
        return items

    def _vector(self, rel: str) -> tuple[bool, ...]:
        vec = self._vectors.get(rel)
        if vec is None:
            parent = rel.rpartition("/")[0]
            vec = self.matcher.vector(rel, self._vector(parent))
            self._vectors[rel] = vec
        return vec

    def _children(self, rel: str, send: bool = False) -> dict[str, Entry]:
        """The visible children of real directory ``rel`` by name (sorted).

        ``send=True`` is the "what Docker sends" view (build files forced in); the
        default is the COPY view. An excluded directory stays visible (as a bare
        directory) when something inside it is re-included by a ``!`` exception.
        """
        key = (rel, send)
        cached = self._listing.get(key)
        if cached is not None:
            return cached
        forced = self.build_files if send else frozenset()
        may_reinclude = self.matcher.exclusions
        parent_vec = self._vector(rel)
        out: dict[str, Entry] = {}
        for name, st, link in self._read_dir(rel):
            typ = _entry_type(st.st_mode)
            if typ is None:
                continue
            path = _join(rel, name)
            excluded = False
            if self.matcher:
                vec = self.matcher.vector(path, parent_vec)
                if typ == "dir":
                    self._vectors[path] = vec
                excluded = self.matcher.excluded_from(vec)
            entry = Entry(path=path, type=typ, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid,
                          gid=st.st_gid, size=st.st_size if typ == "file" else 0,
                          mtime_ns=st.st_mtime_ns, link=link,
                          rdev=st.st_rdev if typ in ("char", "block") else 0)
            if excluded:
                if path in forced and typ != "dir":
                    entry = replace(entry, build_file=True)
                elif typ == "dir" and (may_reinclude or any(f.startswith(path + "/") for f in forced)):
                    if not self._children(path, send):
                        continue
                else:
                    continue
            self._stats[path] = st
            out[name] = entry
        self._listing[key] = out
        return out

    def _lookup(self, rel: str, send: bool = False) -> Entry | None:
        """The entry at real path ``rel`` (no symlink followed), if visible."""
        if rel == "":
            return self._root_entry
        parent, _, name = rel.rpartition("/")
        parent_entry = self._lookup(parent, send)
        if parent_entry is None or parent_entry.type != "dir":
            return None
        return self._children(parent, send).get(name)

    def _walk_from(self, rel: str, send: bool) -> list[Entry]:
        out: list[Entry] = []
        stack = [rel]
        while stack:
            current = stack.pop()
            for entry in self._children(current, send).values():
                out.append(entry)
                if entry.type == "dir":
                    stack.append(entry.path)
        out.sort(key=lambda e: e.path)
        return out

    def walk(self, hash_content: bool = True) -> list[Entry]:
        """Every entry Docker would send, sorted by path; file digests filled in."""
        entries = self._walk_from("", send=True)
        if hash_content:
            entries = [self._with_digest(e) for e in entries]
        return entries

    # -- content -----------------------------------------------------------------------

    def _with_digest(self, entry: Entry) -> Entry:
        if entry.type != "file" or entry.sha256 is not None:
            return entry
        return replace(entry, sha256=self.digest(entry.path))

    def _open_file(self, rel: str) -> int:
        """An fd on ``rel`` (``_O_FILE``: never through a symlink)."""
        parent, _, name = rel.rpartition("/")
        dfd = self._open_dir(parent)
        with _reading(rel, dfd):
            return os.open(name, _O_FILE, dir_fd=dfd)

    def digest(self, rel: str) -> str:
        """sha256 (hex) of regular file ``rel``, read without following symlinks."""
        fd = self._open_file(rel)
        with _reading(rel, fd):
            st = os.fstat(fd)
            known = self._stats.get(rel)
            if not stat.S_ISREG(st.st_mode) or (known is not None and (
                    known.st_ino, known.st_dev) != (st.st_ino, st.st_dev)):
                raise ContextError(f"{rel}: changed while the build was reading the context")
            key = (rel, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            cached = self._digests.get(key)
            if cached is not None:
                return cached
            h = hashlib.sha256()
            while True:
                chunk = os.read(fd, _READ_CHUNK)
                if not chunk:
                    break
                h.update(chunk)
            value = h.hexdigest()
            self._digests[key] = value
            return value

    def open(self, rel: str) -> BinaryIO:
        """Open regular file ``rel`` for reading, never through a symlink."""
        fd = self._open_file(rel)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ContextError(f"{rel} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    # -- COPY/ADD sources --------------------------------------------------------------

    def _fail(self, cmd: str, message: str, line: int | None, hint: str | None = None) -> ContextError:
        where = f"{self.filename}:{line}: " if line is not None else ""
        return ContextError(f"{where}{cmd} failed: {message}", hint=hint)

    def clean_source(self, source: str, *, cmd: str = "COPY", line: int | None = None) -> str:
        """A source argument as a context path ('' = root); ``..`` out of it is an error."""
        path = posixpath.normpath(source.lstrip("/")) if source.strip("/") else "."
        if path == ".." or path.startswith("../"):
            raise self._fail(cmd, f"forbidden path outside the build context: {source}", line)
        return "" if path == "." else path

    def resolve(self, rel: str, follow_last: bool = True) -> tuple[str, Entry | None]:
        """Follow symlinks in ``rel`` inside the context (a chroot-like resolution).

        Returns the real path and its entry (None when missing or excluded).
        """
        parts = [p for p in rel.split("/") if p]
        parts.reverse()
        resolved: list[str] = []
        links = 0
        while parts:
            comp = parts.pop()
            if comp in ("", "."):
                continue
            if comp == "..":
                if resolved:
                    resolved.pop()
                continue
            current = _join("/".join(resolved), comp)
            entry = self._lookup(current)
            if entry is None:
                return current, None
            if entry.type == "symlink" and (parts or follow_last):
                links += 1
                if links > _MAX_SYMLINKS:
                    raise ContextError(f"{rel}: too many levels of symbolic links")
                target = entry.link or ""
                if target.startswith("/"):
                    resolved = []
                parts.extend(reversed([p for p in target.split("/") if p]))
                continue
            if parts and entry.type != "dir":
                return current, None
            resolved.append(comp)
        path = "/".join(resolved)
        return path, self._lookup(path)

    def _glob(self, pattern: str) -> list[str]:
        current = [""]
        parts = pattern.split("/")
        for k, comp in enumerate(parts):
            last = k == len(parts) - 1
            found: list[str] = []
            for directory in current:
                if has_wildcards(comp):
                    for name, entry in self._children(directory).items():
                        if match(comp, name) and (last or entry.type == "dir"):
                            found.append(entry.path)
                else:
                    hit = self._lookup(_join(directory, _unescape(comp)))
                    if hit is not None and (last or hit.type == "dir"):
                        found.append(hit.path)
            current = found
        return sorted(current)

    def _source(self, pattern: str, rel: str, name: str, cmd: str, line: int | None) -> Source:
        real, entry = self.resolve(rel)
        if entry is None:
            raise self._fail(cmd, "file not found in build context or excluded by "
                                  f".dockerignore: {pattern}", line)
        children: list[tuple[str, Entry]] = []
        if entry.type == "dir":
            prefix = len(real) + 1 if real else 0
            for child in self._walk_from(real, send=False):
                children.append((child.path[prefix:], self._with_digest(child)))
        else:
            entry = self._with_digest(entry)
        return Source(pattern=pattern, path=real, name=name, entry=entry, children=children)

    def sources(self, patterns: Sequence[str], *, cmd: str = "COPY",
                line: int | None = None) -> list[Source]:
        """Expand COPY/ADD source arguments (already variable-expanded) into Sources.

        Globs use Go's filepath.Match per path component; a pattern matching nothing, a
        missing or excluded file, a path climbing out of the context, or (for ADD) a URL
        is a :class:`ContextError` naming ``line``.
        """
        if not patterns:
            raise self._fail(cmd, "no source files were specified", line)
        out: list[Source] = []
        for pattern in patterns:
            if is_url(pattern):
                raise self._fail(cmd, f"remote sources are not supported: {pattern}", line,
                                 hint="download the file into the build context and "
                                      f"{cmd} it from there")
            rel = self.clean_source(pattern, cmd=cmd, line=line)
            if has_wildcards(rel):
                try:
                    matches = self._glob(rel)
                except BadPattern:
                    raise self._fail(cmd, f"bad pattern: {pattern}", line) from None
                if not matches:
                    raise self._fail(cmd, "no source files were specified: nothing in the "
                                          f"build context matches {pattern}", line)
                for found in matches:
                    out.append(self._source(pattern, found, found.rsplit("/", 1)[-1], cmd, line))
            else:
                out.append(self._source(pattern, rel, rel.rsplit("/", 1)[-1], cmd, line))
        return out

    def content_hash(self, patterns: Sequence[str], *, cmd: str = "COPY",
                     line: int | None = None) -> str:
        """The cache key of copying ``patterns``: ``sha256:<hex>`` (see module doc)."""
        return hash_sources(self.sources(patterns, cmd=cmd, line=line))

    def archive_format(self, rel: str) -> str | None:
        """What ADD would do with file ``rel``: ``tar``, ``tar+gzip``... or None (copy)."""
        with self.open(rel) as f:
            return archive_format(f)


def hash_sources(sources: Iterable[Source]) -> str:
    """Digest resolved sources: names, types, modes, owners, sizes, links, contents."""
    h = hashlib.sha256()
    for src in sources:
        h.update(json.dumps(["source", src.name, src.entry.type]).encode("utf-8", "surrogateescape"))
        h.update(b"\n")
        records = [src.entry.record("")] if not src.is_dir else \
            [entry.record(rel) for rel, entry in src.children]
        for record in records:
            h.update(json.dumps(record).encode("utf-8", "surrogateescape"))
            h.update(b"\n")
    return "sha256:" + h.hexdigest()


def walk(root: str, dockerfile: str | None = "Dockerfile", *, hash_content: bool = True,
         dockerignore: bool = True) -> list[Entry]:
    """Every entry of the context ``root`` after ``.dockerignore``, sorted by path."""
    return BuildContext(root, dockerfile, dockerignore=dockerignore).walk(hash_content)


def content_hash(context: BuildContext | str, sources: Sequence[str], *, cmd: str = "COPY",
                 line: int | None = None) -> str:
    """The COPY/ADD cache key of ``sources`` in ``context`` (a BuildContext or a path)."""
    if not isinstance(context, BuildContext):
        context = BuildContext(context)
    return context.content_hash(sources, cmd=cmd, line=line)


# --------------------------------------------------------------------------- archives

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def _decompressor(kind: str):
    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    import zstandard  # heavy import, only when a zstd file is ADDed

    return zstandard.ZstdDecompressor().decompressobj()


def _is_tar_header(block: bytes) -> bool:
    if len(block) < 512 or block[:512] == b"\0" * 512:
        return False
    field = block[148:156].split(b"\0", 1)[0].strip()
    try:
        expected = int(field, 8)
    except ValueError:
        return False
    header = block[:148] + b" " * 8 + block[156:512]
    unsigned = sum(header)
    signed = sum(b - 256 if b > 127 else b for b in header)
    return expected in (unsigned, signed)


def archive_format(f: BinaryIO, limit: int = 4 << 20) -> str | None:
    """Whether ADD would unpack this file: ``tar``, ``tar+gzip``, ``tar+bzip2``,
    ``tar+xz``, ``tar+zstd``, or None (copied as is). Reads at most ``limit`` bytes."""
    head = f.read(512)
    kind = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
    if kind is None:
        return "tar" if _is_tar_header(head) else None
    try:
        dec = _decompressor(kind)
        out = b""
        data = head
        consumed = 0
        while len(out) < 512:
            if data:
                out += dec.decompress(data)
                consumed += len(data)
            if len(out) >= 512 or consumed >= limit:
                break
            data = f.read(64 * 1024)
            if not data:
                break
    except Exception:  # corrupt data (zlib.error, LZMAError, ZstdError...) or no zstandard
        return None
    return f"tar+{kind}" if _is_tar_header(out) else None
