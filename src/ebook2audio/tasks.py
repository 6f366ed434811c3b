"""``synthesize_batch``: THE unit of work, run by the local process pool and by Celery workers alike.

It is idempotent: chunks already stored (and whole) are skipped, and each chunk is written once: the
first complete write wins (``put_bytes_if_absent``), so a late duplicate of a re-dispatched batch never
replaces audio that assembly may already have measured. The engine is seeded from the chunk id, so
where the engine allows it every copy would have written the same bytes anyway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from .audio.pcm import wav_bytes
from .engines.base import Engine, chunk_seed
from .jobstore import chunk_key, chunk_whole
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
        key = chunk_key(session, chunk.id)
        size = storage.size(key)
        if size is not None and chunk_whole(storage, key, size):
            skipped += 1
            continue
        t0 = time.perf_counter()
        pcm = engine.synthesize(chunk.text, seed=chunk_seed(chunk.id))
        synth += time.perf_counter() - t0
        data = wav_bytes(pcm, rate)
        if size is not None:
            storage.put_bytes(key, data)  # a damaged blob (not whole) is replaced
        elif not storage.put_bytes_if_absent(key, data):
            # Another copy of this batch stored it first: theirs stands, ours is dropped.
            skipped += 1
            continue
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
