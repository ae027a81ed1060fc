"""A small, typed ctypes binding of the system's libseccomp (``libseccomp.so.2``).

Only what compiling a filter needs: create a filter context, add architectures, resolve
syscall names per architecture, add rules with argument comparisons, set attributes,
export the BPF program, release. runc, crun and podman compile their filters with the
same library, so the per-architecture syscall tables, the socketcall/ipc multiplexing
on 32-bit x86 and the 32/64-bit argument comparisons are libseccomp's, not ours.

Every libseccomp call returns a negative errno on failure; :func:`_check` turns that
into ``LibseccompError`` (an ``OSError``) naming the call. Loading the library is lazy
(:func:`lib`); when it is missing, :class:`core.errors.RuntimeFailure` says so in one
line with a hint.

The values below are libseccomp's ABI (``seccomp.h`` of 2.5 and 2.6), which equal the
kernel's ``SECCOMP_RET_*`` action values.
"""

from __future__ import annotations

import ctypes
import os

from ...errors import RuntimeFailure

TYPE_CHECKING = False   # typing is not imported on a `run` (seccomp/default.py loads this)
if TYPE_CHECKING:
    from .compiler import ArgCmp

# --- actions (seccomp.h; the same numbers as the kernel's SECCOMP_RET_*) --------------
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000        # | errno (low 16 bits)
ACT_USER_NOTIF = 0x7FC00000
ACT_TRACE = 0x7FF00000        # | message (low 16 bits)
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000

# --- comparison operators (enum scmp_compare) -----------------------------------------
CMP_NE, CMP_LT, CMP_LE, CMP_EQ, CMP_GE, CMP_GT, CMP_MASKED_EQ = 1, 2, 3, 4, 5, 6, 7

# --- filter attributes (enum scmp_filter_attr) -----------------------------------------
ATTR_ACT_DEFAULT = 1
ATTR_ACT_BADARCH = 2
ATTR_CTL_NNP = 3
ATTR_CTL_TSYNC = 4
ATTR_API_TSKIP = 5
ATTR_CTL_LOG = 6
ATTR_CTL_SSB = 7
ATTR_CTL_OPTIMIZE = 8

ARCH_NATIVE = 0
NR_SCMP_ERROR = -1            # seccomp_syscall_resolve_name*: unknown name

HINT = ("install libseccomp2 (Debian/Ubuntu: apt-get install libseccomp2; "
        "Fedora: dnf install libseccomp)")


class LibseccompError(OSError):
    """A libseccomp call failed (``errno`` is the call's negated return value)."""


class _ArgCmp(ctypes.Structure):
    """``struct scmp_arg_cmp``."""

    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class _Version(ctypes.Structure):
    """``struct scmp_version``."""

    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


_lib = None
_load_error: str | None = None
SONAMES = ("libseccomp.so.2",)


def lib() -> ctypes.CDLL:
    """The loaded library with its prototypes set (loaded once per process).

    Raises RuntimeFailure (one line, with an install hint) when it cannot be loaded."""
    global _lib, _load_error
    if _lib is not None:
        return _lib
    if _load_error is None:
        errors = []
        for name in _candidates():
            try:
                _lib = _prototype(ctypes.CDLL(name, use_errno=True))
                return _lib
            except (OSError, AttributeError) as e:
                errors.append(str(e))
        _load_error = "; ".join(errors) or "not found"
    raise RuntimeFailure(f"cannot compile the seccomp profile: libseccomp is not available "
                         f"({_load_error})", hint=HINT)


def _candidates():
    yield from SONAMES
    # ctypes.util is a slow import (subprocess, shutil): only when the soname failed
    import ctypes.util

    found = ctypes.util.find_library("seccomp")
    if found and found not in SONAMES:
        yield found


def _prototype(so: ctypes.CDLL) -> ctypes.CDLL:
    ctx = ctypes.c_void_p
    so.seccomp_init.argtypes = [ctypes.c_uint32]
    so.seccomp_init.restype = ctx
    so.seccomp_release.argtypes = [ctx]
    so.seccomp_release.restype = None
    so.seccomp_arch_add.argtypes = [ctx, ctypes.c_uint32]
    so.seccomp_arch_add.restype = ctypes.c_int
    so.seccomp_arch_exist.argtypes = [ctx, ctypes.c_uint32]
    so.seccomp_arch_exist.restype = ctypes.c_int
    so.seccomp_arch_native.argtypes = []
    so.seccomp_arch_native.restype = ctypes.c_uint32
    so.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    so.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    so.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    so.seccomp_syscall_resolve_name_arch.restype = ctypes.c_int
    so.seccomp_rule_add_array.argtypes = [ctx, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                          ctypes.POINTER(_ArgCmp)]
    so.seccomp_rule_add_array.restype = ctypes.c_int
    so.seccomp_attr_set.argtypes = [ctx, ctypes.c_int, ctypes.c_uint32]
    so.seccomp_attr_set.restype = ctypes.c_int
    so.seccomp_export_bpf.argtypes = [ctx, ctypes.c_int]
    so.seccomp_export_bpf.restype = ctypes.c_int
    so.seccomp_version.argtypes = []
    so.seccomp_version.restype = ctypes.POINTER(_Version)
    so.seccomp_api_get.argtypes = []
    so.seccomp_api_get.restype = ctypes.c_uint
    return so


def _check(rc: int, what: str) -> int:
    if rc < 0:
        raise LibseccompError(-rc, f"{what}: {os.strerror(-rc)}")
    return rc


def version() -> tuple[int, int, int]:
    """libseccomp's (major, minor, micro)."""
    v = lib().seccomp_version().contents
    return (v.major, v.minor, v.micro)


def api_level() -> int:
    """libseccomp's API level (what this libseccomp *and* the running kernel support):
    3 adds SECCOMP_FILTER_FLAG_LOG and SCMP_ACT_LOG, 4 adds SPEC_ALLOW, 6 notify."""
    return int(lib().seccomp_api_get())


def native_arch() -> int:
    """The libseccomp arch token of this process (``SCMP_ARCH_*`` value)."""
    return int(lib().seccomp_arch_native())


def arch_token(name: str) -> int:
    """``x86_64``/``SCMP_ARCH_X86_64`` -> libseccomp's token; 0 when libseccomp does not
    know that architecture."""
    n = name.lower()
    if n.startswith("scmp_arch_"):
        n = n[len("scmp_arch_"):]
    return int(lib().seccomp_arch_resolve_name(n.encode()))


def syscall_number(name: str, arch: int = ARCH_NATIVE) -> int:
    """The syscall's number on ``arch``; negative for libseccomp's pseudo numbers (a call
    that exists only on another architecture) and ``NR_SCMP_ERROR`` for an unknown name."""
    return int(lib().seccomp_syscall_resolve_name_arch(arch, name.encode()))


class Filter:
    """A libseccomp filter context (``scmp_filter_ctx``), released on close / exit."""

    def __init__(self, default_action: int):
        self._so = lib()
        self._ctx = self._so.seccomp_init(default_action)
        if not self._ctx:
            raise LibseccompError(22, f"seccomp_init(0x{default_action:08x}): invalid default "
                                      "action or out of memory")

    def __enter__(self) -> Filter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._ctx:
            self._so.seccomp_release(self._ctx)
            self._ctx = None

    def add_arch(self, token: int) -> None:
        """Add an architecture (adding the native one again is not an error)."""
        if self._so.seccomp_arch_exist(self._ctx, token) == 0:
            return
        _check(self._so.seccomp_arch_add(self._ctx, token), f"seccomp_arch_add(0x{token:08x})")

    def set_attr(self, attr: int, value: int) -> None:
        _check(self._so.seccomp_attr_set(self._ctx, attr, value),
               f"seccomp_attr_set({attr}, {value})")

    def add_rule(self, action: int, syscall: int, args: list[ArgCmp] | tuple = ()) -> None:
        """Add a rule: ``syscall`` (a native or pseudo number) gets ``action`` when every
        comparison in ``args`` holds (libseccomp translates it to each architecture)."""
        arr = (_ArgCmp * max(len(args), 1))()
        for i, c in enumerate(args):
            arr[i] = _ArgCmp(c.arg, c.op, c.a, c.b)
        _check(self._so.seccomp_rule_add_array(self._ctx, action, syscall, len(args), arr),
               f"seccomp_rule_add(syscall {syscall})")

    def export_bpf(self) -> bytes:
        """The compiled program: an array of ``struct sock_filter`` in host byte order."""
        fd = os.memfd_create("nutshell-seccomp", os.MFD_CLOEXEC)
        try:
            _check(self._so.seccomp_export_bpf(self._ctx, fd), "seccomp_export_bpf")
            size = os.fstat(fd).st_size
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)
