"""The NutshellError family: one line of message, an optional hint, an exit code.

Exit codes follow Docker: 125 when the engine itself fails (bad input, unknown
image, conflicts, ...), 126 when the container command cannot be invoked, 127 when
it cannot be found. Everything else a command returns is the container's own code.
The CLI prints ``nutshell: <message>`` on one line (and the hint on a second line
when there is one); tracebacks only with ``--debug``.
"""

from __future__ import annotations


class NutshellError(Exception):
    """Base of every error the engine raises on purpose."""

    exit_code: int = 125

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:  # one line, always
        return self.message.replace("\n", " ")


class UsageError(NutshellError):
    """Bad flags or arguments."""


class InvalidReference(NutshellError):
    """A malformed image reference, digest, or name."""


class NotFound(NutshellError):
    """No such image, container, network, volume, file..."""


class Conflict(NutshellError):
    """A name in use, an image still used by a container, ..."""


class StoreError(NutshellError):
    """The on-disk store is damaged or could not be written."""


class ArchiveError(NutshellError):
    """An image archive (docker-archive, OCI archive, tarball) is missing or corrupt."""


class UnsafeLayer(NutshellError):
    """A layer tried to write outside its root, or is otherwise hostile or corrupt."""


class ImageConfigError(NutshellError):
    """An image config (pulled, loaded or named by FROM) is malformed: a field of the wrong
    type, diff IDs that are not digests."""


class DigestMismatch(NutshellError):
    """Content did not hash to the digest that names it."""


class RegistryError(NutshellError):
    """A registry refused or failed a request."""


class RuntimeFailure(NutshellError):
    """The kernel refused part of container set-up."""


class CannotInvoke(NutshellError):
    """The container command exists but cannot be executed (exit 126)."""

    exit_code = 126


class CommandNotFound(NutshellError):
    """The container command does not exist (exit 127)."""

    exit_code = 127
