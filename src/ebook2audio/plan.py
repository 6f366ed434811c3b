"""Book + voice -> Plan: every sentence of every chapter as a chunk with a stable id, grouped in batches.

Planning never loads a model and never drops or truncates text: each paragraph is split into
sentences, normalised, and cut under the engine's input limit by text.segment.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from .audio.pcm import ms_to_samples
from .audio.pieces import STREAM_CUT_PAUSE
from .engines.base import EngineInfo
from .model import Batch, Book, Chunk, Mastering, Plan, PlannedChapter, Verification, VoiceSpec
from .text.lexicon import Lexicon
from .text.segment import Segment, segment_paragraph


@dataclass(frozen=True)
class Pauses:
    """Silence after a sentence, a paragraph, a chapter title and a chapter, in milliseconds."""

    sentence_ms: int = 300
    paragraph_ms: int = 700
    title_ms: int = 1000
    chapter_ms: int = 2000


@dataclass(frozen=True)
class PlanOptions:
    pauses: Pauses = Pauses()
    batch_chars: int = 1200  # about 80 s of speech: seconds to tens of seconds of work per batch
    granularity: str = "sentence"  # "sentence" (batches of sentences) or "chapter" (one batch a chapter)
    speak_titles: bool = True
    parallel: int = 1  # workers the batches will be shared among: > 1 splits the tail (split_tail)
    tail_depth: float = 2.0
    master: Mastering | None = None  # how every chunk is mastered where it is made; None: not at all
    lexicon: Lexicon = field(default_factory=Lexicon)  # respellings applied to the normalised text
    verify: Verification | None = None  # --verify: each chunk heard and retaken where it is made


def chunk_id(voice_key: str, text: str, occurrence: int) -> str:
    """Content hash of what is spoken and by which voice; the n-th repeat of a text gets its own id."""
    h = hashlib.sha256(f"{voice_key}\0{text}\0{occurrence}".encode()).hexdigest()
    return h[:24]


def _batch_id(chunk_ids: Iterable[str]) -> str:
    return "b" + hashlib.sha256("|".join(chunk_ids).encode()).hexdigest()[:19]


def make_plan(
    book: Book,
    info: EngineInfo,
    voice: VoiceSpec,
    session: str,
    options: PlanOptions | None = None,
) -> Plan:
    opts = options or PlanOptions()
    language = info.language or voice.language
    voice_key = f"{info.engine}|{info.voice}|{voice.speed:.3f}"
    if opts.master is not None:  # mastered and unmastered audio never share an id
        voice_key += f"|{opts.master.key()}"
    if opts.verify is not None:  # the take kept depends on the checks: only then part of the recipe
        voice_key += f"|{opts.verify.key()}"
    respelled = 0
    # Phoneme entries ([[ ... ]]) only for Piper, whose phonemizer reads them.
    lexicon = opts.lexicon if info.engine == "piper" else opts.lexicon.without_phonemes()

    def rewrite(text: str) -> str:
        nonlocal respelled
        out, n = lexicon.apply(text)
        respelled += n
        return out
    seen: Counter[str] = Counter()

    def cuttable(c: Chunk) -> bool:
        """The pause after ``c`` can hold a cut between two encoded pieces (audio/pieces.py)."""
        return ms_to_samples(c.pause_after_ms, info.sample_rate) >= STREAM_CUT_PAUSE

    chunks: list[Chunk] = []
    chapters: list[PlannedChapter] = []
    batches: list[Batch] = []

    def add(chapter: int, spoken: str, display: str, pause: int, out: list[Chunk]) -> None:
        occurrence = seen[spoken]
        seen[spoken] += 1
        out.append(
            Chunk(
                id=chunk_id(voice_key, spoken, occurrence),
                chapter=chapter,
                index=len(out),
                text=spoken,
                display=display,
                pause_after_ms=pause,
                master=opts.master,
                verify=opts.verify,
            )
        )

    def add_text(chapter: int, text: str, last_pause: int, out: list[Chunk]) -> None:
        """Each sentence of ``text`` as chunks; the last one gets ``last_pause``, the others a sentence pause."""
        segs = segment_paragraph(text, language, info.max_chars, rewrite if lexicon else None)
        if info.min_chars > 0:
            segs = group_short(segs, info.min_chars, info.max_chars)
        for j, seg in enumerate(segs):
            add(
                chapter,
                seg.spoken,
                seg.display,
                last_pause if j == len(segs) - 1 else opts.pauses.sentence_ms,
                out,
            )

    for chapter in book.chapters:
        ci = len(chapters)
        mine: list[Chunk] = []
        if opts.speak_titles and chapter.title.strip():
            add_text(ci, chapter.title, opts.pauses.title_ms, mine)
        body_start = len(mine)
        for paragraph in chapter.paragraphs:
            add_text(ci, paragraph, opts.pauses.paragraph_ms, mine)
        if len(mine) == body_start:
            continue  # a chapter with nothing speakable is skipped, not fatal
        mine[-1] = replace(mine[-1], chapter=ci, pause_after_ms=opts.pauses.chapter_ms)
        chapters.append(PlannedChapter(index=ci, title=chapter.title, chunk_ids=tuple(c.id for c in mine)))
        chunks.extend(mine)
        batches.extend(_batches(ci, mine, opts, cuttable))
    if opts.granularity == "sentence":
        sizes = {c.id: len(c.text) for c in chunks}
        at_cut = {c.id for c in chunks if cuttable(c)}
        batches = split_tail(batches, sizes.__getitem__, opts.parallel, opts.tail_depth, at_cut.__contains__)

    return Plan(
        session=session,
        voice=voice,
        sample_rate=info.sample_rate,
        chapters=tuple(chapters),
        chunks=tuple(chunks),
        batches=tuple(batches),
        metadata=book.metadata,
        engine=info,
        respelled=respelled,
    )


def group_short(segments: list[Segment], min_chars: int, max_chars: int) -> list[Segment]:
    """Consecutive segments of one paragraph joined where one of two neighbours is shorter than
    ``min_chars`` (for engines that garble very short inputs), never beyond ``max_chars``. Pure: the
    same paragraph always groups the same way, so chunk ids (and resumes) stay exact."""
    out: list[Segment] = []
    for seg in segments:
        if out:
            last = out[-1]
            short = len(last.spoken) < min_chars or len(seg.spoken) < min_chars
            if short and len(last.spoken) + 1 + len(seg.spoken) <= max_chars:
                out[-1] = Segment(f"{last.display} {seg.display}".strip(), f"{last.spoken} {seg.spoken}")
                continue
        out.append(seg)
    return out


def _batches(
    chapter: int, chunks: list[Chunk], opts: PlanOptions, cuttable: Callable[[Chunk], bool] = bool
) -> list[Batch]:
    """The chapter's chunks in batches of about ``batch_chars``; a batch ends, where it can, after a
    chunk whose pause can hold a cut between encoded pieces (``cuttable``), so that each batch's
    worker can encode the batch's audio on its own."""
    if opts.granularity == "chapter":
        groups = [chunks]
    else:
        groups = []
        current: list[Chunk] = []
        size = 0
        for c in chunks:
            if current and size + len(c.text) > opts.batch_chars:
                cut = next((i for i in range(len(current) - 1, -1, -1) if cuttable(current[i])), None)
                end = len(current) if cut is None else cut + 1
                groups.append(current[:end])
                current = current[end:]
                size = sum(len(x.text) for x in current)
            current.append(c)
            size += len(c.text)
        if current:
            groups.append(current)
    out = []
    for g in groups:
        ids = tuple(c.id for c in g)
        out.append(
            Batch(id=_batch_id(ids), chapter=chapter, chunk_ids=ids, chars=sum(len(c.text) for c in g))
        )
    return out


def split_tail(
    batches: list[Batch],
    chars: Callable[[str], int],
    parallel: int,
    depth: float = 2.0,
    cuttable: Callable[[str], bool] | None = None,
) -> list[Batch]:
    """``batches`` with the last ones in dispatch order cut smaller, so that ``parallel`` workers end together.

    Workers take batches longest first; the work left when one of them takes its last batch is the
    imbalance at the end (up to a whole batch: seconds to tens of seconds). Guided self-scheduling:
    walking the dispatch order with R the characters not yet taken (this batch's included), a batch
    larger than R / (depth x parallel) is halved (by characters, at a sentence boundary) until none
    is, so the batches shrink toward the end, down to single sentences. Splitting only regroups
    sentences: chunk ids, audio and chapters are unchanged. Returned in reading order. ``cuttable(id)``:
    the pause after that chunk can hold a cut between encoded pieces (halves end there when they can).
    Pure.
    """
    if parallel < 2 or depth <= 0:
        return list(batches)
    out = list(batches)
    while True:
        remaining = sum(b.chars for b in out)
        target = None
        for b in dispatch_order(out):
            if b.chars > remaining / (depth * parallel) and len(b.chunk_ids) > 1:
                target = b
                break
            remaining -= b.chars
        if target is None:
            return out
        i = out.index(target)
        out[i : i + 1] = _halve(target, chars, cuttable)


def _halve(
    batch: Batch, chars: Callable[[str], int], cuttable: Callable[[str], bool] | None = None
) -> list[Batch]:
    """``batch`` as two batches of consecutive sentences, as close to half its characters each as can be;
    cut after a ``cuttable`` chunk when that leaves each half at least a quarter of the characters."""
    sizes = [chars(c) for c in batch.chunk_ids]
    total = sum(sizes)
    best, best_gap, run = 1, total + 1, 0
    best_cut, cut_gap = 0, total + 1
    for k in range(1, len(sizes)):
        run += sizes[k - 1]
        gap = abs(2 * run - total)
        if gap < best_gap:
            best, best_gap = k, gap
        if cuttable is not None and cuttable(batch.chunk_ids[k - 1]) and gap < cut_gap:
            best_cut, cut_gap = k, gap
    if best_cut and 2 * cut_gap <= total:  # the smaller half holds at least a quarter
        best = best_cut
    halves = (batch.chunk_ids[:best], batch.chunk_ids[best:])
    return [
        Batch(id=_batch_id(ids), chapter=batch.chapter, chunk_ids=ids, chars=sum(map(chars, ids)))
        for ids in halves
    ]


def dispatch_order(batches: Iterable[Batch]) -> list[Batch]:
    """Longest first, so that the last batches to finish are short ones and workers balance themselves."""
    return sorted(batches, key=lambda b: (-b.chars, b.id))
