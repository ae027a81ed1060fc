"""core.store.layertree on layers unpacked by the store's own unpacker from hand-made tars.

(Whiteouts are 0/0 device nodes and opaque dirs trusted.* xattrs: making them needs root.)
"""

from __future__ import annotations

import io
import os
import shutil

import pytest

from core.store import layertree as lt
from core.store.unpack import unpack_layer
from tests.imagebuild import TarBuilder

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts need root (mknod, trusted xattrs)")


def _layer(tmp_path, name: str, tb: TarBuilder) -> str:
    d = tmp_path / name / "diff"
    d.mkdir(parents=True)
    unpack_layer(io.BytesIO(tb.bytes()), str(d))
    return str(d)


@pytest.fixture
def layers(tmp_path):
    lt.SCAN_CACHE.clear()
    l0 = (TarBuilder().dir("bin").dir("etc").dir("usr").dir("usr/lib").dir("var").dir("var/tmp", mode=0o1777)
          .file("etc/passwd", b"p" * 100).file("bin/big", b"B" * 1000)
          .file("bin/a", b"a" * 50).hardlink("bin/b", "bin/a")
          .file("usr/lib/x", b"x" * 10).file("usr/lib/y", b"y" * 20)
          .symlink("bin/sh", "busybox"))
    l1 = (TarBuilder().dir("bin").file("bin/big", b"C" * 500).file("etc/.wh.passwd")
          .dir("usr/lib").file("usr/lib/.wh..wh..opq").file("usr/lib/z", b"z" * 5)
          .dir("opt").file("opt/new", b"n" * 7).file("bin/.wh.a"))
    l2 = (TarBuilder().dir("bin", mode=0o700).file("bin/big", b"D" * 300).file("bin/.wh.b")
          .file("etc/.wh.nothing"))
    return [_layer(tmp_path, "l0", l0), _layer(tmp_path, "l1", l1), _layer(tmp_path, "l2", l2)]


def test_scan_sees_whiteouts_opaque_and_hardlinks(layers):
    e0 = {e.path: e for e in lt.scan_layer(layers[0])}
    assert e0["bin/big"].kind == "file" and e0["bin/big"].size == 1000
    assert e0["bin/sh"].kind == "symlink" and e0["bin/sh"].target == "busybox"
    assert e0["bin/b"].link == "bin/a" and e0["bin/a"].link is None
    assert e0["var/tmp"].mode == 0o1777
    e1 = {e.path: e for e in lt.scan_layer(layers[1])}
    assert e1["etc/passwd"].kind == "whiteout"
    assert e1["usr/lib"].opaque and not e1["bin"].opaque
    # parents come before children
    order = [e.path for e in lt.scan_layer(layers[0])]
    assert order.index("usr") < order.index("usr/lib") < order.index("usr/lib/x")


def test_statuses_per_layer(layers):
    tree = lt.analyze(layers)
    l0, l1, l2 = tree.layers
    assert all(e.status == lt.ADDED for e in l0.entries.values())
    s1 = {p: e.status for p, e in l1.entries.items()}
    assert s1["bin"] == lt.UNCHANGED          # same dir, only holds a changed file
    assert s1["bin/big"] == lt.MODIFIED
    assert s1["etc/passwd"] == lt.DELETED and l1.entries["etc/passwd"].size == 100
    assert s1["usr/lib"] == lt.MODIFIED and l1.entries["usr/lib"].opaque
    assert s1["usr/lib/x"] == lt.DELETED and s1["usr/lib/y"] == lt.DELETED  # hidden by opaque
    assert s1["usr/lib/z"] == lt.ADDED and s1["opt"] == lt.ADDED and s1["opt/new"] == lt.ADDED
    assert s1["bin/a"] == lt.DELETED
    s2 = {p: e.status for p, e in l2.entries.items()}
    assert s2["bin"] == lt.MODIFIED           # mode changed
    assert s2["bin/b"] == lt.DELETED
    assert s2["etc/nothing"] == lt.DELETED and l2.entries["etc/nothing"].size == 0
    assert (l1.added, l1.modified) == (3, 2)
    assert l1.deleted == 4 and l1.deleted_bytes == 100 + 10 + 20 + 50


def test_wasted_space_definition(layers):
    tree = lt.analyze(layers)
    # layer 0: big(1000, overwritten) + passwd(100, deleted) + x(10) + y(20) (opaque)
    #          + the a/b hard-linked version (50) once, only when both names are gone (layer 2)
    # layer 1: big(500, overwritten by layer 2). Layer 2 wastes nothing.
    assert [l.wasted for l in tree.layers] == [1180, 500, 0]
    assert tree.wasted == 1680
    assert [l.size for l in tree.layers] == [1180, 512, 300]   # hard link stored once
    assert tree.total == 1992
    assert tree.wasted_percent == pytest.approx(100 * 1680 / 1992)
    by = {(w.path, w.layer): w for w in tree.wasted_files}
    assert by[("bin/big", 0)].by_layer == 1 and by[("bin/big", 0)].how == "overwritten"
    assert by[("bin/big", 1)].by_layer == 2
    assert by[("usr/lib/x", 0)].how == "opaque"
    assert by[("bin/b", 0)].size == 50 and by[("bin/b", 0)].by_layer == 2
    assert ("bin/a", 0) not in by            # bin/b still showed that version at layer 1
    assert len(tree.wasted_files) == 6
    assert tree.top_wasted(1)[0].size == 1000


def test_no_double_count_when_overwritten_twice(tmp_path):
    lt.SCAN_CACHE.clear()
    dirs = [_layer(tmp_path, f"l{i}", TarBuilder().file("f", bytes([65 + i]) * (10 * (i + 1))))
            for i in range(4)]
    tree = lt.analyze(dirs)
    # versions of 10, 20, 30 bytes are each shadowed once; the last (40) is visible
    assert tree.wasted == 60
    assert [l.wasted for l in tree.layers] == [10, 20, 30, 0]


def test_single_layer_and_empty_image(tmp_path):
    lt.SCAN_CACHE.clear()
    one = lt.analyze([_layer(tmp_path, "l0", TarBuilder().file("a", b"1234"))])
    assert one.wasted == 0 and one.wasted_percent == 0.0 and one.total == 4
    empty = lt.analyze([])
    assert empty.wasted == 0 and empty.wasted_percent == 0.0 and empty.merged == {}


def test_merged_view_and_merged_at(layers):
    tree = lt.analyze(layers)
    m = tree.merged
    assert "etc/passwd" not in m and "bin/a" not in m and "bin/b" not in m
    assert m["bin/big"].size == 300 and m["bin/big"].layer == 2
    assert m["usr/lib/z"].layer == 1 and "usr/lib/x" not in m
    assert m["etc"].layer == 0 and m["bin/sh"].target == "busybox"
    assert tree.merged_size == 300 + 5 + 7
    at1 = tree.merged_at(1)
    assert at1["bin/big"].status == lt.MODIFIED
    assert at1["etc/passwd"].status == lt.DELETED
    assert at1["usr/lib/x"].status == lt.DELETED
    assert at1["usr/lib/z"].status == lt.ADDED
    assert at1["bin/sh"].status == lt.UNCHANGED
    assert at1["bin/b"].status == lt.UNCHANGED
    at0 = tree.merged_at(0)
    assert all(e.status == lt.ADDED for e in at0.values())


def test_tree_helpers(layers):
    tree = lt.analyze(layers)
    kids = lt.children_index(tree.merged)
    assert [e.name for e in kids[""]] == ["bin", "etc", "opt", "usr", "var"]
    assert [e.name for e in kids["bin"]] == ["big", "sh"]
    sizes = lt.subtree_sizes(tree.merged)
    assert sizes[""] == 312 and sizes["usr"] == 5 and sizes["bin"] == 300
    f = lt.filter_entries(tree.merged, "z")
    assert set(f) == {"usr", "usr/lib", "usr/lib/z"}
    assert set(lt.filter_entries(tree.merged, "/bin")) == {"bin", "bin/big", "bin/sh"}
    l1 = tree.layers[1].entries
    assert set(lt.filter_entries(l1, statuses={lt.DELETED})) >= {"etc/passwd", "etc", "usr/lib/x"}
    depth = dict((e.path, d) for d, e in lt.iter_tree(tree.merged))
    assert depth["usr/lib/z"] == 2 and depth["bin"] == 0


def test_diff_two_images(layers, tmp_path):
    a = lt.analyze(layers[:1])
    b = lt.analyze(layers)
    d = {e.path: e for e in lt.diff_trees(a, b)}
    assert d["opt/new"].status == lt.ADDED and d["usr/lib/z"].status == lt.ADDED
    assert d["etc/passwd"].status == "removed" and d["bin/a"].status == "removed"
    assert d["bin/big"].status == lt.MODIFIED and d["bin/big"].detail == "content"
    assert (d["bin/big"].size_a, d["bin/big"].size_b) == (1000, 300)
    assert d["bin"].detail == "mode"
    assert "etc" not in d and "bin/sh" not in d
    # the same files in another layer dir: compared by content, no difference
    copy = str(tmp_path / "copy" / "diff")
    shutil.copytree(layers[0], copy, symlinks=True)
    assert lt.diff_trees(a, lt.analyze([copy])) == []
    # same size, different bytes
    with open(os.path.join(copy, "etc/passwd"), "wb") as f:
        f.write(b"q" * 100)
    lt.SCAN_CACHE.clear()
    changed = lt.diff_trees(a, lt.analyze([copy]))
    assert [(e.path, e.detail) for e in changed] == [("etc/passwd", "content")]


def test_read_file_bounded_and_binary(tmp_path):
    lt.SCAN_CACHE.clear()
    blob = bytes(range(256)) * 8
    d = _layer(tmp_path, "l0", TarBuilder().file("text", "héllo\n".encode() * 1000)
               .file("bin", blob).symlink("link", "text").dir("d"))
    tree = lt.analyze([d])
    fc = lt.read_file(tree, "/text", limit=100)
    assert fc.size == 7000 and len(fc.data) == 100 and fc.truncated and not fc.binary
    assert fc.text().startswith("héllo")
    fb = lt.read_file(tree, "bin")
    assert fb.binary and not fb.truncated
    assert fb.text().splitlines()[0].startswith("00000000  00 01 02")
    assert lt.read_file(tree, "link").text() == "symbolic link -> text"
    assert lt.read_file(tree, "d").kind == "dir"
    from core.errors import NotFound

    with pytest.raises(NotFound):
        lt.read_file(tree, "missing")


def test_read_file_refuses_symlinked_parents(tmp_path):
    d = tmp_path / "evil"
    d.mkdir()
    os.symlink("/etc", d / "etc")
    with pytest.raises(OSError):
        os.close(lt.open_in_layer(str(d), "etc/hostname"))
    with pytest.raises(OSError):
        os.close(lt.open_in_layer(str(d), "../../etc/hostname"))


def test_deleted_file_cannot_be_read(layers):
    tree = lt.analyze(layers)
    from core.errors import NotFound

    with pytest.raises(NotFound, match="deleted in layer 1"):
        lt.read_file(tree, "etc/passwd", layer=1)
    assert lt.read_file(tree, "etc/passwd", layer=0).data == b"p" * 100


def test_analyze_entries_matches_analyze(layers):
    """The entry-list form (used by fakes) gives the same answers as the dir form."""
    from dataclasses import replace

    scans = [[replace(e) for e in lt.scan_layer(d)] for d in layers]
    a = lt.analyze(layers)
    b = lt.analyze_entries(scans, created_by=["x", "y", "z"])
    assert b.wasted == a.wasted and b.total == a.total
    assert {p: (e.status, e.size) for p, e in b.merged.items()} == \
        {p: (e.status, e.size) for p, e in a.merged.items()}
    at1a, at1b = a.merged_at(1), b.merged_at(1)
    assert {p: e.status for p, e in at1a.items()} == {p: e.status for p, e in at1b.items()}
    assert [lc.created_by for lc in b.layers] == ["x", "y", "z"]
