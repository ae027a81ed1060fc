"""-p / -P parsing, host port assignment and conflicts, ps/port formatting."""

from __future__ import annotations

import socket

import pytest

from core.errors import Conflict, UsageError
from core.network import ports as P


def test_parse_publish_forms():
    assert P.parse_publish("18080:80") == [
        {"HostIp": "0.0.0.0", "HostPort": 18080, "ContainerPort": 80, "Protocol": "tcp"}]
    assert P.parse_publish("127.0.0.1:9000:90/udp") == [
        {"HostIp": "127.0.0.1", "HostPort": 9000, "ContainerPort": 90, "Protocol": "udp"}]
    assert P.parse_publish("80")[0]["HostPort"] == 0
    assert P.parse_publish("127.0.0.1::80")[0] == {
        "HostIp": "127.0.0.1", "HostPort": 0, "ContainerPort": 80, "Protocol": "tcp"}
    r = P.parse_publish("8000-8002:80-82")
    assert [(p["HostPort"], p["ContainerPort"]) for p in r] == [(8000, 80), (8001, 81), (8002, 82)]


@pytest.mark.parametrize("bad", ["", "0:80", "70000:80", "a:b", "1.2.3:80:80", "80/sctp",
                                 "8000-8001:80", "1:2:3:4", "[::1]:80:80", "90-80:90-80"])
def test_parse_publish_rejects(bad):
    with pytest.raises(UsageError):
        P.parse_publish(bad)


def test_publish_all_uses_exposed_ports():
    got = P.publish_all(["80/tcp", "53/udp", "443"])
    assert [(p["ContainerPort"], p["Protocol"], p["HostPort"]) for p in got] == [
        (80, "tcp", 0), (53, "udp", 0), (443, "tcp", 0)]


def test_assign_picks_ports_and_refuses_conflicts():
    got = P.assign(P.parse_publish("127.0.0.1::80") + P.parse_publish("127.0.0.1::81"), [])
    assert all(p["HostPort"] > 0 for p in got)
    assert got[0]["HostPort"] != got[1]["HostPort"]
    taken = [{"HostIp": "0.0.0.0", "HostPort": 18555, "ContainerPort": 80, "Protocol": "tcp"}]
    with pytest.raises(Conflict):
        P.assign(P.parse_publish("127.0.0.1:18555:80"), taken)
    # another protocol on the same number is fine
    assert P.assign(P.parse_publish("127.0.0.1:18555:80/udp"), taken)[0]["HostPort"] == 18555
    with pytest.raises(Conflict):  # the same port twice in one request
        P.assign(P.parse_publish("18556:80") + P.parse_publish("18556:81"), [])


def test_assign_refuses_a_port_a_host_socket_holds():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        with pytest.raises(Conflict, match="in use"):
            P.assign(P.parse_publish(f"127.0.0.1:{port}:80"), [])
    finally:
        s.close()


def test_format_ports_for_ps_and_port():
    ports = [{"HostIp": "0.0.0.0", "HostPort": 18080, "ContainerPort": 80, "Protocol": "tcp"},
             {"HostIp": "127.0.0.1", "HostPort": 5353, "ContainerPort": 53, "Protocol": "udp"}]
    assert P.format_ports(ports, ["80/tcp", "443/tcp"]) == (
        "127.0.0.1:5353->53/udp, 0.0.0.0:18080->80/tcp, 443/tcp")
    assert P.port_lines(ports) == ["53/udp -> 127.0.0.1:5353", "80/tcp -> 0.0.0.0:18080"]
    assert P.port_lines(ports, "80") == ["0.0.0.0:18080"]
    assert P.port_lines(ports, "80/udp") == []
    assert P.format_ports([]) == ""
