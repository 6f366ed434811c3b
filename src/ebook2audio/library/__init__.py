"""Library mode (``ebook2audio library``): a folder tree or a Calibre library -> audiobooks in
Audiobookshelf's layout, skipping what is already converted (docs/library.md)."""

from .layout import Destination, abs_metadata, destination
from .runner import Library, Outcome, Tally
from .sources import LibraryBook, is_calibre_library, read_calibre, scan_folder

__all__ = [
    "Destination", "Library", "LibraryBook", "Outcome", "Tally", "abs_metadata", "destination",
    "is_calibre_library", "read_calibre", "scan_folder",
]  # fmt: skip
