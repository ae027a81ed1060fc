"""Property tests of every parser that takes untrusted text or bytes (issue 13): image
references, the tar reader, manifests and image configs, the Dockerfile parser,
``.dockerignore`` patterns, ``-p``/``-v``/``--mount`` specs and detach keys. Whatever the
input, each either succeeds or raises a NutshellError (one clear line, exit 125) —
never another exception, never a hang.

The default run is derandomized (a fixed seed, a few hundred examples per parser, about
ten seconds in all); tests/benchmarks/bench_parsers_property.py runs the same properties
for longer with random seeds (NUTSHELL_PROPERTY_EXAMPLES).
"""

from __future__ import annotations

import io
import json
import os
import string
import tarfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import NutshellError

EXAMPLES = int(os.environ.get("NUTSHELL_PROPERTY_EXAMPLES", "300"))
DERANDOMIZE = EXAMPLES <= 300       # the default run is reproducible; the benchmark is not
PROPERTY = settings(max_examples=EXAMPLES, derandomize=DERANDOMIZE, deadline=None,
                    database=None, suppress_health_check=[HealthCheck.too_slow])


def only_nutshell_errors(fn, *args, **kwargs):
    """Call ``fn``; a NutshellError is an acceptable answer, anything else fails."""
    try:
        return fn(*args, **kwargs)
    except NutshellError as exc:
        text = str(exc)
        assert text and "Traceback" not in text
        return None


# text that looks like the real thing more often than random unicode does
REF_ALPHABET = string.ascii_letters + string.digits + "./:@-_+" + "\n\t \x00é"
refs = st.one_of(
    st.text(alphabet=REF_ALPHABET, max_size=80),
    st.builds(lambda host, path, tag: f"{host}/{path}:{tag}",
              st.sampled_from(["", "localhost:5000", "docker.io", "a.b", "[::1]:5000", "-x", "HOST"]),
              st.text(alphabet=string.ascii_lowercase + "/._-", max_size=40),
              st.text(alphabet=string.ascii_letters + "._-", max_size=140)),
    st.builds(lambda name, hexd: f"{name}@sha256:{hexd}",
              st.text(alphabet=string.ascii_lowercase + "/", max_size=20),
              st.text(alphabet="0123456789abcdefABCDEF\n", min_size=60, max_size=66)),
)


@PROPERTY
@given(refs)
def test_image_references(text):
    from core.reference import parse

    ref = only_nutshell_errors(parse, text)
    if ref is not None:
        # what parses prints back to something that parses to the same thing
        assert parse(str(ref)) == ref
        assert "\n" not in str(ref) and "\x00" not in str(ref)


# ---- the tar reader ---------------------------------------------------------------------


def _valid_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in (("a", b"hello"), ("dir/b", b"x" * 700), ("ünï", b"")):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.pax_headers = {"comment": "c" * 20}
            tf.addfile(ti, io.BytesIO(data))
        ln = tarfile.TarInfo("l")
        ln.type, ln.linkname = tarfile.SYMTYPE, "a"
        tf.addfile(ln)
    return buf.getvalue()


VALID_TAR = _valid_tar()


@st.composite
def mutated_tars(draw):
    data = bytearray(VALID_TAR[:draw(st.integers(0, len(VALID_TAR)))])
    for _ in range(draw(st.integers(0, 8))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.sampled_from([0, 0x20, 0x30, 0x37, 0x80, 0xFF, ord("x"), ord("L"), ord("S"),
                                        draw(st.integers(0, 255))]))
    return bytes(data)


@PROPERTY
@given(st.one_of(mutated_tars(), st.binary(max_size=3000)))
def test_tar_reader(data):
    from core.store.tarreader import TarReader

    def read_all():
        tr = TarReader(io.BytesIO(data))
        n = 0
        for e in tr:
            n += 1
            assert isinstance(e.name, str) and e.size >= 0
            while tr.read_data(4096):
                pass
        return n

    only_nutshell_errors(read_all)


# ---- manifests and image configs ---------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)

DIGEST = "sha256:" + "a" * 64


@st.composite
def manifest_like(draw):
    """A manifest with some fields replaced by arbitrary JSON."""
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST, "size": 2},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": DIGEST, "size": 1}],
           "manifests": None}
    del doc["manifests"]
    for key in draw(st.lists(st.sampled_from(["schemaVersion", "mediaType", "config", "layers", "manifests"]),
                             max_size=3)):
        doc[key] = draw(json_values)
    return doc


@PROPERTY
@given(st.one_of(manifest_like(), json_values), st.sampled_from([None, "application/json",
                                                                 "application/vnd.oci.image.index.v1+json"]))
def test_manifests(doc, content_type):
    from core.registry.manifest import parse_manifest

    raw = json.dumps(doc).encode()
    only_nutshell_errors(parse_manifest, raw, content_type, None)


@PROPERTY
@given(st.binary(max_size=200))
def test_manifest_bytes(raw):
    from core.registry.manifest import parse_manifest

    only_nutshell_errors(parse_manifest, raw, None, None)


@st.composite
def config_like(draw):
    cfg = {"architecture": "amd64", "os": "linux",
           "config": {"Env": ["A=1"], "Cmd": ["sh"], "Entrypoint": None, "Labels": {"a": "b"},
                      "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/v": {}}, "WorkingDir": "/"},
           "rootfs": {"type": "layers", "diff_ids": [DIGEST]}, "history": [{"created_by": "x"}]}
    for key in draw(st.lists(st.sampled_from(["architecture", "os", "config", "rootfs", "history"]),
                             max_size=2)):
        cfg[key] = draw(json_values)
    inner = cfg["config"] if isinstance(cfg["config"], dict) else {}
    for key in draw(st.lists(st.sampled_from(["Env", "Cmd", "Entrypoint", "Labels", "ExposedPorts",
                                              "Volumes", "WorkingDir", "User", "StopSignal"]), max_size=3)):
        inner[key] = draw(json_values)
    return cfg


@PROPERTY
@given(st.one_of(config_like(), json_values))
def test_image_configs(cfg):
    from core.store.image import check_config

    only_nutshell_errors(check_config, cfg)


# ---- Dockerfiles and .dockerignore ----------------------------------------------------------

INSTRUCTIONS = ["FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
                "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER",
                "# syntax=docker/dockerfile:1", "# escape=`", "from", "copy --from=0", "RUN <<EOF"]
DOCKERFILE_BITS = st.one_of(
    st.sampled_from(INSTRUCTIONS),
    st.text(alphabet=string.printable + "é€\x00", max_size=30),
    st.sampled_from(["$A", "${A:-x}", "${A%%\\**}", "${A//\\//\\/}", "[\"a\", \"b\"]", "\\\n", "<<EOF\nx\nEOF",
                     "--mount=type=cache,target=/x", "--chown=1:1", "--interval=0s", "CMD", "EOF"]))


@PROPERTY
@given(st.lists(st.lists(DOCKERFILE_BITS, min_size=1, max_size=6).map(" ".join), max_size=8).map("\n".join))
def test_dockerfiles(text):
    from core.dockerfile.parser import parse

    only_nutshell_errors(parse, "FROM scratch\n" + text, {"A": "1"})
    only_nutshell_errors(parse, text)


@PROPERTY
@given(st.lists(st.text(alphabet=string.printable + "é[]\\!*?", max_size=20), max_size=6),
       st.text(alphabet=string.ascii_letters + "/._-[]\\*", max_size=30))
def test_dockerignore_patterns(lines, path):
    from core.dockerfile.dockerignore import PatternMatcher, read_patterns

    patterns = only_nutshell_errors(read_patterns, "\n".join(lines))
    if patterns is None:
        return
    matcher = only_nutshell_errors(PatternMatcher, patterns)
    if matcher is not None:
        only_nutshell_errors(matcher.excluded, path)


# ---- run flags -----------------------------------------------------------------------------

SPEC_ALPHABET = string.ascii_letters + string.digits + ":/.,=-[]" + " \n\x00"
specs = st.one_of(
    st.text(alphabet=SPEC_ALPHABET, max_size=40),
    st.lists(st.sampled_from(["8080", "80", "127.0.0.1", "[::1]", "udp", "tcp", "sctp", "65536", "0",
                              "1-3", "3-1", "/data", "ro", "rw,z", "vol", "", "x=y", "type=bind",
                              "source=/s", "target=/t", "readonly", "tmpfs-size=1k", "bind-propagation=rshared"]),
             max_size=5).flatmap(lambda parts: st.sampled_from([":", ",", "/"]).map(lambda sep: sep.join(parts))),
)


@PROPERTY
@given(specs)
def test_publish_volume_and_mount_specs(spec):
    from core.network.ports import parse_publish
    from core.volumes.mounts import parse_mount, parse_volume

    only_nutshell_errors(parse_publish, spec)
    only_nutshell_errors(parse_volume, spec)
    only_nutshell_errors(parse_mount, spec)


@PROPERTY
@given(st.one_of(st.text(alphabet=string.ascii_letters + ",-@[\\]^_" + "\x00é", max_size=30),
                 st.lists(st.sampled_from(["ctrl-p", "ctrl-q", "ctrl-@", "ctrl-[", "ctrl-", "a", "ctrl-é",
                                           "", "ctrl-ctrl-a"]), max_size=4).map(",".join)))
def test_detach_keys(spec):
    from core.runtime.attach import parse_detach_keys

    keys = only_nutshell_errors(parse_detach_keys, spec)
    if keys is not None:
        assert isinstance(keys, bytes)
