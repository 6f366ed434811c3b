"""The storage seam: a flat key space of blobs, written atomically.

Keys are '/'-separated relative paths such as ``<session>/chunks/ab/abcdef.wav``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path, PurePosixPath
from typing import Protocol, runtime_checkable

from ..errors import InvalidKeyError


def check_key(key: str) -> PurePosixPath:
    """``key`` as a relative path; InvalidKeyError when it is empty, absolute or climbs out (``..``)."""
    p = PurePosixPath(key)
    if not key or "\0" in key or p.is_absolute() or ".." in p.parts or not p.parts:
        raise InvalidKeyError(f"invalid storage key {key!r}")
    return p


def check_prefix(prefix: str) -> str:
    """The folder ``prefix`` names, as ``a/b/``, for ``delete_prefix``.

    Refused (InvalidKeyError, before any I/O): empty or ``/`` (the whole storage), absolute, and any
    empty, ``.`` or ``..`` part (``.``, ``..``, ``a/../b``, ``a//b``, ``./a``). A prefix always names a
    folder, with or without its trailing ``/``: ``delete_prefix("abc")`` never touches ``abcdef/``.
    """
    head = prefix[:-1] if prefix.endswith("/") else prefix
    parts = head.split("/")
    if not head or "\0" in head or any(part in ("", ".", "..") for part in parts):
        raise InvalidKeyError(
            f"refusing to delete storage prefix {prefix!r}: give a folder inside the storage "
            "(not empty, not absolute, no '.' or '..' parts)"
        )
    return head + "/"


@runtime_checkable
class Storage(Protocol):
    def put_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key`` atomically: readers see the old blob, or the whole new one."""
        ...

    def put_bytes_if_absent(self, key: str, data: bytes) -> bool:
        """Write ``data`` under ``key`` only if no blob is there yet (first writer wins, atomically).

        True when this call wrote it, False when a blob already existed (it is left untouched).
        """
        ...

    def get_bytes(self, key: str) -> bytes: ...

    def get_head(self, key: str, n: int) -> bytes:
        """The first ``n`` bytes of a blob (a header), without reading the rest."""
        ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int | None:
        """Size in bytes, or None when the key does not exist."""
        ...

    def list(self, prefix: str) -> Iterator[str]:
        """Every key that starts with ``prefix``."""
        ...

    def delete(self, key: str) -> None: ...

    # Every backend also has ``delete_prefix(prefix)``: delete the folder ``prefix`` names (checked
    # by :func:`check_prefix`), and ``sizes(prefix)`` where one listing gives every size at once.

    def local_path(self, key: str) -> AbstractContextManager[Path]:
        """A readable local file holding the blob (the file itself, or a temporary download)."""
        ...

    def describe(self) -> str:
        """A human description with secrets masked, for logs."""
        ...
