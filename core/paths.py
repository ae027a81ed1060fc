"""Where things live.

State root (images, layers, containers, volumes, networks):
  ``--root DIR`` flag  >  ``NUTSHELL_ROOT``  >  /var/lib/nutshell for root
  (like /var/lib/docker and /var/lib/containers) >  platformdirs' user data dir.

Runtime dir (sockets, pid files, netns mounts, locks that must vanish on reboot):
  ``NUTSHELL_RUNTIME_DIR``  >  /run/nutshell/<hash of the root> for root, or the
  platformdirs user runtime dir. Keyed by the root so that two stores (say, a test's
  temporary root and the user's) never share sockets or network namespaces.

Config (keymaps, themes, insecure registries): platformdirs' user config dir or
``NUTSHELL_CONFIG_DIR``.

Modes. The store holds what images carry (setuid-root binaries, device nodes) and what
containers make (a container's root may ``mknod`` or ``chmod u+s`` in its upper dir, or
in a volume). Whoever can reach those paths on the host can run or open them
(CVE-2021-41091 in Docker), so the state root, our directories at its top and the runtime
dir are the owner's only (0700; Docker keeps /var/lib/docker 0710 for userns-remap, which
we do not have). A layer's own ``diff/`` keeps the mode its image gives ``/``: it becomes
the container's root, so protection comes from the parents. See docs/store.md.

:func:`ensure_root` creates the root 0700, or, when its mode is anything else (a store
made by an older version, a directory the user points ``--root`` at), makes the root
and our own top-level directories 0700 and touches nothing else. Already private, it
costs one ``stat``.
"""

from __future__ import annotations

import os
import stat

#: The mode of the state root, of our directories at its top and of the runtime dir.
PRIVATE_MODE = 0o700

#: Our directories at the top of the state root: the ones :func:`ensure_root` may chmod
#: (nothing else in a root the user chose is ours). Not ``empty-layer``: like a layer's
#: ``diff/`` it is an image root, whose mode a container sees as the mode of ``/``.
LAYER_IMAGE = "layer.sqfs"      # layers/<id>/ holds this image, or a diff/ directory
OWN_DIRS = ("blobs", "layers", "tmp", "containers", "volumes", "networks", "build-cache",
            "registry")


def _default_root() -> str:
    if os.geteuid() == 0:
        return "/var/lib/nutshell"
    import platformdirs

    return platformdirs.user_data_dir("nutshell")


def default_runtime_base() -> str:
    """Where the runtime dirs of stores live unless ``NUTSHELL_RUNTIME_DIR`` says
    otherwise (``/run/nutshell`` for root)."""
    return _runtime_base()


def _runtime_base() -> str:
    if os.geteuid() == 0:
        return "/run/nutshell"
    import platformdirs

    return platformdirs.user_runtime_dir("nutshell")


def _config_dir() -> str:
    env = os.environ.get("NUTSHELL_CONFIG_DIR")
    if env:
        return env
    if os.name == "posix" and not os.uname().sysname == "Darwin":
        # what platformdirs answers on Linux, without importing it on every command
        base = os.environ.get("XDG_CONFIG_HOME", "").strip() or os.path.expanduser("~/.config")
        return os.path.join(base, "nutshell")
    import platformdirs

    return platformdirs.user_config_dir("nutshell")


class _Under:
    """A :class:`Paths` attribute: ``parts`` joined to the paths' ``root`` or ``run``."""

    def __init__(self, base: str, *parts: str) -> None:
        self.base = base
        self.parts = parts

    def __get__(self, paths: object, owner: type | None = None) -> str:
        return os.path.join(getattr(paths, self.base), *self.parts)


class Paths:
    """The state root, the runtime dir and the config dir of one store, and where things
    are in them. A plain class, not a dataclass: the shim's network teardown uses it and
    loads no more than it needs (tests/integration/test_network_namespaces.py)."""

    __slots__ = ("root", "run", "config")

    def __init__(self, root: str, run: str, config: str) -> None:
        self.root = root
        self.run = run
        self.config = config

    def __repr__(self) -> str:
        return f"Paths(root={self.root!r}, run={self.run!r}, config={self.config!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Paths):
            return NotImplemented
        return (self.root, self.run, self.config) == (other.root, other.run, other.config)

    def __hash__(self) -> int:
        return hash((self.root, self.run, self.config))

    # --- the OCI image layout at the root -------------------------------------------
    oci_layout = _Under("root", "oci-layout")
    index = _Under("root", "index.json")
    blobs = _Under("root", "blobs", "sha256")

    def blob(self, digest: str) -> str:
        algo, _, hexpart = digest.partition(":")
        return os.path.join(self.root, "blobs", algo, hexpart)

    # --- our own state beside it --------------------------------------------------
    layers = _Under("root", "layers")
    containers = _Under("root", "containers")
    volumes = _Under("root", "volumes")
    networks = _Under("root", "networks")
    builds = _Under("root", "build-cache")
    tmp = _Under("root", "tmp")     # scratch on the store's file system: renames are atomic
    store_lock = _Under("root", ".lock")
    layer_mounts = _Under("run", "layers")   # the layer mounts containers share (core/fs/imagemount.py)

    def layer(self, chain_id: str) -> str:
        return os.path.join(self.root, "layers", chain_id.partition(":")[2] or chain_id)

    def layer_image(self, chain_id: str) -> str:
        """A layer stored as a file system image (core/store/layerimage.py)."""
        return os.path.join(self.layer(chain_id), LAYER_IMAGE)

    def container(self, cid: str) -> str:
        return os.path.join(self.root, "containers", cid)

    # --- runtime ----------------------------------------------------------------------
    netns = _Under("run", "netns")

    def run_container(self, cid: str) -> str:
        return os.path.join(self.run, "c", cid[:16])


def _run_tag(root: str) -> str:
    """The default runtime dir's name for ``root``."""
    return small_sha256(root.encode()).hexdigest()[:10]


def small_sha256(data: bytes = b""):
    """A SHA-256 object for a few bytes (names, keys), from CPython's own implementation:
    importing OpenSSL's hashlib costs ~3 ms of every `run`. Bulk data (blobs, layers)
    goes through hashlib, which is faster per byte."""
    try:
        from _sha2 import sha256  # type: ignore[import-not-found,unused-ignore]  # 3.12+
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found,unused-ignore]  # 3.11
        except ImportError:
            from hashlib import sha256
    return sha256(data)


def resolve(root: str | None = None, run: str | None = None) -> Paths:
    """The paths of the store at ``root`` (default: see the module docstring); ``run``
    names its runtime dir when the caller already knows it."""
    root = root or os.environ.get("NUTSHELL_ROOT") or _default_root()
    root = os.path.abspath(root)
    run = run or os.environ.get("NUTSHELL_RUNTIME_DIR") or os.path.join(_runtime_base(),
                                                                        _run_tag(root))
    return Paths(root=root, run=run, config=_config_dir())


# --------------------------------------------------------------------------- modes

def private_dir(path: str) -> str:
    """``mkdir path`` with mode 0700 (whatever the umask) unless it exists. Its parent
    must exist (every caller makes dirs inside an :func:`ensure_root`-ed root)."""
    try:
        os.mkdir(path, PRIVATE_MODE)
    except FileExistsError:
        return path
    os.chmod(path, PRIVATE_MODE)        # a umask like 0277 would leave 0500
    return path


def _refuse_shared(path: str, st: os.stat_result, what: str) -> None:
    """A world-writable directory (/tmp, /dev/shm...) or / is shared with everyone:
    making it 0700 would break the host, leaving it open would expose the store."""
    from .errors import StoreError

    if os.path.realpath(path) == "/" or st.st_mode & stat.S_IWOTH:
        raise StoreError(f"refusing to use {path} as the {what}: it is shared with other "
                         "users (world-writable or /)",
                         hint="point it at a directory of its own, e.g. a subdirectory")


def _chmod_entry(dirfd: int, name: str, mode: int) -> None:
    """chmod ``name`` (relative to ``dirfd``) if it is a directory, never through a
    symlink: a symlinked ``tmp`` in a user's root must not make /tmp private."""
    try:
        fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=dirfd)
    except OSError:             # missing, a symlink, not a directory
        return
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
            os.chmod(f"/proc/self/fd/{fd}", mode)       # fchmod does not take O_PATH fds
    finally:
        os.close(fd)


def ensure_root(paths: Paths) -> None:
    """Create the state root 0700, or make an existing one private (see the module
    docstring). One ``stat`` when it already is; otherwise our top-level dirs first and
    the root last, so an interrupted migration is redone by the next command. Plain
    chmods to a fixed mode: two processes doing it at once agree, no lock is needed."""
    from .errors import StoreError

    root = paths.root
    try:
        st = os.stat(root)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(root), exist_ok=True)
        try:
            private_dir(root)
        except FileExistsError:
            pass
        st = os.stat(root)
    if stat.S_IMODE(st.st_mode) == PRIVATE_MODE and stat.S_ISDIR(st.st_mode):
        return
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(f"the state root {root} is not a directory")
    _refuse_shared(root, st, "state root")
    try:
        rootfd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name in OWN_DIRS:
                _chmod_entry(rootfd, name, PRIVATE_MODE)
        finally:
            os.close(rootfd)
        os.chmod(root, PRIVATE_MODE)
    except PermissionError as exc:
        raise StoreError(f"cannot make the state root {root} private: {exc.strerror}",
                         hint="run nutshell as the owner of the store") from None


def ensure_run_dir(paths: Paths) -> None:
    """Create the runtime dir 0700, or make it 0700; when it is the default one
    (/run/nutshell/<hash>), its base too. One ``stat`` when the dir already is 0700. A
    runtime dir that cannot be created (no /run/user/<uid> for a user without a login
    session) is left to whoever needs it, which reports its own error."""
    from .errors import StoreError

    run = paths.run
    try:
        st = os.stat(run)
        if stat.S_IMODE(st.st_mode) == PRIVATE_MODE:
            return
        _refuse_shared(run, st, "runtime directory")
    except FileNotFoundError:
        try:
            os.makedirs(os.path.dirname(run), exist_ok=True)
            private_dir(run)
        except FileExistsError:
            pass
        except OSError:
            return
    except OSError:             # a file on the way, no search permission...
        return
    try:
        os.chmod(run, PRIVATE_MODE)
        if _is_default_run(paths):        # /run/nutshell lists the roots in use
            base = os.path.dirname(run)
            if stat.S_IMODE(os.stat(base).st_mode) != PRIVATE_MODE:
                os.chmod(base, PRIVATE_MODE)
    except PermissionError:
        raise StoreError(f"cannot make the runtime directory {run} private: not its owner",
                         hint="run nutshell as the owner of the store") from None


def _is_default_run(paths: Paths) -> bool:
    """Is ``paths.run`` ``<runtime base>/<hash of the root>`` (so the base is ours too)?"""
    parent, tag = os.path.split(paths.run)
    if tag != _run_tag(paths.root):
        return False
    try:
        return parent == _runtime_base()
    except Exception:  # noqa: BLE001 - platformdirs missing: not ours to judge
        return False
