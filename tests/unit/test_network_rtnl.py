"""The netlink messages we build with pyroute2's codecs, decoded back (no kernel needed:
an AF_NETLINK socket can be opened unprivileged, and nothing is sent)."""

from __future__ import annotations

import socket
import struct

from core.network.rtnl import NLM_F_CREATE, NLM_F_EXCL, RTM_NEWLINK, Rtnl


def _decode(r: Rtnl, msg, mtype=RTM_NEWLINK):
    _seq, data = r._encode(msg, mtype, NLM_F_CREATE | NLM_F_EXCL)
    length, t, flags, seq, _pid = struct.unpack_from("=IHHII", data)
    assert length == len(data) and t == mtype and flags & 1
    return r._decode(RTM_NEWLINK, data) if mtype == RTM_NEWLINK else data


def test_veth_with_its_peer_born_in_another_namespace():
    with Rtnl() as r:
        m = _decode(r, r.msg_veth("nsvabc", "eth0", peer_netns_fd=7, master=42, mtu=1400,
                                  peer_mac="02:42:0a:58:00:02"))
    assert m.get_attr("IFLA_IFNAME") == "nsvabc"
    assert m.get_attr("IFLA_MASTER") == 42 and m.get_attr("IFLA_MTU") == 1400
    assert m["flags"] & 1 and m["change"] & 1  # created up
    info = m.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "veth"
    peer = info.get_attr("IFLA_INFO_DATA").get_attr("VETH_INFO_PEER")
    assert peer.get_attr("IFLA_IFNAME") == "eth0"
    assert peer.get_attr("IFLA_NET_NS_FD") == 7
    assert peer.get_attr("IFLA_ADDRESS") == "02:42:0a:58:00:02"


def test_address_and_default_route_messages():
    with Rtnl() as r:
        addr = r.msg_addr(5, "10.88.0.7", 16)
        addr.encode()
        assert addr["family"] == socket.AF_INET and addr["prefixlen"] == 16
        assert dict(addr["attrs"])["IFA_BROADCAST"] == "10.88.255.255"
        assert dict(addr["attrs"])["IFA_LOCAL"] == "10.88.0.7"
        p2p = r.msg_addr(5, "10.0.0.1", 31)
        assert "IFA_BROADCAST" not in dict(p2p["attrs"])
        route = r.msg_default_route("10.88.0.1", 5)
        assert route["dst_len"] == 0 and route["table"] == 254
        assert dict(route["attrs"]) == {"RTA_GATEWAY": "10.88.0.1", "RTA_OIF": 5}


def test_several_requests_go_out_in_one_datagram_with_distinct_sequence_numbers():
    with Rtnl() as r:
        s1, d1 = r._encode(r.msg_link(index=1, up=True), RTM_NEWLINK, 0)
        s2, d2 = r._encode(r.msg_link(index=2, up=True), RTM_NEWLINK, 0)
    assert s2 == (s1 + 1) & 0xFFFFFFFF
    assert struct.unpack_from("=I", d1, 8)[0] == s1
