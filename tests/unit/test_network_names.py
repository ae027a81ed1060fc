"""hosts and resolv.conf rendering, --add-host parsing, in-place rewrites."""

from __future__ import annotations

import os

import pytest

from core.errors import UsageError
from core.network import names


def test_render_hosts_orders_sections_and_dedups_names():
    text = names.render_hosts(
        own=[("10.1.0.2", ["abc123", "web", "web", "www"])],
        peers=[("10.1.0.10", ["db", "database"]), ("10.1.0.3", ["cache"])],
        extra=[("gw", "10.1.0.1")])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "10.1.0.1\tgw" in lines
    assert "10.1.0.2\tabc123 web www" in lines
    # peers sorted by address, numerically
    assert lines.index("10.1.0.3\tcache") < lines.index("10.1.0.10\tdb database")
    assert text.endswith("\n")


def test_parse_add_host():
    assert names.parse_add_host("db:10.0.0.5") == ("db", "10.0.0.5")
    assert names.parse_add_host("db=10.0.0.5") == ("db", "10.0.0.5")
    assert names.parse_add_host("gw:host-gateway") == ("gw", "host-gateway")
    assert names.parse_add_host("v6:[::1]") == ("v6", "::1")
    assert names.parse_add_host("v6=::1") == ("v6", "::1")
    for bad in ("nohost", "x:notanip", ":1.2.3.4"):
        with pytest.raises(UsageError):
            names.parse_add_host(bad)


HOST_RESOLV = """# generated
nameserver 127.0.0.53
nameserver 10.0.0.2
nameserver fd00::1
search corp.example
options edns0 trust-ad
"""


def test_resolv_drops_loopback_and_keeps_search_options():
    text = names.render_resolv(HOST_RESOLV)
    assert "127.0.0.53" not in text
    assert "nameserver 10.0.0.2" in text
    assert "fd00::1" not in text  # IPv4 servers exist; our networks are IPv4
    assert "search corp.example" in text
    assert "options edns0 trust-ad" in text


def test_resolv_only_loopback_leaves_nameservers_out():
    text = names.render_resolv("nameserver 127.0.0.53\nnameserver ::1\n")
    assert "nameserver" not in text.replace("no usable nameserver", "")
    assert text.startswith("#")


def test_resolv_dns_flags_override():
    text = names.render_resolv(HOST_RESOLV, dns=["1.1.1.1"], search=["a.test", "b.test"],
                               options=["ndots:2"])
    assert [l for l in text.splitlines() if l.startswith("nameserver")] == ["nameserver 1.1.1.1"]
    assert "search a.test b.test" in text and "options ndots:2" in text
    with pytest.raises(UsageError):
        names.render_resolv(HOST_RESOLV, dns=["not-an-ip"])


def test_resolv_keep_loopback_for_host_mode():
    assert "nameserver 127.0.0.53" in names.render_resolv(HOST_RESOLV, keep_loopback=True)


def test_write_in_place_keeps_the_inode(tmp_path):
    p = tmp_path / "hosts"
    p.write_text("old content that is longer than the new one\n")
    before = os.stat(p).st_ino
    # a second name for the same inode stands in for the container's bind mount
    os.link(p, tmp_path / "seen-by-container")
    names.write_in_place(str(p), "new\n")
    assert os.stat(p).st_ino == before
    assert (tmp_path / "seen-by-container").read_text() == "new\n"


def test_write_in_place_refuses_symlinks(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("x")
    os.symlink(target, tmp_path / "hosts")
    with pytest.raises(OSError):
        names.write_in_place(str(tmp_path / "hosts"), "evil\n")
    assert target.read_text() == "x"


def test_loopback_check_agrees_with_ipaddress():
    """The dotted-quad fast path (no ipaddress import on a run) answers as ipaddress does."""
    import ipaddress

    from core.network.names import _is_loopback

    cases = ["127.0.0.1", "127.0.0.53", "127.255.255.254", "10.255.255.53", "0.0.0.0",
             "1.2.3.4", "127.000.0.1", "127.0.0.01", "127.1", "127.0.0.256", "1.2.3.999",
             "١٢٧.0.0.1", "127.0.0.1 ", "", "...", "::1", "::ffff:127.0.0.1",
             "fe80::1%eth0", "::", "x.y.z.w"]
    for addr in cases:
        try:
            want = ipaddress.ip_address(addr.split("%")[0]).is_loopback
        except ValueError:
            want = False
        assert _is_loopback(addr) == want, addr
