"""A job owns its scope, through the real CLI with the real Piper voice: bad session ids touch nothing,
two conversions of one book run side by side, and a finished partial run never deletes the audio of an
interrupted full one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ebook2audio.audio.assemble import probe

from ..distributed.helpers import SUMMARY, write_book
from .helpers import cli_env, kill_when, run_cli

WORK = ("cache", "ebook2audio", "jobs")


def _tree(root: Path) -> dict[str, tuple[int, bytes]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_mode, p.read_bytes() if p.is_file() else b"")
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize("bad", [".", "..", "a/b", "x" * 65, "../escape", "_x"])
def test_bad_session_ids_are_one_line_errors_and_touch_nothing(tmp_path: Path, bad: str) -> None:
    book = write_book(tmp_path / "book.txt", chapters=1, paragraphs=1)
    work = tmp_path.joinpath(*WORK)
    (work / "0123456789abcdef" / "chunks" / "ab").mkdir(parents=True)
    (work / "0123456789abcdef" / "chunks" / "ab" / "abc.wav").write_bytes(b"RIFF....")
    (work / "0123456789abcdef" / "plans").mkdir()
    (work / "0123456789abcdef" / "plans" / "j.json").write_text("{}")
    (tmp_path / "cache" / "keep.txt").write_text("a file beside the work directory")
    before = _tree(tmp_path)
    r = run_cli(["convert", str(book), "--session", bad, "--engine", "sim", "-o", "out"], tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid session id"), r.stderr
    after = _tree(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("out")} == before


def _duration_and_chapters(path: Path) -> tuple[float, list[str]]:
    p = probe(path)
    return p.duration, [c.title for c in p.chapters]


@pytest.mark.slow
def test_two_conversions_of_one_book_at_once_both_complete(tmp_path: Path) -> None:
    """An m4b and an mp3 of the same book, started together (Piper, one process each)."""
    book = write_book(tmp_path / "book.txt", chapters=2, paragraphs=2)
    common = ["convert", str(book), "-o", "out", "-w", "1", "--batch-chars", "150"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ebook2audio", *common, "-f", fmt],
            env=cli_env(tmp_path),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for fmt in ("m4b", "mp3")
    ]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert SUMMARY.search(err), err
    m4b, mp3 = sorted((tmp_path / "out").glob("*.m4b")), sorted((tmp_path / "out").glob("*.mp3"))
    assert len(m4b) == 1 and len(mp3) == 1
    d1, ch1 = _duration_and_chapters(m4b[0])
    d2, ch2 = _duration_and_chapters(mp3[0])
    assert ch1 == ch2 == ["CHAPTER 1", "CHAPTER 2"]
    assert d1 > 10 and abs(d1 - d2) < 1.0  # the same sentences, whoever synthesised them
    work = tmp_path.joinpath(*WORK)
    assert not work.exists() or not list(work.rglob("*.flac"))  # both done: nothing left behind


def _chunks(work: Path) -> set[Path]:
    return set(work.rglob("*.flac"))


@pytest.mark.slow
def test_a_finished_partial_run_keeps_the_interrupted_full_runs_audio(tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.txt", chapters=3, paragraphs=2)
    work = tmp_path.joinpath(*WORK)
    full = ["convert", str(book), "-o", "out", "-w", "1", "--batch-chars", "150", "-q"]
    kill_when(full, tmp_path, lambda: len(_chunks(work)) >= 8)
    interrupted = _chunks(work)
    assert len(interrupted) >= 8

    r = run_cli(["convert", str(book), "-o", "part", "--chapters", "1", "-w", "1"], tmp_path)
    assert r.returncode == 0, r.stderr
    m = SUMMARY.search(r.stderr)
    assert m and int(m.group(1)) + int(m.group(2)) == 7, r.stderr  # chapter 1: its title and 6 sentences
    made_by_part = int(m.group(1))
    # the interrupted run's audio survived the partial run's cleanup, and so did what the partial run
    # made for chapter 1 (the full run needs it)
    assert interrupted <= _chunks(work)
    assert len(_chunks(work)) == len(interrupted) + made_by_part

    r = run_cli(full, tmp_path)
    assert r.returncode == 0, r.stderr
    m = SUMMARY.search(r.stderr)
    assert m and int(m.group(2)) == len(interrupted) + made_by_part, r.stderr
    assert not _chunks(work)
    (out,) = (tmp_path / "out").glob("*.m4b")
    assert _duration_and_chapters(out)[1] == ["CHAPTER 1", "CHAPTER 2", "CHAPTER 3"]
    assert re.search(r"\d+ sentences \(", r.stderr)
