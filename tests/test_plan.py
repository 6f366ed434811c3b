from __future__ import annotations

import re

from ebook2audio.model import Book, Chapter, Metadata, Plan, VoiceSpec
from ebook2audio.plan import PlanOptions, dispatch_order, make_plan

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
