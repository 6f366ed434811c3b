"""End to end: ``convert --preset acx`` through the real CLI (espeak-ng, a corpus chapter), every file
read back with PyAV and ffmpeg and held to ACX's numbers; then ``check --preset acx`` on the package
and on a spoiled copy."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ebook2audio.audio.ffmpeg import analyze_audio, find_ffmpeg

from .helpers import run_cli

pytestmark = pytest.mark.slow

BOOK = "epub3_childrens-literature_curry-clippinger_en.epub"  # chapter 3: 279 words, about 1.5 minutes


def decode(path: Path) -> tuple[np.ndarray, int, int, list[int]]:
    """(samples as floats, sample rate, channels, every packet's size) of an MP3 file."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        sizes = [p.size for p in container.demux(stream) if p.size]
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate, channels = stream.sample_rate, stream.codec_context.channels
        audio = np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)]).astype(np.float64)
    return audio, rate, channels, sizes


def test_acx_package_meets_each_number_and_check_says_so(corpus: Path, tmp_path: Path) -> None:
    args = ["convert", str(corpus / BOOK), "--chapters", "3", "--engine", "espeak", "--preset", "acx", "-o", "out", "-q"]
    r = run_cli(args, tmp_path)
    assert r.returncode == 0, r.stderr
    (folder,) = (tmp_path / "out").iterdir()
    assert folder.name == "Charles Madison Curry, Erle Elsworth Clippinger - Children's Literature (ACX)"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["00 Opening Credits.mp3", "01 190 A FOUR-LEAVED CLOVER.mp3", "02 Closing Credits.mp3",
                     "Retail Sample.mp3"]  # fmt: skip
    decoded = {}
    for name in names:
        path = folder / name
        audio, rate, channels, sizes = decode(path)
        decoded[name] = audio
        assert (rate, channels) == (44100, 1), name
        # Constant 192 kb/s: every MPEG-1 frame is 144 * 192000 / 44100 = 626 bytes, 627 when padded.
        assert set(sizes) <= {626, 627} and len(sizes) > 10, (name, sorted(set(sizes)))
        rms = 20 * math.log10(float(np.sqrt(np.mean(audio**2))))
        assert -23.0 <= rms <= -18.0, (name, rms)
        loud = np.flatnonzero(np.abs(audio) > 10 ** (-60 / 20))
        head, tail = loud[0] / rate, (len(audio) - 1 - loud[-1]) / rate
        assert 0.5 <= head <= 1.0 and 1.0 <= tail <= 5.0, (name, head, tail)
        stats = analyze_audio(path, min_silence=60)
        assert stats.true_peak <= -3.0 and stats.noise_floor <= -60.0, (name, stats)
    chapter = decoded["01 190 A FOUR-LEAVED CLOVER.mp3"]
    assert abs(20 * math.log10(float(np.sqrt(np.mean(chapter**2)))) - -20.0) <= 1.0  # about -20 dB RMS
    sample = decoded["Retail Sample.mp3"]
    assert 60 <= len(sample) / 44100 <= 300
    start = slice(0, 10 * 44100)  # the sample starts as chapter 1 does, not with the credits
    assert np.corrcoef(sample[start], chapter[start])[0, 1] > 0.99
    assert len(decoded["00 Opening Credits.mp3"]) < 30 * 44100

    from ebook2audio.audio.ffmpeg import probe

    tags = probe(folder / "00 Opening Credits.mp3").tags
    assert (tags["title"], tags["album"], tags["track"], tags["composer"]) == (
        "Opening Credits", "Children's Literature", "1/3", "eSpeak",
    )  # fmt: skip
    assert tags["artist"] == "Charles Madison Curry, Erle Elsworth Clippinger"
    assert probe(folder / "02 Closing Credits.mp3").tags["track"] == "3/3"
    assert "track" not in probe(folder / "Retail Sample.mp3").tags

    ok = run_cli(["check", "--preset", "acx", str(folder)], tmp_path)
    assert ok.returncode == 0 and ok.stdout.strip().endswith("passed (ACX)"), ok.stdout + ok.stderr
    assert "44100 Hz mono 192 kb/s CBR" in ok.stdout
    report = json.loads(run_cli(["check", "--preset", "acx", str(folder), "--json"], tmp_path).stdout)
    assert report["passed"] and report["problems"] == [] and len(report["files"]) == 4
    assert {f["sample_rate"] for f in report["files"]} == {44100} and report["files"][0]["noise_floor"] is None
    again = run_cli(args, tmp_path)
    assert again.returncode == 0 and "already converted" in again.stdout + again.stderr

    # A spoiled copy: a chapter re-encoded louder at a variable bit rate, the retail sample gone.
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    (bad / "Retail Sample.mp3").unlink()
    spoiled = bad / "01 190 A FOUR-LEAVED CLOVER.mp3"
    subprocess.run(
        [find_ffmpeg(), "-nostdin", "-loglevel", "error", "-y", "-i", str(folder / spoiled.name),
         "-af", "volume=9dB", "-c:a", "libmp3lame", "-q:a", "2", str(spoiled)],
        check=True,
    )  # fmt: skip
    r = run_cli(["check", "--preset", "acx", str(bad)], tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert any(line.startswith(f"{spoiled.name}: variable bit rate") for line in lines), lines
    assert any(line.startswith(f"{spoiled.name}: RMS -1") for line in lines), lines
    assert any(line.startswith(f"{spoiled.name}: peak ") for line in lines), lines
    assert "package: no retail sample ('Retail Sample.mp3')" in lines
    assert lines[-1].startswith("failed (ACX)")
    missing = run_cli(["check", "--preset", "acx", str(tmp_path / "nothing")], tmp_path)
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and "Traceback" not in missing.stderr
