"""Dockerfile front end: parse a Dockerfile, expand variables like Docker's shell lexer.

``parse(text, build_args)`` turns the text into a :class:`Dockerfile`: parser directives,
the ``ARG``s before the first ``FROM`` (usable only in ``FROM`` lines), and one
:class:`Stage` per ``FROM`` holding its :class:`Instruction`s. Parsing follows BuildKit's
Dockerfile parser (``frontend/dockerfile/parser``) line by line, so quirks users rely on
behave the same: comment lines inside a continued instruction are dropped, a ``#`` in the
middle of a line is not a comment, invalid JSON in ``RUN ["...`` falls back to the shell
form, ``COPY "a b" c`` splits on whitespace (paths with spaces need the JSON form).

Parsing does not expand variables, because expansion needs the base image's ``ENV``
(``FROM golang`` then ``WORKDIR $GOPATH/src``). The builder asks for that per stage:
``dockerfile.steps(stage, base_env)`` returns one :class:`Step` per instruction with the
arguments expanded where Docker expands them (ADD COPY ENV EXPOSE LABEL STOPSIGNAL USER
VOLUME WORKDIR; never RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK or ONBUILD, whose text the
shell or a later build sees) and the environment in force after the step.

Everything here is pure Python and side-effect free; errors are
:class:`DockerfileSyntaxError` naming the file and line: ``Dockerfile:7: unknown
instruction: RUNN``.
"""

from __future__ import annotations

import difflib
import json
import platform as _platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from core.errors import NutshellError

__all__ = [
    "DockerfileSyntaxError",
    "Dockerfile",
    "Stage",
    "Instruction",
    "Step",
    "Heredoc",
    "HealthCheck",
    "parse",
    "parse_instruction",
    "expand",
    "expand_words",
    "parse_duration",
    "normalize_ports",
    "INSTRUCTIONS",
    "PREDEFINED_ARGS",
    "DEFAULT_SHELL",
]


class DockerfileSyntaxError(NutshellError):
    """A Dockerfile that cannot be parsed or expanded; the message names the line."""

    def __init__(self, message: str, line: int | None = None, filename: str = "Dockerfile",
                 hint: str | None = None):
        self.detail = message
        self.line = line
        self.filename = filename
        where = f"{filename}:{line}" if line is not None else filename
        super().__init__(f"{where}: {message}" if where else message, hint=hint)


class _ParseError(Exception):
    """Internal: a message without a location, located by the caller."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


# --------------------------------------------------------------------------- constants

INSTRUCTIONS = (
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
    "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME",
    "WORKDIR",
)

#: Build args Docker accepts without an ARG line (and leaves out of history and cache keys).
PREDEFINED_ARGS = frozenset({
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
})

DEFAULT_SHELL = ("/bin/sh", "-c")

# The instructions whose arguments the builder (not the shell) expands.
_EXPANDED = frozenset({"ADD", "COPY", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER",
                       "VOLUME", "WORKDIR", "ARG"})

# Flag kinds per instruction: "str" needs =value, "bool" may stand alone, "list" repeats.
_FLAGS: dict[str, dict[str, str]] = {
    "FROM": {"platform": "str"},
    "COPY": {"from": "str", "chown": "str", "chmod": "str", "link": "bool", "parents": "bool",
             "exclude": "list"},
    "ADD": {"chown": "str", "chmod": "str", "link": "bool", "checksum": "str",
            "keep-git-dir": "bool", "exclude": "list"},
    "RUN": {"mount": "list", "network": "str", "security": "str"},
    "HEALTHCHECK": {"interval": "str", "timeout": "str", "start-period": "str",
                    "start-interval": "str", "retries": "str"},
}
# Flags whose values the builder expands (COPY --chown=$UID ...).
_EXPANDED_FLAGS = frozenset({"from", "chown", "chmod", "checksum"})

_HEREDOC_COMMANDS = frozenset({"RUN", "COPY", "ADD"})
MAX_LINE = 64 * 1024  # BuildKit's scanner limit for one line

_GO_SPACE = frozenset("\t\n\v\f\r \x85\xa0")


def _isspace(ch: str) -> bool:
    """Go's unicode.IsSpace (Python's str.isspace also counts \\x1c-\\x1f)."""
    return ch in _GO_SPACE or (ord(ch) > 0xFF and ch.isspace())


def _trim_space(s: str) -> str:
    i, j = 0, len(s)
    while i < j and _isspace(s[i]):
        i += 1
    while j > i and _isspace(s[j - 1]):
        j -= 1
    return s[i:j]


def _trim_left_space(s: str) -> str:
    i = 0
    while i < len(s) and _isspace(s[i]):
        i += 1
    return s[i:]


_RE_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_RE_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*\Z")
_RE_HEREDOC = re.compile(r"^(\d*)<<(-?)([^<]*)\Z")
_RE_LONE_HEREDOC = re.compile(r"^\d*<<-?\Z")
_RE_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*\Z")
_VALID_DIRECTIVES = ("escape", "syntax", "check")


# --------------------------------------------------------------------------- data

@dataclass(frozen=True)
class Heredoc:
    """A here-document attached to RUN/COPY/ADD (``RUN <<EOF``).

    ``content`` has the lines up to (not including) the terminator, each ending in a
    newline; with ``<<-`` (chomp) leading tabs are already removed. ``expand`` is false
    when the terminator word was quoted (``<<"EOF"``): the content is then literal.
    """

    name: str
    content: str
    chomp: bool = False
    expand: bool = True
    fd: int = 0


@dataclass(frozen=True)
class HealthCheck:
    """HEALTHCHECK as the image config stores it (durations in nanoseconds, 0 = inherit).

    ``test`` is ``["NONE"]``, ``["CMD", arg...]`` (exec form) or ``["CMD-SHELL", cmd]``.
    """

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0

    def to_config(self) -> dict:
        """The OCI/Docker config ``Healthcheck`` object (zero fields left out)."""
        out: dict[str, Any] = {"Test": list(self.test)}
        for key, value in (("Interval", self.interval), ("Timeout", self.timeout),
                           ("StartPeriod", self.start_period),
                           ("StartInterval", self.start_interval), ("Retries", self.retries)):
            if value:
                out[key] = value
        return out


@dataclass
class Instruction:
    """One instruction as written (nothing expanded yet).

    ``args`` follow Docker's parse tree: for RUN/CMD/ENTRYPOINT/SHELL the JSON list
    (``json_form``) or the single shell string; for COPY/ADD/EXPOSE/VOLUME/FROM the
    words (quotes kept: expansion removes them); for ENV/LABEL the flattened
    ``[k1, v1, k2, v2]``; for ARG the words (``a=1``, ``b``); for WORKDIR/USER/
    STOPSIGNAL/MAINTAINER the one string; for HEALTHCHECK ``[type, cmd...]``; for
    ONBUILD the trigger text. ``flags`` hold parsed ``--flag`` values (str, bool, or a
    list for repeatable ones such as ``--mount``); ``raw_flags`` as written.
    ``pairs`` are the (key, value) of ENV/LABEL/ARG (value None: ARG without default).
    """

    cmd: str
    original: str
    line: int
    end_line: int
    args: list[str] = field(default_factory=list)
    flags: dict[str, Any] = field(default_factory=dict)
    raw_flags: list[str] = field(default_factory=list)
    json_form: bool = False
    heredocs: list[Heredoc] = field(default_factory=list)
    pairs: list[tuple[str, str | None]] = field(default_factory=list)
    healthcheck: HealthCheck | None = None
    trigger: Instruction | None = None

    def __str__(self) -> str:
        return self.original


@dataclass
class Stage:
    """One ``FROM`` and the instructions up to the next.

    ``base`` is the FROM image after expansion with the global ARGs (``scratch``, an
    image reference, or the name of an earlier stage, in which case ``base_stage`` is
    that stage's index). ``name`` is the lower-cased ``AS`` name or None.
    """

    index: int
    name: str | None
    base: str
    platform: str | None
    instruction: Instruction
    instructions: list[Instruction] = field(default_factory=list)
    base_stage: int | None = None

    @property
    def scratch(self) -> bool:
        return self.base_stage is None and self.base.lower() == "scratch"

    @property
    def ref(self) -> str:
        """How a build refers to this stage: its name, else its index."""
        return self.name if self.name is not None else str(self.index)


@dataclass
class Step:
    """An instruction evaluated in its stage: arguments expanded, environment after it.

    ``args``/``flags``/``pairs`` are expanded (quotes removed) for the instructions the
    builder expands and copied unchanged for the others. For EXPOSE ``args`` are
    normalised port specs (``80/tcp``). ``env`` is the image ENV after this step (what
    the config keeps); ``build_args`` the ARGs in scope with a value (not persisted).
    """

    instruction: Instruction
    args: list[str]
    flags: dict[str, Any]
    pairs: list[tuple[str, str | None]]
    env: dict[str, str]
    build_args: dict[str, str]
    predefined_args: dict[str, str] = field(default_factory=dict)

    @property
    def cmd(self) -> str:
        return self.instruction.cmd

    @property
    def line(self) -> int:
        return self.instruction.line

    @property
    def run_env(self) -> dict[str, str]:
        """The environment a RUN at this point sees: ENV, plus ARGs ENV does not set.

        Predefined proxy args given as build args are included even without an ARG line
        (Docker passes them to RUN but leaves them out of the image history).
        """
        out = dict(self.env)
        for source in (self.build_args, self.predefined_args):
            for key, value in source.items():
                out.setdefault(key, value)
        return out

    @property
    def sources(self) -> list[str]:
        """COPY/ADD sources (all arguments but the last)."""
        return self.args[:-1]

    @property
    def dest(self) -> str:
        """COPY/ADD destination (the last argument)."""
        return self.args[-1]


@dataclass
class Dockerfile:
    """A parsed Dockerfile (see :func:`parse`)."""

    stages: list[Stage]
    meta_args: list[Instruction]
    global_args: dict[str, str]
    build_args: dict[str, str]
    escape: str = "\\"
    syntax: str | None = None
    warnings: list[str] = field(default_factory=list)
    filename: str = "Dockerfile"

    # -- stages ------------------------------------------------------------------------

    def find_stage(self, ref: str, before: int | None = None) -> Stage | None:
        """The stage named ``ref`` (case-insensitive) or with index ``ref``, if defined
        before stage number ``before`` (all stages when None); else None (an image)."""
        limit = len(self.stages) if before is None else min(before, len(self.stages))
        if ref.isdigit():
            index = int(ref)
            return self.stages[index] if index < limit else None
        lowered = ref.lower()
        for stage in self.stages[:limit]:
            if stage.name == lowered:
                return stage
        return None

    def target(self, name: str | None = None) -> Stage:
        """The stage ``--target`` names; the last stage when ``name`` is None."""
        if name is None:
            return self.stages[-1]
        stage = next((s for s in self.stages if s.name == name.lower()), None)
        if stage is None:
            raise DockerfileSyntaxError(f"target stage {name!r} could not be found",
                                        filename=self.filename)
        return stage

    def dependencies(self, target: str | Stage | None = None) -> list[Stage]:
        """The stages ``target`` needs (itself included), in file order.

        A stage depends on an earlier stage used as its base and on stages named by
        ``COPY --from`` (values containing ``$`` are expanded with the global ARGs).
        """
        stage = target if isinstance(target, Stage) else self.target(target)
        needed: set[int] = set()
        todo = [stage.index]
        while todo:
            index = todo.pop()
            if index in needed:
                continue
            needed.add(index)
            current = self.stages[index]
            if current.base_stage is not None:
                todo.append(current.base_stage)
            for ins in current.instructions:
                ref = ins.flags.get("from") if ins.cmd == "COPY" else None
                if not ref:
                    continue
                if "$" in ref:
                    try:
                        ref = _expand(ref, self.global_args, self.escape)
                    except _ParseError:
                        continue
                dep = self.find_stage(ref, before=index)
                if dep is not None:
                    todo.append(dep.index)
        return [s for s in self.stages if s.index in needed]

    # -- evaluation --------------------------------------------------------------------

    def steps(self, stage: Stage | str | int,
              base_env: Mapping[str, str] | Iterable[str] = (),
              triggers: Iterable[Instruction] = ()) -> list[Step]:
        """Evaluate ``stage``'s instructions in order, starting from ``base_env``.

        ``stage`` is a Stage, a stage name, or an index (negative counts from the end).
        ``base_env`` is the base image's config Env (``["K=V", ...]`` or a mapping):
        empty for ``scratch``, and ``steps(base_stage)[-1].env`` (or the base's own
        base env when it has no instructions) when the base is an earlier stage.
        ``triggers`` are the base image's ONBUILD instructions (see
        :func:`parse_instruction`): Docker runs them first, right after FROM.
        ARG rules (Docker's): a build arg overrides a default; ``ARG X`` without a
        default takes the global (pre-FROM) value of X if any, else stays unset; ENV
        always wins over an ARG of the same name, whichever comes first.
        """
        if isinstance(stage, int):
            stage = self.stages[stage]
        elif not isinstance(stage, Stage):
            found = self.find_stage(stage)
            if found is None:
                raise DockerfileSyntaxError(f"no such stage: {stage}", filename=self.filename)
            stage = found
        env = _env_dict(base_env)
        args: dict[str, str | None] = {}
        predefined = {k: v for k, v in self.build_args.items() if k in PREDEFINED_ARGS}
        out: list[Step] = []
        for ins in [*triggers, *stage.instructions]:
            try:
                step = self._evaluate(ins, env, args, predefined)
            except _ParseError as exc:
                raise DockerfileSyntaxError(exc.message, ins.line, self.filename, exc.hint) from None
            out.append(step)
        return out

    def _evaluate(self, ins: Instruction, env: dict[str, str], args: dict[str, str | None],
                  predefined: dict[str, str]) -> Step:
        scope = _scope(env, args)
        esc = self.escape

        def word(s: str) -> str:
            return _expand(s, scope, esc)

        cmd = ins.cmd
        step_args = list(ins.args)
        step_flags = dict(ins.flags)
        pairs = list(ins.pairs)
        if cmd in ("ENV", "LABEL"):
            pairs = [(word(k), word(v or "")) for k, v in ins.pairs]
            if any(not k for k, _ in pairs):
                raise _ParseError(f"{cmd} names can not be blank")
            step_args = [x for kv in pairs for x in kv]  # type: ignore[misc]
            if cmd == "ENV":
                for key, value in pairs:
                    env[key] = value  # type: ignore[assignment]
        elif cmd == "ARG":
            resolved: list[tuple[str, str | None]] = []
            for key, default in ins.pairs:
                key = word(key)
                value = word(default) if default is not None else None
                if key in self.build_args:
                    value = self.build_args[key]
                elif default is None and key in self.global_args:
                    value = self.global_args[key]
                resolved.append((key, value))
            for key, value in resolved:
                args[key] = value
            pairs = resolved
            step_args = [k if v is None else f"{k}={v}" for k, v in resolved]
        elif cmd == "EXPOSE":
            words: list[str] = []
            for raw in ins.args:
                words.extend(_expand_words(raw, scope, esc))
            step_args = normalize_ports(words)
        elif cmd in ("COPY", "ADD", "WORKDIR", "USER", "STOPSIGNAL", "VOLUME"):
            step_args = [word(a) for a in ins.args]
            if cmd == "VOLUME" and any(not a.strip() for a in step_args):
                raise _ParseError("VOLUME specified can not be an empty string")
            if cmd in ("WORKDIR", "USER", "STOPSIGNAL") and not step_args[0]:
                raise _ParseError(f"{cmd} requires exactly one argument")
            for name in _EXPANDED_FLAGS:
                value = step_flags.get(name)
                if isinstance(value, str):
                    step_flags[name] = word(value)
        return Step(instruction=ins, args=step_args, flags=step_flags, pairs=pairs,
                    env=dict(env),
                    build_args={k: v for k, v in args.items() if v is not None},
                    predefined_args={k: v for k, v in predefined.items() if k not in args})


def _env_dict(base_env: Mapping[str, str] | Iterable[str]) -> dict[str, str]:
    if isinstance(base_env, Mapping):
        return dict(base_env)
    out: dict[str, str] = {}
    for item in base_env:
        key, sep, value = item.partition("=")
        out[key] = value if sep else ""
    return out


def _scope(env: Mapping[str, str], args: Mapping[str, str | None]) -> dict[str, str]:
    """Variables visible to expansion: ARGs with a value, then ENV on top (ENV wins)."""
    scope = {k: v for k, v in args.items() if v is not None}
    scope.update(env)
    return scope


# --------------------------------------------------------------------------- expansion

def _expand(word: str, env: Mapping[str, str], escape: str) -> str:
    return _Lexer(word, env, escape).run()[0]


def _expand_words(word: str, env: Mapping[str, str], escape: str) -> list[str]:
    return _Lexer(word, env, escape).run()[1]


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand ``word`` like Docker's shell lexer (ProcessWord): quotes removed,
    ``$var ${var} ${var:-w} ${var-w} ${var:+w} ${var+w} ${var:?msg} ${var?msg}
    ${var#pat} ${var##pat} ${var%pat} ${var%%pat} ${var/pat/repl} ${var//pat/repl}``,
    the escape character escaping the next one (``\\$HOME`` stays ``$HOME``).

    Raises :class:`DockerfileSyntaxError` (no line) on a malformed word.
    """
    try:
        return _Lexer(word, env, escape).run()[0]
    except _ParseError as exc:
        raise DockerfileSyntaxError(exc.message, filename="") from None


def expand_heredoc(body: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """A COPY/ADD heredoc body with an unquoted terminator, expanded as BuildKit does
    (dockerfile2llb's ExpandRaw: its lexer with SkipProcessQuotes, so quotes stay text)."""
    try:
        return _Lexer(body, env, escape, raw_quotes=True).run()[0]
    except _ParseError as exc:
        raise DockerfileSyntaxError(exc.message, filename="") from None


def expand_words(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Like :func:`expand`, then split into words on unquoted whitespace (ProcessWords)."""
    try:
        return _Lexer(word, env, escape).run()[1]
    except _ParseError as exc:
        raise DockerfileSyntaxError(exc.message, filename="") from None


class _Words:
    """Word splitting that remembers which characters came from quotes or escapes."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if _isspace(ch):
            if self.in_word and "".join(self.word):
                self.words.append("".join(self.word))
                self.word = []
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, s: str) -> None:
        self.word.append(s)
        self.in_word = True

    def add_string(self, s: str) -> None:
        for ch in s:
            self.add_char(ch)

    def result(self) -> list[str]:
        if "".join(self.word):
            self.words.append("".join(self.word))
            self.word = []
            self.in_word = False
        return self.words


class _Lexer:
    """A port of the behaviour (not the code) of BuildKit's shell.Lex."""

    _SPECIAL_PARAMS = "@*#?-$!0"

    def __init__(self, text: str, env: Mapping[str, str], escape: str = "\\", *,
                 raw_quotes: bool = False, raw_escapes: bool = False,
                 skip_unset: bool = False):
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_unset = skip_unset

    def run(self) -> tuple[str, list[str]]:
        try:
            return self._until(None)
        except _ParseError as exc:
            raise _ParseError(f"failed to process {json.dumps(self.text)}: {exc.message}") from None

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _next(self) -> str:
        if self.pos >= len(self.text):
            return ""
        ch = self.text[self.pos]
        self.pos += 1
        return ch

    def _until(self, stop: str | None) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        while self.pos < len(self.text):
            ch = self._peek()
            if stop is not None and ch == stop:
                self._next()
                return "".join(result), words.result()
            if ch in ("'", '"'):
                tmp = self._quoted()
                result.append(tmp)
                words.add_raw(tmp)
            elif ch == "$":
                tmp = self._dollar()
                result.append(tmp)
                words.add_string(tmp)
            else:
                ch = self._next()
                if ch == self.escape:
                    if self.raw_escapes:
                        words.add_raw(ch)
                        result.append(ch)
                    ch = self._next()
                    if ch == "":
                        break
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop is not None:
            raise _ParseError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def _quoted(self) -> str:
        """The quoted string at the cursor, its quotes kept with ``raw_quotes``. In single
        quotes every character stands for itself; in double quotes ``$`` expands and the
        escape character escapes ``"``, ``$`` and itself."""
        quote = self._next()
        double = quote == '"'
        out = [quote] if self.raw_quotes else []
        while True:
            ch = self._peek()
            if ch == "":
                kind = "double-quote" if double else "single-quote"
                raise _ParseError(f"unexpected end of statement while looking for matching {kind}")
            if ch == quote:
                self._next()
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if double and ch == "$":
                out.append(self._dollar())
                continue
            ch = self._next()
            if double and ch == self.escape:
                nxt = self._peek()
                if nxt == "":
                    continue  # a lone escape at the end: dropped, then the quote is unterminated
                if nxt in ('"', "$", self.escape):
                    if self.raw_escapes:
                        out.append(ch)
                    ch = self._next()
            out.append(ch)

    def _name(self) -> str:
        ch = self._peek()
        if ch and ch.isdigit() and ch.isascii():
            start = self.pos
            while self._peek() and self._peek().isdigit() and self._peek().isascii():
                self.pos += 1
            return self.text[start:self.pos]
        if ch and ch in self._SPECIAL_PARAMS:
            return self._next()
        start = self.pos
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if not (ch.isalnum() or ch == "_"):
                break
            self.pos += 1
        return self.text[start:self.pos]

    def _lookup(self, name: str) -> str | None:
        return self.env.get(name)

    def _dollar(self) -> str:
        self._next()  # the $
        if self._peek() != "{":
            name = self._name()
            if not name:
                return "$"
            value = self._lookup(name)
            if value is None:
                return "$" + name if self.skip_unset else ""
            return value
        self._next()  # the {
        ch = self._peek()
        if ch == "":
            raise _ParseError("syntax error: missing '}'")
        if ch in "{}:":
            raise _ParseError("syntax error: bad substitution")
        name = self._name()
        value = self._lookup(name)
        op = self._next()
        if op == "}":
            if value is None:
                return "${" + name + "}" if self.skip_unset else ""
            return value
        if op == ":":
            modifier = self._next()
            if modifier not in ("-", "+", "?"):
                raise _ParseError(f"unsupported modifier ({modifier}) in substitution")
            word = self._operand("}")
            if value is None and self.skip_unset:
                return "${" + name + ":" + modifier + word + "}"
            if modifier == "-":
                return value if value else word
            if modifier == "+":
                return word if value else ""
            if value is None:
                raise _ParseError(f"{name}: {word or 'is not allowed to be unset'}")
            if value == "":
                raise _ParseError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if op in ("-", "+", "?"):
            word = self._operand("}")
            if value is None and self.skip_unset:
                return "${" + name + op + word + "}"
            if op == "-":
                return word if value is None else value
            if op == "+":
                return "" if value is None else word
            if value is None:
                raise _ParseError(f"{name}: {word or 'is not allowed to be unset'}")
            return value
        if op in ("#", "%"):
            longest = self._peek() == op
            if longest:
                self._next()
            pattern = self._raw_operand("}")
            if value is None:
                return "${" + name + op + pattern + "}" if self.skip_unset else ""
            return _trim_pattern(value, pattern, prefix=op == "#", longest=longest)
        if op == "/":
            every = self._peek() == "/"
            if every:
                self._next()
            pattern, ended = self._operand_either("/", "}", raw=True)
            replacement = "" if ended == "}" else self._raw_operand("}")
            if value is None:
                return "" if not self.skip_unset else "${" + name + "}"
            return _replace_pattern(value, pattern, replacement, every)
        raise _ParseError("missing ':' in substitution" if op else "syntax error: missing '}'")

    def _operand(self, stop: str) -> str:
        try:
            return self._until(stop)[0]
        except _ParseError:
            if self.pos >= len(self.text):
                raise _ParseError("syntax error: missing '}'") from None
            raise

    def _raw_operand(self, stop: str) -> str:
        """A pattern or replacement operand: BuildKit's lexer reads them with raw escapes
        (processStopOn(stop, true)), so ``\\*`` reaches the pattern as an escaped, literal
        ``*`` and a replacement keeps its backslashes."""
        raw, self.raw_escapes = self.raw_escapes, True
        try:
            return self._operand(stop)
        finally:
            self.raw_escapes = raw

    def _operand_either(self, first: str, second: str, raw: bool = False) -> tuple[str, str]:
        """Read up to ``first`` or ``second`` (whichever comes first, quotes honoured)."""
        start = self.pos
        depth_text = self.text
        i = start
        while i < len(depth_text) and depth_text[i] not in (first, second):
            if depth_text[i] == self.escape:
                i += 1
            i += 1
        if i >= len(depth_text):
            raise _ParseError("syntax error: missing '}'")
        stop = depth_text[i]
        return (self._raw_operand(stop) if raw else self._operand(stop)), stop


def _shell_pattern_regex(pattern: str) -> re.Pattern[str]:
    """A shell glob (``*``, ``?``, ``[...]``, backslash escapes) as a regex."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            j = pattern.find("]", i + 2)
            if j < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(ch))
        i += 1
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error:
        return re.compile(re.escape(pattern))


def _trim_pattern(value: str, pattern: str, *, prefix: bool, longest: bool) -> str:
    regex = _shell_pattern_regex(pattern)
    n = len(value)
    lengths = range(n, -1, -1) if longest else range(0, n + 1)
    for k in lengths:
        part = value[:k] if prefix else value[n - k:]
        if regex.fullmatch(part):
            return value[k:] if prefix else value[:n - k]
    return value


def _replace_pattern(value: str, pattern: str, replacement: str, every: bool) -> str:
    """``${v/pat/repl}`` (first, longest match) and ``${v//pat/repl}`` (every match)."""
    if not pattern:
        return value
    regex = _shell_pattern_regex(pattern)
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        for end in range(n, i, -1):
            if regex.fullmatch(value, i, end):
                out.append(replacement)
                i = end
                if not every:
                    out.append(value[i:])
                    return "".join(out)
                break
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


# --------------------------------------------------------------------------- durations, ports

_DURATION_UNITS = {
    "ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
    "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
}
_RE_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration (``1m30s``, ``1.5h``, ``500ms``) in nanoseconds."""
    s = text
    negative = False
    if s[:1] in ("+", "-"):
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"time: invalid duration {json.dumps(text)}")
    total = Fraction(0)
    while s:
        m = _RE_DURATION_PART.match(s)
        assert m is not None        # every part of the pattern is optional: it always matches
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise ValueError(f"time: invalid duration {json.dumps(text)}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {json.dumps(text)}")
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {json.dumps(unit)} in duration {json.dumps(text)}")
        number = Fraction(int(whole or "0"))
        if frac:
            number += Fraction(int(frac), 10 ** len(frac))
        total += number * _DURATION_UNITS[unit]
        s = s[m.end():]
    value = int(total)
    return -value if negative else value


def _is_decimal(text: str) -> bool:
    return text.isascii() and text.isdigit()


def normalize_ports(words: Iterable[str]) -> list[str]:
    """EXPOSE words as config keys: ``80`` -> ``80/tcp``, ``8000-8001/udp`` expanded,
    duplicates dropped, order kept."""
    out: list[str] = []
    for word in words:
        port, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise _ParseError(f"invalid proto: {proto}")
        lo_text, dash, hi_text = port.partition("-")
        if not _is_decimal(lo_text) or (dash and not _is_decimal(hi_text)):
            raise _ParseError(f"invalid containerPort: {port}")
        lo = int(lo_text)
        hi = int(hi_text) if dash else lo
        if lo > 65535 or hi > 65535 or hi < lo:
            raise _ParseError(f"invalid containerPort: {port}")
        for number in range(lo, hi + 1):
            key = f"{number}/{proto}"
            if key not in out:
                out.append(key)
    return out


# --------------------------------------------------------------------------- line parsing

class _Directives:
    def __init__(self) -> None:
        self.escape = "\\"
        self.syntax: str | None = None
        self.done = False
        self.seen: set[str] = set()
        self._set_continuation()

    def _set_continuation(self) -> None:
        e = re.escape(self.escape)
        self.continuation = re.compile(r"([^" + e + r"])" + e + r"[ \t]*\Z|^" + e + r"[ \t]*\Z")

    def check(self, line: str) -> None:
        """Parser directives: only at the very top, before any other line."""
        if self.done:
            return
        m = _RE_DIRECTIVE.match(line)
        if not m:
            self.done = True
            return
        key = m.group(1).lower()
        if key not in _VALID_DIRECTIVES:
            self.done = True
            return
        if key in self.seen:
            raise _ParseError(f"only one {key} parser directive can be used")
        self.seen.add(key)
        if key == "escape":
            value = m.group(2)
            if value not in ("`", "\\"):
                raise _ParseError(f"invalid escape token '{value}' does not match ` or \\")
            self.escape = value
            self._set_continuation()
        elif key == "syntax":
            self.syntax = m.group(2)

    def trim_continuation(self, line: str) -> tuple[str, bool]:
        """Drop a trailing escape character; True when the instruction ends here."""
        if self.continuation.search(line):
            return self.continuation.sub(r"\1", line, count=1), False
        return line, True


def _trim_newline(s: str) -> str:
    return s.rstrip("\r\n")


def _is_comment(raw: str) -> bool:
    return _trim_left_space(_trim_newline(raw)).startswith("#")


def _process_line(d: _Directives, raw: str, strip_left: bool) -> str:
    token = _trim_newline(raw)
    if strip_left:
        token = _trim_left_space(token)
    d.check(token)
    return "" if token.startswith("#") else token


def _parse_words(rest: str, escape: str) -> list[str]:
    """Whitespace-separated words, quotes and escapes kept (Docker's parseWords)."""
    words: list[str] = []
    word: list[str] = []
    blank_ok = False
    in_word = in_quote = False
    quote = ""
    i, n = 0, len(rest)
    while True:
        if i >= n:
            if (in_word or in_quote) and (blank_ok or word):
                words.append("".join(word))
            break
        ch = rest[i]
        if not in_word and not in_quote:
            if _isspace(ch):
                i += 1
                continue
            in_word = True
        if in_word:
            if _isspace(ch):
                in_word = False
                if blank_ok or word:
                    words.append("".join(word))
                word = []
                blank_ok = False
                i += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
                in_word, in_quote = False, True
            escapes = True
        else:  # inside quotes
            if ch == quote:
                in_word, in_quote = True, False
            escapes = quote != "'"
        if ch == escape and escapes:
            if i + 1 == n:  # a trailing escape is dropped
                i += 1
                continue
            word.append(ch)
            i += 1
            ch = rest[i]
        word.append(ch)
        i += 1
    return words


def _split_whitespace(rest: str) -> list[str]:
    if rest == "":
        return []
    return _RE_WHITESPACE.split(rest)


class _NotStringArray(_ParseError):
    def __init__(self) -> None:
        super().__init__("when using JSON array syntax, arrays must be comprised of strings only")


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_json(rest: str) -> list[str] | None:
    """A JSON array of strings, or None when ``rest`` is not JSON (shell form)."""
    rest = _trim_left_space(rest)
    if not rest.startswith("["):
        return None
    try:
        value, _ = _JSON.raw_decode(rest)  # like Go's Decoder: trailing text is ignored
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise _NotStringArray()
    return value


def _maybe_json(rest: str) -> tuple[list[str], bool]:
    if rest == "":
        return [], False
    value = _parse_json(rest)
    if value is not None:
        return value, True
    return [rest], False


def _maybe_json_list(rest: str) -> tuple[list[str], bool]:
    value = _parse_json(rest)
    if value is not None:
        return value, True
    return _split_whitespace(rest), False


def _name_values(rest: str, cmd: str, escape: str) -> list[tuple[str, str]]:
    """ENV/LABEL: ``k v`` (old form, value is the rest) or ``k=v k2="v 2"``."""
    words = _parse_words(rest, escape)
    if not words:
        return []
    if "=" not in words[0]:
        parts = _RE_WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise _ParseError(f"{cmd} must have two arguments")
        return [(parts[0], parts[1])]
    pairs = []
    for word in words:
        if "=" not in word:
            raise _ParseError(f"Syntax error - can't find = in {json.dumps(word)}. "
                              "Must be of the form: name=value")
        key, _, value = word.partition("=")
        pairs.append((key, value))
    return pairs


def _extract_flags(rest: str) -> tuple[str, list[str]]:
    """Leading ``--flag[=value]`` words (quotes and backslashes processed), then the rest."""
    flags: list[str] = []
    i, n = 0, len(rest)
    while True:
        while i < n and _isspace(rest[i]):
            i += 1
        if i >= n:
            return "", flags
        if not rest.startswith("--", i):
            return rest[i:], flags
        word: list[str] = []
        quote = ""
        blank_ok = False
        start = i
        while i < n:
            ch = rest[i]
            if quote:
                if ch == quote:
                    quote = ""
                elif ch == "\\" and i + 1 < n:
                    i += 1
                    word.append(rest[i])
                elif ch != "\\":
                    word.append(ch)
                i += 1
                continue
            if _isspace(ch):
                break
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
            elif ch == "\\":
                if i + 1 < n:
                    i += 1
                    word.append(rest[i])
            else:
                word.append(ch)
            i += 1
        text = "".join(word)
        if text == "--" and not blank_ok:
            return rest[i:], flags
        if text or blank_ok:
            flags.append(text)
        if i == start:  # pragma: no cover - defensive
            i += 1


def _parse_flags(cmd: str, raw: list[str]) -> dict[str, Any]:
    spec = _FLAGS.get(cmd, {})
    out: dict[str, Any] = {}
    for arg in raw:
        if arg == "--":
            break
        body = arg[2:]
        name, eq, value = body.partition("=")
        kind = spec.get(name)
        if kind is None:
            raise _ParseError(f"Unknown flag: {name}")
        if name in out and kind != "list":
            raise _ParseError(f"Duplicate flag specified: {name}")
        if kind == "bool":
            if eq and value == "":
                raise _ParseError(f"Missing a value on flag: {name}")
            lowered = value.lower()
            if lowered in ("", "true"):
                out[name] = True
            elif lowered == "false":
                out[name] = False
            else:
                raise _ParseError(f"Expecting boolean value for flag {name}, not: {value}")
        elif not eq:
            raise _ParseError(f"Missing a value on flag: {name}")
        elif kind == "list":
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out


def _parse_healthcheck(ins: Instruction, rest: str) -> None:
    sep = 0
    while sep < len(rest) and not _isspace(rest[sep]):
        sep += 1
    if sep == 0:
        raise _ParseError("HEALTHCHECK requires at least one argument")
    nxt = sep
    while nxt < len(rest) and _isspace(rest[nxt]):
        nxt += 1
    kind = rest[:sep]
    cmd, ins.json_form = _maybe_json(rest[nxt:])
    ins.args = [kind, *cmd]
    kind = kind.upper()
    if kind == "NONE":
        if cmd:
            raise _ParseError("HEALTHCHECK NONE takes no arguments")
        ins.healthcheck = HealthCheck(test=("NONE",))
        return
    if kind != "CMD":
        raise _ParseError(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    if not cmd:
        raise _ParseError("Missing command after HEALTHCHECK CMD")
    test = ("CMD", *cmd) if ins.json_form else ("CMD-SHELL", *cmd)
    durations = {}
    for name in ("interval", "timeout", "start-period", "start-interval"):
        text = ins.flags.get(name, "")
        if not text:
            durations[name] = 0
            continue
        try:
            value = parse_duration(text)
        except ValueError as exc:
            raise _ParseError(str(exc)) from None
        if value == 0:  # BuildKit's parseOptInterval: 0 is "not set" (inherit)
            durations[name] = 0
            continue
        if value < 1_000_000:
            raise _ParseError(f'Interval "{name}" cannot be less than 1ms')
        durations[name] = value
    retries = 0
    if ins.flags.get("retries"):
        text = ins.flags["retries"]
        try:
            retries = int(text, 10)
        except ValueError:
            raise _ParseError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
        if retries < 0:  # BuildKit: 0 is "not set"; only a negative count is refused
            raise _ParseError(f"--retries cannot be negative ({retries})")
    ins.healthcheck = HealthCheck(test=test, interval=durations["interval"],
                                  timeout=durations["timeout"],
                                  start_period=durations["start-period"],
                                  start_interval=durations["start-interval"], retries=retries)


def _build_instruction(line: str, lineno: int, escape: str) -> Instruction:
    """Split one logical line into an :class:`Instruction` and check its arguments."""
    parts = _RE_WHITESPACE.split(_trim_space(line), maxsplit=1)
    word = parts[0]
    cmd = word.upper()
    rest, raw_flags = _extract_flags(parts[1]) if len(parts) == 2 else ("", [])
    rest = _trim_space(rest)
    ins = Instruction(cmd=cmd, original=line, line=lineno, end_line=lineno, raw_flags=raw_flags)
    if cmd not in INSTRUCTIONS:
        close = difflib.get_close_matches(cmd, INSTRUCTIONS, n=1, cutoff=0.6)
        raise _ParseError(f"unknown instruction: {word}",
                          hint=f"did you mean {close[0]}?" if close else None)
    ins.flags = _parse_flags(cmd, raw_flags)

    if cmd in ("RUN", "CMD", "ENTRYPOINT", "SHELL"):
        ins.args, ins.json_form = _maybe_json(rest)
        if cmd == "RUN" and not ins.args and not ins.json_form:
            raise _ParseError("RUN requires at least one argument")
        if cmd == "SHELL":
            if not ins.json_form:
                raise _ParseError(f"SHELL requires the arguments to be in JSON form: {line.strip()}",
                                  hint='write SHELL ["/bin/sh", "-c"]')
            if not ins.args:
                raise _ParseError("SHELL requires at least one argument")
    elif cmd in ("COPY", "ADD", "VOLUME"):
        ins.args, ins.json_form = _maybe_json_list(rest)
        if cmd == "VOLUME":
            if not ins.args:
                raise _ParseError("VOLUME requires at least one argument")
            if any(not _trim_space(a) for a in ins.args):
                raise _ParseError("VOLUME specified can not be an empty string")
        elif len(ins.args) < 2:
            raise _ParseError(f"{cmd} requires at least two arguments, but only one was "
                              "provided. Destination could not be determined")
        elif not ins.json_form and _heredoc_from_word(ins.args[-1]) is not None:
            # BuildKit's parseSourcesAndDest (errBadHeredoc): a heredoc is a source only
            raise _ParseError(f"{cmd} cannot accept a heredoc as a destination")
    elif cmd in ("FROM", "EXPOSE"):
        ins.args = _split_whitespace(rest)
        if cmd == "EXPOSE" and not ins.args:
            raise _ParseError("EXPOSE requires at least one argument")
        if cmd == "FROM" and not (len(ins.args) == 1 or
                                  (len(ins.args) == 3 and ins.args[1].lower() == "as")):
            raise _ParseError("FROM requires either one or three arguments")
    elif cmd in ("ENV", "LABEL"):
        pairs = _name_values(rest, cmd, escape)
        if not pairs:
            raise _ParseError(f"{cmd} requires at least one argument")
        if any(not k for k, _ in pairs):
            raise _ParseError(f"{cmd} names can not be blank")
        ins.pairs = list(pairs)
        ins.args = [x for kv in pairs for x in kv]
    elif cmd == "ARG":
        ins.args = _parse_words(rest, escape)
        if not ins.args:
            raise _ParseError("ARG requires at least one argument")
        for item in ins.args:
            if "=" in item:
                key, _, value = item.partition("=")
                if not key:
                    raise _ParseError("ARG names can not be blank")
                ins.pairs.append((key, value))
            else:
                ins.pairs.append((item, None))
    elif cmd in ("WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER"):
        if not rest:
            raise _ParseError(f"{cmd} requires exactly one argument")
        ins.args = [rest]
    elif cmd == "HEALTHCHECK":
        _parse_healthcheck(ins, rest)
    elif cmd == "ONBUILD":
        if not rest:
            raise _ParseError("ONBUILD requires at least one argument")
        trigger_word = _RE_WHITESPACE.split(rest, maxsplit=1)[0].upper()
        if trigger_word == "ONBUILD":
            raise _ParseError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trigger_word in ("MAINTAINER", "FROM"):
            raise _ParseError(f"{trigger_word} isn't allowed as an ONBUILD trigger")
        ins.trigger = _build_instruction(rest, lineno, escape)
        ins.json_form = ins.trigger.json_form  # as BuildKit's parse tree reports it
        ins.args = [re.sub(r"(?i)^\s*ONBUILD\s*", "", line, count=1)]
    return ins


def _heredoc_words(line: str) -> list[str]:
    try:
        return _Lexer(line, {}, "\\", raw_quotes=True, raw_escapes=True, skip_unset=True).run()[1]
    except _ParseError:
        return []


def _joined_heredoc_words(line: str) -> list[str]:
    """The line's words with a lone ``<<`` (``<<-``, ``2<<``) joined to the word after it:
    BuildKit takes ``RUN <<  EOF`` as the heredoc EOF."""
    words = _heredoc_words(line)
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if _RE_LONE_HEREDOC.match(w) and i + 1 < len(words):
            w += words[i + 1]
            i += 1
        out.append(w)
        i += 1
    return out


def _heredoc_from_word(word: str) -> Heredoc | None:
    m = _RE_HEREDOC.match(word)
    if not m or not m.group(3):
        return None
    rest = m.group(3)
    words = _Lexer(rest, {}, "\\", skip_unset=True).run()[1]
    if len(words) != 1:
        return None
    raw = _Lexer(rest, {}, "\\", skip_unset=True, raw_quotes=True).run()[1]
    if len(raw) != 1:
        raise _ParseError(f"internal lexing of heredoc produced inconsistent results: {rest}")
    name = words[0]
    quotes = name.count("'") + name.count('"')
    raw_quotes = raw[0].count("'") + raw[0].count('"')
    return Heredoc(name=name, content="", chomp=m.group(2) == "-", expand=quotes == raw_quotes,
                   fd=int(m.group(1) or "0"))


# --------------------------------------------------------------------------- parse

def parse(text: str, build_args: Mapping[str, str] | None = None, *,
          filename: str = "Dockerfile", platform: str | None = None) -> Dockerfile:
    """Parse Dockerfile ``text``.

    ``build_args`` are the ``--build-arg`` values: they override ARG defaults, are
    visible in FROM lines through pre-FROM ARGs, and are reported in ``warnings`` when
    no ARG declares them (Docker's "[Warning] One or more build-args [x] were not
    consumed"). ``platform`` (``os/arch[/variant]``, default: this host) feeds the
    automatic ``BUILDPLATFORM``/``TARGETPLATFORM``/``TARGETARCH``... args.
    Heredocs (``RUN <<EOF``) are parsed for RUN, COPY and ADD.
    """
    build_args = dict(build_args or {})
    directives = _Directives()
    warnings: list[str] = []
    instructions: list[Instruction] = []

    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the text ended with a newline
    has_newline = [True] * len(lines)
    if lines and not text.endswith("\n"):
        has_newline[-1] = False

    def fail(exc: _ParseError, lineno: int | None) -> DockerfileSyntaxError:
        return DockerfileSyntaxError(exc.message, lineno, filename, exc.hint)

    for n, line in enumerate(lines, 1):
        # BuildKit reads the Dockerfile with a bufio.Scanner, whose tokens (a line and its
        # newline) stop at 64 KiB; its handleScannerError words the error so
        if len(line) >= MAX_LINE // 4 and len(line.encode("utf-8", "surrogateescape")) >= MAX_LINE:
            raise DockerfileSyntaxError(f"dockerfile line greater than max allowed size of "
                                        f"{MAX_LINE - 1}", n, filename)

    i = 0
    while i < len(lines):
        raw = lines[i]
        lineno = i + 1
        i += 1
        try:
            token = _process_line(directives, raw, strip_left=True)
        except _ParseError as exc:
            raise fail(exc, lineno) from None
        line, end = directives.trim_continuation(token)
        if end and line == "":
            continue
        start = lineno
        empty_continuation = False
        while not end and i < len(lines):
            raw = lines[i]
            i += 1
            try:
                token = _process_line(directives, raw, strip_left=False)
            except _ParseError as exc:
                raise fail(exc, i) from None
            if _is_comment(raw):
                continue  # Docker drops comment lines inside a continued instruction
            if not _trim_left_space(_trim_newline(token)):
                empty_continuation = True
                continue
            more, end = directives.trim_continuation(token)
            line += more
        if empty_continuation:
            warnings.append(f"[WARNING]: Empty continuation line found in:\n    {line}")
        try:
            ins = _build_instruction(line, start, directives.escape)
        except _ParseError as exc:
            raise fail(exc, start) from None
        ins.end_line = i

        # Here-documents: read their bodies straight from the following lines.
        target = ins.trigger if ins.cmd == "ONBUILD" and ins.trigger else ins
        if target.cmd in _HEREDOC_COMMANDS and not target.json_form:
            try:
                docs = [d for d in (_heredoc_from_word(w) for w in _joined_heredoc_words(line)) if d]
            except _ParseError as exc:
                raise fail(exc, start) from None
            original = line
            bodies: list[Heredoc] = []
            for doc in docs:
                content: list[str] = []
                while True:
                    if i >= len(lines):
                        raise DockerfileSyntaxError("unterminated heredoc", start, filename)
                    body_line = lines[i]
                    i += 1
                    candidate = _trim_newline(body_line)
                    if doc.chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == doc.name:
                        break
                    content.append(body_line + ("\n" if has_newline[i - 1] else ""))
                body = "".join(content)
                original += "\n" + body + doc.name
                if doc.chomp:
                    body = re.sub(r"(?m)^\t+", "", body)
                bodies.append(Heredoc(doc.name, body, doc.chomp, doc.expand, doc.fd))
            if bodies:
                ins.original = original + "\n"
                target.heredocs = bodies
                if target is not ins:
                    ins.heredocs = bodies
            ins.end_line = i
        instructions.append(ins)

    if not instructions:
        raise DockerfileSyntaxError("file with no instructions", filename=filename)
    return _assemble(instructions, build_args, directives, warnings, filename, platform)


def _assemble(instructions: list[Instruction], build_args: dict[str, str],
              directives: _Directives, warnings: list[str], filename: str,
              platform: str | None) -> Dockerfile:
    """Group instructions into stages; resolve global ARGs and FROM lines."""
    global_args = _platform_args(platform)
    meta: list[Instruction] = []
    stages: list[Stage] = []
    declared: set[str] = set()
    escape = directives.escape

    for ins in instructions:
        try:
            if ins.cmd == "ARG":
                declared.update(k for k, _ in ins.pairs)
            if not stages and ins.cmd == "ARG":
                meta.append(ins)
                resolved = []
                for key, default in ins.pairs:
                    key = _expand(key, global_args, escape)
                    value = _expand(default, global_args, escape) if default is not None else None
                    if key in build_args:
                        value = build_args[key]
                    resolved.append((key, value))
                for key, value in resolved:
                    if value is not None:
                        global_args[key] = value
                continue
            if ins.cmd == "FROM":
                stages.append(_make_stage(ins, len(stages), stages, global_args, escape))
                continue
            if not stages:
                raise _ParseError("no build stage in current context")
            stages[-1].instructions.append(ins)
        except _ParseError as exc:
            raise DockerfileSyntaxError(exc.message, ins.line, filename, exc.hint) from None

    if not stages:
        raise DockerfileSyntaxError("dockerfile contains no stages to build", filename=filename)
    unused = sorted(k for k in build_args if k not in declared and k not in PREDEFINED_ARGS)
    if unused:
        warnings.append(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed")
    return Dockerfile(stages=stages, meta_args=meta, global_args=global_args,
                      build_args=build_args, escape=escape, syntax=directives.syntax,
                      warnings=warnings, filename=filename)


def _make_stage(ins: Instruction, index: int, earlier: list[Stage],
                global_args: Mapping[str, str], escape: str) -> Stage:
    raw_base = ins.args[0]
    base = _expand(raw_base, global_args, escape)
    if not base:
        raise _ParseError(f"base name ({raw_base}) should not be blank")
    name = None
    if len(ins.args) == 3:
        name = ins.args[2].lower()
        if not _RE_STAGE_NAME.match(name):
            raise _ParseError(f"invalid name for build stage: {json.dumps(ins.args[2])}, "
                              "name can't start with a number or contain symbols")
        if any(s.name == name for s in earlier):
            raise _ParseError(f"duplicate stage name {json.dumps(name)}")
    platform = ins.flags.get("platform")
    if platform is not None:
        platform = _expand(platform, global_args, escape)
    base_stage = None
    lowered = base.lower()
    for stage in earlier:
        if stage.name is not None and stage.name == lowered:
            base_stage = stage.index
    return Stage(index=index, name=name, base=base, platform=platform or None,
                 instruction=ins, base_stage=base_stage)


def parse_instruction(text: str, line: int = 1, escape: str = "\\") -> Instruction:
    """Parse one instruction line, e.g. an ONBUILD trigger read from a base image."""
    try:
        return _build_instruction(text, line, escape)
    except _ParseError as exc:
        raise DockerfileSyntaxError(exc.message, line, hint=exc.hint) from None


_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armv7l": "arm/v7", "armv6l": "arm/v6", "i386": "386", "i686": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def _platform_args(platform: str | None) -> dict[str, str]:
    if platform is None:
        platform = "linux/" + _ARCH.get(_platform.machine().lower(), _platform.machine().lower())
    os_name, _, rest = platform.partition("/")
    arch, _, variant = rest.partition("/")
    out: dict[str, str] = {}
    for prefix in ("BUILD", "TARGET"):
        out[prefix + "PLATFORM"] = platform
        out[prefix + "OS"] = os_name
        out[prefix + "ARCH"] = arch
        out[prefix + "VARIANT"] = variant
    return out
