"""Seccomp: Docker's default profile and Docker's profile format, compiled with the
system's libseccomp in the parent, installed as raw BPF in the container's process.

    default_profile() -> dict                       Docker's default profile (profile.py)
    read_profile(path) -> dict                      a profile file, checked (rules.py)
    validate(profile, source) -> None               UsageError, one line, on bad input
    compile_filter(profile, caps, *, cache_dir=None) -> bytes
                                                    BPF for this host (compiler.py)
    default_filter(caps, *, cache_dir=None) -> (bytes, dict)
                                                    the default profile's BPF and install
                                                    options, cached by what they depend
                                                    on (default.py)
    install_options(profile) -> dict                the flags ``install`` should use
    install(bpf, *, log=False, spec_allow=False)    load it here (load.py: os + ctypes)
    describe(profile, caps) -> SeccompSummary       the teaching view (summary.py)

Importing this package costs nothing: every function imports its module when called,
so ``from core.runtime.seccomp import load`` in a sealed container init pulls in only
``os`` and ``ctypes``. docs/seccomp.md explains the mechanism and the differences from
Docker.
"""

from __future__ import annotations

TYPE_CHECKING = False      # (not typing's: importing typing would cost the sealed init)
if TYPE_CHECKING:
    from .summary import SeccompSummary

__all__ = ["SeccompSummary", "compile_filter", "default_filter", "default_profile", "describe",
           "install", "install_options", "read_profile", "validate"]


def default_profile() -> dict:
    """Docker's default seccomp profile (moby ``profiles/seccomp/default.json``), in
    Docker's JSON format; a fresh copy each call."""
    from .profile import default_profile as _default

    return _default()


def read_profile(path: str) -> dict:
    """A profile file in Docker's format (at most 4 MiB), parsed and checked.
    UsageError (one line) for an unreadable file, bad JSON, or bad content."""
    from .rules import read_profile as _read

    return _read(path)


def validate(profile: dict, source: str) -> None:
    """Check a profile in Docker's format; UsageError ``"<source>: <where>: <problem>"``
    for the first problem found."""
    from .rules import validate as _validate

    _validate(profile, source)


def compile_filter(profile: dict, caps: list[str], *, cache_dir: str | None = None) -> bytes:
    """The BPF program (an array of ``struct sock_filter``) for a container holding
    ``caps`` (Docker names, e.g. "CHOWN", "SYS_ADMIN"), for this host's architecture
    and the sub-architectures the profile maps it to. Cached in memory and, when
    ``cache_dir`` is given (a root-owned 0700 directory), on disk.

    Raises UsageError for a bad profile and RuntimeFailure when libseccomp is missing
    (never returns an empty or permissive filter instead)."""
    from .compiler import compile_filter as _compile

    return _compile(profile, caps, cache_dir=cache_dir)


def default_filter(caps: list[str], *, cache_dir: str | None = None) -> tuple[bytes, dict]:
    """``(compile_filter(default_profile(), caps), install_options(default_profile()))``,
    read from the cache without building the profile when it was compiled before
    (default.py: ~8 ms of each container start)."""
    from .default import default_filter as _default

    return _default(caps, cache_dir)


def install_options(profile: dict) -> dict[str, bool]:
    """``install``'s keyword arguments for this profile's ``flags`` (computed in the
    parent, passed to the child with the BPF): ``{"log": ..., "spec_allow": ...}``."""
    from .compiler import install_options as _options

    return _options(profile)


def install(bpf: bytes, *, log: bool = False, spec_allow: bool = False) -> None:
    """Load ``bpf`` as this process's seccomp filter (needs no_new_privs or
    CAP_SYS_ADMIN; never sets no_new_privs itself). OSError on failure."""
    from .load import install as _install

    _install(bpf, log=log, spec_allow=spec_allow)


def describe(profile: dict, caps: list[str]) -> SeccompSummary:
    """What the profile means for a container holding ``caps``: default action, how many
    calls are allowed, and the notable calls refused with the reason for each."""
    from .summary import summarize

    return summarize(profile, caps)


def __getattr__(name: str):
    if name == "SeccompSummary":
        from .summary import SeccompSummary

        return SeccompSummary
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
