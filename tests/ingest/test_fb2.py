from __future__ import annotations

import base64
import zipfile
from pathlib import Path

import pytest

from ebook2audio.errors import BookError
from ebook2audio.ingest import read_book
from ebook2audio.ingest.fb2 import read_fb2

TOLSTOY = "fb2_voina-i-mir-example_tolstoy_ru.fb2"
NS = 'xmlns="http://www.gribuser.ru/xml/fictionbook/2.0" xmlns:l="http://www.w3.org/1999/xlink"'


@pytest.fixture(scope="module")
def tolstoy(corpus: Path):
    return read_book(corpus / TOLSTOY)


def test_tolstoy_metadata(tolstoy) -> None:
    md = tolstoy.metadata
    assert md.title == "Война и мир"
    assert md.authors == ("Лев Николаевич Толстой",)
    assert md.language == "ru"
    assert md.publisher == "ГИХЛ"
    assert md.year == "1869"
    assert md.description.startswith("Это тестовый файл FictionBook 2.0.")
    assert "[источник]" not in md.description
    assert tolstoy.source_format == "fb2"


def test_tolstoy_cover_is_the_declared_binary(tolstoy) -> None:
    assert tolstoy.cover is not None
    assert tolstoy.cover.mime == "image/jpeg"
    assert tolstoy.cover.data.startswith(b"\xff\xd8\xff")
    assert len(tolstoy.cover.data) == 35140


def test_tolstoy_chapters_flatten_nested_sections(tolstoy) -> None:
    titles = [c.title for c in tolstoy.chapters]
    assert len(titles) == 24  # two bodies' worth ("ТОМ 1", "ТОМ 2") of 12 text-carrying sections
    assert titles[:4] == [
        "ТОМ 1. ЧАСТЬ ПЕРВАЯ",  # its epigraph is text of its own, before the subsections
        "I",
        "Это пример глубоко вложенных частей. Рыба (1.I)",
        "Рыба (1.II)",
    ]
    assert "Рыба (1.IV.в). Рыба (1.IV.в.A). Рыба (1.IV.в.A.0). Рыба (1.IV.в.A.0.q)" in titles  # 7 deep
    assert titles[11] == "XX"
    assert titles[12] == "ТОМ 2. ЧАСТЬ VTORAYA"


def test_tolstoy_text_poems_and_no_notes_inline(tolstoy) -> None:
    text = "\n".join(p for c in tolstoy.chapters for p in c.paragraphs)
    first = tolstoy.chapters[1].paragraphs[0]
    assert first.startswith("- Еh bien, mon prince. Gênes et Lucques")
    assert "comme vous dites." in first  # the note link "1" is gone, and no space before the dot
    assert "Сноски" not in text  # the notes body
    assert "Прежде всего скажите, как ваше здоровье?" not in text
    assert "В приятну ночь, при лунном свете, Представить счастливо себе" in text  # <poem><stanza><v>
    assert tolstoy.chapters[0].paragraphs[-1] == "Грибов Дмитрий"  # the epigraph's text-author
    assert "\r" not in text


def _fb2(body: str, extra: str = "", head: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{head}<FictionBook {NS}><description><title-info>'
        "<author><first-name>Anna</first-name><last-name>Test</last-name></author>"
        "<book-title>Probe</book-title><lang>en</lang></title-info></description>"
        f"<body>{body}</body>{extra}</FictionBook>"
    ).encode()


def test_entity_declaration_is_refused(tmp_path: Path) -> None:
    head = '<!DOCTYPE FictionBook [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
    path = tmp_path / "bomb.fb2"
    path.write_bytes(_fb2("<section><p>&lol2;</p></section>", head=head))
    with pytest.raises(BookError, match="entities"):
        read_book(path)


def test_section_text_before_subsections_is_its_own_chapter(tmp_path: Path) -> None:
    body = (
        "<section><title><p>Part One</p></title><p>Intro text.</p>"
        "<section><title><p>Chapter 1</p></title><p>One.</p><cite><p>A quote.</p></cite></section>"
        "<section><title><p>Chapter 2</p><p>The End</p></title><p>Two.</p></section>"
        "</section>"
    )
    path = tmp_path / "b.fb2"
    path.write_bytes(_fb2(body))
    book = read_fb2(path)
    assert [(c.title, c.paragraphs) for c in book.chapters] == [
        ("Part One", ("Intro text.",)),
        ("Chapter 1", ("One.", "A quote.")),
        ("Chapter 2. The End", ("Two.",)),
    ]
    assert book.metadata.authors == ("Anna Test",)


def test_bad_cover_binary_is_a_warning_not_an_error(tmp_path: Path) -> None:
    gif = base64.b64encode(b"GIF89a....").decode()
    data = _fb2(
        "<section><p>Text.</p></section>",
        extra=f'<binary id="c.gif" content-type="image/gif">{gif}</binary>',
    ).replace(b"<lang>", b'<coverpage><image l:href="#c.gif"/></coverpage><lang>')
    path = tmp_path / "b.fb2"
    path.write_bytes(data)
    book = read_fb2(path)
    assert book.cover is None
    assert any("neither JPEG nor PNG" in w for w in book.warnings)


def test_not_well_formed_is_a_book_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.fb2"
    path.write_bytes(_fb2("<section><p>Text.</section>"))
    with pytest.raises(BookError, match="not well-formed"):
        read_book(path)


def test_zipped_fb2(corpus: Path, tmp_path: Path) -> None:
    path = tmp_path / "book.fb2.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(corpus / TOLSTOY, arcname="voina.fb2")
    book = read_book(path)
    assert book.source_format == "fb2.zip"
    assert book.metadata.title == "Война и мир"
    assert len(book.chapters) == 24
