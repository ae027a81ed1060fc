"""Volume store and mount parsing without containers (configs are written by hand)."""

from __future__ import annotations

import json
import os

import pytest

from core.errors import Conflict, NotFound, UsageError
from core.paths import resolve
from core.volumes.mounts import parse_all, parse_mount, parse_tmpfs, parse_volume
from core.volumes.store import Volumes


def test_parse_volume_forms():
    assert parse_volume("data:/srv") == {"Type": "volume", "Name": "data", "Destination": "/srv",
                                         "RW": True, "Mode": "", "NoCopy": False, "Propagation": ""}
    v = parse_volume("data:/srv/:ro,nocopy")
    assert v["Destination"] == "/srv" and v["RW"] is False and v["NoCopy"] is True
    b = parse_volume("/host/dir:/in:ro")
    assert b["Type"] == "bind" and b["Source"] == "/host/dir" and not b["RW"] and b["CreateSource"]
    a = parse_volume("/anon")
    assert a["Type"] == "volume" and a["Name"] is None and a["Anonymous"]
    assert parse_volume("/anon:ro")["RW"] is False
    for bad in ("./rel:/x", "data:rel", "data:/", "a:/b:bogus", "a:b:c:d", "x:/y:ro,rw"):
        with pytest.raises(UsageError):
            parse_volume(bad)


def test_parse_mount_and_tmpfs():
    m = parse_mount("type=bind,source=/h,target=/c,readonly")
    assert (m["Type"], m["Source"], m["Destination"], m["RW"], m["CreateSource"]) == \
        ("bind", "/h", "/c", False, False)
    v = parse_mount("type=volume,src=vol,dst=/d,volume-nocopy=true")
    assert v["Name"] == "vol" and v["NoCopy"] and v["RW"]
    assert parse_mount("target=/anon")["Anonymous"]
    t = parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770")
    assert t["Options"] == "noexec,nosuid,nodev,size=1048576,mode=1770"
    assert parse_tmpfs("/run:exec,size=64k")["Options"] == "nosuid,nodev,size=64k"
    assert parse_tmpfs("/ro:ro")["RW"] is False
    for bad in ("type=bind,target=/c", "type=bind,source=rel,target=/c", "type=nfs,target=/x",
                "type=volume,src=v", "type=tmpfs,source=x,target=/t", "type=bind,src=/a,dst=/b,foo=1"):
        with pytest.raises(UsageError):
            parse_mount(bad)
    with pytest.raises(UsageError, match="Duplicate mount point"):
        parse_all(["ab:/x"], ["type=tmpfs,target=/x/"], [])


@pytest.fixture
def vols(tmp_path):
    return Volumes(resolve(str(tmp_path / "root")))


def use(vols: Volumes, cid: str, *names: str) -> None:
    d = os.path.join(vols.paths.containers, cid)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"Mounts": [{"Type": "volume", "Name": n} for n in names]}, f)


def test_create_list_inspect_remove(vols):
    v = vols.create("data", labels={"team": "a"})
    assert v["Name"] == "data" and v["Driver"] == "local" and v["Labels"] == {"team": "a"}
    assert os.path.isdir(v["Mountpoint"]) and v["Mountpoint"].endswith("volumes/data/_data")
    assert vols.create("data")["CreatedAt"] == v["CreatedAt"]          # idempotent, like Docker
    anon = vols.create()["Name"]
    assert len(anon) == 64 and vols.anonymous(anon)
    assert [x["Name"] for x in vols.list()] == sorted(["data", anon])
    assert [x["Name"] for x in vols.list({"label": "team=a"})] == ["data"]
    with pytest.raises(UsageError):
        vols.create("../escape")
    with pytest.raises(NotFound):
        vols.inspect("nope")
    with pytest.raises(NotFound):
        vols.inspect("sha256:abc")          # not a volume name: not found, not an error
    use(vols, "c1", "data")
    with pytest.raises(Conflict, match="in use - \\[c1\\]"):
        vols.remove("data")
    assert [x["Name"] for x in vols.list({"dangling": "true"})] == [anon]
    os.remove(os.path.join(vols.paths.containers, "c1", "config.json"))
    vols.remove("data")
    assert not vols.exists("data")
    with pytest.raises(NotFound):
        vols.remove("data")
    vols.remove("data", force=True)


def test_prune_keeps_used_and_named(vols):
    vols.create("named")
    a, b = vols.create()["Name"], vols.create()["Name"]
    with open(os.path.join(vols.data(a), "f"), "wb") as f:
        f.write(b"x" * 1000)
    use(vols, "c2", b)
    res = vols.prune()
    assert res == {"VolumesDeleted": [a], "SpaceReclaimed": 1000}
    res = vols.prune(all=True)
    assert res["VolumesDeleted"] == ["named"] and vols.exists(b)
    assert vols.remove_unused([b]) == []
