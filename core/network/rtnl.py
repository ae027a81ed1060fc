"""Links, addresses and routes over rtnetlink, with pyroute2's message codecs.

pyroute2 encodes and decodes the messages (``ifinfmsg``, ``ifaddrmsg``, ``rtmsg``); the
socket is ours: a plain ``AF_NETLINK`` socket, opened inside a container's network
namespace by entering it with the calling thread (see netns.entered). That keeps the
cost to what the work needs:

* no ``import pyroute2`` (all of it, ~320 ms CPU here): only the three codec modules,
  loaded through core.network._pyroute2 (~30 ms);
* no helper process per namespace (pyroute2's NetNS forks one);
* several requests in one ``send`` and their ACKs read back together, so the whole
  in-container set-up (lo up, eth0 up, address, default route) is one round trip.

Errors come back as OSError with the kernel's errno and, when the kernel gives one, its
extended-ack message.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from typing import Any

from . import netns
from ._pyroute2 import rtnl_messages

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_ACK_TLVS = 0x200  # in an NLMSG_ERROR reply: extended ack attributes follow
NLMSG_ERROR, NLMSG_DONE = 2, 3

SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NLMSGERR_ATTR_MSG = 1

IFF_UP = 0x1
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RTN_UNICAST = 1
RT_SCOPE_UNIVERSE = 0
_HDR = struct.Struct("=IHHII")


class Rtnl:
    """One rtnetlink socket, in the calling process's namespace or in ``netns_path``."""

    def __init__(self, netns_path: str | None = None):
        self._ifinfmsg, self._ifaddrmsg, self._rtmsg = rtnl_messages()
        with netns.entered(netns_path):
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                      0)  # NETLINK_ROUTE
        try:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        except OSError:
            pass
        self.sock.bind((0, 0))
        self.seq = int.from_bytes(os.urandom(2), "little")
        self.netns_path = netns_path

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- transport -------------------------------------------------------------------
    def _encode(self, msg, mtype: int, flags: int) -> tuple[int, bytes]:
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        msg["header"]["type"] = mtype
        msg["header"]["flags"] = flags | NLM_F_REQUEST
        msg["header"]["sequence_number"] = self.seq
        msg["header"]["pid"] = 0
        msg.encode()
        return self.seq, bytes(msg.data)

    def transact(self, requests: list[tuple[Any, int, int]]) -> list[list]:
        """Send ``(msg, type, flags)`` requests in one datagram; return each one's replies.

        Every request is acknowledged (or dumped to NLMSG_DONE). The first failure raises
        OSError after all replies were read, so the socket stays usable.
        """
        seqs: list[int] = []
        chunks: list[bytes] = []
        for msg, mtype, flags in requests:
            if not flags & NLM_F_DUMP == NLM_F_DUMP:
                flags |= NLM_F_ACK
            seq, data = self._encode(msg, mtype, flags)
            seqs.append(seq)
            chunks.append(data)
        self.sock.send(b"".join(chunks))
        pending = set(seqs)
        replies: dict[int, list] = {s: [] for s in seqs}
        failure: OSError | None = None
        while pending:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + 16 <= len(data):
                length, mtype, flags, seq, _pid = _HDR.unpack_from(data, offset)
                if length < 16:
                    break
                if seq in pending:
                    if mtype == NLMSG_ERROR:
                        code = struct.unpack_from("=i", data, offset + 16)[0]
                        pending.discard(seq)
                        if code and failure is None:
                            failure = _error(-code, data[offset:offset + length], flags,
                                             requests[seqs.index(seq)][1])
                    elif mtype == NLMSG_DONE:
                        pending.discard(seq)
                    else:
                        replies[seq].append(self._decode(mtype, data[offset:offset + length]))
                offset += (length + 3) & ~3
        if failure is not None:
            raise failure
        return [replies[s] for s in seqs]

    def request(self, msg, mtype: int, flags: int = 0) -> list:
        return self.transact([(msg, mtype, flags)])[0]

    def _decode(self, mtype: int, data: bytes):
        cls = {RTM_NEWLINK: self._ifinfmsg, RTM_NEWADDR: self._ifaddrmsg,
               RTM_NEWROUTE: self._rtmsg}.get(mtype)
        if cls is None:
            return None
        msg = cls(data)
        msg.decode()
        return msg

    # --- message builders (also used to batch several operations) -------------------
    def msg_link(self, index: int = 0, name: str | None = None, up: bool | None = None,
                 **attrs):
        msg = self._ifinfmsg()
        msg["family"] = socket.AF_UNSPEC
        msg["index"] = index
        if up is not None:
            msg["flags"] = IFF_UP if up else 0
            msg["change"] = IFF_UP
        nla = []
        if name:
            nla.append(("IFLA_IFNAME", name))
        for key, value in attrs.items():
            if value is not None:
                nla.append((key, value))
        msg["attrs"] = nla
        return msg

    def msg_addr(self, index: int, address: str, prefixlen: int):
        net = ipaddress.IPv4Network(f"{address}/{prefixlen}", strict=False)
        msg = self._ifaddrmsg()
        msg["family"] = socket.AF_INET
        msg["prefixlen"] = prefixlen
        msg["index"] = index
        nla = [("IFA_LOCAL", address), ("IFA_ADDRESS", address)]
        if prefixlen < 31:
            nla.append(("IFA_BROADCAST", str(net.broadcast_address)))
        msg["attrs"] = nla
        return msg

    def msg_default_route(self, gateway: str, oif: int):
        msg = self._rtmsg()
        msg["family"] = socket.AF_INET
        msg["dst_len"] = 0
        msg["table"] = RT_TABLE_MAIN
        msg["proto"] = RTPROT_BOOT
        msg["scope"] = RT_SCOPE_UNIVERSE
        msg["type"] = RTN_UNICAST
        msg["attrs"] = [("RTA_GATEWAY", gateway), ("RTA_OIF", oif)]
        return msg

    # --- links -------------------------------------------------------------------------
    def link(self, name: str) -> dict | None:
        """The link called ``name``, or None."""
        try:
            replies = self.request(self.msg_link(name=name), RTM_GETLINK)
        except OSError as e:
            if e.errno in (errno.ENODEV, errno.ENOENT):
                return None
            raise
        return link_info(replies[0]) if replies else None

    def _dump(self, msg, mtype: int, family: int = socket.AF_INET) -> list:
        """The decoded replies to a dump request (``mtype``) of ``family``."""
        msg["family"] = family
        return [m for m in self.request(msg, mtype, NLM_F_DUMP) if m is not None]

    def links(self) -> list[dict]:
        return [link_info(m) for m in self._dump(self.msg_link(), RTM_GETLINK, socket.AF_UNSPEC)]

    def add_bridge(self, name: str, mac: str | None = None, mtu: int | None = None) -> None:
        msg = self.msg_link(name=name, up=True, IFLA_ADDRESS=mac, IFLA_MTU=mtu,
                            IFLA_LINKINFO={"attrs": [("IFLA_INFO_KIND", "bridge")]})
        self.request(msg, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL)

    def msg_veth(self, name: str, peer: str, peer_netns_fd: int | None = None,
                 master: int | None = None, mtu: int | None = None,
                 peer_mac: str | None = None):
        peer_attrs: list[tuple[str, str | int]] = [("IFLA_IFNAME", peer)]
        if peer_netns_fd is not None:
            peer_attrs.append(("IFLA_NET_NS_FD", peer_netns_fd))
        if mtu:
            peer_attrs.append(("IFLA_MTU", mtu))
        if peer_mac:
            peer_attrs.append(("IFLA_ADDRESS", peer_mac))
        linkinfo = {"attrs": [
            ("IFLA_INFO_KIND", "veth"),
            ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", {"attrs": peer_attrs})]}),
        ]}
        return self.msg_link(name=name, up=True, IFLA_MASTER=master, IFLA_MTU=mtu,
                             IFLA_LINKINFO=linkinfo)

    def add_veth(self, name: str, peer: str, peer_netns_fd: int | None = None,
                 master: int | None = None, mtu: int | None = None,
                 peer_mac: str | None = None) -> None:
        """A veth pair: ``name`` here (up, enslaved to ``master``), ``peer`` created
        directly inside the namespace ``peer_netns_fd`` under its final name."""
        self.request(self.msg_veth(name, peer, peer_netns_fd, master, mtu, peer_mac),
                     RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL)

    def set_link(self, index: int, up: bool | None = None, mtu: int | None = None,
                 master: int | None = None) -> None:
        self.request(self.msg_link(index=index, up=up, IFLA_MTU=mtu, IFLA_MASTER=master),
                     RTM_NEWLINK)

    def delete_link(self, name: str) -> bool:
        """Delete the link ``name``; False when there was none."""
        try:
            self.request(self.msg_link(name=name), RTM_DELLINK)
        except OSError as e:
            if e.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True

    # --- addresses and routes ----------------------------------------------------------
    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        self.request(self.msg_addr(index, address, prefixlen), RTM_NEWADDR,
                     NLM_F_CREATE | NLM_F_EXCL)

    def addresses(self) -> list[dict]:
        return [{"index": m["index"], "prefixlen": m["prefixlen"],
                 "address": m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS"),
                 "label": m.get_attr("IFA_LABEL")}
                for m in self._dump(self._ifaddrmsg(), RTM_GETADDR)]

    def routes(self) -> list[dict]:
        """Every IPv4 route of every table: destination, prefix length, table, oif."""
        return [{"dst": m.get_attr("RTA_DST") or "0.0.0.0", "dst_len": m["dst_len"],
                 "table": m.get_attr("RTA_TABLE") or m["table"],
                 "gateway": m.get_attr("RTA_GATEWAY"), "oif": m.get_attr("RTA_OIF"),
                 "type": m["type"]}
                for m in self._dump(self._rtmsg(), RTM_GETROUTE)]


def link_info(m) -> dict:
    info = m.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    stats = m.get_attr("IFLA_STATS64")
    counters = {}
    if stats is not None:
        for key in ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors",
                    "tx_errors", "rx_dropped", "tx_dropped"):
            counters[key] = stats.get(key, 0)
    return {"index": m["index"], "name": m.get_attr("IFLA_IFNAME"), "kind": kind,
            "up": bool(m["flags"] & IFF_UP), "master": m.get_attr("IFLA_MASTER"),
            "mtu": m.get_attr("IFLA_MTU"), "mac": m.get_attr("IFLA_ADDRESS"),
            "link_netnsid": m.get_attr("IFLA_LINK_NETNSID"), "stats": counters}


def _error(code: int, raw: bytes, flags: int, mtype: int) -> OSError:
    text = os.strerror(code)
    if flags & NLM_F_ACK_TLVS:
        # nlmsgerr: error(4) + the original header (16, capped) then attributes
        offset = 16 + 4 + 16
        while offset + 4 <= len(raw):
            alen, atype = struct.unpack_from("=HH", raw, offset)
            if alen < 4:
                break
            if atype & 0x3FFF == NLMSGERR_ATTR_MSG:
                extra = raw[offset + 4:offset + alen].split(b"\0", 1)[0].decode(errors="replace")
                if extra:
                    text = f"{text} ({extra})"
                break
            offset += (alen + 3) & ~3
    what = {RTM_NEWLINK: "link", RTM_DELLINK: "delete link", RTM_NEWADDR: "address",
            RTM_NEWROUTE: "route"}.get(mtype, "netlink")
    return OSError(code, f"{what}: {text}")
