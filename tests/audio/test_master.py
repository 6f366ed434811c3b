"""Mastering (audio/master.py) on synthetic speech-like signals, measured back with ffmpeg's ebur128."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ebook2audio.audio import master
from ebook2audio.audio.ffmpeg import analyze_audio
from ebook2audio.audio.master import (
    LIMITER_HEADROOM_DB,
    integrated_loudness,
    master_chunk,
    master_pcm,
    true_peak_db,
)
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


def dense_envelope(x: np.ndarray) -> np.ndarray:
    """The 4x peak envelope at every sample, the plain way (reference for the sparse one)."""
    phases = master._interpolator()
    env = np.abs(x)
    for p in range(1, master.OVERSAMPLE):
        between = np.convolve(x, phases[p])[master.TAPS // 2 : master.TAPS // 2 + len(x)]
        env = np.maximum(env, np.abs(between))
    return env


def test_peak_bound_holds_and_is_reached() -> None:
    """The interpolated peak never exceeds the sample peak times peak_bound() (what lets a quiet chunk
    skip the oversampling), and a signal with the signs of a phase's taps reaches it."""
    bound = master.peak_bound()
    assert 1.7 < bound < 1.8  # +4.9 dB
    rng = np.random.default_rng(7)
    for x in (rng.uniform(-0.5, 0.5, 5000), speechlike(1.0, 0.8, seed=5), np.sign(rng.standard_normal(999)) * 0.3):
        assert 10 ** (true_peak_db(x) / 20) <= np.max(np.abs(x)) * bound * (1 + 1e-12)
    phases = master._interpolator()
    worst = int(np.argmax(np.abs(phases).sum(axis=1)))
    x = np.zeros(200)
    x[100 - master.TAPS // 2 + 1 : 100 + master.TAPS // 2 + 1] = 0.5 * np.sign(phases[worst][::-1])
    assert 10 ** (true_peak_db(x) / 20) == pytest.approx(0.5 * bound, rel=1e-9)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sparse_envelope_and_true_peak_match_dense(seed: int) -> None:
    x = speechlike(2.0, 0.9, seed=seed, crest=seed == 2)
    dense = dense_envelope(x)
    assert true_peak_db(x) == pytest.approx(20 * math.log10(dense.max()), abs=1e-9)
    threshold = 0.3
    idx, env = master._envelope_over(x, threshold, master._interpolator())
    assert np.allclose(env, dense[idx], atol=1e-12)
    outside = np.ones(len(x), dtype=bool)
    outside[idx] = False
    assert np.all(dense[outside] <= threshold) and np.any(dense[idx] > threshold)


def dense_master(x: np.ndarray, settings: Mastering) -> np.ndarray:
    """master_pcm's definition computed on every sample (the limiter's gain and the loudness of each
    pass over the whole chunk): the reference for the sparse computation."""
    weighted = master._k_filter(x, RATE)
    gain_db = min(settings.loudness - master._gated(master._blocks(weighted, RATE)), master.MAX_GAIN_DB)
    ceiling = 10 ** ((settings.true_peak - LIMITER_HEADROOM_DB) / 20)
    env = dense_envelope(x)
    if 10 ** (gain_db / 20) * env.max() <= ceiling:
        return x * 10 ** (gain_db / 20)
    w = round(master.ATTACK_S * RATE)
    hold = 2 * w - 1 + round(master.HOLD_S * RATE)
    held = -master._running_min(-np.concatenate((np.zeros(hold - 1), env, np.zeros(2 * w))), hold)
    last = None
    for _ in range(master.LIMIT_PASSES):
        level = 10 ** (gain_db / 20)
        need = np.minimum(1.0, ceiling / (level * np.maximum(held, 1e-12)))
        gain = level * np.minimum(master._box(master._box(need, w), w)[: len(x)], 1.0)
        got = master._gated(master._blocks(weighted * gain, RATE))
        short = settings.loudness - got
        if abs(short) < master.LOUDNESS_TOLERANCE:
            break
        slope = master.FIRST_SLOPE if last is None or got == last[1] else (gain_db - last[0]) / (got - last[1])
        last = (gain_db, got)
        gain_db = min(gain_db + short * min(max(slope, 1.0), 4.0), master.MAX_GAIN_DB)
    y = x * gain
    peak = dense_envelope(y).max()
    return y * (ceiling / peak) if peak > ceiling else y


@pytest.mark.parametrize(
    ("level", "crest", "target", "seconds"),
    [(0.9, True, -19.0, 3.0), (0.3, False, -14.0, 3.0), (0.9, True, -12.0, 3.0), (0.9, True, -19.0, 0.05)],
)
def test_sparse_limiter_matches_dense_reference(level: float, crest: bool, target: float, seconds: float) -> None:
    settings = Mastering(loudness=target, true_peak=-3.0)
    if seconds < 0.1:  # a chunk shorter than the K-weighting's tail and than one block: a tone and a click
        x = 0.05 * np.sin(2 * math.pi * 300 * np.arange(round(seconds * RATE)) / RATE)
        x[100:103] = [0.99, -0.99, 0.99]
    else:
        x = speechlike(seconds, level, seed=11, crest=crest)
    ours = master_pcm(x, RATE, settings)
    assert np.max(np.abs(ours - dense_master(x, settings))) < 1e-7
    ratio = ours[np.abs(x) > 0.01] / x[np.abs(x) > 0.01]
    assert np.ptp(ratio) > 0.05 * np.max(ratio)  # the limiter did turn some peaks down


def test_k_filter_matches_the_recursive_filter() -> None:
    """The FFT K-weighting equals the two biquads run sample by sample (at 22.05 and 48 kHz)."""
    for rate, seconds in ((22050, 0.3), (48000, 0.3), (22050, 0.005)):  # 0.005 s: a block shorter than the tail
        x = speechlike(seconds, 0.5, seed=4) if seconds > 0.1 else np.random.default_rng(4).uniform(-0.5, 0.5, 110)
        b, a = master.k_weighting(rate)
        y = np.zeros(len(x))
        for i in range(len(x)):
            acc = sum(b[k] * x[i - k] for k in range(5) if i >= k)
            y[i] = acc - sum(a[k] * y[i - k] for k in range(1, 5) if i >= k)
        assert np.max(np.abs(master._k_filter(x, rate) - y)) < 1e-9
