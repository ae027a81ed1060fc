"""rootfs steps on the real kernel, each in a throw-away mount namespace (forked child)."""

from __future__ import annotations

import os
import stat
import traceback

import pytest

from core.runtime import linux
from core.runtime.start import rootfs

pytestmark = pytest.mark.integration


def in_private_mount_ns(fn) -> None:
    """Run ``fn`` in a forked child with its own mount namespace; re-raise its failure."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            linux.unshare(linux.CLONE_NEWNS)
            linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
            fn()
            os.write(w, b"ok")
        except BaseException:  # noqa: BLE001
            os.write(w, traceback.format_exc().encode()[-4000:])
        os._exit(0)
    os.close(w)
    out = b""
    while chunk := os.read(r, 4096):
        out += chunk
    os.close(r)
    os.waitpid(pid, 0)
    assert out == b"ok", out.decode()


def test_overlay_with_many_long_lower_dirs(tmp_path):
    """70 layers with long paths: more than a page of options, so short symlinks are used."""
    base = tmp_path / ("layers-" + "x" * 80)
    lowers = []
    for i in range(70):
        d = base / f"{i:03d}-{'l' * 60}" / "diff"
        d.mkdir(parents=True)
        (d / f"file{i}").write_text(str(i))
        (d / "shared").write_text(str(i))   # the top-most layer must win
        lowers.append(str(d))
    (base / f"{0:03d}-{'l' * 60}" / "diff" / "adir").mkdir()
    c = tmp_path / "c"
    for n in ("upper", "work", "merged"):
        (c / n).mkdir(parents=True)
    assert len(":".join(lowers)) > 4096

    def check():
        rootfs.mount_overlay(lowers, str(c / "upper"), str(c / "work"), str(c / "merged"),
                             str(c / "l"))
        merged = c / "merged"
        assert (merged / "file0").read_text() == "0"
        assert (merged / "file69").read_text() == "69"
        assert (merged / "shared").read_text() == "69"
        (merged / "new").write_text("n")
        os.unlink(merged / "file3")
        os.chmod(merged / "file5", 0o600)          # metacopy=off: a full copy-up
        with pytest.raises(OSError) as e:          # redirect_dir=off: no dir renames
            os.rename(merged / "adir", merged / "bdir")
        assert e.value.errno == 18  # EXDEV

    in_private_mount_ns(check)
    # the change set is in upper alone: a new file and a whiteout (char 0/0)
    assert (c / "upper" / "new").read_text() == "n"
    st = os.lstat(c / "upper" / "file3")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert (base / f"{3:03d}-{'l' * 60}" / "diff" / "file3").exists()
    assert (c / "upper" / "file5").read_text() == "5"
    assert "trusted.overlay.metacopy" not in os.listxattr(c / "upper" / "file5")
    assert len(os.listdir(c / "l")) == 70


def test_mount_targets_cannot_escape_the_root(tmp_path):
    """Symlinks in the image (absolute or ..) are resolved inside the rootfs."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "tmp").mkdir()
    os.symlink("/etc", root / "dev")            # absolute: would be the host's /etc
    os.symlink("../../../../../../tmp", root / "proc")
    marker = "nutshell-escape-test"

    def check():
        rfd = rootfs.open_root(str(root))
        rootfs.mount_in_root(rfd, "dev", "tmpfs", "tmpfs", 0, "size=64k")
        rootfs.mount_in_root(rfd, "proc", "tmpfs", "tmpfs", 0, "size=64k")
        with open(root / "etc" / marker, "w") as f:  # lands on the tmpfs, inside root/etc
            f.write("x")
        assert not os.path.exists(f"/etc/{marker}")
        with open("/proc/self/mountinfo") as f:
            targets = [ln.split()[4] for ln in f]
        assert targets[-2:] == [str(root / "etc"), str(root / "tmp")]
        os.close(rfd)

    in_private_mount_ns(check)
    assert not os.path.exists(root / "etc" / marker)  # it was on the tmpfs, now gone
    assert not os.path.exists(f"/etc/{marker}")


def test_dangling_symlink_target_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    os.symlink("/nowhere/at/all", root / "proc")

    def check():
        rfd = rootfs.open_root(str(root))
        with pytest.raises(FileNotFoundError):
            rootfs.mount_in_root(rfd, "proc", "tmpfs", "tmpfs", 0, "size=64k")
        os.close(rfd)

    in_private_mount_ns(check)
    assert not os.path.exists("/nowhere")


def test_file_targets_are_created_and_must_not_be_dirs(tmp_path):
    root = tmp_path / "root"
    (root / "etc" / "hosts").mkdir(parents=True)   # a directory where a file is expected
    src = tmp_path / "hosts"
    src.write_text("127.0.0.1 localhost\n")

    def check():
        rfd = rootfs.open_root(str(root))
        rootfs.bind_etc_files(rfd, {"etc/resolv.conf": str(src)})
        assert (root / "etc" / "resolv.conf").read_text() == "127.0.0.1 localhost\n"
        with pytest.raises(OSError):
            rootfs.bind_etc_files(rfd, {"etc/hosts": str(src)})
        os.close(rfd)

    in_private_mount_ns(check)
