"""--preset acx, the pure parts: credits, settings, the package's files, the MP3 frame reader and the
checks' lines (the real package, read back with ffmpeg, is in tests/e2e/test_acx.py)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ebook2audio.acx import ACX, ACX_LOUDNESS, apply_preset, credits, narrator, package_files, with_credits
from ebook2audio.acx_check import FileCheck, file_problems, mp3_bitrates, package_problems
from ebook2audio.config import Settings
from ebook2audio.errors import ConfigError
from ebook2audio.model import Book, Chapter, EngineInfo, Metadata, PlannedChapter, VoiceSpec
from ebook2audio.plan import PlanOptions, make_plan

JOE = EngineInfo("piper", "en_US-joe-medium", "en-US", 22050, 500)


def test_credits_name_title_authors_narrator_and_say_the_end() -> None:
    md = Metadata(title="The Keeper", authors=("Ann Lee", "Bo Ray", "Cy Dunn"), publisher="Gull Press", date="2024-03-01")
    opening, closing = credits(md, narrator(JOE))
    assert opening == ("The Keeper, written by Ann Lee, Bo Ray and Cy Dunn.", "Read by Joe, a synthetic voice.")
    assert closing == (
        "You have been listening to The Keeper, written by Ann Lee, Bo Ray and Cy Dunn, read by Joe.",
        "Copyright 2024, Gull Press.",
        "The end.",
    )
    bare_open, bare_close = credits(Metadata(), "eSpeak")
    assert bare_open[0] == "Untitled." and bare_close[-1] == "The end." and len(bare_close) == 2  # no rights line
    assert narrator(EngineInfo("espeak", "en-us", "en", 22050, 500)) == "eSpeak"


def test_preset_fixes_format_bitrate_loudness_and_leaves_the_rest() -> None:
    s = apply_preset(Settings(preset="acx", format="m4b", bitrate="64k", subtitles=True, split_hours=2, workers=3))
    assert (s.format, s.bitrate, s.subtitles, s.split_hours) == ("mp3", "192k", False, 0.0)
    assert (s.master, s.loudness, s.true_peak, s.workers) == (True, ACX_LOUDNESS, -3.0, 3)
    assert apply_preset(Settings(preset="acx", bitrate="256k")).bitrate == "256k"  # more is allowed
    assert apply_preset(Settings(bitrate="64k")).bitrate == "64k"  # no preset: untouched
    with pytest.raises(ConfigError, match="unknown preset"):
        Settings(preset="audible").validated()


def test_package_files_credits_chapters_and_a_sample_from_chapter_one() -> None:
    words = "The lamp was lit at dusk and the keeper climbed the stairs to look at the sea."
    book = Book(
        Metadata(title="T", authors=("A",), language="en"),
        (Chapter("Night", (words,) * 3), Chapter("", (words,) * 300), Chapter("Morning", (words,))),
    )
    book = with_credits(book, JOE)
    plan = make_plan(book, JOE, VoiceSpec(), "s", PlanOptions())
    files = package_files(plan)
    names = [f.name for f in files]
    assert names == [
        "00 Opening Credits.mp3", "01 Night.mp3", "02 Chapter 2.mp3", "03 Morning.mp3",
        "04 Closing Credits.mp3", "Retail Sample.mp3",
    ]  # fmt: skip
    assert [f.track for f in files] == [1, 2, 3, 4, 5, None]
    sample = files[-1].chunks
    chapter1 = [c.id for c in files[1].chunks]
    assert [c.id for c in sample[: len(chapter1)]] == chapter1  # starts at chapter 1, no credits
    assert not {c.id for c in sample} & {c.id for c in files[0].chunks}
    assert len(sample) < len(chapter1) + len(files[2].chunks)  # cut: at most about 5 minutes of candidates
    assert all(c.chapter in (1, 2) for c in sample)
    empty = replace(plan, chapters=tuple(replace(pc, chunk_ids=()) if pc.index == 2 else pc for pc in plan.chapters))
    assert [f.name for f in package_files(empty)][2] == "02 Morning.mp3"  # an empty chapter is skipped
    with pytest.raises(Exception, match="at least one chapter"):
        package_files(replace(plan, chapters=(PlannedChapter(0, "", plan.chapters[0].chunk_ids),)))


def frame(kbps_index: int, padding: int = 0) -> bytes:
    """One MPEG-1 Layer III frame at 44.1 kHz (header, then zeros)."""
    kbps = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)[kbps_index]
    header = bytes((0xFF, 0xFB, kbps_index << 4 | padding << 1, 0xC4))
    return header + bytes(144 * kbps * 1000 // 44100 + padding - 4)


def test_mp3_frames_tell_constant_from_variable_bit_rate() -> None:
    id3 = b"ID3\x03\x00\x00\x00\x00\x00\x0a" + bytes(10)  # a 10-byte ID3v2 tag
    cbr = id3 + b"".join(frame(11, padding=i % 2) for i in range(20)) + b"TAG" + bytes(125)
    assert mp3_bitrates(cbr) == [192] * 20
    vbr = b"".join(frame(i) for i in (9, 11, 14, 5))
    assert mp3_bitrates(vbr) == [128, 192, 320, 64]
    mpeg2 = bytes((0xFF, 0xF3, 0x90, 0xC4)) + bytes(200)  # MPEG-2 (22.05 kHz): not what ACX takes
    assert mp3_bitrates(mpeg2) == []


GOOD = FileCheck(
    name="01 Night.mp3", codec="mp3", sample_rate=44100, channels=1, kbps=(192,), duration=600.0,
    rms=-20.0, true_peak=-3.6, sample_peak=-3.9, noise_floor=-math.inf, head=0.75, tail=1.5,
)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"codec": "aac", "kbps": ()}, "format aac, ACX takes MP3"),
        ({"kbps": (128, 192, 256)}, "variable bit rate (128-256 kb/s), ACX takes a constant bit rate"),
        ({"kbps": (128,)}, "128 kb/s, under ACX's 192 kb/s"),
        ({"sample_rate": 22050}, "sample rate 22050 Hz, ACX takes 44100 Hz"),
        ({"rms": -24.2}, "RMS -24.2 dB, outside -23 to -18 dB"),
        ({"rms": -16.0}, "RMS -16.0 dB, outside -23 to -18 dB"),
        ({"true_peak": -1.0}, "peak -1.0 dBTP, over -3 dB"),
        ({"noise_floor": -52.0}, "noise floor -52.0 dB, over -60 dB"),
        ({"head": 0.1}, "0.10 s of room tone at the head, ACX asks 0.5 to 1 s"),
        ({"tail": 6.0}, "6.00 s of room tone at the tail, ACX asks 1 to 5 s"),
        ({"duration": 130 * 60.0}, "130 minutes long, over ACX's 120 minutes per file"),
    ],
)
def test_each_acx_number_has_its_line(change: dict, expected: str) -> None:
    assert file_problems(GOOD) == []
    assert file_problems(replace(GOOD, **change)) == [f"01 Night.mp3: {expected}"]


def test_package_lines() -> None:
    files = [
        replace(GOOD, name="00 Opening Credits.mp3"),
        GOOD,
        replace(GOOD, name="02 Closing Credits.mp3"),
        replace(GOOD, name="Retail Sample.mp3", duration=120.0),
    ]
    assert package_problems(files) == []
    assert package_problems(files[1:]) == ["package: no opening credits file ('... Opening Credits.mp3')"]
    short = [*files[:3], replace(files[3], duration=30.0)]
    assert package_problems(short) == ["package: the retail sample lasts 30 s, ACX asks 60 to 300 s"]
    mixed = [*files[:3], replace(files[3], channels=2)]
    assert package_problems(mixed) == ["package: mono and stereo files mixed (ACX: all mono or all stereo)"]
    assert package_problems(files[:3]) == ["package: no retail sample ('Retail Sample.mp3')"]


def test_spec_numbers_are_inside_acx_limits() -> None:
    assert ACX.head_min <= ACX.head_s <= ACX.head_max and ACX.tail_min <= ACX.tail_s <= ACX.tail_max
    assert ACX.sample_s <= ACX.sample_max_s and Path(f"{ACX.bitrate}").name == "192k"


def test_lift_raises_a_short_file_to_the_rms_under_the_ceiling() -> None:
    """Credits: two sentences and a pause, with 2.25 s of room tone around them, measure under -22 dB
    RMS as mastered; lifted, well inside ACX's range with the true peak still 1 dB under the ceiling.
    (This noise with a syllable envelope saturates the limiter near -20.7 dB; espeak-ng's credits
    reach -20.5 dB, tests/distributed/test_acx.py.)"""
    from ebook2audio.acx import ACX_RMS, lift
    from ebook2audio.audio.master import master_pcm, true_peak_db
    from ebook2audio.model import Mastering

    from .audio.test_master import RATE, pcm, speechlike

    sentence = master_pcm(speechlike(2.0, 0.9, seed=1), RATE, Mastering(-19.5, -3.0))
    body = np.concatenate((sentence, np.zeros(RATE // 3), sentence))
    room = round(2.25 * RATE)

    def rms(x: np.ndarray) -> float:
        return 10 * math.log10(float(np.dot(x, x)) / (len(x) + room))

    assert rms(body) < ACX_RMS - 1.5
    lifted = np.frombuffer(lift(pcm(body), RATE, room, -3.0), dtype="<i2") / 32768
    assert rms(lifted) >= rms(body) + 1.5 and -21.0 <= rms(lifted) <= ACX_RMS, (rms(body), rms(lifted))
    assert true_peak_db(lifted) <= -3.0 - 1.0 + 0.05
    level = body * 10 ** ((ACX_RMS - 10 * math.log10(float(np.dot(body, body)) / len(body))) / 20)
    assert lift(pcm(level), RATE, 0, -3.0) == pcm(level)  # already at -20 dB RMS: left as it is
