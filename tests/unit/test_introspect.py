"""Unit tests of the teaching data's parsing and classification (core/runtime/introspect.py)
and of the panes' pure helpers (workbench/format.py, texts.py): no containers."""

from __future__ import annotations

import os
import stat

import pytest

from core.runtime import introspect as I
from workbench import format as F
from workbench.panes import learn_texts as texts

MOUNTINFO = """\
68 43 0:40 / / rw,relatime - overlay overlay rw,lowerdir=layers/aaa/diff:layers/bbb/diff,upperdir=containers/c1/upper,workdir=containers/c1/work,uuid=on
69 68 0:42 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
70 68 0:43 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
"""

ROUTES = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0100580A\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0000580A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
"""


def test_overlay_options_from_mountinfo():
    opts = I.overlay_mount_options(MOUNTINFO)
    assert opts.startswith("rw,lowerdir=layers/aaa/diff:layers/bbb/diff,")
    assert I._split_options(opts)["upperdir"] == "containers/c1/upper"
    assert I.overlay_mount_options("69 68 0:42 / /proc rw - proc proc rw\n") is None
    # octal escapes (a space in a path) are undone
    esc = "1 0 0:1 / / rw - overlay overlay rw,lowerdir=/a\\040b\n"
    assert I.overlay_mount_options(esc) == "rw,lowerdir=/a b"


def test_routes_parse_default_and_link():
    routes = I.parse_routes(ROUTES)
    assert routes == [I.Route("default", "10.88.0.1", "eth0"), I.Route("10.88.0.0/16", "", "eth0")]
    assert I.parse_routes("Iface\n") == []


def test_int_or_none_handles_max_and_v1_unlimited():
    assert I._int_or_none("max") is None
    assert I._int_or_none("9223372036854771712") is None  # v1's page-rounded LONG_MAX
    assert I._int_or_none("67108864\n") == 67108864
    assert I._int_or_none("50000 100000") == 50000
    assert I._int_or_none(None) is None and I._int_or_none("junk") is None


def test_history_by_layer_skips_empty_layers():
    class Img:
        config = {"history": [{"created_by": "ADD a /"}, {"created_by": "ENV X=1", "empty_layer": True},
                              {"created_by": "RUN make"}]}
        layers = [object(), object()]

    assert [h["created_by"] for h in I._history_by_layer(Img())] == ["ADD a /", "RUN make"]
    Img.layers = [object()]  # history and layers disagree: no guessing
    assert I._history_by_layer(Img()) == [{}]


def test_walk_upper_classifies_entries(tmp_path):
    lower = tmp_path / "lower"
    upper = tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("root\n")
    (lower / "home").mkdir()
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "passwd").write_text("root\nnew\n")
    (upper / "etc" / "hosts").write_text("")
    (upper / "newdir").mkdir()
    (upper / "newdir" / "f").write_text("12345")
    whiteout = True
    try:
        os.mknod(upper / "home", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    except PermissionError:
        whiteout = False
    entries, total, nbytes = I._walk_upper(str(upper), [str(lower)], {"/etc/hosts"}, 100)
    kinds = {e.path: (e.kind, e.type) for e in entries}
    assert kinds["/etc"] == ("modified", "dir")
    assert kinds["/etc/passwd"] == ("modified", "file")
    assert kinds["/etc/hosts"] == ("mount-target", "file")
    assert kinds["/newdir"] == ("added", "dir") and kinds["/newdir/f"] == ("added", "file")
    if whiteout:
        assert kinds["/home"] == ("deleted", "whiteout")
    assert nbytes == len("root\nnew\n") + 5
    assert total == len(entries) == (6 if whiteout else 5)
    # the limit bounds the list, never the count
    few, total2, _ = I._walk_upper(str(upper), [str(lower)], set(), 2)
    assert len(few) == 2 and total2 == total


def test_opaque_directory(tmp_path):
    d = tmp_path / "upper" / "opt"
    d.mkdir(parents=True)
    try:
        os.setxattr(d, "trusted.overlay.opaque", b"y")
    except OSError:
        pytest.skip("trusted xattrs need CAP_SYS_ADMIN")
    entries, _, _ = I._walk_upper(str(tmp_path / "upper"), [], set(), 10)
    assert entries[0].kind == "opaque"


def _matrix(shared_user: bool = True, ref: str = "pid 1"):
    rows = [I.NamespaceRow(t, 100 + k, 100 + k if (t == "user" and shared_user) or t == "time" else 200 + k,
                           (t == "user" and shared_user) or t == "time", "host", "", "")
            for k, t in enumerate(I.NAMESPACE_TYPES)]
    return I.NamespaceMatrix("c" * 64, "web", 4000, ref, 1, rows, [(0, 0, 4294967295)], [], [])


def test_namespace_text_tells_what_is_shared():
    text = texts.namespaces(_matrix())
    assert "PID 4000" in text and "6 of the 8 types" in text
    assert "shares time, user with pid 1" in text and "IS root on the host" in text
    userns = texts.namespaces(_matrix(shared_user=False, ref="this process"))
    assert "7 of the 8" in userns and "IS root" not in userns and "hidden from us" in userns
    assert _matrix().new == ["cgroup", "ipc", "mnt", "net", "pid", "uts"]


def test_cgroup_text_names_the_files():
    rows = [I.CgroupRow("memory", "/sys/fs/cgroup/x/memory.max", "67108864", 67108864, None, None,
                        None, "bytes"),
            I.CgroupRow("cpu", "/sys/fs/cgroup/x/cpu.max", "50000 100000", 0.5, None, None, None, "cpus"),
            I.CgroupRow("pids", "/sys/fs/cgroup/x/pids.max", "max", None, None, None, None, "count")]
    c = I.CgroupView("c" * 64, "web", "v2", "nutshell/x", {}, rows, {}, {})
    text = texts.cgroup(c)
    assert "-m became memory.max = 67108864" in text
    assert "--cpus 0.5 became a quota of 50000 µs per period" in text
    assert "pids-limit" not in text


def test_format_helpers():
    assert F.ibytes(None) == "-" and F.ibytes(512) == "512B" and F.ibytes(64 * 1024 * 1024) == "64MiB"
    assert F.ibytes(1536) == "1.5KiB"
    assert F.dbytes(1500) == "1.5kB" and F.dbytes(0) == "0B"
    assert F.pct(None) == "-" and F.pct(12.345, 2) == "12.35%"
    assert F.sparkline([0, 50, 100], 3, top=100) == "▁▅█"
    assert F.sparkline([None, 1], 4) == "   █"
    assert F.bar(0.5, 4) == "██░░" and F.bar(None, 2) == "░░"
    assert F.command("exec", "-it", "my web", args=["sh"]) == "nutshell exec -it 'my web' sh"
    assert F.command("logs", None, "web") == "nutshell logs web"
    rows = F.chart([0, 4, 8, 16], 4, 2, top=16)
    assert rows == ["   █", " ▄██"]  # 16 eighths: 4 -> half a cell, 8 -> one full cell
    assert F.duration(59) == "59s" and F.duration(3600 * 26) == "1d2h"


def test_overlay_text_says_when_layers_are_images():
    from types import SimpleNamespace as NS

    def view(paths):
        return NS(lower=[NS(path=p) for p in paths], entries=[], name="web", entries_total=0,
                  upper_bytes=0, mounted=True)

    as_dirs = texts.overlay(view(["/s/layers/a/diff", "/s/layers/b/diff"]))
    assert "squashfs" not in as_dirs and "read-only directories" in as_dirs
    as_images = texts.overlay(view(["/s/layers/a/layer.sqfs", "/s/layers/b/layer.sqfs"]))
    assert "Each layer is stored as a squashfs image" in as_images and "/proc/self/fd/N" in as_images
    mixed = texts.overlay(view(["/s/layers/a/layer.sqfs", "/s/layers/b/diff"]))
    assert "1 of the 2 layers is stored" in mixed
