"""Network records, lookups and the names of the kernel objects they own."""

from __future__ import annotations

import pytest

from core import paths as paths_mod
from core.errors import NotFound, UsageError
from core.network.store import NetworkStore, new_id, validate_name


def _store(root):
    return NetworkStore(paths_mod.resolve(root))


def test_kernel_names_fit_ifnamsiz_and_are_stable(root):
    s = _store(root)
    nid, cid = new_id(), new_id()
    for name in (s.bridge_name("bridge", nid), s.bridge_name("mynet", nid),
                 s.veth_name(cid, nid)):
        assert len(name) <= 15
    assert s.bridge_name("mynet", nid) == _store(root).bridge_name("mynet", nid)
    assert s.veth_name(cid, nid) != s.veth_name(cid, new_id())
    assert s.bridge_name("bridge", nid).startswith("nsbr-")  # not the default root
    assert s.nft_table.startswith("nutshell_")


def test_default_root_gets_the_friendly_names():
    s = NetworkStore(paths_mod.Paths(root="/var/lib/nutshell", run="/run/nutshell/x",
                                     config="/tmp"))
    assert s.bridge_name("bridge", new_id()) == "nutshell0"
    assert s.bridge_name("other", new_id()).startswith("nsbr-")
    assert s.nft_table == "nutshell"


def test_find_by_name_id_and_prefix(root):
    s = _store(root)
    a = {"Name": "alpha", "Id": "ab" + new_id()[2:], "Endpoints": {}}
    b = {"Name": "beta", "Id": "ac" + new_id()[2:], "Endpoints": {}}
    s.save(a)
    s.save(b)
    assert s.find("alpha")["Id"] == a["Id"]
    assert s.find(a["Id"])["Name"] == "alpha"
    assert s.find(b["Id"][:6])["Name"] == "beta"
    with pytest.raises(UsageError):
        s.find("a")  # ambiguous prefix
    with pytest.raises(NotFound):
        s.find("gamma")
    with pytest.raises(NotFound):
        s.find("../etc/passwd")
    assert [n["Name"] for n in s.all()] == ["alpha", "beta"]


def test_container_records(root):
    s = _store(root)
    cid = new_id()
    s.save_container({"Id": cid, "Name": "web"})
    assert s.find_container("web")["Id"] == cid
    assert s.find_container(cid[:10])["Id"] == cid
    s.remove_container(cid)
    s.remove_container(cid)  # idempotent
    with pytest.raises(NotFound):
        s.find_container("web")


@pytest.mark.parametrize("bad", ["", "-x", "a/b", "host", "none", "a b", "x" * 200])
def test_validate_name_rejects(bad):
    with pytest.raises(UsageError):
        validate_name(bad)


def test_validate_name_accepts():
    validate_name("my-net_1.test")
