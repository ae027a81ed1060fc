"""Docker's default seccomp profile, as data in Docker's own JSON format.

The behaviour is moby's ``profiles/seccomp/default.json`` (github.com/moby/profiles,
seccomp v0.2.3): every system call not listed answers EPERM; the listed ones are
allowed, some only for certain arguments, some only with a capability, some only on
an architecture or from a kernel version on. The names are grouped here by what they
are for, so the profile can be read (and taught) as a list of decisions; the groups are
merged into one sorted allowlist, the way Docker ships it, by :func:`default_profile`.

Why the allowlist has the shape it has (a summary of moby's reasoning):

* Whatever reaches kernel code that is not namespaced (the keyring, the kernel's
  clock, modules, kexec, swap, the kernel log, accounting, raw I/O ports, BPF,
  performance counters) or that manipulates namespaces and mounts is left out. Some
  of those the kernel itself would refuse without a capability; the profile refuses
  them *before* the kernel's capability check, shrinking the kernel code a container
  can reach, and gives them back only when the container holds that capability.
* Everything an ordinary program needs (files, memory, signals, sockets, time
  reading, scheduling hints, System V IPC inside its IPC namespace) is allowed.
* ``clone`` is allowed without namespace flags only, ``clone3`` answers ENOSYS (its
  flags live in memory a filter cannot read, and ENOSYS makes libc fall back to
  ``clone``), ``personality`` only for the harmless personas, ``socket`` for every
  address family but AF_ALG (the kernel crypto API) and AF_VSOCK (the hypervisor).
"""

from __future__ import annotations

import copy

EPERM = 1
ENOSYS = 38

# --- the unconditional allowlist, by purpose --------------------------------------------

_PROCESSES = (
    # being a process: start, exec, wait, exit, signal others, ids, sessions
    "execve", "execveat", "fork", "vfork", "exit", "exit_group", "wait4", "waitid",
    "waitpid", "kill", "tkill", "tgkill", "getpid", "getppid", "gettid", "getpgid",
    "getpgrp", "getsid", "setsid", "setpgid", "set_tid_address", "restart_syscall",
    "pidfd_open", "pidfd_send_signal", "process_mrelease",
    # per-process knobs; the kernel checks prctl options and capsets itself
    "prctl", "capget", "capset",
    # a process may confine itself further (nested filters, landlock)
    "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
    # libc and runtimes: restartable sequences, robust futex lists, barriers
    "rseq", "set_robust_list", "get_robust_list", "membarrier",
    # uprobes return trampoline (kernel v6.11)
    "uretprobe",
    # x86 thread-local storage descriptors
    "get_thread_area", "set_thread_area",
    # RISC-V hardware probing (kernel v6.12)
    "riscv_hwprobe",
)

_CREDENTIALS = (
    # reading and changing user and group ids: the kernel checks CAP_SETUID/CAP_SETGID
    "getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid",
    "getegid32", "getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups",
    "getgroups32", "setuid", "setuid32", "setgid", "setgid32", "setreuid", "setreuid32",
    "setregid", "setregid32", "setresuid", "setresuid32", "setresgid", "setresgid32",
    "setfsuid", "setfsuid32", "setfsgid", "setfsgid32", "setgroups", "setgroups32",
)

_FILES = (
    # opening, reading, writing, seeking, duplicating descriptors
    "open", "openat", "openat2", "creat", "close", "close_range", "read", "readv",
    "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2",
    "lseek", "_llseek", "dup", "dup2", "dup3", "fcntl", "fcntl64", "ioctl", "flock",
    # flushing and space management
    "fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "fallocate", "fadvise64",
    "fadvise64_64", "readahead", "truncate", "truncate64", "ftruncate", "ftruncate64",
    # metadata
    "access", "faccessat", "faccessat2", "stat", "stat64", "lstat", "lstat64", "fstat",
    "fstat64", "fstatat64", "newfstatat", "statx", "statfs", "statfs64", "fstatfs",
    "fstatfs64", "cachestat",
    # listing mounts is read-only (kernel v6.8); changing them is CAP_SYS_ADMIN's
    "statmount", "listmount",
    # directories and names
    "getdents", "getdents64", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir",
    "rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat",
    "unlink", "unlinkat", "readlink", "readlinkat",
    # owners, modes, times; the kernel checks CAP_CHOWN/CAP_FOWNER/CAP_FSETID
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "chown32", "fchown",
    "fchown32", "fchownat", "lchown", "lchown32", "umask", "utime", "utimes",
    "utimensat", "utimensat_time64", "futimesat",
    # device nodes: CAP_MKNOD and the device cgroup decide what may be opened
    "mknod", "mknodat",
    # file handles: making one is harmless, opening one needs CAP_DAC_READ_SEARCH
    "name_to_handle_at",
    # copying between descriptors in the kernel
    "copy_file_range", "sendfile", "sendfile64", "splice", "tee", "vmsplice",
    # pipes
    "pipe", "pipe2",
    # extended attributes
    "getxattr", "lgetxattr", "fgetxattr", "getxattrat", "setxattr", "lsetxattr",
    "fsetxattr", "setxattrat", "listxattr", "llistxattr", "flistxattr", "listxattrat",
    "removexattr", "lremovexattr", "fremovexattr", "removexattrat",
    # change notification (fanotify_init itself needs CAP_SYS_ADMIN, below)
    "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
    "fanotify_mark",
)

_MEMORY = (
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore",
    "msync", "remap_file_pages", "mlock", "mlock2", "mlockall", "munlock", "munlockall",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "memfd_create", "memfd_secret",
    # sealing mappings and shadow stacks (kernel v6.9, v6.6)
    "mseal", "map_shadow_stack",
)

_WAITING = (
    # polling and event descriptors
    "poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6",
    "pselect6_time64", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_wait", "epoll_wait_old", "epoll_pwait", "epoll_pwait2", "eventfd",
    "eventfd2", "signalfd", "signalfd4", "timerfd_create", "timerfd_settime",
    "timerfd_settime64", "timerfd_gettime", "timerfd_gettime64", "pause",
    # futexes, including the v6.7 futex2 calls
    "futex", "futex_time64", "futex_waitv", "futex_wait", "futex_wake", "futex_requeue",
    # Linux AIO (io_uring is *not* here: Docker removed it in 2023)
    "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64",
)

_SIGNALS = (
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
    "sigaltstack", "sigprocmask", "sigreturn", "alarm",
)

_TIME = (
    # reading clocks, sleeping, timers; setting the clock needs CAP_SYS_TIME (below)
    "time", "gettimeofday", "clock_gettime", "clock_gettime64", "clock_getres",
    "clock_getres_time64", "clock_nanosleep", "clock_nanosleep_time64", "nanosleep",
    "getitimer", "setitimer", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "times",
    # querying the clock discipline is allowed; adjusting it the kernel refuses without
    # CAP_SYS_TIME
    "adjtimex", "clock_adjtime", "clock_adjtime64",
)

_SCHEDULING = (
    # scheduling hints and resource limits (raising limits: CAP_SYS_RESOURCE, kernel's)
    "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getattr",
    "sched_setattr", "sched_getparam", "sched_setparam", "sched_getscheduler",
    "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "getpriority",
    "setpriority", "ioprio_get", "ioprio_set", "getrlimit", "setrlimit", "ugetrlimit",
    "prlimit64", "getrusage",
    # facts about the machine
    "getcpu", "sysinfo", "uname", "getrandom",
)

_NETWORK = (
    # sockets once created (socket(2) itself is argument-filtered, below); the
    # container's network namespace confines them
    "socketpair", "bind", "connect", "listen", "accept", "accept4", "getsockname",
    "getpeername", "getsockopt", "setsockopt", "send", "sendto", "sendmsg", "sendmmsg",
    "recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64", "shutdown",
    # the 32-bit x86 multiplexer; its arguments are in memory, out of a filter's reach
    "socketcall",
)

_IPC = (
    # System V IPC and POSIX message queues, confined by the IPC namespace
    "ipc", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop",
    "semtimedop_time64", "semctl", "shmget", "shmat", "shmdt", "shmctl", "mq_open",
    "mq_unlink", "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive",
    "mq_timedreceive_time64", "mq_notify", "mq_getsetattr",
)

ALLOWLIST_GROUPS = {
    "processes": _PROCESSES, "credentials": _CREDENTIALS, "files": _FILES,
    "memory": _MEMORY, "waiting": _WAITING, "signals": _SIGNALS, "time": _TIME,
    "scheduling": _SCHEDULING, "network": _NETWORK, "ipc": _IPC,
}

# --- rules with arguments ---------------------------------------------------------------

AF_ALG = 38
AF_VSOCK = 40
# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
# CLONE_NEWPID | CLONE_NEWNET: clone(2) with any of these makes a namespace
CLONE_NAMESPACE_FLAGS = 0x7E020000
# personas a container may switch to: PER_LINUX, PER_LINUX_32BIT (0x8), PER_LINUX with
# UNAME26 (0x20000, a 2.6 kernel version for old programs), both (0x20008), and
# 0xffffffff, which only *queries* the current persona. Everything else (notably
# ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC) would weaken the container's own defences.
PERSONAS = (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF)


def _allow(names, **extra) -> dict:
    return {"names": list(names), "action": "SCMP_ACT_ALLOW", **extra}


def _arg(index: int, value: int, op: str) -> dict:
    return {"index": index, "value": value, "op": op}


def _rules() -> list[dict]:
    # one list, sorted as Docker sorts it (underscores ignored)
    allow_all = sorted({n for group in ALLOWLIST_GROUPS.values() for n in group},
                       key=lambda n: (n.replace("_", ""), n))
    rules = [
        _allow(allow_all),
        # Before Linux 4.8 a tracer could change a traced process's syscall after the
        # filter ran, so ptrace let a container escape its filter.
        _allow(["process_vm_readv", "process_vm_writev", "ptrace"],
               includes={"minKernel": "4.8"}),
        # socket(2) for every address family but AF_ALG (38) and AF_VSOCK (40): three
        # rules, since the comparisons of one rule are ANDed.
        _allow(["socket"], args=[_arg(0, AF_ALG, "SCMP_CMP_LT")]),
        _allow(["socket"], args=[_arg(0, AF_ALG + 1, "SCMP_CMP_EQ")]),
        _allow(["socket"], args=[_arg(0, AF_VSOCK, "SCMP_CMP_GT")]),
    ]
    rules += [_allow(["personality"], args=[_arg(0, p, "SCMP_CMP_EQ")]) for p in PERSONAS]
    rules += [
        # calls that exist on one architecture family only
        _allow(["sync_file_range2", "swapcontext"], includes={"arches": ["ppc64le"]}),
        _allow(["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
                "breakpoint", "cacheflush", "set_tls"],
               includes={"arches": ["arm", "arm64"]}),
        _allow(["arch_prctl"], includes={"arches": ["amd64", "x32"]}),
        _allow(["modify_ldt"], includes={"arches": ["amd64", "x32", "x86"]}),
        _allow(["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"],
               includes={"arches": ["s390", "s390x"]}),
        _allow(["riscv_flush_icache"], includes={"arches": ["riscv64"]}),
        # opening a file by handle skips path permission checks (the "shocker" escape)
        _allow(["open_by_handle_at"], includes={"caps": ["CAP_DAC_READ_SEARCH"]}),
        # CAP_SYS_ADMIN: namespaces, mounts (old and new mount API), BPF, performance
        # counters, quotas, hostnames, the kernel log, LSM attributes, fanotify
        _allow(["bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
                "fspick", "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules",
                "lsm_set_self_attr", "mount", "mount_setattr", "move_mount", "open_tree",
                "perf_event_open", "quotactl", "quotactl_fd", "setdomainname",
                "sethostname", "setns", "syslog", "umount", "umount2", "unshare"],
               includes={"caps": ["CAP_SYS_ADMIN"]}),
        # without CAP_SYS_ADMIN, clone only without namespace flags (on s390 the flags
        # are the second argument)
        _allow(["clone"], args=[_arg(0, CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ")],
               excludes={"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}),
        _allow(["clone"], args=[_arg(1, CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ")],
               comment="s390 parameter ordering for clone is different",
               includes={"arches": ["s390", "s390x"]},
               excludes={"caps": ["CAP_SYS_ADMIN"]}),
        # clone3's flags are in a struct in memory, out of a filter's reach: answer
        # ENOSYS so libc falls back to clone, whose flags the rule above can see
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS,
         "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        # one capability each
        _allow(["reboot"], includes={"caps": ["CAP_SYS_BOOT"]}),
        _allow(["chroot"], includes={"caps": ["CAP_SYS_CHROOT"]}),
        _allow(["delete_module", "init_module", "finit_module"],
               includes={"caps": ["CAP_SYS_MODULE"]}),
        _allow(["acct"], includes={"caps": ["CAP_SYS_PACCT"]}),
        _allow(["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                "process_vm_writev", "ptrace"], includes={"caps": ["CAP_SYS_PTRACE"]}),
        _allow(["iopl", "ioperm"], includes={"caps": ["CAP_SYS_RAWIO"]}),
        _allow(["settimeofday", "stime", "clock_settime", "clock_settime64"],
               includes={"caps": ["CAP_SYS_TIME"]}),
        _allow(["vhangup"], includes={"caps": ["CAP_SYS_TTY_CONFIG"]}),
        _allow(["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"],
               includes={"caps": ["CAP_SYS_NICE"]}),
        _allow(["syslog"], includes={"caps": ["CAP_SYSLOG"]}),
        _allow(["bpf"], includes={"caps": ["CAP_BPF"]}),
        _allow(["perf_event_open"], includes={"caps": ["CAP_PERFMON"]}),
    ]
    return rules


# Docker's archMap: the architectures a filter covers on each kind of host (the host's
# own plus the 32-bit ABIs its kernel also runs).
ARCH_MAP = [
    ("SCMP_ARCH_X86_64", ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
    ("SCMP_ARCH_AARCH64", ["SCMP_ARCH_ARM"]),
    ("SCMP_ARCH_MIPS64", ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"]),
    ("SCMP_ARCH_MIPS64N32", ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"]),
    ("SCMP_ARCH_MIPSEL64", ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"]),
    ("SCMP_ARCH_MIPSEL64N32", ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"]),
    ("SCMP_ARCH_S390X", ["SCMP_ARCH_S390"]),
    ("SCMP_ARCH_RISCV64", None),
    ("SCMP_ARCH_LOONGARCH64", None),
]

_DEFAULT: dict | None = None


def default_profile() -> dict:
    """Docker's default profile in Docker's JSON format (a fresh copy each call)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": EPERM,
            "archMap": [{"architecture": a, "subArchitectures": sub} for a, sub in ARCH_MAP],
            "syscalls": _rules(),
        }
    return copy.deepcopy(_DEFAULT)
