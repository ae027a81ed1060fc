"""``POST /build``: the classic builder's API (what ``DOCKER_BUILDKIT=0 docker build`` and
docker-py's ``images.build`` use).

The body is the context as a tar stream (plain or compressed); it is unpacked by
``Engine.build_from_archive`` with the safe extractor into a private directory, the
Dockerfile (``dockerfile=``, a path inside the context) is read inside it. The answer is
dockerd's JSON stream: ``{"stream": "Step 1/3 : FROM busybox\\n"}``, `` ---> Using
cache``, ``{"aux": {"ID": "sha256:..."}}``, ``Successfully built``/``tagged``; a failed
step ends it with ``{"errorDetail": {"code", "message"}, "error"}``.

Query parameters of the wrong JSON type (``buildargs``, ``labels``, ``cachefrom``) are a
400 before anything is read. ``remote`` (a Git or URL context), ``platform`` other than
this host's, ``squash`` and the resource limits are not supported.
"""

from __future__ import annotations

import os
from typing import Any

from core.errors import NutshellError
from core.events import Progress

from .http import HTTPError, Request
from .images import MAX_UPLOAD, BodyReader, LazyStream, credential_of, message_of_progress
from .router import Routes, version_at_least

routes = Routes()

#: the most a build context may be (bytes of tar stream); NUTSHELL_API_MAX_CONTEXT overrides
MAX_CONTEXT = int(os.environ.get("NUTSHELL_API_MAX_CONTEXT", str(MAX_UPLOAD)))
MAX_CONTEXT_ENTRIES = int(os.environ.get("NUTSHELL_API_MAX_CONTEXT_ENTRIES", "1000000"))


def _str_map(req: Request, name: str, allow_null: bool = False) -> dict[str, str]:
    v = req.qjson(name, {})
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise HTTPError(400, f"invalid {name}: expected a JSON object of strings")
    out: dict[str, str] = {}
    for k, val in v.items():
        if val is None and allow_null:
            continue                       # an unset build arg: the Dockerfile's default
        if not isinstance(val, str):
            raise HTTPError(400, f"invalid {name}: the value of {k!r} must be a string")
        out[k] = val
    return out


def _str_list(req: Request, name: str) -> list[str]:
    v = req.qjson(name, [])
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise HTTPError(400, f"invalid {name}: expected a JSON list of strings")
    return v


def _registry_config(req: Request) -> dict:
    """``X-Registry-Config``: base64url JSON ``{registry: {username, password, ...}}``."""
    import base64
    import binascii
    import json

    raw = (req.headers.get("x-registry-config") or "").strip()
    if not raw:
        return {}
    try:        # as dockerd: a header that does not decode is no credentials
        obj = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)) or b"{}")
    except (binascii.Error, ValueError):
        return {}
    if not isinstance(obj, dict):
        return {}
    creds = {}
    for server, auth in obj.items():
        cred = credential_of(auth) if isinstance(auth, dict) else None
        if cred is not None:
            creds[server] = cred
    return creds


class _BuildReporter:
    """Builder Progress events as the classic builder's JSON stream."""

    def __init__(self, out: LazyStream, quiet: bool):
        self.out = out
        self.quiet = quiet
        self.held: list[dict] = []        # q=1: the output, sent only if the build fails
        self.from_steps: set[str] = set()

    def send(self, msg: dict) -> None:
        if self.quiet:
            self.held.append(msg)
        else:
            self.out.json(msg)

    def stream(self, text: str) -> None:
        self.send({"stream": text})

    def __call__(self, ev: Progress) -> None:
        a = ev.action
        if a == "Step":
            if ev.detail.get("instruction") == "FROM":
                self.from_steps.add(ev.id)
            self.stream(f"Step {ev.current}/{ev.total} : {ev.message}\n")
        elif a == "CACHED":
            if ev.id not in self.from_steps:
                self.stream(" ---> Using cache\n")
        elif a == "Running":
            self.stream(f" ---> Running in {ev.message}\n")
        elif a == "Output":
            self.stream(ev.message + "\n")
        elif a == "Removed":
            self.stream(f"Removing intermediate container {ev.message}\n")
        elif a == "Done":
            self.stream(f" ---> {ev.message}\n")
        elif a == "Warning":
            self.stream(f"[WARNING]: {ev.message}\n")
        elif a in ("Built", "Tagged", "Writing", "Unable to find image locally"):
            return
        else:
            msg = message_of_progress(ev)     # a base image being pulled
            if msg is not None:
                self.send(msg)


@routes.route("POST", "/build")
def build(engine, req: Request) -> None:
    from core.dockerfile.builder import BuildOptions, RunFailed
    from core.reference import parse

    if (req.q("version") or "1") != "1":
        raise HTTPError(400, f"builder version {req.q('version')!r} (BuildKit) is not supported: "
                             "this server has the classic builder only (DOCKER_BUILDKIT=0)")
    if req.q("remote"):
        raise HTTPError(400, "building from a remote context (remote=) is not supported: "
                             "send the context as a tar body")
    tags = [t for t in req.qlist("t") if t]
    for t in tags:
        try:
            if parse(t).digest:
                raise HTTPError(400, f"invalid tag {t!r}: a tag cannot contain a digest")
        except NutshellError as exc:
            raise HTTPError(400, f"invalid tag {t!r}: {exc}") from None
    build_args = _str_map(req, "buildargs", allow_null=True)
    labels = _str_map(req, "labels")
    _str_list(req, "cachefrom")                   # checked, not used: the local cache is
    platform = req.q("platform") or ""
    if platform:
        from core.store.archive import host_arch

        bits = platform.lower().split("/")
        if bits[0] != "linux" or (len(bits) > 1 and bits[1] != host_arch()):
            raise HTTPError(400, f"building for platform {platform!r} is not supported "
                                 f"(this host builds linux/{host_arch()})")
    if req.qbool("squash"):
        raise HTTPError(400, "squash is not supported")
    network = req.q("networkmode") or "default"
    if network == "default":
        network = "bridge"
    if network not in ("bridge", "host", "none"):
        raise HTTPError(400, f"network mode {network!r} is not supported for builds "
                             "(default, bridge, host or none)")
    creds = _registry_config(req)
    quiet = req.qbool("q")
    options = BuildOptions(dockerfile=req.q("dockerfile") or None, tags=tags,
                           build_args=build_args, target=req.q("target") or None,
                           no_cache=req.qbool("nocache"), pull=req.qbool("pull"),
                           network=network, labels=labels)
    out = LazyStream(req)
    reporter = _BuildReporter(out, quiet)
    try:
        with engine.registry_auth(creds):
            result = engine.build_from_archive(BodyReader(req, MAX_CONTEXT + 1), options,
                                               progress=reporter, max_bytes=MAX_CONTEXT,
                                               max_entries=MAX_CONTEXT_ENTRIES)
    except HTTPError:
        raise
    except BaseException as exc:  # noqa: BLE001 - the stream's last message
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        if reporter.held:                 # q=1 and a failure: the output after all
            for msg in reporter.held:
                out.json(msg)
        _fail(req, out, exc, RunFailed)
        return
    if not quiet and version_at_least(req, "1.30"):
        out.json({"aux": {"ID": result.image_id}})
    if quiet:
        out.json({"stream": result.image_id + "\n"})
    else:
        out.json({"stream": f"Successfully built {result.short_id}\n"})
        for t in result.tags:
            out.json({"stream": f"Successfully tagged {t}\n"})
    out.close()


def _fail(req: Request, out: LazyStream, exc: BaseException, run_failed: type) -> None:
    from core.dockerfile.context import ContextError
    from core.dockerfile.dockerignore import BadPattern
    from core.dockerfile.parser import DockerfileSyntaxError

    from .router import message_of, status_of

    msg = message_of(exc)
    code: Any = None
    if isinstance(exc, run_failed):
        code = exc.code                                  # type: ignore[attr-defined]
    if not out.started:
        status = status_of(exc)
        if isinstance(exc, (ContextError, DockerfileSyntaxError, BadPattern)) and status == 500:
            status = 400
        from core.dockerfile.tarcontext import ContextTooLarge

        if isinstance(exc, ContextTooLarge):
            status = 413
        # nothing was sent yet: a plain error response (dockerd does the same); the
        # rest of a context is not read, so the connection closes after it
        req.keep_alive = False
        req.send_error(status, msg)
        return
    out.error(msg, code)
    out.close()
