"""diff of an upper dir against image layers, on hand-made directories (no mounts).

Whiteouts (0/0 char devices) and the overlay opaque xattr need root, as overlay does."""

from __future__ import annotations

import os

import pytest

from core.fs.diff import KIND_ADDED as A
from core.fs.diff import KIND_DELETED as D
from core.fs.diff import KIND_MODIFIED as C
from core.fs.diff import LowerView, change_exclusions, upper_changes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts and trusted.* xattrs need root")


def mk(root: str, files: dict[str, str | None]) -> str:
    """files: path -> content, None for a directory, "<wh>" for a whiteout, "@t" symlink."""
    os.makedirs(root, exist_ok=True)
    for path, content in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if content is None:
            os.makedirs(full, exist_ok=True)
        elif content == "<wh>":
            os.mknod(full, 0o20000, os.makedev(0, 0))
        elif content.startswith("@"):
            os.symlink(content[1:], full)
        else:
            with open(full, "w") as f:
                f.write(content)
    return root


def opaque(path: str) -> None:
    os.setxattr(path, "trusted.overlay.opaque", b"y")


def kinds(changes) -> dict[str, int]:
    return {c["Path"]: c["Kind"] for c in changes}


@pytest.fixture
def layers(tmp_path):
    base = mk(str(tmp_path / "l0"), {"etc/passwd": "root", "etc/group": "g", "bin/sh": "sh",
                                     "bin/vi": "vi", "opt/app/a": "1", "opt/app/b": "2",
                                     "opt/app/sub/c": "3", "srv/": None})
    top = mk(str(tmp_path / "l1"), {"opt/app/b": "<wh>", "usr/lib/x": "x"})
    return [base, top]


def test_add_change_delete_and_parents(tmp_path, layers):
    upper = mk(str(tmp_path / "upper"), {"new": "n", "etc/passwd": "root2", "bin/vi": "<wh>",
                                         "usr/lib/y": "y", "srv/deep/er/f": "f"})
    got = kinds(upper_changes(upper, layers))
    assert got == {"/new": A, "/etc": C, "/etc/passwd": C, "/bin": C, "/bin/vi": D,
                   "/usr": C, "/usr/lib": C, "/usr/lib/y": A, "/srv": C, "/srv/deep": A,
                   "/srv/deep/er": A, "/srv/deep/er/f": A}
    assert [c["Path"] for c in upper_changes(upper, layers)] == sorted(got)


def test_whiteout_of_something_already_deleted_below_is_not_a_change(tmp_path, layers):
    # opt/app/b was removed by layer 1: a whiteout for it in upper deletes nothing
    upper = mk(str(tmp_path / "upper"), {"opt/app/b": "<wh>", "nothere": "<wh>"})
    assert upper_changes(upper, layers) == []


def test_opaque_directory_deletes_what_the_lower_one_had(tmp_path, layers):
    upper = mk(str(tmp_path / "upper"), {"opt/app/a": "new a", "opt/app/z": "z"})
    opaque(os.path.join(upper, "opt/app"))
    got = kinds(upper_changes(upper, layers))
    # b is already gone below (layer-1 whiteout): only sub is deleted; a replaced (C)
    assert got == {"/opt": C, "/opt/app": C, "/opt/app/a": C, "/opt/app/sub": D, "/opt/app/z": A}


def test_copied_up_directory_alone_is_not_a_change(tmp_path, layers):
    upper = mk(str(tmp_path / "upper"), {"etc/": None})
    base_etc = os.stat(os.path.join(layers[0], "etc"))
    os.chmod(os.path.join(upper, "etc"), base_etc.st_mode & 0o7777)
    assert upper_changes(upper, layers) == []
    os.chmod(os.path.join(upper, "etc"), 0o700)
    assert kinds(upper_changes(upper, layers)) == {"/etc": C}


def test_file_replaced_by_directory_and_back(tmp_path, layers):
    upper = mk(str(tmp_path / "upper"), {"etc/passwd/inner": "i", "srv": "now a file"})
    got = kinds(upper_changes(upper, layers))
    assert got == {"/etc": C, "/etc/passwd": C, "/etc/passwd/inner": A, "/srv": C}


def test_lower_view_follows_overlay_rules(tmp_path):
    l0 = mk(str(tmp_path / "l0"), {"d/a": "a", "d/b": "b", "x/y": "y", "f": "file"})
    l1 = mk(str(tmp_path / "l1"), {"d/c": "c", "x": "<wh>", "f/": None, "f/g": "g"})
    opaque(os.path.join(l1, "f"))
    l2 = mk(str(tmp_path / "l2"), {"d/a": "<wh>"})
    lv = LowerView([l0, l1, l2])
    assert lv.children("d") == {"b", "c"}
    assert lv.lookup("d/a") is None and lv.lookup("d/b") is not None
    assert lv.lookup("x") is None and lv.lookup("x/y") is None
    assert lv.lookup("f/g") is not None and lv.children("f") == {"g"}
    assert lv.lookup("nope/x") is None


def test_exclusions_keep_a_created_parent_with_user_content(tmp_path, layers):
    cdir = tmp_path / "c"
    upper = mk(str(cdir / "upper"), {"proc/": None, "etc/hosts": "", "mnt/vol/": None,
                                     "newdir/target": "", "newdir/mine": "m",
                                     "data/inside": "hidden by the volume"})
    (cdir / "mountpoints").write_text("proc\netc/hosts\nnewdir\nnewdir/target\n")
    cfg = {"Mounts": [{"Type": "volume", "Destination": "/data"}]}
    ex = change_exclusions(str(cdir), cfg)
    assert ex == {"proc", "etc/hosts", "newdir/target", "data"}
    got = kinds(upper_changes(upper, layers, ex))
    assert got == {"/mnt": A, "/mnt/vol": A, "/newdir": A, "/newdir/mine": A}
