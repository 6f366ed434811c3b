from __future__ import annotations

import re
from collections.abc import Sequence

from ebook2audio.model import Batch, Book, Chapter, Metadata, Plan, VoiceSpec
from ebook2audio.plan import PlanOptions, dispatch_order, make_plan, split_tail

from .fakes import FAKE_INFO

BOOK = Book(
    metadata=Metadata(title="T", authors=("A",), language="en"),
    chapters=(
        Chapter("Chapter One", ("It was a dark night. The wind howled.", "Yes.", "Yes.")),
        Chapter("Empty", ("...",)),
        Chapter("Chapter Two", ("A " + "very " * 60 + "long sentence without any stop",)),
    ),
)


def words(s: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", s.lower())


def test_plan_keeps_every_word_in_order_and_skips_empty_chapters() -> None:
    plan = make_plan(BOOK, FAKE_INFO, VoiceSpec(engine="fake"), "s1")
    assert [c.title for c in plan.chapters] == ["Chapter One", "Chapter Two"]
    for pc, ch in zip(plan.chapters, [BOOK.chapters[0], BOOK.chapters[2]], strict=True):
        chunks = [c for c in plan.chunks if c.chapter == pc.index]
        spoken = " ".join(c.text for c in chunks)
        assert words(spoken) == words(ch.title + " " + " ".join(ch.paragraphs))
        assert all(len(c.text) <= FAKE_INFO.max_chars for c in chunks)
    # ids are unique even for repeated text, and every chunk is in exactly one batch
    ids = [c.id for c in plan.chunks]
    assert len(set(ids)) == len(ids)
    batched = [i for b in plan.batches for i in b.chunk_ids]
    assert sorted(batched) == sorted(ids)


def test_pauses_title_sentence_paragraph_chapter() -> None:
    plan = make_plan(BOOK, FAKE_INFO, VoiceSpec(engine="fake"), "s1")
    first = [c for c in plan.chunks if c.chapter == 0]
    p = PlanOptions().pauses
    assert first[0].display == "Chapter One" and first[0].pause_after_ms == p.title_ms
    assert first[1].pause_after_ms == p.sentence_ms  # "It was a dark night."
    assert first[2].pause_after_ms == p.paragraph_ms  # end of paragraph
    assert first[-1].pause_after_ms == p.chapter_ms


def test_ids_are_stable_and_change_only_with_what_changes() -> None:
    a = make_plan(BOOK, FAKE_INFO, VoiceSpec(engine="fake"), "s1")
    b = make_plan(BOOK, FAKE_INFO, VoiceSpec(engine="fake"), "other-session")
    assert [c.id for c in a.chunks] == [c.id for c in b.chunks]
    faster = make_plan(BOOK, FAKE_INFO, VoiceSpec(engine="fake", speed=1.5), "s1")
    assert not set(c.id for c in a.chunks) & set(c.id for c in faster.chunks)
    edited = Book(
        metadata=BOOK.metadata,
        chapters=(BOOK.chapters[0], Chapter("Chapter Two", ("Something else entirely.",))),
    )
    c = make_plan(edited, FAKE_INFO, VoiceSpec(engine="fake"), "s1")
    kept = set(x.id for x in a.chunks) & set(x.id for x in c.chunks)
    assert kept == {x.id for x in a.chunks if x.chapter == 0} | {
        x.id for x in c.chunks if x.text == "Chapter Two"
    }


def test_batches_respect_size_and_granularity() -> None:
    plan = make_plan(BOOK, FAKE_INFO, VoiceSpec(engine="fake"), "s", PlanOptions(batch_chars=40))
    assert len(plan.batches) > len(plan.chapters)
    for b in plan.batches:
        assert len({plan.chunk_map()[i].chapter for i in b.chunk_ids}) == 1
    per_chapter = make_plan(
        BOOK, FAKE_INFO, VoiceSpec(engine="fake"), "s", PlanOptions(granularity="chapter")
    )
    assert len(per_chapter.batches) == len(per_chapter.chapters)
    order = dispatch_order(plan.batches)
    assert [b.chars for b in order] == sorted((b.chars for b in plan.batches), reverse=True)


def test_plan_json_round_trip() -> None:
    plan = make_plan(BOOK, FAKE_INFO, VoiceSpec(engine="fake"), "s1")
    import json

    again = Plan.from_json(json.loads(json.dumps(plan.to_json())))
    assert again == plan


def _long_book(chapters: int = 6) -> Book:
    """Chapters of very different lengths, sentences of varied sizes (like bench/bookgen.py)."""
    out = []
    for ci in range(chapters):
        paragraphs = []
        for p in range(5 + 17 * ci):
            paragraphs.append(
                " ".join(
                    f"Sentence {w} of paragraph {p} in chapter {ci} says {'more ' * ((w * 7 + p) % 9)}things."
                    for w in range(4)
                )
            )
        out.append(Chapter(f"Chapter {ci + 1}", tuple(paragraphs)))
    return Book(metadata=Metadata(title="L", authors=("A",), language="en"), chapters=tuple(out))


def _makespan(batches: Sequence[Batch], workers: int) -> float:
    """Greedy list scheduling in dispatch order (what a queue with prefetch 1 does): the finish time."""
    free = [0.0] * workers
    for b in dispatch_order(batches):
        i = free.index(min(free))
        free[i] += b.chars
    return max(free)


def test_split_tail_regroups_sentences_and_shrinks_the_end() -> None:
    book = _long_book()
    base = make_plan(book, FAKE_INFO, VoiceSpec(engine="fake"), "s", PlanOptions(parallel=1))
    sizes = {c.id: len(c.text) for c in base.chunks}
    longest = max(sizes.values())
    for workers in (2, 4, 8):
        plan = make_plan(book, FAKE_INFO, VoiceSpec(engine="fake"), "s", PlanOptions(parallel=workers))
        # the same chunks, chapters and reading order: only the grouping changes
        assert plan.chunks == base.chunks and plan.chapters == base.chapters
        assert [i for b in plan.batches for i in b.chunk_ids] == [c.id for c in base.chunks]
        assert all(len({plan.chunk_map()[i].chapter for i in b.chunk_ids}) == 1 for b in plan.batches)
        assert all(b.chars == sum(sizes[i] for i in b.chunk_ids) for b in plan.batches)
        assert len(plan.batches) > len(base.batches)
        # the guided rule holds at every step of the dispatch order, and the end is single sentences
        remaining = sum(sizes.values())
        order = dispatch_order(plan.batches)
        for b in order:
            assert len(b.chunk_ids) == 1 or b.chars <= remaining / (2.0 * workers)
            remaining -= b.chars
        assert all(len(b.chunk_ids) == 1 for b in order[-workers:])
        # what it is for: the last worker ends within one sentence of a perfect share
        ideal = sum(sizes.values()) / workers
        assert _makespan(plan.batches, workers) <= ideal + longest
        assert _makespan(base.batches, workers) > ideal + longest  # (without the split, it does not)
    # stable: the same book and options give the same batches
    again = make_plan(book, FAKE_INFO, VoiceSpec(engine="fake"), "s", PlanOptions(parallel=8))
    assert (
        again.batches
        == make_plan(book, FAKE_INFO, VoiceSpec(engine="fake"), "s", PlanOptions(parallel=8)).batches
    )
    # chapter granularity is never split (one task a chapter is what it measures)
    chap = make_plan(
        book, FAKE_INFO, VoiceSpec(engine="fake"), "s", PlanOptions(granularity="chapter", parallel=8)
    )
    assert len(chap.batches) == len(chap.chapters)


def test_halve_splits_by_characters_at_a_sentence_boundary() -> None:
    sizes = {"a": 10, "b": 10, "c": 30, "d": 5}
    halves = split_tail([Batch("x", 0, ("a", "b", "c", "d"), 55)], sizes.__getitem__, parallel=2, depth=100)
    assert [b.chunk_ids for b in halves] == [(i,) for i in "abcd"]
    assert split_tail([Batch("x", 0, ("a", "b", "c", "d"), 55)], sizes.__getitem__, parallel=1) == [
        Batch("x", 0, ("a", "b", "c", "d"), 55)
    ]


def test_short_sentences_grouped_within_a_paragraph_for_engines_that_ask() -> None:
    """min_chars > 0: a sentence shorter than it is spoken with a neighbour of its paragraph (never across
    paragraphs, titles or chapters, never over max_chars); the plan is the same every time (resume)."""
    from dataclasses import replace

    from ebook2audio.plan import group_short
    from ebook2audio.text.segment import Segment

    book = Book(
        metadata=Metadata(title="T", language="en"),
        chapters=(
            Chapter("One", ("Yes. No. It was a dark and stormy night, they said.", "Go.")),
            Chapter("Two", ("Fine. " + "word " * 15 + "end.",)),
        ),
    )
    info = replace(FAKE_INFO, min_chars=12)
    plan = make_plan(book, info, VoiceSpec(engine="fake"), "s1")
    texts = [[c.text for c in plan.chunks if c.chapter == ch.index] for ch in plan.chapters]
    assert texts[0] == ["One", "Yes. No. It was a dark and stormy night, they said.", "Go."]
    assert texts[1][0] == "Two" and texts[1][1].startswith("Fine.") and len(texts[1]) == 3  # 80-char limit
    assert all(len(t) <= info.max_chars for ts in texts for t in ts)
    for pc, ch in zip(plan.chapters, book.chapters, strict=True):
        spoken = " ".join(c.text for c in plan.chunks if c.chapter == pc.index)
        assert words(spoken) == words(ch.title + " " + " ".join(ch.paragraphs))
    assert make_plan(book, info, VoiceSpec(engine="fake"), "s1") == plan
    assert len(make_plan(book, FAKE_INFO, VoiceSpec(engine="fake"), "s1").chunks) > len(plan.chunks)
    segs = [Segment("A.", "a."), Segment("B.", "b."), Segment("Long enough here.", "long enough here.")]
    assert group_short(segs, 5, 12) == [Segment("A. B.", "a. b."), segs[2]]
