"""The shim, for real, with a fake init (no namespaces, no root needed).

The test forks a child that forks the "init" (a plain ``sh``, or Python code that
reports an error) and then execs ``python -I -S shim.py`` exactly as boot.py does, so
the shim is the init's parent; the init hands the shim its part of the start over the
sync socket first (boot.hand_over), as the real one does. We then speak the attach
protocol to it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

from core.runtime.attach import AttachClient
from core.runtime.start import boot, launch
from core.runtime.start.initspec import InitSpec
from core.runtime.start.shim import dumps, jstr, rfc3339, rmtree


class FakeContainer:
    def __init__(self, tmp_path, script: str | None = None, tty: bool = False,
                 stdin: bool = False, rm: bool = False, error: tuple[int, str] | None = None,
                 oom: bool = False):
        self.cid = "f" * 64
        self.cdir = tmp_path / "c"
        self.run = tmp_path / "run"
        self.cg = tmp_path / "cg"
        for d in (self.cdir, self.run, self.cg):
            d.mkdir()
        (self.cg / "memory.events").write_text(f"low 0\noom_kill {1 if oom else 0}\n")
        self.cg_leaf = self.cg / "leaf"
        self.cg_leaf.mkdir()
        listen = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listen.bind(str(self.run / "attach.sock"))
        listen.listen(8)
        sync_shim, sync_init = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ready_r, ready_w = os.pipe()
        client_end, shim_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe()
        spec = InitSpec(args=["sh"], env=[], cid=self.cid, container_dir=str(self.cdir),
                        run_dir=str(self.run), tty=tty, stdin_open=stdin, auto_remove=rm,
                        cgroups_required=[str(self.cg_leaf)], memory_cgroup=str(self.cg),
                        state_root=str(tmp_path))
        fds = {"ready": ready_w, "listen": listen.fileno(), "attach": shim_end.fileno()}
        if not tty:
            fds.update(out=out_r, err=err_r, **({"in": in_w} if stdin else {}))
        request = {"spec": spec.to_wire(), "pkg": launch.PKG_ROOT}
        pid = os.fork()
        if pid == 0:
            try:
                init = os.fork()
                if init == 0:
                    boot.hand_over(sync_init.fileno(), request, fds)
                    if error:
                        os.write(sync_init.fileno(), b"E%d %s" % (error[0], error[1].encode()))
                        os._exit(error[0])
                    if tty:
                        master, slave = os.openpty()
                        socket.send_fds(sync_init, [b"P"], [master])
                        os.close(master)
                        os.setsid()
                        import fcntl
                        import termios

                        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
                        for i in (0, 1, 2):
                            os.dup2(slave, i)
                    else:
                        os.dup2(in_r if stdin else os.open(os.devnull, os.O_RDONLY), 0)
                        os.dup2(out_w, 1)
                        os.dup2(err_w, 2)
                    os.execv("/bin/sh", ["sh", "-c", script])
                os.dup2(sync_shim.fileno(), 0)
                os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", launch.SHIM_BOOT,
                                          f"init={init}", boot.ID_PLACEHOLDER])
            finally:
                os._exit(99)
        self.shim_pid = pid
        for fd in (ready_w, out_w, err_w, in_r, out_r, err_r, in_w):
            os.close(fd)
        for s in (sync_init, sync_shim, listen, shim_end):
            s.close()
        self.ready_r = ready_r
        self.client = AttachClient(client_end)

    def ready(self) -> str:
        data = b""
        while True:
            b = os.read(self.ready_r, 4096)
            if not b:
                break
            data += b
        return data.decode()

    def collect(self) -> tuple[bytes, bytes, int | None]:
        out, err = b"", b""
        while True:
            item = self.client.read()
            if item is None:
                break
            kind, data = item
            if kind == 1:
                out += data
            elif kind == 2:
                err += data
            elif kind == 3:
                break
        return out, err, self.client.exit_code

    def finish(self) -> int:
        _pid, status = os.waitpid(self.shim_pid, 0)
        os.close(self.ready_r)
        self.client.close()
        return status

    def state(self) -> dict:
        with open(self.cdir / "state.json") as f:
            return json.load(f)

    def log(self) -> list[dict]:
        with open(self.cdir / f"{self.cid}-json.log") as f:
            return [json.loads(line) for line in f]


def test_pipes_log_state_and_exit_code(tmp_path):
    fc = FakeContainer(tmp_path, "echo out1; echo err1 >&2; printf 'partial'; exit 3")
    assert fc.client.hello == {"tty": False, "stdin": False, "rows": 24, "cols": 80}
    assert fc.ready().startswith("ok ")
    out, err, code = fc.collect()
    assert (out, err, code) == (b"out1\npartial", b"err1\n", 3)
    assert fc.finish() == 0
    st = fc.state()
    assert st["Status"] == "exited" and st["ExitCode"] == 3 and st["Running"] is False
    assert st["OOMKilled"] is False and st["FinishedAt"].endswith("Z")
    log = fc.log()
    assert {(e["stream"], e["log"]) for e in log} == {("stdout", "out1\n"), ("stderr", "err1\n"),
                                                      ("stdout", "partial")}
    assert not fc.cg_leaf.exists()            # the cgroup is removed
    assert not fc.run.exists()                # so is the runtime dir


def test_stdin_many_clients_and_close_stdin(tmp_path):
    fc = FakeContainer(tmp_path, "read a; echo got $a; cat; echo eof", stdin=True)
    assert fc.ready().startswith("ok ")
    second = AttachClient.connect(str(fc.run / "attach.sock"))
    assert second.hello["stdin"] is True
    fc.client.write(b"hello\n")
    assert fc.client.read() == (1, b"got hello\n")
    assert second.read() == (1, b"got hello\n")
    second.write(b"from-second\n")
    assert fc.client.read() == (1, b"from-second\n")
    fc.client.close_stdin()
    out, _err, code = fc.collect()
    assert out == b"eof\n" and code == 0
    assert second.wait() == 0
    second.close()
    fc.finish()


def test_exec_error_is_reported_and_recorded(tmp_path):
    fc = FakeContainer(tmp_path, error=(127, 'exec: "nope": executable file not found in $PATH'))
    assert fc.ready() == 'err 127 exec: "nope": executable file not found in $PATH\n'
    _out, _err, code = fc.collect()
    assert code == 127
    fc.finish()
    st = fc.state()
    assert st["Status"] == "created" and st["ExitCode"] == 127 and "nope" in st["Error"]


def test_auto_remove_and_oom(tmp_path):
    fc = FakeContainer(tmp_path, "kill -9 $$", rm=True, oom=True)
    assert fc.ready().startswith("ok ")
    assert fc.collect()[2] == 137
    fc.finish()
    assert not fc.cdir.exists()


def test_oom_recorded(tmp_path):
    fc = FakeContainer(tmp_path, "exit 0", oom=True)
    fc.ready()
    fc.collect()
    fc.finish()
    assert fc.state()["OOMKilled"] is True


def test_tty_master_resize_and_input(tmp_path):
    fc = FakeContainer(tmp_path, "read line; stty size; echo line=$line", tty=True, stdin=True)
    assert fc.ready().startswith("ok ")
    assert fc.client.hello["tty"] is True
    fc.client.resize(33, 77)
    time.sleep(0.2)
    fc.client.write(b"typed\r")
    out, _err, code = fc.collect()
    assert code == 0
    assert b"33 77" in out and b"line=typed" in out
    fc.finish()
    assert any("line=typed" in e["log"] for e in fc.log())


def test_detach_leaves_container_running(tmp_path):
    fc = FakeContainer(tmp_path, "sleep 0.5; echo late")
    fc.ready()
    fc.client.close()                       # detach: the shim keeps going
    time.sleep(0.1)
    again = AttachClient.connect(str(fc.run / "attach.sock"))
    out = b""
    while True:
        item = again.read()
        if item is None or item[0] == 3:
            break
        out += item[1]
    assert out == b"late\n" and again.exit_code == 0
    again.close()
    os.waitpid(fc.shim_pid, 0)
    os.close(fc.ready_r)


def test_helpers():
    assert dumps({"a": [1, True, None, "x\"\n\u00e9"], "b": 1.5}) == \
        '{"a": [1, true, null, "x\\"\\n\u00e9"], "b": 1.5}'
    assert json.loads(jstr("\x01\t\\")) == "\x01\t\\"
    t = rfc3339(1_700_000_000_123_456_789)
    assert t == "2023-11-14T22:13:20.123456789Z"


def test_rmtree(tmp_path):
    d = tmp_path / "t"
    (d / "a" / "b").mkdir(parents=True)
    (d / "a" / "f").write_text("x")
    os.symlink("/etc", d / "link")
    rmtree(str(d))
    assert not d.exists() and os.path.exists("/etc/passwd")


def test_shim_imports_only_small_modules():
    """The shim's memory is the point: no json/enum/socket.py/re at import time. (shim.py's
    own imports: the real shim also holds what boot.py's C loaded before it became the
    shim, bounded by test_runtime_robustness's idle-shim memory test.)"""
    import subprocess

    # without arguments main() fails at once, after the imports -X importtime lists
    proc = subprocess.run([sys.executable, "-I", "-S", "-X", "importtime", launch.SHIM],
                          capture_output=True, text=True)
    mods = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}
    assert "_socket" in mods and "select" in mods
    for heavy in ("json", "enum", "socket", "re", "selectors", "subprocess", "ctypes",
                  "signal", "collections", "core"):
        assert heavy not in mods, sorted(mods)


def test_the_shim_puts_its_containers_id_on_its_command_line(tmp_path):
    """It starts before the id is known (boot.ID_PLACEHOLDER); ps must still show whose
    shim it is, and tests/runtime_root.py finds leftover shims that way."""
    fc = FakeContainer(tmp_path, "sleep 0.2")
    assert fc.ready().startswith("ok ")
    with open(f"/proc/{fc.shim_pid}/cmdline", "rb") as f:
        args = f.read().split(b"\0")
    assert f"id={fc.cid}".encode() in args
    assert boot.ID_PLACEHOLDER.encode() not in args
    assert fc.collect()[2] == 0
    assert fc.finish() == 0


def test_a_shim_whose_start_never_comes_reaps_its_init_and_exits(tmp_path):
    """A prepared start whose caller went away: the init reads end of file and exits
    without handing anything over; the shim must not wait forever, nor leave a zombie."""
    sync_shim, sync_init = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            init = os.fork()
            if init == 0:
                os._exit(0)
            os.dup2(sync_shim.fileno(), 0)
            os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", launch.SHIM_BOOT,
                                      f"init={init}", boot.ID_PLACEHOLDER])
        finally:
            os._exit(99)
    sync_shim.close()
    sync_init.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, 9)
        raise AssertionError("the shim did not exit")
    assert os.waitstatus_to_exitcode(status) == 0
    assert not os.listdir(tmp_path)      # it created nothing
