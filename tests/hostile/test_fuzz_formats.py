"""Bounded fuzzing of the single-file readers (FB2, HTML, plain text): small valid books with hostile
snippets spliced in and bytes overwritten give a Book or a BookError, never another exception."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebook2audio.errors import BookError
from ebook2audio.ingest import read_book

from .generate import READABLE, fb2
from .test_fuzz_epub import HOSTILE_SNIPPETS

SEEDS = {
    ".fb2": fb2(f"<section><title><p>One</p></title><p>{READABLE}</p></section>").encode(),
    ".html": (
        f"<html><head><title>T</title></head><body><h2>One</h2><p>{READABLE}</p>"
        f'<h2>Two</h2><p>{READABLE}<a href="#n1">1</a></p></body></html>'
    ).encode(),
    ".txt": f"Title: T\n\nCHAPTER I\n\n{READABLE}\n\nCHAPTER II\n\n{READABLE}\n".encode(),
}
EXTRA = [b"<h1>", b"</h2>", b"<p>", b"\r", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"CHAPTER IV\n\n", b"\f"]


@st.composite
def books(draw: st.DrawFn) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from(sorted(SEEDS)))
    data = SEEDS[suffix]
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.integers(0, 3))
        if kind == 0:
            data = data[:at] + draw(st.sampled_from(HOSTILE_SNIPPETS + EXTRA)) + data[at:]
        elif kind == 1:
            data = data[:at] + draw(st.binary(max_size=64)) + data[at:]
        elif kind == 2:
            data = data[:at]
        else:
            data = data[:at] + data[at + draw(st.integers(1, 64)) :]
    return suffix, data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(book=books())
def test_mutated_single_file_book_reads_or_fails_cleanly(book: tuple[str, bytes], tmp_path_factory) -> None:
    suffix, data = book
    path = tmp_path_factory.mktemp("fuzz") / f"book{suffix}"
    path.write_bytes(data)
    start = time.monotonic()
    try:
        result = read_book(path)
    except BookError:
        pass
    else:
        assert result.chapters and all(ch.paragraphs for ch in result.chapters)
    assert time.monotonic() - start < 10.0
