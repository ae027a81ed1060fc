"""The nft scripts we generate, and removal by owner tag, against a fake `nft`.

The fake records every script it is fed and answers `-j -a list table` from a canned
listing, so the tests check exactly which rules are added and which handles deleted.
"""

from __future__ import annotations

import json
import stat

import pytest

from core.errors import RuntimeFailure
from core.network import nat

FAKE = """#!/bin/sh
if [ "$1" = "-f" ]; then cat >> "{log}"; echo "---" >> "{log}"; exit 0; fi
if [ "$1" = "-j" ]; then cat "{listing}"; exit 0; fi
exit 1
"""


@pytest.fixture
def fake_nft(tmp_path):
    log, listing = tmp_path / "log", tmp_path / "listing.json"
    listing.write_text(json.dumps({"nftables": [
        {"metainfo": {}},
        {"table": {"family": "ip", "name": "t"}},
        {"rule": {"family": "ip", "table": "t", "chain": "prerouting", "handle": 7,
                  "comment": "c:aaaaaaaaaaaa", "expr": []}},
        {"rule": {"family": "ip", "table": "t", "chain": "output", "handle": 8,
                  "comment": "c:aaaaaaaaaaaa", "expr": []}},
        {"rule": {"family": "ip", "table": "t", "chain": "output", "handle": 9,
                  "comment": "c:bbbbbbbbbbbb", "expr": []}},
        {"rule": {"family": "ip", "table": "t", "chain": "postrouting", "handle": 3,
                  "expr": []}},
    ]}))
    script = tmp_path / "nft"
    script.write_text(FAKE.format(log=log, listing=listing))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    n = nat.Nft("t")
    n.binary = str(script)
    return n, log


def test_network_rules_for_a_normal_network(fake_nft):
    n, log = fake_nft
    n.add_network("1234567890abcdef", "nsbr-x", "10.88.0.0/16", internal=False)
    text = log.read_text()
    assert "add table ip t" in text
    for chain, _ in nat.CHAINS:
        assert f"add chain ip t {chain} " in text
    assert 'ip saddr 10.88.0.0/16 oifname != "nsbr-x" masquerade comment "n:1234567890ab"' in text
    assert 'iifname "nsbr-x" ip daddr 127.0.0.0/8 drop' in text
    assert 'oifname "nsbr-x" ip saddr 127.0.0.0/8 masquerade' in text
    # isolation, stage 1: what leaves or enters this bridge from another interface
    assert ('add rule ip t forward iifname "nsbr-x" oifname != "nsbr-x" jump isolation '
            'comment "n:1234567890ab"') in text
    assert ('add rule ip t forward oifname "nsbr-x" iifname != "nsbr-x" jump isolation '
            'comment "n:1234567890ab"') in text
    forward = [l for l in text.splitlines() if l.startswith("add rule ip t forward")]
    assert len(forward) == 2 and not [l for l in forward if " drop " in l]  # not fenced in


def test_isolation_chain_is_rewritten_atomically_with_the_table(fake_nft):
    n, log = fake_nft
    n.add_network("1234567890abcdef", "nsbr-x", "10.88.0.0/16", internal=False)
    n.add_ports("a" * 64, "10.88.0.5", [
        {"HostIp": "0.0.0.0", "HostPort": 1, "ContainerPort": 1, "Protocol": "tcp"}])
    scripts = log.read_text().split("---\n")[:-1]
    assert len(scripts) == 2
    stage2 = [
        "add chain ip t isolation",
        "flush chain ip t isolation",
        "add rule ip t isolation ct status dnat return",
        'add rule ip t isolation iifname { "nsbr-*", "nutshell0" } '
        'oifname { "nsbr-*", "nutshell0" } drop',
        'add rule ip t isolation iifname { "docker0", "br-*" } meta iifkind "bridge" drop',
        'add rule ip t isolation oifname { "docker0", "br-*" } meta oifkind "bridge" drop',
    ]
    for script in scripts:  # every batch that may create the table carries stage 2 whole
        lines = script.splitlines()
        i = lines.index(stage2[0])
        assert lines[i:i + len(stage2)] == stage2
        assert not [l for l in lines if " isolation " in l and "comment" in l
                    and l.startswith("add rule ip t isolation")]


def test_our_bridge_names_match_the_isolation_prefixes(tmp_path):
    """Every bridge a state root makes must fall under OUR_BRIDGES, or isolation
    would not recognise it from another root's table."""
    import fnmatch

    from core.network.store import NetworkStore

    class P:
        def __init__(self, root):
            self.root = root
            self.networks = str(tmp_path / "n")

    names = [NetworkStore(P(r)).bridge_name(n, "ab" * 32)
             for r in ("/var/lib/nutshell", str(tmp_path)) for n in ("bridge", "web")]
    assert "nutshell0" in names
    for name in names:
        assert any(fnmatch.fnmatch(name, pat) for pat in nat.OUR_BRIDGES), name
        assert not any(fnmatch.fnmatch(name, pat) for pat in nat.DOCKER_BRIDGES), name


def test_internal_network_is_isolated_and_not_masqueraded(fake_nft):
    n, log = fake_nft
    n.add_network("1234567890abcdef", "nsbr-i", "10.99.0.0/24", internal=True)
    text = log.read_text()
    assert "ip saddr 10.99.0.0/24" not in text
    assert 'forward iifname "nsbr-i" oifname != "nsbr-i" drop' in text
    assert 'forward oifname "nsbr-i" iifname != "nsbr-i" drop' in text
    assert "jump isolation" not in text  # its own fence is stricter


def test_port_rules_any_address_and_one_address(fake_nft):
    n, log = fake_nft
    n.add_ports("a" * 64, "10.88.0.5", [
        {"HostIp": "0.0.0.0", "HostPort": 18080, "ContainerPort": 80, "Protocol": "tcp"},
        {"HostIp": "127.0.0.1", "HostPort": 5353, "ContainerPort": 53, "Protocol": "udp"}])
    text = log.read_text()
    for chain in ("prerouting", "output"):
        assert (f"add rule ip t {chain} fib daddr type local tcp dport 18080 "
                f'dnat to 10.88.0.5:80 comment "c:aaaaaaaaaaaa"') in text
        assert (f"add rule ip t {chain} ip daddr 127.0.0.1 udp dport 5353 "
                f'dnat to 10.88.0.5:53 comment "c:aaaaaaaaaaaa"') in text


def test_delete_tagged_deletes_exactly_the_owners_rules(fake_nft):
    n, log = fake_nft
    assert n.delete_tagged(nat.container_tag("a" * 64)) == 2
    text = log.read_text()
    assert "delete rule ip t prerouting handle 7" in text
    assert "delete rule ip t output handle 8" in text
    assert "handle 9" not in text and "handle 3" not in text
    assert n.delete_tagged("c:nothing") == 0


def test_without_nft_the_message_is_clear():
    n = nat.Nft("t")
    n.binary = None
    assert not n.available
    with pytest.raises(RuntimeFailure, match="nft not found"):
        n.add_ports("a" * 64, "10.0.0.2", [{"HostIp": "0.0.0.0", "HostPort": 1,
                                            "ContainerPort": 1, "Protocol": "tcp"}])
    assert n.listing() == [] and n.delete_tagged("x") == 0
