"""pyroute2 stays off the paths that do not need it, and loads lazily where they do; the
none and host modes do not even load the network store or its sandboxes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = r"""
import json, sys
from core.engine import Engine
e = Engine(sys.argv[1])
after_engine = any(m.startswith("pyroute2") for m in sys.modules)
s = e.setup_container_network("c" * 64, networks=["none"], hosts_path=sys.argv[2] + "/hosts",
                              resolv_path=sys.argv[2] + "/resolv.conf", add_hosts=["db:10.0.0.9"])
h = e.setup_container_network("d" * 64, networks=["host"], hosts_path=sys.argv[2] + "/h2",
                              ports=["8080:80"])
print(json.dumps({"engine": after_engine,
                  "none": any(m.startswith("pyroute2") for m in sys.modules),
                  "sandbox": [m for m in ("core.network.sandbox", "core.network.store",
                                          "core.network.netns") if m in sys.modules],
                  "mode": s["Mode"], "netns": s["SandboxKey"], "host": h["Mode"]}))
"""


def test_engine_and_network_none_never_import_pyroute2(root, tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, root, str(tmp_path)], check=True,
                         capture_output=True, text=True).stdout
    got = json.loads(out)
    assert got == {"engine": False, "none": False, "sandbox": [], "mode": "none", "netns": None,
                   "host": "host"}
    hosts = (tmp_path / "hosts").read_text()
    assert "127.0.0.1\tlocalhost" in hosts and "10.0.0.9\tdb" in hosts
    assert (tmp_path / "resolv.conf").exists()
    assert "localhost" in (tmp_path / "h2").read_text()    # the host's, plus ours


def test_files_only_modes_refuse_what_they_cannot_do(tmp_path):
    """The checks the sandbox made for these modes, now made without it."""
    from core.errors import UsageError
    from core.network import names

    with pytest.raises(UsageError, match="cannot be combined"):
        names.setup_files_only(str(tmp_path), ["none", "mynet"])
    with pytest.raises(UsageError, match="published ports need a bridge network, not none"):
        names.setup_files_only(str(tmp_path), ["none"], ports=["80:80"])
    with pytest.raises(UsageError, match="published ports"):
        names.setup_files_only(str(tmp_path), ["container:abc"], publish_all=True)
    with pytest.raises(UsageError):
        names.setup_files_only(str(tmp_path), ["none"], add_hosts=["no-address"])
    assert not list(tmp_path.iterdir())         # refused before writing anything
    s = names.setup_files_only(str(tmp_path), ["container:abc"])
    assert (s["HostsPath"], s["ResolvConfPath"]) == (None, None)   # the other's files
    assert not list(tmp_path.iterdir())
    s = names.setup_files_only(str(tmp_path), ["none"], dns=["9.9.9.9"])
    assert s["HostsPath"] == str(tmp_path / "hosts")
    assert "nameserver 9.9.9.9" in (tmp_path / "resolv.conf").read_text()
    assert [names.files_only_mode(n) for n in (["none"], ["host"], ["container:x"],
                                               ["bridge"], ["mynet"], [], None)] == \
        ["none", "host", "container:x", None, None, None, None]


LAZY = r"""
import sys
from core.network._pyroute2 import rtnl_messages
ifinfmsg, ifaddrmsg, rtmsg = rtnl_messages()
light = sorted(m for m in sys.modules if m.startswith("pyroute2"))
assert "pyroute2.ndb" not in sys.modules and "pyroute2.ipdb" not in sys.modules, light
assert not any(m.startswith("asyncio") for m in sys.modules)
# the package still works as the real one once a public name is asked for
from pyroute2 import IPRoute
assert IPRoute.__name__ == "IPRoute"
import pyroute2
assert pyroute2.netlink.rtnl.ifinfmsg.ifinfmsg is ifinfmsg
print("ok", len(light))
"""


def test_pyroute2_codecs_load_without_the_package_init():
    out = subprocess.run([sys.executable, "-c", LAZY], check=True, capture_output=True,
                         text=True).stdout
    assert out.startswith("ok")
