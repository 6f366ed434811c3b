"""``ebook2audio check AUDIOBOOK --against BOOK``: does each chapter say the book's chapter?

Each chapter of the audiobook (its chapter marks) is decoded at 16 kHz, transcribed (asr.py), and
compared with the matching chapter of the book (title, then paragraphs: what the planner reads aloud),
both normalised the same way (verify.comparable): word and character error rates, and the chapter's
length against the usual pace for its text. ``chapter_problems`` is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .audio.ffmpeg import decode_pcm, probe
from .errors import Ebook2AudioError, UserError
from .model import Book, Chapter, ChapterMark
from .verify import comparable, error_rates, expected_seconds


@dataclass(frozen=True)
class AgainstLimits:
    max_wer: float = 0.25  # a whole chapter: recognition errors average out, a missing sentence does not
    max_cer: float = 0.15
    min_duration: float = 0.5  # x the usual length of the chapter's text
    max_duration: float = 2.0
    speed: float = 1.0  # the speed the audiobook was made at


@dataclass(frozen=True)
class ChapterResult:
    number: int  # 1-based
    title: str
    seconds: float
    wer: float
    cer: float
    ratio: float
    heard: str


def spoken_text(chapter: Chapter) -> str:
    """What the planner reads aloud for ``chapter`` (the title, then the paragraphs)."""
    return " ".join(t for t in (chapter.title, *chapter.paragraphs) if t.strip())


def compare_chapter(
    number: int, chapter: Chapter, heard: str, seconds: float, language: str, speed: float = 1.0
) -> ChapterResult:
    text = spoken_text(chapter)
    wer, cer = error_rates(comparable(text, language), comparable(heard, language))
    usual = expected_seconds(text, speed)
    return ChapterResult(number, chapter.title, seconds, wer, cer, seconds / usual if usual else 0.0, heard)


def chapter_problems(results: Sequence[ChapterResult], limits: AgainstLimits) -> list[str]:
    """One line per chapter over a limit. Pure."""
    out = []
    for r in results:
        name = f"chapter {r.number}" + (f" ({r.title})" if r.title else "")
        found = []
        if r.wer > limits.max_wer:
            found.append(f"word error rate {r.wer:.0%} over {limits.max_wer:.0%}")
        if r.cer > limits.max_cer:
            found.append(f"character error rate {r.cer:.0%} over {limits.max_cer:.0%}")
        if r.ratio and r.ratio < limits.min_duration:
            found.append(f"{r.seconds:.0f} s is short for its text (x{r.ratio:.2f} the usual length)")
        elif r.ratio > limits.max_duration:
            found.append(f"{r.seconds:.0f} s is long for its text (x{r.ratio:.2f} the usual length)")
        if found:
            out.append(f"speech: {name}: {'; '.join(found)}")
    return out


def check_against(
    audiobook: Path,
    book: Book,
    language: str,
    limits: AgainstLimits,
    transcribe: Callable[[bytes, int], str],
) -> tuple[list[ChapterResult], list[str]]:
    """Each chapter of ``audiobook`` against ``book`` (already reduced to the chapters converted);
    ``transcribe(pcm, rate)``: the words heard. Returns the results and the problem lines."""
    try:
        marks: tuple[ChapterMark, ...] = probe(audiobook).chapters
    except Ebook2AudioError as exc:
        raise UserError(str(exc)) from exc
    chapters = [c for c in book.chapters if comparable(spoken_text(c), language)]
    problems = []
    if not marks:
        duration = probe(audiobook).duration
        marks = (ChapterMark("", 0.0, duration),)
        if len(chapters) > 1:
            problems.append(f"speech: the audiobook has no chapter marks, the book {len(chapters)} chapters")
            chapters = [Chapter("", tuple(p for c in chapters for p in (c.title, *c.paragraphs)))]
    if len(marks) != len(chapters):
        problems.append(
            f"speech: the audiobook has {len(marks)} chapters, the book {len(chapters)} "
            "(compared in order; --chapters selects the book's chapters converted)"
        )
    rate = 16_000
    results = []
    for i, (mark, chapter) in enumerate(zip(marks, chapters, strict=False), 1):
        try:
            pcm = decode_pcm(audiobook, rate, span=(mark.start, mark.end - mark.start))
        except Ebook2AudioError as exc:
            raise UserError(str(exc)) from exc
        heard = transcribe(pcm, rate)
        results.append(compare_chapter(i, chapter, heard, len(pcm) / 2 / rate, language, limits.speed))
    return results, problems + chapter_problems(results, limits)
