from __future__ import annotations

from pathlib import Path

import pytest

from ebook2audio.errors import BookError
from ebook2audio.ingest.rtf import read_rtf, rtf_to_plain

RTF = rb"""{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\froman Times;}}
{\info{\title The Caf\'e9 Tale}{\author Sam Scribe; Ann Other}{\subject Fiction}{\keywords sea, caf\'e9}
{\creatim\yr2019\mo3\dy4\hr10\min5}}
\pard\qc\b The Caf\'e9 Tale\b0\par
\pard\qc by Sam Scribe\par
\pard\qc\b CHAPTER I\b0\par
\pard\qc The Caf\'e9 by the Sea\par
\pard It was a fine day at the caf\'e9, and the waiter brought coffee to every table on the terrace while the gulls watched.\line A second line \u8212? of the same paragraph.\par
\pard The sea was calm.{\footnote\pard\plain A note that is never read.}\par
{\header\pard\plain Running header never read\par}
\pard\qc\b CHAPTER II\b0\par
\pard Night fell over the harbour and the lamps were lit one by one along the quay.\par
}
"""


def test_rtf_chapters_and_info(tmp_path: Path) -> None:
    path = tmp_path / "tale.rtf"
    path.write_bytes(RTF)
    book = read_rtf(path)
    assert [c.title for c in book.chapters] == ["CHAPTER I. The Café by the Sea", "CHAPTER II"]
    assert book.chapters[0].paragraphs == (
        "It was a fine day at the café, and the waiter brought coffee to every table on the terrace "
        "while the gulls watched. A second line — of the same paragraph.",
        "The sea was calm.",
    )
    assert book.chapters[1].paragraphs == (
        "Night fell over the harbour and the lamps were lit one by one along the quay.",
    )
    md = book.metadata
    assert md.title == "The Café Tale"
    assert md.authors == ("Sam Scribe", "Ann Other")
    assert md.date == "2019-03-04"
    assert md.subjects == ("Fiction", "sea", "café")
    text = " ".join(p for c in book.chapters for p in c.paragraphs)
    assert "never read" not in text
    assert book.source_format == "rtf"


def test_rtf_without_info_uses_the_text(tmp_path: Path) -> None:
    path = tmp_path / "plain.rtf"
    path.write_bytes(
        rb"{\rtf1\ansi{\fonttbl{\f0 Arial;}}\pard THE LONG ROAD\par\par\pard Chapter 1\par"
        rb"\pard The road ran west for a hundred miles across the plain, and nobody walked it twice.\par"
        rb"\pard Chapter 2\par\pard At the end of the road there was a house with a green door.\par}"
    )
    book = read_rtf(path)
    assert book.metadata.title == "The Long Road"
    assert [c.title for c in book.chapters] == ["Chapter 1", "Chapter 2"]


def test_plain_text_keeps_paragraphs_apart() -> None:
    assert rtf_to_plain(rb"{\rtf1\ansi one\par two\line three\par}").split("\n\n")[:2] == ["one", "two three"]


def test_not_rtf(tmp_path: Path) -> None:
    path = tmp_path / "x.rtf"
    path.write_bytes(b"just text")
    with pytest.raises(BookError, match="not an RTF document"):
        read_rtf(path)


def test_the_registry_reads_rtf_with_this_reader(tmp_path: Path) -> None:
    from ebook2audio.ingest import detect_format, read_book

    path = tmp_path / "tale.doc"  # an RTF saved as .doc: found by content
    path.write_bytes(RTF)
    assert detect_format(path) == "rtf"
    book = read_book(path)
    assert book.source_format == "rtf"
    assert book.metadata.language == "en"  # not declared: guessed from the text by the registry
