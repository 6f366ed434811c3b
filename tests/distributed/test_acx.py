"""Distributed: ``--preset acx`` with a worker: the credits are synthesised by the worker like any
chapter, and the coordinator writes the package from the shared storage; ``check --preset acx`` passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import RedisServer
from .helpers import Worker, coordinator_args, run_cli, write_book

pytestmark = pytest.mark.slow


def test_acx_package_from_a_worker(tmp_path: Path, redis_server: RedisServer) -> None:
    book = write_book(tmp_path / "book.txt", chapters=2, paragraphs=4)
    shared = tmp_path / "shared"
    worker = Worker(tmp_path, "w1", redis_server.url, shared)
    try:
        worker.wait_ready()
        r = run_cli(
            [*coordinator_args(book, redis_server.url, shared, "--num-workers", "1"),
             "--engine", "espeak", "--preset", "acx", "-o", "out", "--output-name", "b"],
            tmp_path,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    finally:
        worker.stop()
    folder = tmp_path / "out" / "b (ACX)"
    assert sorted(p.name for p in folder.iterdir()) == [
        "00 Opening Credits.mp3", "01 CHAPTER 1.mp3", "02 CHAPTER 2.mp3", "03 Closing Credits.mp3",
        "Retail Sample.mp3",
    ]  # fmt: skip
    ok = run_cli(["check", "--preset", "acx", str(folder)], tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
