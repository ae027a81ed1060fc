import pytest

from core.errors import UsageError
from core.runtime import spec
from core.runtime.spec import RunOptions


def test_parse_bytes_docker_units():
    assert spec.parse_bytes("32m") == 32 * 1024 * 1024
    assert spec.parse_bytes("1g") == 1 << 30
    assert spec.parse_bytes("512k") == 512 * 1024
    assert spec.parse_bytes("64MB") == 64 << 20
    assert spec.parse_bytes("100") == 100
    assert spec.parse_bytes("-1") == -1
    assert spec.parse_bytes(None) is None
    with pytest.raises(UsageError):
        spec.parse_bytes("lots")


def test_env_merge_and_passthrough(tmp_path):
    assert spec.merge_env(["A=1", "B=2"], ["B=3", "C=4"]) == ["A=1", "B=3", "C=4"]
    assert spec.resolve_env(["X", "Y=2", "MISSING"], {"X": "1"}) == ["X=1", "Y=2"]
    with pytest.raises(UsageError):
        spec.resolve_env(["=bad"], {})
    f = tmp_path / "env"
    f.write_text("# c\nA=1\n\n  B=two words\nC\n")
    assert spec.parse_env_file(str(f)) == ["A=1", "B=two words", "C"]
    f.write_text("BAD KEY=1\n")
    with pytest.raises(UsageError):
        spec.parse_env_file(str(f))


def test_command_rules():
    img = {"Entrypoint": ["/ep"], "Cmd": ["default"]}
    assert spec.command_for(RunOptions(), img)[2] == ["/ep", "default"]
    assert spec.command_for(RunOptions(command=["x"]), img)[2] == ["/ep", "x"]
    # an explicit entrypoint drops the image's Cmd
    assert spec.command_for(RunOptions(entrypoint=["sh"]), img)[2] == ["sh"]
    assert spec.command_for(RunOptions(entrypoint=[], command=["ls"]), img)[2] == ["ls"]
    with pytest.raises(UsageError, match="no command specified"):
        spec.command_for(RunOptions(), {})


def _build(opts, image_cfg=None):
    return spec.build_config("c" * 64, "name", opts, image_cfg or {"Cmd": ["sh"]}, image_id="sha256:x",
                             image_ref="img", chain_ids=["sha256:a"], lower_dirs=["/l"],
                             created="now", container_dir="/d", host_hostname="hosty")


def test_build_config_defaults_and_overrides():
    cfg = _build(RunOptions(env=["A=1"]), {"Cmd": ["sh"], "Env": ["PATH=/x", "A=0"],
                                          "WorkingDir": "/w", "User": "app"})
    c = cfg["Config"]
    assert c["Env"][:2] == ["PATH=/x", "A=1"] and f"HOSTNAME={'c' * 12}" in c["Env"]
    assert c["Hostname"] == "c" * 12 and c["WorkingDir"] == "/w" and c["User"] == "app"
    assert cfg["ImageID"] == "sha256:x" and cfg["LayerChainIDs"] == ["sha256:a"]
    assert cfg["Capabilities"] == spec._caps.resolve()
    cfg = _build(RunOptions(tty=True, network="host"))
    assert "TERM=xterm" in cfg["Config"]["Env"] and cfg["Config"]["Hostname"] == "hosty"
    assert any(e.startswith("PATH=") for e in cfg["Config"]["Env"])


def test_build_config_validates():
    with pytest.raises(UsageError, match="absolute"):
        _build(RunOptions(workdir="rel"))
    with pytest.raises(UsageError, match="Minimum memory"):
        _build(RunOptions(memory=1024))
    with pytest.raises(UsageError, match="unknown capability"):
        _build(RunOptions(cap_add=["nope"]))
    assert _build(RunOptions(pids_limit=0))["HostConfig"]["PidsLimit"] is None
    assert _build(RunOptions(cpus=1.5))["HostConfig"]["NanoCpus"] == 1_500_000_000


def test_parse_restart():
    from core.errors import UsageError
    from core.runtime.spec import parse_restart

    assert parse_restart(None) == {"Name": "no", "MaximumRetryCount": 0}
    assert parse_restart("always") == {"Name": "always", "MaximumRetryCount": 0}
    assert parse_restart("unless-stopped")["Name"] == "unless-stopped"
    assert parse_restart("on-failure:5") == {"Name": "on-failure", "MaximumRetryCount": 5}
    for bad in ("sometimes", "always:2", "on-failure:x", "on-failure:-1"):
        with pytest.raises(UsageError):
            parse_restart(bad)
