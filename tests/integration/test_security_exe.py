"""A container can never reach the host's interpreter through /proc/self/exe
(CVE-2019-5736 class): the attack by every route, as an image would try it.

The image ships what the host's Python needs to start (tests/pyimage.py: its dynamic
loader, libraries and a few standard modules, copied from the host) and runs code in a process whose
executable *is* whatever the container's init or exec'd process was before execve:

* entrypoint ``/proc/self/exe`` (``run``);
* ``/bin/evil`` -> ``/proc/self/exe`` (``run --entrypoint`` and ``exec``);
* a script ``#!/proc/self/exe -S`` (``run --entrypoint`` and ``exec``);
* ``/proc/<pid>/exe`` of every process it can see, in a loop, while execs start.

The same image shows ``--security-opt no-new-privileges`` at work: a setuid-root copy of
Python gives euid 0 to a non-root user, unless no_new_privs is set.

The code then tries chmod u+s, chown, setxattr and writes through /proc/self/exe. To be
safe even if the seal ever broke, the CLI under test runs from a private *copy* of the
interpreter (the copy is what would be sealed, and what an attack would change); the
test checks the copy's mode, owner, xattrs and hash are unchanged, and that the attack
code really ran (so it cannot pass because Python failed to start).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import time

import pytest

from tests.pyimage import PYTHONHOME, make_python_rootfs

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ATTACK = """
import os
print("ran", flush=True)
def chmod(): os.chmod("/proc/self/exe", 0o4755)
def chown(): os.chown("/proc/self/exe", 1, 1)
def setxattr(): os.setxattr("/proc/self/exe", "user.evil", b"1")
def write(): open("/proc/self/exe", "r+b").close()
def truncate(): os.truncate("/proc/self/exe", 0)
for fn in (chmod, chown, setxattr, write, truncate):
    try:
        fn()
        print(fn.__name__, "ok", flush=True)
    except OSError as e:
        print(fn.__name__, e.errno, flush=True)
"""


def fingerprint(path: str) -> tuple:
    st = os.stat(path)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return (st.st_mode, st.st_uid, st.st_gid, sorted(os.listxattr(path)), digest)


class Attack:
    def __init__(self, tmp: str, busybox_rootfs: str):
        self.tmp = tmp
        self.root = os.path.join(tmp, "root")
        os.mkdir(self.root)
        # the interpreter the CLI runs from: a private copy (see the module docstring)
        src = os.path.realpath(sys.executable)
        self.python = os.path.join(tmp, "interp", os.path.basename(src))
        os.mkdir(os.path.dirname(self.python))
        shutil.copy2(src, self.python)
        self.before = fingerprint(self.python)
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [REPO, sysconfig.get_paths()["purelib"]]))
        self.image = "evil/pyexe:latest"
        self._build_image(busybox_rootfs)

    def _build_image(self, busybox_rootfs: str) -> None:
        rootfs = make_python_rootfs(os.path.join(self.tmp, "rootfs"), busybox_rootfs,
                                    self.python)
        suid = os.path.join(rootfs, "bin", "suid-python")
        shutil.copy2(self.python, suid)
        os.chown(suid, 0, 0)
        os.chmod(suid, 0o4755)
        os.symlink("/proc/self/exe", os.path.join(rootfs, "bin", "evil"))
        with open(os.path.join(rootfs, "bin", "evil.py"), "w") as f:
            f.write("#!/proc/self/exe -S\n" + ATTACK)
        os.chmod(os.path.join(rootfs, "bin", "evil.py"), 0o755)
        self.cli("import",
                 "-c", f"ENV PYTHONHOME={PYTHONHOME}",
                 "-c", 'ENTRYPOINT ["/proc/self/exe", "-S", "-c", %s]'
                 % ATTACK.replace("\n", "\\n").replace('"', '\\"').join('""'),
                 rootfs, self.image, check=True)

    def cli(self, *args: str, check: bool = False, timeout: float = 60):
        p = subprocess.run([self.python, "-m", "workbench", "--root", self.root, *args],
                           capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"nutshell {args} -> {p.returncode}: {p.stderr}")
        return p

    def outcome(self, p: subprocess.CompletedProcess) -> dict[str, str]:
        lines = p.stdout.split("\n")
        assert "ran" in lines, f"the attack did not run: {p.returncode} {p.stdout!r} {p.stderr!r}"
        return dict(line.split(" ", 1) for line in lines if " " in line)


@pytest.fixture(scope="module")
def attack(tmp_path_factory, busybox_rootfs):
    a = Attack(str(tmp_path_factory.mktemp("exe-attack")), busybox_rootfs)
    yield a
    a.cli("rm", "-f", "exe-target")


def check_refused(attack: Attack, results: dict[str, str]) -> None:
    assert fingerprint(attack.python) == attack.before, "the host interpreter was changed"
    ro, busy = str(errno.EROFS), str(errno.ETXTBSY)
    assert results["chmod"] == ro and results["chown"] == ro and results["setxattr"] == ro
    assert results["write"] in (ro, busy) and results["truncate"] in (ro, busy)


@pytest.mark.parametrize("seccomp", ["builtin", "unconfined"])
def test_entrypoint_proc_self_exe(attack, seccomp):
    """The seal holds on its own: with or without seccomp (which allows chmod anyway)."""
    p = attack.cli("run", "--rm", "--network", "none", "--security-opt", f"seccomp={seccomp}",
                   attack.image)
    check_refused(attack, attack.outcome(p))


def test_symlink_to_proc_self_exe_through_run(attack):
    p = attack.cli("run", "--rm", "--network", "none", "--entrypoint", "/bin/evil",
                   attack.image, "-S", "-c", ATTACK)
    check_refused(attack, attack.outcome(p))


def test_shebang_proc_self_exe_through_run(attack):
    p = attack.cli("run", "--rm", "--network", "none", "--entrypoint", "/bin/evil.py",
                   attack.image)
    check_refused(attack, attack.outcome(p))


def test_symlink_and_shebang_through_exec(attack):
    attack.cli("run", "-d", "--name", "exe-target", "--network", "none", "--entrypoint",
               "sleep", attack.image, "300", check=True)
    try:
        p = attack.cli("exec", "exe-target", "/bin/evil", "-S", "-c", ATTACK)
        check_refused(attack, attack.outcome(p))
        p = attack.cli("exec", "exe-target", "/bin/evil.py")
        check_refused(attack, attack.outcome(p))
        p = attack.cli("exec", "-t", "exe-target", "/bin/evil.py")
        check_refused(attack, attack.outcome(
            subprocess.CompletedProcess(p.args, p.returncode, p.stdout.replace("\r", ""),
                                        p.stderr)))
    finally:
        attack.cli("rm", "-f", "exe-target")


def test_proc_pid_exe_of_starting_execs(attack):
    """A process in the container chmods /proc/<pid>/exe of everything it sees, in a
    loop, while execs start: an exec'd process is not dumpable and is a child of the
    sealed interpreter until it execs, so nothing of the host is ever reached."""
    loop = ('while true; do for p in /proc/[0-9]*; do '
            'chmod 4755 "$p/exe" 2>/dev/null; chown 1:1 "$p/exe" 2>/dev/null; done; done')
    attack.cli("run", "-d", "--name", "exe-target", "--network", "none", "--entrypoint",
               "sh", attack.image, "-c", loop, check=True)
    try:
        deadline = time.monotonic() + 60
        for _ in range(15):
            assert attack.cli("exec", "exe-target", "true").returncode == 0
            if time.monotonic() > deadline:
                break
        assert fingerprint(attack.python) == attack.before
    finally:
        attack.cli("rm", "-f", "exe-target")


EUID = "import os; print('euid', os.geteuid(), flush=True)"


def test_no_new_privileges_makes_setuid_give_nothing(attack):
    base = ("run", "--rm", "--network", "none", "--user", "1000:1000",
            "--entrypoint", "/bin/suid-python")
    p = attack.cli(*base, attack.image, "-S", "-c", EUID)
    assert "euid 0" in p.stdout, p.stderr          # the setuid bit works by default...
    p = attack.cli(*base[:2], "--security-opt", "no-new-privileges", *base[2:], attack.image,
                   "-S", "-c", EUID)
    assert "euid 1000" in p.stdout, p.stderr       # ...and gives nothing with no_new_privs
    attack.cli("run", "-d", "--name", "nnp-target", "--network", "none", "--security-opt",
               "no-new-privileges=true", "--entrypoint", "sleep", attack.image, "300",
               check=True)
    try:
        p = attack.cli("exec", "-u", "1000:1000", "nnp-target", "/bin/suid-python", "-S",
                       "-c", EUID)
        assert "euid 1000" in p.stdout, p.stderr   # exec'd processes inherit the setting
        p = attack.cli("exec", "nnp-target", "grep", "NoNewPrivs", "/proc/self/status")
        assert p.stdout.split() == ["NoNewPrivs:", "1"]
    finally:
        attack.cli("rm", "-f", "nnp-target")
