"""``nutshell system check [--repair] [--quick]``: the store verifies itself, as
``podman system check`` does for containers/storage.

What is checked, in order (each problem is one :class:`~core.types.CheckFinding`):

  1. blobs: every file of ``blobs/sha256`` hashes to its name (``--quick`` skips this);
  2. the index: every entry's manifest, its config and its layer blobs are present and
     sound, and every layer it needs is unpacked;
  3. layers: every ``layers/<id>`` has readable metadata naming the same chain ID, and
     (without ``--quick``) its tree matches its blob entry for entry: each file, dir,
     link, device and whiteout there, of the right kind, size and link target, and
     nothing else;
  4. containers: every record is complete, its name is in the name index, and its
     layers are present;
  5. interrupted work (``Store.leftovers``), runtime dirs of containers that are gone, and
     shared layer mounts of layer images that are gone or were made anew.

Locks need no check: they are ``flock(2)`` locks, which the kernel drops with the
process that held them, so none can be stale.

``--repair`` fixes what it can without losing an image or a container: a corrupt blob
is removed (a later pull or load fetches it again; the image keeps running from its
unpacked layers), a damaged or missing layer is unpacked again from its blob, a
dangling index entry (its manifest or config is gone, so nothing can use it) is
removed, leftovers, incomplete container records and stale runtime dirs are
deleted, and stale layer mounts unmounted. What it cannot fix it says, with what to do. Repair holds the GC lease
exclusively, so it never races a pull, load or commit.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import posixpath
import stat
import time
from collections.abc import Callable
from functools import partial

from .. import paths as _paths
from ..errors import NutshellError, StoreError
from ..types import CheckFinding, CheckReport
from .image import chain_ids
from .store import Store, _release_images, _remove_path, _rmtree

HEX64 = frozenset("0123456789abcdef")
INCOMPLETE_AGE = 60.0       # a container dir without config.json older than this is debris


def _is_hex64(name: str) -> bool:
    return len(name) == 64 and set(name) <= HEX64


class _Check:
    def __init__(self, store: Store, repair: bool, quick: bool):
        self.store, self.repair, self.quick = store, repair, quick
        self.paths = store.paths
        self.findings: list[CheckFinding] = []
        self.bad_blobs: set[str] = set()
        self.counts = {"Blobs": 0, "Images": 0, "Layers": 0, "Containers": 0}
        # chain -> (blob digest, diff id, parent chain): how to unpack a layer again
        self.sources: dict[str, tuple[str, str, str | None]] = {}
        self.image_chains: list[list[str]] = []
        self.redone: set[str] = set()

    # -- reporting -------------------------------------------------------------------
    def found(self, kind: str, obj: str, problem: str, fix: Callable[[], str] | None = None,
              advice: str = "") -> None:
        """Record a problem; with --repair, run ``fix`` (which returns what it did)."""
        finding: CheckFinding = {"Kind": kind, "Object": obj, "Problem": problem,
                                 "Repaired": False, "Action": advice}
        if self.repair and fix is not None:
            try:
                finding["Action"] = fix()
                finding["Repaired"] = True
            except (OSError, NutshellError) as exc:
                finding["Action"] = f"repair failed: {exc}"
        elif fix is not None and not finding["Action"]:
            finding["Action"] = "--repair fixes this"
        self.findings.append(finding)

    # -- 1. blobs ----------------------------------------------------------------------
    def blobs(self) -> None:
        for name in sorted(_listdir(self.paths.blobs)):
            path = os.path.join(self.paths.blobs, name)
            if name.startswith("."):
                continue
            if not _is_hex64(name) or not os.path.isfile(path) or os.path.islink(path):
                self.found("blob", name, "not a blob (a name that is not a sha256 digest, or not "
                           "a regular file)", advice="remove it by hand if it is not yours")
                continue
            self.counts["Blobs"] += 1
            if self.quick:
                continue
            h = hashlib.sha256()
            try:
                with open(path, "rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
            except OSError as exc:
                self.found("blob", "sha256:" + name, f"cannot be read: {exc.strerror}")
                continue
            if h.hexdigest() != name:
                digest = "sha256:" + name
                self.bad_blobs.add(digest)
                self.found("blob", digest,
                           f"content does not match its digest ({os.path.getsize(path)} bytes, "
                           "truncated or altered)",
                           fix=partial(_removed, path, "removed it; pull or load its image again "
                                                        "to restore it"))

    def blob_ok(self, digest: str) -> bool:
        return digest not in self.bad_blobs and self.store.has_blob(digest)

    # -- 2. the index ------------------------------------------------------------------
    def index(self) -> None:
        try:
            manifests = self.store.read_index()["manifests"]
        except NutshellError as exc:
            self.found("index", "index.json", f"unreadable: {exc}",
                       advice="restore index.json from a backup")
            return
        for entry in manifests:
            self.counts["Images"] += 1
            self.entry(entry)

    def _name(self, entry: dict) -> str:
        from ..reference import try_parse

        ann = entry.get("annotations") or {}
        ref = try_parse(str(ann.get("org.opencontainers.image.ref.name") or ""))
        return ref.familiar() if ref is not None else str(entry.get("digest", "?"))

    def _drop_entry(self, entry: dict) -> Callable[[], str]:
        def fix() -> str:
            digest = entry.get("digest")
            name = (entry.get("annotations") or {}).get("org.opencontainers.image.ref.name")
            with self.store._edit_index() as idx:
                idx["manifests"] = [e for e in idx["manifests"]
                                    if not (e.get("digest") == digest and
                                            (e.get("annotations") or {}).get(
                                                "org.opencontainers.image.ref.name") == name)]
            return "removed the index entry (nothing could use it)"
        return fix

    def _json(self, digest: str) -> dict | None:
        if not isinstance(digest, str) or not self.blob_ok(digest):
            return None
        try:
            doc = self.store.read_json_blob(digest)
        except NutshellError:
            return None
        return doc if isinstance(doc, dict) else None

    def entry(self, entry: dict) -> None:
        name = self._name(entry)
        doc = self._json(entry.get("digest", ""))
        if doc is None:
            self.found("image", name, "dangling index entry: its manifest blob is missing or "
                       "damaged", fix=self._drop_entry(entry))
            return
        if doc.get("manifests") is not None:       # a list: only the pulled platforms are here
            for child in doc.get("manifests") or []:
                if isinstance(child, dict) and self.blob_ok(child.get("digest", "")):
                    self.image(name, self._json(child["digest"]) or {}, entry)
            return
        self.image(name, doc, entry)

    def image(self, name: str, manifest: dict, entry: dict) -> None:
        config = self._json((manifest.get("config") or {}).get("digest", ""))
        if config is None:
            self.found("image", name, "its config blob is missing or damaged, so it cannot "
                       "run", fix=self._drop_entry(entry))
            return
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        layers = manifest.get("layers") or []
        chains = chain_ids(diff_ids)
        self.image_chains.append(chains)
        for i, (chain, diff_id) in enumerate(zip(chains, diff_ids)):
            blob = (layers[i] if i < len(layers) and isinstance(layers[i], dict) else {}).get("digest", "")
            parent = chains[i - 1] if i else None
            has_blob = self.blob_ok(blob)
            if has_blob:
                self.sources.setdefault(chain, (blob, diff_id, parent))
            if not self.store.has_layer(chain):
                # a layer not unpacked yet is normal (a build's layers are unpacked when an
                # image first runs, from the blob); without the blob too, it cannot run
                if not has_blob:
                    self.found("image", name, f"layer {chain[:19]} is gone and so is its blob "
                               f"{blob[:19]}: it cannot run", advice=f"pull or load {name} again, or rmi it")
            elif not has_blob:
                self.found("image", name, f"layer blob {blob[:19]} is missing: save and push "
                           "need it (run does not)", advice=f"pull or load {name} again")

    # -- 3. layers ---------------------------------------------------------------------
    def layers(self) -> None:
        wanted = set(self.sources) | {c for cs in self.image_chains for c in cs} | self.container_layers()
        for name in sorted(_listdir(self.paths.layers)):
            if name.startswith("."):
                continue
            chain = "sha256:" + name
            self.counts["Layers"] += 1
            meta = self.store.layer_meta(chain)
            if not meta or meta.get("chain_id") != chain or not os.path.exists(self.store.layer_path(chain)):
                problem = "metadata missing, unreadable or naming another layer"
                if chain in self.sources:
                    self.found("layer", chain, problem, fix=partial(self.unpack_again, chain))
                elif chain in wanted:
                    self.found("layer", chain, problem, advice="no blob to unpack it from: "
                               "pull or load the image that has it again")
                else:
                    self.found("layer", chain, problem + "; nothing uses it",
                               fix=partial(_removed, self.paths.layer(chain)))
                continue
            if self.quick:
                continue
            blob = meta.get("blob")
            if not blob or not self.blob_ok(blob):
                continue            # a layer whose blob is gone or damaged: reported above
            try:
                diffs = layer_differences(self.store, chain, blob)
            except (OSError, NutshellError) as exc:
                diffs = [f"cannot compare with its blob: {exc}"]
            if diffs:
                more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
                problem = "differs from its blob: " + "; ".join(diffs[:3]) + more
                source = self.sources.get(chain) or (blob, meta.get("diff_id", ""), meta.get("parent"))
                self.sources.setdefault(chain, source)
                self.found("layer", chain, problem, fix=partial(self.unpack_again, chain))

    def unpack_again(self, chain: str) -> str:
        """Unpack ``chain`` from its blob again, putting the damaged copy aside first and
        back if the unpack fails."""
        if chain in self.redone:
            return "unpacked it again (above)"
        self.redone.add(chain)
        blob, diff_id, parent = self.sources[chain]
        final = self.paths.layer(chain)
        trash = os.path.join(self.paths.layers, f".trash-{os.getpid()}-{os.urandom(4).hex()}")
        moved = False
        if os.path.lexists(final):
            _release_images(final)
            os.rename(final, trash)
            moved = True
        try:
            self.store.unpack_blob(blob, diff_id, parent)
        except BaseException:
            if moved and not os.path.lexists(final):
                os.rename(trash, final)
            raise
        if moved:
            _rmtree(trash)
        for chains in self.image_chains:
            if chain in chains:
                self.store.fix_implicit_dirs(chains)
        return f"unpacked it again from {blob[:19]}"

    # -- 4. containers -------------------------------------------------------------------
    def container_layers(self) -> set[str]:
        out: set[str] = set()
        for recs in self.store.containers_using().values():
            for r in recs:
                out.update(r["Layers"])
        return out

    def containers(self) -> None:
        from ..runtime.state import Records

        records = Records(self.paths)
        now = time.time()
        for cid in sorted(_listdir(self.paths.containers)):
            path = os.path.join(self.paths.containers, cid)
            if cid.startswith(".") or not os.path.isdir(path):
                continue
            self.counts["Containers"] += 1
            try:
                with open(os.path.join(path, "config.json"), "rb") as f:
                    cfg = json.loads(f.read())
            except FileNotFoundError:
                if now - os.lstat(path).st_mtime > INCOMPLETE_AGE:
                    self.found("container", cid[:12], "incomplete record (no config.json): a "
                               "create that was killed", fix=partial(_removed, path))
                continue
            except (OSError, ValueError) as exc:
                self.found("container", cid[:12], f"config.json is unreadable: {exc}",
                           advice=f"nutshell rm -f {cid[:12]}")
                continue
            name = str(cfg.get("Name") or cid[:12]).lstrip("/")
            if cfg.get("Name") and records.lookup_name(name) != cid:
                self.found("container", name, "the name index (containers/.names) does not "
                           "point at it, so lookups by name miss it",
                           fix=partial(_reindex, records, name, cid))
            for chain in cfg.get("LayerChainIDs") or []:
                if self.store.has_layer(chain):
                    continue
                if chain in self.sources:
                    self.found("container", name, f"layer {chain[:19]} is missing",
                               fix=partial(self.unpack_again, chain))
                else:
                    self.found("container", name, f"layer {chain[:19]} is missing and no image "
                               "has its blob: it cannot start", advice=f"nutshell rm {name}")

    # -- 5. leftovers and runtime dirs -----------------------------------------------------
    def leftovers(self) -> None:
        for left in self.store.leftovers():
            rel = os.path.relpath(left["Path"], self.paths.root)
            self.found("leftover", rel, f"left by a killed process ({_size(left['Size'])})",
                       fix=partial(_removed, left["Path"]))
        base = os.path.join(self.paths.run, "c")
        ids = [c for c in _listdir(self.paths.containers) if not c.startswith(".")]
        for short in sorted(_listdir(base)):
            if any(c.startswith(short) for c in ids):
                continue
            path = os.path.join(base, short)
            self.found("runtime", path, "runtime dir of a container that no longer exists",
                       fix=partial(_removed, path))
        self.stale_layer_mounts()

    def stale_layer_mounts(self) -> None:
        """Shared layer mounts (core/fs/imagemount.py) of a layer image that is no longer
        there as it was mounted: the layer was deleted without them (a store removed by
        hand) or its file was made anew. No container can get them again; they only hold
        a loop device and the deleted file's space."""
        from ..fs.imagemount import SHARED_LOCK, shared_name

        base = self.paths.layer_mounts
        for name in sorted(_listdir(base)):
            if name == SHARED_LOCK:
                continue
            image = os.path.join(self.paths.layers, name.split(".", 1)[0], _paths.LAYER_IMAGE)
            try:
                if shared_name(image, os.stat(image)) == name:
                    continue
            except OSError:
                pass
            self.found("runtime", os.path.join(base, name),
                       "layer mount of a layer image that is gone or was made anew",
                       fix=partial(_released, base, name))


def _released(base: str, name: str) -> str:
    from ..fs.imagemount import release_shared

    release_shared(base, name)
    return "unmounted"


def layer_differences(store: Store, chain: str, blob: str) -> list[str]:
    """How ``layers/<chain>/diff`` differs from the tar in ``blob`` (empty: it matches)."""
    from ..fs.extract import clean_name
    from .tarreader import TarReader
    from .unpack import plain_stream

    expected: dict[str, tuple[str, int | None, str | None]] = {}
    with store.open_blob(blob) as f:
        for m in TarReader(plain_stream(f)):
            try:
                name = clean_name(m.name.lstrip("/"))
            except NutshellError:
                continue
            if not name:
                continue
            parent, base = posixpath.split(name)
            if base == ".wh..wh..opq":
                continue                        # an xattr on the directory
            if base.startswith(".wh."):
                expected[posixpath.join(parent, base[4:])] = ("whiteout", None, None)
                continue
            if m.isdir():
                expected[name] = ("dir", None, None)
            elif m.issym():
                expected[name] = ("symlink", None, m.linkname)
            elif m.islnk():
                expected[name] = ("file", None, None)
            elif m.isreg():
                expected[name] = ("file", m.size, None)
            elif m.ischr():
                expected[name] = ("chr", None, None)
            elif m.isblk():
                expected[name] = ("blk", None, None)
            elif m.isfifo():
                expected[name] = ("fifo", None, None)
    from core.fs.imagemount import readable

    out: list[str] = []
    try:
        root = readable(store.layer_path(chain))
    except OSError as e:
        return [f"its image cannot be mounted: {e.strerror or e}"]
    for name, (kind, size, target) in expected.items():
        path = os.path.join(root, name)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            if not _replaced_above(name, expected):
                out.append(f"{name} is missing")
            continue
        actual = _kind(st)
        if kind == "whiteout":
            if actual != "chr" or st.st_rdev != 0:
                out.append(f"{name} should be a whiteout")
        elif actual != kind:
            if not _replaced_above(name, expected):
                out.append(f"{name} is a {actual}, not a {kind}")
        elif size is not None and st.st_size != size:
            out.append(f"{name} has {st.st_size} bytes, not {size}")
        elif target is not None and os.readlink(path) != target:
            out.append(f"{name} points to {os.readlink(path)!r}, not {target!r}")
    allowed = set(expected)
    for name in expected:
        while "/" in name:
            name = name.rsplit("/", 1)[0]
            allowed.add(name)
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for n in dirnames + filenames:
            rel = n if rel_dir == "." else f"{rel_dir}/{n}"
            if rel not in allowed:
                out.append(f"{rel} is not in the layer")
    return out


def _reindex(records, name: str, cid: str) -> str:
    records.index_name(name, cid)
    return "indexed the name again"


def _removed(path: str, what: str = "removed it") -> str:
    _remove_path(path)
    if os.path.lexists(path):
        raise StoreError(f"cannot remove {path}")
    return what


def _replaced_above(name: str, expected: dict) -> bool:
    """A later entry made an ancestor something other than a directory."""
    while "/" in name:
        name = name.rsplit("/", 1)[0]
        if name in expected and expected[name][0] != "dir":
            return True
    return False


def _kind(st: os.stat_result) -> str:
    m = st.st_mode
    return ("dir" if stat.S_ISDIR(m) else "file" if stat.S_ISREG(m) else "symlink" if stat.S_ISLNK(m)
            else "chr" if stat.S_ISCHR(m) else "blk" if stat.S_ISBLK(m) else "fifo" if stat.S_ISFIFO(m)
            else "other")


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{n}B"
        n /= 1000  # type: ignore[assignment]
    return f"{n}B"


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def check(store: Store, repair: bool = False, quick: bool = False) -> CheckReport:
    """Check the store (see the module docstring); with ``repair``, fix what can be fixed."""
    store.ensure()
    c = _Check(store, repair, quick)
    lease = os.path.join(store.paths.root, ".gc.lock")
    fd = os.open(lease, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if repair:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError("the store is busy (a pull, load, import, build or commit is "
                                 "running): try the repair again when it ends") from None
        c.blobs()
        c.index()
        c.layers()
        c.containers()
        c.leftovers()
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    repaired = sum(1 for f in c.findings if f["Repaired"])
    return {"Checked": c.counts, "Findings": c.findings, "Repaired": repaired,
            "Remaining": len(c.findings) - repaired}
