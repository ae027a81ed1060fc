import pytest

from core.errors import UsageError
from core.runtime import caps


def test_docker_default_mask():
    assert caps.mask(caps.resolve()) == 0xA80425FB
    assert len(caps.DOCKER_DEFAULT) == 14


def test_add_and_drop_names_are_normalised():
    got = caps.resolve(cap_add=["net_admin", "CAP_SYS_PTRACE"], cap_drop=["cap_chown", "Kill"])
    assert "NET_ADMIN" in got and "SYS_PTRACE" in got
    assert "CHOWN" not in got and "KILL" not in got
    assert caps.mask(got) == (0xA80425FB | 1 << 12 | 1 << 19) & ~(1 << 0) & ~(1 << 5)


def test_all_rules_follow_moby():
    every = caps.resolve(cap_add=["ALL"])
    assert len(every) == caps.last_cap() + 1
    assert "SYS_ADMIN" not in caps.resolve(cap_add=["ALL"], cap_drop=["SYS_ADMIN"])
    assert caps.resolve(cap_drop=["ALL"]) == []
    assert caps.resolve(cap_drop=["ALL"], cap_add=["chown", "CHOWN"]) == ["CHOWN"]
    # an explicit add wins over a drop of the same default cap (adds come last)
    assert "CHOWN" in caps.resolve(cap_add=["CHOWN"], cap_drop=["CHOWN"])


def test_unknown_capability_is_a_usage_error():
    with pytest.raises(UsageError, match='unknown capability: "CAP_BOGUS"'):
        caps.resolve(cap_add=["bogus"])


def test_names_roundtrip():
    assert caps.names_of(caps.mask(["KILL", "SETFCAP"])) == ["KILL", "SETFCAP"]
