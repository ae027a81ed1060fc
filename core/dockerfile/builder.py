"""Build an image from a Dockerfile: each file-system step a layer, with a cache.

``build(engine, BuildOptions(...), progress)`` runs in this order:

1. read the context (``BuildContext``: .dockerignore, safe reads) and parse the
   Dockerfile (``dockerfile.parse``); pick the target stage and the stages it needs;
2. for each of those stages, in file order: the base (``FROM scratch``, an earlier
   stage, or an image, pulled if missing through ``Engine.ensure_image``), then one
   step per instruction, each with a cache key (core/dockerfile/cache.py). A hit reuses the
   stored layer; a miss runs the step:

   * RUN starts a real container of the runtime on the current layers (network
     ``none`` unless asked), streams its output, and turns its overlay ``upper`` dir
     into a layer (``tarwriter.layer_from_dir``, mount points the runtime created left
     out). A non-zero exit stops the build with :class:`RunFailed` carrying that code;
   * COPY/ADD/WORKDIR need no container: a thread with its own mount namespace mounts
     an overlay of the current layers with a fresh upper dir, writes the files through
     ``openat2(RESOLVE_IN_ROOT)`` (symlinks in the image stay inside it), and the upper
     dir becomes the layer. The mount dies with the thread's namespace, even on a crash;
   * every other instruction only changes the image config (``empty_layer`` history);
3. the final config, manifest and tags go into the store only once every step worked:
   a failed build leaves no tagged image, and its intermediate containers are removed
   (``finally``: also on Ctrl-C).

Progress is a stream of :class:`core.events.Progress` events, ``id`` the step number:
``Step`` (message: the instruction; detail: number, total, stage, line...), ``CACHED``,
``Running`` (detail container), ``Output`` (one line of a RUN's output), ``Writing``
(a layer), ``Done`` (detail: cached, layer, state, seconds), ``Warning``, and at the
end ``Built`` and ``Tagged``. The CLI draws Docker's classic lines or BuildKit's plain
ones from it; the app can draw widgets.
"""

from __future__ import annotations

import contextlib
import copy as _copy
import errno
import json
import os
import posixpath
import re
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.dockerfile.cache import BuildCache, CacheEntry, CacheLayer, step_key
from core.dockerfile.context import BuildContext, ContextError, Source, hash_sources
from core.dockerfile.parser import (
    DEFAULT_SHELL,
    Dockerfile,
    DockerfileSyntaxError,
    Instruction,
    Stage,
    Step,
    expand_heredoc,
    parse,
    parse_instruction,
)
from core.errors import CannotInvoke, CommandNotFound, NotFound, NutshellError, UsageError
from core.events import ProgressFn, emit
from core.store.unpack import LayerApplier
from core.types import BuildCachePruneReport, BuildCacheUsage

__all__ = [
    "BuildOptions", "BuildResult", "StepReport", "BuildError", "RunFailed", "build",
    "apply_config", "history_entry", "created_by", "run_argv", "resolve_workdir",
    "parse_chown", "parse_chmod", "prune_cache", "BUILDER_VERSION", "ENTITLEMENTS",
    "check_entitlements",
]

#: Part of every cache key: bump it when a step's result would change for the same input.
BUILDER_VERSION = "nutshell-build-1"
HISTORY_COMMENT = "buildkit.dockerfile.v0"
BUILD_LABEL = "io.nutshell.build.step"

_METADATA = frozenset({"ENV", "ARG", "LABEL", "MAINTAINER", "USER", "EXPOSE", "VOLUME", "CMD",
                       "ENTRYPOINT", "SHELL", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD"})


class BuildError(NutshellError):
    """A build that failed. Docker's ``build`` exits 1 for these."""

    exit_code = 1


class RunFailed(BuildError):
    """A RUN returned a non-zero code; ``exit_code`` is that code (classic Docker's
    ``docker build`` exits with it)."""

    def __init__(self, message: str, code: int, hint: str | None = None):
        super().__init__(message, hint=hint, exit_code=code if 0 < code < 256 else 1)
        self.code = code


# --------------------------------------------------------------------------- data

#: Build entitlements (``--allow``), BuildKit's names: what a Dockerfile may only ask
#: for with the user's consent. ``RUN --network=host`` needs ``network.host``,
#: ``RUN --security=insecure`` (a privileged step) needs ``security.insecure``.
ENTITLEMENTS = ("network.host", "security.insecure")

#: ``RUN --security`` values (BuildKit's instructions/commands_runsecurity.go).
RUN_SECURITY = ("sandbox", "insecure")


def check_entitlements(allow) -> list[str]:
    """The ``--allow`` values, validated (one-line :class:`UsageError` otherwise)."""
    if isinstance(allow, str):
        allow = [allow]
    out: list[str] = []
    for value in allow or []:
        if value not in ENTITLEMENTS:
            # buildx's wording (util/buildflags/entitlements.go ParseEntitlements)
            raise UsageError(f"invalid entitlement: {value} (expected "
                             f"{' or '.join(ENTITLEMENTS)})")
        if value not in out:
            out.append(value)
    return out


@dataclass
class BuildOptions:
    """What ``nutshell build`` takes. ``dockerfile``: a path (absolute, or relative to
    the context; default ``<context>/Dockerfile``); ``dockerfile_text`` replaces the file
    (``-f -``). ``network``: what RUN steps get (``none`` by default, ``host``...; the
    user's own choice, so ``host`` here also grants ``network.host``, as buildx does).
    ``allow``: entitlements the Dockerfile may use (:data:`ENTITLEMENTS`)."""

    context: str = "."
    dockerfile: str | None = None
    dockerfile_text: str | None = None
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    pull: bool = False
    network: str = "none"
    labels: dict[str, str] = field(default_factory=dict)
    compression: str = "gzip"
    allow: list[str] = field(default_factory=list)


@dataclass
class StepReport:
    """What one build step did: cached or run, the layer it made, how long it took."""
    number: int
    stage: str
    instruction: str
    cached: bool
    layer: str | None          # blob digest of the layer the step made (None: no layer)
    seconds: float
    key: str


@dataclass
class BuildResult:
    """The outcome of a build: the image, its tags and every step's report."""
    image_id: str
    manifest_digest: str
    tags: list[str]            # familiar references
    steps: list[StepReport]
    warnings: list[str]
    seconds: float

    @property
    def short_id(self) -> str:
        return self.image_id.split(":", 1)[-1][:12]


@dataclass
class _State:
    """What a build has made so far: the image it would be if it stopped here."""

    key: str
    layers: list[CacheLayer]
    config: dict
    history: list[dict]
    platform: dict
    created: str | None = None
    author: str | None = None  # the image's "author" (MAINTAINER sets it, as BuildKit does)

    def copy(self) -> _State:
        return _State(self.key, [CacheLayer(**vars(layer)) for layer in self.layers],
                      _copy.deepcopy(self.config), _copy.deepcopy(self.history),
                      dict(self.platform), self.created, self.author)

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]


@dataclass
class _StageRun:
    """Progress through one stage of a build (BuildKit's step numbering)."""
    stage: Stage
    label: str                 # BuildKit's "[builder 2/4]" name ("" for a lone stage)
    count: int                 # steps in this stage, FROM included
    index: int = 0             # steps of this stage done so far
    cmd_set: bool = False      # CMD seen in this stage (ENTRYPOINT keeps it)


@dataclass
class _CopyPlan:
    """What a COPY or ADD will take: patterns, resolved sources or another stage's files."""
    patterns: list[str]
    sources: list[Source] | None        # resolved context sources (no --from)
    inline: list[tuple[str, bytes]]     # COPY <<EOF heredocs: (name, content)
    from_ref: str | None = None
    from_state: _State | None = None
    key: str = ""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------- pure helpers

def resolve_workdir(current: str | None, path: str) -> str:
    """WORKDIR: a relative path chains onto the current one; the result is cleaned."""
    base = current or "/"
    joined = path if path.startswith("/") else posixpath.join(base, path)
    out = posixpath.normpath(joined)
    return "/" + out.lstrip("/") if out != "/" else "/"


def command_words(step: Step, shell: list[str]) -> list[str]:
    """CMD/ENTRYPOINT: the exec form as written, the shell form through SHELL."""
    if step.instruction.json_form:
        return list(step.args)
    return list(shell) + [step.args[0]] if step.args else []


_HEREDOC_WORD = re.compile(r"^\d*<<-?(.+)\Z")


def run_argv(step: Step, shell: list[str]) -> list[str]:
    """The argv a RUN executes. Exec form as written; shell form as ``SHELL + [text]``.

    Heredocs (``RUN <<EOF``): a RUN that is only a heredoc runs its body as the script;
    otherwise the shell gets the whole text, bodies included, and does the redirection.
    """
    ins = step.instruction
    if ins.json_form:
        return list(step.args)
    text = step.args[0] if step.args else ""
    if ins.heredocs:
        m = _HEREDOC_WORD.match(text.strip())
        if len(ins.heredocs) == 1 and m and m.group(1).strip().strip("'\"") == ins.heredocs[0].name:
            return list(shell) + [ins.heredocs[0].content]
        text = text + "\n" + "".join(h.content + h.name + "\n" for h in ins.heredocs)
    return list(shell) + [text]


def apply_config(config: dict, step: Step, stage: _StageRun | dict, shell: list[str]) -> None:
    """Apply a step's effect on the image config (``config`` section), in place.

    ``stage`` tracks ``cmd_set`` (CMD seen in this stage: ENTRYPOINT then keeps Cmd).
    """
    cmd = step.cmd

    def cmd_set(value: bool | None = None) -> bool:
        if isinstance(stage, dict):
            if value is not None:
                stage["cmd_set"] = value
            return bool(stage.get("cmd_set"))
        if value is not None:
            stage.cmd_set = value
        return stage.cmd_set

    if cmd == "ENV":
        config["Env"] = [f"{k}={v}" for k, v in step.env.items()]
    elif cmd == "LABEL":
        labels = dict(config.get("Labels") or {})
        labels.update({k: v or "" for k, v in step.pairs})
        config["Labels"] = labels
    elif cmd == "WORKDIR":
        config["WorkingDir"] = resolve_workdir(config.get("WorkingDir"), step.args[0])
    elif cmd == "USER":
        config["User"] = step.args[0]
    elif cmd in ("EXPOSE", "VOLUME"):
        key = "ExposedPorts" if cmd == "EXPOSE" else "Volumes"
        values = dict(config.get(key) or {})
        for item in step.args:
            values[item] = {}
        config[key] = values
    elif cmd == "CMD":
        config["Cmd"] = command_words(step, shell)
        cmd_set(True)
    elif cmd == "ENTRYPOINT":
        config["Entrypoint"] = command_words(step, shell)
        if not cmd_set():
            config.pop("Cmd", None)
    elif cmd == "SHELL":
        config["Shell"] = list(step.args)
    elif cmd == "STOPSIGNAL":
        config["StopSignal"] = step.args[0]
    elif cmd == "HEALTHCHECK":
        hc = step.instruction.healthcheck
        if hc is not None:
            config["Healthcheck"] = hc.to_config()
    elif cmd == "ONBUILD":
        config["OnBuild"] = list(config.get("OnBuild") or []) + [step.args[0]]


def _flag_text(step: Step) -> str:
    out = []
    for name in ("from", "chown", "chmod", "link"):
        value = step.flags.get(name)
        if value is True:
            out.append(f"--{name}")
        elif value:
            out.append(f"--{name}={value}")
    return "".join(x + " " for x in out)


def created_by(step: Step, shell: list[str]) -> str:
    """The history ``created_by`` of a step, BuildKit style (``RUN /bin/sh -c ... # buildkit``)."""
    cmd = step.cmd
    ins = step.instruction
    if cmd == "RUN":
        args = [f"{k}={v}" for k, v in step.build_args.items() if k not in step.env]
        prefix = f"|{len(args)} {' '.join(args)} " if args else ""
        argv = run_argv(step, shell)
        text = json.dumps(argv) if ins.json_form else " ".join(argv)
        return f"RUN {prefix}{text} # buildkit"
    if cmd in ("COPY", "ADD"):
        return f"{cmd} {_flag_text(step)}{' '.join(step.args)} # buildkit"
    if cmd in ("ENV", "LABEL"):
        return cmd + " " + " ".join(f"{k}={v}" for k, v in step.pairs)
    if cmd in ("CMD", "ENTRYPOINT"):
        return f"{cmd} {json.dumps(command_words(step, shell))}"
    if cmd == "SHELL":
        return f"SHELL {json.dumps(list(step.args))}"
    if cmd == "HEALTHCHECK":
        return " ".join(ins.original.split())
    if cmd == "ONBUILD":
        return "ONBUILD " + step.args[0]
    return f"{cmd} {' '.join(step.args)}"


def history_entry(step: Step, shell: list[str], created: str, empty: bool) -> dict:
    entry: dict[str, str | bool] = {"created": created, "created_by": created_by(step, shell),
                                    "comment": HISTORY_COMMENT}
    if empty:
        entry["empty_layer"] = True
    return entry


def display(ins: Instruction) -> str:
    """An instruction as progress shows it: its first line, whitespace collapsed."""
    return " ".join(ins.original.split("\n", 1)[0].split())


def parse_chmod(value: str | None) -> int | None:
    if not value:
        return None
    if not re.fullmatch(r"[0-7]{1,4}", value):
        raise BuildError(f"invalid --chmod={value}: only octal modes (e.g. 0755) are supported")
    return int(value, 8)


def _id_file(text: str, name: str, col: int) -> tuple[int, int] | None:
    """Find ``name`` in passwd/group text: (id, primary gid or -1)."""
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) > col and parts[0] == name:
            try:
                return int(parts[2]), (int(parts[3]) if col >= 3 and len(parts) > 3 else -1)
            except ValueError:
                return None
    return None


def parse_chown(spec: str, passwd: Callable[[], str] = lambda: "",
                group: Callable[[], str] = lambda: "") -> tuple[int, int]:
    """``--chown`` / USER ownership: ``uid[:gid]`` or names from the image's files.

    As Docker documents: a user without a group (name or number) uses the same number
    as GID. Names are looked up in ``passwd()`` / ``group()`` (read lazily).
    """
    user, _, grp = spec.partition(":")
    if not user:
        raise BuildError(f"invalid --chown={spec}: no user")
    if user.isdigit():
        uid = int(user)
    else:
        found = _id_file(passwd(), user, 3)
        if found is None:
            raise BuildError(f"unable to find user {user}: no matching entries in passwd file")
        uid = found[0]
    if not grp:
        return uid, uid
    if grp.isdigit():
        return uid, int(grp)
    found = _id_file(group(), grp, 2)
    if found is None:
        raise BuildError(f"unable to find group {grp}: no matching entries in group file")
    return uid, found[0]


# --------------------------------------------------------------------------- mounts

def _in_private_mounts(fn: Callable[[], object]) -> object:
    """Run ``fn`` in a new thread that has its own mount namespace.

    Mounts made there are invisible to the rest of the host and vanish with the thread
    (unshare(CLONE_NEWNS) is per thread; CLONE_FS comes with it, so chdir is too).
    """
    from core.runtime import linux

    box: dict = {}

    def target() -> None:
        try:
            linux.unshare(linux.CLONE_NEWNS)
            linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    th = threading.Thread(target=target, name="nutshell-build-fs", daemon=True)
    th.start()
    th.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _escape_opt(path: str) -> str:
    return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")


def _mount_overlay(lower: list[str], merged: str, links: str, upper: str | None = None,
                   work: str | None = None) -> None:
    """Overlay on ``merged`` (call in a private mount namespace). ``lower`` base first.

    Lower dirs are named through short symlinks ``links/<n>`` so a deep image never
    exceeds the one-page option limit. Without ``upper`` the mount is read-only.
    """
    from core.fs.imagemount import readable_all
    from core.runtime import linux

    os.makedirs(links, exist_ok=True)
    names = []
    for i, path in enumerate(reversed(readable_all(lower))):
        link = os.path.join(links, str(i))
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(path, link)
        names.append(str(i))
    cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(links)
        data = "lowerdir=" + ":".join(names)
        flags = 0
        if upper is not None:
            data += (f",upperdir={_escape_opt(upper)},workdir={_escape_opt(work or '')}"
                     ",redirect_dir=off,metacopy=off,index=off")
        else:
            flags = linux.MS_RDONLY
        linux.mount("overlay", merged, "overlay", flags, data)
    finally:
        os.fchdir(cwd)
        os.close(cwd)


def _umount(path: str) -> None:
    from core.runtime import linux

    with contextlib.suppress(OSError):
        linux.umount2(path, linux.MNT_DETACH)


# --------------------------------------------------------------------------- writing files

_RESOLVE_IN_ROOT = 0x10 | 0x02          # RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
_RESOLVE_STRICT = 0x08 | 0x04 | 0x02    # RESOLVE_BENEATH | NO_SYMLINKS | NO_MAGICLINKS
_O_DIR = os.O_RDONLY | os.O_DIRECTORY


class _Writer:
    """Writes files into a root file system through an fd on its root.

    Every path is resolved with openat2(RESOLVE_IN_ROOT): symlinks in the image are
    followed the way the container would see them, never out of it. The leaf is created
    with O_EXCL|O_NOFOLLOW relative to its resolved parent.
    """

    def __init__(self, root: str, owner: tuple[int, int] | None, chmod: int | None,
                 keep_owner: bool, what: str):
        self.rootfd = os.open(root, _O_DIR | os.O_CLOEXEC)
        self.owner = owner
        self.chmod = chmod
        self.keep_owner = keep_owner
        self.what = what
        self.dir_attrs: list[tuple[str, int, int]] = []   # (path, mode, mtime_ns)

    def close(self) -> None:
        os.close(self.rootfd)

    def fail(self, message: str) -> BuildError:
        return BuildError(f"{self.what} failed: {message}")

    def _openat2(self, dirfd: int, path: str, flags: int, resolve: int) -> int:
        from core.runtime import linux

        return linux.openat2(dirfd, path, flags | os.O_CLOEXEC, resolve=resolve)

    def read_text(self, path: str, limit: int = 4 << 20) -> str:
        """A small file of the image (``/etc/passwd``), '' when it is missing."""
        try:
            fd = self._openat2(self.rootfd, path.lstrip("/"), os.O_RDONLY, _RESOLVE_IN_ROOT)
        except OSError:
            return ""
        with os.fdopen(fd, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")

    def is_dir(self, path: str) -> bool:
        rel = path.strip("/") or "."
        try:
            fd = self._openat2(self.rootfd, rel, os.O_PATH, _RESOLVE_IN_ROOT)
        except OSError:
            return False
        try:
            return stat.S_ISDIR(os.fstat(fd).st_mode)
        finally:
            os.close(fd)

    def _owner_for(self, uid: int, gid: int) -> tuple[int, int]:
        if self.owner is not None:
            return self.owner
        return (uid, gid) if self.keep_owner else (0, 0)

    def ensure_dir(self, path: str, created_owner: tuple[int, int] | None = None,
                   _links: int = 0) -> int:
        """An fd on directory ``path`` (absolute in the image), made with its missing
        parents (0755, owned by ``--chown`` or root). A dangling symlink on the way is
        followed the way the container would: its target is made, inside the image."""
        rel = posixpath.normpath(path).strip("/")
        rel = "" if rel == "." else rel
        try:
            return self._openat2(self.rootfd, rel or ".", _O_DIR, _RESOLVE_IN_ROOT)
        except FileNotFoundError:
            pass
        except NotADirectoryError:
            raise self.fail(f"cannot create directory /{rel}: a file is in the way") from None
        parent, name = posixpath.split(rel)
        pfd = self.ensure_dir("/" + parent, created_owner, _links)
        try:
            try:
                os.mkdir(name, 0o755, dir_fd=pfd)
            except FileExistsError:
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    if _links >= 40:
                        raise self.fail(f"/{rel}: too many levels of symbolic links") from None
                    link = os.readlink(name, dir_fd=pfd)
                    # the target as the container sees it; RESOLVE_IN_ROOT keeps it inside
                    real = os.readlink(f"/proc/self/fd/{pfd}")
                    root = os.readlink(f"/proc/self/fd/{self.rootfd}")
                    rp = os.path.relpath(real, root)
                    here = "/" if rp == "." else "/" + rp
                    target = link if link.startswith("/") else posixpath.join(here, link)
                    os.close(self.ensure_dir(target, created_owner, _links + 1))
            else:
                fd = self._openat2(pfd, name, _O_DIR, _RESOLVE_STRICT)
                uid, gid = created_owner or self.owner or (0, 0)
                os.fchown(fd, uid, gid)
                os.fchmod(fd, 0o755)
                return fd
            try:
                return self._openat2(self.rootfd, rel, _O_DIR, _RESOLVE_IN_ROOT)
            except (NotADirectoryError, FileNotFoundError):
                raise self.fail(f"cannot create directory /{rel}: a file is in the way") from None
        finally:
            os.close(pfd)

    def _clear(self, dfd: int, name: str, path: str) -> None:
        """Make room for a non-directory at ``name``: a file or symlink there goes; a
        directory is an error (Docker refuses to replace a directory with a file)."""
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            raise self.fail(f"cannot replace directory {path} with a file")
        os.unlink(name, dir_fd=dfd)

    def write_file(self, path: str, reader, mode: int, uid: int, gid: int, mtime_ns: int | None,
                   expect_sha256: str | None = None) -> None:
        import hashlib

        parent, name = posixpath.split(posixpath.normpath(path))
        dfd = self.ensure_dir(parent)
        try:
            self._clear(dfd, name, path)
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=dfd)
            try:
                h = hashlib.sha256()
                while True:
                    chunk = reader.read(1 << 20)
                    if not chunk:
                        break
                    h.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        n = os.write(fd, view)
                        view = view[n:]
                if expect_sha256 and h.hexdigest() != expect_sha256:
                    raise self.fail(f"{path}: the source changed while it was being copied")
                uid, gid = self._owner_for(uid, gid)
                os.fchown(fd, uid, gid)
                os.fchmod(fd, self.chmod if self.chmod is not None else mode)
                if mtime_ns is not None:
                    os.utime(fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)
        finally:
            os.close(dfd)

    def write_special(self, path: str, kind: str, mode: int, uid: int, gid: int,
                      mtime_ns: int | None, link: str | None = None, rdev: int = 0) -> None:
        parent, name = posixpath.split(posixpath.normpath(path))
        dfd = self.ensure_dir(parent)
        try:
            self._clear(dfd, name, path)
            if kind == "symlink":
                os.symlink(link or "", name, dir_fd=dfd)
            elif kind == "fifo":
                os.mkfifo(name, 0o600, dir_fd=dfd)
            elif kind in ("char", "block"):
                os.mknod(name, (stat.S_IFCHR if kind == "char" else stat.S_IFBLK) | 0o600, rdev,
                         dir_fd=dfd)
            else:
                return
            uid, gid = self._owner_for(uid, gid)
            os.chown(name, uid, gid, dir_fd=dfd, follow_symlinks=False)
            if kind != "symlink":
                fd = self._openat2(dfd, name, os.O_PATH, _RESOLVE_STRICT)
                try:
                    os.chmod(f"/proc/self/fd/{fd}", self.chmod if self.chmod is not None else mode)
                finally:
                    os.close(fd)
            if mtime_ns is not None:
                os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=dfd, follow_symlinks=False)
        finally:
            os.close(dfd)

    def copy_dir_entry(self, path: str, mode: int, uid: int, gid: int, mtime_ns: int | None) -> None:
        """A directory of the source: made (or kept) at ``path``, given its owner now and
        its mode and mtime at the end (children would change the mtime)."""
        owner = self._owner_for(uid, gid)
        fd = self.ensure_dir(path, owner)
        try:
            os.fchown(fd, *owner)
        finally:
            os.close(fd)
        self.dir_attrs.append((path, self.chmod if self.chmod is not None else mode,
                               mtime_ns if mtime_ns is not None else -1))

    def finish(self) -> None:
        for path, mode, mtime in sorted(self.dir_attrs, key=lambda a: a[0].count("/"), reverse=True):
            rel = path.strip("/") or "."
            fd = self._openat2(self.rootfd, rel, _O_DIR, _RESOLVE_IN_ROOT)
            try:
                os.fchmod(fd, mode)
                if mtime >= 0:
                    os.utime(fd, ns=(mtime, mtime))
            finally:
                os.close(fd)
        self.dir_attrs.clear()

    def copy_source(self, src: Source, ctx: BuildContext, dest: str, dest_is_dir: bool) -> None:
        """One resolved source: a directory copies its contents into ``dest``; a file goes
        to ``dest`` (or into it when it is, or already exists as, a directory)."""
        entry = src.entry
        if src.is_dir:
            if not self.is_dir(dest):
                self.copy_dir_entry(dest, entry.mode, entry.uid, entry.gid, None)
            for rel, child in src.children:
                self._copy_entry(ctx, child, posixpath.join(dest, rel))
            return
        target = dest
        if dest_is_dir or self.is_dir(dest):
            target = posixpath.join(dest, src.name or posixpath.basename(src.path))
        self._copy_entry(ctx, entry, target)

    def _copy_entry(self, ctx: BuildContext, entry, target: str) -> None:
        if entry.type == "dir":
            self.copy_dir_entry(target, entry.mode, entry.uid, entry.gid, entry.mtime_ns)
        elif entry.type == "file":
            with ctx.open(entry.path) as f:
                self.write_file(target, f, entry.mode, entry.uid, entry.gid, entry.mtime_ns,
                                expect_sha256=entry.sha256)
        else:
            self.write_special(target, entry.type, entry.mode, entry.uid, entry.gid,
                               entry.mtime_ns, link=entry.link, rdev=entry.rdev)

    def extract(self, f, kind: str, dest: str, name: str) -> None:
        """ADD of a local archive: unpack it into ``dest`` with the store's safe applier
        (no path may climb out; nothing is written through a symlink)."""
        from core.errors import UnsafeLayer
        from core.store.tarreader import TarReader
        from core.store.unpack import DEFAULT_MAX_LAYER_BYTES

        dfd = self.ensure_dir(dest)
        try:
            stream = _limited(_decompressing(f, kind), DEFAULT_MAX_LAYER_BYTES, name)
            applier = _AddApplier(f"/proc/self/fd/{dfd}")
            try:
                tr = TarReader(stream)
                for member in tr:
                    if self.owner is not None:
                        member.uid, member.gid = self.owner
                    if self.chmod is not None and not member.issym():
                        member.mode = self.chmod
                    applier.apply(tr, member)
                applier.finish()
            finally:
                applier.close()
        except UnsafeLayer as exc:
            raise self.fail(f"cannot unpack {name}: {exc}") from None
        except (EOFError, OSError, ValueError) as exc:
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise self.fail(f"cannot unpack {name}: {exc}") from None
        finally:
            os.close(dfd)


class _AddApplier(LayerApplier):
    """ADD's unpacker: the archive lands on a destination that may hold files already (an
    earlier archive of the same ADD, the image's own tree), as Docker's untar does: a
    directory is entered and merged, anything else in an entry's way is replaced, and the
    archive's own root entry (``./``) gives the destination its owner."""

    def clear_slot(self, pfd: int, base: str, rel: str, m) -> bool:
        try:
            old = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(old.st_mode):
            if m.isdir():
                return True
            shutil.rmtree(base, dir_fd=pfd)  # through fds: never follows a symlink in it
            return False
        os.unlink(base, dir_fd=pfd)
        return False

    def root_entry(self, m) -> None:
        super().root_entry(m)
        fd = os.open(f"/proc/self/fd/{self.rootfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self._chown(fd, m)
        finally:
            os.close(fd)


def _decompressing(f, kind: str):
    """A readable stream of the plain tar inside ``f`` (kind from context.archive_format)."""
    comp = kind.partition("+")[2]
    if comp == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=f, mode="rb")
    if comp == "bzip2":
        import bz2

        return bz2.BZ2File(f, "rb")
    if comp == "xz":
        import lzma

        return lzma.LZMAFile(f, "rb")
    if comp == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
    return f


class _limited:
    """Refuse to read more than ``limit`` bytes (a decompression bomb in ADD)."""

    def __init__(self, f, limit: int, name: str):
        self.f, self.left, self.name = f, limit, name

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n if n is not None and n >= 0 else 1 << 20)
        self.left -= len(data)
        if self.left < 0:
            raise BuildError(f"ADD failed: {self.name} expands beyond "
                             f"{self._limit_text()} (decompression bomb?)")
        return data

    def _limit_text(self) -> str:
        from core.store.unpack import DEFAULT_MAX_LAYER_BYTES

        return f"{DEFAULT_MAX_LAYER_BYTES} bytes"


def _upper_has_changes(upper: str, lower: list[str], exclude: set[str]) -> bool:
    """Whether an overlay upper dir holds a change: any non-directory (files, symlinks,
    whiteouts) not excluded, a directory that no lower layer has (or an opaque one), or
    one whose mode or owner differs from the layer below. Directories overlay merely
    copied up to hold a mount point are not changes (their mtime is not compared)."""
    from core.fs.imagemount import readable_all

    lower = readable_all(lower)
    for dirpath, dirnames, filenames in os.walk(upper):
        rel_dir = os.path.relpath(dirpath, upper)
        rel_dir = "" if rel_dir == "." else rel_dir
        for name in filenames:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if rel not in exclude:
                return True
        keep = []
        for name in dirnames:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            full = os.path.join(dirpath, name)
            if rel in exclude:
                continue
            if os.path.islink(full):
                return True
            try:
                if os.getxattr(full, "trusted.overlay.opaque") == b"y":
                    return True
            except OSError:
                pass
            below = next((os.path.join(layer, rel) for layer in reversed(lower)
                          if os.path.lexists(os.path.join(layer, rel))), None)
            if below is None or os.path.islink(below) or not os.path.isdir(below):
                return True
            mine, theirs = os.lstat(full), os.lstat(below)
            if (mine.st_mode, mine.st_uid, mine.st_gid) != (theirs.st_mode, theirs.st_uid,
                                                           theirs.st_gid):
                return True             # chmod/chown of a directory the image has
            keep.append(name)
        dirnames[:] = keep
    return False


# --------------------------------------------------------------------------- the builder

class Builder:
    def __init__(self, engine, options: BuildOptions, progress: ProgressFn = None):
        self.engine = engine
        self.store = engine.store
        self.paths = engine.paths
        self.opts = options
        self.progress = progress
        self.cache = BuildCache(engine.paths)
        self.states: dict[int, _State] = {}
        self.reports: list[StepReport] = []
        self.warnings: list[str] = []
        self.step_no = 0
        self.total = 0
        self.tmp: str | None = None
        self._images: dict[str, object] = {}
        self._pulled: set[str] = set()

    # -- events -------------------------------------------------------------------------
    def _emit(self, n: int | str, action: str, message: str = "", **detail) -> None:
        emit(self.progress, str(n), action, message=message, **detail)

    def _fail_where(self, step: Step, what: str, exc: NutshellError) -> BuildError:
        """``exc`` with the Dockerfile line in front (once)."""
        where = f"{self.df.filename}:{step.line}"
        text = str(exc)
        if not text.startswith(where):
            text = f"{where}: {what} failed: {text}"
        return BuildError(text, hint=exc.hint)

    # -- preparation --------------------------------------------------------------------
    def _prepare(self) -> None:
        from core.reference import parse as parse_ref

        opts = self.opts
        self.tags = []
        for tag in opts.tags:
            ref = parse_ref(tag)
            if ref.digest:
                raise UsageError(f"invalid tag {tag!r}: a tag cannot contain a digest")
            self.tags.append(ref)
        if not opts.network:
            raise UsageError("invalid network mode \"\" for RUN steps")
        self.allowed = set(check_entitlements(opts.allow))
        if opts.network == "host":
            # `--network host` is the user's own consent: buildx grants network.host
            # with it (build/opt.go), and so does dockerd's builder (builder-next)
            self.allowed.add("network.host")
        context = opts.context
        if not os.path.isdir(context):
            raise ContextError(f"unable to prepare context: path {context!r} not found")
        if opts.dockerfile_text is not None:
            text = opts.dockerfile_text
            self.ctx = BuildContext(context, dockerfile=None)
            self.ctx.filename = os.path.basename(opts.dockerfile or "Dockerfile")
        else:
            path = opts.dockerfile or "Dockerfile"
            if not os.path.isabs(path):
                path = os.path.join(context, path)
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8", "surrogateescape")
            except FileNotFoundError:
                raise BuildError(f"unable to prepare context: cannot find the Dockerfile {path}",
                                 hint="name it with -f, or put a Dockerfile in the context") from None
            except IsADirectoryError:
                raise BuildError(f"unable to prepare context: {path} is a directory, not a "
                                 "Dockerfile") from None
            except OSError as exc:
                raise BuildError(f"cannot read the Dockerfile {path}: {exc.strerror}") from None
            self.ctx = BuildContext(context, dockerfile=path)
        self.df: Dockerfile = parse(text, opts.build_args, filename=self.ctx.filename)
        self.target = self.df.target(opts.target)
        self.stages = self.df.dependencies(self.target)
        self.total = sum(1 + len(s.instructions) for s in self.stages)
        self._check_supported()
        for w in self.df.warnings:
            self.warnings.append(w)
            self._emit("build", "Warning", w)

    def _check_supported(self) -> None:
        """Refuse, before anything runs, what this builder does not do (rather than
        ignoring it and building something else)."""
        for stage in self.stages:
            for ins in stage.instructions:
                self._check_instruction(ins)

    def _check_instruction(self, ins: Instruction) -> None:
        where = f"{self.df.filename}:{ins.line}"
        flags = ins.flags
        if ins.cmd == "RUN":
            if flags.get("mount"):
                raise BuildError(f"{where}: RUN --mount is not supported by this builder")
            net = flags.get("network")
            if net and net not in ("default", "none", "host"):
                raise BuildError(f"{where}: RUN --network={net}: expected default, none or host")
            security = flags.get("security")
            if security is not None and security not in RUN_SECURITY:
                raise BuildError(f'{where}: security "{security}" is not valid',
                                 hint="RUN --security takes sandbox (the default) or insecure")
            # BuildKit refuses these when it loads the build graph, before any step runs
            # (solver/llbsolver/vertex.go ValidateEntitlements -> util/entitlements
            # Set.Check: "network.host is not allowed")
            if net == "host":
                self._require("network.host", where)
            if security == "insecure":
                self._require("security.insecure", where)
        elif ins.cmd in ("COPY", "ADD"):
            for name in ("parents", "exclude"):
                if flags.get(name):
                    raise BuildError(f"{where}: {ins.cmd} --{name} is not supported by this builder")
            if ins.cmd == "ADD" and flags.get("checksum"):
                raise BuildError(f"{where}: ADD --checksum needs a URL source, and this "
                                 "builder does not download")

    def _require(self, entitlement: str, where: str) -> None:
        if entitlement not in self.allowed:
            raise BuildError(f"{where}: {entitlement} is not allowed",
                             hint=f"grant it with --allow {entitlement} if you trust this "
                                  "Dockerfile")

    # -- the run --------------------------------------------------------------------------
    def run(self) -> BuildResult:
        started = time.monotonic()
        self._prepare()
        self.store.ensure()
        self._check_base_triggers()
        self.tmp = os.path.join(self.paths.tmp, f"build-{os.getpid()}-{uuid.uuid4().hex[:12]}")
        os.makedirs(self.tmp, mode=0o700)
        try:
            with self.store.lease():
                for stage in self.stages:
                    self.states[stage.index] = self._build_stage(stage)
                final = self.states[self.target.index]
                image = self._write_image(final)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        tagged = []
        for ref in self.tags:
            tagged.append(ref.familiar())
            self._emit("build", "Tagged", ref.familiar(), image=image.id)
        self._emit("build", "Built", image.id.split(":", 1)[1][:12], image=image.id)
        return BuildResult(image_id=image.id, manifest_digest=image.manifest_digest,
                           tags=tagged, steps=self.reports, warnings=self.warnings,
                           seconds=time.monotonic() - started)

    def _check_base_triggers(self) -> None:
        """The ONBUILD triggers of every base image are checked like the Dockerfile's own
        instructions before the first step runs: an image must not reach the host
        network or a privileged step without the user's --allow either."""
        for stage in self.stages:
            if stage.base_stage is not None or stage.scratch:
                continue
            img = self._image(stage.base)
            for text in ((img.config or {}).get("config") or {}).get("OnBuild") or []:
                self._check_instruction(parse_instruction(text, stage.instruction.line,
                                                          self.df.escape))

    def _next(self) -> int:
        self.step_no += 1
        return self.step_no

    def _step_event(self, n: int, run: _StageRun, text: str, ins: Instruction) -> None:
        run.index += 1
        emit(self.progress, str(n), "Step", n, self.total, text, stage=run.label,
             stage_step=run.index, stage_steps=run.count, line=ins.line, instruction=ins.cmd)

    def _build_stage(self, stage: Stage) -> _State:
        many = len(self.stages) > 1
        label = stage.name or (f"stage-{stage.index}" if many else "")
        run = _StageRun(stage, label, 1 + len(stage.instructions))
        state = self._from(stage, run)
        triggers: list[Instruction] = []
        if stage.base_stage is None and not stage.scratch:
            for text in state.config.get("OnBuild") or []:
                triggers.append(parse_instruction(text, stage.instruction.line, self.df.escape))
            state.config.pop("OnBuild", None)       # triggers are not inherited
        for trigger in triggers:
            self._check_instruction(trigger)
        if triggers:
            self.total += len(triggers)
            run.count += len(triggers)
        steps = self.df.steps(stage, base_env=state.config.get("Env") or [], triggers=triggers)
        for step in steps:
            state = self._step(run, step, state)
        return state

    # -- FROM -------------------------------------------------------------------------------
    def _image(self, ref: str):
        img = self._images.get(ref)
        if img is not None:
            return img
        policy = "always" if self.opts.pull else "missing"
        if policy == "missing":
            with contextlib.suppress(NotFound):
                img = self.store.image(ref)
        if img is None:
            try:
                img = self.engine.ensure_image(ref, policy, progress=self.progress)
            except NotFound as exc:
                raise BuildError(f"base image {ref}: {exc}", hint=exc.hint) from None
            self._pulled.add(ref)
        self._images[ref] = img
        return img

    def _image_state(self, img) -> _State:
        cfg = img.config or {}
        platform = {"architecture": cfg.get("architecture") or "amd64", "os": cfg.get("os") or "linux"}
        if cfg.get("variant"):
            platform["variant"] = cfg["variant"]
        chains = img.chain_ids
        layers = [CacheLayer(layer.digest, layer.diff_id, layer.media_type, layer.compressed_size,
                             chains[i]) for i, layer in enumerate(img.layers)]
        return _State(key=step_key("image", {"id": img.id, "v": BUILDER_VERSION}), layers=layers,
                      config=_copy.deepcopy(cfg.get("config") or {}),
                      history=_copy.deepcopy(cfg.get("history") or []), platform=platform,
                      created=cfg.get("created"), author=cfg.get("author") or None)

    def _from(self, stage: Stage, run: _StageRun) -> _State:
        n = self._next()
        text = display(stage.instruction)
        self._step_event(n, run, text, stage.instruction)
        started = time.monotonic()
        cached = True
        if stage.base_stage is not None:
            state = self.states[stage.base_stage].copy()
            shown = "stage " + (self.df.stages[stage.base_stage].name or str(stage.base_stage))
        elif stage.scratch:
            from core.store.archive import host_arch

            state = _State(key=step_key("scratch", {"v": BUILDER_VERSION}), layers=[], config={},
                           history=[], platform={"architecture": host_arch(), "os": "linux"})
            shown = "scratch"
        else:
            img = self._image(stage.base)
            cached = stage.base not in self._pulled
            state = self._image_state(img)
            shown = img.id.split(":", 1)[1][:12]
        env = list(state.config.get("Env") or [])
        if not any(e.startswith("PATH=") for e in env):
            # BuildKit's dockerfile2llb: "make sure that PATH is always set" (scratch too)
            from core.runtime.spec import DEFAULT_PATH

            state.config["Env"] = env + [f"PATH={DEFAULT_PATH}"]
        if cached:
            self._emit(n, "CACHED", text)
        seconds = time.monotonic() - started
        self._emit(n, "Done", shown, cached=cached, layer=None, state=state.key, seconds=seconds,
                   base=True)
        self.reports.append(StepReport(n, run.label, text, cached, None, seconds, state.key))
        return state

    # -- one step -----------------------------------------------------------------------------
    def _key_parts(self, step: Step, state: _State, shell: list[str]) -> dict:
        ins = step.instruction
        cfg = state.config
        parts: dict = {
            "v": BUILDER_VERSION, "cmd": ins.cmd, "args": list(step.args),
            "flags": {k: step.flags[k] for k in sorted(step.flags)}, "json": ins.json_form,
            "heredocs": [[h.name, h.content, h.chomp, h.expand] for h in ins.heredocs],
        }
        if ins.cmd == "ARG":
            parts["pairs"] = [[k, v] for k, v in step.pairs]
        elif ins.cmd == "RUN":
            network, privileged = self._run_sandbox(step)
            parts.update(env=sorted(step.run_env.items()), shell=list(shell),
                         user=cfg.get("User") or "", workdir=cfg.get("WorkingDir") or "",
                         network=network, privileged=privileged)
        elif ins.cmd in ("CMD", "ENTRYPOINT") and not ins.json_form:
            parts["shell"] = list(shell)
        elif ins.cmd in ("COPY", "ADD"):
            parts["workdir"] = cfg.get("WorkingDir") or ""
        elif ins.cmd == "WORKDIR":
            parts.update(user=cfg.get("User") or "", workdir=cfg.get("WorkingDir") or "")
        return parts

    def _step(self, run: _StageRun, step: Step, state: _State) -> _State:
        n = self._next()
        ins = step.instruction
        text = display(ins)
        self._step_event(n, run, text, ins)
        started = time.monotonic()
        shell = list(state.config.get("Shell") or DEFAULT_SHELL)
        parts = self._key_parts(step, state, shell)
        plan = None
        if ins.cmd in ("COPY", "ADD"):
            plan = self._plan_copy(step, run)
            parts["sources"] = plan.key
        key = step_key(state.key, parts)
        entry = None if self.opts.no_cache else self.cache.get(key)
        if entry is not None and entry.layer is not None and not self.store.has_blob(entry.layer.digest):
            entry = None        # its blob is gone (the store was pruned by hand): run again
        cid = None
        if entry is not None:
            cached, layer, created = True, entry.layer, entry.created
            self._emit(n, "CACHED", text)
        else:
            cached = False
            if ins.cmd == "RUN":
                layer, cid = self._run(step, state, shell, n)
            elif plan is not None:
                layer = self._copy(step, state, plan, n)
            elif ins.cmd == "WORKDIR":
                layer = self._workdir(step, state, n)
            else:
                layer = None
            created = _now()
            if layer is not None:
                from core.store.image import chain_id

                parent = state.layers[-1].chain_id if state.layers else None
                layer.chain_id = chain_id(parent or None, layer.diff_id)
            self.cache.put(CacheEntry(key=key, parent=state.key, instruction=text, created=created,
                                      layer=layer, stage=run.label))
        new = state.copy()
        new.key = key
        apply_config(new.config, step, run, shell)
        if step.cmd == "MAINTAINER":
            # BuildKit's dispatchMaintainer: the image's Author, no label
            new.author = step.args[0]
        if layer is not None:
            new.layers.append(CacheLayer(**vars(layer)))
        new.history.append(history_entry(step, shell, created, empty=layer is None))
        new.created = created
        seconds = time.monotonic() - started
        self._emit(n, "Done", key.split(":", 1)[1][:12], cached=cached,
                   layer=layer.digest if layer else None, state=key, seconds=seconds,
                   container=cid)
        self.reports.append(StepReport(n, run.label, text, cached, layer.digest if layer else None,
                                       seconds, key))
        return new

    # -- layers on disk ---------------------------------------------------------------------
    def _lower_dirs(self, state: _State) -> list[str]:
        """The state's layers unpacked in the store (base first), unpacking what is missing."""
        from core.store.image import chain_ids

        chains = chain_ids(state.diff_ids)
        for i, chain in enumerate(chains):
            if not self.store.has_layer(chain):
                layer = state.layers[i]
                self.store.unpack_blob(layer.digest, layer.diff_id, chains[i - 1] if i else None)
        self.store.fix_implicit_dirs(chains)
        return [self.store.layer_path(c) for c in chains]

    def _empty_dir(self) -> str:
        path = os.path.join(self.paths.root, "empty-layer")
        os.makedirs(path, exist_ok=True)
        return path

    def _scratch(self, kind: str) -> str:
        path = os.path.join(self.tmp or self.paths.tmp, f"{kind}-{uuid.uuid4().hex[:8]}")
        os.makedirs(path, mode=0o700)
        return path

    def _layer_from_upper(self, upper: str, lower: list[str], n: int,
                          exclude: set[str] | None = None) -> CacheLayer | None:
        exclude = exclude or set()
        if not _upper_has_changes(upper, lower, exclude):
            return None
        from core.store.tarwriter import layer_from_dir

        self._emit(n, "Writing", "layer")
        out = layer_from_dir(self.store, upper, overlay=True, compression=self.opts.compression,
                             exclude=exclude)
        desc = out["descriptor"]
        self._emit(n, "Writing", desc["digest"], size=desc["size"], bytes=out["size"])
        return CacheLayer(desc["digest"], out["diff_id"], desc["mediaType"], desc["size"])

    # -- RUN ----------------------------------------------------------------------------------
    def _run(self, step: Step, state: _State, shell: list[str], n: int):
        from core.runtime.spec import RunOptions

        argv = run_argv(step, shell)
        where = f"{self.df.filename}:{step.line}"
        if not argv:
            raise BuildError(f"{where}: RUN has no command")
        lower = self._lower_dirs(state)
        chains = [layer.chain_id for layer in state.layers]
        if not lower:
            raise BuildError(f"{where}: RUN needs a file system with a shell; this stage has "
                             "no layers (FROM scratch)")
        network, privileged = self._run_sandbox(step)
        cfg = state.config
        options = RunOptions(
            rootfs=lower[-1], command=argv, entrypoint=[],
            env=[f"{k}={v}" for k, v in step.run_env.items()],
            workdir=cfg.get("WorkingDir") or None, user=cfg.get("User") or None,
            network=network, privileged=privileged, labels={BUILD_LABEL: str(n)})
        cid = None
        try:
            cid = self.engine.create(options)
            self._use_layers(cid, lower, chains)
            self._emit(n, "Running", cid[:12], container=cid)
            try:
                _, client = self.engine.start(cid, attach=True)
            except (CommandNotFound, CannotInvoke) as exc:
                raise RunFailed(f"{where}: the command '{' '.join(argv)}' could not run: {exc}",
                                exc.exit_code) from None
            except NutshellError as exc:       # bad USER, a mount refused...
                raise BuildError(f"{where}: RUN failed: {exc}", hint=exc.hint) from None
            code = self._stream(client, n)
            if code is None:
                code = self.engine.wait(cid)
            if code != 0:
                raise RunFailed(f"{where}: the command '{' '.join(argv)}' returned a non-zero "
                                f"code: {code}", code)
            cdir = self.paths.container(cid)
            exclude = set()
            with contextlib.suppress(OSError):
                with open(os.path.join(cdir, "mountpoints"), encoding="utf-8") as f:
                    exclude = {line.strip().strip("/") for line in f if line.strip()}
            layer = self._layer_from_upper(os.path.join(cdir, "upper"), lower, n, exclude)
            return layer, cid
        finally:
            if cid is not None:
                with contextlib.suppress(Exception):
                    self.engine.rm(cid, force=True)
                self._emit(n, "Removed", cid[:12], container=cid)

    def _run_sandbox(self, step: Step) -> tuple[str, bool]:
        """(network, privileged) of a RUN: ``RUN --network`` or the build's ``--network``;
        privileged for ``RUN --security=insecure``. Both are part of the step's cache key
        (a sandboxed result is never reused for a privileged step or the reverse), as
        they are of BuildKit's ExecOp digest."""
        network = step.flags.get("network") or "default"
        if network == "default":
            network = self.opts.network
        privileged = step.flags.get("security") == "insecure"
        where = f"{self.df.filename}:{step.line}"
        if network == "host":                   # checked up front too: never reached
            self._require("network.host", where)
        if privileged:
            self._require("security.insecure", where)
        return network, privileged

    def _use_layers(self, cid: str, lower: list[str], chains: list[str]) -> None:
        """Point the new container at the build's layers (base first).

        The runtime creates containers from a stored image or one rootfs directory; a
        build state is neither, so the record is given the layer list before start.
        """
        records = self.engine._runtime.records
        with records.lock(cid):
            cfg = records.read_config(cid)
            cfg["LowerDirs"] = list(lower)
            cfg["LayerChainIDs"] = list(chains)
            cfg["RootfsDir"] = None
            records.write_config(cid, cfg)

    def _stream(self, client, n: int) -> int | None:
        pending = {1: b"", 2: b""}
        names = {1: "stdout", 2: "stderr"}
        try:
            while True:
                item = client.read()
                if item is None:
                    break
                kind, data = item
                if kind == 3:
                    break
                if kind not in pending:
                    continue
                buf = pending[kind] + data
                *lines, rest = buf.split(b"\n")
                for line in lines:
                    self._emit(n, "Output", line.rstrip(b"\r").decode("utf-8", "replace"),
                               stream=names[kind])
                pending[kind] = rest
            for kind, rest in pending.items():
                if rest:
                    self._emit(n, "Output", rest.decode("utf-8", "replace"), stream=names[kind])
            return client.exit_code
        finally:
            client.close()

    # -- COPY / ADD ---------------------------------------------------------------------------
    def _plan_copy(self, step: Step, run: _StageRun) -> _CopyPlan:
        ins = step.instruction
        where = f"{self.df.filename}:{step.line}"
        docs = {h.name: h for h in ins.heredocs}
        patterns: list[str] = []
        inline: list[tuple[str, bytes]] = []
        for src in step.sources:
            m = _HEREDOC_WORD.match(src)
            name = m.group(1).strip("'\"") if m else None
            if name is not None and name in docs:
                content = docs[name].content
                if docs[name].expand:  # <<EOF, not <<"EOF": variables are expanded
                    content = expand_heredoc(content, {**step.build_args, **step.env},
                                             self.df.escape)
                inline.append((name, content.encode("utf-8", "surrogateescape")))
            else:
                patterns.append(src)
        if len(step.sources) > 1 and not step.dest.endswith("/"):
            raise BuildError(f"{where}: When using {ins.cmd} with more than one source file, "
                             "the destination must be a directory and end with a /")
        frm = step.flags.get("from")
        plan = _CopyPlan(patterns=patterns, sources=None, inline=inline)
        if frm:
            if inline:
                raise BuildError(f"{where}: COPY --from cannot copy heredocs")
            stage = self.df.find_stage(frm, before=run.stage.index)
            if stage is not None:
                if stage.index not in self.states:
                    raise BuildError(f"{where}: COPY --from={frm}: stage not built")
                plan.from_state = self.states[stage.index]
            else:
                if frm.lower() == "scratch":
                    raise BuildError(f"{where}: COPY --from=scratch has nothing to copy")
                if self.df.find_stage(frm) is not None:
                    raise BuildError(f"{where}: COPY --from={frm}: a stage can only copy from an "
                                     "earlier stage")
                plan.from_state = self._image_state(self._image(frm))
            plan.from_ref = frm
            plan.key = step_key(plan.from_state.key, {"patterns": patterns})
        else:
            sources = self.ctx.sources(patterns, cmd=ins.cmd, line=step.line) if patterns else []
            plan.sources = sources
            digest = hash_sources(sources)
            plan.key = step_key(digest, {"inline": [[n, c.decode("utf-8", "surrogateescape")]
                                                    for n, c in inline]})
        return plan

    def _copy(self, step: Step, state: _State, plan: _CopyPlan, n: int) -> CacheLayer | None:
        ins = step.instruction
        where = f"{self.df.filename}:{step.line}"
        what = f"{where}: {ins.cmd}"
        lower = self._lower_dirs(state)
        src_lower = self._lower_dirs(plan.from_state) if plan.from_state is not None else None
        work = self._scratch("copy")
        upper, wdir, merged, links = (os.path.join(work, d) for d in ("upper", "work", "merged", "l"))
        srcm = os.path.join(work, "from")
        for d in (upper, wdir, merged, srcm):
            os.mkdir(d, 0o755)
        workdir = state.config.get("WorkingDir") or "/"
        raw_dest = step.dest
        dest = raw_dest if raw_dest.startswith("/") else posixpath.join(workdir, raw_dest)
        dest_is_dir = raw_dest.endswith("/") or raw_dest.endswith("/.") or raw_dest in (".", "..")
        dest = posixpath.normpath(dest)
        dest = "/" + dest.lstrip("/")
        chmod = parse_chmod(step.flags.get("chmod"))

        def job() -> None:
            _mount_overlay(lower or [self._empty_dir()], merged, links, upper, wdir)
            try:
                writer = _Writer(merged, None, chmod, keep_owner=plan.from_state is not None,
                                 what=what)
                try:
                    chown = step.flags.get("chown")
                    if chown:
                        writer.owner = parse_chown(chown, lambda: writer.read_text("/etc/passwd"),
                                                   lambda: writer.read_text("/etc/group"))
                    if plan.from_state is not None:
                        self._copy_from(writer, plan, src_lower or [], srcm, links + "-from",
                                        dest, dest_is_dir, step)
                    else:
                        sources = plan.sources or []
                        many = len(sources) + len(plan.inline) > 1
                        for src in sources:
                            kind = None
                            if ins.cmd == "ADD" and src.entry.type == "file":
                                kind = self.ctx.archive_format(src.path)
                            if kind:
                                with self.ctx.open(src.path) as f:
                                    writer.extract(f, kind, dest, src.pattern)
                            else:
                                writer.copy_source(src, self.ctx, dest, dest_is_dir or many)
                        for name, content in plan.inline:
                            import io

                            target = posixpath.join(dest, name) if (dest_is_dir or many or
                                                                    writer.is_dir(dest)) else dest
                            writer.write_file(target, io.BytesIO(content), 0o644, 0, 0, None)
                    writer.finish()
                finally:
                    writer.close()
            finally:
                _umount(srcm)
                _umount(merged)

        try:
            _in_private_mounts(job)
        except (ContextError, BuildError) as exc:
            raise self._fail_where(step, ins.cmd, exc) from None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise BuildError(f"{what} failed: {exc.strerror or exc}") from None
        try:
            return self._layer_from_upper(upper, lower, n)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _copy_from(self, writer: _Writer, plan: _CopyPlan, src_lower: list[str], srcm: str,
                   links: str, dest: str, dest_is_dir: bool, step: Step) -> None:
        where = f"{self.df.filename}:{step.line}"
        if src_lower:
            _mount_overlay(src_lower + [self._empty_dir()], srcm, links)
            root = srcm
        else:
            root = self._empty_dir()
        sctx = BuildContext(root, dockerfile=None, dockerignore=False)
        resolved = []
        for pattern in plan.patterns:
            try:
                resolved.extend(sctx.sources([pattern], cmd="COPY", line=step.line))
            except ContextError:
                raise BuildError(f"{where}: COPY --from={plan.from_ref} failed: {pattern}: no such "
                                 f"file or directory in {plan.from_ref}") from None
        many = len(resolved) > 1
        for src in resolved:
            writer.copy_source(src, sctx, dest, dest_is_dir or many)

    # -- WORKDIR ------------------------------------------------------------------------------
    def _workdir(self, step: Step, state: _State, n: int) -> CacheLayer | None:
        path = resolve_workdir(state.config.get("WorkingDir"), step.args[0])
        if path == "/":
            return None
        lower = self._lower_dirs(state)
        work = self._scratch("workdir")
        upper, wdir, merged, links = (os.path.join(work, d) for d in ("upper", "work", "merged", "l"))
        for d in (upper, wdir, merged):
            os.mkdir(d, 0o755)
        user = state.config.get("User") or ""
        what = f"{self.df.filename}:{step.line}: WORKDIR"

        def job() -> None:
            _mount_overlay(lower or [self._empty_dir()], merged, links, upper, wdir)
            try:
                writer = _Writer(merged, None, None, keep_owner=False, what=what)
                try:
                    if writer.is_dir(path):
                        return
                    owner = (0, 0)
                    if user:
                        with contextlib.suppress(BuildError):
                            owner = parse_chown(user, lambda: writer.read_text("/etc/passwd"),
                                                lambda: writer.read_text("/etc/group"))
                    os.close(writer.ensure_dir(path, owner))
                finally:
                    writer.close()
            finally:
                _umount(merged)

        try:
            _in_private_mounts(job)
            return self._layer_from_upper(upper, lower, n)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    # -- the image ----------------------------------------------------------------------------
    def _write_image(self, state: _State):
        from core.store import media

        config = _copy.deepcopy(state.config)
        if self.opts.labels:
            labels = dict(config.get("Labels") or {})
            labels.update(self.opts.labels)
            config["Labels"] = labels
        author = {"author": state.author} if state.author else {}
        doc = {"created": state.created or _now(), **author, **state.platform, "config": config,
               "rootfs": {"type": "layers", "diff_ids": state.diff_ids},
               "history": state.history}
        cfg_bytes = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
        cfg_digest = self.store.put_blob(cfg_bytes)
        manifest = {
            "schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
            "config": {"mediaType": media.OCI_CONFIG, "digest": cfg_digest, "size": len(cfg_bytes)},
            "layers": [{"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}
                       for layer in state.layers],
        }
        data = json.dumps(manifest, separators=(",", ":")).encode()
        self._emit("build", "Writing", "image " + cfg_digest, image=cfg_digest)
        if not self.tags:
            return self.store.add_image(data, None)
        image = None
        for ref in self.tags:
            image = self.store.add_image(data, ref)
        return image


def build(engine, options: BuildOptions, progress: ProgressFn = None) -> BuildResult:
    """Build ``options`` with ``engine``; see the module docstring."""
    if not isinstance(options, BuildOptions):
        raise UsageError("build: options must be a BuildOptions")
    return Builder(engine, options, progress).run()


def prune_cache(engine, all: bool = True,
                older_than: float | None = None) -> BuildCachePruneReport:
    """Remove build-cache entries, then let the store collect what only they kept.

    Returns ``{"CachesDeleted": [keys], "SpaceReclaimed": bytes}`` (Docker's shape).
    """
    removed = BuildCache(engine.paths).prune(None if all else older_than)
    reclaimed = 0
    if removed:
        result = engine.store.gc()
        reclaimed = result.get("bytes", 0)
    return {"CachesDeleted": [e.key for e in removed], "SpaceReclaimed": reclaimed}


def cache_usage(engine) -> BuildCacheUsage:
    """What the build cache holds, for ``system df``: entries, layers, and the bytes of
    the layer blobs it keeps (each blob counted once)."""
    entries = BuildCache(engine.paths).entries()
    blobs = {e.layer.digest for e in entries if e.layer is not None}
    size = 0
    for digest in blobs:
        with contextlib.suppress(OSError):
            size += os.path.getsize(engine.store.blob_path(digest))
    return {"Entries": len(entries), "Layers": len(blobs), "Size": size}


__all__ += ["Builder", "DockerfileSyntaxError", "cache_usage"]
