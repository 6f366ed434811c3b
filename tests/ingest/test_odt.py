from __future__ import annotations

import base64
import zipfile
from pathlib import Path

import pytest

from ebook2audio.errors import BookError
from ebook2audio.ingest.odt import read_odt

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _make(path: Path, *, with_meta: bool = True, level: int = 1) -> None:
    """A small book made with odfpy: cover picture, Title paragraph, TOC, headings, a footnote,
    a list, a table and a section."""
    from odf import dc, draw, meta, style, table, text
    from odf.opendocument import OpenDocumentText

    doc = OpenDocumentText()
    if with_meta:
        doc.meta.addElement(dc.Title(text="The Test Voyage"))
        doc.meta.addElement(meta.InitialCreator(text="Jane Q. Writer"))
        doc.meta.addElement(dc.Language(text="en-GB"))
        doc.meta.addElement(meta.CreationDate(text="2021-05-06T10:00:00"))
        doc.meta.addElement(dc.Description(text="A tiny generated book."))
        doc.meta.addElement(meta.Keyword(text="sea"))
    doc.styles.addElement(style.Style(name="Title", family="paragraph"))
    doc.styles.addElement(style.Style(name="Subtitle", family="paragraph"))
    title_style = style.Style(name="P1", family="paragraph", parentstylename="Title")
    doc.automaticstyles.addElement(title_style)

    href = doc.addPicture("Pictures/cover.png", "image/png", PNG)
    frame = draw.Frame(width="2cm", height="2cm", anchortype="paragraph")
    frame.addElement(draw.Image(href=href))
    holder = text.P()
    holder.addElement(frame)
    doc.text.addElement(holder)
    doc.text.addElement(text.P(stylename=title_style, text="The Voyage Itself"))
    doc.text.addElement(text.P(stylename="Subtitle", text="by Jane Q. Writer"))

    toc = text.TableOfContent(name="toc")
    body = text.IndexBody()
    body.addElement(text.P(text="Chapter One .... 1"))
    toc.addElement(body)
    doc.text.addElement(toc)

    doc.text.addElement(text.H(outlinelevel=level, text="Chapter One"))
    p = text.P(text="It was a calm morning")
    p.addElement(text.S(c=3))
    p.addText("and the sea lay flat.")
    note = text.Note(noteclass="footnote")
    note.addElement(text.NoteCitation(text="1"))
    note_body = text.NoteBody()
    note_body.addElement(text.P(text="A footnote that is never read."))
    note.addElement(note_body)
    p.addElement(note)
    p.addText(" The crew slept.")
    p.addElement(text.LineBreak())
    p.addText("Nobody woke.")
    doc.text.addElement(p)
    doc.text.addElement(text.H(outlinelevel=level + 1, text="A Small Section"))
    doc.text.addElement(text.P(text="Gulls cried over the mast."))

    doc.text.addElement(text.H(outlinelevel=level, text="Chapter Two"))
    items = text.List()
    item = text.ListItem()
    item.addElement(text.P(text="First, the anchor."))
    items.addElement(item)
    doc.text.addElement(items)
    grid = table.Table()
    row = table.TableRow()
    for value in ("Ropes", "twelve"):
        cell = table.TableCell()
        cell.addElement(text.P(text=value))
        row.addElement(cell)
    grid.addElement(row)
    doc.text.addElement(grid)
    section = text.Section(name="s1")
    section.addElement(text.P(text="The end of the voyage came at last."))
    doc.text.addElement(section)
    doc.save(str(path))


def test_generated_odt(tmp_path: Path) -> None:
    path = tmp_path / "voyage.odt"
    _make(path)
    book = read_odt(path)
    assert [c.title for c in book.chapters] == ["Chapter One", "Chapter Two"]
    assert book.chapters[0].paragraphs == (
        "It was a calm morning and the sea lay flat. The crew slept. Nobody woke.",
        "A Small Section",
        "Gulls cried over the mast.",
    )
    assert book.chapters[1].paragraphs == (
        "First, the anchor.",
        "Ropes, twelve",
        "The end of the voyage came at last.",
    )
    md = book.metadata
    assert (md.title, md.authors, md.language, md.date) == (
        "The Test Voyage",
        ("Jane Q. Writer",),
        "en-GB",
        "2021-05-06",
    )
    assert md.description == "A tiny generated book."
    assert md.subjects == ("sea",)
    assert book.cover is not None and book.cover.mime == "image/png" and book.cover.data == PNG
    text = " ".join(p for c in book.chapters for p in c.paragraphs)
    assert "footnote" not in text and "...." not in text and "Voyage Itself" not in text
    assert book.source_format == "odt"


def test_title_paragraph_and_byline_when_meta_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "bare.odt"
    _make(path, with_meta=False, level=2)  # chapters at outline level 2: the level that repeats
    book = read_odt(path)
    assert book.metadata.title == "The Voyage Itself"
    assert book.metadata.authors == ("Jane Q. Writer",)
    assert [c.title for c in book.chapters] == ["Chapter One", "Chapter Two"]


def test_entity_declarations_are_refused(tmp_path: Path) -> None:
    good = tmp_path / "good.odt"
    _make(good)
    hostile = tmp_path / "hostile.odt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(hostile, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "content.xml":
                data = data.replace(b"?>", b'?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>', 1)
            dst.writestr(info, data)
    with pytest.raises(BookError, match="entities"):
        read_odt(hostile)


def test_not_an_odt(tmp_path: Path) -> None:
    path = tmp_path / "broken.odt"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(BookError):
        read_odt(path)


def test_the_registry_reads_odt_with_this_reader(tmp_path: Path) -> None:
    from ebook2audio.ingest import detect_format, read_book

    path = tmp_path / "voyage.odt"
    _make(path)
    assert detect_format(path) == "odt"
    assert read_book(path).source_format == "odt"
