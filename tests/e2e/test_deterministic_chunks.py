"""Piper's chunks through the real CLI: the same book converted twice, apart, gives the same audio."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import run_cli

BOOK = (
    "CHAPTER I\n\nThe old lighthouse keeper walked slowly along the rocky shore. The sea was calm.\n\n"
    "CHAPTER II\n\nNobody spoke. The gulls circled above the harbour, crying at the fishing boats.\n"
)


def _chunks(work_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(work_dir.rglob("chunks/*/*.flac"))}


@pytest.mark.slow
def test_two_conversions_with_real_piper_write_identical_chunks(tmp_path: Path) -> None:
    book = tmp_path / "b.txt"
    book.write_text(BOOK, encoding="utf-8")
    outputs = []
    for run in ("first", "second"):
        r = run_cli(
            ["convert", str(book), "-o", f"out-{run}", "--output-name", "book", "-f", "wav", "--workers", "1",
             "--work-dir", f"work-{run}", "--keep-work", "--no-subtitles", "-q"],
            tmp_path,
        )
        assert r.returncode == 0, r.stderr
        outputs.append((_chunks(tmp_path / f"work-{run}"), (tmp_path / f"out-{run}" / "book.wav").read_bytes()))
    (first_chunks, first_book), (second_chunks, second_book) = outputs
    assert len(first_chunks) >= 5  # a chunk per sentence (and spoken chapter titles)
    assert first_chunks == second_chunks  # same names (content ids) and the same bytes
    assert first_book == second_book
