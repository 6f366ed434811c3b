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
rate derived from the analog prototype as libebur128 does; applied by FFT (overlap-add in blocks of
a fixed size, with the filter's exact frequency response; its impulse response after 100 ms, below
-140 dB, is neglected).
True peak: 4x oversampling by a Kaiser-windowed sinc interpolator (12 taps per phase), computed
only where it can matter. Each interpolated value is a sum of 12 samples times the phase's taps, so
it is never larger than ``PEAK_BOUND`` (the largest sum of a phase's absolute taps, 1.75, +4.9 dB)
times the largest of those samples: a chunk whose sample peak is that far under the ceiling needs no
oversampling at all, and elsewhere only the samples near a sample over ``ceiling / PEAK_BOUND`` are
interpolated (about 2 % of a Piper sentence). The limiter likewise works only around the peaks it
turns down: everywhere else its gain is exactly 1.
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
    "peak_bound",
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
# The first correction's dB of gain per dB of loudness missing: limiting takes part of any added gain
# away again (measured on Piper's sentences: 1.2 to 1.8), so a step of 1 would always need a third pass.
FIRST_SLOPE = 1.5
LOUDNESS_TOLERANCE = 0.2  # LU
REACH_DB = 4.0
IR_S = 0.1  # the K-weighting's impulse response taken into account (the rest is under -140 dB)  # the peaks are interpolated for gains up to this far above the first


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
    """``x`` K-weighted: FFT convolution by overlap-add over blocks of a fixed power-of-two size,
    all blocks transformed in one call, with the filter's exact frequency response at the bins.

    Each block's output runs ``IR_S`` into the next block (added there); what the impulse response
    holds after that wraps around onto the block's start, but the filter's slowest poles (the 38 Hz
    high-pass, a double pole) have decayed to about -140 dB by then, at any rate. The block size
    (about 6 such tails, the cheapest measured) is fixed, so the response is computed on few bins.
    """
    n = len(x)
    tail = max(64, round(IR_S * rate))
    nfft = min(1 << (6 * tail - 1).bit_length(), _fast_len(n + tail - 1))
    step = nfft - tail + 1  # input samples per block
    count = -(-n // step)
    blocks = np.zeros((count, nfft))
    blocks[:, :step] = np.concatenate((x, np.zeros(count * step - n))).reshape(count, step)
    b, a = k_weighting(rate)
    z = np.exp(-2j * math.pi * np.arange(nfft // 2 + 1) / nfft)
    response = np.polyval(b[::-1], z) / np.polyval(a[::-1], z)
    out = np.fft.irfft(np.fft.rfft(blocks, axis=1) * response, nfft, axis=1)
    if count == 1:  # one block holds the whole filtered signal (and a short one's step is under the tail)
        return out[0, :n]
    y = out[:, :step].copy()
    y[1:, : tail - 1] += out[:-1, step:]
    return y.ravel()[:n]


def block_loudness(x: np.ndarray, rate: int) -> np.ndarray:
    """Loudness (LUFS) of each 400 ms block, 75 % overlap; one block over the whole of a shorter signal."""
    if len(x) == 0:
        return np.zeros(0)
    return _blocks(_k_filter(np.asarray(x, dtype=np.float64), rate), rate)


def _block_bounds(n: int, rate: int) -> tuple[np.ndarray, int]:
    """The first sample of each block of a signal of ``n`` samples, and the blocks' length."""
    block = round(BLOCK_S * rate)
    if n < block:
        return np.zeros(1, dtype=np.int64), n
    return np.arange(0, n - block + 1, round(STEP_S * rate)), block


def _blocks(y: np.ndarray, rate: int) -> np.ndarray:
    """``block_loudness`` of an already K-weighted signal."""
    starts, block = _block_bounds(len(y), rate)
    sq = np.concatenate(([0.0], np.cumsum(y * y)))
    return _lufs((sq[starts + block] - sq[starts]) / block)


def _lufs(mean_square: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return -0.691 + 10 * np.log10(np.maximum(mean_square, 0.0))


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


_PHASES = _interpolator()  # a constant table, made once


def peak_bound() -> float:
    """How far an interpolated value can exceed the largest sample it is made of: the largest sum of
    one phase's absolute taps (1.75). A signal whose sample peak is ``P`` has a true peak (as
    ``true_peak_db`` measures it) of at most ``P * peak_bound()``; the bound is reached by a signal
    whose samples have the signs of a phase's taps."""
    return float(np.abs(_PHASES).sum(axis=1).max())


def _around(points: np.ndarray, before: int, after: int, end: int) -> np.ndarray:
    """The sorted positions within ``before`` ahead of or ``after`` behind any of the sorted
    ``points``, inside ``[0, end)``."""
    breaks = np.flatnonzero(np.diff(points) > before + after) + 1
    starts = np.maximum(points[np.concatenate(([0], breaks))] - before, 0)
    ends = np.minimum(points[np.concatenate((breaks - 1, [points.size - 1]))] + after + 1, end)
    lengths = ends - starts
    first = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    return np.arange(int(lengths.sum())) - np.repeat(first - starts, lengths)


def _envelope_over(x: np.ndarray, threshold: float, phases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions, values) of the 4x peak envelope (per sample, the largest magnitude of the signal
    from it to the next sample) at every position where it may exceed ``threshold``; everywhere else
    it is provably at most ``threshold`` (``phases``: ``_interpolator()``). The positions are sorted."""
    bound = float(np.abs(phases).sum(axis=1).max())
    loud = np.flatnonzero(np.abs(x) > threshold / bound)
    if loud.size == 0:
        return loud, np.zeros(0)
    # The value between samples i and i+1 at phase p is sum_j phases[p][j] * x[i + RIGHT - j]
    # (j < TAPS): it is computed at every i whose window holds a loud sample, by convolving the
    # stretches of samples those windows cover, joined end to end (no window crosses a join).
    right = TAPS // 2
    idx = _around(loud, right, TAPS - 1 - right, len(x))
    covered = _around(loud, TAPS - 1, TAPS - 1, len(x))
    xs = x[covered]
    at = np.searchsorted(covered, idx)
    env = np.abs(xs[at])
    for p in range(1, OVERSAMPLE):
        between = np.convolve(xs, phases[p])[right : right + len(xs)]
        np.maximum(env, np.abs(between[at]), out=env)
    return idx, env


def true_peak_db(x: np.ndarray) -> float:
    """True peak (dBTP) of ``x`` by 4x band-limited oversampling; -inf for silence."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return -math.inf
    sample_peak = float(np.max(np.abs(x)))
    if sample_peak == 0:
        return -math.inf
    _, env = _envelope_over(x, sample_peak, _PHASES)  # only where the envelope may beat the sample peak
    return 20 * math.log10(max(sample_peak, float(env.max(initial=0.0))))


@dataclass(frozen=True)
class ChunkLevel:
    loudness: float  # LUFS, integrated over the chunk
    true_peak: float  # dBTP


def measure(x: np.ndarray, rate: int) -> ChunkLevel:
    return ChunkLevel(integrated_loudness(x, rate), true_peak_db(x))


def _limiter_gain(
    idx: np.ndarray, env: np.ndarray, level: float, ceiling: float, rate: int, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """(positions, gain) of a smooth gain that keeps ``level * gain * envelope`` under ``ceiling`` at
    every sample; the gain is 1 at every other position (``idx``, ``env``: ``_envelope_over`` for a
    threshold at most ``ceiling / level``).

    The gain each sample needs, held as a running minimum over ``HOLD_S`` (the need falls as the
    peak rises: the minimum of the need is the need of the held maximum), is smoothed twice by a
    box of ``ATTACK_S``: every smoothed value averages minima that each include the sample's own
    need, so the result never exceeds it; it ramps down before a peak (look-ahead) and back up after.
    Computed on the stretches around the samples over the ceiling only, joined end to end: each
    stretch starts a ramp (two boxes) ahead of its first peak and ends a hold and a ramp after its
    last, so every window that matters lies in its own stretch, and the values a window may read
    across a join (a stretch's unlimited tail, the next one's unlimited start) are those it would
    read there.
    """
    w = max(1, round(ATTACK_S * rate))
    hold = 2 * w - 1 + max(0, round(HOLD_S * rate))
    over = level * env > ceiling
    hot, peaks = idx[over], env[over]
    if hot.size == 0:
        return hot, np.zeros(0)
    # The stretches: from a ramp ahead of the first peak (where the gain starts to fall) to a hold and
    # a ramp after the last; peaks closer than that share one.
    pos = _around(hot, 2 * w, hold + 2 * w, n + 2 * w)
    held_env = np.zeros(len(pos))
    held_env[np.searchsorted(pos, hot)] = peaks
    # held[k] = max of the envelope over [k - hold + 1, k] (a trailing maximum), zeros before the start
    held = -_running_min(-np.concatenate((np.zeros(hold - 1), held_env)), hold)
    need = np.minimum(1.0, ceiling / np.maximum(level * held, 1e-12))
    gain = np.minimum(_box(_box(np.concatenate((need, np.ones(2 * w - 2))), w), w), 1.0)
    keep = (pos < n) & (gain < 1.0)
    return pos[keep], gain[keep]


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
    LIMIT_PASSES) so a limited sentence is as loud as the others. The K-weighting is computed once:
    the limiter's gain varies slowly, so the limited signal's weighted form is that of ``x`` times
    that gain, and since the gain is 1 but around the peaks, each pass only corrects the energy of
    the blocks it touched. The peaks are interpolated once for the highest gain the passes may
    reach (again if a pass goes higher); the result's are measured exactly.
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return x
    weighted = _k_filter(x, rate)
    starts, block = _block_bounds(len(x), rate)
    sq = np.concatenate(([0.0], np.cumsum(weighted * weighted)))
    energy = sq[starts + block] - sq[starts]  # of each block, before any gain
    loud = _gated(_lufs(energy / block))
    if not math.isfinite(loud):
        return x
    gain_db = min(settings.loudness - loud, MAX_GAIN_DB)
    ceiling = 10 ** ((settings.true_peak - LIMITER_HEADROOM_DB) / 20)
    level = 10 ** (gain_db / 20)
    phases = _PHASES
    if level * float(np.max(np.abs(x))) * float(np.abs(phases).sum(axis=1).max()) <= ceiling:
        return x * level  # provably under the ceiling: no oversampling needed
    reach = level * 10 ** (REACH_DB / 20)
    idx, env = _envelope_over(x, ceiling / reach, phases)
    if level * float(env.max(initial=0.0)) <= ceiling:
        return x * level
    last: tuple[float, float] | None = None
    for _ in range(LIMIT_PASSES):
        level = 10 ** (gain_db / 20)
        if level > reach:  # the passes raised the gain beyond what the envelope was made for
            reach = level * 10 ** (REACH_DB / 20)
            idx, env = _envelope_over(x, ceiling / reach, phases)
        pos, gain = _limiter_gain(idx, env, level, ceiling, rate, len(x))
        taken = np.concatenate(([0.0], np.cumsum(weighted[pos] ** 2 * (1 - gain * gain))))
        lost = taken[np.searchsorted(pos, starts + block)] - taken[np.searchsorted(pos, starts)]
        got = _gated(_lufs(level * level * (energy - lost) / block))
        short = settings.loudness - got
        if abs(short) < LOUDNESS_TOLERANCE or (short > 0 and gain_db >= MAX_GAIN_DB):
            break
        # Secant steps on (gain -> loudness after limiting): each dB of gain adds less than a dB.
        slope = FIRST_SLOPE if last is None or got == last[1] else (gain_db - last[0]) / (got - last[1])
        last = (gain_db, got)
        gain_db = min(gain_db + short * min(max(slope, 1.0), 4.0), MAX_GAIN_DB)
    y = x * level
    y[pos] *= gain
    _, peaks = _envelope_over(y, ceiling, phases)
    if peaks.size and float(peaks.max()) > ceiling:  # the gain's own slow modulation moved a peak
        y = y * (ceiling / float(peaks.max()))
    return y


def master_chunk(pcm: bytes, rate: int, settings: Mastering | None) -> bytes:
    """16-bit mono PCM mastered (``master_pcm``); returned as it is when ``settings`` is None."""
    if settings is None or len(pcm) < 2:
        return pcm
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
    x *= 1 / 32768.0
    y = master_pcm(x, rate, settings)
    y *= 32768.0  # in place: y is this function's own array (x itself when left as it is)
    return np.clip(np.rint(y, out=y), -32768, 32767, out=y).astype("<i2").tobytes()
