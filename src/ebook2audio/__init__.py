"""ebook2audio: turn an ebook into a chaptered audiobook with offline neural text-to-speech."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (
    BookError,
    DRMError,
    Ebook2AudioError,
    UnsupportedFormatError,
    UserError,
    VoiceError,
)
from .model import Book, Chapter, Chunk, Cover, Metadata, Plan, VoiceSpec

__all__ = [
    "Book",
    "BookError",
    "Chapter",
    "Chunk",
    "Cover",
    "DRMError",
    "Ebook2AudioError",
    "Metadata",
    "Plan",
    "UnsupportedFormatError",
    "UserError",
    "VoiceError",
    "VoiceSpec",
    "__version__",
    "convert",
]


def convert(book_path, settings=None, reporter=None):  # type: ignore[no-untyped-def]
    """Convert a book file with the embedded executor (see pipeline.convert)."""
    from pathlib import Path

    from .config import load_settings
    from .pipeline import convert as _convert

    return _convert(Path(book_path), settings or load_settings({}), reporter)
