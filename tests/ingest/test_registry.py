from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from ebook2audio.errors import BookError, UnsupportedFormatError, UserError
from ebook2audio.ingest import detect_format, read_book, supported_formats
from ebook2audio.ingest.registry import READERS
from ebook2audio.model import Book, Chapter, Metadata

CORPUS_FORMATS = {
    "epub3_moby-dick_melville_en.epub": "epub",
    "epub2_esprit-des-lois_montesquieu_fr.epub": "epub",
    "fb2_voina-i-mir-example_tolstoy_ru.fb2": "fb2",
    "txt_die-verwandlung_kafka_de.txt": "txt",
    "html_alice-in-wonderland_carroll_en/11-h.htm": "html",
    "pdf_a-study-in-scarlet_doyle_en.pdf": "pdf",
    "mobi_childrens-literature_curry-clippinger_en.mobi": "mobi",
    "docx_jekyll-and-hyde_stevenson_en_GENERATED.docx": "docx",
}


@pytest.mark.parametrize(("name", "fmt"), sorted(CORPUS_FORMATS.items()))
def test_detects_every_corpus_book(corpus: Path, name: str, fmt: str) -> None:
    assert detect_format(corpus / name) == fmt


@pytest.mark.parametrize(
    ("source", "wrong_name", "fmt"),
    [
        ("epub3_moby-dick_melville_en.epub", "moby.txt", "epub"),
        ("fb2_voina-i-mir-example_tolstoy_ru.fb2", "voina.html", "fb2"),
        ("html_alice-in-wonderland_carroll_en/11-h.htm", "alice.txt", "html"),
        ("txt_die-verwandlung_kafka_de.txt", "kafka.epub", "txt"),
        ("pdf_a-study-in-scarlet_doyle_en.pdf", "scarlet", "pdf"),
    ],
)
def test_content_wins_over_a_wrong_extension(
    corpus: Path, tmp_path: Path, source: str, wrong_name: str, fmt: str
) -> None:
    target = tmp_path / wrong_name
    shutil.copyfile(corpus / source, target)
    assert detect_format(target) == fmt


def test_txt_that_is_html_is_read_as_html(tmp_path: Path) -> None:
    path = tmp_path / "story.txt"
    path.write_text("<!DOCTYPE html><html><body><h2>One</h2><p>Hello&nbsp;there.</p></body></html>")
    book = read_book(path)
    assert book.source_format == "html"
    assert [(c.title, c.paragraphs) for c in book.chapters] == [("One", ("Hello there.",))]


def test_markdown_by_extension_and_pdf_by_content(corpus: Path, tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("# Title\n\nSome text here.\n")
    assert detect_format(path) == "md"
    assert read_book(path).chapters[0].paragraphs == ("Some text here.",)
    pdf_named_txt = tmp_path / "scarlet.txt"
    pdf_named_txt.write_bytes((corpus / "pdf_a-study-in-scarlet_doyle_en.pdf").read_bytes()[:2048])
    assert detect_format(pdf_named_txt) == "pdf"


def test_rare_formats_go_to_calibre_or_fail_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lit = tmp_path / "old.lit"
    lit.write_bytes(b"ITOLITLS" + bytes(range(256)) * 4)
    assert detect_format(lit) == "calibre"
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(UnsupportedFormatError, match=r"LIT.*ebook-convert"):
        read_book(lit)


def test_other_zip_members_are_detected(tmp_path: Path) -> None:
    docx = tmp_path / "x.bin"
    with zipfile.ZipFile(docx, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<document/>")
    assert detect_format(docx) == "docx"
    odt = tmp_path / "y.bin"
    with zipfile.ZipFile(odt, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.text")
    assert detect_format(odt) == "odt"
    rtf = tmp_path / "z.doc"
    rtf.write_bytes(b"{\\rtf1\\ansi Hello}")
    assert detect_format(rtf) == "rtf"
    mobi = tmp_path / "m.bin"
    mobi.write_bytes(b"\x00" * 60 + b"BOOKMOBI" + b"\x00" * 100)
    assert detect_format(mobi) == "mobi"


def test_garbage_with_epub_extension_is_a_clear_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "book.epub"
    path.write_bytes(os.urandom(4096) + b"\x00\x01\x02")
    with pytest.raises(UnsupportedFormatError) as info:
        read_book(path)
    message = str(info.value)
    assert "book.epub" in message and "not an EPUB" in message and "\n" not in message


def test_unknown_binary_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(UnsupportedFormatError, match=r"^blob: unrecognised file content"):
        detect_format(path)


def test_zip_that_is_not_a_book(tmp_path: Path) -> None:
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.jpg", b"\xff\xd8\xff")
    with pytest.raises(UnsupportedFormatError, match=r"photos\.zip"):
        read_book(path)


def test_damaged_zip_is_a_book_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.epub"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 30)
    with pytest.raises(BookError, match=r"cut\.epub"):
        read_book(path)


def test_directory_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is a directory, not a book"):
        read_book(tmp_path)
    with pytest.raises(UserError, match="no such file"):
        read_book(tmp_path / "missing.epub")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(BookError, match=r"empty\.txt is empty"):
        read_book(empty)


def test_text_without_words_has_no_readable_text(tmp_path: Path) -> None:
    path = tmp_path / "stars.txt"
    path.write_text("* * *\n\n...\n\n---\n")
    with pytest.raises(BookError, match="no readable text"):
        read_book(path)


def test_postconditions_drop_empty_chapters_and_fill_title_and_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_reader(path: Path) -> Book:
        return Book(
            metadata=Metadata(),
            chapters=(
                Chapter("Empty", ("  ", "* * *")),
                Chapter(
                    "Chapter One", ("Chapter One", "The cat sat on the mat and it was happy with the day.")
                ),
                Chapter(
                    "Two", ("He said that the dog was in the garden, and she was not at home with him.",)
                ),
            ),
        )

    monkeypatch.setitem(READERS, "txt", fake_reader)
    path = tmp_path / "my_nice_book.txt"
    path.write_text("anything")
    book = read_book(path)
    assert [c.title for c in book.chapters] == ["Chapter One", "Two"]
    assert book.chapters[0].paragraphs == ("The cat sat on the mat and it was happy with the day.",)
    assert any("Empty" in w for w in book.warnings)
    assert book.metadata.title == "my nice book"
    assert book.metadata.language == "en"
    assert book.source_format == "txt"


def test_supported_formats_lists_only_real_readers() -> None:
    formats = supported_formats()
    assert {"epub", "fb2", "html", "txt", "pdf", "docx", "odt", "rtf", "md", "mobi"} <= set(formats)


def test_every_reader_is_reachable() -> None:
    """Each table entry imports (missing modules would only fail at read time otherwise)."""
    import importlib.util

    for fmt, reader in READERS.items():
        name = reader.__name__
        if name.startswith("not_yet_"):
            continue
        module, function = name.split(".")
        if module == "epub" and importlib.util.find_spec("ebook2audio.ingest.epub") is None:
            continue  # written in parallel by another change
        assert callable(getattr(importlib.import_module(f"ebook2audio.ingest.{module}"), function)), fmt
