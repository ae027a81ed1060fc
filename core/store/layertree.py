"""What each layer of an image does to the file system, read from the unpacked layer dirs.

Every layer of an image is unpacked once into ``$ROOT/layers/<chainid>/diff`` in overlay
form: whiteouts are 0/0 character devices, opaque directories carry the
``trusted.overlay.opaque=y`` xattr. Replaying the layers in order (base first) gives, for
each path a layer contains, its status relative to the layers below it:

    added       the path did not exist below
    modified    it existed below (any type) and this layer replaces it; a directory that
                exists below with the same owner and mode is "unchanged" (it only holds
                changed children); an opaque directory is "modified"
    deleted     a whiteout: the path (and everything under it) existed below and is removed;
                the entries an opaque directory hides are listed as deleted too
    unchanged   (merged views) the path comes from a lower layer untouched by this one

Wasted space, defined precisely (docs/app.md has the worked example):

    wasted = the bytes of regular-file versions stored in a layer and shadowed by a later
             layer — overwritten, whited out, hidden by an opaque directory, or under a
             directory replaced/removed later — counting each shadowed version once (a
             version overwritten twice is wasted once), and counting hard-linked paths of
             one layer as one version that is wasted only when every path to it is shadowed.

    Directories, symlinks and device nodes count 0 bytes. The base layer is an ordinary
    layer here: its files count as wasted only if a later layer shadows them, and nothing
    is "diluted" by it. ``wasted_percent`` = wasted / the bytes of all file versions stored
    in all layers (what a pull unpacks), 0 for an empty image.

Also here: the merged view at any layer (dive's aggregated view), a diff of two images'
merged views, and a bounded, binary-safe read of one file's content from a layer dir
(opened with openat2 RESOLVE_BENEATH | NO_SYMLINKS: a hostile layer cannot point it
outside the layer).
"""

from __future__ import annotations

import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from ..fsutil import file_kind

OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
DEFAULT_READ_LIMIT = 256 * 1024

ADDED, MODIFIED, DELETED, UNCHANGED = "added", "modified", "deleted", "unchanged"


@dataclass(slots=True)
class FileEntry:
    """One path in one layer (or in a merged view). ``path`` has no leading slash."""

    path: str
    kind: str                 # file | dir | symlink | whiteout | char | block | fifo | socket
    size: int = 0             # bytes of a regular file; for a deleted entry, the bytes removed
    mode: int = 0
    uid: int = 0
    gid: int = 0
    target: str | None = None   # symlink target
    layer: int = 0            # index of the layer this version comes from
    status: str = ADDED
    opaque: bool = False
    inode: int = 0            # st_ino within its layer dir (hard links share it)
    link: str | None = None   # for a hard link: the first path of the same inode in the layer
    mtime: int = 0            # seconds

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def parent(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"


@dataclass
class LayerChanges:
    """What one layer does: its own entries with their statuses, and its byte counts."""

    index: int
    dir: str
    chain_id: str = ""
    diff_id: str = ""
    digest: str = ""
    created_by: str = ""
    entries: dict[str, FileEntry] = field(default_factory=dict)
    size: int = 0          # bytes of the regular files stored in this layer (hard links once)
    files: int = 0         # paths of non-directories stored (whiteouts excluded)
    added: int = 0
    modified: int = 0
    deleted: int = 0
    added_bytes: int = 0
    modified_bytes: int = 0
    deleted_bytes: int = 0   # bytes made invisible by this layer's whiteouts/opaque dirs
    wasted: int = 0          # bytes of THIS layer's files shadowed by later layers
    raw: list[FileEntry] = field(default_factory=list, repr=False)  # entries given (no dir)


@dataclass
class WastedFile:
    """A file a later layer shadows: the bytes an image stores for nothing."""
    path: str
    layer: int            # the layer storing the shadowed version
    size: int
    by_layer: int         # the first later layer that shadows it
    how: str              # overwritten | deleted | opaque | parent replaced


@dataclass
class ImageTree:
    """An image's layers merged into one tree, with what each layer wastes."""
    layers: list[LayerChanges]
    merged: dict[str, FileEntry]          # the final view; status = as last changed
    wasted: int
    wasted_files: list[WastedFile]
    total: int                            # bytes of all file versions in all layers
    image_id: str = ""

    @property
    def wasted_percent(self) -> float:
        return (100.0 * self.wasted / self.total) if self.total else 0.0

    @property
    def merged_size(self) -> int:
        return sum(e.size for e in self.merged.values() if e.kind == "file")

    def merged_at(self, k: int) -> dict[str, FileEntry]:
        """The merged view after layers 0..k, statuses relative to layer ``k``: what ``k``
        added / modified shows so, what it deleted shows as deleted, the rest unchanged."""
        k = max(0, min(k, len(self.layers) - 1)) if self.layers else 0
        replay = _Replay()
        for lc in self.layers[:k]:
            replay.apply(lc.index, _raw_entries(lc))
        out: dict[str, FileEntry] = {p: replace(e, status=UNCHANGED) for p, e in replay.merged.items()}
        if self.layers:
            lc = self.layers[k]
            replay.apply(lc.index, _raw_entries(lc))
            for p in list(out):
                if p not in replay.merged:
                    out[p] = replace(out[p], status=DELETED)
            for p, e in replay.merged.items():
                if e.layer == k:
                    out[p] = replace(e, status=lc.entries[p].status if p in lc.entries else e.status)
        return out

    def top_wasted(self, n: int = 50) -> list[WastedFile]:
        return sorted(self.wasted_files, key=lambda w: (-w.size, w.path))[:n]


# ---------------------------------------------------------------------- scanning one layer

def _is_opaque(path: str) -> bool:
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) in (b"y", b"y\0"):
                return True
        except OSError:
            continue
    return False


def _kind(st_mode: int, rdev: int) -> str:
    if stat.S_ISCHR(st_mode) and rdev == 0:
        return "whiteout"
    kind = file_kind(st_mode)
    return "socket" if kind == "unknown" else kind


def scan_layer(layer_dir: str, index: int = 0) -> list[FileEntry]:
    """Every path in one unpacked layer dir, parents before children (no symlink followed)."""
    from ..fs.imagemount import reading

    with reading([layer_dir]) as (root,):
        return _scan(root, index)


def _scan(layer_dir: str, index: int) -> list[FileEntry]:
    out: list[FileEntry] = []
    first_path: dict[int, str] = {}

    def walk(abs_dir: str, rel: str) -> None:
        try:
            it = os.scandir(abs_dir)
        except OSError:
            return
        with it:
            items = sorted(it, key=lambda d: d.name)
        for d in items:
            try:
                st = d.stat(follow_symlinks=False)
            except OSError:
                continue
            path = f"{rel}/{d.name}" if rel else d.name
            kind = _kind(st.st_mode, st.st_rdev)
            e = FileEntry(path, kind, st.st_size if kind == "file" else 0,
                          stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, layer=index,
                          inode=st.st_ino, mtime=int(st.st_mtime))
            if kind == "symlink":
                try:
                    e.target = os.readlink(d.path)
                except OSError:
                    e.target = "?"
            elif kind == "file" and st.st_nlink > 1:
                seen = first_path.get(st.st_ino)
                if seen is None:
                    first_path[st.st_ino] = path
                else:
                    e.link = seen
            elif kind == "dir":
                e.opaque = _is_opaque(d.path)
            out.append(e)
            if kind == "dir":
                walk(d.path, path)

    walk(layer_dir, "")
    return out


class _ScanCache:
    """Layer dirs are immutable once committed (named by content): cache their scans."""

    def __init__(self, size: int = 24) -> None:
        self.size = size
        self._data: OrderedDict[str, list[FileEntry]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, layer_dir: str) -> list[FileEntry]:
        key = os.path.realpath(layer_dir)
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
                return hit
        entries = scan_layer(layer_dir)
        with self._lock:
            self._data[key] = entries
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return entries

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


SCAN_CACHE = _ScanCache()


# ---------------------------------------------------------------------- replaying layers

class _Replay:
    """The merged view built layer by layer, with the shadowing accounting."""

    def __init__(self) -> None:
        self.merged: dict[str, FileEntry] = {}
        self.kids: dict[str, set[str]] = {"": set()}
        # (layer, inode) -> [paths of that version not yet shadowed, size]
        self.versions: dict[tuple[int, int], list] = {}
        self.wasted_files: list[WastedFile] = []
        self.wasted_by_layer: dict[int, int] = {}

    # -- bookkeeping of merged paths
    def _insert(self, e: FileEntry) -> None:
        parent = e.parent
        self.kids.setdefault(parent, set()).add(e.path)
        self.merged[e.path] = e
        if e.kind == "dir":
            self.kids.setdefault(e.path, set())
        if e.kind == "file":
            key = (e.layer, e.inode or id(e))
            v = self.versions.get(key)
            if v is None:
                self.versions[key] = [{e.path}, e.size]
            else:
                v[0].add(e.path)

    def _shadow(self, e: FileEntry, by: int, how: str) -> int:
        """``e`` (in merged) stops being visible. Returns the bytes that became wasted."""
        if e.kind != "file":
            return 0
        key = (e.layer, e.inode or id(e))
        v = self.versions.get(key)
        if v is None:
            return 0
        v[0].discard(e.path)
        if v[0]:
            return 0  # another hard link to the same version is still visible
        del self.versions[key]
        self.wasted_files.append(WastedFile(e.path, e.layer, v[1], by, how))
        self.wasted_by_layer[e.layer] = self.wasted_by_layer.get(e.layer, 0) + v[1]
        return v[1]

    def _remove(self, path: str, by: int, how: str) -> int:
        """Remove ``path`` and everything under it from the merged view; bytes removed."""
        e = self.merged.pop(path, None)
        if e is None:
            return 0
        removed = e.size if e.kind == "file" else 0
        self._shadow(e, by, how)
        self.kids.get(e.parent, set()).discard(path)
        for child in list(self.kids.pop(path, ())):
            removed += self._remove(child, by, how if how != "overwritten" else "parent replaced")
        return removed

    def _clear_children(self, path: str, by: int, how: str) -> list[tuple[str, FileEntry, int]]:
        """Hide everything under directory ``path`` (opaque); returns the direct children."""
        gone = []
        for child in sorted(self.kids.get(path, ())):
            ce = self.merged.get(child)
            if ce is None:
                continue
            size = self._remove(child, by, how)
            gone.append((child, ce, size))
        return gone

    def apply(self, index: int, entries: list[FileEntry]) -> list[FileEntry]:
        """Apply one layer (``entries`` parents first); returns them with their statuses,
        plus synthetic deleted entries for what opaque directories hide."""
        out: list[FileEntry] = []
        own: set[str] = set()
        for raw in entries:
            e = replace(raw, layer=index)
            p = e.path
            below = self.merged.get(p)
            if e.kind == "whiteout":
                if below is not None:
                    size = self._remove(p, index, "deleted")
                    out.append(replace(e, status=DELETED, size=size, kind="whiteout"))
                else:
                    out.append(replace(e, status=DELETED, size=0))
                continue
            # the parent must be a directory of the merged view (it is: parents first)
            if below is None:
                e.status = ADDED
            elif e.kind == "dir" and below.kind == "dir":
                same = (below.mode, below.uid, below.gid) == (e.mode, e.uid, e.gid)
                e.status = MODIFIED if (e.opaque or not same) else UNCHANGED
                if e.status == MODIFIED:  # an unchanged dir keeps the layer that made it
                    self.merged[p] = e
                if e.opaque:
                    for child, ce, size in self._clear_children(p, index, "opaque"):
                        if child not in own:
                            out.append(replace(ce, status=DELETED, size=size, layer=index,
                                               kind=ce.kind, opaque=False))
                out.append(e)
                own.add(p)
                continue
            else:
                e.status = MODIFIED
                self._remove(p, index, "overwritten")
            self._insert(e)
            out.append(e)
            own.add(p)
        return out


def _raw_entries(lc: LayerChanges) -> list[FileEntry]:
    """A layer's entries as scanned (without the synthetic opaque deletions)."""
    if lc.dir:
        return SCAN_CACHE.get(lc.dir)
    return list(lc.raw)


def analyze(layer_dirs: list[str], image=None) -> ImageTree:
    """Replay the unpacked layers (base first) of one image."""
    return _analyze([SCAN_CACHE.get(d) for d in layer_dirs], list(layer_dirs), image)


def analyze_entries(layers: list[list[FileEntry]], image=None,
                    created_by: list[str] | None = None) -> ImageTree:
    """The same analysis from entry lists (parents before children) instead of layer dirs:
    for callers that have no unpacked layers (tests, a fake engine). Files cannot be read."""
    tree = _analyze(layers, [""] * len(layers), image)
    for lc, by in zip(tree.layers, created_by or []):
        lc.created_by = by
    return tree


def _analyze(scans: list[list[FileEntry]], layer_dirs: list[str], image=None) -> ImageTree:
    layers: list[LayerChanges] = []
    replay = _Replay()
    history = _layer_history(image, len(layer_dirs)) if image is not None else [""] * len(layer_dirs)
    total = 0
    for i, (d, scanned) in enumerate(zip(layer_dirs, scans)):
        entries = replay.apply(i, scanned)
        lc = LayerChanges(index=i, dir=d, created_by=history[i] if i < len(history) else "")
        if not d:
            lc.raw = scanned
        if image is not None and i < len(image.layers):
            rec = image.layers[i]
            lc.chain_id, lc.diff_id, lc.digest = rec.chain_id, rec.diff_id, rec.digest
        for e in entries:
            lc.entries[e.path] = e
            if e.status == DELETED:
                lc.deleted += 1
                lc.deleted_bytes += e.size
                continue
            if e.kind != "dir":
                lc.files += 1
            if e.kind == "file" and e.link is None:
                lc.size += e.size
            if e.status == ADDED:
                lc.added += 1
                lc.added_bytes += e.size if e.link is None else 0
            elif e.status == MODIFIED:
                lc.modified += 1
                lc.modified_bytes += e.size if e.link is None else 0
        total += lc.size
        layers.append(lc)
    for lc in layers:
        lc.wasted = replay.wasted_by_layer.get(lc.index, 0)
    wasted = sum(replay.wasted_by_layer.values())
    return ImageTree(layers=layers, merged=dict(replay.merged), wasted=wasted,
                     wasted_files=replay.wasted_files, total=total,
                     image_id=getattr(image, "id", "") if image is not None else "")


_TREES: OrderedDict[tuple, ImageTree] = OrderedDict()
_TREES_LOCK = threading.Lock()


def analyze_cached(layer_dirs: list[str], image=None, size: int = 4) -> ImageTree:
    """``analyze`` with a small LRU keyed by the layer dirs (immutable once committed).
    The result is shared: treat it as read-only."""
    key = (getattr(image, "id", ""), tuple(os.path.realpath(d) for d in layer_dirs))
    with _TREES_LOCK:
        hit = _TREES.get(key)
        if hit is not None:
            _TREES.move_to_end(key)
            return hit
    tree = analyze(layer_dirs, image)
    with _TREES_LOCK:
        _TREES[key] = tree
        while len(_TREES) > size:
            _TREES.popitem(last=False)
    return tree


def _layer_history(image, n: int) -> list[str]:
    """created_by of the history entries that made a layer (empty_layer ones skipped)."""
    out = [h.get("created_by", "") for h in (image.config.get("history") or [])
           if not h.get("empty_layer")]
    return (out + [""] * n)[:n]


# ---------------------------------------------------------------------- trees for display

def children_index(entries: dict[str, FileEntry]) -> dict[str, list[FileEntry]]:
    """parent path -> child entries (directories first, then by name). Parents that are
    missing from ``entries`` (a layer that only adds /a/b/c lists a and a/b itself, but a
    filtered view may not) are filled in as unchanged directories."""
    kids: dict[str, list[FileEntry]] = {}
    present = set(entries)
    for e in list(entries.values()):
        parent = e.parent
        kids.setdefault(parent, []).append(e)
        while parent and parent not in present:
            present.add(parent)
            d = FileEntry(parent, "dir", status=UNCHANGED, layer=e.layer)
            kids.setdefault(d.parent, []).append(d)
            parent = d.parent
    for lst in kids.values():
        lst.sort(key=lambda e: (not e.is_dir, e.name))
    return kids


def subtree_sizes(entries: dict[str, FileEntry]) -> dict[str, int]:
    """path -> bytes of the regular files (and deleted bytes) at or under it; "" is the total."""
    sizes: dict[str, int] = {}
    for e in entries.values():
        n = e.size if (e.kind == "file" or e.status == DELETED) and e.link is None else 0
        if not n:
            continue
        p = e.path
        while True:
            sizes[p] = sizes.get(p, 0) + n
            if not p:
                break
            p = p.rsplit("/", 1)[0] if "/" in p else ""
    return sizes


def filter_entries(entries: dict[str, FileEntry], text: str = "",
                   statuses: set[str] | None = None) -> dict[str, FileEntry]:
    """Entries whose path contains ``text`` (case-insensitive; a leading / anchors at the
    root) and whose status is in ``statuses``; their ancestors are kept so a tree shows them."""
    text = text.strip()
    anchored = text.startswith("/")
    needle = text.lstrip("/").lower()
    keep: dict[str, FileEntry] = {}
    for p, e in entries.items():
        if statuses is not None and e.status not in statuses:
            continue
        low = p.lower()
        if needle and not (low.startswith(needle) if anchored else needle in low):
            continue
        keep[p] = e
    for p in list(keep):
        parent = keep[p].parent
        while parent and parent not in keep:
            if parent in entries:
                keep[parent] = entries[parent]
            parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
    return keep


# ---------------------------------------------------------------------- two images

@dataclass
class DiffEntry:
    """One path that differs between two images."""
    path: str
    status: str                  # added | removed | modified
    kind: str
    size_a: int = 0
    size_b: int = 0
    detail: str = ""             # what differs: "content", "mode", "owner", "type", "target"


def diff_trees(a: ImageTree, b: ImageTree) -> list[DiffEntry]:
    """How image B's file system differs from image A's (merged views), sorted by path.
    Regular files of equal size in different layers are compared byte by byte."""
    out: list[DiffEntry] = []
    ma, mb = a.merged, b.merged
    for p in sorted(set(ma) | set(mb)):
        ea, eb = ma.get(p), mb.get(p)
        if ea is None:
            assert eb is not None               # p is in one of the two views
            out.append(DiffEntry(p, ADDED, eb.kind, 0, eb.size))
            continue
        if eb is None:
            out.append(DiffEntry(p, "removed", ea.kind, ea.size, 0))
            continue
        detail = _difference(ea, eb, a.layers, b.layers)
        if detail:
            out.append(DiffEntry(p, MODIFIED, eb.kind, ea.size, eb.size, detail))
    return out


def _difference(ea: FileEntry, eb: FileEntry, la: list[LayerChanges], lb: list[LayerChanges]) -> str:
    if ea.kind != eb.kind:
        return "type"
    if ea.kind == "symlink":
        return "target" if ea.target != eb.target else ""
    if ea.kind == "file":
        if ea.size != eb.size:
            return "content"
        da, db = la[ea.layer].dir, lb[eb.layer].dir
        if os.path.realpath(da) != os.path.realpath(db) and not _same_content(da, db, ea.path):
            return "content"
    if ea.mode != eb.mode:
        return "mode"
    if (ea.uid, ea.gid) != (eb.uid, eb.gid):
        return "owner"
    return ""


def _same_content(dir_a: str, dir_b: str, path: str) -> bool:
    try:
        fa = open_in_layer(dir_a, path)
    except OSError:
        return False
    try:
        fb = open_in_layer(dir_b, path)
    except OSError:
        os.close(fa)
        return False
    try:
        while True:
            x = os.read(fa, 1 << 20)
            y = os.read(fb, 1 << 20)
            if x != y:
                return False
            if not x:
                return True
    finally:
        os.close(fa)
        os.close(fb)


# ---------------------------------------------------------------------- file content

@dataclass
class FileContent:
    """The content of one file of a layer (truncated, or marked binary)."""
    path: str
    layer: int
    kind: str
    size: int
    data: bytes = b""
    truncated: bool = False
    binary: bool = False
    target: str | None = None

    def text(self) -> str:
        """Printable text: UTF-8 (invalid bytes replaced) or, for binary data, a hex dump."""
        if self.kind == "symlink":
            return f"symbolic link -> {self.target}"
        if self.kind != "file":
            return f"({self.kind})"
        if self.binary:
            return hexdump(self.data)
        return self.data.decode("utf-8", "replace")


def open_in_layer(layer_dir: str, path: str) -> int:
    """A read-only fd of ``path`` inside ``layer_dir``; symlinks anywhere refuse (ELOOP)."""
    from ..fs.extract import STRICT, openat2
    from ..fs.imagemount import reading

    # the fd returned keeps the layer's mount alive after the block unmounts it
    with reading([layer_dir]) as (root,):
        dfd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return openat2(dfd, path.lstrip("/"), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, STRICT)
    finally:
        os.close(dfd)


def read_file(tree: ImageTree, path: str, layer: int | None = None,
              limit: int = DEFAULT_READ_LIMIT) -> FileContent:
    """The first ``limit`` bytes of ``path`` as the merged view (or ``layer``) has it."""
    from ..errors import NotFound

    path = path.strip("/")
    if layer is None:
        e = tree.merged.get(path)
    else:
        lc = tree.layers[layer] if 0 <= layer < len(tree.layers) else None
        e = lc.entries.get(path) if lc else None
    if e is None:
        raise NotFound(f"no such file in the image: /{path}")
    if e.status == DELETED:
        raise NotFound(f"/{path} is deleted in layer {e.layer}")
    if e.kind != "file":
        return FileContent(path, e.layer, e.kind, 0, target=e.target)
    fd = open_in_layer(tree.layers[e.layer].dir, path)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return FileContent(path, e.layer, _kind(st.st_mode, st.st_rdev), 0)
        chunks = []
        want = limit
        while want > 0:
            b = os.read(fd, min(want, 1 << 16))
            if not b:
                break
            chunks.append(b)
            want -= len(b)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    return FileContent(path, e.layer, "file", st.st_size, data, truncated=st.st_size > len(data),
                       binary=is_binary(data))


def is_binary(data: bytes) -> bool:
    """NUL bytes, or not valid UTF-8 (allowing a character cut at the end), is binary."""
    if b"\0" in data[:8192]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(data) - 4
    return False


def hexdump(data: bytes, width: int = 16) -> str:
    lines = []
    for off in range(0, len(data), width):
        chunk = data[off:off + width]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:08x}  {hexes:<{width * 3 - 1}}  {text}")
    return "\n".join(lines)


def iter_tree(entries: dict[str, FileEntry]) -> Iterator[tuple[int, FileEntry]]:
    """(depth, entry) in display order: a directory, then its children."""
    kids = children_index(entries)

    def walk(parent: str, depth: int):
        for e in kids.get(parent, []):
            yield depth, e
            if e.is_dir:
                yield from walk(e.path, depth + 1)

    yield from walk("", 0)


__all__ = ["FileEntry", "LayerChanges", "ImageTree", "WastedFile", "DiffEntry", "FileContent",
           "analyze", "analyze_entries", "analyze_cached", "scan_layer", "diff_trees", "read_file",
           "children_index", "subtree_sizes",
           "filter_entries", "iter_tree", "hexdump", "is_binary", "SCAN_CACHE",
           "ADDED", "MODIFIED", "DELETED", "UNCHANGED"]
