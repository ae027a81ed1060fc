"""The iptables FORWARD accepts (core/network/iptables.py) against a fake `iptables`.

The fake keeps a filter table in a JSON file, answers ``-S`` the way iptables 1.8 prints
it, applies -N/-X/-A/-I/-D/-P, and logs every call, so the tests see exactly which
commands run: nothing on a host whose FORWARD accepts everything, one ``-S`` when all is
in place, and rules that come and go with their networks.
"""

from __future__ import annotations

import json
import stat
import sys

import pytest

from core.errors import RuntimeFailure
from core.network import iptables

FAKE = r'''#!{python}
import json, shlex, sys
STATE, LOG = {state!r}, {log!r}
args = sys.argv[1:]
while args and args[0] in ("-w", "-t"):
    args = args[2:] if args[0] == "-t" or (len(args) > 1 and args[1].isdigit()) else args[1:]
with open(LOG, "a") as f:
    f.write(shlex.join(args) + "\n")
with open(STATE) as f:
    st = json.load(f)
if st.get("fail") and args and args[0] == st["fail"]:
    sys.exit("iptables: Resource temporarily unavailable.")
chains = st["chains"]
def show(rule):
    return " ".join('"%s"' % a if " " in a else a for a in rule)
op = args[0]
if op == "-S":
    if len(args) > 1:
        if args[1] not in chains:
            sys.exit("iptables: No chain/target/match by that name.")
        names = [args[1]]
    else:
        names = list(chains)
    for c in names:
        if c in st["policies"]:
            print(f"-P {{c}} {{st['policies'][c]}}")
        else:
            print(f"-N {{c}}")
    for c in names:
        for r in chains[c]:
            print(f"-A {{c}} {{show(r)}}")
elif op == "-N":
    if args[1] in chains:
        sys.exit("iptables: Chain already exists.")
    chains[args[1]] = []
elif op == "-X":
    if chains.get(args[1]):
        sys.exit("iptables: Directory not empty.")
    del chains[args[1]]
elif op == "-A":
    chains[args[1]].append(args[2:])
elif op == "-I":
    chains[args[1]].insert(int(args[2]) - 1, args[3:])
elif op == "-D":
    if args[2:] not in chains.get(args[1], []):
        sys.exit("iptables: Bad rule (does a matching rule exist in that chain?).")
    chains[args[1]].remove(args[2:])
elif op == "-P":
    st["policies"][args[1]] = args[2]
with open(STATE, "w") as f:
    json.dump(st, f)
'''

DOCKER = [["-j", "DOCKER-USER"], ["-i", "docker0", "!", "-o", "docker0", "-j", "ACCEPT"]]


class Fake:
    def __init__(self, tmp_path, policy="DROP", forward=None):
        self.state, self.log = tmp_path / "state.json", tmp_path / "log"
        self.log.write_text("")
        self.state.write_text(json.dumps({
            "policies": {"INPUT": "ACCEPT", "FORWARD": policy, "OUTPUT": "ACCEPT"},
            "chains": {"INPUT": [], "FORWARD": list(forward or []), "OUTPUT": [],
                       "DOCKER-USER": [["-j", "RETURN"]]}}))
        self.binary = tmp_path / "iptables-nft"
        self.binary.write_text(FAKE.format(python=sys.executable, state=str(self.state),
                                           log=str(self.log)))
        self.binary.chmod(self.binary.stat().st_mode | stat.S_IXUSR)

    @property
    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()

    def forget(self) -> None:
        self.log.write_text("")

    @property
    def chains(self) -> dict:
        return json.loads(self.state.read_text())["chains"]

    def fail(self, op: str) -> None:
        st = json.loads(self.state.read_text())
        st["fail"] = op
        self.state.write_text(json.dumps(st))


@pytest.fixture
def fake(tmp_path, monkeypatch):
    f = Fake(tmp_path, forward=DOCKER)
    monkeypatch.setattr(iptables, "_binaries", {"nft": str(f.binary), "legacy": None})
    monkeypatch.setattr(iptables, "LOCK_NAME", f"nutshell-iptables-test-{tmp_path.name}.lock")
    return f


NET1 = ("1111111111111111", "nsbr-one", False)
NET2 = ("2222222222222222", "nsbr-two", False)
INNER = ("3333333333333333", "nsbr-in", True)


def test_rules_of_a_network_and_of_an_internal_one():
    c = ["-m", "comment", "--comment", "nutshell n:111111111111"]
    assert iptables.network_rules(*NET1) == [
        ["-i", "nsbr-one", *c, "-j", "ACCEPT"],
        ["-o", "nsbr-one", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", *c,
         "-j", "ACCEPT"],
        ["-o", "nsbr-one", "-m", "conntrack", "--ctstate", "DNAT", *c, "-j", "ACCEPT"],
    ]
    # --internal: only bridged traffic on its own bridge (nft keeps it there)
    assert iptables.network_rules(*INNER) == [
        ["-i", "nsbr-in", "-o", "nsbr-in", "-m", "comment", "--comment",
         "nutshell n:333333333333", "-j", "ACCEPT"]]
    assert iptables.JUMP == ["-m", "comment", "--comment", "nutshell networks",
                             "-j", "NUTSHELL-FORWARD"]


def test_ruleset_reads_iptables_dash_s():
    rs = iptables.Ruleset(
        "-P INPUT ACCEPT\n-P FORWARD DROP\n-N NUTSHELL-FORWARD\n"
        '-A FORWARD -m comment --comment "nutshell networks" -j NUTSHELL-FORWARD\n'
        '-A NUTSHELL-FORWARD -i nsbr-one -m comment --comment "nutshell n:111111111111" '
        "-j ACCEPT\n")
    assert rs.policies["FORWARD"] == "DROP" and rs.forward_can_drop
    assert rs.chains == {"NUTSHELL-FORWARD"}
    assert rs.jumps() == [iptables.JUMP]
    assert rs.tagged("1111111111112222") == [iptables.network_rules(*NET1)[0]]
    assert not iptables.Ruleset("-P FORWARD ACCEPT\n").forward_can_drop
    assert iptables.Ruleset("-P FORWARD ACCEPT\n-A FORWARD -j X\n").forward_can_drop


def test_a_forward_chain_that_accepts_everything_gets_nothing(tmp_path, monkeypatch):
    f = Fake(tmp_path, policy="ACCEPT")
    monkeypatch.setattr(iptables, "_binaries", {"nft": str(f.binary), "legacy": None})
    assert iptables.ensure([NET1]) == []
    assert f.calls == ["-S"]
    assert iptables.remove(NET1[0]) == []
    assert f.calls == ["-S", "-S"]


def test_without_iptables_nothing_runs(monkeypatch):
    monkeypatch.setattr(iptables, "_binaries", {"nft": None, "legacy": None})
    assert iptables.backends() == []
    assert iptables.ensure([NET1]) == [] and iptables.remove(NET1[0]) == []


def test_docker_host_gets_our_chain_first_in_forward_and_then_only_checks(fake):
    assert iptables.ensure([NET1, INNER]) == ["nft"]
    assert fake.calls[0] == fake.calls[1] == "-S"  # look, then look again under the lock
    assert fake.calls[2] == "-N NUTSHELL-FORWARD"
    assert fake.calls[-1] == ("-I FORWARD 1 -m comment --comment 'nutshell networks' "
                              "-j NUTSHELL-FORWARD")
    chains = fake.chains
    assert chains["FORWARD"] == [iptables.JUMP] + DOCKER  # Docker's rules untouched
    assert chains["NUTSHELL-FORWARD"] == iptables.network_rules(*NET1) + \
        iptables.network_rules(*INNER)
    fake.forget()
    assert iptables.ensure([NET1]) == []  # everything in place: one `-S`, no change
    assert fake.calls == ["-S"]


def test_a_lost_jump_or_rule_is_put_back(fake):
    iptables.ensure([NET1])
    st = json.loads(fake.state.read_text())
    st["chains"]["FORWARD"] = list(DOCKER)  # a firewall reload flushed FORWARD
    st["chains"]["NUTSHELL-FORWARD"].pop()  # and someone deleted one rule
    fake.state.write_text(json.dumps(st))
    fake.forget()
    assert iptables.ensure([NET1]) == ["nft"]
    assert fake.chains["FORWARD"][0] == iptables.JUMP
    assert fake.chains["NUTSHELL-FORWARD"] == iptables.network_rules(*NET1)
    assert "-N NUTSHELL-FORWARD" not in fake.calls


def test_rules_leave_with_their_network_and_the_chain_with_the_last(fake):
    iptables.ensure([NET1])
    iptables.ensure([NET2])  # another network (of this root or another one)
    assert iptables.remove(NET1[0]) == ["nft"]
    assert fake.chains["NUTSHELL-FORWARD"] == iptables.network_rules(*NET2)
    assert fake.chains["FORWARD"][0] == iptables.JUMP
    assert iptables.remove(NET1[0]) == []  # idempotent
    assert iptables.remove(NET2[0]) == ["nft"]
    assert "NUTSHELL-FORWARD" not in fake.chains
    assert fake.chains["FORWARD"] == DOCKER
    fake.forget()
    assert iptables.remove(NET2[0]) == [] and fake.calls == ["-S"]


def test_a_failing_iptables_is_one_line_with_a_hint(fake):
    fake.fail("-A")
    with pytest.raises(RuntimeFailure) as e:
        iptables.ensure([NET1])
    assert str(e.value).startswith("iptables-nft: iptables: Resource temporarily")
    assert "\n" not in str(e.value) and e.value.hint


def test_legacy_is_looked_at_only_when_its_filter_table_exists(tmp_path, monkeypatch):
    f = Fake(tmp_path)
    monkeypatch.setattr(iptables, "_binaries", {"nft": None, "legacy": str(f.binary)})
    monkeypatch.setattr(iptables, "_legacy_filter_table", lambda: False)
    assert iptables.backends() == []  # `iptables-legacy -S` would create the table
    monkeypatch.setattr(iptables, "_legacy_filter_table", lambda: True)
    assert [b.name for b in iptables.backends()] == ["legacy"]


def test_plain_iptables_serves_the_backend_its_version_names(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    plain = bin_dir / "iptables"
    plain.write_text("#!/bin/sh\necho 'iptables v1.8.9 (legacy)'\n")
    plain.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(iptables, "_binaries", {})
    assert iptables._binary("legacy") == str(plain)
    assert iptables._binary("nft") is None
