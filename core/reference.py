"""Image references, normalised the way Docker does it.

``busybox``            -> docker.io/library/busybox:latest
``me/app:1``           -> docker.io/me/app:1
``localhost:5000/x``   -> localhost:5000/x:latest
``name@sha256:<hex>``  -> kept by digest (no default tag)

Grammar after distribution/reference: a domain is recognised only when the first path
component contains ``.`` or ``:`` or is ``localhost``; repository paths are lowercase;
tags are ``[\\w][\\w.-]{0,127}``; digests are ``algorithm:hex`` with the length the
algorithm demands. Validating before a reference is ever used in a path or a URL is
what c/image's CVE-2024-3727 was about.
"""

from __future__ import annotations

import re

from core.records import record

from .errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

# compiled on first use (module __getattr__): compiling all six costs ~2 ms of every
# command's start, and a plain ``name`` or ``user/name`` needs none of them (``_plain``)
_PATTERNS = {
    "PATH_RE": rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*\Z",
    "DOMAIN_RE": rf"^{_DOMAIN}\Z",
    "TAG_RE": rf"^{_TAG}\Z",
    "DIGEST_RE": r"^sha256:[0-9a-f]{64}\Z|^sha512:[0-9a-f]{128}\Z",
    "ANY_DIGEST_RE": rf"^{_DIGEST}\Z",
    "HEX64_RE": r"^[0-9a-f]{64}\Z",
}
NAME_MAX = 255

TYPE_CHECKING = False
if TYPE_CHECKING:
    PATH_RE: re.Pattern[str]
    DOMAIN_RE: re.Pattern[str]
    TAG_RE: re.Pattern[str]
    DIGEST_RE: re.Pattern[str]
    ANY_DIGEST_RE: re.Pattern[str]
    HEX64_RE: re.Pattern[str]


def __getattr__(name: str) -> re.Pattern[str]:
    pattern = _PATTERNS.get(name)
    if pattern is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    compiled = globals()[name] = re.compile(pattern)
    return compiled


def _re(name: str) -> re.Pattern[str]:
    """One of the patterns above, from inside this module (where __getattr__ is not
    consulted)."""
    got = globals().get(name)
    return got if got is not None else __getattr__(name)


def _plain(path: str) -> bool:
    """``path`` is lowercase ASCII letters and digits in non-empty components joined by
    single slashes: a case of PATH_RE's grammar that needs no regular expression."""
    return all(c and c.isascii() and c.isalnum() and c == c.lower() for c in path.split("/"))


_HEX = frozenset("0123456789abcdef")


def is_digest(digest: object) -> bool:
    """A well-formed sha256 or sha512 digest (DIGEST_RE; a sha256 one is checked
    without compiling it)."""
    if not isinstance(digest, str):
        return False
    if len(digest) == 71 and digest.startswith("sha256:") and _HEX.issuperset(digest[7:]):
        return True
    return bool(_re("DIGEST_RE").match(digest))


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is a well-formed sha256/sha512 digest, else raise."""
    if not is_digest(digest):
        raise InvalidReference(f"invalid digest: {digest!r}")
    return digest


@record(frozen=True)
class Reference:
    """A parsed image reference: ``domain/path[:tag][@digest]`` (see :func:`parse`)."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Fully qualified repository name: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """What Docker prints in REPOSITORY: ``busybox``, ``me/app``, ``quay.io/x/y``."""
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_REPO_PREFIX) and self.path.count("/") == 1:
                return self.path[len(OFFICIAL_REPO_PREFIX):]
            return self.path
        return self.name

    def __str__(self) -> str:
        return self._with_tag_and_digest(self.name)

    def familiar(self) -> str:
        return self._with_tag_and_digest(self.familiar_name)

    def _with_tag_and_digest(self, name: str) -> str:
        """``name:tag@digest``, each part only when set."""
        return (name + (":" + self.tag if self.tag else "")
                + ("@" + self.digest if self.digest else ""))

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, digest)

    @property
    def registry_host(self) -> str:
        """The host that serves the distribution API for this domain."""
        return "registry-1.docker.io" if self.domain == DEFAULT_DOMAIN else self.domain


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and not first.startswith("[")):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse(text: str, default_tag: bool = True) -> Reference:
    """Parse and normalise an image reference, or raise InvalidReference (exit 125)."""
    if not isinstance(text, str) or not text or text != text.strip():
        raise InvalidReference(f"invalid reference format: {text!r}")
    name, digest = text, None
    if "@" in text:
        name, _, digest = text.partition("@")
        if not _re("ANY_DIGEST_RE").match(digest):
            raise InvalidReference(f"invalid reference format: {text}: bad digest")
        if not is_digest(digest):
            raise InvalidReference(f"invalid reference format: {text}: unsupported digest")
    tag = None
    # a tag is after the last ':' that comes after the last '/'
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1:]
        plain = 0 < len(tag) <= 128 and tag.isascii() and tag.isalnum()    # "latest"
        if not plain and not _re("TAG_RE").match(tag):
            raise InvalidReference(f"invalid reference format: {text}: bad tag {tag!r}")
    if not name:
        raise InvalidReference(f"invalid reference format: {text!r}")
    domain, path = _split_domain(name)
    if domain != DEFAULT_DOMAIN and not _re("DOMAIN_RE").match(domain):
        raise InvalidReference(f"invalid reference format: {text}: bad registry {domain!r}")
    if not _plain(path) and not _re("PATH_RE").match(path):
        if _re("PATH_RE").match(path.lower()):
            raise InvalidReference(
                f"invalid reference format: repository name ({path}) must be lowercase")
        raise InvalidReference(f"invalid reference format: {text}")
    if len(domain) + 1 + len(path) > NAME_MAX:
        raise InvalidReference(f"invalid reference format: {text}: name longer than {NAME_MAX}")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def try_parse(text: str) -> Reference | None:
    try:
        return parse(text)
    except InvalidReference:
        return None


def looks_like_id(text: str) -> bool:
    """A hex prefix (or sha256:hex) that may name an image or container by ID."""
    t = text[7:] if text.startswith("sha256:") else text
    return bool(t) and len(t) <= 64 and all(c in "0123456789abcdef" for c in t)
