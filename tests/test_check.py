"""``check.problems`` (pure) and the parsing of ffmpeg's analysis."""

from __future__ import annotations

import math

from ebook2audio.audio.ffmpeg import AudioStats, parse_analysis
from ebook2audio.check import CheckLimits, problems

GOOD = AudioStats(integrated=-19.2, lra=4.0, true_peak=-3.4, sample_peak=-3.5, noise_floor=-math.inf, silences=())
CHAPTERS = (("One", 0.0, 30.0), ("Two", 30.0, 60.0))


def test_a_good_book_has_no_problem() -> None:
    assert problems(GOOD, 60.0, CHAPTERS, CheckLimits(), needs_chapters=True) == []


def test_chapter_marks_missing_out_of_order_or_outside() -> None:
    limits = CheckLimits()
    assert problems(GOOD, 60.0, (), limits, needs_chapters=True) == ["chapters: no chapter marks"]
    assert problems(GOOD, 60.0, (), limits, needs_chapters=False) == []
    swapped = (("One", 30.0, 60.0), ("Two", 0.0, 30.0))
    assert problems(GOOD, 60.0, swapped, limits, True) == [
        "chapters: chapter 2 (Two) starts at 0:00:00, before the chapter ahead of it"
    ]
    past = (("One", 0.0, 30.0), ("Two", 30.0, 95.0))
    assert problems(GOOD, 60.0, past, limits, True) == [
        "chapters: chapter 2 (Two) (0:00:30-0:01:35) is outside the audio (0:00:00-0:01:00)"
    ]


def test_each_measure_against_its_limit() -> None:
    bad = AudioStats(integrated=-23.5, lra=18.0, true_peak=-0.5, sample_peak=0.0, noise_floor=-42.0,
                     silences=((12.0, 7.5),))  # fmt: skip
    assert problems(bad, 60.0, CHAPTERS, CheckLimits(), True) == [
        "loudness: -23.5 LUFS integrated, outside -19.0 ± 1.0",
        "loudness range: 18.0 LU, over 15.0",
        "true peak: -0.5 dBTP, over the ceiling -3.0",
        "clipping: samples at full scale (sample peak 0.0 dBFS)",
        "noise floor: -42.0 dBFS in the pauses, over -60.0",
        "silence: 7.5 s at 0:00:12, longer than 5 s",
    ]
    loose = CheckLimits(loudness=-23.0, tolerance=1.0, true_peak=0.0, noise_floor=-40.0, max_silence=10, max_lra=20)
    assert problems(bad, 60.0, CHAPTERS, loose, True) == ["clipping: samples at full scale (sample peak 0.0 dBFS)"]


STDERR = """[Parsed_silencedetect_2 @ 0x1] silence_start: 3
[Parsed_ebur128_0 @ 0x2] Summary:

  Integrated loudness:
    I:         -32.4 LUFS
    Threshold: -42.5 LUFS

  Loudness range:
    LRA:         4.2 LU
    Threshold: -53.9 LUFS

  Sample peak:
    Peak:      -28.5 dBFS

  True peak:
    Peak:      -28.4 dBFS
[Parsed_silencedetect_2 @ 0x1] silence_end: 9.5 | silence_duration: 6.5
[Parsed_silencedetect_2 @ 0x1] silence_start: 20
[Parsed_astats_1 @ 0x3] Overall
[Parsed_astats_1 @ 0x3] Noise floor dB: -inf
"""


def test_parse_analysis() -> None:
    stats = parse_analysis(STDERR, duration=26.0)
    assert (stats.integrated, stats.lra, stats.sample_peak, stats.true_peak) == (-32.4, 4.2, -28.5, -28.4)
    assert stats.noise_floor == -math.inf
    assert stats.silences == ((3.0, 6.5), (20.0, 6.0))  # the last one runs to the end
