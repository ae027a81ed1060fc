"""The Image record the store hands out, and the identities derived from content.

Image ID   = digest of the config blob (what ``images`` shows, like Docker).
DiffID     = sha256 of a layer's uncompressed tar (``rootfs.diff_ids`` in the config).
ChainID    = DiffID for the base layer; sha256(parent ChainID + " " + DiffID) above it.
             A layer directory is keyed by ChainID, so images that share a base share
             the unpacked files.
"""

from __future__ import annotations

from core.records import field, record

from ..paths import small_sha256
from . import media

TYPE_CHECKING = False   # typing is not imported at run time: ~5 ms of every `run`
if TYPE_CHECKING:
    from ..types import HistoryRow, ImageInspect


# the fields of an image config's "config" and the JSON types Docker's decoder accepts for them;
# Entrypoint, Cmd and Shell are StrSlices: a string is a one-element list
_STRSLICE = ("Entrypoint", "Cmd", "Shell")
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "Env": list, "Labels": dict, "ExposedPorts": dict, "Volumes": dict, "WorkingDir": str,
    "User": str, "StopSignal": str, "Hostname": str, "Domainname": str, "OnBuild": list,
    "Healthcheck": dict, "ArgsEscaped": bool,
}


def check_config(config: object, n_layers: int | None = None, what: str = "image config") -> dict:
    """An image config from an untrusted source (pull, load, a build's FROM), checked the way
    Docker's decoder would take it: one clear ImageConfigError rather than a crash later.
    ``rootfs.diff_ids`` must be well-formed digests (they name layer directories), as many as
    the manifest's layers when ``n_layers`` is given."""
    from ..errors import ImageConfigError
    from ..reference import is_digest

    if not isinstance(config, dict):
        raise ImageConfigError(f"{what} is not a JSON object")
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        raise ImageConfigError(f"{what} has no rootfs.diff_ids list")
    for d in diff_ids:
        if not is_digest(d):
            raise ImageConfigError(f"{what}: invalid diff ID {d!r}")
    if n_layers is not None and len(diff_ids) != n_layers:
        raise ImageConfigError(f"{what} lists {len(diff_ids)} diff IDs for {n_layers} layers")
    _check_times(config, what)
    run = config.get("config")
    if run is None:
        return config
    if not isinstance(run, dict):
        raise ImageConfigError(f"{what}: \"config\" is not a JSON object")
    for key in _STRSLICE:
        v = run.get(key)
        if v is not None and not isinstance(v, str) and not (
                isinstance(v, list) and all(isinstance(x, str) for x in v)):
            raise ImageConfigError(f"{what}: config.{key} must be a string or a list of strings")
    for key, kind in _FIELD_TYPES.items():
        v = run.get(key)
        if v is not None and not isinstance(v, kind):
            raise ImageConfigError(f"{what}: config.{key} has the wrong type ({type(v).__name__})")
    if any(not isinstance(e, str) for e in run.get("Env") or []):
        raise ImageConfigError(f"{what}: config.Env must be a list of strings")
    return config


_HISTORY_TYPES: dict[str, type] = {"created_by": str, "author": str, "comment": str,
                                   "empty_layer": bool}


def _check_times(config: dict, what: str) -> None:
    """``created`` and ``history`` as Docker decodes them (time.Time, []History): a
    February 30th or a history of numbers is refused here, not met by ``images`` or
    ``history`` later."""
    from ..errors import ImageConfigError
    from ..timestamps import parse_rfc3339

    def check_time(value: object, where: str) -> None:
        if value is not None and parse_rfc3339(value) is None:
            raise ImageConfigError(f"{what}: {where} is not an RFC 3339 time ({value!r:.60})")

    check_time(config.get("created"), '"created"')
    history = config.get("history")
    if history is None:
        return
    if not isinstance(history, list):
        raise ImageConfigError(f"{what}: \"history\" is not a list")
    for i, h in enumerate(history):
        if not isinstance(h, dict):
            raise ImageConfigError(f"{what}: history[{i}] is not a JSON object")
        check_time(h.get("created"), f"history[{i}].created")
        for key, kind in _HISTORY_TYPES.items():
            v = h.get(key)
            if v is not None and not isinstance(v, kind):
                raise ImageConfigError(f"{what}: history[{i}].{key} has the wrong type "
                                       f"({type(v).__name__})")


def str_slice(value: object) -> list[str]:
    """Docker's StrSlice: a JSON string is a one-element list (``"Entrypoint": "app"`` runs
    ``app``), null is empty."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)  # type: ignore[call-overload]


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + small_sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


def chain_id(parent: str | None, diff_id: str) -> str:
    if parent is None:
        return diff_id
    return "sha256:" + small_sha256(f"{parent} {diff_id}".encode()).hexdigest()


@record
class LayerRecord:
    """One layer of an image as the store knows it."""

    index: int
    digest: str               # blob digest (compressed form as stored)
    media_type: str
    compressed_size: int
    diff_id: str
    chain_id: str
    size: int | None = None   # uncompressed bytes, once unpacked
    unpacked: bool = False


@record
class Image:
    """An image in the store: its manifest, its config and its layers."""

    id: str                                   # config digest
    manifest_digest: str
    manifest: dict
    config: dict
    repo_tags: list[str] = field(default_factory=list)     # full normalised references
    repo_digests: list[str] = field(default_factory=list)  # name@sha256:...
    layers: list[LayerRecord] = field(default_factory=list)
    manifest_size: int = 0
    stored_at: str | None = None

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[1][:12]

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids", []))

    @property
    def chain_ids(self) -> list[str]:
        return chain_ids(self.diff_ids)

    @property
    def created(self) -> str | None:
        return self.config.get("created")

    @property
    def size(self) -> int:
        return sum((layer.size if layer.size is not None else layer.compressed_size)
                   for layer in self.layers)

    @property
    def container_config(self) -> dict:
        return self.config.get("config") or {}

    @property
    def platform(self) -> str:
        p = f"{self.config.get('os', 'linux')}/{self.config.get('architecture', 'unknown')}"
        if self.config.get("variant"):
            p += "/" + self.config["variant"]
        return p

    def history(self) -> list[HistoryRow]:
        """History entries newest first, each with the size of the layer it made (Docker order)."""
        hist = self.config.get("history")
        # (checked at load since; a store may hold an image from before)
        hist = [h for h in hist if isinstance(h, dict)] if isinstance(hist, list) else []
        layer_sizes = [(layer.size if layer.size is not None else layer.compressed_size)
                       for layer in self.layers]
        rows: list[HistoryRow] = []
        li = 0
        if not hist:
            hist = [{"created": self.created, "created_by": ""} for _ in self.layers]
        for h in hist:
            size = 0
            if not h.get("empty_layer"):
                size = layer_sizes[li] if li < len(layer_sizes) else 0
                li += 1
            rows.append({
                "Created": h.get("created"),
                "CreatedBy": h.get("created_by", ""),
                "Comment": h.get("comment", ""),
                "Size": size,
                "EmptyLayer": bool(h.get("empty_layer")),
            })
        rows.reverse()
        for i, r in enumerate(rows):
            r["Id"] = self.id if i == 0 else "<missing>"
            r["Tags"] = [] if i else list(self.repo_tags)
        return rows

    def inspect(self) -> ImageInspect:
        """``docker image inspect``-shaped dict."""
        from ..reference import parse

        cfg = self.config
        return {
            "Id": self.id,
            "RepoTags": [parse(t).familiar() for t in self.repo_tags],
            "RepoDigests": [_familiar_digest(d) for d in self.repo_digests],
            "Parent": "",
            "Comment": _last_comment(cfg),
            "Created": cfg.get("created"),
            "DockerVersion": cfg.get("docker_version", ""),
            "Author": cfg.get("author", ""),
            "Config": _docker_container_config(cfg.get("config") or {}),
            "Architecture": cfg.get("architecture"),
            "Variant": cfg.get("variant"),
            "Os": cfg.get("os"),
            "Size": self.size,
            "RootFS": {"Type": cfg.get("rootfs", {}).get("type", "layers"), "Layers": self.diff_ids},
            "Metadata": {"LastTagTime": self.stored_at},
            "Descriptor": {
                "mediaType": self.manifest.get("mediaType", media.OCI_MANIFEST),
                "digest": self.manifest_digest,
                "size": self.manifest_size,
            },
            "Layers": [
                {"Digest": layer.digest, "DiffID": layer.diff_id, "ChainID": layer.chain_id,
                 "MediaType": layer.media_type, "CompressedSize": layer.compressed_size,
                 "Size": layer.size, "Unpacked": layer.unpacked}
                for layer in self.layers
            ],
        }


def _familiar_digest(d: str) -> str:
    from ..reference import parse

    name, _, digest = d.partition("@")
    try:
        return parse(name, default_tag=False).familiar_name + "@" + digest
    except Exception:  # noqa: BLE001
        return d


def _last_comment(cfg: dict) -> str:
    hist = cfg.get("history") or []
    return hist[-1].get("comment", "") if hist else ""


def _docker_container_config(c: dict) -> dict:
    keys = ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
            "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck",
            "ArgsEscaped", "Image", "Volumes", "WorkingDir", "Entrypoint", "OnBuild", "Labels",
            "StopSignal", "Shell"]
    out = {k: c.get(k) for k in keys if k in c}
    out.setdefault("User", "")
    out.setdefault("Env", None)
    out.setdefault("Cmd", None)
    out.setdefault("WorkingDir", "")
    out.setdefault("Entrypoint", None)
    out.setdefault("Labels", None)
    return out
