"""Cheap checks of the benchmark helpers (the benchmark runs themselves are not tests)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench import _common, bookgen
from ebook2audio.config import Settings
from ebook2audio.ingest import read_book
from ebook2audio.pipeline import plan_options, resolve
from ebook2audio.plan import make_plan


def test_generated_book_has_chapters_of_the_given_sizes(tmp_path: Path) -> None:
    path = tmp_path / "book.txt"
    assert bookgen.generate(path) == sum(bookgen.CHAPTER_SIZES) == 2000
    book = read_book(path)
    assert (book.metadata.title, len(book.chapters)) == ("The Scaling Book", 12)
    settings = Settings(engine="sim")
    spec, info = resolve(book, settings)
    plan = make_plan(book, info, spec, "t", plan_options(settings))
    # every generated sentence (5 words or more) is one chunk; titles (4 words at most) are apart
    per_chapter = Counter(c.chapter for c in plan.chunks if len(c.display.split()) >= 5)
    assert [per_chapter[i] for i in range(12)] == list(bookgen.CHAPTER_SIZES)
    assert len(plan.chunks) - sum(per_chapter.values()) <= 24  # one or two title chunks a chapter
    assert bookgen.book_text(seed=1) == bookgen.book_text(seed=1) != bookgen.book_text(seed=2)
    assert sum(bookgen.scaled_sizes(0.1)) == 200


def test_write_section_replaces_its_own_section_only(tmp_path: Path) -> None:
    md = tmp_path / "B.md"
    _common.write_section("a", ["ALPHA"], md)
    _common.write_section("b", ["two"], md)
    _common.write_section("a", ["three", "lines"], md)
    text = md.read_text()
    assert text.startswith("# Benchmarks")
    assert "ALPHA" not in text and "<!-- bench:a -->\nthree\nlines\n<!-- /bench:a -->" in text
    assert text.index("bench:a -->") < text.index("bench:b -->")  # a keeps its place
    assert text.count("<!-- bench:b -->") == 1
