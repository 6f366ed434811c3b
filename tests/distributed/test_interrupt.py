"""SIGTERM to the coordinator: it stops dispatching, revokes its queued batches, keeps the work done,
says so, exits 143; the same command then resumes (real redis-server, worker and coordinator CLI)."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from .conftest import RedisServer
from .helpers import SUMMARY, Worker, chunk_files, coordinator_args, run_cli, start_cli, write_book

pytestmark = pytest.mark.slow

SIM = {"EBOOK2AUDIO_SIM_MS_PER_CHAR": "6"}


def test_sigterm_to_the_coordinator_stops_the_job_and_the_rerun_resumes(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    book = write_book(tmp_path / "book.txt", chapters=4, paragraphs=6)
    shared = tmp_path / "shared"
    w1 = Worker(tmp_path, "w1", redis_server.url, shared, **SIM)
    try:
        w1.wait_ready()
        args = coordinator_args(book, redis_server.url, shared, "--engine", "sim", "--batch-chars", "150",
                                "-o", "out")  # fmt: skip
        coord = start_cli(args, tmp_path)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(chunk_files(shared)) < 6:
            assert coord.poll() is None, coord.communicate()[1]
            time.sleep(0.1)
        coord.send_signal(signal.SIGTERM)
        _, err = coord.communicate(timeout=60)
        assert coord.returncode == 143, err
        m = re.search(r"^interrupted: (\d+) of (\d+) sentences kept; rerun the same command to resume$", err, re.M)
        assert m, err
        kept, total = int(m.group(1)), int(m.group(2))
        assert 6 <= kept < total and "Traceback" not in err
        assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []

        # The queued batches were revoked: the worker finishes at most what it was running, not the book.
        time.sleep(8)
        # (without the revoke, the worker made 15 more sentences in these 8 s; with it, none)
        more = len(chunk_files(shared)) - kept
        assert more <= 6, f"the worker made {more} more sentences after the coordinator stopped"

        r = run_cli(args, tmp_path)  # the session lock was released: the same command resumes
        assert r.returncode == 0, r.stderr
        s = SUMMARY.search(r.stderr)
        assert s, r.stderr
        assert int(s.group(2)) >= kept and int(s.group(1)) + int(s.group(2)) == total
        assert len(list((tmp_path / "out").glob("*.m4b"))) == 1
    finally:
        w1.stop()
