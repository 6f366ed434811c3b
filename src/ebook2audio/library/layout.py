"""Audiobookshelf's layout: where a book's audiobook goes, and the files Audiobookshelf reads beside it.

Audiobookshelf (``server/utils/scandir.js``) names a book from its folders: ``Author/Series/Title``,
the last folder being the book's, the one above it the series (when there are three), the top one
the author. In the book's folder a leading ``Vol N - `` gives the sequence in the series. So a book
of a series goes to ``OUT/Author/Series/Vol N - Title/Title.m4b`` and any other book to
``OUT/Author/Title/Title.m4b``. Several authors are joined with `` & `` (Audiobookshelf splits on it).

Beside the audiobook: ``cover.jpg`` (or ``cover.png``) and ``metadata.json``, the metadata file
Audiobookshelf prefers over the folder names (``server/scanner/AbsMetadataFileScanner.js``): flat
keys ``title``, ``authors``, ``narrators``, ``series`` (``"Name #N"``), ``description``, ... and
``chapters`` (``id``, ``start``, ``end`` in seconds, ``title``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..model import ChapterMark, Cover
from ..output import safe_name
from .sources import LibraryBook

METADATA_FILE = "metadata.json"
UNKNOWN_AUTHOR = "Unknown Author"
FOLDER_BYTES = 120  # each folder name; the file name keeps output.MAX_NAME_BYTES


@dataclass(frozen=True)
class Destination:
    folder: Path  # the book's own folder (Audiobookshelf's library item)
    name: str  # the audiobook's file name without extension (the title)


def destination(out: Path, book: LibraryBook) -> Destination:
    """Where ``book``'s audiobook goes under ``out``. Pure."""
    author = safe_name(" & ".join(book.authors[:3]), FOLDER_BYTES, UNKNOWN_AUTHOR)
    title = safe_name(book.title, FOLDER_BYTES, "Untitled")
    folder = out / author
    if book.series.strip():
        folder = folder / safe_name(book.series, FOLDER_BYTES, "Series")
        item = f"Vol {book.series_index} - {title}" if book.series_index else title
        folder = folder / safe_name(item, FOLDER_BYTES)
    else:
        folder = folder / title
    return Destination(folder, title)


def abs_metadata(
    book: LibraryBook, chapters: tuple[ChapterMark, ...] = (), narrator: str = ""
) -> dict[str, Any]:
    """The ``metadata.json`` Audiobookshelf reads for ``book``. Pure."""
    year = book.date[:4] if book.date[:4].isdigit() else None
    series = (
        [f"{book.series} #{book.series_index}" if book.series_index else book.series] if book.series else []
    )
    return {
        "tags": list(book.tags),
        "chapters": [
            {"id": i, "start": round(c.start, 3), "end": round(c.end, 3), "title": c.title}
            for i, c in enumerate(chapters)
        ],
        "title": book.title,
        "subtitle": None,
        "authors": list(book.authors),
        "narrators": [narrator] if narrator else [],
        "series": series,
        "genres": [],
        "publishedYear": year,
        "publishedDate": book.date or None,
        "publisher": book.publisher or None,
        "description": book.description or None,
        "isbn": book.isbn or None,
        "asin": None,
        "language": book.language or None,
        "explicit": False,
        "abridged": False,
    }


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` at ``path`` atomically unless it already holds exactly that; True if written."""
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def write_sidecars(
    folder: Path, book: LibraryBook, cover: Cover | None, chapters: tuple[ChapterMark, ...], narrator: str
) -> list[Path]:
    """``metadata.json`` and the cover beside the audiobook; the files written (unchanged ones are not)."""
    written: list[Path] = []
    meta = json.dumps(abs_metadata(book, chapters, narrator), ensure_ascii=False, indent=2) + "\n"
    if write_if_changed(folder / METADATA_FILE, meta.encode("utf-8")):
        written.append(folder / METADATA_FILE)
    if cover is not None:
        path = folder / ("cover.png" if cover.mime == "image/png" else "cover.jpg")
        if write_if_changed(path, cover.data):
            written.append(path)
    return written
