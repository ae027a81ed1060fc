"""commit's pieces without containers: config merge (Docker's rules), --change, the layer
writer's outputs (zlib/pigz/zstd agree on the tar), create_image on a real store."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile

import pytest

from core.paths import resolve
from core.store import commit as cm
from core.store.compress import IsalOutput, PigzOutput, ThreadedOutput, open_output
from core.store.store import Store
from core.store.tarwriter import LayerOutput, write_tree

IMAGE = {"Env": ["PATH=/usr/bin:/bin", "LANG=C"], "Cmd": ["sh"], "Labels": {"a": "1", "b": "2"},
         "ExposedPorts": {"80/tcp": {}}, "WorkingDir": "/srv", "Volumes": {"/data": {}},
         "User": "app", "StopSignal": "SIGQUIT"}


def container_cfg(**config) -> dict:
    base = {"Hostname": "abc", "Env": ["PATH=/usr/bin:/bin", "LANG=C", "HOSTNAME=abc"],
            "Cmd": ["sh"], "Entrypoint": None, "WorkingDir": "/srv", "User": "app",
            "Labels": {"a": "1", "b": "2"}, "ExposedPorts": {"80/tcp": {}},
            "StopSignal": "SIGQUIT", "Tty": False}
    base.update(config)
    return {"Config": base, "RuntimeEnv": ["HOSTNAME"], "Path": "sh", "Args": []}


def test_commit_config_keeps_image_settings_and_drops_runtime_env():
    out = cm.container_config(container_cfg(), IMAGE)
    assert out["Env"] == ["PATH=/usr/bin:/bin", "LANG=C"]
    assert out["Cmd"] == ["sh"] and "Entrypoint" not in out
    assert out["Labels"] == {"a": "1", "b": "2"} and out["ExposedPorts"] == {"80/tcp": {}}
    assert out["Volumes"] == {"/data": {}} and out["WorkingDir"] == "/srv"
    assert out["User"] == "app" and out["StopSignal"] == "SIGQUIT"


def test_user_values_win_and_unions():
    cfg = container_cfg(Env=["PATH=/usr/bin:/bin", "LANG=de", "NEW=1", "HOSTNAME=abc"],
                        Labels={"a": "x"}, ExposedPorts={"8080/tcp": {}}, Cmd=["top"])
    out = cm.container_config(cfg, IMAGE, ["ENV EXTRA=2", "LABEL c=3", "EXPOSE 9000"])
    assert out["Env"] == ["PATH=/usr/bin:/bin", "LANG=de", "NEW=1", "EXTRA=2"]
    assert out["Labels"] == {"a": "x", "b": "2", "c": "3"}
    assert set(out["ExposedPorts"]) == {"80/tcp", "8080/tcp", "9000/tcp"}
    assert out["Cmd"] == ["top"]


def test_entrypoint_change_clears_cmd_unless_cmd_changed_too():
    out = cm.container_config(container_cfg(), IMAGE, ['ENTRYPOINT ["/bin/app"]'])
    assert out["Entrypoint"] == ["/bin/app"] and "Cmd" not in out
    out = cm.container_config(container_cfg(), IMAGE, ['ENTRYPOINT ["/bin/app"]', 'CMD ["-v"]'])
    assert out["Entrypoint"] == ["/bin/app"] and out["Cmd"] == ["-v"]
    out = cm.container_config(container_cfg(), IMAGE, ["CMD echo hi", "WORKDIR /x", "USER 0"])
    assert out["Cmd"] == ["/bin/sh", "-c", "echo hi"] and out["WorkingDir"] == "/x"
    assert out["User"] == "0"


def test_runtime_env_inferred_for_old_containers():
    cfg = container_cfg(Env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                             "HOSTNAME=abc", "TERM=xterm", "MINE=1"], Tty=True)
    del cfg["RuntimeEnv"]
    out = cm.container_config(cfg, {"Cmd": ["sh"]})
    assert out["Env"] == ["MINE=1"]


def test_bad_change_is_a_usage_error():
    from core.errors import NutshellError

    with pytest.raises(NutshellError):
        cm.container_config(container_cfg(), IMAGE, ["RUN rm -rf /"])


def _tree(tmp_path) -> str:
    root = tmp_path / "tree"
    (root / "d").mkdir(parents=True)
    for i in range(40):
        (root / "d" / f"f{i}").write_bytes(os.urandom(3000) + b"text " * 2000)
    os.link(root / "d" / "f0", root / "hard")
    os.symlink("d/f1", root / "link")
    return str(root)


class Sink(io.BytesIO):
    pass


@pytest.mark.parametrize("kind", ["inline", "threaded", "pigz", "isal", "zstd"])
def test_outputs_agree_on_the_tar(tmp_path, kind):
    if kind == "pigz" and not shutil.which("pigz"):
        pytest.skip("pigz is not installed")
    tree = _tree(tmp_path)
    ref = LayerOutput(Sink(), "none")
    write_tree(tree, ref)
    ref.close()
    sink = Sink()
    if kind == "zstd":
        out = open_output(sink, "zstd")
    else:
        out = open_output(sink, "gzip", engine={"inline": "zlib-inline", "threaded": "zlib",
                                                "pigz": "pigz", "isal": "isal"}[kind])
    assert isinstance(out, {"inline": LayerOutput, "threaded": ThreadedOutput,
                            "pigz": PigzOutput, "isal": IsalOutput, "zstd": LayerOutput}[kind])
    write_tree(tree, out)
    out.close()
    blob = sink.getvalue()
    assert out.diff_id == ref.diff_id and out.size == ref.size
    assert out.digest == "sha256:" + hashlib.sha256(blob).hexdigest() and out.blob_size == len(blob)
    if kind == "zstd":
        import zstandard

        raw = zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    else:
        raw = gzip.decompress(blob)
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == ref.diff_id
    if kind == "isal":          # the same input gives the same blob (mtime 0 in the header)
        again = open_output(Sink(), "gzip", engine="isal")
        write_tree(tree, again)
        again.close()
        assert again.digest == out.digest


def test_pigz_failure_is_raised(tmp_path):
    if not shutil.which("pigz"):
        pytest.skip("pigz is not installed")
    out = PigzOutput(Sink(), level=6, binary="false")     # exits at once with status 1
    with pytest.raises(OSError):
        for _ in range(64):
            out.write(b"x" * (1 << 20))
        out.close()


def test_write_layer_and_create_image_on_a_store(tmp_path):
    store = Store(resolve(str(tmp_path / "root")))
    store.ensure()
    tree = _tree(tmp_path)
    with store.lease():
        layer = cm.write_layer(store, tree, overlay=False, exclude={"d/f3", "link"})
        img = cm.create_image(store, None, {"Cmd": ["sh"]}, [layer],
                              [{"created_by": "test"}], ref="localhost/unit/img:1",
                              author="me", base_config={"architecture": "amd64", "os": "linux"})
    assert img.repo_tags == ["localhost/unit/img:1"]
    assert img.diff_ids == [layer["diff_id"]] and img.config["author"] == "me"
    assert img.config["config"] == {"Cmd": ["sh"]} and img.config["history"] == [{"created_by": "test"}]
    assert img.manifest["layers"][0]["mediaType"].endswith("tar+gzip")
    with store.open_blob(layer["descriptor"]["digest"]) as f:
        names = tarfile.open(fileobj=io.BytesIO(gzip.decompress(f.read()))).getnames()
    assert "d/f2" in names and "d/f3" not in names and "link" not in names and "hard" in names
    # a child of it: parent layers are listed first, history appended
    with store.lease():
        child = cm.create_image(store, img, {"Cmd": ["true"]}, [], [{"created_by": "meta",
                                                                      "empty_layer": True}])
    assert child.diff_ids == img.diff_ids and len(child.config["history"]) == 2
    assert [x["digest"] for x in child.manifest["layers"]] == [x["digest"] for x in img.manifest["layers"]]
    # layers are unpacked from the blob on demand and match the tree
    from core.fs.imagemount import readable_all

    dirs = readable_all(store.layer_dirs(child))
    assert open(os.path.join(dirs[0], "d/f2"), "rb").read() == open(os.path.join(tree, "d/f2"), "rb").read()
    assert json.loads(store.read_blob(child.manifest_digest))["config"]["digest"] == child.id
