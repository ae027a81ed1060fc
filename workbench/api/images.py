"""Image endpoints: list, inspect, history, tag, remove, prune, pull and import
(``/images/create``), push, save (``get``), load, commit.

The streaming endpoints (pull, push, import) answer with Docker's JSON message stream.
Like dockerd, the response starts with the first message: an error before any (no such
image or tag, an unreachable registry, a malformed archive) is a plain error response
with its status; an error after it is the stream's last object, ``{"errorDetail":
{"message"}, "error"}``, which the docker CLI prints and exits 1 on. ``load`` is always
a 200 stream (dockerd's), quiet unless ``quiet=0``.

Registry credentials come from the client only (``X-Registry-Auth``: base64url JSON of
``{"username", "password", "auth", "identitytoken"}``; one that does not decode counts
as none, as in dockerd), handed to the Engine with ``engine.registry_auth`` so its
registry client uses them as it would the CLI's login; without them a registry is
contacted anonymously (the server's own config.json logins are never lent to API
clients).

Uploads (load, import, build contexts) are read as they arrive, at most
``NUTSHELL_API_MAX_UPLOAD`` bytes (64 GiB); one refused part-way is not read to its end:
the connection closes after the answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tarfile
import threading
import time
from typing import Any

from core.errors import InvalidReference, NotFound, NutshellError
from core.events import Progress

from .http import ChunkedWriter, HTTPError, Request
from .router import Routes, version_at_least
from .shapes import familiar, image_list_entry, unix_time
from .system import filters_of

routes = Routes()

#: the most an uploaded archive (load, import, a build context) may be, in bytes
MAX_UPLOAD = int(os.environ.get("NUTSHELL_API_MAX_UPLOAD", str(64 << 30)))


# --- helpers -----------------------------------------------------------------------------
def find_image(engine, name: str):
    """The stored image ``name`` names, or dockerd's 404."""
    try:
        return engine.image(name)
    except NotFound:
        raise HTTPError(404, f"No such image: {name}") from None


class LazyStream:
    """A JSON message stream whose response starts with its first message, so an error
    before that is still a proper status code. Thread-safe: pulls and pushes report
    from one thread per layer."""

    def __init__(self, req: Request, content_type: str = "application/json"):
        self.req = req
        self.content_type = content_type
        self.out: ChunkedWriter | None = None
        self.lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self.out is not None

    def _writer(self) -> ChunkedWriter:
        if self.out is None:
            self.out = self.req.stream(200, self.content_type)
            self.req.stream_writer = self.out          # type: ignore[attr-defined]
        return self.out

    def json(self, obj: Any) -> None:
        with self.lock:
            self._writer().json(obj)

    def write(self, data: bytes) -> int:
        with self.lock:
            return self._writer().write(data)

    def flush(self) -> None:
        pass

    def error(self, message: str, code: int | None = None) -> None:
        detail: dict[str, Any] = {"message": message}
        if code is not None:
            detail["code"] = code
        self.json({"errorDetail": detail, "error": message})

    def close(self) -> None:
        with self.lock:
            self._writer().close()


class BodyReader:
    """The request body as a file (``read(n)`` fills ``n`` unless the body ends), at
    most ``limit`` bytes."""

    def __init__(self, req: Request, limit: int = MAX_UPLOAD):
        self.req = req
        self.limit = limit
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while n < 0 or len(out) < n:
            data = self.req.read(65536 if n < 0 else min(n - len(out), 1 << 20))
            if not data:
                break
            out += data
            self.count += len(data)
            if self.count > self.limit:
                self.req.keep_alive = False        # the rest is never read
                raise HTTPError(413, f"request body larger than {self.limit} bytes")
        return bytes(out)

    def readable(self) -> bool:
        return True


def _bar(current: int, total: int) -> str:
    """Docker's progress text (``[=====>    ]  1.2MB/3.4MB``)."""
    from workbench.format import human_size

    if total <= 0:
        return human_size(current) if current else ""
    width = 50
    n = min(width, int(width * current / total))
    bar = "=" * n + (">" if n < width else "") + " " * max(0, width - n - 1)
    return f"[{bar}] {human_size(current):>8}/{human_size(total)}"


_PLAIN = {"Pulling fs layer", "Waiting", "Verifying Checksum", "Download complete",
          "Pull complete", "Already exists", "Preparing", "Pushed", "Layer already exists",
          "Retrying", "Loading layer", "Skipped foreign layer"}
_BYTES = {"Downloading", "Extracting", "Pushing", "Loading"}


def message_of_progress(ev: Progress) -> dict | None:
    """A core Progress event as the JSON message dockerd sends for it (None: none)."""
    a = ev.action
    if a == "Pulling from":
        return {"status": f"Pulling from {ev.message}", "id": ev.id}
    if a == "Digest":
        return {"status": f"Digest: {ev.message}"}
    if a == "Status":
        return {"status": f"Status: {ev.message}"}
    if a == "The push refers to repository":
        return {"status": f"The push refers to repository {ev.message}"}
    if a == "Mounted from":
        return {"status": f"Mounted from {ev.message}", "progressDetail": {}, "id": ev.id}
    if a in _BYTES:
        status = "Loading layer" if a == "Loading" else a
        return {"status": status, "progressDetail": {"current": ev.current, "total": ev.total},
                "progress": _bar(ev.current, ev.total), "id": ev.id}
    if a in _PLAIN:
        return {"status": a, "progressDetail": {}, "id": ev.id}
    if a == "Warning":
        return {"status": f"Warning: {ev.message}"}
    return None


class Reporter:
    """A Progress callback writing Docker's messages to a LazyStream; byte counts are
    sent at most every 0.1 s per id. "Pulling from" is held back until the next event
    (the manifest was found): a pull that fails before that is a plain error response."""

    def __init__(self, out: LazyStream, quiet: bool = False):
        self.out = out
        self.quiet = quiet
        self.last: dict[str, float] = {}
        self.held: dict | None = None

    def __call__(self, ev: Progress) -> None:
        if self.quiet:
            return
        msg = message_of_progress(ev)
        if msg is None:
            return
        if ev.action == "Pulling from" and not self.out.started:
            self.held = msg
            return
        if self.held is not None:
            held, self.held = self.held, None
            self.out.json(held)
        if ev.action in _BYTES and ev.current < ev.total:
            now = time.monotonic()
            if now - self.last.get(ev.id, 0.0) < 0.1:
                return
            self.last[ev.id] = now
        self.out.json(msg)


def decode_auth(header: str | None) -> dict | None:
    """``X-Registry-Auth``: base64url (padding optional) of a JSON object. As dockerd
    does, a header that does not decode counts as no credentials (clients send odd
    placeholders), never as an error."""
    if not header or not header.strip():
        return None
    raw = header.strip()
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        obj = json.loads(data) if data.strip() else {}
    except (binascii.Error, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def credential_of(auth: dict | None):
    from core.registry.credentials import Credential

    if not auth:
        return None

    def s(key: str) -> str:
        v = auth.get(key)
        return v if isinstance(v, str) else ""

    user, password = s("username"), s("password")
    if not user and not password and s("auth"):
        try:
            user, _, password = base64.b64decode(s("auth")).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            user = password = ""
    cred = Credential(username=user, password=password, identity_token=s("identitytoken"),
                      source="X-Registry-Auth")
    return None if cred.anonymous else cred


def registry_creds(req: Request, domain: str) -> dict:
    """{domain: Credential} from ``X-Registry-Auth`` for work against ``domain``."""
    cred = credential_of(decode_auth(req.headers.get("x-registry-auth")))
    return {domain: cred} if cred is not None else {}


def _stream_errors(out: LazyStream, exc: BaseException) -> None:
    """After the stream started: the error as its last message; before: raise it."""
    from .router import message_of

    if not out.started:
        raise exc
    out.error(message_of(exc))
    out.close()


# --- list, inspect, history --------------------------------------------------------------
_LIST_FILTERS = ("dangling", "label", "before", "since", "reference", "until")


def _bool_filter(key: str, values: list[str]) -> bool:
    v = values[-1].lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise HTTPError(400, f"invalid filter '{key}={values[-1]}'")


@routes.route("GET", "/images/json")
def list_images(engine, req: Request) -> list:
    filters = filters_of(req)
    for key in filters:
        if key not in _LIST_FILTERS:
            raise HTTPError(400, f"invalid filter '{key}'")
    dangling = _bool_filter("dangling", filters["dangling"]) if filters.get("dangling") else None
    imgs = engine.images(all=req.qbool("all"), dangling=dangling)
    refs = filters.get("reference") or []
    if refs:
        for pattern in refs:
            try:
                engine.images(reference=pattern)          # checks the pattern
            except InvalidReference:
                raise HTTPError(400, f"invalid reference format: {pattern!r}") from None
    from core.runtime.logs import parse_since
    from core.timestamps import parse_rfc3339

    def when(img) -> float:
        return parse_rfc3339(img.created or "") or 0.0

    for name in filters.get("before") or []:
        t = when(find_image(engine, name))
        imgs = [i for i in imgs if when(i) < t]
    for name in filters.get("since") or []:
        t = when(find_image(engine, name))
        imgs = [i for i in imgs if when(i) > t]
    for until in filters.get("until") or []:
        try:
            limit = parse_since(until)
        except NutshellError:
            limit = None
        if limit is None:
            raise HTTPError(400, f"invalid value for filter until: {until!r}")
        imgs = [i for i in imgs if when(i) < limit]
    for want in filters.get("label") or []:
        k, eq, v = want.partition("=")
        imgs = [i for i in imgs
                if k in ((i.config.get("config") or {}).get("Labels") or {})
                and (not eq or i.config["config"]["Labels"][k] == v)]
    use_none = not version_at_least(req, "1.43")
    virtual = not version_at_least(req, "1.44")
    out = []
    for img in imgs:
        entry = image_list_entry(engine, img)
        if refs:         # as dockerd: only the tags the filter matched, and only images with one
            entry["RepoTags"] = [t for t in entry["RepoTags"] if _ref_matches(t, refs)]
            if not entry["RepoTags"]:
                continue
        if use_none and not entry["RepoTags"] and not entry["RepoDigests"]:
            entry["RepoTags"], entry["RepoDigests"] = ["<none>:<none>"], ["<none>@<none>"]
        if not virtual:
            entry.pop("VirtualSize", None)
        out.append(entry)
    return out


def _ref_matches(tag: str, patterns: list[str]) -> bool:
    import fnmatch

    from core.reference import parse

    try:
        r = parse(tag)
    except InvalidReference:
        return False
    for pattern in patterns:
        with_tag = ":" in pattern.rsplit("/", 1)[-1]
        cand = [r.familiar(), str(r)] if with_tag else [r.familiar_name, r.name]
        if any(fnmatch.fnmatchcase(c, pattern) for c in cand):
            return True
    return False


@routes.route("GET", "/images/{name:path}/json")
def inspect(engine, req: Request) -> dict:
    name = req.params["name"]
    find_image(engine, name)
    ins = dict(engine.image_inspect(name))
    ins.pop("Layers", None)
    cfg = ins.get("Config") or {}
    if not version_at_least(req, "1.45"):
        ins["Container"] = ""
        ins["ContainerConfig"] = dict(cfg)
    ins["Architecture"] = ins.get("Architecture") or ""
    ins["Os"] = ins.get("Os") or ""
    if not ins.get("Variant"):
        ins.pop("Variant", None)
    if not version_at_least(req, "1.44"):
        ins["VirtualSize"] = ins["Size"]
    if not version_at_least(req, "1.48"):
        ins.pop("Descriptor", None)
    ins["GraphDriver"] = {"Name": "overlay2", "Data": None}
    meta = ins.get("Metadata") or {}
    ins["Metadata"] = {"LastTagTime": meta.get("LastTagTime") or "0001-01-01T00:00:00Z"}
    return ins


@routes.route("GET", "/images/{name:path}/history")
def history(engine, req: Request) -> list:
    name = req.params["name"]
    find_image(engine, name)
    out = []
    for row in engine.history(name):
        out.append({"Id": row.get("Id", "<missing>"), "Created": unix_time(row.get("Created")),
                    "CreatedBy": row.get("CreatedBy", ""),
                    "Tags": [familiar(t) for t in row.get("Tags") or []] or None,
                    "Size": int(row.get("Size") or 0), "Comment": row.get("Comment", "")})
    return out


# --- tag, remove, prune ------------------------------------------------------------------
@routes.route("POST", "/images/{name:path}/tag")
def tag(engine, req: Request) -> None:
    name = req.params["name"]
    repo = req.q("repo") or ""
    tag_ = req.q("tag") or ""
    if not repo:
        raise HTTPError(400, "repository name must have at least one component")
    if "@" in repo or (tag_ and tag_.startswith("sha256:")):
        raise HTTPError(400, "refusing to create a tag with a digest reference")
    if repo == "sha256":
        raise HTTPError(400, "refusing to create an ambiguous tag using digest algorithm as name")
    find_image(engine, name)
    target = f"{repo}:{tag_}" if tag_ else repo
    try:
        engine.tag(name, target)
    except InvalidReference as exc:
        raise HTTPError(400, str(exc)) from None
    req.send_empty(201)


@routes.route("DELETE", "/images/{name:path}")
def delete(engine, req: Request) -> list:
    name = req.params["name"]
    find_image(engine, name)
    return list(engine.rmi([name], force=req.qbool("force"), prune=not req.qbool("noprune")))


@routes.route("POST", "/images/prune")
def prune(engine, req: Request) -> dict:
    filters = filters_of(req)
    all_ = False
    items = []
    for key, values in filters.items():
        if key == "dangling":
            if values:
                all_ = not _bool_filter("dangling", values)
        elif key in ("until", "label", "label!"):
            items += [f"{key}={v}" for v in values]
        else:
            raise HTTPError(400, f"invalid filter '{key}'")
    report = engine.image_prune(all=all_, filters=items or None)
    return {"ImagesDeleted": list(report.get("ImagesDeleted") or []) or None,
            "SpaceReclaimed": int(report.get("SpaceReclaimed") or 0)}


# --- pull and import (/images/create) -----------------------------------------------------
@routes.route("POST", "/images/create")
def create(engine, req: Request) -> None:
    src = req.q("fromSrc")
    image = req.q("fromImage")
    if src is not None and image:
        raise HTTPError(400, "fromImage and fromSrc cannot be given together")
    if src is not None:
        return _import(engine, req, src)
    if not image:
        raise HTTPError(400, "fromImage or fromSrc is required")
    return _pull(engine, req, image)


def _pull(engine, req: Request, image: str) -> None:
    from core.reference import parse

    tag_ = req.q("tag") or ""
    image = image.removesuffix(":")         # "pull -a" may send "name:" (dockerd trims it)
    ref_text = image
    try:
        r = parse(image, default_tag=False)
        all_tags = not tag_ and not r.tag and not r.digest     # dockerd: every tag
        if tag_:                 # as dockerd: the tag parameter wins over one in fromImage
            ref_text = f"{r.name}@{tag_}" if tag_.startswith("sha256:") else f"{r.name}:{tag_}"
        r = parse(ref_text)
    except InvalidReference as exc:
        raise HTTPError(400, str(exc)) from None
    platform = check_platform(req.q("platform") or None)
    out = LazyStream(req)
    report = Reporter(out)
    try:
        with engine.registry_auth(registry_creds(req, r.domain)):
            refs = ([f"{r.name}:{t}" for t in engine.registry_tags(r.name)] if all_tags
                    else [ref_text])
            for one in refs:
                engine.pull(one, platform=platform, progress=report)
    except NotFound as exc:
        if out.started:
            return _stream_errors(out, exc)
        raise HTTPError(404, str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the stream's last message
        return _stream_errors(out, exc)
    out.close()


class _Prefixed:
    """``head`` then the rest of ``src`` (a file for the Engine)."""

    def __init__(self, head: bytes, src: BodyReader):
        self.head = head
        self.src = src

    def read(self, n: int = -1) -> bytes:
        if not self.head:
            return self.src.read(n)
        if n < 0:
            out, self.head = self.head + self.src.read(), b""
        else:
            out, self.head = self.head[:n], self.head[n:]
            if len(out) < n:
                out += self.src.read(n - len(out))
        return out

    def readable(self) -> bool:
        return True


def _looks_like_layer(head: bytes) -> bool:
    """The first 512 bytes of an import: compressed (gzip, zstd), or a tar header with a
    right checksum. Garbage is refused before the rest of a body is read."""
    if head.startswith((b"\x1f\x8b", b"\x28\xb5\x2f\xfd")):
        return True
    if len(head) < 512:
        return False
    try:
        tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def check_platform(platform: str | None) -> str | None:
    """``os/arch[/variant]`` (``linux/amd64``), else dockerd's 400."""
    import re

    if platform is None:
        return None
    if not re.fullmatch(r"[a-z0-9_.-]+/[a-z0-9_.-]+(/[a-z0-9_.-]+)?", platform.lower()):
        raise HTTPError(400, f"invalid platform {platform!r}: expected os/arch[/variant]")
    return platform.lower()


def _import(engine, req: Request, src: str) -> None:
    if src != "-":
        raise HTTPError(400, "importing from a URL is not supported: send the archive as the "
                             "request body with fromSrc=-")
    repo = req.q("repo") or ""
    tag_ = req.q("tag") or ""
    ref = (f"{repo}:{tag_}" if tag_ else repo) or None
    if ref:
        from core.reference import parse

        try:
            parse(ref)
        except InvalidReference as exc:
            raise HTTPError(400, str(exc)) from None
    body = BodyReader(req)
    head = body.read(512)
    if not _looks_like_layer(head):
        req.keep_alive = False          # the rest is never read
        raise HTTPError(400, "cannot import -: not a tar archive (plain, gzip or zstd)")
    out = LazyStream(req)
    try:
        img = engine.import_image(_Prefixed(head, body), ref, changes=req.qlist("changes") or None,
                                  message=req.q("message") or f"Imported from {src}",
                                  platform=check_platform(req.q("platform") or None))
    except Exception as exc:  # noqa: BLE001
        req.keep_alive = False          # what is left of a refused archive is not read
        return _stream_errors(out, exc)
    out.json({"status": img.id})
    out.close()


# --- push --------------------------------------------------------------------------------
@routes.route("POST", "/images/{name:path}/push")
def push(engine, req: Request) -> None:
    from core.reference import parse

    name = req.params["name"]
    tag_ = req.q("tag") or ""
    try:
        base = parse(name, default_tag=False)
    except InvalidReference as exc:
        raise HTTPError(400, str(exc)) from None
    if tag_:
        refs = [f"{name}@{tag_}" if tag_.startswith("sha256:") else f"{name}:{tag_}"]
        if base.tag or base.digest:
            refs = [name]
        find_image(engine, refs[0])
    elif base.tag or base.digest:
        refs = [name]
        find_image(engine, name)
    else:      # every tag of the repository, as dockerd does
        refs = sorted({familiar(t) for img in engine.images() for t in img.repo_tags
                       if parse(t).name == base.name})
        if not refs:
            raise HTTPError(404, f"An image does not exist locally with the tag: {name}")
    out = LazyStream(req)
    report = Reporter(out)
    try:
        with engine.registry_auth(registry_creds(req, base.domain)):
            for ref in refs:
                digest = engine.push(ref, progress=report)
                r = parse(ref)
                size = engine.image(ref).manifest_size
                t = r.tag or "latest"
                out.json({"status": f"{t}: digest: {digest} size: {size}"})
                out.json({"progressDetail": {}, "aux": {"Tag": t, "Digest": digest, "Size": size}})
    except Exception as exc:  # noqa: BLE001
        return _stream_errors(out, exc)
    out.close()


# --- save and load -----------------------------------------------------------------------
@routes.route("GET", "/images/{name:path}/get")
def save_one(engine, req: Request) -> None:
    _save(engine, req, [req.params["name"]])


@routes.route("GET", "/images/get")
def save_many(engine, req: Request) -> None:
    names = [n for n in req.qlist("names") if n]
    if not names:
        raise HTTPError(400, "no images to save: give names=")
    _save(engine, req, names)


def _save(engine, req: Request, names: list[str]) -> None:
    for n in names:
        find_image(engine, n)
    out = LazyStream(req, "application/x-tar")
    try:
        engine.save(names, out)
    except Exception:
        req.keep_alive = False          # a tar cut short: the client sees the truncation
        raise
    out.close()


@routes.route("POST", "/images/load")
def load(engine, req: Request) -> None:
    """As dockerd: the answer is always a 200 JSON stream (``quiet`` by default), a
    failure its last message."""
    quiet = req.qbool("quiet", True)
    out = LazyStream(req)
    reporter = Reporter(out, quiet=quiet)
    try:
        result = engine.load(BodyReader(req), progress=reporter)
    except HTTPError:
        req.keep_alive = False
        raise                                   # the body itself: too large, cut short
    except (tarfile.TarError, EOFError) as exc:
        req.keep_alive = False          # what is left of a refused archive is not read
        out.error(f"invalid archive: {exc}")
        out.close()
        return
    except Exception as exc:  # noqa: BLE001 - the stream's last message
        from .router import message_of

        req.keep_alive = False
        out.error(message_of(exc))
        out.close()
        return
    for t in result.tags:
        out.json({"stream": f"Loaded image: {familiar(t)}\n"})
    for i in result.untagged_ids:
        out.json({"stream": f"Loaded image ID: {i}\n"})
    out.close()


# --- commit ------------------------------------------------------------------------------
def _changes_of_config(body: Any) -> list[str]:
    """The container config in a commit's body as Dockerfile instructions."""
    if body is None:
        return []
    if not isinstance(body, dict):
        raise HTTPError(400, "invalid JSON: the commit body must be a container config object")
    out: list[str] = []

    def strs(key: str) -> list[str] | None:
        v = body.get(key)
        if v is None:
            return None
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise HTTPError(400, f"invalid JSON: {key} must be a list of strings")
        return v

    for key, ins in (("Cmd", "CMD"), ("Entrypoint", "ENTRYPOINT")):
        v = strs(key)
        if v:
            out.append(f"{ins} {json.dumps(v)}")
    for e in strs("Env") or []:
        k, _, value = e.partition("=")
        out.append(f"ENV {k}={json.dumps(value)}")
    for key, ins in (("WorkingDir", "WORKDIR"), ("User", "USER"), ("StopSignal", "STOPSIGNAL")):
        v = body.get(key)
        if v is not None and not isinstance(v, str):
            raise HTTPError(400, f"invalid JSON: {key} must be a string")
        if v:
            out.append(f"{ins} {v}")
    for key in ("Labels", "ExposedPorts", "Volumes"):
        v = body.get(key)
        if v is None:
            continue
        if not isinstance(v, dict):
            raise HTTPError(400, f"invalid JSON: {key} must be an object")
        for k, val in v.items():
            if key == "Labels":
                if not isinstance(val, str):
                    raise HTTPError(400, "invalid JSON: label values must be strings")
                out.append(f"LABEL {json.dumps(k)}={json.dumps(val)}")
            elif key == "ExposedPorts":
                out.append(f"EXPOSE {k}")
            else:
                out.append(f"VOLUME {json.dumps([k])}")
    return out


@routes.route("POST", "/commit")
def commit(engine, req: Request) -> None:
    container = req.q("container") or ""
    if not container:
        raise HTTPError(400, "container is required")
    try:
        cid = engine.container(container)
    except NotFound:
        raise HTTPError(404, f"No such container: {container}") from None
    changes = _changes_of_config(req.json(default=None, kind=None)) + req.qlist("changes")
    repo = req.q("repo") or ""
    tag_ = req.q("tag") or ""
    ref = (f"{repo}:{tag_}" if tag_ else repo) or None       # a tag without repo: untagged
    if ref:
        from core.reference import parse

        try:
            parse(ref)
        except InvalidReference as exc:
            raise HTTPError(400, str(exc)) from None
    img = engine.commit(cid, ref, message=req.q("comment") or None,
                        author=req.q("author") or None, changes=changes or None,
                        pause=req.qbool("pause", True))
    req.send_json(201, {"Id": img.id})

