""".dockerignore reading and matching (core.dockerfile.dockerignore)."""

from __future__ import annotations

import pytest

from core.dockerfile.dockerignore import (
    BadPattern,
    PatternMatcher,
    clean,
    has_wildcards,
    ignore_file_for,
    load,
    match,
    read_patterns,
)

# --------------------------------------------------------------------------- Go filepath.Match

# (pattern, name, result); None means Go returns ErrBadPattern.
GO_MATCH = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", False),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a\u263ab", True),
    ("a[^a]b", "a\u263ab", True),
    ("a???b", "a\u263ab", False),
    ("[a-\u03b6]*", "\u03b1", True),
    ("*[a-\u03b6]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "a", False),
    ("[!a]", "!", True),  # Go classes negate with ^ only
    ("*x", "xxx", True),
    ("", "", True),
    ("", "a", False),
    ("*", "", True),
    ("[]a]", "]", None),
    ("[-]", "-", None),
    ("[x-]", "x", None),
    ("[-x]", "x", None),
    ("\\", "a", None),
    ("[a-b-c]", "a", None),
    ("[", "a", None),
    ("[^", "a", None),
    ("[^bc", "a", None),
    ("a[", "a", None),
    ("a[", "ab", None),
    ("a[", "x", None),
    ("a/b[", "x", None),
    ("*[", "x", None),
]


@pytest.mark.parametrize("pattern, name, expected", GO_MATCH)
def test_go_filepath_match(pattern, name, expected):
    if expected is None:
        with pytest.raises(BadPattern):
            match(pattern, name)
    else:
        assert match(pattern, name) is expected


@pytest.mark.parametrize("path, expected", [
    ("a.txt", False), ("*.txt", True), ("a?", True), ("[ab]", True),
    ("\\*.txt", False), ("dir\\[1]", False), ("a\\\\*", True),
])
def test_has_wildcards(path, expected):
    assert has_wildcards(path) is expected


@pytest.mark.parametrize("path, expected", [
    ("", "."), (".", "."), ("a/", "a"), ("./a/./b", "a/b"), ("a/../b", "b"),
    ("//a", "/a"), ("/..", "/"), ("../a", "../a"), ("a//b", "a/b"),
])
def test_clean_is_go_filepath_clean(path, expected):
    assert clean(path) == expected


# --------------------------------------------------------------------------- reading

def test_read_patterns():
    text = (
        "\ufeff# comment\n"
        "\n"
        "   \n"
        "  *.log  \n"
        "/abs/path\n"
        "!  /keep.log\n"
        "./dir/../other/\n"
        "  # not a comment: only a leading # is\n"
        "a//b/\n"
        "!\n"
    )
    assert read_patterns(text) == [
        "*.log", "abs/path", "!keep.log", "other", "# not a comment: only a leading # is",
        "a/b", "!",
    ]


def test_lone_exclamation_is_an_error():
    with pytest.raises(BadPattern, match="illegal exclusion pattern"):
        PatternMatcher(read_patterns("!\n"))


def test_malformed_pattern_is_an_error():
    with pytest.raises(BadPattern, match=r"\[abc"):
        PatternMatcher(["ok", "[abc"])


# --------------------------------------------------------------------------- matching

def excluded(patterns, path):
    return PatternMatcher(patterns).excluded(path)


@pytest.mark.parametrize("patterns, path, expected", [
    (["*.log"], "debug.log", True),
    (["*.log"], "app/debug.log", False),           # * never crosses a directory
    (["**/*.log"], "app/deep/debug.log", True),
    (["**/*.log"], "debug.log", True),             # ** also matches no directory
    (["**"], "anything/at/all", True),
    (["**/foo"], "foo", True),
    (["**/foo"], "a/b/foo", True),
    (["**/foo"], "xfoo", False),
    (["dir/**"], "dir/a/b", True),
    (["a*/**/b"], "abc/x/y/b", True),
    (["a*/**/b"], "abc/b", True),
    (["docs"], "docs/deep/file.md", True),          # a parent directory matching excludes
    (["docs"], "docsx", False),
    (["doc?"], "docs/a", True),
    (["doc[st]"], "doct", True),
    (["doc[^st]"], "docs", False),
    (["a.b"], "axb", False),                        # '.' is literal
    (["a+(b)"], "a+(b)", True),
    (["abc"], "abc/", True),
    (["/abs"], "abs", False),                       # PatternMatcher alone keeps '/'; read_patterns strips it
    (read_patterns("/abs"), "abs", True),
    (["*", "!keep"], "keep", False),
    (["*", "!keep"], "other", True),
    (["dir", "!dir/keep"], "dir/keep", False),
    (["dir", "!dir/keep"], "dir/keep/inner", False),
    (["dir", "!dir/keep"], "dir/other", True),
    (["!dir/keep", "dir"], "dir/keep", True),       # the last matching line wins
    (["*.md", "!README.md", "README*"], "README.md", True),
    (["x/y", "!x"], "x/y/z", False),                # an exception matching a parent re-includes
    (["a\\*b"], "a*b", True),
    (["a\\*b"], "axb", False),
    (["**/cache"], "app/lib/cache/more.bin", True),
    (["app/**/cache"], "app/cache/junk", True),
    (["app/**/cache"], "other/cache", False),
    ([], "anything", False),
    (["*"], ".", False),                            # the context root is never excluded
])
def test_pattern_matcher(patterns, path, expected):
    assert excluded(patterns, path) is expected


def test_vector_reuse_gives_the_same_answers_as_full_matching():
    m = PatternMatcher(["docs", "!docs/keep*", "**/*.tmp", "build/**", "!build/out/final"])
    paths = ["docs", "docs/a", "docs/keep.md", "docs/keep/x.tmp", "src/a.tmp", "src/a.c",
             "build", "build/out", "build/out/final", "build/out/other"]
    vectors = {"": tuple(False for _ in m.patterns)}
    for path in paths:
        parent = path.rpartition("/")[0]
        if parent not in vectors:
            vectors[parent] = m.vector(parent)
        vec = m.vector(path, vectors[parent])
        vectors[path] = vec
        assert m.excluded_from(vec) == m.excluded(path), path
    assert m.exclusions and not PatternMatcher(["a"]).exclusions


def test_load_prefers_dockerfile_specific_ignore_file(tmp_path):
    (tmp_path / ".dockerignore").write_text("*.a\n")
    (tmp_path / "sub").mkdir()
    dockerfile = tmp_path / "sub" / "app.Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    assert load(str(tmp_path)).excluded("x.a")
    assert ignore_file_for(str(tmp_path), str(dockerfile)) == str(tmp_path / ".dockerignore")
    (tmp_path / "sub" / "app.Dockerfile.dockerignore").write_text("*.b\n")
    m = load(str(tmp_path), str(dockerfile))
    assert m.excluded("x.b") and not m.excluded("x.a")


def test_load_without_ignore_file_excludes_nothing(tmp_path):
    m = load(str(tmp_path))
    assert not m and not m.excluded("anything")
