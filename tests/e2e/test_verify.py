"""End to end: ``convert --verify`` on a real corpus chapter (Piper, tiny.en), its report, and
``check --against`` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ebook2audio.audio.ffmpeg import probe

from .helpers import run_cli

pytestmark = pytest.mark.slow

BOOK = "epub3_moby-dick_melville_en.epub"
CHAPTER = "124"  # "Chapter 122. Midnight Aloft.—Thunder and Lightning.": 44 words, the book's shortest
OTHER = "123"  # "Chapter 121. Midnight.—The Forecastle Bulwarks."


def test_verify_a_correct_chapter_passes_and_check_against_finds_the_wrong_text(corpus: Path, tmp_path: Path) -> None:
    book = corpus / BOOK
    r = run_cli(["convert", str(book), "--chapters", CHAPTER, "-o", "out", "--verify", "-w", "1", "-q"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    out = next((tmp_path / "out").glob("*.m4b"))
    # no false alarm: every sentence heard, none failing
    assert "0 still failing" in r.stderr + r.stdout, r.stderr
    report = json.loads(out.with_name(f"{out.stem}.report.json").read_text(encoding="utf-8"))
    verify = report["verify"]
    assert verify["failed"] == [] and verify["verified"] >= 8
    [chapter] = verify["chapters"]
    assert chapter["title"].startswith("Chapter 122")
    assert chapter["duration"] == pytest.approx(probe(out).duration, abs=0.5)
    assert -20.5 < chapter["integrated_lufs"] < -17.5 and chapter["true_peak_dbtp"] <= -3.0
    assert chapter["cer"] < 0.2
    page = out.with_name(f"{out.stem}.report.html").read_text(encoding="utf-8")
    assert "<script" not in page and "Chapter 122" in page

    # the audiobook against its own text: passes; against another chapter's: fails, one line, exit 1
    ok = run_cli(["check", str(out), "--against", str(book), "--chapters", CHAPTER], tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip().endswith("passed")
    bad = run_cli(["check", str(out), "--against", str(book), "--chapters", OTHER], tmp_path)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    lines = [x for x in bad.stdout.splitlines() if x.startswith("speech: chapter 1")]
    assert len(lines) == 1 and "word error rate" in lines[0]


def test_a_missing_speech_model_is_one_line_before_any_work(tmp_path: Path) -> None:
    book = tmp_path / "b.txt"
    book.write_text("A short book.\n\nIt has one sentence more.\n", encoding="utf-8")
    r = run_cli(["convert", str(book), "-o", "out", "--verify", "--asr-model", str(tmp_path / "nope")], tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert errors == [f"error: speech-recognition model {str(tmp_path / 'nope')!r}: no such folder (give a folder "
                      "holding a CTranslate2 Whisper model, or the name tiny.en or base; nothing is downloaded)"]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
