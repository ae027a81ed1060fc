"""Routes, API version negotiation and Docker's error shapes.

A request path may carry a version prefix (``/v1.41/containers/json``); without one the
server's highest version applies, as dockerd does. Versions outside
``MIN_API_VERSION..MAX_API_VERSION`` get dockerd's 400 messages. Handlers raise
``HTTPError`` or a ``core.errors`` error; both become ``{"message": ...}`` with the status
dockerd would use (404 no such object, 409 conflict, 400 bad parameter, 500 other).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from core.errors import (
    ArchiveError,
    Conflict,
    InvalidReference,
    NotFound,
    NutshellError,
    UsageError,
)

from .http import HTTPError, Request

MIN_API_VERSION = "1.24"
MAX_API_VERSION = "1.50"   # what docker 28 asks for; docker 20.10 asks for 1.41

_VERSION_PREFIX = re.compile(r"^/v(\d+)\.(\d+)(/.*)\Z")

Handler = Callable[[Any, Request], Any]


def _vtuple(v: str) -> tuple[int, int]:
    major, minor = v.split(".")
    return int(major), int(minor)


def version_at_least(req: Request, v: str) -> bool:
    return _vtuple(req.api_version) >= _vtuple(v)


class Routes:
    """An area's endpoints, declared on their handlers::

        routes = Routes()

        @routes.route("GET", "/containers/{id}/json")
        def inspect(engine, req): ...
    """

    def __init__(self) -> None:
        self.table: list[tuple[str, str, Handler]] = []

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.table.append((method, pattern, fn))
            return fn
        return deco


class Router:
    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """``pattern``: a path with ``{name}`` (one segment) or ``{name:path}`` (the rest,
        slashes included: image names) captures."""
        rx = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+?)", pattern)
        rx = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", rx)
        self.routes.append((method, re.compile(f"^{rx}/?\\Z"), handler))

    def include(self, routes: Routes) -> None:
        for method, pattern, handler in routes.table:
            self.add(method, pattern, handler)

    def resolve(self, req: Request) -> Handler:
        m = _VERSION_PREFIX.match(req.raw_path)
        if m:
            v = f"{int(m.group(1))}.{int(m.group(2))}"
            asked = f"{m.group(1)}.{m.group(2)}"       # as written, as dockerd quotes it
            if _vtuple(v) > _vtuple(MAX_API_VERSION):
                raise HTTPError(400, f"client version {asked} is too new. Maximum supported API "
                                     f"version is {MAX_API_VERSION}")
            if _vtuple(v) < _vtuple(MIN_API_VERSION):
                raise HTTPError(400, f"client version {asked} is too old. Minimum supported API "
                                     f"version is {MIN_API_VERSION}, please upgrade your client "
                                     "to a newer version")
            req.api_version = v
            req.path = m.group(3)
        else:
            req.api_version = MAX_API_VERSION
        methods = [req.method] + (["GET"] if req.method == "HEAD" else [])
        for method in methods:
            for meth, rx, handler in self.routes:
                mm = rx.match(req.path)
                if not mm:
                    continue
                if meth != method:
                    continue
                req.params = mm.groupdict()
                return handler
        # a known path with another method is dockerd's 404 too (its router's
        # method-not-allowed handler is the not-found one), and clients expect that
        raise HTTPError(404, f"page not found: {req.method} {req.path}")


def status_of(exc: BaseException) -> int:
    """The HTTP status dockerd gives the same failure."""
    if isinstance(exc, HTTPError):
        return exc.status
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, (UsageError, InvalidReference, ArchiveError)):
        return 400
    return 500


def message_of(exc: BaseException) -> str:
    if isinstance(exc, HTTPError):
        return exc.message
    if isinstance(exc, NutshellError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == 28:
        return "no space left on device"
    return f"internal error: {type(exc).__name__}: {exc}"
