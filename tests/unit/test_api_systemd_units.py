"""contrib/systemd: the socket and service units for the API, read as systemd reads them
(keys present, the socket's group created by the sysusers file, the service's command
line one the CLI accepts) and, where systemd-analyze is installed, verified by it."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNITS = os.path.join(REPO, "contrib", "systemd")
SOCKET = "nutshell-api.socket"
SERVICE = "nutshell-api.service"
SYSUSERS = "nutshell-api.sysusers.conf"


def unit(name: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",),
                                   comment_prefixes=("#", ";"), inline_comment_prefixes=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    with open(os.path.join(UNITS, name)) as f:
        cp.read_file(f)
    return cp


def test_socket_unit():
    s = unit(SOCKET)
    sock = s["Socket"]
    assert sock["ListenStream"] == "/run/nutshell.sock"
    assert sock["SocketMode"] == "0660"
    assert sock["SocketUser"] == "root"
    assert sock["SocketGroup"] == "nutshell-api"
    assert sock["Accept"].lower() in ("no", "false")       # one server for all connections
    assert sock["Service"] == SERVICE and os.path.exists(os.path.join(UNITS, SERVICE))
    assert s["Install"]["WantedBy"] == "sockets.target"
    assert "ListenDatagram" not in sock and not any(k.startswith("ListenStream") and ":" in v
                                                        for k, v in sock.items())   # no TCP


def test_the_sockets_group_is_created_by_the_sysusers_file():
    group = unit(SOCKET)["Socket"]["SocketGroup"]
    with open(os.path.join(UNITS, SYSUSERS)) as f:
        entries = [line.split() for line in f if line.strip() and not line.startswith("#")]
    assert ["g", group, "-"] in entries


def test_service_unit():
    s = unit(SERVICE)
    assert SOCKET in s["Unit"]["Requires"].split()
    assert SOCKET in s["Unit"]["After"].split()
    svc = s["Service"]
    assert svc.get("Restart", "no") == "no"                 # the socket restarts it
    assert svc["KillMode"] == "process"                     # containers outlive the server
    argv = shlex.split(svc["ExecStart"])
    assert os.path.isabs(argv[0]) and os.path.basename(argv[0]) == "nutshell"
    assert argv[1:3] == ["system", "service"]
    assert "--socket" not in argv                           # systemd passes the socket
    assert float(argv[argv.index("--timeout") + 1]) == 60


def test_the_service_command_line_is_one_the_cli_accepts():
    from workbench.cli import build_parser
    from workbench.cli.service import cmd_service

    argv = shlex.split(unit(SERVICE)["Service"]["ExecStart"])[1:]
    args = build_parser().parse_args(argv)
    assert args.func is cmd_service
    assert args.timeout == 60 and args.socket is None


def test_readme_names_the_same_files_and_path():
    with open(os.path.join(UNITS, "README.md")) as f:
        text = f.read()
    for name in (SOCKET, SERVICE, SYSUSERS, unit(SOCKET)["Socket"]["ListenStream"],
                 unit(SOCKET)["Socket"]["SocketGroup"]):
        assert name in text, name


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify(tmp_path):
    shutil.copy(os.path.join(UNITS, SOCKET), tmp_path / SOCKET)
    with open(os.path.join(UNITS, SERVICE)) as f:
        text = f.read()
    # verify checks that the command exists: point it at one that does here
    argv0 = shlex.split(unit(SERVICE)["Service"]["ExecStart"])[0]
    (tmp_path / SERVICE).write_text(text.replace(argv0, shutil.which("true") or "/bin/true"))
    p = subprocess.run(["systemd-analyze", "verify", f"./{SOCKET}", f"./{SERVICE}"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert SOCKET not in p.stderr and SERVICE not in p.stderr, p.stderr
