"""Mastering (audio/master.py) on synthetic speech-like signals, measured back with ffmpeg's ebur128."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ebook2audio.audio.ffmpeg import analyze_audio
from ebook2audio.audio.master import LIMITER_HEADROOM_DB, integrated_loudness, master_chunk, true_peak_db
from ebook2audio.audio.pcm import wav_bytes
from ebook2audio.model import Mastering

RATE = 22050


def speechlike(seconds: float, level: float, seed: int, crest: bool = False) -> np.ndarray:
    """Noise shaped like speech: ~4 syllables a second, a falling spectrum, gaps between words;
    ``crest``: with sharp clicks that reach full scale, as Piper's peaks do."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    band = (freqs > 150) & (freqs < 5000)
    noise = np.fft.irfft(spectrum * band / np.sqrt(np.maximum(freqs, 150) / 150), n)  # voice band, falling
    envelope = np.maximum(0.0, np.sin(2 * math.pi * 4.0 * t + rng.uniform(0, 6))) ** 2
    x = noise * envelope
    x = x / np.max(np.abs(x)) * level
    if crest:
        for pos in rng.integers(0, n - 10, size=6):
            x[pos : pos + 3] = [0.99, -0.99, 0.99]
    return x


def pcm(x: np.ndarray) -> bytes:
    return np.clip(np.rint(x * 32768), -32768, 32767).astype("<i2").tobytes()


def floats(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(wav_bytes(data, RATE))
    return path


@pytest.mark.parametrize(("level", "seconds"), [(0.05, 3.0), (0.5, 2.0), (0.9, 5.0), (0.2, 0.3)])
def test_loudness_matches_ffmpeg_ebur128(tmp_path: Path, level: float, seconds: float) -> None:
    x = speechlike(seconds, level, seed=int(level * 100))
    if seconds < 0.4:  # one block over a chunk shorter than a block: a steady tone's level, as if repeated
        x = level * np.sin(2 * math.pi * 1000 * np.arange(round(seconds * RATE)) / RATE)
    ours = integrated_loudness(floats(pcm(x)), RATE)
    if seconds < 0.4:
        x = np.tile(x, 10)
    theirs = analyze_audio(write(tmp_path / "x.wav", pcm(x)), min_silence=60).integrated
    assert abs(ours - theirs) <= 0.3, (ours, theirs)


def test_true_peak_estimate_sees_intersample_peaks() -> None:
    # A quarter-rate sine sampled at 45 degrees: every sample at 0.707 of a peak that falls between them.
    n = np.arange(4000)
    x = 0.5 * np.sin(2 * math.pi * n / 4 + math.pi / 4)
    assert np.max(np.abs(x)) == pytest.approx(0.5 * math.sqrt(0.5))
    assert 0 <= true_peak_db(x) - 20 * math.log10(0.5) <= 0.2  # found, never under (a little over)


def test_mastered_book_meets_target_and_ceiling(tmp_path: Path) -> None:
    """Sentences of very different levels (one with full-scale clicks), mastered one by one and joined
    with silent pauses: the whole is at the target within 1 LU, under the ceiling, even sentences."""
    settings = Mastering(loudness=-19.0, true_peak=-3.0)
    levels = [0.05, 0.9, 0.3, 0.08, 0.6, 0.15]
    chunks = [
        master_chunk(pcm(speechlike(2.0 + i % 3, lvl, seed=i, crest=i == 1)), RATE, settings)
        for i, lvl in enumerate(levels)
    ]
    pause = b"\x00\x00" * int(0.7 * RATE)
    book = write(tmp_path / "book.wav", b"".join(c + pause for c in chunks))
    stats = analyze_audio(book, min_silence=60)
    assert abs(stats.integrated - settings.loudness) <= 1.0, stats
    assert stats.true_peak <= settings.true_peak, stats
    per_sentence = [
        analyze_audio(write(tmp_path / f"s{i}.wav", c + pause), min_silence=60).integrated
        for i, c in enumerate(chunks)
    ]
    assert float(np.std(per_sentence)) <= 1.5, per_sentence
    assert max(abs(v - settings.loudness) for v in per_sentence) <= 1.0, per_sentence


def test_limiter_only_where_needed_and_smooth() -> None:
    """A steady sound with one click far above the ceiling: the gain dips around the click only, without a
    step (a hard clip would flatten the click's neighbours sample by sample)."""
    settings = Mastering(loudness=-19.0, true_peak=-3.0)
    x = 0.1 * np.sin(2 * math.pi * 220 * np.arange(3 * RATE) / RATE)  # needs gain but no limiting
    click = RATE  # one second in
    x[click : click + 3] = [0.99, -0.99, 0.99]
    y = floats(master_chunk(pcm(x), RATE, settings))
    assert true_peak_db(y) <= settings.true_peak - LIMITER_HEADROOM_DB + 0.05
    ratio = np.divide(y, x, out=np.full_like(y, np.nan), where=np.abs(x) > 0.02)
    far = ratio[: click - RATE // 10]
    gain = float(np.nanmedian(far))
    assert np.nanmax(np.abs(far - gain)) < 0.02 * gain  # untouched 100 ms away from the click
    near = ratio[click - RATE // 100 : click + RATE // 100]
    assert np.nanmin(near) < 0.5 * gain  # the click itself was turned down
    around = ratio[click - 400 : click + 400]
    steps = np.abs(np.diff(around[np.isfinite(around)]))  # the gain from one sample to the next
    assert np.max(steps) < 0.1 * gain


def test_silence_and_none_pass_through() -> None:
    silent = b"\x00\x00" * RATE
    assert master_chunk(silent, RATE, Mastering()) == silent
    voice = pcm(speechlike(1.0, 0.9, seed=3))
    assert master_chunk(voice, RATE, None) == voice
    hum = pcm(np.full(RATE, 1e-5))  # under the -70 LUFS gate: left as it is, not raised 30 dB+
    assert master_chunk(hum, RATE, Mastering()) == hum
