"""What a teacher can read aloud beside each teaching view, filled in with the real numbers
of the container on screen (so the words and the screen always agree)."""

from __future__ import annotations

from workbench.format import ibytes


def namespaces(m) -> str:
    new = [r.type for r in m.rows if r.shared is False]
    shared = [r.type for r in m.rows if r.shared]
    text = (f"A container is an ordinary process that the kernel shows a different world. "
            f"{m.name}'s first process is PID {m.pid} on the host. Each namespace isolates one "
            f"thing; /proc/<pid>/ns/<type> names it by an inode number. The process has "
            f"{len(new)} of the 8 types of its own (new: {', '.join(new) or 'none'})")
    if shared:
        text += f" and shares {', '.join(shared)} with {m.reference}"
    text += "."
    if "user" in shared:
        text += (" Without a user namespace, root in the container IS root on the host: "
                 "uid_map maps 0 to 0; capabilities and the other namespaces are what hold it in.")
    if m.reference != "pid 1":
        text += (" (PID 1's namespaces are hidden from us here, so the host side is this "
                 "program's own.)")
    return text


def processes(p) -> str:
    init = next((r for r in p.rows if r.host_pid == p.init_pid), None)
    inner = init.container_pid if init else 1
    return (f"The same process has two numbers. Inside its PID namespace {p.name}'s first "
            f"process is PID {inner}: the init that reaps orphans, and whose exit ends the "
            f"container. The host knows it as PID {p.init_pid}. /proc/<pid>/status's NSpid "
            f"line lists one number per PID namespace, the host's first. Its parent (PPID "
            f"{init.host_ppid if init else '?'}) is outside the container: the shim that "
            f"holds the console and waits for it.")


def overlay(o) -> str:
    n = len(o.lower)
    deleted = sum(1 for e in o.entries if e.kind == "deleted")
    layers = ("The image's only layer is a read-only directory" if n == 1 else
              f"The image's {n} layers are read-only directories")
    text = (f"{layers} stacked by overlayfs: lowerdir lists them top first and a path is "
            f"looked up from the top down. Everything {o.name} writes lands in its upperdir: a changed file is copied "
            f"up whole on its first write. A file deleted from a lower layer becomes a "
            f"whiteout, a 0/0 character device in upper"
            f"{f' ({deleted} here)' if deleted else ''}; a directory replaced whole is marked "
            f"opaque. upperdir is the container's whole change set: `nutshell commit` packs it "
            f"into a new layer ({o.entries_total} entries, {ibytes(o.upper_bytes)} of file data "
            f"now).")
    images = sum(1 for layer in o.lower if str(layer.path).endswith("/layer.sqfs"))
    if images:
        who = ("Each layer is" if images == n else
               f"{images} of the {n} layers {'is' if images == 1 else 'are'}")
        text += (f" {who} stored as a squashfs image file, not a directory: the container's "
                 "init binds each image to a loop device, mounts it read-only where no one "
                 "else can see it, and hands overlayfs the mount as /proc/self/fd/N — that "
                 "is what lowerdir shows.")
    if not o.mounted:
        text += (" The container is not running, so nothing is mounted: the overlay exists only "
                 "inside the container's mount namespace, while it runs.")
    return text


def cgroup(c) -> str:
    lim = {r.resource: r for r in c.rows}
    bits = []
    mem = lim.get("memory")
    if mem and mem.limit is not None:
        bits.append(f"-m became {mem.limit_file.rsplit('/', 1)[-1]} = {mem.limit_text}")
    cpu = lim.get("cpu")
    if cpu and cpu.limit is not None:
        bits.append(f"--cpus {cpu.limit:g} became a quota of {cpu.limit_text.split()[0]} µs per period")
    pids = lim.get("pids")
    if pids and pids.limit is not None:
        bits.append(f"--pids-limit became pids.max = {int(pids.limit)}")
    text = (f"A cgroup is a directory under /sys/fs/cgroup ({c.version} on this host). The "
            f"runtime made nutshell/<id> for {c.name}, wrote the limits into files and moved the "
            f"container's first process in; its children inherit it. The kernel enforces the "
            f"limits and counts usage in other files of the same directory.")
    if bits:
        text += " Here " + "; ".join(bits) + "."
    else:
        text += " This container has no limits: the files say max (or a huge number)."
    text += (" Memory over the limit is reclaimed, then a process is OOM-killed (the oom row); "
             "CPU over the quota is throttled, never killed.")
    return text


def network(n) -> str:
    if not n.links:
        if n.mode == "host":
            return ("This container shares the host's network namespace (--network host): same "
                    "interfaces, same addresses, same ports. No veth, no bridge.")
        return (f"Network mode {n.mode}: the container has its own network namespace with only "
                f"the loopback interface, so it cannot reach anything else.")
    link = n.links[0]
    return (f"A veth pair is a virtual cable: what goes in one end comes out the other. One end "
            f"is {link.interface} inside {n.name}'s network namespace ({link.ip}/"
            f"{link.prefix_len}); the other, {link.host_veth}, stays on the host, plugged into "
            f"the bridge {link.bridge} - a virtual switch whose own address {link.bridge_ip} is "
            f"the container's default gateway. The host end's iflink ({link.peer_ifindex}) is "
            f"the ifindex of {link.interface} inside: that is how the two ends are paired. "
            f"Published ports are NAT rules on the host.")


def security(s) -> str:
    if s.privileged:
        return (f"{s.name} runs --privileged: every capability, every host device, no seccomp "
                f"filter, nothing masked. Root in it is root on the host, with nothing in the "
                f"way: use it only for what needs it.")
    text = (f"Root in {s.name} is root on the host (no user namespace), so three things hold it "
            f"in. Capabilities: it keeps {len(s.capabilities)} of the {s.caps_known} pieces of "
            f"root's power (CapEff {s.cap_eff}); CAP_SYS_ADMIN, CAP_SYS_MODULE and the rest are "
            f"gone from its bounding set for good. ")
    if s.summary is None:
        text += "Seccomp: none (unconfined), every system call reaches the kernel. "
    else:
        text += (f"Seccomp: a BPF filter ({s.profile} profile) checks every system call before "
                 f"the kernel runs it; {s.summary.allowed} are allowed and anything else gets "
                 f"{s.summary.default_action}, even for root: the table lists the ones worth "
                 f"knowing. ")
    text += ("Masked paths: files under /proc and /sys that would leak the host's secrets "
             "(kernel memory, keys, timers) are covered by /dev/null or an empty directory.")
    if s.no_new_privs:
        text += " no_new_privs is on: a setuid binary gives its user nothing."
    return text
