"""The state root, our top-level dirs and the runtime dir are the owner's only
(core/paths.py): created 0700 whatever the umask, an old or user-given root made private
on first use without touching anything that is not ours, one stat when already private.

Whether other users are really kept out (exec, open, list as ``nobody``) is checked in
tests/integration/test_store_permissions.py; these tests check the mechanism."""

from __future__ import annotations

import os
import stat

import pytest

from core import paths as P
from core.errors import StoreError


def _mode(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _paths(root: str, run: str | None = None) -> P.Paths:
    return P.Paths(root=root, run=run or root + "-run", config=root + "-cfg")


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_a_new_root_is_private_whatever_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        p = _paths(str(tmp_path / "a" / "root"))
        P.ensure_root(p)
        P.private_dir(os.path.join(p.root, "layers"))
    finally:
        os.umask(old)
    assert _mode(p.root) == 0o700
    assert _mode(os.path.join(p.root, "layers")) == 0o700
    # the parents we had to create are ordinary directories, not made private
    assert _mode(str(tmp_path / "a")) == 0o777 & ~umask


def test_a_private_root_costs_one_stat_and_no_chmod(tmp_path, monkeypatch):
    p = _paths(str(tmp_path / "root"))
    P.ensure_root(p)
    calls = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda *a, **k: calls.append(a) or real_stat(*a, **k))
    monkeypatch.setattr(os, "chmod", lambda *a, **k: pytest.fail(f"chmod {a}"))
    monkeypatch.setattr(os, "open", lambda *a, **k: pytest.fail(f"open {a}"))
    P.ensure_root(p)
    assert calls == [(p.root,)]


def test_an_old_root_is_migrated_ours_only(tmp_path):
    root = tmp_path / "root"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    for name in P.OWN_DIRS:
        (root / name).mkdir()
        os.chmod(root / name, 0o755)
    (root / "blobs" / "sha256").mkdir()
    os.chmod(root / "blobs" / "sha256", 0o755)
    (root / "empty-layer").mkdir()                   # an image root: keeps its mode
    os.chmod(root / "empty-layer", 0o755)
    (root / "mine").mkdir()                          # the user's: untouched
    os.chmod(root / "mine", 0o751)
    (root / "notes.txt").write_text("x")
    os.chmod(root / "notes.txt", 0o644)
    P.ensure_root(_paths(str(root)))
    assert _mode(str(root)) == 0o700
    for name in P.OWN_DIRS:
        assert _mode(str(root / name)) == 0o700, name
    assert _mode(str(root / "blobs" / "sha256")) == 0o755   # under a private blobs/
    assert _mode(str(root / "empty-layer")) == 0o755
    assert _mode(str(root / "mine")) == 0o751
    assert _mode(str(root / "notes.txt")) == 0o644


def test_migration_never_follows_a_symlink(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    os.chmod(root, 0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.chmod(elsewhere, 0o755)
    (root / "tmp").symlink_to(elsewhere)
    P.ensure_root(_paths(str(root)))
    assert _mode(str(root)) == 0o700
    assert _mode(str(elsewhere)) == 0o755


def test_the_root_is_fixed_last(tmp_path, monkeypatch):
    """An interrupted migration leaves the root as it was, so the next command redoes it."""
    root = tmp_path / "root"
    root.mkdir()
    os.chmod(root, 0o755)
    (root / "layers").mkdir()
    os.chmod(root / "layers", 0o755)
    real = os.chmod

    def chmod(path, mode, *a, **k):
        if path == str(root):
            raise KeyboardInterrupt
        return real(path, mode, *a, **k)

    monkeypatch.setattr(os, "chmod", chmod)
    with pytest.raises(KeyboardInterrupt):
        P.ensure_root(_paths(str(root)))
    assert _mode(str(root)) == 0o755
    assert _mode(str(root / "layers")) == 0o700
    monkeypatch.setattr(os, "chmod", real)
    P.ensure_root(_paths(str(root)))
    assert _mode(str(root)) == 0o700


@pytest.mark.parametrize("mode", [0o1777, 0o777])
def test_a_world_writable_root_is_refused_untouched(tmp_path, mode):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, mode)
    with pytest.raises(StoreError) as err:
        P.ensure_root(_paths(str(shared)))
    assert str(err.value) == (f"refusing to use {shared} as the state root: it is shared with "
                              "other users (world-writable or /)")
    assert _mode(str(shared)) == mode


def test_a_root_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(StoreError, match="is not a directory"):
        P.ensure_root(_paths(str(f)))


def test_the_runtime_dir_is_private(tmp_path):
    p = _paths(str(tmp_path / "root"), run=str(tmp_path / "run" / "x"))
    P.ensure_run_dir(p)
    assert _mode(p.run) == 0o700
    os.chmod(p.run, 0o755)                  # made by an older version
    P.ensure_run_dir(p)
    assert _mode(p.run) == 0o700
    os.chmod(p.run, 0o1777)
    with pytest.raises(StoreError, match="as the runtime directory"):
        P.ensure_run_dir(p)
    assert _mode(p.run) == 0o1777


def test_an_uncreatable_runtime_dir_is_left_to_its_user(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    p = _paths(str(tmp_path / "root"), run=str(blocker / "run"))
    P.ensure_run_dir(p)                      # no error: the runtime reports its own
    assert not os.path.exists(p.run)


def test_the_default_runtime_base_is_made_private(tmp_path, monkeypatch):
    base = tmp_path / "run-base"
    monkeypatch.setattr(P, "_runtime_base", lambda: str(base))
    monkeypatch.delenv("NUTSHELL_RUNTIME_DIR", raising=False)
    p = P.resolve(str(tmp_path / "root"))
    assert os.path.dirname(p.run) == str(base)
    P.ensure_run_dir(p)
    assert _mode(p.run) == 0o700 and _mode(str(base)) == 0o700
