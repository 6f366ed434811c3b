"""Kill a conversion with SIGKILL mid-way: the rerun finishes without re-synthesising finished chunks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ebook2audio.audio.assemble import probe

from .helpers import inspect_json, kill_when, run_cli, shortest_chapters

pytestmark = pytest.mark.slow


def _chunk_files(work: Path) -> dict[Path, int]:
    return {p: p.stat().st_ino for p in work.rglob("*.flac")}


def test_sigkill_then_rerun_resumes(corpus: Path, tmp_path: Path) -> None:
    book = corpus / "epub3_moby-dick_melville_en.epub"
    info = inspect_json(book, tmp_path)
    chosen = shortest_chapters(info, 2, min_words=60)  # 347 words, about 25 sentences
    args = [
        "convert", str(book), "--chapters", ",".join(str(c["index"]) for c in chosen),
        "-o", "out", "--workers", "2", "--batch-chars", "200", "-q",
    ]  # fmt: skip
    work = tmp_path / "cache" / "ebook2audio" / "jobs"
    kill_when(args, tmp_path, lambda: len(_chunk_files(work)) >= 8)
    before = _chunk_files(work)
    assert len(before) >= 8
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.m4b"))

    r = run_cli([*args, "--keep-work"], tmp_path)
    assert r.returncode == 0, r.stderr
    m = re.search(r"\((\d+) synthesised, (\d+) resumed\)", r.stderr)
    assert m, r.stderr
    synthesised, resumed = int(m.group(1)), int(m.group(2))
    assert resumed >= len(before) - 2  # at most the in-flight writes are lost
    after = _chunk_files(work)
    unchanged = [p for p, ino in before.items() if after.get(p) == ino]
    assert len(unchanged) >= len(before) - 2  # finished chunks were not rewritten
    assert synthesised + resumed == len(after)
    out = next((tmp_path / "out").glob("*.m4b"))
    assert [c.title for c in probe(out).chapters] == [c["title"] for c in chosen]


def test_failed_run_keeps_earlier_good_output(tmp_path: Path) -> None:
    book = tmp_path / "b.txt"
    book.write_text("CHAPTER I\n\nA short first chapter.\n\nCHAPTER II\n\nA short second one.\n")
    r = run_cli(["convert", str(book), "-o", "out", "--output-name", "book", "-q"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out" / "book.m4b"
    good = out.read_bytes()
    # a bad bitrate makes ffmpeg fail at the very end: the earlier file must survive untouched
    r = run_cli(
        ["convert", str(book), "-o", "out", "--output-name", "book", "--bitrate", "-5k", "--overwrite", "-q"],
        tmp_path,
    )
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert out.read_bytes() == good
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["book.m4b", "book.srt", "book.vtt"]
