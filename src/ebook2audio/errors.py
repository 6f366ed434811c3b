"""One exception tree for the whole package.

User errors (bad input, bad settings) end the CLI with one line ``error: ...`` and exit code 2.
Transient errors (storage hiccup, broker reconnect) are retried by the executors.
"""

from __future__ import annotations


class Ebook2AudioError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_code = 1


class UserError(Ebook2AudioError):
    """Something the user can fix: a missing file, a bad flag, an unreadable book."""

    exit_code = 2


class BookError(UserError):
    """The book cannot be read: unsupported, corrupt, encrypted or hostile."""


class UnsupportedFormatError(BookError):
    """No reader knows this format."""


class DRMError(BookError):
    """The book is DRM-encrypted."""


class VoiceError(UserError):
    """Unknown or uninstalled voice, engine or language."""


class ConfigError(UserError):
    """Bad settings (flags, environment, config file)."""


class TransientError(Ebook2AudioError):
    """A failure that may go away when retried (storage hiccup, broker reconnect)."""


class StorageError(TransientError):
    """Shared storage could not be read or written."""


class SynthesisError(Ebook2AudioError):
    """The engine failed on a chunk."""


class AssemblyError(Ebook2AudioError):
    """ffmpeg or the assembly of chunk audio failed."""


class PoisonSentenceError(UserError):
    """--strict: a sentence kills the synthesis process (the work done so far is kept)."""


class StoragePermissionError(UserError):
    """Shared storage refuses this user (file modes, ownership, a read-only mount): retrying cannot help.

    Permanent, unlike :class:`StorageError`: the executors do not retry it and the CLI prints one line
    naming the path.
    """


class InvalidKeyError(UserError):
    """A storage key or prefix that is empty, absolute, or has ``.``/``..`` parts: it could reach outside
    its job (``delete_prefix(".")`` would delete the whole storage), so it is refused before any I/O."""
