from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path

import pytest

from ebook2audio.errors import BookError
from ebook2audio.ingest.docx import read_docx

JEKYLL = "docx_jekyll-and-hyde_stevenson_en_GENERATED.docx"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_corpus_docx(corpus: Path) -> None:
    book = read_docx(corpus / JEKYLL)
    assert [c.title for c in book.chapters] == [
        "STORY OF THE DOOR",
        "SEARCH FOR MR. HYDE",
        "DR. JEKYLL WAS QUITE AT EASE",
        "THE CAREW MURDER CASE",
        "INCIDENT OF THE LETTER",
        "INCIDENT OF DR. LANYON",
        "INCIDENT AT THE WINDOW",
        "THE LAST NIGHT",
        "DR. LANYON’S NARRATIVE",
        "HENRY JEKYLL’S FULL STATEMENT OF THE CASE",
    ]
    md = book.metadata
    assert md.title == "The Strange Case of Dr. Jekyll and Mr. Hyde"
    assert md.authors == ("Robert Louis Stevenson",)
    assert md.language == "en"
    assert md.date == "2020-01-01"
    assert md.description.startswith("Generated for an ebook-to-audiobook test corpus")
    assert "Fiction" in md.subjects
    assert book.cover is not None and book.cover.mime == "image/jpeg" and len(book.cover.data) > 100_000
    text = [p for c in book.chapters for p in c.paragraphs]
    assert not any(p.startswith("by Robert Louis Stevenson") for p in text)  # the Subtitle is metadata
    assert (
        book.chapters[0].paragraphs[0].startswith("Mr. Utterson the lawyer was a man of a rugged countenance")
    )
    assert 24_000 < sum(c.words for c in book.chapters) < 27_000
    assert book.source_format == "docx"


def _make(path: Path, *, core_author: str = "", picture: bool = True, headings: bool = True) -> None:
    import docx
    from docx.enum.style import WD_STYLE_TYPE

    document = docx.Document()
    if core_author:
        document.core_properties.author = core_author
    document.core_properties.title = ""
    document.core_properties.language = "fr-FR"
    if picture:
        document.add_picture(io.BytesIO(PNG))
    document.add_paragraph("Le Voyage", style="Title")
    document.add_paragraph("par Jeanne Plume", style="Subtitle")
    document.add_paragraph("Une page de titre.")
    if headings:
        toc = document.styles.add_style("TOC 1", WD_STYLE_TYPE.PARAGRAPH)
        document.add_paragraph("Premier chapitre\t3", style=toc)  # a typed-out contents line: not read
        document.add_heading("Premier chapitre", level=1)
    document.add_paragraph("Il pleuvait sur le port depuis la veille et les bateaux dormaient.")
    if headings:
        document.add_heading("Une section", level=2)
    document.add_paragraph("Les mouettes criaient au-dessus du mât.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Cordes"
    table.cell(0, 1).text = "douze"
    table.cell(1, 0).merge(table.cell(1, 1)).text = "Une ligne fusionnée"
    if headings:
        custom = document.styles.add_style("Chapitre Perso", WD_STYLE_TYPE.PARAGRAPH)
        custom.base_style = document.styles["Heading 1"]
        document.add_paragraph("Deuxième chapitre", style=custom)
    document.add_paragraph("La nuit tomba sur le quai.")
    document.save(str(path))


def test_generated_docx_headings_tables_and_byline(tmp_path: Path) -> None:
    path = tmp_path / "voyage.docx"
    _make(path)
    book = read_docx(path)
    assert [c.title for c in book.chapters] == ["Premier chapitre", "Deuxième chapitre"]
    assert book.chapters[0].paragraphs == (
        "Il pleuvait sur le port depuis la veille et les bateaux dormaient.",
        "Une section",  # a sub-heading is read as a line of its chapter
        "Les mouettes criaient au-dessus du mât.",
        "Cordes, douze",
        "Une ligne fusionnée",  # a merged cell is read once
    )
    assert book.chapters[1].paragraphs == ("La nuit tomba sur le quai.",)
    assert book.metadata.title == "Le Voyage"  # from the Title paragraph: core title is empty
    assert book.metadata.authors == ("Jeanne Plume",)  # from the "par ..." Subtitle
    assert book.metadata.language == "fr-FR"
    assert book.cover is not None and book.cover.mime == "image/png"
    assert any("titre" in w for w in book.warnings)  # the short title page is skipped, with a warning
    assert not any("Premier" in w for w in book.warnings)  # the contents line is not even front matter


def test_core_author_wins_and_no_headings_is_one_chapter(tmp_path: Path) -> None:
    path = tmp_path / "flat.docx"
    _make(path, core_author="A. Writer; B. Writer", picture=False, headings=False)
    book = read_docx(path)
    assert book.metadata.authors == ("A. Writer", "B. Writer")
    assert book.cover is None
    assert len(book.chapters) == 1
    assert book.chapters[0].paragraphs[0] == "Une page de titre."
    assert book.chapters[0].paragraphs[-1] == "La nuit tomba sur le quai."


def test_entity_declarations_are_refused(tmp_path: Path) -> None:
    good = tmp_path / "good.docx"
    _make(good)
    hostile = tmp_path / "hostile.docx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(hostile, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "word/document.xml":
                data = data.replace(
                    b"?>", b'?><!DOCTYPE w:document [<!ENTITY lol "lololololol">]>', 1
                ).replace(b"Une page de titre.", b"&lol;&lol;&lol;")
            dst.writestr(info, data)
    with pytest.raises(BookError, match="entities"):
        read_docx(hostile)


def test_not_a_word_document(tmp_path: Path) -> None:
    path = tmp_path / "x.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hello.txt", "hello")
    with pytest.raises(BookError, match="not a readable Word document"):
        read_docx(path)


def test_the_registry_reads_docx_with_this_reader(corpus: Path) -> None:
    from ebook2audio.ingest import read_book

    book = read_book(corpus / JEKYLL)
    assert book.source_format == "docx"
    assert len(book.chapters) == 10
