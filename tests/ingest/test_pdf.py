from __future__ import annotations

import re
import sys
import time
import zlib
from pathlib import Path

import pytest

from ebook2audio.errors import BookError, DRMError
from ebook2audio.ingest.pdf import (
    CAP_JOIN,
    Fragment,
    Line,
    build_lines,
    join_lines,
    pretty_title,
    read_pdf,
    strip_running_lines,
)
from ebook2audio.model import Book

SCARLET = "pdf_a-study-in-scarlet_doyle_en.pdf"

SCARLET_TITLES = [
    "Part I, Chapter I. Mr. Sherlock Holmes",
    "Chapter II. The Science of Deduction",
    "Chapter III. The Lauriston Garden Mystery",
    "Chapter IV. What John Rance Had to Tell",
    "Chapter V. Our Advertisement Brings a Visitor",
    "Chapter VI. Tobias Gregson Shows What He Can Do",
    "Chapter VII. Light in the Darkness",
    "Part II, Chapter I. On the Great Alkali Plain",
    "Chapter II. The Flower of Utah",
    "Chapter III. John Ferrier Talks with the Prophet",
    "Chapter IV. A Flight for Life",
    "Chapter V. The Avenging Angels",
    "Chapter VI. A Continuation of the Reminiscences of John Watson, M.D.",
    "Chapter VII. The Conclusion",
]


# --- the corpus book --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scarlet(corpus: Path) -> tuple[Book, float]:
    start = time.perf_counter()
    book = read_pdf(corpus / SCARLET)
    return book, time.perf_counter() - start


def _text(book: Book) -> str:
    return "\n".join(p for c in book.chapters for p in c.paragraphs)


def test_scarlet_has_fourteen_chapters_with_part_titles_folded_in(scarlet: tuple[Book, float]) -> None:
    book, seconds = scarlet
    assert [c.title for c in book.chapters] == SCARLET_TITLES
    assert seconds < 15, f"reading the PDF took {seconds:.1f} s"
    assert book.source_format == "pdf"


def test_scarlet_metadata(scarlet: tuple[Book, float]) -> None:
    book, _ = scarlet
    assert (
        book.metadata.title == "A Study in Scarlet"
    )  # the info says "Sherlock Holmes 1: A Study in Scarlet"
    assert any("Doyle" in a for a in book.metadata.authors)
    assert book.metadata.date == "2013-03-13"
    assert book.metadata.description == "detective story"


def test_scarlet_text_is_whole_and_clean(scarlet: tuple[Book, float]) -> None:
    book, _ = scarlet
    text = _text(book)
    words = len(text.split())
    assert 42_000 < words < 45_000  # the novel is about 43,500 words
    # Front matter (title page, transcriber's notes, "Contents") is skipped, with a warning.
    assert "Etext prepared by" not in text
    assert any("front matter" in w for w in book.warnings)
    # No running head ("CHAPTER I 3") and no page number is read.
    assert not re.search(r"\bCHAPTER [IVX]+\b", text)
    assert not any(re.fullmatch(r"[\divxlc]+", p.strip()) for p in book.chapters[0].paragraphs)
    # A sentence that runs over a page break, its page number and the next page's running head.
    assert "I was removed from my brigade and attached to the Berkshires" in text
    # Every chapter is read as prose, the title is not repeated as the first paragraph.
    for chapter in book.chapters:
        assert chapter.paragraphs[0] != chapter.title
        assert chapter.words > 1500


def test_scarlet_drop_caps_are_joined(scarlet: tuple[Book, float]) -> None:
    book, _ = scarlet
    first = book.chapters[0].paragraphs
    assert first[0].startswith("(Being a reprint from the reminiscences of John H. Watson, M.D.")
    assert first[1].startswith("In the year 1878 I took my degree of Doctor of Medicine")
    text = _text(book)
    assert "I N the year" not in text and "IN the year" not in text
    assert book.chapters[2].paragraphs[0].startswith("I confess that I was considerably startled")
    assert book.chapters[10].paragraphs[0].startswith("On the morning which followed his interview")
    assert book.chapters[12].paragraphs[0].startswith("Our prisoner’s furious resistance")
    assert CAP_JOIN not in text


def test_scarlet_hyphenation_is_undone(scarlet: tuple[Book, float]) -> None:
    text = _text(scarlet[0])
    assert "at the fatal battle of Maiwand" in text
    assert "proceeded to Netley to go through the course" in text
    assert "the enemy’s country" in text
    assert "I naturally gravitated to London" in text  # broken over a page and a picture page
    for broken in ("bat- tle", "bat-tle", "Net-ley", "grav-itated", "coun-try"):
        assert broken not in text
    assert "to-day" in text  # a real hyphen at a line end stays: the book spells it so elsewhere


def test_scarlet_captions_and_footnotes_are_not_read(scarlet: tuple[Book, float]) -> None:
    book, _ = scarlet
    text = _text(book).casefold()
    # The caption repeats a sentence of the text in capitals: read once, as text.
    assert text.count("murderous ghazis had it not been for the devotion") == 1
    assert "heber c. kemball" not in text  # the footnote
    assert "we elders have many heifers, but our children must" in text  # its marker is gone too
    assert any("caption" in w for w in book.warnings)


def test_scarlet_paragraphs_are_kept(scarlet: tuple[Book, float]) -> None:
    paragraphs = scarlet[0].chapters[0].paragraphs
    assert 50 < len(paragraphs) < 80
    assert (
        "“Whatever have you been doing with yourself, Watson?” he asked in undisguised wonder"
        in paragraphs[6]
    )
    assert (
        paragraphs[7]
        == "I gave him a short sketch of my adventures, and had hardly concluded it by the time that we reached our destination."
    )


# --- small PDFs made here ---------------------------------------------------------------------------

PageSpec = list[tuple[float, float, float, str, bool]]  # x, y, size, text, bold


def _escape(text: str) -> bytes:
    return text.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _pdf(
    pages: list[PageSpec], image_pages: frozenset[int] = frozenset(), info: dict[str, str] | None = None
) -> bytes:
    """A minimal PDF with Helvetica text (and a grey picture on some pages), written by hand."""
    objects: dict[int, bytes] = {
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        4: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    }
    pixels = zlib.compress(bytes(range(0, 256, 16)) * 16)
    objects[5] = (
        b"<< /Type /XObject /Subtype /Image /Width 16 /Height 16 /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n"
        % len(pixels)
        + pixels
        + b"\nendstream"
    )
    kids = []
    number = 6
    for index, spec in enumerate(pages):
        ops = []
        for x, y, size, text, bold in spec:
            font = b"/F2" if bold else b"/F1"
            ops.append(b"BT %s %g Tf 1 0 0 1 %g %g Tm (%s) Tj ET" % (font, size, x, y, _escape(text)))
        xobject = b""
        if index in image_pages:
            ops.append(b"q 300 0 0 400 60 100 cm /Im1 Do Q")
            xobject = b" /XObject << /Im1 5 0 R >>"
        content = b"\n".join(ops)
        objects[number] = b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"
        objects[number + 1] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 420 600] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >>%s >> >>" % (number, xobject)
        )
        kids.append(b"%d 0 R" % (number + 1))
        number += 2
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R /Lang (en-GB) >>"
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    trailer_info = b""
    if info:
        fields = b" ".join(b"/%s (%s)" % (k.encode(), _escape(v)) for k, v in info.items())
        objects[number] = b"<< %s >>" % fields
        trailer_info = b" /Info %d 0 R" % number
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for n in sorted(objects):
        offsets[n] = len(out)
        out += b"%d 0 obj\n" % n + objects[n] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for n in range(1, size):
        out += b"%010d 00000 n \n" % offsets[n]
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (size, trailer_info, xref)
    return bytes(out)


LOREM = (
    "The rain fell on the harbour all night and the boats knocked together at their moorings while the "
    "watchman walked the quay with his lantern and counted the hours until the grey morning came."
)
TOWNS = ["Arden", "Brill", "Calder", "Dunmore", "Elgin", "Fenwick", "Garth", "Hollin", "Ivel", "Jarrow"]


def _lorem(page: int, paragraph: int) -> str:
    """The paragraph, different on every page (real pages do not repeat their first and last lines)."""
    town = TOWNS[page % len(TOWNS)]
    return f"{town} slept. {LOREM} It was {town}, night {['one', 'two', 'three'][paragraph]}."


def _texts(*pages: int) -> tuple[str, ...]:
    return tuple(_lorem(n, k) for n in pages for k in range(2))


def _wrap(text: str, width: int = 62) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    lines.append(current)
    return lines


def _page(number: int, heading: str = "", paragraphs: int = 2, head: str = "THE HARBOUR") -> PageSpec:
    spec: PageSpec = [(60, 560, 9, head, False), (205, 40, 9, str(number), False)]
    y = 520.0
    if heading:
        spec.append((60, y, 20, heading, True))
        y -= 44
    for paragraph in range(paragraphs):
        for i, line in enumerate(_wrap(_lorem(number, paragraph))):
            spec.append((75 if i == 0 else 60, y, 10, line, False))
            y -= 12
    return spec


def _book_pages() -> list[PageSpec]:
    return [
        _page(1, "Chapter One"),
        _page(2),
        _page(3, "Chapter Two"),
        _page(4),
        _page(5, "Chapter Three"),
    ]


def test_headings_by_font_size_running_heads_and_page_numbers(tmp_path: Path) -> None:
    path = tmp_path / "harbour.pdf"
    path.write_bytes(_pdf(_book_pages(), info={"Title": "The Harbour", "Author": "Ann Writer; Bob Pen"}))
    book = read_pdf(path)
    assert [c.title for c in book.chapters] == ["Chapter One", "Chapter Two", "Chapter Three"]
    assert book.metadata.title == "The Harbour"
    assert book.metadata.authors == ("Ann Writer", "Bob Pen")
    assert book.metadata.language == "en-GB"
    assert [len(c.paragraphs) for c in book.chapters] == [4, 4, 2]
    # No "THE HARBOUR", no page number, paragraphs whole across pages.
    assert [c.paragraphs for c in book.chapters] == [_texts(1, 2), _texts(3, 4), _texts(5)]


def test_outline_gives_the_chapters(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    source = tmp_path / "plain.pdf"
    source.write_bytes(_pdf(_book_pages()))
    writer = PdfWriter(clone_from=source)
    writer.add_outline_item(title="Chapter One", page_number=0)
    writer.add_outline_item(
        title="The Second Night", page_number=2
    )  # not the heading's words: the heading is read
    path = tmp_path / "outlined.pdf"
    with path.open("wb") as fh:
        writer.write(fh)
    book = read_pdf(path)
    assert [c.title for c in book.chapters] == ["Chapter One", "The Second Night"]
    assert book.chapters[0].paragraphs == _texts(1, 2)  # the heading under its own entry is not repeated
    assert book.chapters[1].paragraphs == ("Chapter Two", *_texts(3, 4), "Chapter Three", *_texts(5))


def test_keyword_headings_in_the_body_font(tmp_path: Path) -> None:
    pages = []
    for number, name in enumerate(["CHAPTER I", "CHAPTER II"], start=1):
        spec = _page(number, paragraphs=2)
        spec.insert(2, (60, 540, 10, name, False))
        pages.append(spec)
    path = tmp_path / "keywords.pdf"
    path.write_bytes(_pdf(pages))
    book = read_pdf(path)
    assert [c.title for c in book.chapters] == ["Chapter I", "Chapter II"]
    assert [c.paragraphs for c in book.chapters] == [_texts(1), _texts(2)]


def test_numbered_chapter_headings_at_page_tops_are_not_running_heads(tmp_path: Path) -> None:
    pages = []
    for number in range(1, 9):
        spec = _page(number, paragraphs=2)
        if number % 2:  # "Chapter 1" happens to sit on page 1: a chance, not a page number
            spec.insert(2, (60, 540, 10, f"Chapter {(number + 1) // 2}", True))  # body size, page top
        pages.append(spec)
    path = tmp_path / "numbered.pdf"
    path.write_bytes(_pdf(pages))
    book = read_pdf(path)
    assert [c.title for c in book.chapters] == [f"Chapter {n}" for n in range(1, 5)]
    assert [c.paragraphs for c in book.chapters] == [_texts(n, n + 1) for n in (1, 3, 5, 7)]


def test_scanned_pdf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(_pdf([[], []], image_pages=frozenset({0, 1})))
    with pytest.raises(BookError, match=r"scan\.pdf has no text layer \(scanned\?\); OCR is not supported"):
        read_pdf(path)


def test_password_protected_pdf_is_refused_and_owner_only_protection_is_read(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    source = tmp_path / "plain.pdf"
    source.write_bytes(_pdf(_book_pages()[:2]))
    locked = tmp_path / "locked.pdf"
    writer = PdfWriter(clone_from=source)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")
    with locked.open("wb") as fh:
        writer.write(fh)
    with pytest.raises(DRMError, match=r"locked\.pdf is password-protected"):
        read_pdf(locked)

    restricted = tmp_path / "restricted.pdf"
    writer = PdfWriter(clone_from=source)
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-128")
    with restricted.open("wb") as fh:
        writer.write(fh)
    book = read_pdf(restricted)
    assert book.chapters[0].title == "Chapter One"


def test_not_a_pdf(tmp_path: Path) -> None:
    path = tmp_path / "fake.pdf"
    path.write_bytes(b"%PDF-1.4\nthis is not really a PDF\n")
    with pytest.raises(BookError):
        read_pdf(path)


# --- the pieces -------------------------------------------------------------------------------------


def test_drop_cap_and_small_capitals_are_joined() -> None:
    frags = [
        Fragment("I", 62.9, 333.6, 29.5),  # the drop cap, two lines high
        Fragment("N", 75.2, 348.0, 9.6),  # the rest of the word in small capitals
        Fragment(" the year 1878 I took my degree", 85.9, 348.0, 12.0),
        Fragment("of the University of London", 80.8, 333.6, 12.0),
        Fragment("J", 62.9, 319.1, 12.0),
        Fragment("OHN", 71.2, 319.1, 9.6),
        Fragment(" H. Watson wrote this.", 92.0, 319.1, 12.0),
    ]
    lines = build_lines(frags, 0, 12.0)
    assert [ln.text for ln in lines] == [
        "In the year 1878 I took my degree",
        "of the University of London",
        "John H. Watson wrote this.",
    ]
    assert [ln.drop_cap for ln in lines] == [True, True, False]


def test_a_drop_cap_that_is_a_word_keeps_its_space() -> None:
    frags = [Fragment("I", 62.9, 303.7, 29.5), Fragment("confess that I was startled", 80.6, 318.1, 12.0)]
    (line,) = build_lines(frags, 0, 12.0)
    assert line.text == f"I{CAP_JOIN}confess that I was startled"  # settled with the book's words later


def test_superscript_note_markers_are_dropped() -> None:
    frags = [
        Fragment("We Elders have many heifers,", 62.9, 497.4, 12.0),
        Fragment("1", 227.5, 501.8, 8.0),
        Fragment(" but our children must", 235.7, 497.4, 12.0),
    ]
    (line,) = build_lines(frags, 0, 12.0)
    assert line.text == "We Elders have many heifers, but our children must"


def test_join_lines_undoes_hyphenation_with_evidence() -> None:
    vocabulary = (frozenset({"battle", "sherlock"}), frozenset({"to-day"}))
    assert join_lines(["the fatal bat-", "tle of Maiwand"], vocabulary) == "the fatal battle of Maiwand"
    assert join_lines(["the second man to-", "day that"], vocabulary) == "the second man to-day that"
    assert join_lines(["unknown brok-", "en word"], vocabulary) == "unknown broken word"
    assert join_lines(["the Anglo-", "Saxon race"], vocabulary) == "the Anglo-Saxon race"
    assert join_lines(["free as air—", "or as free"], vocabulary) == "free as air—or as free"


def test_running_heads_and_page_numbers_are_removed() -> None:
    names = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    pages = []
    for n, name in enumerate(names):
        lines = [
            Line(n, f"CHAPTER II {n + 20}", 62.9, 543.6, 12.0),
            Line(n, f"The {name} line opens this page of the story", 62.9, 511.9, 12.0),
            Line(n, f"and the {name} line goes on down the page", 62.9, 497.4, 12.0),
        ]
        if n < 3:
            lines.append(Line(n, "“No.”", 80.5, 483.0, 12.0))  # a short line that repeats, in the text
        lines.append(Line(n, str(n + 20), 200.0, 77.3, 12.0))
        pages.append(lines)
    cleaned, removed = strip_running_lines(pages)
    assert removed == 16
    assert [lines[0].text for lines in cleaned] == [
        f"The {name} line opens this page of the story" for name in names
    ]
    assert [lines[-1].text for lines in cleaned[:3]] == ["“No.”"] * 3


@pytest.mark.parametrize(
    ("raw", "title"),
    [
        ("CHAPTER I. MR. SHERLOCK HOLMES.", "Chapter I. Mr. Sherlock Holmes"),
        (
            "CHAPTER VI. A CONTINUATION OF THE REMINISCENCES OF JOHN WATSON, M.D.",
            "Chapter VI. A Continuation of the Reminiscences of John Watson, M.D.",
        ),
        ("TOBIAS GREGSON SHOWS WHAT HE CAN DO.", "Tobias Gregson Shows What He Can Do"),
        ("PART II.", "Part II"),
        ("The Country of the Saints", "The Country of the Saints"),
    ],
)
def test_pretty_title(raw: str, title: str) -> None:
    assert pretty_title(raw) == title


def test_the_registry_reads_pdf_with_this_reader(tmp_path: Path) -> None:
    from ebook2audio.ingest import detect_format, read_book

    path = tmp_path / "book.bin"  # found by content, not by name
    path.write_bytes(_pdf(_book_pages()))
    assert detect_format(path) == "pdf"
    book = read_book(path)
    assert book.source_format == "pdf"
    assert [c.title for c in book.chapters] == ["Chapter One", "Chapter Two", "Chapter Three"]


def test_without_pypdf_the_user_is_told_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ebook2audio.errors import UnsupportedFormatError

    path = tmp_path / "book.pdf"
    path.write_bytes(_pdf(_book_pages()[:1]))
    monkeypatch.setitem(sys.modules, "pypdf", None)  # as if it were not installed
    with pytest.raises(UnsupportedFormatError, match=r"needs the pypdf package \(reinstall ebook2audio"):
        read_pdf(path)
