"""Classic BPF as seccomp uses it: the ENOSYS prefix we add to libseccomp's program, and a
small interpreter to check a program without a kernel.

A seccomp program is an array of ``struct sock_filter {u16 code; u8 jt, jf; u32 k}`` in
host byte order, run on ``struct seccomp_data {int nr; u32 arch; u64 ip; u64 args[6]}``.
Jumps go forward only, ``jt``/``jf`` at most 255 instructions.

**Why an ENOSYS prefix.** A profile's default action (EPERM in Docker's) also answers
system calls that are newer than the profile, or than the libseccomp that compiled it.
For those, EPERM tells a program "you may not", while ENOSYS tells it "this kernel does
not have it", after which glibc and musl fall back to an older call (``clone3`` ->
``clone``, ``faccessat2`` -> ``faccessat``, ``fchmodat2`` -> ``fchmodat``...). runc
therefore prepends a stub (``libcontainer/seccomp/patchbpf``): per architecture in the
filter, a syscall number above the highest one the profile names answers ENOSYS; every
other call falls through to libseccomp's program unchanged. :func:`enosys_prefix`
generates the same decision:

    ld  [4]                        ; arch
    jeq AUDIT_ARCH_A, sec_A        ; one test per architecture in the filter
    ...
    ja  filter                     ; an architecture we do not know: libseccomp decides
  sec_A:
    ld  [0]                        ; syscall number
    [jset 0x40000000 ...]          ; x86_64: x32 calls have their own maximum
    [jeq 0, enosys]                ; s390(x): 0 is the "large syscall" multiplexer
    jgt MAX_A, enosys, filter
    ...
  enosys:
    ret ERRNO(ENOSYS)
  filter:                          ; libseccomp's program starts here
"""


import struct
from typing import NamedTuple

INSN = struct.Struct("=HBBI")
MAXINSNS = 4096                     # BPF_MAXINSNS: the kernel refuses longer programs

# opcodes (linux/filter.h, linux/bpf_common.h)
LD_W_ABS = 0x20
LD_IMM = 0x00
LDX_IMM = 0x01
LD_MEM = 0x60
LDX_MEM = 0x61
ST = 0x02
STX = 0x03
JA = 0x05
JEQ_K, JGT_K, JGE_K, JSET_K = 0x15, 0x25, 0x35, 0x45
JEQ_X, JGT_X, JGE_X, JSET_X = 0x1D, 0x2D, 0x3D, 0x4D
RET_K = 0x06
RET_A = 0x16
TAX, TXA = 0x07, 0x87
ALU_AND_K, ALU_OR_K, ALU_ADD_K, ALU_SUB_K = 0x54, 0x44, 0x04, 0x14

RET_ERRNO = 0x00050000
RET_ACTION_FULL = 0xFFFF0000
RET_DATA = 0x0000FFFF
ENOSYS = 38

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_S390 = 0x00000016
AUDIT_ARCH_S390X = 0x80000016
X32_SYSCALL_BIT = 0x40000000


class ArchLimit(NamedTuple):
    """The highest syscall number a profile names on one architecture, as the kernel
    reports it in ``seccomp_data.arch``. On x86_64, x32 calls (bit 30 set) have their own
    maximum (``x32_max``); either may be None when that ABI is not in the filter."""

    audit_arch: int
    max_nr: int | None
    x32_max: int | None = None


def pack(code: int, jt: int, jf: int, k: int) -> bytes:
    return INSN.pack(code, jt, jf, k & 0xFFFFFFFF)


def instructions(program: bytes) -> list[tuple[int, int, int, int]]:
    """The program as (code, jt, jf, k) tuples."""
    if len(program) % INSN.size:
        raise ValueError(f"a BPF program is a multiple of {INSN.size} bytes, "
                         f"not {len(program)}")
    return [INSN.unpack_from(program, off) for off in range(0, len(program), INSN.size)]


def enosys_prefix(limits: list[ArchLimit]) -> bytes:
    """The stub that answers ENOSYS above each architecture's highest known syscall
    number (see the module's docstring); prepend it to libseccomp's program."""
    # symbolic program: (code, k, jt_label, jf_label); a label None means "next"
    prog: list[tuple[int, int, str | None, str | None]] = []
    labels: dict[str, int] = {}
    prog.append((LD_W_ABS, 4, None, None))
    sections = [lim for lim in limits if lim.max_nr is not None or lim.x32_max is not None]
    for i, lim in enumerate(sections):
        prog.append((JEQ_K, lim.audit_arch, f"arch{i}", None))
    prog.append((JA, 0, "filter", None))
    for i, lim in enumerate(sections):
        labels[f"arch{i}"] = len(prog)
        top, x32_top = lim.max_nr, lim.x32_max
        prog.append((LD_W_ABS, 0, None, None))
        if lim.audit_arch in (AUDIT_ARCH_S390, AUDIT_ARCH_S390X):
            prog.append((JEQ_K, 0, "enosys", None))
        if lim.audit_arch == AUDIT_ARCH_X86_64 and x32_top is not None:
            if top is not None:
                prog.append((JSET_K, X32_SYSCALL_BIT, f"x32_{i}", None))
                prog.append((JGT_K, top, "enosys", "filter"))
                labels[f"x32_{i}"] = len(prog)
            else:                               # only x32 in the filter
                prog.append((JSET_K, X32_SYSCALL_BIT, None, "filter"))
            prog.append((JGT_K, x32_top, "enosys", "filter"))
        elif top is not None:
            if lim.audit_arch == AUDIT_ARCH_X86_64:   # x32 calls are not ours to judge
                prog.append((JSET_K, X32_SYSCALL_BIT, "filter", None))
            prog.append((JGT_K, top, "enosys", "filter"))
    labels["enosys"] = len(prog)
    prog.append((RET_K, RET_ERRNO | ENOSYS, None, None))
    labels["filter"] = len(prog)

    def offset(pc: int, code: int, label: str | None) -> int:
        if label is None:
            return 0
        off = labels[label] - (pc + 1)
        if off < 0 or (code != JA and off > 255):
            raise ValueError(f"BPF jump out of range at {pc}: {off}")
        return off

    out = []
    for pc, (code, k, jt, jf) in enumerate(prog):
        if code == JA:
            out.append(pack(JA, 0, 0, offset(pc, code, jt)))
        else:
            out.append(pack(code, offset(pc, code, jt), offset(pc, code, jf), k))
    return b"".join(out)


def run(program: bytes, nr: int, arch: int, args=(0, 0, 0, 0, 0, 0), ip: int = 0) -> int:
    """Run a seccomp program on one system call the way the kernel does; the return
    value is the action (``SECCOMP_RET_*`` | data). For tests and the teaching view."""
    args = tuple(args) + (0,) * (6 - len(args))
    data = struct.pack("=iIQ6Q", nr if nr < 0x80000000 else nr - (1 << 32), arch, ip,
                       *[a & ((1 << 64) - 1) for a in args])
    insns = instructions(program)
    a = x = 0
    mem = [0] * 16
    pc = 0
    while pc < len(insns):
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == LD_W_ABS:
            if k % 4 or k + 4 > len(data):
                raise ValueError(f"bad load offset {k}")
            a = struct.unpack_from("=I", data, k)[0]
        elif code == LD_IMM:
            a = k
        elif code == LDX_IMM:
            x = k
        elif code == LD_MEM:
            a = mem[k]
        elif code == LDX_MEM:
            x = mem[k]
        elif code == ST:
            mem[k] = a
        elif code == STX:
            mem[k] = x
        elif code == TAX:
            x = a
        elif code == TXA:
            a = x
        elif code == ALU_AND_K:
            a &= k
        elif code == ALU_OR_K:
            a = (a | k) & 0xFFFFFFFF
        elif code == ALU_ADD_K:
            a = (a + k) & 0xFFFFFFFF
        elif code == ALU_SUB_K:
            a = (a - k) & 0xFFFFFFFF
        elif code == JA:
            pc += k
        elif code in (JEQ_K, JGT_K, JGE_K, JSET_K, JEQ_X, JGT_X, JGE_X, JSET_X):
            operand = x if code & 0x08 else k
            op = code & 0xF0
            taken = {0x10: a == operand, 0x20: a > operand, 0x30: a >= operand,
                     0x40: bool(a & operand)}[op]
            pc += jt if taken else jf
        elif code == RET_K:
            return k
        elif code == RET_A:
            return a
        else:
            raise ValueError(f"unsupported BPF instruction 0x{code:04x} at {pc - 1}")
    raise ValueError("BPF program ran off its end")
