"""``synthesize_batch``: THE unit of work, run by the local process pool and by Celery workers alike.

It synthesises the batch's chunks into storage (FLAC, audio/chunkfmt.py) and, when the plan asks for
encoded pieces (m4b/m4a: ``piece`` given), encodes the batch's piece as its chunks come and stores it
next to them (audio/pieces.py): the coordinator then only joins pieces and never reads a chunk.

It is idempotent: a batch whose piece is stored is done; otherwise chunks already stored (and whole)
are skipped, and each chunk is written once: the first complete write wins (``put_bytes_if_absent``),
so a late duplicate of a re-dispatched batch never replaces stored audio. A piece is written the same
way, after every chunk of it is stored, from the audio storage holds (a chunk another copy stored
first is read back); a batch whose chunks are all done but whose piece is missing (a resume, a worker
that died between the two) reads its stored chunks and encodes the piece. The engine is seeded from
the chunk id, so where the engine allows it every copy writes the same bytes.

With a :class:`~ebook2audio.poison.BatchGuard` (every executor passes one), a batch whose process died
twice is run *suspect*: each chunk is marked before its synthesis, and a sentence that keeps killing
its process is spoken by the fallback engine or replaced by silence (see :mod:`ebook2audio.poison`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Collection, Iterator, Sequence

from .audio.chunkfmt import chunk_bytes
from .audio.master import master_chunk
from .audio.pieces import PieceSpec, PieceWriter
from .engines.base import Engine, chunk_seed
from .jobstore import chunk_key, chunk_whole, read_chunk_pcm
from .model import BatchResult, Chunk, ChunkResult
from .poison import Action, BatchGuard, Substitution, Turn, resample, silence_samples
from .storage.base import Storage
from .verify import ChunkCheck, Verdict, best, check_key, listen, take_plans

log = logging.getLogger(__name__)


def synthesize_batch(
    storage: Storage,
    session: str,
    batch_id: str,
    chunks: Sequence[Chunk],
    engine: Engine,
    *,
    guard: BatchGuard | None = None,
    piece: PieceSpec | None = None,
    job: str = "",
    stored: Collection[str] | None = None,
) -> BatchResult:
    """Synthesise (and, with ``piece``, encode) one batch; ``job`` names where the piece is stored.

    ``stored``: the batch's chunks the caller's own listing found stored when it sent the batch (its
    piece then missing); the others are synthesised without asking storage first (on S3 that saves
    two requests a chunk and one a batch). First-writer-wins still decides: a chunk another copy
    stored meanwhile is kept, and read back for the piece. None: every chunk and the piece are
    looked up (a re-sent batch, or a caller that does not know).
    """
    rate = engine.info.sample_rate
    piece_key = piece.key(session, job) if piece is not None else ""
    if piece is not None and (tuple(c.id for c in chunks) != piece.chunk_ids or piece.sample_rate != rate):
        raise ValueError(f"batch {batch_id}: the piece given is not this batch's")
    if piece is not None and stored is None and storage.exists(piece_key):
        log.debug("batch %s: its piece is stored, nothing to do", batch_id)
        return BatchResult(batch_id=batch_id, chunks=(), skipped=len(chunks), synth_seconds=0.0, audio_seconds=0.0)
    results: list[ChunkResult] = []
    skipped = 0
    synth = 0.0
    samples_total = 0
    with contextlib.ExitStack() as stack:
        writer = stack.enter_context(PieceWriter(piece, label=f"batch {batch_id}")) if piece else None
        for chunk in chunks:
            key = chunk_key(session, chunk.id)
            if stored is not None:
                size, whole = None, chunk.id in stored
            else:
                size = storage.size(key)
                whole = size is not None and chunk_whole(storage, key, size)
                if size is None:  # an earlier version's WAV counts too (a resume across the upgrade)
                    legacy = chunk_key(session, chunk.id, ".wav")
                    whole = chunk_whole(storage, legacy, storage.size(legacy))
            if whole:
                skipped += 1
                if writer is not None:
                    writer.add(read_chunk_pcm(storage, session, chunk.id, rate))
                continue
            with guard.chunk(chunk) if guard is not None else _main_turn() as turn:
                t0 = time.perf_counter()
                pcm, sub = _speak(chunk, engine, turn, guard)
                if chunk.verify is not None and sub is None:  # --verify: heard, retaken when wrong
                    pcm, check = verified_take(chunk, engine, pcm)
                    save_check(storage, session, check)  # before the audio: the report never misses it
                synth += time.perf_counter() - t0
                pcm = master_chunk(pcm, rate, chunk.master)  # levelled and peak-limited where it is made
                data = chunk_bytes(pcm, rate)
                if sub is not None and guard is not None:
                    guard.record(sub)  # before the audio: a report never misses a stored substitute
                if size is not None:
                    storage.put_bytes(key, data)  # a damaged blob (not whole) is replaced
                elif not storage.put_bytes_if_absent(key, data):
                    if stored is not None and not chunk_whole(storage, key, storage.size(key)):
                        storage.put_bytes(key, data)  # not looked up first: a damaged blob was there
                    else:
                        # Another copy of this batch stored it first: theirs stands, ours is dropped
                        # (the piece takes theirs, so that it always holds what storage holds).
                        skipped += 1
                        if writer is not None:
                            writer.add(read_chunk_pcm(storage, session, chunk.id, rate))
                        continue
            if writer is not None:
                writer.add(pcm)
            n = len(pcm) // 2
            samples_total += n
            results.append(ChunkResult(chunk_id=chunk.id, samples=n))
        if writer is not None:
            storage.put_bytes_if_absent(piece_key, writer.finish())
    log.debug("batch %s: %d synthesised, %d skipped", batch_id, len(results), skipped)
    return BatchResult(
        batch_id=batch_id,
        chunks=tuple(results),
        skipped=skipped,
        synth_seconds=synth,
        audio_seconds=samples_total / rate if rate else 0.0,
    )


def save_check(storage: Storage, session: str, check: ChunkCheck) -> None:
    data = json.dumps(check.to_json(), ensure_ascii=False).encode()
    storage.put_bytes(check_key(session, check.chunk_id), data)


def take_seed(chunk_id: str, variant: int) -> int:
    """The noise seed of a chunk's take ``variant`` (0: the chunk's own, as without --verify)."""
    return chunk_seed(chunk_id if variant == 0 else f"{chunk_id}#take{variant}")


def verified_take(chunk: Chunk, engine: Engine, first: bytes) -> tuple[bytes, ChunkCheck]:
    """``first`` (the chunk's own take) heard by speech recognition and, while a take fails, the sentence
    made again (another seed, then slower: verify.take_plans) up to ``chunk.verify.takes`` takes; the
    best take and what was found. The recogniser is loaded once per process (asr.transcriber)."""
    from . import asr

    spec = chunk.verify
    assert spec is not None
    listener = asr.transcriber(asr.resolve_model(spec.language, spec.model), spec.language)
    rate = engine.info.sample_rate
    speed = float(getattr(engine, "speed", 1.0))
    reference = chunk.display or chunk.text  # the book's words: a respelling is not what is heard
    takes: list[bytes] = []
    verdicts: list[Verdict] = []
    for n, how in enumerate(take_plans(spec.takes)):
        pcm = first
        voice = engine
        if n:
            slower = getattr(engine, "at_speed", None) if how.slower != 1.0 else None
            voice = slower(speed * how.slower) if slower is not None else engine
            pcm = voice.synthesize(chunk.text, seed=take_seed(chunk.id, how.seed_variant))
        samples = asr.to_asr_input(pcm, rate)
        said_speed = float(getattr(voice, "speed", speed))
        verdict = listen(
            lambda timestamps, x=samples: listener.transcribe(x, long=timestamps),  # type: ignore[misc]
            reference, len(pcm) / 2 / rate if rate else 0.0, spec, said_speed,
        )  # fmt: skip
        heard = verdict.heard
        takes.append(pcm)
        verdicts.append(verdict)
        if verdict.passed:
            break
        log.info(
            "chapter %d, sentence %d, take %d: %s (heard %r)",
            chunk.chapter + 1, chunk.index + 1, n + 1, "; ".join(verdict.problems), heard,
        )  # fmt: skip
    kept = best(verdicts)
    if not verdicts[kept].passed:
        log.warning(
            "chapter %d, sentence %d still fails after %d takes: %s",
            chunk.chapter + 1, chunk.index + 1, len(takes), "; ".join(verdicts[kept].problems),
        )  # fmt: skip
    check = ChunkCheck(
        chunk_id=chunk.id,
        chapter=chunk.chapter,
        index=chunk.index,
        text=reference,
        takes=len(takes),
        kept=kept,
        verdict=verdicts[kept],
    )
    return takes[kept], check


@contextlib.contextmanager
def _main_turn() -> Iterator[Turn]:
    yield Turn(Action.MAIN, 0)


def _speak(chunk: Chunk, engine: Engine, turn: Turn, guard: BatchGuard | None) -> tuple[bytes, Substitution | None]:
    """The chunk's PCM at the engine's rate, and the substitution made (None: the main voice spoke)."""
    if turn.action is Action.MAIN:
        return engine.synthesize(chunk.text, seed=chunk_seed(chunk.id)), None
    info = engine.info
    rate = info.sample_rate
    main = f"{info.engine} {info.voice}".strip()
    reason = f"the synthesis process died {turn.deaths} times on it ({main})"
    fallback = guard.fallback_engine() if guard is not None and turn.action is Action.FALLBACK else None
    if fallback is not None:
        try:
            pcm = fallback.synthesize(chunk.text)
            name = f"espeak-ng {fallback.info.voice}" if fallback.info.engine == "espeak" else fallback.info.engine
            return resample(pcm, fallback.info.sample_rate, rate), _sub(chunk, reason, f"fallback voice {name}")
        except Exception as exc:  # the fallback failing in any way: silence
            reason += f"; the fallback voice failed too ({type(exc).__name__}: {exc})"
    elif turn.action is Action.FALLBACK and guard is not None and guard.fallback_error():
        reason += f"; the fallback voice cannot load ({guard.fallback_error()})"
    elif turn.action is Action.SILENCE:
        reason += ", the fallback voice included"
    n = silence_samples(chunk, rate, float(getattr(engine, "speed", 1.0)))
    return b"\x00\x00" * n, _sub(chunk, reason, f"silence ({n / rate:.1f} s)" if rate else "silence")


def _sub(chunk: Chunk, reason: str, replacement: str) -> Substitution:
    return Substitution(
        chunk_id=chunk.id,
        chapter=chunk.chapter,
        index=chunk.index,
        text=chunk.display or chunk.text,
        reason=reason,
        replacement=replacement,
    )
