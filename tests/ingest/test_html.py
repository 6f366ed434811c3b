from __future__ import annotations

from pathlib import Path

import pytest

from ebook2audio.ingest import read_book
from ebook2audio.ingest.html import read_html

ALICE = Path("html_alice-in-wonderland_carroll_en") / "11-h.htm"
ALICE_CHAPTERS = [
    "CHAPTER I. Down the Rabbit-Hole",
    "CHAPTER II. The Pool of Tears",
    "CHAPTER III. A Caucus-Race and a Long Tale",
    "CHAPTER IV. The Rabbit Sends in a Little Bill",
    "CHAPTER V. Advice from a Caterpillar",
    "CHAPTER VI. Pig and Pepper",
    "CHAPTER VII. A Mad Tea-Party",
    "CHAPTER VIII. The Queen’s Croquet-Ground",
    "CHAPTER IX. The Mock Turtle’s Story",
    "CHAPTER X. The Lobster Quadrille",
    "CHAPTER XI. Who Stole the Tarts?",
    "CHAPTER XII. Alice’s Evidence",
]


@pytest.fixture(scope="module")
def alice(corpus: Path):
    return read_book(corpus / ALICE)


def test_alice_has_exactly_the_twelve_chapters(alice) -> None:
    assert [c.title for c in alice.chapters] == ALICE_CHAPTERS
    assert alice.chapters[0].paragraphs[0].startswith("Alice was beginning to get very tired")
    assert all(not c.paragraphs[0].startswith("CHAPTER") for c in alice.chapters)
    assert alice.source_format == "html"


def test_alice_metadata_and_cover(corpus: Path, alice) -> None:
    assert alice.metadata.title.replace("’", "'") == "Alice's Adventures in Wonderland"
    assert alice.metadata.authors == ("Lewis Carroll",)
    assert alice.metadata.language == "en"
    assert alice.cover is not None
    assert alice.cover.mime == "image/jpeg"
    assert alice.cover.data == (corpus / ALICE.parent / "images" / "cover.jpg").read_bytes()


def test_alice_entities_poems_and_no_table_of_contents(alice) -> None:
    text = "\n".join(p for c in alice.chapters for p in c.paragraphs)
    assert "&mdash;" not in text and "&rsquo;" not in text
    assert "“Curiouser and curiouser!” cried Alice" in text
    assert "Down the Rabbit-Hole" not in text  # the contents table is not read
    assert "* *" not in text  # asterisms are not words
    first_stanza = next(p for p in alice.chapters[1].paragraphs if "crocodile" in p)
    assert first_stanza == (
        "“How doth the little crocodile Improve his shining tail, And pour the waters of the Nile On every golden scale!"
    )
    assert sum(c.words for c in alice.chapters) > 26_000


def _write(tmp_path: Path, html: str, name: str = "book.html") -> Path:
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    return path


def test_scripts_styles_notes_and_gutenberg_boilerplate_are_removed(tmp_path: Path) -> None:
    html = """<!DOCTYPE html><html lang="fr"><head><title>Le Livre</title>
    <meta name="author" content="Victor Hugo"><style>p { color: red }</style></head><body>
    <section id="pg-header"><p>Title: Le Livre</p><p>The Project Gutenberg licence blah.</p></section>
    <h2>Chapitre I</h2><p>Il était une fois<a href="#note1" class="noteref">[1]</a> un roi&nbsp;&mdash; bon.</p>
    <script>alert("never read")</script><p>Fin <span class="pagenum">[p. 12]</span>du chapitre.</p>
    <h2>Chapitre II</h2><p>Encore du texte.</p>
    <section id="pg-footer"><p>*** END OF THE PROJECT GUTENBERG EBOOK ***</p></section>
    </body></html>"""
    book = read_html(_write(tmp_path, html))
    assert book.metadata.title == "Le Livre"
    assert book.metadata.authors == ("Victor Hugo",)
    assert book.metadata.language == "fr"
    assert [(c.title, c.paragraphs) for c in book.chapters] == [
        ("Chapitre I", ("Il était une fois un roi — bon.", "Fin du chapitre.")),
        ("Chapitre II", ("Encore du texte.",)),
    ]


def test_text_gutenberg_markers_and_header_fields(tmp_path: Path) -> None:
    html = """<html><body><pre>Title: A Tale
Author: Some One
Language: English</pre>
    <p>*** START OF THE PROJECT GUTENBERG EBOOK A TALE ***</p>
    <h1>A Tale</h1><h2>I</h2><p>First.</p><h2>II</h2><p>Second.</p>
    <p>*** END OF THE PROJECT GUTENBERG EBOOK A TALE ***</p><p>License text.</p></body></html>"""
    book = read_html(_write(tmp_path, html))
    assert (book.metadata.title, book.metadata.authors, book.metadata.language) == (
        "A Tale",
        ("Some One",),
        "en",
    )
    assert [(c.title, c.paragraphs) for c in book.chapters] == [("I", ("First.",)), ("II", ("Second.",))]


def test_chapter_level_without_numbered_headings_and_subheadings_are_read(tmp_path: Path) -> None:
    html = """<html><body><h1>The Book</h1>
    <h2>Beginnings</h2><p>Text one.</p><h3>A detail</h3><p>Text two.</p>
    <h2>Endings</h2><p>Text three.</p></body></html>"""
    book = read_html(_write(tmp_path, html))
    assert [(c.title, c.paragraphs) for c in book.chapters] == [
        ("Beginnings", ("Text one.", "A detail", "Text two.")),
        ("Endings", ("Text three.",)),
    ]


def test_part_headings_prefix_the_first_chapter(tmp_path: Path) -> None:
    html = """<html><body><h1>Part One</h1><h2>Chapter 1</h2><p>A.</p><h2>Chapter 2</h2><p>B.</p>
    <h1>Part Two</h1><h2>Chapter 3</h2><p>C.</p></body></html>"""
    book = read_html(_write(tmp_path, html))
    assert [c.title for c in book.chapters] == ["Part One. Chapter 1", "Chapter 2", "Part Two. Chapter 3"]


def test_cover_outside_the_book_directory_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"\xff\xd8\xff\xe0 not for you")
    book_dir = tmp_path / "book"
    book_dir.mkdir()
    html = (
        '<html><head><link rel="coverpage" href="../secret.jpg"></head><body><p>Text here.</p></body></html>'
    )
    book = read_html(_write(book_dir, html))
    assert book.cover is None
    assert any("outside" in w for w in book.warnings)


def test_cover_from_img_inside_the_directory(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    (tmp_path / "img" / "my%cover.png").write_bytes(png)
    html = '<html><body><img src="img/my%25cover.png"><p>Text here.</p></body></html>'
    book = read_html(_write(tmp_path, html))
    assert book.cover is not None and book.cover.mime == "image/png" and book.cover.data == png


def test_declared_legacy_charset(tmp_path: Path) -> None:
    html = '<html><head><meta charset="iso-8859-1"></head><body><p>Café “crème”</p></body></html>'
    path = tmp_path / "b.html"
    path.write_bytes(html.encode("cp1252"))
    assert read_html(path).chapters[0].paragraphs == ("Café “crème”",)


def test_modern_gutenberg_header_markup(tmp_path: Path) -> None:
    html = """<html><head><title>Some Tale | Project Gutenberg</title></head><body>
    <section class="pg-boilerplate" id="pg-header"><h2>The Project Gutenberg eBook of Some Tale</h2>
    <p><strong>Title</strong>: Some Tale</p><p><strong>Author</strong>: A. Writer</p>
    <p><strong>Language</strong>: German</p></section>
    <h2>Erstes Kapitel</h2><p>Es war einmal.</p><h2>Zweites Kapitel</h2><p>Und dann.</p></body></html>"""
    book = read_html(_write(tmp_path, html))
    assert (book.metadata.title, book.metadata.authors, book.metadata.language) == (
        "Some Tale",
        ("A. Writer",),
        "de",
    )
    assert [c.title for c in book.chapters] == ["Erstes Kapitel", "Zweites Kapitel"]
