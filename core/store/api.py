"""Engine methods for images: list, inspect, history, tag, rmi, load, save, import, prune, df."""

from __future__ import annotations

import os

from ..enginebase import EngineBase
from ..errors import Conflict, NotFound
from ..reference import parse

TYPE_CHECKING = False   # typing is not imported at run time: ~5 ms of every `run`
if TYPE_CHECKING:
    from typing import BinaryIO

    from ..events import ProgressFn
    from ..types import CheckReport, HistoryRow, ImageInspect, ImagePruneReport, RmiEntry, SystemDf
    from ..watch import Watcher
    from .archive import LoadResult
    from .image import Image
    from .layertree import DiffEntry, FileContent, ImageTree


class ImageOps(EngineBase):
    """Mixed into core.engine.Engine; ``self.paths`` and ``self.store`` are available."""

    # ---------------------------------------------------------------- queries
    def images(self, all: bool = False, dangling: bool | None = None,
               reference: str | None = None) -> list[Image]:
        """Images in the store, newest first. ``dangling`` filters untagged ones in/out;
        ``reference`` is a repository (``busybox``) or ``repo:tag`` pattern to match."""
        imgs = self.store.images()
        if dangling is not None:
            imgs = [i for i in imgs if (not i.repo_tags) == dangling]
        if reference:
            import fnmatch

            want = reference if ":" in reference.rsplit("/", 1)[-1] else None
            out = []
            for i in imgs:
                for t in i.repo_tags:
                    r = parse(t)
                    cand = [r.familiar(), str(r)] if want else [r.familiar_name, r.name]
                    if any(fnmatch.fnmatchcase(c, reference) for c in cand):
                        out.append(i)
                        break
            imgs = out
        imgs.sort(key=lambda i: i.created or "", reverse=True)
        return imgs

    def image(self, name: str) -> Image:
        return self.store.image(name)

    def image_inspect(self, name: str) -> ImageInspect:
        return self.store.image(name).inspect()

    def history(self, name: str) -> list[HistoryRow]:
        return self.store.image(name).history()

    def image_layer_dirs(self, name: str, progress: ProgressFn = None) -> list[str]:
        """The layer directories of an image, base first, readable by this process (a layer
        stored as an image file is mounted, detached, and named ``/proc/self/fd/N``;
        unpacking on demand)."""
        from core.fs.imagemount import readable_all

        return readable_all(self.store.layer_dirs(self.store.image(name), progress))

    # ---------------------------------------------------------------- layer trees
    # (the app's Layers pane; the analysis lives in core/store/layertree.py)
    def image_tree(self, name: str, progress: ProgressFn = None) -> ImageTree:
        """Per-layer file changes, merged view and wasted space of an image (layertree.ImageTree)."""
        from .layertree import analyze_cached

        img = self.store.image(name)
        return analyze_cached(self.store.layer_dirs(img, progress), img)

    def image_diff(self, a: str, b: str, progress: ProgressFn = None) -> list[DiffEntry]:
        """How image ``b``'s file system differs from ``a``'s (layertree.DiffEntry list)."""
        from .layertree import diff_trees

        return diff_trees(self.image_tree(a, progress), self.image_tree(b, progress))

    def image_file(self, name: str, path: str, layer: int | None = None,
                   limit: int = 256 * 1024) -> FileContent:
        """The first ``limit`` bytes of a file of an image (merged view, or one layer)."""
        from .layertree import read_file

        return read_file(self.image_tree(name), path, layer, limit)

    def watcher(self, fallback: bool = False) -> Watcher:
        """A core.watch.Watcher on this root: ``wait(timeout) -> Changes(kinds, ids)``."""
        from ..watch import Watcher

        return Watcher(self.paths, fallback=fallback)

    # ---------------------------------------------------------------- changes
    def tag(self, source: str, target: str) -> Image:
        img = self.store.tag(source, target)
        self._image_event("tag", img, name=parse(target).familiar())
        return img

    def rmi(self, names: list[str], force: bool = False, prune: bool = True) -> list[RmiEntry]:
        """Remove images (Docker semantics). Returns [{"Untagged": ref} | {"Deleted": id}]."""
        report: list[RmiEntry] = []
        errors: list[Exception] = []
        for name in names:
            try:
                report.extend(self._rmi_one(name, force))
            except (NotFound, Conflict) as exc:
                errors.append(exc)
        if prune and report:
            removed = self.store.gc()
            report.extend({"Deleted": c} for c in removed["layers"])
        if errors:
            if len(errors) == 1 or not report:
                raise errors[0]
            raise type(errors[0])("; ".join(str(e) for e in errors))
        return report

    def _rmi_one(self, name: str, force: bool) -> list[RmiEntry]:
        img = self.store.image(name)
        using = self.store.containers_using().get(img.id, [])
        ref = self.store.tag_of(name, img)
        by_tag = ref is not None
        out: list[RmiEntry] = []
        if ref is not None and len(img.repo_tags) > 1:
            self.store.untag(ref)
            self._image_event("untag", img, name=img.id)
            return [{"Untagged": ref.familiar()}]
        if by_tag and using and not force:
            raise Conflict(f'conflict: unable to remove repository reference "{name}" (must force) '
                           f"- container {using[0]['Id'][:12]} is using its referenced image {img.short_id}")
        if ref is not None and using:
            self.store.untag(ref)
            self._image_event("untag", img, name=img.id)
            return [{"Untagged": ref.familiar()}]
        if not by_tag and len(img.repo_tags) > 1 and not force:
            raise Conflict(f"conflict: unable to delete {img.short_id} (must be forced) - image is "
                           f"referenced in multiple repositories")
        running = [c for c in using if c["Running"]]
        if running:
            raise Conflict(f"conflict: unable to delete {img.short_id} (cannot be forced) - image is "
                           f"being used by running container {running[0]['Id'][:12]}")
        if using and not force:
            raise Conflict(f"conflict: unable to delete {img.short_id} (must be forced) - image is "
                           f"being used by stopped container {using[0]['Id'][:12]}")
        # other manifests with the same config (the same image ID) stay
        out += self._delete_image(img)
        return out

    def _delete_image(self, img) -> list[RmiEntry]:
        """Untag every name of ``img``, remove its manifest entries; what rmi reports."""
        out: list[RmiEntry] = []
        for t in list(img.repo_tags):
            self.store.untag(parse(t))
            out.append({"Untagged": parse(t).familiar()})
            self._image_event("untag", img, name=img.id)
        self.store.remove_image_entries(img.manifest_digest)
        out.append({"Deleted": img.id})
        self._image_event("delete", img, name=img.id)
        return out

    def image_prune(self, all: bool = False, filters: list[str] | None = None) -> ImagePruneReport:
        """Remove dangling images (``all``: every image no container uses);
        ``filters``: ``until=``, ``label=``, ``label!=``."""
        from .. import prunefilter
        from ..timestamps import parse_rfc3339

        want = prunefilter.parse(filters)
        using = self.store.containers_using()
        deleted: list[RmiEntry] = []
        for img in self.store.images():
            if img.id in using:
                continue
            if img.repo_tags and not all:
                continue
            if want and not prunefilter.matches(
                    want, parse_rfc3339(img.created or ""),
                    (img.config.get("config") or {}).get("Labels")):
                continue
            deleted += self._delete_image(img)
        removed = self.store.gc()
        deleted.extend({"Deleted": c} for c in removed["layers"])
        return {"ImagesDeleted": deleted, "SpaceReclaimed": removed["bytes"]}

    # ---------------------------------------------------------------- archives
    def commit(self, container: str, ref: str | None = None, message: str | None = None,
               author: str | None = None, changes: list[str] | None = None, pause: bool = True,
               compression: str = "gzip", progress: ProgressFn = None) -> Image:
        """The container's upper dir as a new layer on its image; returns the new Image
        (tagged ``ref`` when given). Running containers are frozen while it is read."""
        from .commit import commit

        img = commit(self, container, ref, message=message, author=author, changes=changes,
                     pause=pause, compression=compression, progress=progress)
        self._container_event(container, "commit", comment=message or "", imageID=img.id,
                              imageRef=parse(ref).familiar() if ref else "")
        return img

    def load(self, source: str | BinaryIO, progress: ProgressFn = None) -> LoadResult:
        """Load a docker-archive or OCI archive (path or readable stream)."""
        from ..errors import ArchiveError
        from .archive import load

        if isinstance(source, str):
            try:
                f = open(source, "rb")
            except FileNotFoundError:
                raise ArchiveError(f"open {source}: no such file or directory") from None
            except IsADirectoryError:
                raise ArchiveError(f"read {source}: is a directory") from None
            with f:
                result = load(self.store, f, progress)
        else:
            result = load(self.store, source, progress)
        for img in result.images:
            self._image_event("load", img, name=img.id)
        return result

    def save(self, names: list[str], dest: str | BinaryIO, format: str = "docker",
             progress: ProgressFn = None) -> list[Image]:
        from .archive import save

        images = save(self.store, names, dest, format, progress)
        for img in images:
            self._image_event("save", img, name=img.id)
        return images

    def import_image(self, source: str | BinaryIO, ref: str | None = None,
                     changes: list[str] | None = None, message: str | None = None,
                     platform: str | None = None, progress: ProgressFn = None) -> Image:
        from .archive import import_image

        img = import_image(self.store, source, ref, changes, message, platform, progress)
        self._image_event("import", img, name=img.id)
        return img

    # ---------------------------------------------------------------- disk usage
    def system_check(self, repair: bool = False, quick: bool = False) -> CheckReport:
        """Verify the store (blob digests, index references, layer trees against their
        blobs, container records, leftovers, runtime dirs); ``repair`` fixes what it can
        without losing an image or a container (core/store/check.py)."""
        from .check import check

        return check(self.store, repair=repair, quick=quick)

    def system_df(self) -> SystemDf:
        """Disk usage like ``docker system df``: images, containers, volumes, build cache,
        and what interrupted work left (``image prune`` and ``system prune`` remove it)."""
        from ..fsutil import dir_size

        images = self.store.images()
        using = self.store.containers_using()
        layer_sizes: dict[str, int] = {}
        active_layers: set[str] = set()
        for img in images:
            for layer in img.layers:
                layer_sizes[layer.chain_id] = layer.size or layer.compressed_size
            if img.id in using:
                active_layers.update(layer.chain_id for layer in img.layers)
        img_total = sum(layer_sizes.values())
        img_active = sum(1 for i in images if i.id in using)
        img_reclaim = sum(s for c, s in layer_sizes.items() if c not in active_layers)
        containers = []
        base = self.paths.containers
        for cid in (os.listdir(base) if os.path.isdir(base) else []):
            if cid.startswith(".") or not os.path.exists(os.path.join(base, cid, "config.json")):
                continue
            upper = os.path.join(base, cid, "upper")
            containers.append((cid, dir_size(upper) if os.path.isdir(upper) else 0))
        running = sum(1 for recs in using.values() for r in recs if r["Running"])
        c_size = sum(s for _, s in containers)
        vols = []
        active_vols = 0
        if os.path.isdir(self.paths.volumes):
            from ..volumes.store import Volumes

            in_use = Volumes(self.paths).users()
            for v in os.listdir(self.paths.volumes):
                if v.startswith(".") or not os.path.isdir(os.path.join(self.paths.volumes, v)):
                    continue
                vols.append(dir_size(os.path.join(self.paths.volumes, v)))
                active_vols += 1 if in_use.get(v) else 0
        leftovers = self.store.leftovers()
        left_size = sum(x["Size"] for x in leftovers)
        cache_entries = 0
        try:
            usage = self.build_cache_usage()      # BuildOps: the cache index + its layers
            cache, cache_entries = int(usage.get("Size") or 0), int(usage.get("Entries") or 0)
        except (AttributeError, OSError):
            cache = dir_size(self.paths.builds) if os.path.isdir(self.paths.builds) else 0
        return {
            "Images": {"Total": len(images), "Active": img_active, "Size": img_total,
                       "Reclaimable": img_reclaim},
            "Containers": {"Total": len(containers), "Active": running, "Size": c_size,
                           "Reclaimable": c_size},
            "Volumes": {"Total": len(vols), "Active": active_vols, "Size": sum(vols),
                        "Reclaimable": sum(vols)},
            "BuildCache": {"Total": cache_entries, "Active": 0, "Size": cache, "Reclaimable": cache},
            "Leftovers": {"Total": len(leftovers), "Active": 0, "Size": left_size,
                          "Reclaimable": left_size},
        }
