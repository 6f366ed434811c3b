"""Tiny books and a Calibre library built by the tests (nothing copied in)."""

from __future__ import annotations

import sqlite3
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape


def jpeg(path: Path, colour: str = "red") -> bytes:
    """A small real JPEG, made by the bundled ffmpeg."""
    import imageio_ffmpeg

    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"color=c={colour}:s=32x32", "-frames:v", "1", str(path)],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


def epub(
    path: Path, title: str, author: str, chapters: list[tuple[str, str]], cover: bytes | None = None
) -> Path:
    """An EPUB 3 with a nav document, one XHTML file per chapter, and a cover image when given."""
    items = "".join(
        f'<item id="c{i}" href="c{i}.xhtml" media-type="application/xhtml+xml"/>'
        for i in range(len(chapters))
    )
    items += '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
    if cover is not None:
        items += '<item id="cover" href="cover.jpg" media-type="image/jpeg" properties="cover-image"/>'
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    opf = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="uid">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:title>{escape(title)}</dc:title><dc:creator>{escape(author)}</dc:creator>"
        f'<dc:language>en</dc:language><dc:identifier id="uid">urn:uuid:{abs(hash(title))}</dc:identifier>'
        f"</metadata><manifest>{items}</manifest><spine>{spine}</spine></package>"
    )
    links = "".join(f'<li><a href="c{i}.xhtml">{escape(t)}</a></li>' for i, (t, _) in enumerate(chapters))
    xhtml = '<?xml version="1.0" encoding="UTF-8"?><html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
    members = {
        "mimetype": b"application/epub+zip",
        "META-INF/container.xml": (
            b'<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            b'<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            b"</rootfiles></container>"
        ),
        "OEBPS/content.opf": opf.encode(),
        "OEBPS/nav.xhtml": (
            f'{xhtml}<head><title>Contents</title></head><body><nav epub:type="toc"><ol>{links}</ol></nav></body></html>'
        ).encode(),
    }
    for i, (heading, text) in enumerate(chapters):
        members[f"OEBPS/c{i}.xhtml"] = (
            f"{xhtml}<head><title>{escape(heading)}</title></head>"
            f"<body><h1>{escape(heading)}</h1><p>{escape(text)}</p></body></html>"
        ).encode()
    if cover is not None:
        members["OEBPS/cover.jpg"] = cover
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            method = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data, compress_type=method)
    return path


def txt(path: Path, title: str, author: str, chapters: list[tuple[str, str]]) -> Path:
    body = "\n\n\n".join(f"{heading}\n\n{text}" for heading, text in chapters)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"Title: {title}\nAuthor: {author}\nLanguage: English\n\n\n{body}\n", encoding="utf-8")
    return path


# Calibre's own definitions (resources/metadata_sqlite.sql), the tables the library mode reads.
CALIBRE_SCHEMA = """
CREATE TABLE authors ( id INTEGER PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE, sort TEXT COLLATE NOCASE,
    link TEXT NOT NULL DEFAULT "", UNIQUE(name));
CREATE TABLE books ( id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL DEFAULT 'Unknown' COLLATE NOCASE,
    sort TEXT COLLATE NOCASE, timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    pubdate TIMESTAMP DEFAULT CURRENT_TIMESTAMP, series_index REAL NOT NULL DEFAULT 1.0,
    author_sort TEXT COLLATE NOCASE, isbn TEXT DEFAULT "" COLLATE NOCASE, lccn TEXT DEFAULT "" COLLATE NOCASE,
    path TEXT NOT NULL DEFAULT "", flags INTEGER NOT NULL DEFAULT 1, uuid TEXT, has_cover BOOL DEFAULT 0,
    last_modified TIMESTAMP NOT NULL DEFAULT "2000-01-01 00:00:00+00:00");
CREATE TABLE books_authors_link ( id INTEGER PRIMARY KEY, book INTEGER NOT NULL, author INTEGER NOT NULL,
    UNIQUE(book, author));
CREATE TABLE series ( id INTEGER PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE, sort TEXT COLLATE NOCASE,
    UNIQUE (name));
CREATE TABLE books_series_link ( id INTEGER PRIMARY KEY, book INTEGER NOT NULL, series INTEGER NOT NULL,
    UNIQUE(book));
CREATE TABLE data ( id INTEGER PRIMARY KEY, book INTEGER NON NULL, format TEXT NON NULL COLLATE NOCASE,
    uncompressed_size INTEGER NON NULL, name TEXT NON NULL, UNIQUE(book, format));
CREATE TABLE comments ( id INTEGER PRIMARY KEY, book INTEGER NON NULL, text TEXT NON NULL COLLATE NOCASE,
    UNIQUE(book));
"""


@dataclass(frozen=True)
class CalibreBook:
    title: str
    authors: tuple[str, ...]
    files: dict[str, bytes]  # format (EPUB, TXT) -> bytes
    series: str = ""
    series_index: float = 1.0
    cover: bytes | None = None
    comment: str = ""


def calibre_library(root: Path, books: list[CalibreBook]) -> Path:
    """A Calibre library as Calibre lays it out: metadata.db, Author/Title (id)/Title - Author.fmt, cover.jpg."""
    root.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(root / "metadata.db")
    db.executescript(CALIBRE_SCHEMA)
    for book in books:
        cur = db.execute(
            "INSERT INTO books (title, sort, series_index, author_sort, has_cover, pubdate) VALUES (?, ?, ?, ?, ?, ?)",
            (
                book.title,
                book.title,
                book.series_index,
                book.authors[0],
                book.cover is not None,
                "2019-05-04 00:00:00+00:00",
            ),
        )
        book_id = cur.lastrowid
        rel = f"{book.authors[0]}/{book.title} ({book_id})"
        db.execute("UPDATE books SET path = ? WHERE id = ?", (rel, book_id))
        for name in book.authors:
            db.execute("INSERT OR IGNORE INTO authors (name, sort) VALUES (?, ?)", (name, name))
            (author_id,) = db.execute("SELECT id FROM authors WHERE name = ?", (name,)).fetchone()
            db.execute("INSERT INTO books_authors_link (book, author) VALUES (?, ?)", (book_id, author_id))
        if book.series:
            db.execute("INSERT OR IGNORE INTO series (name, sort) VALUES (?, ?)", (book.series, book.series))
            (series_id,) = db.execute("SELECT id FROM series WHERE name = ?", (book.series,)).fetchone()
            db.execute("INSERT INTO books_series_link (book, series) VALUES (?, ?)", (book_id, series_id))
        if book.comment:
            db.execute("INSERT INTO comments (book, text) VALUES (?, ?)", (book_id, book.comment))
        folder = root / rel
        folder.mkdir(parents=True)
        stem = f"{book.title} - {book.authors[0]}"
        for fmt, data in book.files.items():
            (folder / f"{stem}.{fmt.lower()}").write_bytes(data)
            db.execute(
                "INSERT INTO data (book, format, uncompressed_size, name) VALUES (?, ?, ?, ?)",
                (book_id, fmt.upper(), len(data), stem),
            )
        if book.cover is not None:
            (folder / "cover.jpg").write_bytes(book.cover)
    db.commit()
    db.close()
    return root
