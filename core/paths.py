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
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass


def _default_root() -> str:
    if os.geteuid() == 0:
        return "/var/lib/nutshell"
    import platformdirs

    return platformdirs.user_data_dir("nutshell")


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


@dataclass(frozen=True)
class Paths:
    root: str
    run: str
    config: str

    # --- the OCI image layout at the root -------------------------------------------
    @property
    def oci_layout(self) -> str:
        return os.path.join(self.root, "oci-layout")

    @property
    def index(self) -> str:
        return os.path.join(self.root, "index.json")

    @property
    def blobs(self) -> str:
        return os.path.join(self.root, "blobs", "sha256")

    def blob(self, digest: str) -> str:
        algo, _, hexpart = digest.partition(":")
        return os.path.join(self.root, "blobs", algo, hexpart)

    # --- our own state beside it --------------------------------------------------
    @property
    def layers(self) -> str:
        return os.path.join(self.root, "layers")

    def layer(self, chain_id: str) -> str:
        return os.path.join(self.root, "layers", chain_id.partition(":")[2] or chain_id)

    @property
    def containers(self) -> str:
        return os.path.join(self.root, "containers")

    def container(self, cid: str) -> str:
        return os.path.join(self.root, "containers", cid)

    @property
    def volumes(self) -> str:
        return os.path.join(self.root, "volumes")

    @property
    def networks(self) -> str:
        return os.path.join(self.root, "networks")

    @property
    def builds(self) -> str:
        return os.path.join(self.root, "build-cache")

    @property
    def tmp(self) -> str:
        """Scratch space on the same file system as the store, so renames are atomic."""
        return os.path.join(self.root, "tmp")

    @property
    def store_lock(self) -> str:
        return os.path.join(self.root, ".lock")

    # --- runtime ----------------------------------------------------------------------
    def run_container(self, cid: str) -> str:
        return os.path.join(self.run, "c", cid[:16])

    @property
    def netns(self) -> str:
        return os.path.join(self.run, "netns")


def resolve(root: str | None = None) -> Paths:
    root = root or os.environ.get("NUTSHELL_ROOT") or _default_root()
    root = os.path.abspath(root)
    run = os.environ.get("NUTSHELL_RUNTIME_DIR")
    if not run:
        tag = hashlib.sha256(root.encode()).hexdigest()[:10]
        run = os.path.join(_runtime_base(), tag)
    return Paths(root=root, run=run, config=_config_dir())
