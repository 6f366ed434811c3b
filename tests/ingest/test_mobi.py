from __future__ import annotations

import re
import struct
import sys
import tempfile
from pathlib import Path

import pytest

from ebook2audio.errors import BookError, DRMError
from ebook2audio.ingest.epub import read_epub
from ebook2audio.ingest.mobi import mobi_encryption, read_mobi
from ebook2audio.model import Book

MOBI = "mobi_childrens-literature_curry-clippinger_en.mobi"
EPUB = "epub3_childrens-literature_curry-clippinger_en.epub"


@pytest.fixture(scope="module")
def epub_book(corpus: Path) -> Book:
    return read_epub(corpus / EPUB)


def _words(book: Book) -> list[str]:
    """The book's words, punctuation and case aside."""
    text = " ".join(p for c in book.chapters for p in c.paragraphs)
    return [w for w in re.split(r"[\W_]+", text.casefold()) if w]


def _same_book(book: Book, reference: Book, *, paragraphs_differing: int = 0) -> None:
    assert [c.title for c in book.chapters] == [c.title for c in reference.chapters]
    assert len(book.chapters) == 21
    assert _words(book) == _words(reference)  # the same 55,188 words in the same order
    mine = [p for c in book.chapters for p in c.paragraphs]
    theirs = [p for c in reference.chapters for p in c.paragraphs]
    assert len(set(mine) ^ set(theirs)) == paragraphs_differing
    md, ref = book.metadata, reference.metadata
    assert (md.title, md.authors, md.language) == (ref.title, ref.authors, ref.language)
    assert book.cover is not None and book.cover.mime == "image/jpeg"
    assert book.source_format == "mobi"


def test_combined_mobi_reads_like_the_epub(
    corpus: Path, epub_book: Book, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    book = read_mobi(corpus / MOBI)
    _same_book(book, epub_book)
    assert list(scratch.iterdir()) == []  # the unpacked files are gone


def test_mobi7_and_azw3_halves_read_like_the_epub(corpus: Path, epub_book: Book, tmp_path: Path) -> None:
    from mobi.mobi_split import mobi_split

    split = mobi_split(str(corpus / MOBI))
    old = tmp_path / "old.mobi"
    old.write_bytes(split.getResult7())  # MOBI7 only: HTML + OPF + NCX
    kf8 = tmp_path / "new.azw3"
    kf8.write_bytes(split.getResult8())  # KF8 only: an EPUB inside
    # MOBI7 HTML sets one couplet as two lines where the EPUB has one paragraph: same words.
    _same_book(read_mobi(old), epub_book, paragraphs_differing=3)
    _same_book(read_mobi(kf8), epub_book)


def _record0(data: bytes) -> int:
    return struct.unpack_from(">L", data, 78)[0]


def test_drm_is_refused_before_unpacking(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytearray((corpus / MOBI).read_bytes())
    assert mobi_encryption(bytes(data)) == 0
    struct.pack_into(">H", data, _record0(data) + 12, 2)  # Mobipocket DRM
    path = tmp_path / "locked.azw"
    path.write_bytes(bytes(data))

    def unpack(*args: object, **kwargs: object) -> None:
        raise AssertionError("a DRM book must not be unpacked")

    monkeypatch.setattr("mobi.kindleunpack.unpackBook", unpack)
    with pytest.raises(DRMError, match=r"locked\.azw is DRM-encrypted"):
        read_mobi(path)


def test_absurd_declared_size_is_refused(corpus: Path, tmp_path: Path) -> None:
    data = bytearray((corpus / MOBI).read_bytes())
    struct.pack_into(">L", data, _record0(data) + 4, 0xFFFFFFF0)
    path = tmp_path / "bomb.mobi"
    path.write_bytes(bytes(data))
    with pytest.raises(BookError, match="declares"):
        read_mobi(path)


def test_not_a_mobi(tmp_path: Path) -> None:
    path = tmp_path / "x.mobi"
    path.write_bytes(b"\x00" * 200)
    with pytest.raises(BookError, match="not a MOBI"):
        read_mobi(path)
    damaged = tmp_path / "damaged.mobi"
    damaged.write_bytes(
        b"\x00" * 60 + b"BOOKMOBI" + b"\x00" * 8 + b"\x00\x01" + b"\x00\x00\x00\x60" + b"\x00" * 40
    )
    with pytest.raises(BookError):
        read_mobi(damaged)


def test_the_registry_reads_mobi_with_this_reader(corpus: Path) -> None:
    from ebook2audio.ingest import detect_format, read_book

    assert detect_format(corpus / MOBI) == "mobi"
    book = read_book(corpus / MOBI)
    assert book.source_format == "mobi"
    assert len(book.chapters) == 21


def test_without_the_mobi_package_the_user_is_told(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ebook2audio.errors import UnsupportedFormatError

    monkeypatch.setitem(sys.modules, "mobi.kindleunpack", None)
    with pytest.raises(UnsupportedFormatError, match="needs the mobi package"):
        read_mobi(corpus / MOBI)
