"""Bounded fuzzing of the EPUB reader: a small valid EPUB, mutated at every level (archive bytes, zip
members, XML text, attribute values), must give a Book or a BookError, never another exception, and
in bounded time. 200 examples, about 10 s.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebook2audio.errors import BookError
from ebook2audio.ingest import read_book
from ebook2audio.model import Book

from .generate import epub_members, write_epub

SECONDS_PER_BOOK = 10.0

BASE = epub_members(3, ncx=True)
NAMES = sorted(BASE)

# Snippets that have broken readers before: entities, odd references, deep or unbalanced markup.
HOSTILE_SNIPPETS = [
    b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>',
    b'<!DOCTYPE html SYSTEM "file:///etc/passwd">',
    b"&a;&nbsp;&#0;&#xD800;&#1114112;&amp",
    b"<![CDATA[ ]]]]><![CDATA[>",
    b"<div>" * 300,
    b"</div>" * 50,
    b'<a href="../../../../etc/passwd">x</a><img src="/etc/passwd"/>',
    b'<a href="#" id="" epub:type="noteref"></a>',
    b'<?xml version="1.0" encoding="UTF-16"?>',
    b'<?xml version="1.1"?>',
    b"\x00\xff\xfe\xef\xbb\xbf",
    b'<rootfile full-path="" media-type=""/>',
    b'<item id="c0" href="" media-type="image/jpeg" properties="nav cover-image"/>',
    b'<itemref idref="nav" linear="no"/><itemref idref=""/>',
    b'<navPoint><content src=""/></navPoint>',
    b'<meta name="cover" content="../../x"/>',
    b"<nav epub:type='toc'><ol><li><ol><li/></ol></li></ol></nav>",
    b"<table><tr><td><table><tr><td>x</td></tr></table></td></tr></table>",
]
ATTRIBUTE_VALUES = [
    "",
    "#",
    "../../evil",
    "/abs",
    "C:\\x",
    "%00",
    "%zz",
    "a" * 5000,
    "ch1.xhtml#nowhere",
    "http://example.com/x",
    "nav.xhtml",
    "\u202e\ufffd",
]

member_name = st.sampled_from(NAMES)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[dict[str, bytes], list[tuple[int, int]]]:
    members = dict(BASE)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["snippet", "truncate", "bytes", "attr", "delete", "rename", "random"]))
        name = draw(member_name)
        if name not in members:
            continue
        data = members[name]
        if kind == "snippet":
            at = draw(st.integers(0, len(data)))
            members[name] = data[:at] + draw(st.sampled_from(HOSTILE_SNIPPETS)) + data[at:]
        elif kind == "truncate":
            members[name] = data[: draw(st.integers(0, len(data)))]
        elif kind == "bytes":
            buf = bytearray(data)
            for _ in range(draw(st.integers(1, 8))):
                if buf:
                    buf[draw(st.integers(0, len(buf) - 1))] = draw(st.integers(0, 255))
            members[name] = bytes(buf)
        elif kind == "attr":
            text = data.decode("utf-8", errors="replace")
            for attr in ("href", "src", "full-path", "idref", "id", "media-type", "properties"):
                if f'{attr}="' in text and draw(st.booleans()):
                    head, _, tail = text.partition(f'{attr}="')
                    _, _, rest = tail.partition('"')
                    text = f'{head}{attr}="{draw(st.sampled_from(ATTRIBUTE_VALUES))}"{rest}'
            members[name] = text.encode()
        elif kind == "delete":
            del members[name]
        elif kind == "rename":
            members[
                draw(st.sampled_from(["x", "OEBPS/ch1.XHTML", "META-INF/CONTAINER.XML", "ÖEBPS/ch1.xhtml"]))
            ] = members.pop(name)
        else:
            members[name] = draw(st.binary(max_size=300))
    flips = draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3))
    return members, flips


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(case=mutations())
def test_mutated_epub_reads_or_fails_cleanly(
    case: tuple[dict[str, bytes], list[tuple[int, int]]], tmp_path_factory
) -> None:
    members, flips = case
    path = tmp_path_factory.mktemp("fuzz") / "book.epub"
    write_epub(path, members)
    if flips:  # damage the archive itself: headers, sizes, CRCs, compressed data
        buf = bytearray(path.read_bytes())
        for pos, value in flips:
            buf[pos % len(buf)] = value
        path.write_bytes(bytes(buf))
    start = time.monotonic()
    try:
        book = read_book(path)
    except BookError:
        pass
    else:
        assert isinstance(book, Book)
        assert book.chapters and all(ch.paragraphs for ch in book.chapters)
    assert time.monotonic() - start < SECONDS_PER_BOOK


def test_fuzz_base_epub_is_valid(tmp_path: Path) -> None:
    """The seed the fuzzer mutates must itself be read in full (else the fuzz explores nothing)."""
    path = write_epub(tmp_path / "seed.epub", BASE)
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist()[0] == "mimetype"
    book = read_book(path)
    assert [ch.title for ch in book.chapters] == ["Chapter 1", "Chapter 2", "Chapter 3"]
