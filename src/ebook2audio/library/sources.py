"""Where a library's books come from: a folder tree of ebook files, or a Calibre library.

A Calibre library is a folder holding ``metadata.db`` (SQLite): it is read, never written, with the
standard ``sqlite3`` module (this module is its only user), from the tables ``books``, ``authors``,
``books_authors_link``, ``series``, ``books_series_link`` and ``data``, and when present ``comments``,
``publishers``, ``languages``, ``identifiers`` and ``tags`` with their link tables. A book's files are
``<library>/<books.path>/<data.name>.<format>`` and its cover ``<library>/<books.path>/cover.jpg``.

A folder tree gives files only: their metadata comes from reading each book (``describe``).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..model import Metadata

CALIBRE_DB = "metadata.db"
# The format read when a Calibre book has several: the best-structured first (chapters, metadata).
FORMAT_PREFERENCE = (
    "epub", "kepub", "azw3", "mobi", "azw", "docx", "odt", "fb2", "fbz", "htmlz", "html", "htm",
    "rtf", "md", "markdown", "txt", "text", "pdf",
)  # fmt: skip


@dataclass(frozen=True)
class LibraryBook:
    """One book of the library: its file, and what names its audiobook (empty when still unknown)."""

    source: Path
    title: str = ""
    authors: tuple[str, ...] = ()
    series: str = ""
    series_index: str = ""  # "1", "2.5" (Calibre's REAL series_index, without a useless ".0")
    cover: Path | None = None  # an image file beside the book (Calibre's cover.jpg)
    description: str = ""
    publisher: str = ""
    date: str = ""  # YYYY-MM-DD or YYYY
    language: str = ""
    isbn: str = ""
    tags: tuple[str, ...] = ()
    calibre_id: int | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def known(self) -> bool:
        return bool(self.title)

    def with_metadata(self, md: Metadata) -> LibraryBook:
        """This book named from the metadata its file declares (folder-tree books)."""
        isbn = next((i.split(":", 1)[-1] for i in md.identifiers if "isbn" in i.lower()), "")
        return LibraryBook(
            source=self.source,
            title=md.title,
            authors=md.authors,
            series=self.series,
            series_index=self.series_index,
            cover=self.cover,
            description=md.description,
            publisher=md.publisher,
            date=md.date,
            language=md.language,
            isbn=isbn,
            tags=md.subjects,
        )


def is_calibre_library(src: Path) -> bool:
    return (src / CALIBRE_DB).is_file()


def scan_folder(
    src: Path,
    extensions: Iterable[str],
    exclude: Iterable[Path] = (),
    settle_s: float = 0.0,
    now: Callable[[], float] | None = None,
) -> list[Path]:
    """Every book file under ``src`` (by extension, case-insensitive), sorted; hidden files and folders
    and the folders in ``exclude`` (the output) are skipped, and so are files modified less than
    ``settle_s`` seconds ago (still being copied: picked up by the next scan)."""
    import time

    exts = tuple(e.lower() for e in extensions)
    skip = {p.resolve() for p in exclude} - {src.resolve()}  # the output inside the library: not scanned
    clock = now or time.time
    found: list[Path] = []
    for root, dirs, files in os.walk(src, followlinks=False):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() not in skip)
        for name in sorted(files):
            if name.startswith(".") or not name.lower().endswith(exts):
                continue
            path = here / name
            try:
                st = path.stat()
            except OSError:
                continue  # vanished, or a broken link
            if settle_s and clock() - st.st_mtime < settle_s:
                continue
            found.append(path)
    return found


def _index(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    return str(int(number)) if number.is_integer() else f"{number:g}"


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}


def read_calibre(src: Path) -> list[LibraryBook]:
    """The books of the Calibre library at ``src`` that have a readable format, in Calibre's id order."""
    db_path = src / CALIBRE_DB
    try:
        db = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise UserError(f"cannot open the Calibre library {db_path}: {exc}") from exc
    try:
        return _read(db, src)
    except sqlite3.Error as exc:
        raise UserError(f"cannot read the Calibre library {db_path}: {exc}") from exc
    finally:
        db.close()


def _read(db: sqlite3.Connection, src: Path) -> list[LibraryBook]:
    tables = _tables(db)
    missing = {"books", "authors", "books_authors_link", "data"} - tables
    if missing:
        raise UserError(
            f"{src / CALIBRE_DB} is not a Calibre library (no table {', '.join(sorted(missing))})"
        )

    def many(sql: str, table: str) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        if table in tables:
            for book, value in db.execute(sql):
                if value:
                    out.setdefault(int(book), []).append(str(value))
        return out

    authors = many(
        "SELECT l.book, a.name FROM books_authors_link l JOIN authors a ON a.id = l.author ORDER BY l.id",
        "authors",
    )
    series = many(
        "SELECT l.book, s.name FROM books_series_link l JOIN series s ON s.id = l.series", "books_series_link"
    )
    comments = many("SELECT book, text FROM comments", "comments")
    publishers = many(
        "SELECT l.book, p.name FROM books_publishers_link l JOIN publishers p ON p.id = l.publisher",
        "books_publishers_link",
    )
    languages = many(
        "SELECT l.book, g.lang_code FROM books_languages_link l JOIN languages g ON g.id = l.lang_code "
        "ORDER BY l.item_order",
        "books_languages_link",
    )
    isbns = many("SELECT book, val FROM identifiers WHERE type = 'isbn'", "identifiers")
    tags = many(
        "SELECT l.book, t.name FROM books_tags_link l JOIN tags t ON t.id = l.tag ORDER BY t.name",
        "books_tags_link",
    )
    formats: dict[int, dict[str, str]] = {}
    for book, fmt, name in db.execute("SELECT book, format, name FROM data"):
        formats.setdefault(int(book), {})[str(fmt).lower()] = str(name)
    books: list[LibraryBook] = []
    rows = db.execute("SELECT id, title, path, series_index, pubdate, has_cover, isbn FROM books ORDER BY id")
    for book_id, title, rel, index, pubdate, has_cover, isbn in rows:
        folder = (src / str(rel)).resolve()
        if not folder.is_relative_to(src.resolve()):
            continue  # a path that leaves the library (a tampered database): never followed
        source = _best_format(folder, formats.get(int(book_id), {}))
        if source is None:
            continue
        cover = folder / "cover.jpg"
        books.append(
            LibraryBook(
                source=source,
                title=str(title or ""),
                authors=tuple(authors.get(book_id, ())),
                series=(series.get(book_id) or [""])[0],
                series_index=_index(index) if series.get(book_id) else "",
                cover=cover if has_cover and cover.is_file() else None,
                description=(comments.get(book_id) or [""])[0],
                publisher=(publishers.get(book_id) or [""])[0],
                date=str(pubdate or "")[:10] if not str(pubdate or "").startswith("0101") else "",
                language=(languages.get(book_id) or [""])[0],
                isbn=str(isbn or "") or (isbns.get(book_id) or [""])[0],
                tags=tuple(tags.get(book_id, ())),
                calibre_id=int(book_id),
            )
        )
    return books


def _best_format(folder: Path, formats: dict[str, str]) -> Path | None:
    ranked = sorted(
        formats,
        key=lambda f: FORMAT_PREFERENCE.index(f) if f in FORMAT_PREFERENCE else len(FORMAT_PREFERENCE),
    )
    for fmt in ranked:
        path = folder / f"{formats[fmt]}.{fmt}"
        if path.is_file() and path.resolve().is_relative_to(folder):
            return path
    return None
