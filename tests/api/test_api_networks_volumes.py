"""Networks and volumes through the API: the docker CLI 20.10's ``network`` and ``volume``
verbs and ``run -v vol:/data``, docker-py's ``networks.*`` and ``volumes.*``, and bad
requests."""

from __future__ import annotations

import json

import docker as dockerpy
import pytest

from tests.api.test_api_exec import raw

pytestmark = pytest.mark.integration



# --- networks: the docker CLI ----------------------------------------------------------
def test_network_verbs_and_name_resolution(docker):
    p = docker("network", "create", "--subnet", "10.231.7.0/24", "--label", "team=a", "apinet",
               check=True)
    nid = p.stdout.decode().strip()
    assert len(nid) == 64
    try:
        ls = docker("network", "ls", "--format", "{{.Name}} {{.Driver}}", check=True).stdout.decode()
        assert "apinet bridge" in ls and "bridge bridge" in ls and "host host" in ls and "none null" in ls
        ls = docker("network", "ls", "-q", "--filter", "label=team=a", "--no-trunc", check=True)
        assert ls.stdout.decode().split() == [nid]
        ins = json.loads(docker("network", "inspect", "apinet", check=True).stdout)[0]
        assert ins["Id"] == nid and ins["Driver"] == "bridge"
        assert ins["IPAM"]["Config"][0]["Subnet"] == "10.231.7.0/24"
        assert ins["Labels"] == {"team": "a"}

        docker("run", "-d", "--name", "neta", "--network", "apinet", "busybox", "sleep", "600",
               check=True)
        docker("run", "-d", "--name", "netb", "busybox", "sleep", "600", check=True)
        docker("network", "connect", "--alias", "bee", "apinet", "netb", check=True)
        ins = json.loads(docker("network", "inspect", "apinet", check=True).stdout)[0]
        assert sorted(c["Name"] for c in ins["Containers"].values()) == ["neta", "netb"]
        # the two resolve each other by name (and the alias) on the user network
        assert docker("exec", "neta", "ping", "-c", "1", "-W", "2", "netb").returncode == 0
        assert docker("exec", "neta", "ping", "-c", "1", "-W", "2", "bee").returncode == 0
        assert docker("exec", "netb", "ping", "-c", "1", "-W", "2", "neta").returncode == 0
        p = docker("network", "rm", "apinet")
        assert p.returncode != 0 and p.stderr                    # in use
        docker("network", "disconnect", "apinet", "netb", check=True)
        ins = json.loads(docker("network", "inspect", "apinet", check=True).stdout)[0]
        assert [c["Name"] for c in ins["Containers"].values()] == ["neta"]
        docker("rm", "-f", "neta", "netb", check=True)
        assert docker("network", "rm", "apinet").stdout.strip() == b"apinet"
    finally:
        docker("rm", "-f", "neta", "netb")
        docker("network", "rm", "apinet")
    p = docker("network", "inspect", "apinet")
    assert p.returncode != 0 and b"no such network" in p.stderr.lower()


def test_network_prune_and_predefined(docker):
    docker("network", "create", "--label", "prune=yes", "prunea", check=True)
    docker("network", "create", "pruneb", check=True)
    try:
        p = docker("network", "prune", "-f", "--filter", "label=prune=yes", check=True)
        assert b"prunea" in p.stdout and b"pruneb" not in p.stdout
        p = docker("network", "prune", "-f", check=True)
        assert b"pruneb" in p.stdout
    finally:
        docker("network", "rm", "prunea", "pruneb")
    for name in ("bridge", "host", "none"):
        p = docker("network", "rm", name)
        assert p.returncode != 0 and b"pre-defined" in p.stderr
        p = docker("network", "create", name)
        assert p.returncode != 0
    ins = json.loads(docker("network", "inspect", "host", "none", check=True).stdout)
    assert [n["Driver"] for n in ins] == ["host", "null"]


def test_network_ls_filters(docker):
    docker("network", "create", "filtnet", check=True)
    try:
        custom = docker("network", "ls", "--format", "{{.Name}}", "--filter", "type=custom",
                        check=True).stdout.split()
        assert b"filtnet" in custom and b"bridge" not in custom
        builtin = docker("network", "ls", "--format", "{{.Name}}", "--filter", "type=builtin",
                         check=True).stdout.split()
        assert sorted(builtin) == [b"bridge", b"host", b"none"]
        dangling = docker("network", "ls", "--format", "{{.Name}}", "--filter", "dangling=true",
                          check=True).stdout.split()
        assert dangling == [b"filtnet"]
        assert docker("network", "ls", "-q", "--filter", "name=filt", check=True).stdout.strip()
        assert docker("network", "ls", "-q", "--filter", "driver=null", check=True).stdout.strip()
    finally:
        docker("network", "rm", "filtnet")


def test_connect_and_disconnect_a_created_container(docker):
    """dockerd lets a container that is not running join or leave networks (its next start
    uses them); Compose disconnects and reconnects a created container's network, with
    its aliases, before it starts it."""
    docker("network", "create", "offa", check=True)
    docker("network", "create", "offb", check=True)
    try:
        docker("create", "--name", "offc", "--network", "offa", "busybox", "sleep", "600",
               check=True)
        docker("run", "-d", "--name", "offpeer", "--network", "offb", "busybox", "sleep", "600",
               check=True)
        # Compose's dance: disconnect the primary network, connect it again with aliases
        docker("network", "disconnect", "offa", "offc", check=True)
        nets = json.loads(docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", "offc",
                                 check=True).stdout)
        assert nets == {}
        docker("network", "connect", "--alias", "svc-a", "offa", "offc", check=True)
        docker("network", "connect", "--alias", "svc-b", "offb", "offc", check=True)
        p = docker("network", "connect", "offb", "offc")
        assert p.returncode != 0 and b"already exists" in p.stderr
        nets = json.loads(docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", "offc",
                                 check=True).stdout)
        assert sorted(nets) == ["offa", "offb"] and nets["offb"]["Aliases"] == ["svc-b"]
        docker("start", "offc", check=True)
        nets = json.loads(docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", "offc",
                                 check=True).stdout)
        assert sorted(nets) == ["offa", "offb"]
        # the peer on offb finds it by name and by the alias given while it was created
        assert docker("exec", "offpeer", "ping", "-c", "1", "-W", "2", "svc-b").returncode == 0
        assert docker("exec", "offpeer", "ping", "-c", "1", "-W", "2", "offc").returncode == 0
        assert docker("exec", "offpeer", "ping", "-c", "1", "-W", "1", "svc-a").returncode != 0
        # stopped again: it leaves offb for its next start
        docker("stop", "-t", "0", "offc", check=True)
        docker("network", "disconnect", "offb", "offc", check=True)
        docker("start", "offc", check=True)
        nets = json.loads(docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", "offc",
                                 check=True).stdout)
        assert sorted(nets) == ["offa"]
        p = docker("network", "connect", "offa", "nosuchcontainer")
        assert p.returncode != 0
        docker("create", "--name", "offhost", "--network", "host", "busybox", check=True)
        p = docker("network", "connect", "offa", "offhost")
        assert p.returncode != 0 and b"host" in p.stderr
    finally:
        docker("rm", "-f", "offc", "offpeer", "offhost")
        docker("network", "rm", "offa", "offb")


# --- networks: docker-py ---------------------------------------------------------------
def test_dockerpy_networks(client):
    ipam = dockerpy.types.IPAMConfig(pool_configs=[
        dockerpy.types.IPAMPool(subnet="10.231.9.0/24", gateway="10.231.9.1")])
    net = client.networks.create("pynet", driver="bridge", ipam=ipam, labels={"k": "v"},
                                 check_duplicate=True)
    try:
        assert net.name == "pynet"
        assert net.attrs["IPAM"]["Config"][0]["Gateway"] == "10.231.9.1"
        with pytest.raises(dockerpy.errors.APIError) as e:
            client.networks.create("pynet", check_duplicate=True)
        assert e.value.status_code == 409
        assert [n.name for n in client.networks.list(names=["pynet"])] == ["pynet"]
        assert client.networks.list(filters={"label": "k=v"})[0].id == net.id
        c = client.containers.run("busybox", "sleep 600", detach=True, name="pyneta")
        try:
            net.connect(c, aliases=["pyalias"])
            with pytest.raises(dockerpy.errors.APIError) as e:
                net.connect(c)                        # already there: dockerd's 403
            assert e.value.status_code == 403
            with pytest.raises(dockerpy.errors.APIError) as e:
                net.remove()                          # active endpoints: 403
            assert e.value.status_code == 403 and "active endpoints" in str(e.value)
            net.reload()
            assert c.id in net.attrs["Containers"]
            c.reload()
            assert "pynet" in c.attrs["NetworkSettings"]["Networks"]
            net.disconnect(c)
            net.reload()
            assert not net.attrs["Containers"]
        finally:
            c.remove(force=True)
        assert client.networks.get(net.id[:12]).name == "pynet"
    finally:
        net.remove()
    with pytest.raises(dockerpy.errors.NotFound):
        client.networks.get("pynet")
    assert isinstance(client.networks.prune()["NetworksDeleted"], list)


BAD = "%7B%22nope%22%3A%5B%22x%22%5D%7D"   # filters={"nope": ["x"]}


@pytest.mark.parametrize("method, path, body, status", [
    ("POST", "/v1.41/networks/create", b"{bad", 400),
    ("POST", "/v1.41/networks/create", b"{}", 400),
    ("POST", "/v1.41/networks/create", b'{"Name": 5}', 400),
    ("POST", "/v1.41/networks/create", b'{"Name": "x", "Driver": "overlay"}', 400),
    ("POST", "/v1.41/networks/create", b'{"Name": "x", "IPAM": {"Config": "nope"}}', 400),
    ("POST", "/v1.41/networks/create", b'{"Name": "x", "IPAM": {"Config": [{"Subnet": "bad"}]}}', 400),
    ("POST", "/v1.41/networks/create", b'{"Name": "../../etc"}', 400),
    ("POST", "/v1.41/networks/create", b'{"Name": "bridge"}', 403),
    ("GET", "/v1.41/networks/nosuch", None, 404),
    ("DELETE", "/v1.41/networks/nosuch", None, 404),
    ("POST", "/v1.41/networks/bridge/connect", b'{"Container": "nosuch"}', 404),
    ("POST", "/v1.41/networks/bridge/connect", b'{"Container": 3}', 400),
    ("POST", "/v1.41/networks/prune?filters=" + BAD, None, 400),
    ("GET", "/v1.41/networks?filters=" + BAD, None, 400),
    ("POST", "/v1.41/volumes/create", b"{bad", 400),
    ("POST", "/v1.41/volumes/create", b'{"Name": ["x"]}', 400),
    ("POST", "/v1.41/volumes/create", b'{"Name": "../../etc"}', 400),
    ("POST", "/v1.41/volumes/create", b'{"Name": "/abs"}', 400),
    ("POST", "/v1.41/volumes/create", b'{"Name": "ok", "Driver": "nfs"}', 400),
    ("POST", "/v1.41/volumes/create", b'{"Name": "ok", "Labels": {"a": 1}}', 400),
    ("GET", "/v1.41/volumes/nosuch", None, 404),
    ("DELETE", "/v1.41/volumes/nosuch", None, 404),
    ("GET", "/v1.41/volumes?filters=" + BAD, None, 400),
    ("POST", "/v1.41/volumes/prune?filters=" + BAD, None, 400),
])
def test_bad_network_and_volume_requests_are_refused_and_create_nothing(api, method, path, body,
                                                                       status):
    got, data = raw(api, method, path, body, {"Content-Type": "application/json"})
    assert got == status, (method, path, body, got, data)
    assert "message" in json.loads(data)
    networks = [n["Name"] for n in json.loads(raw(api, "GET", "/v1.41/networks")[1])]
    assert "x" not in networks and "../../etc" not in networks
    volumes = [v["Name"] for v in json.loads(raw(api, "GET", "/v1.41/volumes")[1])["Volumes"]]
    assert "ok" not in volumes and "../../etc" not in volumes


def test_volume_rm_force_of_a_missing_volume_is_204(api):
    status, _ = raw(api, "DELETE", "/v1.41/volumes/nosuch?force=1")
    assert status == 204


# --- volumes ---------------------------------------------------------------------------
def test_volume_verbs_and_run_with_volume(docker):
    assert docker("volume", "create", "--label", "v=1", "apivol", check=True).stdout == b"apivol\n"
    try:
        ls = docker("volume", "ls", "--format", "{{.Driver}} {{.Name}}", check=True).stdout.decode()
        assert "local apivol" in ls
        ls = docker("volume", "ls", "-q", "--filter", "label=v=1", check=True).stdout.split()
        assert ls == [b"apivol"]
        ins = json.loads(docker("volume", "inspect", "apivol", check=True).stdout)[0]
        assert ins["Name"] == "apivol" and ins["Driver"] == "local" and ins["Labels"] == {"v": "1"}
        docker("run", "--rm", "-v", "apivol:/data", "busybox", "sh", "-c", "echo kept > /data/f",
               check=True)
        p = docker("run", "--rm", "-v", "apivol:/data:ro", "busybox", "cat", "/data/f", check=True)
        assert p.stdout == b"kept\n"
        docker("create", "--name", "voluser", "-v", "apivol:/data", "busybox", check=True)
        p = docker("volume", "rm", "apivol")
        assert p.returncode != 0 and b"in use" in p.stderr
        docker("rm", "voluser", check=True)
        assert docker("volume", "rm", "apivol").stdout == b"apivol\n"
    finally:
        docker("rm", "-f", "voluser")
        docker("volume", "rm", "-f", "apivol")
    p = docker("volume", "inspect", "apivol")
    assert p.returncode != 0 and b"no such volume" in p.stderr.lower()
    # run -v with a volume that does not exist yet creates it, named
    docker("run", "--rm", "-v", "autovol:/d", "busybox", "touch", "/d/x", check=True)
    try:
        assert b"autovol" in docker("volume", "ls", "-q", check=True).stdout.split()
    finally:
        docker("volume", "rm", "autovol", check=True)


def test_volume_prune_cli(docker):
    docker("volume", "create", "prunev1", check=True)
    docker("volume", "create", "--label", "keep=1", "prunev2", check=True)
    docker("volume", "create", "usedv", check=True)
    docker("create", "--name", "usesv", "-v", "usedv:/x", "busybox", check=True)
    try:
        p = docker("volume", "prune", "-f", "--filter", "label!=keep", check=True)
        out = p.stdout.decode()
        # API 1.41 (the CLI 20.10): every unused volume, named ones too
        assert "prunev1" in out and "prunev2" not in out and "usedv" not in out
        assert "Total reclaimed space" in out
        names = docker("volume", "ls", "-q", check=True).stdout.split()
        assert b"prunev2" in names and b"usedv" in names and b"prunev1" not in names
    finally:
        docker("rm", "-f", "usesv")
        for v in ("prunev1", "prunev2", "usedv"):
            docker("volume", "rm", "-f", v)


def test_dockerpy_volumes(client, api):
    v = client.volumes.create("pyvol", labels={"a": "b"})
    try:
        assert v.name == "pyvol" and v.attrs["Labels"] == {"a": "b"}
        again = client.volumes.create("pyvol")            # Docker returns the existing one
        assert again.name == "pyvol"
        assert [x.name for x in client.volumes.list(filters={"label": "a=b"})] == ["pyvol"]
        assert "pyvol" in [x.name for x in client.volumes.list(filters={"dangling": True})]
        assert client.volumes.get("pyvol").attrs["Mountpoint"]
        out = client.containers.run("busybox", "sh -c 'echo py > /v/f; cat /v/f'",
                                    volumes={"pyvol": {"bind": "/v", "mode": "rw"}}, remove=True)
        assert out == b"py\n"
    finally:
        v.remove(force=True)
    with pytest.raises(dockerpy.errors.NotFound):
        client.volumes.get("pyvol")
    anon = client.volumes.create()
    assert len(anon.name) == 64
    # API 1.42+: prune removes anonymous volumes only, unless all=true
    c142 = dockerpy.DockerClient(base_url="unix://" + api.socket, version="1.43")
    try:
        keep = c142.volumes.create("named142")
        res = c142.volumes.prune()
        assert anon.name in res["VolumesDeleted"] and "named142" not in res["VolumesDeleted"]
        res = c142.volumes.prune(filters={"all": "true"})
        assert "named142" in res["VolumesDeleted"]
        keep = None
    finally:
        if keep is not None:
            keep.remove(force=True)
        c142.close()
