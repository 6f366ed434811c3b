"""Mastering one chunk: loudness levelling (ITU-R BS.1770-4) and a true-peak ceiling. Pure numpy.

Every chunk (a sentence) is measured and brought to the same loudness target, then kept under the
true-peak ceiling: first by its single gain, then, only where a peak still exceeds the ceiling, by a
look-ahead limiter whose gain is smooth (no hard clipping). Pauses are digital silence added at
assembly, so nothing is raised between sentences (no pumping).

Why the book then meets the integrated target without a second pass: BS.1770 integrates the mean
square of 400 ms blocks that pass two gates: an absolute one at -70 LUFS (digital silence never
passes) and a relative one 10 LU under the ungated mean of the blocks that passed the first. A
book made of chunks all at loudness L, separated by silence, has blocks at about L wherever
speech is, so its integrated loudness is about L too (blocks straddling a pause edge weigh a
little less; measured within 1 LU, see docs/mastering.md).

K-weighting: the two biquads of BS.1770-4 (shelf + RLB high-pass), with coefficients for any sample
rate derived from the analog prototype as libebur128 does; applied in the frequency domain (the
exact frequency response of the IIR filter, with a zero tail so the circular wrap is negligible).
True peak: 4x oversampling by band-limited (FFT) interpolation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..model import Mastering

__all__ = [
    "LIMITER_HEADROOM_DB",
    "ChunkLevel",
    "block_loudness",
    "integrated_loudness",
    "k_weighting",
    "master_chunk",
    "master_pcm",
    "measure",
    "true_peak_db",
]

# The limiter aims this far under the ceiling: lossy encoders (AAC, MP3) add overshoots of a few
# tenths of a dB to the peaks they are given, and the output is read back after encoding.
LIMITER_HEADROOM_DB = 1.0
MAX_GAIN_DB = 30.0  # a chunk is never raised more (a near-silent chunk stays near silent)
ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0
BLOCK_S = 0.4
STEP_S = 0.1
OVERSAMPLE = 4
TAPS = 12  # input samples per output value of the interpolator (as BS.1770-4 Annex 2: 48 taps)
ATTACK_S = 0.005  # the limiter's look-ahead (and its ramp down and up)
HOLD_S = 0.020
LIMIT_PASSES = 4  # measure-and-correct rounds when the limiter took loudness away
LOUDNESS_TOLERANCE = 0.2  # LU


def k_weighting(rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) of the K-weighting filter at ``rate`` Hz (pre-filter shelf then RLB high-pass)."""
    f0, gain, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10 ** (gain / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    pb = np.array([(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0])
    pa = np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0])
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    d = 1 + k / q + k * k
    rb = np.array([1.0, -2.0, 1.0])
    ra = np.array([1.0, 2 * (k * k - 1) / d, (1 - k / q + k * k) / d])
    return np.convolve(pb, rb), np.convolve(pa, ra)


def _fast_len(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: a length the FFT handles fast, never twice n."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _k_filter(x: np.ndarray, rate: int) -> np.ndarray:
    b, a = k_weighting(rate)
    n = len(x) + max(64, rate // 4)  # the IIR's tail (< 250 ms to far below -100 dB) fits in the padding
    nfft = _fast_len(n)
    z = np.exp(-2j * math.pi * np.arange(nfft // 2 + 1) / nfft)
    h = np.polyval(b[::-1], z) / np.polyval(a[::-1], z)  # the filter's exact response at the bins
    return np.fft.irfft(np.fft.rfft(x, nfft) * h, nfft)[: len(x)]


def block_loudness(x: np.ndarray, rate: int) -> np.ndarray:
    """Loudness (LUFS) of each 400 ms block, 75 % overlap; one block over the whole of a shorter signal."""
    if len(x) == 0:
        return np.zeros(0)
    return _blocks(_k_filter(np.asarray(x, dtype=np.float64), rate), rate)


def _blocks(y: np.ndarray, rate: int) -> np.ndarray:
    """``block_loudness`` of an already K-weighted signal."""
    block = round(BLOCK_S * rate)
    step = round(STEP_S * rate)
    sq = np.concatenate(([0.0], np.cumsum(y * y)))
    if len(y) < block:
        ms = np.array([sq[-1] / len(y)])
    else:
        starts = np.arange(0, len(y) - block + 1, step)
        ms = (sq[starts + block] - sq[starts]) / block
    with np.errstate(divide="ignore"):
        return -0.691 + 10 * np.log10(ms)


def _gated(blocks: np.ndarray) -> float:
    loud = blocks[blocks > ABSOLUTE_GATE]
    if loud.size == 0:
        return -math.inf
    threshold = _mean_loudness(loud) + RELATIVE_GATE
    kept = loud[loud > threshold]
    return _mean_loudness(kept if kept.size else loud)


def _mean_loudness(blocks: np.ndarray) -> float:
    return float(-0.691 + 10 * np.log10(np.mean(10 ** ((blocks + 0.691) / 10))))


def integrated_loudness(x: np.ndarray, rate: int) -> float:
    """Gated integrated loudness (LUFS) of ``x`` (floats, full scale 1.0); -inf for silence."""
    return _gated(block_loudness(x, rate))


def _interpolator() -> np.ndarray:
    """The 4x interpolation filter as (phase, tap): a Kaiser-windowed sinc, TAPS input samples per phase."""
    k = np.arange(OVERSAMPLE * TAPS) - (OVERSAMPLE * TAPS) / 2
    h = np.sinc(k / OVERSAMPLE) * np.kaiser(OVERSAMPLE * TAPS, 8.0)
    phases = h.reshape(TAPS, OVERSAMPLE).T  # phases[p][j] = h[j * OVERSAMPLE + p]
    return phases / phases.sum(axis=1, keepdims=True)  # each phase passes DC at unity


def true_peak_db(x: np.ndarray) -> float:
    """True peak (dBTP) of ``x`` by 4x band-limited oversampling; -inf for silence."""
    if len(x) == 0:
        return -math.inf
    peak = float(np.max(_peak_envelope(np.asarray(x, dtype=np.float64))))
    return 20 * math.log10(peak) if peak > 0 else -math.inf


@dataclass(frozen=True)
class ChunkLevel:
    loudness: float  # LUFS, integrated over the chunk
    true_peak: float  # dBTP


def measure(x: np.ndarray, rate: int) -> ChunkLevel:
    return ChunkLevel(integrated_loudness(x, rate), true_peak_db(x))


def _peak_envelope(x: np.ndarray) -> np.ndarray:
    """Per sample, the largest magnitude of the signal from it to the next sample (4x oversampled)."""
    env = np.abs(x)
    phases = _interpolator()
    for p in range(1, OVERSAMPLE):
        np.maximum(env, np.abs(np.convolve(x, phases[p])[TAPS // 2 : TAPS // 2 + len(x)]), out=env)
    return env


def _held_peaks(env: np.ndarray, rate: int) -> np.ndarray:
    """The running maximum of ``env`` over the limiter's hold window, padded for ``_smooth_gain``."""
    w = max(1, round(ATTACK_S * rate))
    hold = 2 * w - 1 + max(0, round(HOLD_S * rate))
    padded = np.concatenate((np.zeros(hold - 1), env, np.zeros(2 * w)))
    return -_running_min(-padded, hold)  # held[i] = max(padded[i : i + hold]): a trailing max


def _smooth_gain(held: np.ndarray, level: float, ceiling: float, rate: int, n: int) -> np.ndarray:
    """A smooth gain that keeps ``level * gain * env`` under ``ceiling`` at every sample (``held``:
    ``_held_peaks(env)``).

    The gain each sample needs, held as a running minimum over ``HOLD_S`` (the need falls as the
    peak rises: the minimum of the need is the need of the held maximum), is smoothed twice by a
    box of ``ATTACK_S``: every smoothed value averages minima that each include the sample's own
    need, so the result never exceeds it; it ramps down before a peak (look-ahead) and back up after.
    """
    w = max(1, round(ATTACK_S * rate))
    need = np.minimum(1.0, ceiling / np.maximum(level * held, 1e-12))
    return np.minimum(_box(_box(need, w), w)[:n], 1.0)


def _box(a: np.ndarray, w: int) -> np.ndarray:
    """Means of ``a`` over every full window of ``w`` (O(n))."""
    c = np.concatenate(([0.0], np.cumsum(a)))
    return (c[w:] - c[:-w]) / w


def _running_min(a: np.ndarray, w: int) -> np.ndarray:
    """``min(a[i : i + w])`` for every full window, in O(n) (van Herk / Gil-Werman)."""
    n = len(a)
    m = -(-n // w)
    padded = np.concatenate((a, np.full(m * w - n, np.inf))).reshape(m, w)
    prefix = np.minimum.accumulate(padded, axis=1).ravel()
    suffix = np.minimum.accumulate(padded[:, ::-1], axis=1)[:, ::-1].ravel()
    i = np.arange(n - w + 1)
    return np.minimum(suffix[i], prefix[i + w - 1])


def master_pcm(x: np.ndarray, rate: int, settings: Mastering) -> np.ndarray:
    """``x`` (floats, full scale 1.0) at ``settings.loudness`` with true peaks under the ceiling
    (less LIMITER_HEADROOM_DB). Silence (nothing above the absolute gate) is returned unchanged.

    Limiting takes some loudness away with the peaks: the gain is corrected by secant steps (up to
    LIMIT_PASSES) so a limited sentence is as loud as the others. The K-weighting and the
    oversampling are computed once: the limiter's gain varies slowly, so the limited signal's
    weighted form and peaks are those of ``x`` times that gain (the last peaks are measured exactly).
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return x
    weighted = _k_filter(x, rate)
    loud = _gated(_blocks(weighted, rate))
    if not math.isfinite(loud):
        return x
    gain_db = min(settings.loudness - loud, MAX_GAIN_DB)
    ceiling = 10 ** ((settings.true_peak - LIMITER_HEADROOM_DB) / 20)
    env = _peak_envelope(x)
    if 10 ** (gain_db / 20) * float(env.max()) <= ceiling:
        return x * 10 ** (gain_db / 20)
    held = _held_peaks(env, rate)
    last: tuple[float, float] | None = None
    for _ in range(LIMIT_PASSES):
        level = 10 ** (gain_db / 20)
        gain = level * _smooth_gain(held, level, ceiling, rate, len(x))
        got = _gated(_blocks(weighted * gain, rate))
        short = settings.loudness - got
        if abs(short) < LOUDNESS_TOLERANCE or (short > 0 and gain_db >= MAX_GAIN_DB):
            break
        # Secant steps on (gain -> loudness after limiting): each dB of gain adds less than a dB.
        slope = 1.0 if last is None or got == last[1] else (gain_db - last[0]) / (got - last[1])
        last = (gain_db, got)
        gain_db = min(gain_db + short * min(max(slope, 1.0), 4.0), MAX_GAIN_DB)
    y = x * gain
    peak = 10 ** (true_peak_db(y) / 20)
    if peak > ceiling:  # the gain's own slow modulation moved a peak: a final static trim
        y = y * (ceiling / peak)
    return y


def master_chunk(pcm: bytes, rate: int, settings: Mastering | None) -> bytes:
    """16-bit mono PCM mastered (``master_pcm``); returned as it is when ``settings`` is None."""
    if settings is None or len(pcm) < 2:
        return pcm
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64) / 32768.0
    y = master_pcm(x, rate, settings)
    return np.clip(np.rint(y * 32768.0), -32768, 32767).astype("<i2").tobytes()
