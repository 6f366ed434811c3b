"""In-process checks of the defences the hostile suite relies on (each bug found by it, pinned)."""

from __future__ import annotations

import time
import zipfile
import zlib
from pathlib import Path

import pytest

from ebook2audio.errors import BookError, DRMError
from ebook2audio.ingest import read_book
from ebook2audio.ingest.common import clean_text, decode_bytes, heading_kind
from ebook2audio.ingest.html import MAX_HTML_DEPTH, parse_html
from ebook2audio.ingest.safety import HostileInputError, SafeZip, TagBudget, parse_xml
from ebook2audio.ingest.text import MAX_TEXT_LINES, book_from_text

from .generate import (
    READABLE,
    RawMember,
    deflated_zeros,
    epub_members,
    laughs_prolog,
    member,
    raw_zip,
    write_epub,
    write_raw_epub,
    xhtml,
)

LAUGHS = xhtml("<p>&lol9;</p>", prolog=laughs_prolog("html"))


def test_entity_declarations_are_refused_wherever_the_doctype_is() -> None:
    with pytest.raises(HostileInputError, match="entities"):
        parse_xml(LAUGHS, "plain")
    late = LAUGHS.replace(b"<!DOCTYPE", b"<!--" + b"x" * 100_000 + b"-->\n<!DOCTYPE", 1)
    with pytest.raises(HostileInputError, match="entities"):
        parse_xml(late, "after 100 KB of comments")
    utf16 = LAUGHS.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert b"<!ENTITY" not in utf16
    with pytest.raises(HostileInputError, match="entities"):
        parse_xml(utf16, "UTF-16")
    # An external DTD without an internal subset is not an attack (and is never loaded).
    assert parse_xml(b'<!DOCTYPE html SYSTEM "file:///etc/passwd"><html/>', "ok").tag == "html"


def test_recovered_xml_never_holds_undecodable_text() -> None:
    """libxml2's recovery kept a reference to a surrogate as bytes lxml raised on (found by fuzzing)."""
    root = parse_xml(b'<html><p t="&#xD800;">a&#xD800;b</p>c&#xDFFF;&#0;d</html>', "t", recover=True)
    assert "".join(root.itertext()) == "a\ufffdbc\ufffd\ufffdd"
    assert root[0].get("t") == "\ufffd"


def test_tag_budget_counts_across_documents() -> None:
    budget = TagBudget("book.epub", limit=5)
    budget.spend(b"<a><b/></a>")
    with pytest.raises(HostileInputError, match="too much markup"):
        budget.spend("<p>x</p><p>y</p>")


def test_zip_member_problems_become_book_errors(tmp_path: Path) -> None:
    members = epub_members()
    doc = members.pop("OEBPS/ch2.xhtml")
    locked = member("OEBPS/ch2.xhtml", doc)
    locked.flags |= 0x1  # zipfile raised RuntimeError ("password required") before
    path = write_raw_epub(tmp_path / "locked.epub", members, [locked])
    with SafeZip.open(path) as zf, pytest.raises(DRMError, match="password"):
        zf.read("OEBPS/ch2.xhtml")
    broken = member("OEBPS/ch2.xhtml", doc)
    broken.data = bytes(b ^ 0x5A for b in broken.data)  # zlib.error escaped before
    path = write_raw_epub(tmp_path / "broken.epub", members, [broken])
    with SafeZip.open(path) as zf, pytest.raises(BookError, match="corrupt"):
        zf.read("OEBPS/ch2.xhtml")
    assert [c.title for c in read_book(path).chapters] == ["Chapter 1"]


@pytest.mark.parametrize("name", ["../x", "/abs", "a/../../x", "..\\x", "C:/x", "c:evil"])
def test_unsafe_member_names_are_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / "slip.zip"
    path.write_bytes(raw_zip([member("ok.txt", b"ok"), member(name, b"evil")]))
    with pytest.raises(HostileInputError, match="unsafe member name"):
        SafeZip.open(path)


def test_a_bomb_the_book_never_reads_does_not_refuse_it(tmp_path: Path) -> None:
    """Size and ratio checks happen when a member is read; the archive as a whole is still bounded."""
    members = epub_members()
    unused = RawMember(b"OEBPS/unused.bin", deflated_zeros(8), crc=zlib.crc32(bytes(8 << 20)), size=8 << 20)
    path = write_raw_epub(tmp_path / "unused-bomb.epub", members, [unused])
    assert len(read_book(path).chapters) == 2
    with SafeZip.open(path) as zf, pytest.raises(HostileInputError, match="zip bomb"):
        zf.read("OEBPS/unused.bin")
    many = [RawMember(f"z{i}".encode(), deflated_zeros(8), size=8 << 20) for i in range(10)]
    (tmp_path / "big.zip").write_bytes(raw_zip(many))
    with pytest.raises(HostileInputError, match="zip bomb"):
        SafeZip.open(tmp_path / "big.zip")


def test_control_characters_are_not_text_and_long_lines_are_cleaned_fast() -> None:
    assert clean_text("a\x00b\x07c\x1b d\x7fe\x85f\tg\u00adh") == "abc def gh"
    line = "sea wind " * 300_000 + "\U0001f600"
    start = time.monotonic()
    assert clean_text(line).endswith("wind \U0001f600")
    assert heading_kind(line) is None
    assert time.monotonic() - start < 1.0


def test_text_with_lines_in_two_encodings_is_decoded_line_by_line() -> None:
    data = "Le café est crème.\n".encode() + "Señor Muñoz.\n".encode("cp1252") + b"Plain ASCII.\n"
    text, encoding = decode_bytes(data)
    assert text == "Le café est crème.\nSeñor Muñoz.\nPlain ASCII.\n"
    assert encoding.startswith("utf-8+")


def test_a_text_file_with_nul_bytes_is_still_text(tmp_path: Path) -> None:
    path = tmp_path / "padded.txt"
    path.write_bytes(f"CHAPTER I\n\n{READABLE}\n".encode() + b"\x00" * 5000)
    book = read_book(path)
    assert book.chapters[0].paragraphs[0] == READABLE


def test_too_many_lines_are_refused_before_splitting() -> None:
    with pytest.raises(HostileInputError, match="too many lines"):
        book_from_text("a\n" * (MAX_TEXT_LINES + 1))


def test_html_nesting_is_bounded_but_the_text_kept() -> None:
    soup = parse_html(
        "<body>" + "<div>" * 5000 + "<p>deep text</p>" + "</div>" * 5000 + "<p>after</p></body>"
    )
    depth, el = 0, soup.find("p")
    while el is not None:
        depth, el = depth + 1, el.parent
    assert depth <= MAX_HTML_DEPTH + 3
    assert "deep text" in soup.get_text() and "after" in soup.get_text()


def test_html_of_only_empty_headings_has_no_text(tmp_path: Path) -> None:
    path = tmp_path / "headings.html"
    path.write_text("<html><body>" + "<h2>Chapter</h2>" * 1000 + "</body></html>")
    with pytest.raises(BookError, match="no readable text"):
        read_book(path)


def test_fb2_with_an_image_over_the_parser_limit_is_read_without_it(tmp_path: Path) -> None:
    path = tmp_path / "big-image.fb2"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0">'
        "<description><title-info><book-title>Big</book-title></title-info></description>"
        f"<body><section><p>{READABLE}</p></section></body>"
        f'<binary id="c" content-type="image/jpeg">{"A" * 11_000_000}</binary></FictionBook>'
    )
    book = read_book(path)
    assert book.chapters[0].paragraphs == (READABLE,)
    assert any("images too large" in w for w in book.warnings)


def test_epub_warns_when_a_document_is_read_in_recovery_mode(tmp_path: Path) -> None:
    members = epub_members()
    members["OEBPS/ch2.xhtml"] = xhtml("<h1>Chapter 2</h1><p>Kept.</p><p>Broken <b>here</p>")
    book = read_book(write_epub(tmp_path / "damaged.epub", members))
    assert any("damaged" in w and "ch2.xhtml" in w for w in book.warnings)
    assert "Kept." in book.chapters[1].paragraphs


def test_zip_writer_of_the_generator_makes_valid_archives(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(raw_zip([member("a.txt", b"hello"), member("b.txt", b"world", stored=True)]))
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert zf.read("a.txt") == b"hello"


def test_the_memory_cap_of_the_cli_runs_stops_a_runaway() -> None:
    """helpers.run_cli caps the child's address space: an allocation beyond it fails in the child."""
    import subprocess
    import sys

    from .helpers import MEMORY_CAP, _cap_memory

    code = f"bytearray({MEMORY_CAP + (1 << 30)})"
    done = subprocess.run(
        [sys.executable, "-c", code], preexec_fn=_cap_memory, capture_output=True, text=True
    )
    assert done.returncode != 0 and "MemoryError" in done.stderr
