"""Library mode's pure parts: Audiobookshelf's layout and metadata file, the folder scan, Calibre's database."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from ebook2audio.errors import UserError
from ebook2audio.library import LibraryBook, abs_metadata, destination, read_calibre, scan_folder
from ebook2audio.model import ChapterMark

from .books import CalibreBook, calibre_library

OUT = Path("/lib")


def test_destination_follows_audiobookshelf_folders() -> None:
    plain = LibraryBook(Path("b.epub"), title="Dune", authors=("Frank Herbert",))
    assert destination(OUT, plain).folder == OUT / "Frank Herbert" / "Dune"
    assert destination(OUT, plain).name == "Dune"
    series = LibraryBook(
        Path("b.epub"), title="Dune Messiah", authors=("Frank Herbert",), series="Dune", series_index="2"
    )
    assert destination(OUT, series).folder == OUT / "Frank Herbert" / "Dune" / "Vol 2 - Dune Messiah"
    assert destination(OUT, series).name == "Dune Messiah"
    half = LibraryBook(Path("b"), title="Side Story", authors=("A", "B"), series="Saga", series_index="1.5")
    assert destination(OUT, half).folder == OUT / "A & B" / "Saga" / "Vol 1.5 - Side Story"
    nameless = LibraryBook(Path("b"), title="a/b: c?", authors=())
    assert destination(OUT, nameless).folder == OUT / "Unknown Author" / "a b c"


def test_metadata_file_is_what_audiobookshelf_reads() -> None:
    book = LibraryBook(
        Path("b"), title="T", authors=("A", "B"), series="S", series_index="3", description="D",
        date="2019-05-04", language="eng", isbn="978", tags=("x",),
    )  # fmt: skip
    data = abs_metadata(
        book, (ChapterMark("One", 0.0, 1.5), ChapterMark("Two", 1.5, 3.25)), "en_US-joe-medium"
    )
    assert data["title"] == "T" and data["authors"] == ["A", "B"] and data["series"] == ["S #3"]
    assert data["publishedYear"] == "2019" and data["description"] == "D" and data["isbn"] == "978"
    assert data["narrators"] == ["en_US-joe-medium"] and data["tags"] == ["x"]
    assert data["chapters"] == [
        {"id": 0, "start": 0.0, "end": 1.5, "title": "One"},
        {"id": 1, "start": 1.5, "end": 3.25, "title": "Two"},
    ]
    assert abs_metadata(LibraryBook(Path("b"), title="T"))["series"] == []


def test_scan_folder(tmp_path: Path) -> None:
    for rel in ("a/x.epub", "a/b/y.TXT", "z.pdf", ".hidden/h.epub", "a/.h.epub", "a/cover.jpg", "out/o.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    found = scan_folder(tmp_path, (".epub", ".txt", ".pdf"), exclude=[tmp_path / "out"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["z.pdf", "a/x.epub", "a/b/y.TXT"]
    # the output folder is the library itself: still scanned
    assert len(scan_folder(tmp_path / "out", (".txt",), exclude=[tmp_path / "out"])) == 1
    # a file still being written (modified just now) waits for the next scan
    os.utime(tmp_path / "z.pdf", (time.time() - 60, time.time() - 60))
    young = scan_folder(tmp_path, (".pdf",), settle_s=10)
    assert [p.name for p in young] == ["z.pdf"]
    (tmp_path / "z.pdf").touch()
    assert scan_folder(tmp_path, (".pdf",), settle_s=10) == []


def test_read_calibre(tmp_path: Path) -> None:
    lib = calibre_library(
        tmp_path / "Calibre",
        [
            CalibreBook("First", ("Ann Author", "Bob Second"), {"TXT": b"t", "EPUB": b"e", "PDF": b"p"},
                        series="Saga", series_index=2.0, cover=b"\xff\xd8jpeg", comment="<p>About</p>"),
            CalibreBook("Second", ("Ann Author",), {"PDF": b"p"}),
            CalibreBook("Gone", ("Ann Author",), {"EPUB": b"e"}),
        ],
    )  # fmt: skip
    gone = next((lib / "Ann Author").glob("Gone (*)/*.epub"))
    gone.unlink()  # a format listed in the database but missing on disk: the book is left out
    books = read_calibre(lib)
    assert [b.title for b in books] == ["First", "Second"]
    first, second = books
    assert first.source.suffix == ".epub" and first.source.is_file()  # EPUB preferred over TXT and PDF
    assert first.authors == ("Ann Author", "Bob Second")
    assert (first.series, first.series_index) == ("Saga", "2")
    assert first.cover is not None and first.cover.read_bytes() == b"\xff\xd8jpeg"
    assert first.description == "<p>About</p>" and first.date == "2019-05-04"
    assert second.source.suffix == ".pdf" and second.series == "" and second.cover is None


def test_calibre_paths_never_leave_the_library(tmp_path: Path) -> None:
    lib = calibre_library(tmp_path / "Calibre", [CalibreBook("T", ("A",), {"EPUB": b"e"})])
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "x.epub").write_bytes(b"e")
    db = sqlite3.connect(lib / "metadata.db")
    db.execute("UPDATE books SET path = '../secret'")
    db.execute("UPDATE data SET name = 'x'")
    db.commit()
    db.close()
    assert read_calibre(lib) == []


def test_not_a_calibre_database(tmp_path: Path) -> None:
    (tmp_path / "metadata.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(UserError, match="Calibre library"):
        read_calibre(tmp_path)
    db = sqlite3.connect(tmp_path / "other.db")
    db.execute("CREATE TABLE things (id INTEGER)")
    db.commit()
    db.close()
    os.replace(tmp_path / "other.db", tmp_path / "metadata.db")
    with pytest.raises(UserError, match="not a Calibre library"):
        read_calibre(tmp_path)


@pytest.mark.parametrize("doc", ["library.md", "library.fr.md"])
def test_docs_cover_every_library_flag(doc: str) -> None:
    import re

    from ebook2audio.cli import build_parser

    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / doc).read_text(encoding="utf-8")
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["library"]
    group = next(g for g in sub._action_groups if g.title == "library")
    for action in group._group_actions:
        for flag in action.option_strings:
            assert f"`{flag}" in text, flag
    for flag in ("--output-name", "--session", "--chapters", "--distributed", "metadata.json", "Vol N - "):
        assert flag in text, flag
    en = (root / "docs" / "library.md").read_text(encoding="utf-8")
    assert len(re.findall(r"^#+ ", text, re.M)) == len(re.findall(r"^#+ ", en, re.M))


def test_watch_survives_an_unreadable_scan_and_stops_on_a_signal(tmp_path: Path) -> None:
    """Logic only (fake conversion): a scan that fails after the first is a warning; a book done or
    failed is not tried again while its file is unchanged; a signal while waiting ends the watch."""
    from types import SimpleNamespace

    from ebook2audio.library import Library
    from ebook2audio.model import Book, Metadata

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    (tmp_path / "src" / "bad.txt").write_text("b")
    said: list[str] = []
    converted: list[str] = []

    def read(path: Path) -> Book:
        if path.name == "bad.txt":
            raise UserError("bad.txt: no readable text")
        return Book(Metadata(title=path.stem.upper(), authors=("X",)), ())

    def convert(book: Path, folder: Path, name: str) -> SimpleNamespace:
        converted.append(name)
        folder.mkdir(parents=True, exist_ok=True)
        return SimpleNamespace(outputs=(), already_converted=False, voice=SimpleNamespace(voice="v", engine="e"))

    lib = Library(
        src=tmp_path / "src", out=tmp_path / "out", extensions=(".txt",), read_book=read,
        convert_one=convert, find_done=lambda *_: None, say=said.append,
    )  # fmt: skip
    real_scan = lib.scan
    naps = iter(["new book", "unreadable", "stop"])

    def sleep(_s: float) -> None:
        step = next(naps)
        if step == "new book":
            (tmp_path / "src" / "c.txt").write_text("c")
        elif step == "unreadable":
            lib.scan = lambda: (_ for _ in ()).throw(UserError("database is locked"))  # type: ignore[method-assign]
        else:
            lib.scan = real_scan  # type: ignore[method-assign]
            raise KeyboardInterrupt

    tally = lib.watch(1.0, sleep=sleep)
    assert converted == ["A", "C"]  # bad.txt tried once, a.txt never twice
    assert tally.converted == 2 and len(tally.failed) == 1
    assert any(s.startswith("warning: database is locked") for s in said) and said[-1] == "stopped watching"
    assert (tmp_path / "out" / "X" / "A" / "metadata.json").is_file()
