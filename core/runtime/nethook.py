"""The runtime's network hook: what a container's network mode asks of the network
area before the init starts (``_setup_network``), and its release."""

from __future__ import annotations

import os

from ..errors import Conflict
from .runtime_base import RuntimeBase


class NetworkHook(RuntimeBase):
    """A container's network mode turned into what its init joins."""
    def _setup_network(self, cid: str, cfg: dict):
        """The network hook: returns ({"mode": "none"|"host"|"bridge", "netns": path|None},
        finish) where ``finish`` is None or the rest of a bridge set-up, which ``launch``
        runs while the init prepares the rootfs (the payload waits for it).

        none: the init unshares a new netns and brings lo up. host: no new netns.
        bridge / a user network: the network area pins a netns with a veth and an address
        (``engine.setup_container_network``) and the init joins it with setns.
        container:<ref>: join that container's netns. Every mode gets /etc/hosts and
        /etc/resolv.conf written into the container dir by the network area.
        """
        hc = cfg["HostConfig"]
        mode = hc.get("NetworkMode") or "default"
        if mode == "default":
            mode = "bridge"
        name = cfg["Name"].lstrip("/")
        hostname = cfg["Config"]["Hostname"]
        if mode.startswith("container:"):
            other = self.resolve(mode.split(":", 1)[1])
            ost = self.state(other)
            if ost.get("Status") != "running":
                raise Conflict(f"cannot join network of a non running container: {other[:12]}")
            self._write_name_files(cid, hostname, "none")
            return {"mode": "container", "netns": f"/proc/{ost['Pid']}/ns/net"}, None
        kw = dict(hc.get("NetworkOptions") or {})
        nets = [n for n in (kw.pop("networks", None) or []) if n and n != "default"]
        if mode in ("none", "host"):
            self.engine.setup_container_network(
                cid, name=name, networks=[mode], hostname=hostname,
                **{k: v for k, v in kw.items() if k in ("dns", "dns_search", "dns_options",
                                                         "add_hosts", "ports")})
            return {"mode": mode, "netns": None}, None
        if not nets or nets[0] != mode:
            nets = [mode] + [n for n in nets if n != mode]
        kw["exposed"] = list(dict.fromkeys(
            list((cfg["Config"].get("ExposedPorts") or {}).keys()) + list(kw.get("exposed") or [])))
        pending = self.engine.prepare_container_network(cid, name=name, networks=nets,
                                                        hostname=hostname, **kw)
        return {"mode": "bridge", "netns": pending.netns}, pending.finish

    def _write_name_files(self, cid: str, hostname: str, mode: str) -> None:
        cdir = self.paths.container(cid)
        with open(os.path.join(cdir, "hosts"), "w") as f:
            f.write("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        try:
            with open("/etc/resolv.conf") as f:
                resolv = f.read()
        except OSError:
            resolv = ""
        with open(os.path.join(cdir, "resolv.conf"), "w") as f:
            f.write(resolv)

    def _teardown_network(self, cid: str, cfg: dict) -> None:
        mode = cfg.get("HostConfig", {}).get("NetworkMode") or "default"
        if mode in ("none", "host") or mode.startswith("container:"):
            return
        try:
            self.engine.teardown_container_network(cid)
        except Exception:  # noqa: BLE001 - best effort; rm tries again
            pass
