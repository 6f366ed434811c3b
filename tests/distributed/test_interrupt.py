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

SIM = {"EBOOK2AUDIO_SIM_MS_PER_CHAR": "3"}


def _unfinished(log: str) -> set[str]:
    """Tasks the worker received and has neither finished nor discarded."""
    received = set(re.findall(r"Task ebook2audio\.synthesize_batch\[([^\]]+)\] received", log))
    ended = set(re.findall(r"Task ebook2audio\.synthesize_batch\[([^\]]+)\] (?:succeeded|failed)", log))
    discarded = set(re.findall(r"Discarding revoked task: ebook2audio\.synthesize_batch\[([^\]]+)\]", log))
    return received - ended - discarded


def test_sigterm_to_the_coordinator_stops_the_job_and_the_rerun_resumes(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    book = write_book(tmp_path / "book.txt", chapters=2, paragraphs=4)
    shared = tmp_path / "shared"
    w1 = Worker(tmp_path, "w1", redis_server.url, shared, **SIM)
    try:
        w1.wait_ready()
        # a window of 10 batches: at the signal, several wait in the queue behind the running one
        args = coordinator_args(book, redis_server.url, shared, "--engine", "sim", "--batch-chars", "150",
                                "--max-in-flight", "10", "-o", "out")  # fmt: skip
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

        # The queued batches were revoked: the worker discards them and finishes at most what it was
        # running, not the book. Wait until the queue is empty and the worker holds nothing.
        client = redis_server.client()
        idle_since = None
        deadline = time.monotonic() + 60
        while idle_since is None or time.monotonic() - idle_since < 1.0:
            assert time.monotonic() < deadline, "the worker did not go idle:\n" + w1.text()[-3000:]
            if client.llen("ebook2audio") == 0 and not _unfinished(w1.text()):
                idle_since = idle_since or time.monotonic()
            else:
                idle_since = None
            time.sleep(0.1)
        # (without the revoke, the worker made the window's 9 queued batches, 10 sentences or more)
        more = len(chunk_files(shared)) - kept
        assert more <= 6, f"the worker made {more} more sentences after the coordinator stopped"
        assert "Discarding revoked task: ebook2audio.synthesize_batch" in w1.text()

        r = run_cli(args, tmp_path)  # the session lock was released: the same command resumes
        assert r.returncode == 0, r.stderr
        s = SUMMARY.search(r.stderr)
        assert s, r.stderr
        assert int(s.group(2)) >= kept and int(s.group(1)) + int(s.group(2)) == total
        assert len(list((tmp_path / "out").glob("*.m4b"))) == 1
    finally:
        w1.stop()
