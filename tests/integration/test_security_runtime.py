"""A container's confinement, seen from inside: signals, --privileged, masked paths, exec.

(The seccomp probes are in test_security_seccomp.py, the /proc/self/exe attack in
test_security_exe.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core.engine import Engine

pytestmark = pytest.mark.integration

IMAGE = "sec-test/busybox:latest"


class Root:
    def __init__(self, root: str):
        self.root = root
        self.engine = Engine(root)

    def cli(self, *args: str, input: str | None = None, timeout: float = 60):
        return subprocess.run([sys.executable, "-m", "workbench", "--root", self.root, *args],
                              input=input, capture_output=True, text=True, timeout=timeout)

    def run(self, *args: str, **kw):
        return self.cli("run", "--rm", "--network", "none", *args, **kw)


@pytest.fixture(scope="module")
def sec(tmp_path_factory, busybox_rootfs):
    r = Root(str(tmp_path_factory.mktemp("sec") / "root"))
    r.engine.import_image(busybox_rootfs, IMAGE, changes=['CMD ["sh"]'])
    yield r
    for c in r.engine.ps(all=True):
        r.engine.rm(c["Id"], force=True)
    r.engine.network_reset()  # the default bridge one test made, and its nft table


def status(text: str) -> dict[str, str]:
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def test_signals_are_reset_for_the_init_and_exec(sec):
    """Python ignores SIGPIPE and SIGXFSZ; execve keeps what is ignored. Docker's and
    Podman's containers start with nothing ignored or blocked, so pipelines end."""
    p = sec.run(IMAGE, "grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status")
    st = status(p.stdout)
    assert st["SigIgn"] == "0000000000000000" and st["SigBlk"] == "0000000000000000", p.stdout
    # a pipeline that closes early ends (yes gets SIGPIPE), instead of running forever
    p = sec.run(IMAGE, "sh", "-c", "yes text | head -c 20000 > /tmp/f; wc -c < /tmp/f",
                timeout=30)
    assert p.stdout.strip() == "20000", p.stderr
    assert sec.cli("run", "-d", "--name", "sig", "--network", "none", IMAGE, "sleep",
                   "300").returncode == 0
    try:
        p = sec.cli("exec", "sig", "grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status")
        st = status(p.stdout)
        assert st["SigIgn"] == "0000000000000000" and st["SigBlk"] == "0000000000000000"
        p = sec.cli("exec", "sig", "sh", "-c", "yes | head -c 5000 | wc -c", timeout=30)
        assert p.stdout.strip() == "5000"
    finally:
        sec.cli("rm", "-f", "sig")


def _fds(text: str) -> list[str]:
    return sorted(text.split(), key=int)


def test_no_fd_of_ours_reaches_the_container(sec):
    """The init and exec'd processes start with stdio only: no sync socket, go pipe,
    ready pipe, request memfd or sealed interpreter handle (CVE-2024-21626 class)."""
    for net in ("none", "default"):
        p = sec.cli("run", "--rm", "--network", net, IMAGE, "ls", "/proc/1/fd")
        assert _fds(p.stdout) == ["0", "1", "2", "3"], (net, p.stdout, p.stderr)  # 3: ls's dir
    p = sec.cli("run", "--rm", "-t", "--network", "none", IMAGE, "ls", "/proc/1/fd")
    assert _fds(p.stdout.replace("\r", "")) == ["0", "1", "2", "3"]
    assert sec.cli("run", "-d", "--name", "fds", "--network", "none", IMAGE, "sleep",
                   "300").returncode == 0
    try:
        assert _fds(sec.cli("exec", "fds", "ls", "/proc/1/fd").stdout) == ["0", "1", "2"]
        for flags in ([], ["-i"], ["-t"]):
            # (sh execs ls in its place: $$ is ls, 3 is its own directory handle)
            p = sec.cli("exec", *flags, "fds", "sh", "-c", "ls /proc/$$/fd", input="")
            assert _fds(p.stdout.replace("\r", "")) == ["0", "1", "2", "3"], (flags, p.stdout)
    finally:
        sec.cli("rm", "-f", "fds")


def test_an_fd_our_callers_caller_left_inheritable_reaches_no_process_of_ours(sec):
    """A shell or CI runner may leave a pipe inheritable in the command it runs. No
    process of the container (shim, init, payload) may keep it, or whoever waits for
    that pipe's end of file waits as long as the container runs: the shim (boot.py's
    process C, not exec'd) exists before its start's request is read, so boot.py must
    close those fds itself."""
    import select

    r, w = os.pipe()
    try:
        p = subprocess.run([sys.executable, "-m", "workbench", "--root", sec.root, "run", "-d",
                            "--name", "strayfd", "--network", "none", IMAGE, "sleep", "300"],
                           pass_fds=(w,), capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        os.close(w)
        w = None
        assert sec.engine.container_inspect("strayfd")["State"]["Running"]
        readable, _, _ = select.select([r], [], [], 10)
        assert readable, "a process of the container still holds the caller's pipe"
        assert os.read(r, 1) == b""          # end of file: nobody else has the write end
    finally:
        os.close(r)
        if w is not None:
            os.close(w)
        sec.cli("rm", "-f", "strayfd")


def _docker_default() -> int:
    """Docker's 14 (without a device cgroup, pure v2 without eBPF, MKNOD is withheld)."""
    from core.runtime import cgroups

    return 0xA80425FB if cgroups.detect() != "v2" else 0xA80425FB & ~(1 << 27)


def _host_permitted() -> int:
    with open("/proc/self/status") as f:
        return int(status(f.read())["CapPrm"], 16)


def test_privileged_is_dockers(sec):
    script = ("grep -E '^(CapEff|Seccomp):' /proc/self/status; "
              "grep -E ' /sys (sysfs|cgroup)' /proc/mounts | cut -d' ' -f2,4; "
              "grep -cE ' /proc/(kcore|keys|interrupts|timer_list) ' /proc/mounts; ls /dev")
    p = sec.run("--privileged", IMAGE, "sh", "-c", script)
    lines = p.stdout.splitlines()
    st = status("\n".join(lines[:2]))
    assert int(st["CapEff"], 16) == _host_permitted()    # all we have to give
    assert st["Seccomp"] == "0"
    assert lines[2].startswith("/sys rw,")                # /sys writable
    assert lines[3] == "0"                                # nothing masked
    host = {n for n in os.listdir("/dev")
            if os.path.exists(f"/dev/{n}") and not os.path.isdir(f"/dev/{n}")
            and os.stat(f"/dev/{n}").st_rdev and n not in ("console", "ptmx")}
    assert host <= set(lines[4:]), host - set(lines[4:])  # every host device node
    # and the default, for contrast
    p = sec.run(IMAGE, "sh", "-c", script)
    lines = p.stdout.splitlines()
    assert int(status(lines[0])["CapEff"], 16) == _docker_default()
    assert lines[2].startswith("/sys ro,") and int(lines[3]) >= 1
    assert set(lines[4:]) >= {"null", "zero", "full", "random", "urandom", "tty"}
    assert "kmsg" not in lines[4:] and not any(n.startswith(("sd", "vd", "loop"))
                                               for n in lines[4:])


def test_systempaths_unconfined_lifts_masks_only(sec):
    p = sec.run("--security-opt", "systempaths=unconfined", IMAGE, "sh", "-c",
                "grep -cE ' /proc/(kcore|keys|interrupts|timer_list) ' /proc/mounts; "
                "grep CapEff /proc/self/status")
    lines = p.stdout.splitlines()
    assert lines[0] == "0" and int(status(lines[1])["CapEff"], 16) == _docker_default()


def test_bad_security_opt_is_one_line_and_creates_nothing(sec):
    before = {c["Id"] for c in sec.engine.ps(all=True)}
    p = sec.cli("run", "--security-opt", "apparmor=docker-default", IMAGE, "true")
    assert p.returncode == 125
    assert p.stderr.startswith("nutshell: --security-opt apparmor=docker-default: AppArmor")
    p = sec.cli("create", "--security-opt", "seccomp=/nonexistent.json", IMAGE)
    assert p.returncode == 125 and "opening seccomp profile" in p.stderr
    assert {c["Id"] for c in sec.engine.ps(all=True)} == before


def test_exec_fails_when_the_cgroup_cannot_be_joined(sec, monkeypatch):
    """exec never runs a process outside the container's limits."""
    from core.runtime import cgroups

    cid = sec.engine.create(_opts(name="nocg"))
    try:
        sec.engine.start(cid)
        monkeypatch.setattr(cgroups.Cgroup, "open", classmethod(lambda cls, *a, **k: None))
        from core.errors import RuntimeFailure

        with pytest.raises(RuntimeFailure, match="its cgroup is gone"):
            sec.engine.exec(cid, ["true"])
    finally:
        monkeypatch.undo()
        sec.engine.rm(cid, force=True)


def test_exec_refuses_a_cgroup_dir_it_cannot_write(sec):
    """The process-side check: a required cgroup dir that cannot be joined fails the
    exec with one line (nothing runs), instead of running outside it."""
    from core.errors import RuntimeFailure
    from core.runtime.start.exec import exec_in

    cid = sec.engine.create(_opts(name="badcg"))
    try:
        sec.engine.start(cid)
        st = sec.engine.container_inspect(cid)["State"]
        from core.runtime.state import Records

        start = Records(sec.engine.paths).state(cid).get("PidStartTime")
        with pytest.raises(RuntimeFailure, match="joining cgroup /nonexistent"):
            exec_in(cid, st["Pid"], start, ["/nonexistent"], ["touch", "/ran"], [], "", "/",
                    0)
        p = sec.cli("exec", cid, "ls", "/ran")
        assert p.returncode != 0  # the command never ran
    finally:
        sec.engine.rm(cid, force=True)


def _opts(**kw):
    from core.runtime.spec import RunOptions

    return RunOptions(image=IMAGE, command=["sleep", "300"], network="none", **kw)
