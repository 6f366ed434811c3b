"""End to end: mastering on by default, ``ebook2audio check``, and the pronunciation lexicon, through the
real CLI (espeak-ng for speed, Piper once), read back with ffmpeg's ebur128."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ebook2audio.audio.ffmpeg import analyze_audio
from ebook2audio.audio.master import integrated_loudness

from .helpers import read_srt, run_cli

pytestmark = pytest.mark.slow

BOOK = """Title: The Short Watch
Author: The ebook2audio authors
Language: English


CHAPTER I. Night

The lamp was lit at dusk. Elias climbed the stairs and looked out at the sea!
Was there a ship out there? He could not tell. The wind rose, and the rain came on hard.


CHAPTER II. Morning

At dawn the sea was calm again. Hermione brought bread, tea and the morning's letters.
"Nothing to report," said Elias, and he went to sleep.
"""


def book(tmp: Path) -> Path:
    path = tmp / "watch.txt"
    path.write_text(BOOK, encoding="utf-8")
    return path


def sentence_loudness(m4b: Path) -> list[float]:
    """Each subtitle cue's loudness (BS.1770, the unit-tested measure) in the decoded audiobook."""
    import av

    with av.open(str(m4b)) as container:
        stream = container.streams.audio[0]
        rate = stream.sample_rate
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(stream)]
    audio = np.concatenate(frames).astype(np.float64)
    cues = read_srt(m4b.with_suffix(".srt"))
    return [integrated_loudness(audio[round(c.start * rate) : round(c.end * rate)], rate) for c in cues]


def check(path: Path, tmp: Path, *flags: str) -> tuple[int, dict, str]:
    r = run_cli(["check", str(path), "--json", *flags], tmp)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout), r.stderr


def test_espeak_book_is_mastered_and_passes_check(tmp_path: Path) -> None:
    r = run_cli(["convert", str(book(tmp_path)), "--engine", "espeak", "-o", "out", "-q"], tmp_path)
    assert r.returncode == 0, r.stderr
    (m4b,) = (tmp_path / "out").glob("*.m4b")
    stats = analyze_audio(m4b)
    assert abs(stats.integrated - -19.0) <= 1.0, stats
    assert stats.true_peak <= -3.0, stats
    levels = sentence_loudness(m4b)
    assert len(levels) >= 8 and float(np.std(levels)) <= 1.5, levels
    code, report, _ = check(m4b, tmp_path)
    assert code == 0 and report["passed"], report
    assert [c["title"] for c in report["chapters"]] == ["CHAPTER I. Night", "CHAPTER II. Morning"]
    # Another target: a book mastered at -16 fails the default check, with one line saying why.
    r = run_cli(["check", str(m4b), "--loudness", "-23"], tmp_path)
    assert r.returncode == 1
    assert re.search(r"^loudness: -1\d\.\d LUFS integrated, outside -23\.0 ± 1\.0$", r.stdout, re.M), r.stdout


def test_piper_mastered_passes_and_unmastered_fails(tmp_path: Path) -> None:
    src = book(tmp_path)
    r = run_cli(["convert", str(src), "-o", "mastered", "-q", "--keep-work"], tmp_path)
    assert r.returncode == 0, r.stderr
    (m4b,) = (tmp_path / "mastered").glob("*.m4b")
    stats = analyze_audio(m4b)
    assert abs(stats.integrated - -19.0) <= 1.0 and stats.true_peak <= -3.0, stats
    assert float(np.std(sentence_loudness(m4b))) <= 1.5
    assert check(m4b, tmp_path)[0] == 0

    r = run_cli(["convert", str(src), "-o", "raw", "--no-master", "-q", "--keep-work"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "0 resumed" in r.stderr or "0 resumed" in r.stdout  # mastered chunks are never reused raw
    (raw,) = (tmp_path / "raw").glob("*.m4b")
    code, report, _ = check(raw, tmp_path)
    assert code == 1, report
    assert any(p.startswith("true peak: ") for p in report["problems"]), report  # Piper's peaks near 0 dBFS
    assert report["true_peak_dbtp"] > -1.0


def test_check_reports_problems_one_line_each(tmp_path: Path) -> None:
    """A WAV of loud clipped noise, a 7 s silence, then a hum: every problem on its own line, exit 1."""
    from ebook2audio.audio.pcm import wav_bytes

    rate = 22050
    rng = np.random.default_rng(1)
    noise = np.clip(rng.standard_normal(rate * 3) * 0.5, -1, 1)
    hum = 0.01 * np.sin(2 * np.pi * 50 * np.arange(rate * 2) / rate)
    audio = np.concatenate((noise, np.zeros(rate * 7), hum))
    pcm = np.clip(np.rint(audio * 32767), -32768, 32767).astype("<i2").tobytes()
    wav = tmp_path / "bad.wav"
    wav.write_bytes(wav_bytes(pcm, rate))
    r = run_cli(["check", str(wav)], tmp_path)
    assert r.returncode == 1, r.stderr
    lines = r.stdout.splitlines()
    assert any(line.startswith("loudness: ") for line in lines), lines
    assert any(line.startswith("true peak: ") for line in lines), lines
    assert any(line.startswith("clipping: ") for line in lines), lines
    assert any(re.match(r"silence: 7\.\d s at 0:00:03, longer than 5 s", line) for line in lines), lines
    assert not any(line.startswith("chapters") for line in lines)  # a WAV holds no chapters
    missing = run_cli(["check", str(tmp_path / "nope.m4b")], tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip() == f"error: {tmp_path / 'nope.m4b'}: no such file"
    (tmp_path / "text.m4b").write_text("not audio")
    garbage = run_cli(["check", str(tmp_path / "text.m4b")], tmp_path)
    assert garbage.returncode == 2 and garbage.stderr.startswith("error: cannot read text.m4b: ")
    assert len(garbage.stderr.strip().splitlines()) == 1


def _plan_texts(tmp: Path) -> list[str]:
    plans = sorted((tmp / "cache" / "ebook2audio" / "jobs").glob("*/plans/*.json"), key=lambda p: p.stat().st_mtime)
    return [c["text"] for c in json.loads(plans[-1].read_text())["chunks"]]


def _synthesised(output: str) -> tuple[int, int]:
    m = re.search(r"\((\d+) synthesised, (\d+) resumed\)", output)
    assert m, output
    return int(m.group(1)), int(m.group(2))


def test_lexicon_respells_and_redoes_only_affected_sentences(tmp_path: Path) -> None:
    src = book(tmp_path)
    lexicon = tmp_path / "book-lexicon.toml"
    lexicon.write_text('[exact]\n"Hermione" = "Her-my-oh-nee"\n[any_case]\n"elias" = "Ee-lye-us"\n', "utf-8")
    base = ["convert", str(src), "--engine", "espeak", "-o", "out", "--keep-work", "--lexicon", str(lexicon)]
    r = run_cli(base, tmp_path)
    assert r.returncode == 0, r.stderr
    texts = _plan_texts(tmp_path)
    assert sum("Her-my-oh-nee" in t for t in texts) == 1 and not any("Hermione" in t for t in texts)
    assert sum("Ee-lye-us" in t for t in texts) == 2
    assert "lexicon: 3 words respelled (2 entries)" in r.stderr + r.stdout
    srt = " ".join(c.text for c in read_srt(next((tmp_path / "out").glob("*.srt"))))
    assert "Hermione" in srt and "Her-my-oh-nee" not in srt  # subtitles show the book's words
    total = len(texts)

    # One entry changed: only the sentence holding that word is spoken again.
    lexicon.write_text('[exact]\n"Hermione" = "Hermy-own"\n[any_case]\n"elias" = "Ee-lye-us"\n', "utf-8")
    r = run_cli([*base, "--overwrite"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert _synthesised(r.stderr + r.stdout) == (1, total - 1)
    assert any("Hermy-own" in t for t in _plan_texts(tmp_path))

    bad = tmp_path / "bad.toml"
    bad.write_text('[exact]\n"x" = 3\n', "utf-8")
    r = run_cli(["convert", str(src), "--engine", "espeak", "--lexicon", str(bad)], tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == f"error: lexicon {bad}: the respelling of 'x' must be a non-empty string"
