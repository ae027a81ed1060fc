"""Docker's events from real containers, images, networks and volumes: what the CLI, the
Engine and the containers' shims write to the journal (core/journal.py), read back by
``Engine.events`` and ``nutshell events``."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from tests.runtime_root import IMAGE
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def _events(engine, since, **filters):
    f = [f"{k}={v}" for k, vs in filters.items() for v in (vs if isinstance(vs, list) else [vs])]
    return list(engine.events(since=since, filters=f, follow=False))


def _actions(evs):
    return [e["Action"] for e in evs]


def test_container_lifecycle_in_order_with_attributes(rt):
    t0 = time.time()
    name = f"ev-{os.urandom(3).hex()}"
    p = rt.run("--name", name, "--label", "team=blue", IMAGE, "sh", "-c", "exit 3")
    assert p.returncode == 3, p.stderr
    cid = rt.engine.container(name)
    rt.cli("rm", name, check=True)
    evs = _events(rt.engine, t0, container=cid)
    assert _actions(evs) == ["create", "attach", "start", "die", "destroy"]
    for e in evs:
        assert e["Type"] == "container" and e["Actor"]["ID"] == cid
        attrs = e["Actor"]["Attributes"]
        assert attrs["name"] == name and attrs["image"] == IMAGE and attrs["team"] == "blue"
        assert e["status"] == e["Action"] and e["id"] == cid and e["from"] == IMAGE
    assert evs[3]["Actor"]["Attributes"]["exitCode"] == "3"
    times = [e["timeNano"] for e in evs]
    assert times == sorted(times)
    # filters by name and label find the same events
    assert _actions(_events(rt.engine, t0, container=name, event=["start", "die"])) == \
        ["start", "die"]
    assert len(_events(rt.engine, t0, label="team=blue")) == 5


def test_stop_kill_pause_rename_restart_and_rm_f(rt):
    t0 = time.time()
    name = f"ev-{os.urandom(3).hex()}"
    cid = rt.run("-d", "--name", name, IMAGE, "sleep", "300", check=True).stdout.strip()
    rt.engine.pause(cid)
    rt.engine.unpause(cid)
    rt.engine.rename(cid, name + "-b")
    rt.engine.stop(cid, timeout=0)
    rt.engine.restart(cid, timeout=0)
    rt.engine.kill(cid, "USR1")
    rt.engine.rm(cid, force=True)
    evs = _events(rt.engine, t0, container=cid)
    assert _actions(evs) == [
        "create", "start", "pause", "unpause", "rename",
        "kill", "die", "stop",                                   # stop -t 0
        "start", "restart",                                      # restart of a stopped one
        "kill",                                                  # kill -s USR1: no die
        "kill", "die", "destroy"]                                # rm -f
    by = {(e["Action"], i): e["Actor"]["Attributes"] for i, e in enumerate(evs)}
    assert by[("rename", 4)]["oldName"] == "/" + name and by[("rename", 4)]["name"] == name + "-b"
    assert by[("kill", 5)]["signal"] == "9" and by[("die", 6)]["exitCode"] == "137"
    assert by[("kill", 10)]["signal"] == "10"


def test_auto_remove_and_restart_policy_come_from_the_shim(rt):
    t0 = time.time()
    cid = rt.run("-d", "--rm", IMAGE, "true", check=True).stdout.strip()
    wait_for(lambda: "destroy" in _actions(_events(rt.engine, t0, container=cid)), timeout=20)
    assert _actions(_events(rt.engine, t0, container=cid)) == ["create", "start", "die",
                                                               "destroy"]
    name = f"ev-{os.urandom(3).hex()}"
    cid = rt.run("-d", "--name", name, "--restart", "on-failure:1", IMAGE, "sh", "-c", "exit 1",
                 check=True).stdout.strip()
    wait_for(lambda: _actions(_events(rt.engine, t0, container=cid)).count("die") == 2,
             timeout=30)
    evs = _events(rt.engine, t0, container=cid)
    assert _actions(evs) == ["create", "start", "die", "start", "die"]
    assert [e["Actor"]["Attributes"].get("exitCode") for e in evs if e["Action"] == "die"] == \
        ["1", "1"]
    rt.engine.rm(cid, force=True)


def test_exec_and_commit(rt):
    t0 = time.time()
    cid = rt.run("-d", IMAGE, "sleep", "300", check=True).stdout.strip()
    rt.cli("exec", cid, "true", check=True)
    img = rt.engine.commit(cid, "ev-commit:1", message="snap")
    evs = _events(rt.engine, t0, container=cid)
    assert _actions(evs)[2:] == ["exec_create: true", "exec_start: true", "commit"]
    assert _events(rt.engine, t0, container=cid, event="exec_start")[0]["Action"] == \
        "exec_start: true"
    attrs = evs[-1]["Actor"]["Attributes"]
    assert attrs["imageID"] == img.id and attrs["imageRef"] == "ev-commit:1"
    assert attrs["comment"] == "snap"
    rt.engine.rm(cid, force=True)
    rt.engine.rmi(["ev-commit:1"])


def test_image_tag_untag_delete_save_load(rt, tmp_path):
    t0 = time.time()
    img = rt.engine.tag(IMAGE, "ev-img:1")
    rt.engine.tag(IMAGE, "ev-img:2")
    rt.engine.save(["ev-img:1"], str(tmp_path / "a.tar"))
    rt.engine.rmi(["ev-img:2"])                       # one of several tags: untag only
    evs = _events(rt.engine, t0, type="image")
    assert _actions(evs) == ["tag", "tag", "save", "untag"]
    assert [e["Actor"]["Attributes"]["name"] for e in evs[:2]] == ["ev-img:1", "ev-img:2"]
    assert all(e["Actor"]["ID"] == img.id and e["id"] == img.id for e in evs)
    # a new image ID (imported), tagged once: rmi untags and deletes it
    t1 = time.time()
    new = rt.engine.import_image(_tar_of_nothing(tmp_path), "ev-imp:1")
    rt.engine.rmi(["ev-imp:1"])
    evs = _events(rt.engine, t1, type="image")
    assert _actions(evs) == ["import", "untag", "delete"]
    assert {e["Actor"]["ID"] for e in evs} == {new.id}
    assert _actions(_events(rt.engine, t1, image="ev-imp")) == []   # names are IDs here
    assert _actions(_events(rt.engine, t1, image=new.id)) == ["import", "untag", "delete"]
    t2 = time.time()
    loaded = rt.engine.load(str(tmp_path / "a.tar"))
    assert _actions(_events(rt.engine, t2, type="image")) == ["load"] * len(loaded.images)
    rt.engine.rmi(["ev-img:1"])


def _tar_of_nothing(tmp_path) -> str:
    import tarfile

    path = str(tmp_path / "one-file.tar")
    src = tmp_path / "f.txt"
    src.write_text(os.urandom(8).hex())
    with tarfile.open(path, "w") as t:
        t.add(str(src), arcname="f.txt")
    return path


def test_volume_events(rt):
    t0 = time.time()
    name = f"evvol-{os.urandom(3).hex()}"
    rt.cli("volume", "create", name, check=True)
    rt.cli("volume", "rm", name, check=True)
    evs = _events(rt.engine, t0, type="volume", volume=name)
    assert _actions(evs) == ["create", "destroy"]
    assert all(e["Actor"] == {"ID": name, "Attributes": {"driver": "local"}} for e in evs)
    assert "status" not in evs[0]


def test_network_events(host):
    t0 = time.time()
    a, b = f"eva-{os.urandom(2).hex()}", f"evb-{os.urandom(2).hex()}"
    host.ns("network", "create", a)
    host.ns("network", "create", b)
    c = f"evc-{os.urandom(2).hex()}"
    cid = host.run("-d", "--name", c, "--network", a, "--", "sleep", "300").stdout.strip()
    host.ns("network", "connect", b, c)
    host.ns("network", "disconnect", b, c)
    host.ns("rm", "-f", c)
    host.ns("network", "rm", a, b)
    evs = _events(host.engine, t0, type="network")
    ids = {n: host_id for n, host_id in
           ((e["Actor"]["Attributes"]["name"], e["Actor"]["ID"]) for e in evs)}
    assert [(e["Action"], e["Actor"]["Attributes"]["name"]) for e in evs] == [
        ("create", a), ("create", b),
        ("connect", a),                                   # the start, on its network
        ("connect", b), ("disconnect", b),
        ("disconnect", a),                                # the exit (the shim's teardown)
        ("destroy", a), ("destroy", b)]
    assert len(ids[a]) == 64 and ids[a] != ids[b]
    assert all(e["Actor"]["ID"] == ids[e["Actor"]["Attributes"]["name"]] for e in evs)
    assert evs[3]["Actor"]["Attributes"] == {"container": cid, "name": b, "type": "bridge"}
    assert _actions(_events(host.engine, t0, network=b)) == ["create", "connect",
                                                             "disconnect", "destroy"]
    # Docker's order around a container on a network
    assert _actions(_events(host.engine, t0, container=cid)) == [
        "create", "start", "kill", "die", "destroy"]
    every = [(e["Type"], e["Action"], e["Actor"]["Attributes"]["name"])
             for e in _events(host.engine, t0)]
    assert every.index(("network", "connect", a)) < every.index(("container", "start", c)) \
        < every.index(("container", "die", c)) < every.index(("network", "disconnect", a)) \
        < every.index(("container", "destroy", c))


def test_follow_sees_events_of_another_process(rt):
    stop = threading.Event()
    got: list[dict] = []
    name = f"ev-{os.urandom(3).hex()}"

    def follow():
        for ev in rt.engine.events(filters={"container": [name]}, stop=stop):
            got.append(ev)
            if ev["Action"] == "destroy":
                return

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    time.sleep(0.3)
    rt.run("--rm", "--name", name, IMAGE, "true", check=True)      # another process
    t.join(20)
    stop.set()
    assert _actions(got) == ["create", "attach", "start", "die", "destroy"]


def test_cli_events_since_until(rt):
    name = f"ev-{os.urandom(3).hex()}"
    rt.run("--rm", "--name", name, IMAGE, "true", check=True)
    p = rt.cli("events", "--since", "1m", "--until", "0s", "--filter", f"container={name}",
               check=True, timeout=20)
    lines = p.stdout.splitlines()
    assert [ln.split()[2] for ln in lines] == ["create", "attach", "start", "die", "destroy"]
    assert lines[0].split()[1] == "container"
    assert f"image={IMAGE}, name={name})" in lines[0]
    assert "exitCode=0" in lines[3]
    p = rt.cli("events", "--since", "1m", "--until", "0s", "--filter", f"container={name}",
               "--format", "{{json .}}", check=True, timeout=20)
    evs = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert [e["Action"] for e in evs] == ["create", "attach", "start", "die", "destroy"]
    assert evs[0]["Actor"]["Attributes"]["name"] == name
    p = rt.cli("events", "--since", "1m", "--until", "0s", "--filter", f"container={name}",
               "--filter", "event=die", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.exitCode}}",
               check=True, timeout=20)
    assert p.stdout == "container die 0\n"
    p = rt.cli("events", "--since", "yesterday", "--until", "0s")
    assert p.returncode == 125 and "invalid time value" in p.stderr


def test_update_event(rt):
    t0 = time.time()
    cid = rt.run("-d", IMAGE, "sleep", "300", check=True).stdout.strip()
    rt.engine.update(cid, pids_limit=50)
    assert _actions(_events(rt.engine, t0, container=cid)) == ["create", "start", "update"]
    rt.engine.rm(cid, force=True)


@pytest.mark.registry
def test_pull_and_push_events(engine, registry, busybox_layer_tar, tmp_path):
    from tests.registry_servers import make_image, push_with_skopeo, unique_repo

    src = push_with_skopeo(str(tmp_path), registry, unique_repo("evsrc"), "v1",
                           [make_image([busybox_layer_tar])])
    t0 = time.time()
    img = engine.pull(src)
    dst = f"{registry.host}/{unique_repo('evdst')}:v2"
    engine.push(src, dst)
    evs = _events(engine, t0, type="image")
    assert [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]["name"]) for e in evs] == [
        ("pull", src, src.rsplit(":", 1)[0]), ("push", dst, dst.rsplit(":", 1)[0])]
    assert evs[0]["id"] == src and "from" not in evs[0]
    assert _actions(_events(engine, t0, image=src.rsplit(":", 1)[0])) == ["pull"]
    assert img.id


def test_volume_mount_unmount_and_anonymous_volumes(rt):
    t0 = time.time()
    named = f"evvol-{os.urandom(3).hex()}"
    cid = rt.run("-d", "--rm", "-v", f"{named}:/data", "-v", "/anon", IMAGE, "true",
                 check=True).stdout.strip()
    wait_for(lambda: "destroy" in _actions(_events(rt.engine, t0, container=cid)), timeout=20)
    evs = _events(rt.engine, t0, type="volume")
    anon = next(e["Actor"]["ID"] for e in evs if e["Actor"]["ID"] != named)
    assert [(e["Action"], e["Actor"]["ID"]) for e in evs] == [
        ("create", named), ("create", anon),
        ("mount", named), ("mount", anon),
        ("unmount", named), ("unmount", anon),
        ("destroy", anon)]                     # --rm: the anonymous one goes with it
    assert evs[2]["Actor"]["Attributes"] == {"container": cid, "driver": "local",
                                             "destination": "/data", "propagation": "",
                                             "read/write": "true"}
    assert evs[4]["Actor"]["Attributes"] == {"container": cid, "driver": "local"}
    every = [(e["Type"], e["Action"]) for e in _events(rt.engine, t0)]
    assert every.index(("volume", "mount")) < every.index(("container", "start"))
    assert every.index(("container", "die")) < every.index(("volume", "unmount"))
    # rm -v removes the anonymous volumes of a container
    t1 = time.time()
    cid = rt.run("-v", "/anon2", IMAGE, "true", check=True)
    cid = _events(rt.engine, t1, type="container", event="create")[0]["Actor"]["ID"]
    anon2 = _events(rt.engine, t1, type="volume", event="create")[0]["Actor"]["ID"]
    rt.cli("rm", "-v", cid, check=True)
    assert _actions(_events(rt.engine, t1, volume=anon2)) == ["create", "mount", "unmount",
                                                              "destroy"]
    rt.engine.volume_rm(named)


def test_build_tags_and_its_run_containers(rt, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN echo hi > /f\n")
    t0 = time.time()
    result = rt.engine.build(context=str(ctx), tags=["ev-built:1"], network="none")
    evs = _events(rt.engine, t0, type="image")
    assert [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]["name"]) for e in evs] == \
        [("tag", result.image_id, "ev-built:1")]
    # the RUN step is a container, as with Docker's classic builder
    assert _actions(_events(rt.engine, t0, type="container")) == [
        "create", "attach", "start", "die", "destroy"]
    rt.engine.rmi(["ev-built:1"])
