"""``ebook2audio check AUDIOBOOK``: is the file's audio within the mastering targets?

One pass of ffmpeg (``audio.ffmpeg.analyze_audio``: ebur128, astats, silencedetect) and the probe
(duration, chapters); ``problems`` turns the measurements into one line per problem. Pure but for
``check_audiobook``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .audio.ffmpeg import FORMATS, AudioStats, ProbeResult, analyze_audio, probe
from .errors import Ebook2AudioError, UserError

CLIP_DBFS = -0.01  # a sample peak at full scale: the signal was clipped (or is about to be)
CHAPTER_SLACK_S = 0.5  # a chapter may end this far past the probed duration (container rounding)


@dataclass(frozen=True)
class CheckLimits:
    loudness: float = -19.0  # LUFS, the integrated target
    tolerance: float = 1.0  # LU either side of it
    true_peak: float = -3.0  # dBTP ceiling
    noise_floor: float = -60.0  # dBFS: the quietest moments (the pauses) must be quieter
    max_silence: float = 5.0  # seconds
    max_lra: float = 15.0  # LU


@dataclass(frozen=True)
class CheckReport:
    path: Path
    limits: CheckLimits
    stats: AudioStats
    duration: float
    chapters: tuple[tuple[str, float, float], ...]
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        def num(v: float) -> float | None:
            return v if math.isfinite(v) else None  # -inf (digital silence) is not JSON

        s = self.stats
        return {
            "file": str(self.path),
            "passed": self.passed,
            "duration": round(self.duration, 3),
            "integrated_lufs": num(s.integrated),
            "lra_lu": num(s.lra),
            "true_peak_dbtp": num(s.true_peak),
            "sample_peak_dbfs": num(s.sample_peak),
            "noise_floor_dbfs": num(s.noise_floor),
            "silences": [{"start": round(a, 3), "duration": round(d, 3)} for a, d in s.silences],
            "chapters": [{"title": t, "start": a, "end": b} for t, a, b in self.chapters],
            "limits": asdict(self.limits),
            "problems": list(self.problems),
        }


def _hms(seconds: float) -> str:
    t = round(seconds)
    return f"{t // 3600}:{t % 3600 // 60:02d}:{t % 60:02d}"


def problems(
    stats: AudioStats,
    duration: float,
    chapters: tuple[tuple[str, float, float], ...],
    limits: CheckLimits,
    needs_chapters: bool,
) -> list[str]:
    """One line per way the measurements miss ``limits``. Pure."""
    out: list[str] = []
    lo, hi = limits.loudness - limits.tolerance, limits.loudness + limits.tolerance
    if not (lo <= stats.integrated <= hi):
        out.append(
            f"loudness: {stats.integrated:.1f} LUFS integrated, outside {limits.loudness:.1f} ± {limits.tolerance:.1f}"
        )
    if stats.lra > limits.max_lra:
        out.append(f"loudness range: {stats.lra:.1f} LU, over {limits.max_lra:.1f}")
    if stats.true_peak > limits.true_peak:
        out.append(f"true peak: {stats.true_peak:.1f} dBTP, over the ceiling {limits.true_peak:.1f}")
    if stats.sample_peak >= CLIP_DBFS:
        out.append(f"clipping: samples at full scale (sample peak {stats.sample_peak:.1f} dBFS)")
    if stats.noise_floor > limits.noise_floor:
        out.append(f"noise floor: {stats.noise_floor:.1f} dBFS in the pauses, over {limits.noise_floor:.1f}")
    for start, length in stats.silences:
        if length > limits.max_silence:
            out.append(f"silence: {length:.1f} s at {_hms(start)}, longer than {limits.max_silence:g} s")
    if needs_chapters and not chapters:
        out.append("chapters: no chapter marks")
    previous = -math.inf
    for i, (title, start, end) in enumerate(chapters, 1):
        name = f"chapter {i} ({title})" if title else f"chapter {i}"
        if start < previous:
            out.append(f"chapters: {name} starts at {_hms(start)}, before the chapter ahead of it")
        if end < start:
            out.append(f"chapters: {name} ends before it starts")
        if start < 0 or end > duration + CHAPTER_SLACK_S:
            out.append(f"chapters: {name} ({_hms(start)}-{_hms(end)}) is outside the audio (0:00:00-{_hms(duration)})")
        previous = start
    return out


def check_audiobook(path: Path, limits: CheckLimits) -> CheckReport:
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path} is a directory, not an audio file")
    try:
        info: ProbeResult = probe(path)
        stats = analyze_audio(path, silence_db=limits.noise_floor, min_silence=limits.max_silence)
    except Ebook2AudioError as exc:
        raise UserError(str(exc)) from exc  # "cannot read NAME: why", one line
    chapters = tuple((c.title, round(c.start, 3), round(c.end, 3)) for c in info.chapters)
    fmt = FORMATS.get(path.suffix.lower().lstrip("."))
    needs_chapters = fmt is not None and fmt.chapters
    found = problems(stats, info.duration, chapters, limits, needs_chapters)
    return CheckReport(path, limits, stats, info.duration, chapters, tuple(found))
