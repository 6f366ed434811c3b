"""Synthetic chunk audio for the audio tests: numpy tones, no TTS."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ebook2audio.audio.pcm import wav_bytes
from ebook2audio.model import Chunk, Metadata, Plan, PlannedChapter, VoiceSpec

RATE = 22050
METADATA = Metadata(
    title="The Test Book",
    authors=("Ada Lovelace", "Charles Babbage"),
    language="en-GB",
    publisher="Analytical Press",
    date="1843-10-01",
    description="Notes on the engine; with = and # and \\ inside.\nSecond line.",
)


def half_up(ms: int, rate: int) -> int:
    """Samples of a pause: milliseconds times rate, rounded half up (as the assembler documents)."""
    return (ms * rate + 500) // 1000


def tone(seconds: float, freq: float, rate: int = RATE, amp: float = 0.3) -> bytes:
    n = round(seconds * rate)
    t = np.arange(n) / rate
    return (np.sin(2 * np.pi * freq * t) * amp * 32767).astype("<i2").tobytes()


@dataclass
class Book:
    """A plan plus the WAV bytes of its chunks, and a read_chunk that counts its calls."""

    plan: Plan
    wavs: dict[str, bytes]
    reads: list[str] = field(default_factory=list)

    def read_chunk(self, chunk_id: str) -> bytes:
        self.reads.append(chunk_id)
        return self.wavs[chunk_id]

    def size(self, chunk_id: str) -> int:
        return len(self.wavs[chunk_id])

    def samples(self, chunk_id: str) -> int:
        return (len(self.wavs[chunk_id]) - 44) // 2

    def expected_chapter_starts(self) -> list[float]:
        """Chapter starts in seconds, summed by hand from the chunks (empty chapters skipped)."""
        chunks = self.plan.chunk_map()
        pos, starts = 0, []
        for ch in self.plan.chapters:
            if not ch.chunk_ids:
                continue
            starts.append(pos / self.plan.sample_rate)
            for cid in ch.chunk_ids:
                pos += self.samples(cid) + half_up(chunks[cid].pause_after_ms, self.plan.sample_rate)
        return starts

    def total_seconds(self) -> float:
        chunks = self.plan.chunk_map()
        rate = self.plan.sample_rate
        return (
            sum(self.samples(c.id) + half_up(chunks[c.id].pause_after_ms, rate) for c in self.plan.chunks)
            / rate
        )

    def expected_pcm(self) -> bytes:
        out = bytearray()
        chunks = self.plan.chunk_map()
        for ch in self.plan.chapters:
            for cid in ch.chunk_ids:
                out += self.wavs[cid][44:]
                out += bytes(2 * half_up(chunks[cid].pause_after_ms, self.plan.sample_rate))
        return bytes(out)


def make_book(
    chapters: Sequence[tuple[str, Sequence[float]]],
    rate: int = RATE,
    metadata: Metadata = METADATA,
    pauses: tuple[int, int] = (250, 700),
) -> Book:
    """``chapters``: (title, [seconds of each body chunk]); a chapter with no durations is empty.

    Each non-empty chapter starts with a 0.8 s title chunk whose display text is the title.
    """
    planned, chunks, wavs = [], [], {}
    freq = 220.0
    for ci, (title, durations) in enumerate(chapters):
        ids = []
        if durations:
            texts = [(title, 0.8)] + [(f"Sentence {k + 1} of {title}.", d) for k, d in enumerate(durations)]
            for k, (text, secs) in enumerate(texts):
                cid = hashlib.sha1(f"{ci}/{k}/{text}".encode()).hexdigest()[:16]
                last = k == len(texts) - 1
                pause = pauses[1] if (k == 0 or last) else pauses[0]
                chunks.append(Chunk(cid, ci, k, text.lower(), text, pause))
                wavs[cid] = wav_bytes(tone(secs, freq, rate), rate)
                freq += 37.0
                ids.append(cid)
        planned.append(PlannedChapter(ci, title, tuple(ids)))
    plan = Plan(
        session="test",
        voice=VoiceSpec(engine="fake", voice="fake", language="en"),
        sample_rate=rate,
        chapters=tuple(planned),
        chunks=tuple(chunks),
        batches=(),
        metadata=metadata,
    )
    return Book(plan, wavs)
