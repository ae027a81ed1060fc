import pytest

from core.errors import InvalidReference
from core.reference import looks_like_id, parse, validate_digest

D = "sha256:" + "a" * 64


@pytest.mark.parametrize("text,full,familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("me/app", "docker.io/me/app:latest", "me/app:latest"),
    ("me/sub/app:v2", "docker.io/me/sub/app:v2", "me/sub/app:v2"),
    ("localhost/busybox", "localhost/busybox:latest", "localhost/busybox:latest"),
    ("localhost:5000/x/y:1", "localhost:5000/x/y:1", "localhost:5000/x/y:1"),
    ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest", "127.0.0.1:5000/x:latest"),
    ("quay.io/a/b", "quay.io/a/b:latest", "quay.io/a/b:latest"),
    (f"busybox@{D}", f"docker.io/library/busybox@{D}", f"busybox@{D}"),
    (f"busybox:1@{D}", f"docker.io/library/busybox:1@{D}", f"busybox:1@{D}"),
    ("a__b/c-d.e:Tag_1.0-x", "docker.io/a__b/c-d.e:Tag_1.0-x", "a__b/c-d.e:Tag_1.0-x"),
])
def test_normalisation(text, full, familiar):
    r = parse(text)
    assert str(r) == full
    assert r.familiar() == familiar


def test_registry_host_for_docker_hub():
    assert parse("busybox").registry_host == "registry-1.docker.io"
    assert parse("localhost:5000/x").registry_host == "localhost:5000"


@pytest.mark.parametrize("bad", ["", " busybox", "BusyBox", "a//b", "a/b/", "-x", "x:", "x:-tag",
                                 "x@sha256:short", "x@md5:" + "a" * 32, "x:" + "t" * 129,
                                 "a" * 256, "a:b:c", "a/B", "host:port/x"])
def test_malformed(bad):
    with pytest.raises(InvalidReference):
        parse(bad)


def test_uppercase_message():
    with pytest.raises(InvalidReference, match="must be lowercase"):
        parse("Me/App")


def test_digest_validation_and_ids():
    assert validate_digest(D) == D
    for bad in ("sha256:" + "A" * 64, "sha256:" + "a" * 63, "sha256:../../etc", "a" * 64):
        with pytest.raises(InvalidReference):
            validate_digest(bad)
    assert looks_like_id("abc123") and looks_like_id("sha256:abc") and not looks_like_id("busybox")


def test_the_regex_free_path_accepts_only_what_the_grammar_accepts():
    """``_plain`` and the docker.io shortcut skip the regular expressions for plain names:
    every path they accept, PATH_RE accepts too, over names built from the characters
    that matter (separators, case, slashes, non-ASCII letters and digits)."""
    import itertools
    import random

    from core import reference

    rng = random.Random(16)
    alphabet = "ab09Z._-/_é²"
    samples = {"".join(p) for n in range(1, 4) for p in itertools.product("a0Z./-", repeat=n)}
    samples |= {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
                for _ in range(5000)}
    for path in samples:
        if reference._plain(path):
            assert reference.PATH_RE.match(path), path
    assert reference._plain("library/busybox") and not reference._plain("my-app/x")
    assert reference.DOMAIN_RE.match(reference.DEFAULT_DOMAIN)


def test_the_regex_free_tag_and_digest_checks_agree_with_the_patterns():
    import random

    from core import reference

    rng = random.Random(17)
    for _ in range(3000):
        tag = "".join(rng.choice("aZ09_.-é ") for _ in range(rng.choice([0, 1, 5, 128, 129])))
        plain = 0 < len(tag) <= 128 and tag.isascii() and tag.isalnum()
        if plain:
            assert reference.TAG_RE.match(tag), tag
        digest = rng.choice(["sha256:", "sha512:", "sha256", "md5:"]) + "".join(
            rng.choice("0123456789abcdefA g") for _ in range(rng.choice([63, 64, 65, 128])))
        assert reference.is_digest(digest) == bool(reference.DIGEST_RE.match(digest)), digest
    good = "sha256:" + "0123456789abcdef" * 4
    assert reference.is_digest(good) and reference.is_digest("sha512:" + "a" * 128)
    assert not reference.is_digest(good + "\n") and not reference.is_digest(None)


def test_lazy_patterns_compile_once_on_first_use():
    from core.importcost import LazyPattern

    p = LazyPattern(r"^a+\Z")
    assert p._compiled is None
    assert p.match("aaa") and not p.match("aab") and p.pattern == r"^a+\Z"
    first = p._compiled
    assert p.fullmatch("a") and p._compiled is first


def test_a_plain_name_compiles_no_pattern():
    import subprocess
    import sys

    code = ("import core.reference as r; r.parse('busybox'); r.parse('bench/busybox')\n"
            "r.parse('bench/busybox:latest'); r.validate_digest('sha256:' + 'ab' * 32)\n"
            "print(sorted(n for n in r._PATTERNS if n in vars(r)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
