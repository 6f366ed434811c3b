"""``synthesize_batch``: THE unit of work, run by the local process pool and by Celery workers alike.

It is idempotent: chunks already stored (and whole) are skipped, each chunk is written atomically, so a
batch delivered twice, or redone after a crash, just rewrites the same audio.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from .audio.pcm import wav_bytes
from .engines.base import Engine
from .jobstore import chunk_done, chunk_key
from .model import BatchResult, Chunk, ChunkResult
from .storage.base import Storage

log = logging.getLogger(__name__)


def synthesize_batch(
    storage: Storage,
    session: str,
    batch_id: str,
    chunks: Sequence[Chunk],
    engine: Engine,
) -> BatchResult:
    results: list[ChunkResult] = []
    skipped = 0
    synth = 0.0
    samples_total = 0
    rate = engine.info.sample_rate
    for chunk in chunks:
        if chunk_done(storage, session, chunk.id):
            skipped += 1
            continue
        t0 = time.perf_counter()
        pcm = engine.synthesize(chunk.text)
        synth += time.perf_counter() - t0
        storage.put_bytes(chunk_key(session, chunk.id), wav_bytes(pcm, rate))
        n = len(pcm) // 2
        samples_total += n
        results.append(ChunkResult(chunk_id=chunk.id, samples=n))
    log.debug("batch %s: %d synthesised, %d skipped", batch_id, len(results), skipped)
    return BatchResult(
        batch_id=batch_id,
        chunks=tuple(results),
        skipped=skipped,
        synth_seconds=synth,
        audio_seconds=samples_total / rate if rate else 0.0,
    )
