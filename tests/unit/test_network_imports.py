"""pyroute2 stays off the paths that do not need it, and loads lazily where they do."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import json, sys
from core.engine import Engine
e = Engine(sys.argv[1])
after_engine = any(m.startswith("pyroute2") for m in sys.modules)
s = e.setup_container_network("c" * 64, networks=["none"], hosts_path=sys.argv[2] + "/hosts",
                              resolv_path=sys.argv[2] + "/resolv.conf", add_hosts=["db:10.0.0.9"])
print(json.dumps({"engine": after_engine,
                  "none": any(m.startswith("pyroute2") for m in sys.modules),
                  "mode": s["Mode"], "netns": s["SandboxKey"]}))
"""


def test_engine_and_network_none_never_import_pyroute2(root, tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, root, str(tmp_path)], check=True,
                         capture_output=True, text=True).stdout
    got = json.loads(out)
    assert got == {"engine": False, "none": False, "mode": "none", "netns": None}
    hosts = (tmp_path / "hosts").read_text()
    assert "127.0.0.1\tlocalhost" in hosts and "10.0.0.9\tdb" in hosts
    assert (tmp_path / "resolv.conf").exists()


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
