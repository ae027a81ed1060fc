""".dockerignore: read the patterns and match paths the way Docker does.

Two matchers live here, because Docker uses two:

* :func:`match` is Go's ``path/filepath.Match``: ``*`` and ``?`` never match ``/``,
  ``[a-z]``/``[^a-z]`` classes, backslash escapes. COPY/ADD sources are globbed with it
  (see core.dockerfile.context).
* :class:`PatternMatcher` is moby/patternmatcher, used for ``.dockerignore``: the same
  syntax plus ``**`` (any number of directories, including none), patterns cleaned like
  paths, a path excluded when it *or one of its parent directories* matches, ``!``
  exceptions re-including what earlier lines excluded (the last matching line wins).

:func:`read_patterns` is moby/patternmatcher/ignorefile.ReadAll: lines starting with
``#`` are comments, blank lines are skipped, surrounding whitespace is trimmed, a
leading ``/`` is dropped (patterns are relative to the context root).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.errors import NutshellError

__all__ = [
    "BadPattern",
    "match",
    "has_wildcards",
    "clean",
    "read_patterns",
    "Pattern",
    "PatternMatcher",
    "load",
    "ignore_file_for",
]


class BadPattern(NutshellError):
    """A malformed glob pattern (unclosed ``[``, trailing backslash, bad range...)."""


# --------------------------------------------------------------------------- Go filepath.Match

def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    """Split off leading stars and the literal/class chunk up to the next star."""
    star = False
    while pattern.startswith("*"):
        pattern = pattern[1:]
        star = True
    in_range = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif ch == "[":
            in_range = True
        elif ch == "]":
            in_range = False
        elif ch == "*" and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _get_escaped(chunk: str) -> tuple[str, str]:
    """One (possibly escaped) character of a class; raises BadPattern when malformed."""
    if not chunk or chunk[0] in "-]":
        raise BadPattern("syntax error in pattern")
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise BadPattern("syntax error in pattern")
    ch, rest = chunk[0], chunk[1:]
    if not rest:
        raise BadPattern("syntax error in pattern")
    return ch, rest


def _match_chunk(chunk: str, s: str) -> str | None:
    """Match ``chunk`` at the start of ``s``; the rest of ``s``, or None on mismatch.

    Like Go, the whole chunk is always read so that syntax errors surface even when the
    name has already failed to match.
    """
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        head = chunk[0]
        if head == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk = chunk[1:]
            negated = False
            if chunk.startswith("^"):
                negated = True
                chunk = chunk[1:]
            matched = False
            nrange = 0
            while True:
                if chunk.startswith("]") and nrange > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_escaped(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _get_escaped(chunk[1:])
                if lo <= r <= hi:
                    matched = True
                nrange += 1
            if matched == negated:
                failed = True
        elif head == "?":
            if not failed:
                if s[0] == "/":
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
        else:
            if head == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise BadPattern("syntax error in pattern")
            if not failed:
                if chunk[0] != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    return None if failed else s


def match(pattern: str, name: str) -> bool:
    """Go's ``filepath.Match(pattern, name)`` on '/'-separated paths.

    Raises :class:`BadPattern` for a malformed pattern (checked in full, as Go does).
    """
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name  # a trailing * matches the rest of this component
        rest = _match_chunk(chunk, name)
        if rest is not None and (not rest or pattern):
            name = rest
            continue
        if star:
            advanced = False
            i = 0
            while i < len(name) and name[i] != "/":
                rest = _match_chunk(chunk, name[i + 1:])
                if rest is not None:
                    if not pattern and rest:
                        i += 1
                        continue
                    name = rest
                    advanced = True
                    break
                i += 1
            if advanced:
                continue
        # No match: still report a malformed remainder of the pattern.
        while pattern:
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "")
        return False
    return not name


def has_wildcards(path: str) -> bool:
    """Whether ``path`` has an unescaped ``*``, ``?`` or ``[`` (Docker's containsWildcards)."""
    i = 0
    while i < len(path):
        ch = path[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "*?[":
            return True
        i += 1
    return False


def clean(path: str) -> str:
    """Go's ``filepath.Clean``: lexical ``.``/``..`` removal, one leading slash at most."""
    out = posixpath.normpath(path) if path else "."
    if out.startswith("//"):
        out = "/" + out.lstrip("/")
    return out


# --------------------------------------------------------------------------- .dockerignore

def read_patterns(text: str) -> list[str]:
    """The patterns of a ``.dockerignore`` file, cleaned (exceptions keep their ``!``)."""
    out: list[str] = []
    if text.startswith("\ufeff"):
        text = text[1:]
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        out.append("!" + pattern if invert else pattern)
    return out


_EXACT, _PREFIX, _SUFFIX, _REGEX = range(4)


@dataclass
class Pattern:
    """One .dockerignore line, compiled like moby/patternmatcher."""

    text: str          # the cleaned pattern, without '!'
    exclusion: bool    # True for '!' lines (they re-include)

    def __post_init__(self) -> None:
        self._kind, self._regex = _compile(self.text)

    def matches(self, path: str) -> bool:
        """Whether ``path`` itself (no parent check) matches."""
        if self._kind == _EXACT:
            return path == self.text
        if self._kind == _PREFIX:
            return path.startswith(self.text[:-2])
        if self._kind == _SUFFIX:
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        return self._regex is not None and self._regex.match(path) is not None


def _class_regex(pattern: str, i: int) -> tuple[str, int]:
    """Translate the bracket expression starting at ``pattern[i] == '['``."""
    j = i + 1
    negated = False
    if j < len(pattern) and pattern[j] == "^":
        negated = True
        j += 1
    items: list[str] = []
    first = True
    while j < len(pattern):
        ch = pattern[j]
        if ch == "]" and not first:
            j += 1
            break
        first = False
        if ch == "\\" and j + 1 < len(pattern):
            j += 1
            ch = pattern[j]
        item = _class_char(ch)
        if j + 2 < len(pattern) and pattern[j + 1] == "-" and pattern[j + 2] != "]":
            hi = pattern[j + 2]
            if hi == "\\" and j + 3 < len(pattern):
                hi = pattern[j + 3]
                j += 1
            item += "-" + _class_char(hi)
            j += 2
        items.append(item)
        j += 1
    body = "".join(items)
    if negated:
        return "[^" + body + "]", j
    return "[" + body + "]", j


def _class_char(ch: str) -> str:
    return "\\" + ch if ch in "\\]^-[" else ch


def _compile(text: str) -> tuple[int, re.Pattern[str] | None]:
    """Classify and translate a cleaned pattern (moby/patternmatcher's Pattern.compile)."""
    regex = ["^"]
    kind = _EXACT
    i = 0
    token = 0
    n = len(text)
    while i < n:
        ch = text[i]
        i += 1
        if ch == "*":
            if i < n and text[i] == "*":
                i += 1
                if i < n and text[i] == "/":
                    i += 1
                if i >= n:
                    if kind == _EXACT:
                        kind = _PREFIX
                    else:
                        regex.append(".*")
                        kind = _REGEX
                else:
                    regex.append("(.*/)?")
                    kind = _REGEX
                if token == 0:
                    kind = _SUFFIX
            else:
                regex.append("[^/]*")
                kind = _REGEX
        elif ch == "?":
            regex.append("[^/]")
            kind = _REGEX
        elif ch == "\\":
            if i < n:
                regex.append(re.escape(text[i]))
                i += 1
                kind = _REGEX
            else:
                regex.append(re.escape(ch))
        elif ch == "[":
            part, i = _class_regex(text, i - 1)
            regex.append(part)
            kind = _REGEX
        else:
            regex.append(re.escape(ch))
        token += 1
    if kind != _REGEX:
        return kind, None
    regex.append(r"\Z")
    try:
        return kind, re.compile("".join(regex))
    except re.error:
        raise BadPattern(f"syntax error in pattern: {text}") from None


class PatternMatcher:
    """Decides which context paths a ``.dockerignore`` excludes.

    ``excluded(path)`` is Docker's MatchesOrParentMatches: a path is excluded when the
    last pattern matching it (or one of its parent directories) is not an exception.
    ``vector``/``excluded_from`` let a directory walk reuse the parent's results.
    """

    def __init__(self, patterns: Iterable[str] = ()):
        self.patterns: list[Pattern] = []
        for raw in patterns:
            text = raw.strip()
            if not text:
                continue
            text = clean(text)
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise BadPattern('illegal exclusion pattern: "!"')
                text = text[1:]
            try:
                match(text, ".")  # syntax check, as Docker does
            except BadPattern:
                raise BadPattern(f"syntax error in .dockerignore pattern: {raw}") from None
            self.patterns.append(Pattern(text, exclusion))

    @property
    def exclusions(self) -> bool:
        """Whether any ``!`` exception exists (then excluded directories must be walked)."""
        return any(p.exclusion for p in self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def vector(self, path: str, parent: Sequence[bool] | None = None) -> tuple[bool, ...]:
        """For each pattern: does it match ``path`` or one of its parents?

        ``parent`` is the vector of ``path``'s parent directory (None: computed here).
        """
        if parent is None:
            parent = self._parent_vector(path)
        return tuple(bool(parent[k]) or p.matches(path) for k, p in enumerate(self.patterns))

    def _parent_vector(self, path: str) -> tuple[bool, ...]:
        vec = tuple(False for _ in self.patterns)
        parts = path.split("/")[:-1]
        for k in range(len(parts)):
            vec = self.vector("/".join(parts[:k + 1]), vec)
        return vec

    def excluded_from(self, vec: Sequence[bool]) -> bool:
        """The verdict for a vector from :meth:`vector` (last matching pattern wins)."""
        verdict = False
        for hit, pattern in zip(vec, self.patterns, strict=True):
            if hit and pattern.exclusion == verdict:
                verdict = not pattern.exclusion
        return verdict

    def excluded(self, path: str) -> bool:
        """Whether the context path ``path`` ('/'-separated, relative) is excluded."""
        path = clean(path)
        if path in (".", ""):
            return False  # Docker refuses to exclude the whole context
        return self.excluded_from(self.vector(path))


def ignore_file_for(context_dir: str, dockerfile: str | None = None) -> str | None:
    """The ignore file that applies: ``<Dockerfile>.dockerignore`` beside a Dockerfile
    (BuildKit) if present, else ``<context>/.dockerignore``; None when neither exists."""
    if dockerfile:
        specific = dockerfile + ".dockerignore"
        if os.path.isfile(specific):
            return specific
    default = os.path.join(context_dir, ".dockerignore")
    return default if os.path.isfile(default) else None


def load(context_dir: str, dockerfile: str | None = None) -> PatternMatcher:
    """The matcher for a build context (empty when there is no ignore file)."""
    path = ignore_file_for(context_dir, dockerfile)
    if path is None:
        return PatternMatcher()
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return PatternMatcher(read_patterns(f.read()))
