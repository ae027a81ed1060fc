"""Installing a compiled seccomp filter in the calling process (container init, exec's
child). Imports only ``os`` and ``ctypes``: it runs in a freshly forked child of a sealed
``python -I -S``, after pivot_root, where nothing else can be imported any more.

The filter (BPF bytes from ``compile_filter``, made in the parent) is handed to
``seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)``; a kernel without seccomp(2)
(before 3.17) gets ``prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)`` instead, which
takes no flags. The kernel accepts a filter from a process that has no_new_privs set,
or that holds CAP_SYS_ADMIN in its user namespace; this module never sets no_new_privs
itself (the caller decides, as runc does: with no_new_privs the filter is loaded last
before execve, without it before the capabilities are dropped).
"""

from __future__ import annotations

import ctypes
import os

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
SECCOMP_FILTER_FLAG_LOG = 2
SECCOMP_FILTER_FLAG_SPEC_ALLOW = 4
PR_SET_SECCOMP = 22
PR_GET_SECCOMP = 21
SECCOMP_MODE_FILTER = 2
BPF_MAXINSNS = 4096
_INSN = 8                       # sizeof(struct sock_filter)

# seccomp(2)'s number on this process's architecture (None: only prctl is tried)
_NR_SECCOMP = {
    ("x86_64", 8): 317, ("x86_64", 4): 354, ("i386", 4): 354, ("i486", 4): 354,
    ("i586", 4): 354, ("i686", 4): 354, ("aarch64", 8): 277, ("aarch64", 4): 383,
    ("armv7l", 4): 383, ("armv6l", 4): 383, ("armv8l", 4): 383, ("riscv64", 8): 277,
    ("loongarch64", 8): 277, ("ppc64le", 8): 358, ("ppc64", 8): 358, ("s390x", 8): 348,
}.get((os.uname().machine, ctypes.sizeof(ctypes.c_void_p)))


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_prctl = _libc.prctl
_prctl.restype = ctypes.c_int
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong,
                   ctypes.c_ulong]


def _seccomp(op: int, flags: int, arg) -> int:
    """The raw system call; -errno on failure."""
    if _NR_SECCOMP is None:
        return -38                                       # ENOSYS: try prctl
    rc = _syscall(ctypes.c_long(_NR_SECCOMP), ctypes.c_long(op), ctypes.c_long(flags), arg)
    return rc if rc >= 0 else -ctypes.get_errno()


def flag_supported(flag: int) -> bool:
    """Whether the kernel knows a SECCOMP_FILTER_FLAG_* (libseccomp's probe: a NULL
    program fails with EFAULT for a known flag, EINVAL for an unknown one)."""
    return _seccomp(SECCOMP_SET_MODE_FILTER, flag, None) == -14


def install(bpf: bytes, *, log: bool = False, spec_allow: bool = False) -> None:
    """Load ``bpf`` (an array of ``struct sock_filter``) as this process's seccomp filter.

    ``log``: SECCOMP_FILTER_FLAG_LOG (log every action but ALLOW); ``spec_allow``:
    SECCOMP_FILTER_FLAG_SPEC_ALLOW (do not force the speculative store bypass
    mitigation on; runc's default). Raises OSError with a clear message on failure.
    """
    n = len(bpf) // _INSN
    if not bpf or len(bpf) % _INSN or n > BPF_MAXINSNS:
        raise OSError(22, f"loading the seccomp filter: not a BPF program of 1 to "
                          f"{BPF_MAXINSNS} instructions ({len(bpf)} bytes)")
    flags = (SECCOMP_FILTER_FLAG_LOG if log else 0) | \
        (SECCOMP_FILTER_FLAG_SPEC_ALLOW if spec_allow else 0)
    buf = ctypes.create_string_buffer(bytes(bpf), len(bpf))
    prog = _SockFprog(n, ctypes.cast(buf, ctypes.c_void_p))
    rc = _seccomp(SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(prog))
    how = "seccomp(SECCOMP_SET_MODE_FILTER)"
    if rc == -38 and not flags:
        how = "prctl(PR_SET_SECCOMP)"
        rc = _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0)
        rc = rc if rc >= 0 else -ctypes.get_errno()
    if rc >= 0:
        return
    err = -rc
    if err == 13:       # EACCES
        why = "needs no_new_privs or CAP_SYS_ADMIN"
    elif err == 22:     # EINVAL
        why = ("the kernel refused the program or its flags "
               f"(log={log}, spec_allow={spec_allow})")
    elif err == 38:     # ENOSYS
        why = ("this kernel has no seccomp(2)" + (", which the requested filter flags need"
                                                  if flags else ""))
    else:
        why = os.strerror(err)
    raise OSError(err, f"loading the seccomp filter: {how}: {why}")


def mode() -> int:
    """This process's seccomp mode: 0 none, 1 strict, 2 filter."""
    rc = _prctl(PR_GET_SECCOMP, 0, None, 0, 0)
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_GET_SECCOMP): {os.strerror(err)}")
    return rc
