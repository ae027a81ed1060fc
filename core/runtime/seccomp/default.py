"""Docker's default profile, compiled, found without building the profile first.

Every container start that does not choose a profile needs the default one's filter for
its capability set. ``compiler.compile_filter`` must build the profile (3.4 ms here),
check it (1 ms), resolve it and hash the result before it can look in the cache: ~8 ms
of each start, with its imports. The filter depends on nothing but what is known up
front, so here it is looked up under a key made of exactly that:

* the modules that make it: the profile (profile.py), how a profile is resolved and
  checked (rules.py), compiled (compiler.py, bpf.py) and loaded (load.py) — each by its
  file's identity (inode, size, modification time, as Python checks a .pyc against its
  source: reading and hashing all six cost ~1.2 ms of each start), so any edit or
  reinstall is a new key;
* the capabilities, in the order given; the machine, the kernel release, the
  interpreter's pointer size and byte order (what ``rules.host`` derives the
  architecture and kernel version from);
* libseccomp's version.

A hit reads the entry (cache.py: same directory, same checks of owner, mode, magic and
digest); a miss runs the full path and stores its program under this key as well.
"""

from __future__ import annotations

import os
import sys

from ...paths import small_sha256
from . import cache

_SOURCES = ("profile.py", "rules.py", "compiler.py", "bpf.py", "load.py", "default.py")
_sources_digest: str | None = None


def _sources() -> str:
    global _sources_digest
    if _sources_digest is None:
        h = small_sha256()
        here = os.path.dirname(os.path.abspath(__file__))
        for name in _SOURCES:
            st = os.stat(os.path.join(here, name))
            h.update(f"{name}\0{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}\0".encode())
        _sources_digest = h.hexdigest()
    return _sources_digest


def key(caps: list[str]) -> str:
    from . import libseccomp as L

    u = os.uname()
    parts = ["nutshell-seccomp-default/2", _sources(), ",".join(caps), u.machine, u.release,
             str(sys.maxsize), sys.byteorder, ".".join(map(str, L.version()))]
    return "default-" + small_sha256("\0".join(parts).encode()).hexdigest()


def install_options() -> dict[str, bool]:
    """``compiler.install_options`` for a profile without ``flags``, as the default is."""
    from . import load

    return {"log": False, "spec_allow": load.flag_supported(load.SECCOMP_FILTER_FLAG_SPEC_ALLOW)}


def default_filter(caps: list[str], cache_dir: str | None) -> tuple[bytes, dict]:
    """(BPF, install options) of Docker's default profile for a container holding
    ``caps``; compiled (and cached) on the first call for a key, read after that."""
    from . import libseccomp as L

    L.lib()                                 # RuntimeFailure when libseccomp is missing

    def compile_it() -> bytes:
        from .compiler import compile_filter
        from .profile import default_profile

        return compile_filter(default_profile(), caps, cache_dir=cache_dir)

    return cache.lookup(key(caps), cache_dir, compile_it), install_options()
