"""The storage seam: a flat key space of blobs, written atomically.

Keys are '/'-separated relative paths such as ``<session>/chunks/ab/abcdef.wav``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol, runtime_checkable


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

    def local_path(self, key: str) -> AbstractContextManager[Path]:
        """A readable local file holding the blob (the file itself, or a temporary download)."""
        ...

    def describe(self) -> str:
        """A human description with secrets masked, for logs."""
        ...
