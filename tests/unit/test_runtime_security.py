"""--security-opt and --privileged: parsing, what is stored, what a container gets."""

import json
import os

import pytest

from core.errors import UsageError
from core.runtime import security, spec
from core.runtime.spec import RunOptions


def test_plain_options_are_normalized():
    assert security.normalize(["no-new-privileges"]) == ["no-new-privileges=true"]
    assert security.normalize(["no-new-privileges:false"]) == ["no-new-privileges=false"]
    assert security.normalize(["no-new-privileges=1"]) == ["no-new-privileges=true"]
    assert security.normalize(["seccomp=unconfined", "seccomp:builtin"]) == [
        "seccomp=unconfined", "seccomp=builtin"]
    assert security.normalize(["systempaths=unconfined", "apparmor=unconfined",
                               "label=disable"]) == [
        "systempaths=unconfined", "apparmor=unconfined", "label=disable"]
    assert security.normalize(None) == []


@pytest.mark.parametrize("opt, words", [
    ("foo", "invalid --security-opt"),
    ("", "invalid --security-opt"),
    ("seccomp=", "profile path, unconfined or builtin"),
    ("no-new-privileges=maybe", "expected true or false"),
    ("systempaths=confined", "only unconfined"),
    ("apparmor=docker-default", "AppArmor profiles are not supported"),
    ("label=type:svirt_t", "SELinux labels are not supported"),
    ("seccomp=/nonexistent/profile.json", "opening seccomp profile"),
])
def test_bad_options_are_one_clear_line(opt, words):
    with pytest.raises(UsageError) as e:
        security.normalize([opt])
    assert words in str(e.value) and "\n" not in str(e.value)


def test_a_profile_file_is_read_and_kept_as_json(tmp_path):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile, indent=4))
    (opt,) = security.normalize([f"seccomp={path}"])
    assert opt.startswith("seccomp={") and json.loads(opt[len("seccomp="):]) == profile
    path.unlink()  # the container keeps its own copy: the file may go
    c = security.confinement({"SecurityOpt": [opt]})
    assert c.seccomp == "custom" and c.seccomp_profile == profile


def test_a_broken_profile_is_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        security.normalize([f"seccomp={bad}"])
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.write(b" " * (security.PROFILE_MAX + 1))
    with pytest.raises(UsageError, match="larger than"):
        security.normalize([f"seccomp={big}"])


def test_confinement_of_the_default_and_of_each_option():
    c = security.confinement({})
    assert (c.privileged, c.seccomp, c.no_new_privileges, c.system_paths) == (
        False, "default", False, True)
    c = security.confinement({"SecurityOpt": ["seccomp=unconfined", "no-new-privileges=true",
                                              "systempaths=unconfined"]})
    assert (c.seccomp, c.no_new_privileges, c.system_paths) == ("unconfined", True, False)
    c = security.confinement({"SecurityOpt": ["no-new-privileges=false"]})
    assert c.no_new_privileges is False
    # --privileged: no seccomp, unless a profile is named (moby's WithSeccomp applies it)
    c = security.confinement({"Privileged": True})
    assert (c.privileged, c.seccomp, c.system_paths) == (True, "unconfined", False)
    c = security.confinement({"Privileged": True, "SecurityOpt": ["seccomp=builtin"]})
    assert (c.privileged, c.seccomp, c.system_paths) == (True, "default", False)
    c = security.confinement({"Privileged": True, "SecurityOpt": ["seccomp=unconfined"]})
    assert c.seccomp == "unconfined"


def _config(opts: RunOptions) -> dict:
    return spec.build_config("c" * 64, "n", opts, {"Cmd": ["sh"]}, image_id="i", image_ref="r",
                             chain_ids=[], lower_dirs=["/x"], created="t",
                             container_dir="/d", host_hostname="h")


def test_privileged_config_is_dockers():
    cfg = _config(RunOptions(image="r", privileged=True, cap_drop=["CHOWN"]))
    hc = cfg["HostConfig"]
    assert hc["Privileged"] is True and hc["MaskedPaths"] == [] and hc["ReadonlyPaths"] == []
    # every capability the kernel has, --cap-drop notwithstanding (as Docker)
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert len(cfg["Capabilities"]) == int(f.read()) + 1
    assert "CHOWN" in cfg["Capabilities"]


def test_default_config_keeps_dockers_paths_and_no_security_opt():
    hc = _config(RunOptions(image="r"))["HostConfig"]
    assert hc["Privileged"] is False and hc["SecurityOpt"] is None
    assert "/proc/kcore" in hc["MaskedPaths"] and "/proc/sys" in hc["ReadonlyPaths"]
    hc = _config(RunOptions(image="r", security_opt=["systempaths=unconfined"]))["HostConfig"]
    assert hc["MaskedPaths"] == [] and hc["ReadonlyPaths"] == []


def test_host_devices_lists_device_nodes_only():
    devices = security.host_devices()
    names = {d[0] for d in devices}
    assert "null" in names and "console" not in names and "ptmx" not in names
    assert not any(n.startswith(("pts/", "shm/", "mqueue/")) for n in names)
    for rel, mode, rdev, _uid, _gid in devices:
        st = os.lstat(os.path.join("/dev", rel))
        assert st.st_mode == mode and st.st_rdev == rdev
