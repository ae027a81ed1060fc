import errno
import os

import pytest

from core.runtime.start import init, process


@pytest.fixture
def fake_db(monkeypatch):
    dbs = {
        "/etc/passwd": [["root", "x", "0", "0", "root", "/root", "/bin/sh"],
                        ["app", "x", "1000", "1000", "", "/home/app", "/bin/sh"]],
        "/etc/group": [["root", "x", "0", ""], ["tty", "x", "5", ""],
                       ["users", "x", "100", "app"], ["app", "x", "1000", ""]],
    }
    monkeypatch.setattr(process, "_read_db", lambda path: dbs.get(path, []))


def test_lookup_user(fake_db):
    assert process.lookup_user("") == (0, 0, [], "/root")
    assert process.lookup_user("app") == (1000, 1000, [1000, 100], "/home/app")
    assert process.lookup_user("1000") == (1000, 1000, [1000, 100], "/home/app")
    assert process.lookup_user("app:tty") == (1000, 5, [5, 100], "/home/app")
    assert process.lookup_user("4242:4343") == (4242, 4343, [4343], "/")
    with pytest.raises(process.InitError, match="unable to find user ghost"):
        process.lookup_user("ghost")
    with pytest.raises(process.InitError, match="unable to find group nogrp"):
        process.lookup_user("app:nogrp")


def test_lookup_command(tmp_path):
    (tmp_path / "exe").write_text("#!/bin/sh\n")
    (tmp_path / "exe").chmod(0o755)
    (tmp_path / "noexec").write_text("x")
    env = [f"PATH=/nonexistent:{tmp_path}"]
    assert process.lookup_command("exe", env) == str(tmp_path / "exe")
    assert process.lookup_command("/abs/thing", env) == "/abs/thing"
    with pytest.raises(process.InitError) as e:
        process.lookup_command("noexec", env)
    assert e.value.code == 127 and "executable file not found in $PATH" in e.value.message


def test_exec_error_codes():
    assert process.exec_error("x", "/x", OSError(errno.ENOENT, "")).code == 127
    assert process.exec_error("x", "/x", OSError(errno.EACCES, "")).code == 126
    assert process.exec_error("x", "/x", OSError(errno.ENOEXEC, "")).code == 126
    assert process.exec_error("x", "/x", OSError(errno.E2BIG, "too big")).code == 125


def test_close_fds_except():
    r, w = os.pipe()
    keep_r, keep_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        process.close_fds_except({keep_w})
        ok = True
        for fd in (r, w, keep_r):
            try:
                os.fstat(fd)
                ok = False
            except OSError:
                pass
        os.write(keep_w, b"1" if ok else b"0")
        os._exit(0)
    os.close(keep_w)
    os.waitpid(pid, 0)
    assert os.read(keep_r, 1) == b"1"
    for fd in (r, w, keep_r):
        os.close(fd)


@pytest.mark.parametrize("said, error", [
    (b"G", None),
    (b"Xaddress 10.0.0.9 is already in use", "address 10.0.0.9 is already in use"),
    (b"", "container start aborted: its starter went away"),  # the starter died
])
def test_the_init_waits_for_the_starters_go(said, error, monkeypatch):
    r, w = os.pipe()
    os.write(w, said)
    os.close(w)
    monkeypatch.setitem(init._go, "fd", r)
    if error is None:
        init.await_go()
    else:
        with pytest.raises(process.InitError, match=error) as e:
            init.await_go()
        assert e.value.code == 125
    assert init._go["fd"] is None
    with pytest.raises(OSError):
        os.fstat(r)  # closed either way
    init.await_go()  # once only: a second call does not read again


def test_a_failing_init_reports_the_starters_abort_not_its_own_error(monkeypatch):
    """An init that failed (e.g. the netns the starter removed while aborting) waits for
    the starter and reports the starter's reason: that is the cause."""
    sync_r, sync_w = os.pipe()
    go_r, go_w = os.pipe()
    os.write(go_w, b"Xno free address left in network web")
    os.close(go_w)

    def boom(spec, sync_fd, stdio):
        raise FileNotFoundError(2, "No such file or directory", "/run/netns/x")

    monkeypatch.setattr(init, "_init", boom)
    monkeypatch.setattr(init.os, "_exit", lambda code: (_ for _ in ()).throw(SystemExit(code)))
    with pytest.raises(SystemExit) as e:
        init.run(None, sync_w, (None, None, None), go_fd=go_r)
    assert e.value.code == 125
    os.close(sync_w)
    assert os.read(sync_r, 4096) == b"E125 no free address left in network web"
    os.close(sync_r)
