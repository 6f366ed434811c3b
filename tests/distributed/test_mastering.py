"""Distributed: the mastering and --verify settings given to the coordinator reach the workers through the plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ebook2audio.audio.ffmpeg import analyze_audio

from .conftest import RedisServer
from .helpers import Worker, coordinator_args, run_cli, write_book

pytestmark = pytest.mark.slow


def test_workers_master_as_the_coordinator_says(tmp_path: Path, redis_server: RedisServer) -> None:
    book = write_book(tmp_path / "book.txt", chapters=2, paragraphs=1)
    shared = tmp_path / "shared"
    worker = Worker(tmp_path, "w1", redis_server.url, shared)  # no mastering setting of its own
    try:
        worker.wait_ready()
        r = run_cli(
            [*coordinator_args(book, redis_server.url, shared, "--num-workers", "1"),
             "--engine", "espeak", "--loudness", "-16", "--true-peak", "-2", "-o", "out", "--output-name", "b",
             "--verify", "--verify-takes", "1"],
            tmp_path,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    finally:
        worker.stop()
    # every sentence was heard by speech recognition on the worker (the coordinator synthesises none)
    verify = json.loads((tmp_path / "out" / "b.report.json").read_text(encoding="utf-8"))["verify"]
    assert verify["verified"] == sum(ch["sentences"] for ch in verify["chapters"]) == 8, verify
    assert "verify: 8 sentences heard" in r.stderr
    stats = analyze_audio(tmp_path / "out" / "b.m4b")
    assert abs(stats.integrated - -16.0) <= 1.0 and stats.true_peak <= -2.0, stats
    ok = run_cli(["check", str(tmp_path / "out" / "b.m4b"), "--loudness", "-16", "--true-peak", "-2"], tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
