"""The fault tests with the real Piper voice (not deterministic by nature: seeded per chunk here): a
SIGKILLed worker, a SIGKILLed coordinator, a Redis restart mid-job, and a worker paused past the
liveness timeout whose late copy of a batch must change nothing. (They once had sim-engine twins in
test_faults.py; a fault test that only runs on the sim engine proves nothing about real voices, so
these carry every assertion those had.)

Real redis-server, real worker processes, the real coordinator CLI, a short book (two chapters).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from .conftest import RedisServer
from .helpers import SUMMARY, Worker, chunk_files, cli_env, coordinator_args, run_cli, start_cli, write_book
from .test_faults import _assert_complete, _held_task, _plan, _wait

pytestmark = pytest.mark.slow


def _book(tmp_path: Path) -> Path:
    return write_book(tmp_path / "book.txt", chapters=2, paragraphs=2)


def test_piper_sigkilled_worker_loses_nothing(redis_server: RedisServer, tmp_path: Path) -> None:
    book = _book(tmp_path)
    shared = tmp_path / "shared"
    w1 = Worker(tmp_path, "w1", redis_server.url, shared)
    w2 = Worker(tmp_path, "w2", redis_server.url, shared)
    try:
        w1.wait_ready()
        w2.wait_ready()
        args = coordinator_args(book, redis_server.url, shared, "--num-workers", "2", "--batch-chars", "150",
                                "-o", "out", "--keep-work")  # fmt: skip
        coord = start_cli(args, tmp_path)
        _wait(lambda: len(chunk_files(shared)) >= 2 and _held_task(w1), 120, "w1 holding a task", coord)
        t_kill = time.monotonic()
        w1.kill()  # main process and pool: its task stays unacked in Redis (visibility timeout 1 h)
        _out, err = coord.communicate(timeout=300)
        elapsed = time.monotonic() - t_kill
        assert coord.returncode == 0, err
        said = " ".join(err.split())  # the console wraps long lines
        assert re.search(r"worker w1@\S+ (is gone while holding batch|stopped answering)", said), err
        assert "dispatching it again" in said or "dispatching them again" in said, err
        assert elapsed < 60  # the lost batch went to w2 at once, not after the visibility timeout
        _assert_complete(shared, tmp_path / "out")
    finally:
        w1.stop()
        w2.stop()


def test_piper_sigkilled_coordinator_resumes_without_redoing_chunks(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    book = _book(tmp_path)
    shared = tmp_path / "shared"
    w1 = Worker(tmp_path, "w1", redis_server.url, shared)
    try:
        w1.wait_ready()
        args = coordinator_args(book, redis_server.url, shared, "--batch-chars", "150", "-o", "out",
                                "--keep-work")  # fmt: skip
        coord = start_cli(args, tmp_path)
        _wait(lambda: len(chunk_files(shared)) >= 4, 120, "4 chunks", coord)
        os.killpg(coord.pid, signal.SIGKILL)
        coord.wait()
        w1.kill()
        before = chunk_files(shared)
        session, plan = _plan(shared)
        assert 4 <= len(before) < len(plan["chunks"])
        w2 = Worker(tmp_path, "w2", redis_server.url, shared)
        try:
            w2.wait_ready()
            r = run_cli([*args, "--session", session], tmp_path)
            assert r.returncode == 0, r.stderr
        finally:
            w2.stop()
        m = SUMMARY.search(r.stderr)
        assert m, r.stderr
        assert int(m.group(2)) >= len(before)
        assert int(m.group(1)) + int(m.group(2)) == len(plan["chunks"])
        after = chunk_files(shared)
        assert {p: after[p] for p in before} == before  # not redone, not rewritten
        _assert_complete(shared, tmp_path / "out")
    finally:
        w1.stop()


def test_piper_redis_restart_mid_job(redis_server: RedisServer, tmp_path: Path) -> None:
    book = _book(tmp_path)
    shared = tmp_path / "shared"
    w1 = Worker(tmp_path, "w1", redis_server.url, shared)
    w2 = Worker(tmp_path, "w2", redis_server.url, shared)  # both come back to the restarted Redis
    try:
        w1.wait_ready()
        w2.wait_ready()
        args = coordinator_args(book, redis_server.url, shared, "--num-workers", "2", "--batch-chars", "150",
                                "-o", "out", "--keep-work")  # fmt: skip
        coord = start_cli(args, tmp_path)
        _wait(lambda: len(chunk_files(shared)) >= 2, 120, "2 chunks", coord)
        redis_server.restart(down_seconds=2)  # AOF on: the queue survives
        _out, err = coord.communicate(timeout=300)
        assert coord.returncode == 0, err
        _assert_complete(shared, tmp_path / "out")
    finally:
        w1.stop()
        w2.stop()


def _pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


def test_paused_worker_late_copy_changes_nothing(redis_server: RedisServer, tmp_path: Path) -> None:
    """SIGSTOP a worker holding a batch past the liveness timeout; the batch is re-dispatched and done by
    another worker; SIGCONT: the book completes byte-identical to a clean run, and no file is left."""
    book = _book(tmp_path)
    # the clean run (one process) runs beside the distributed one below: read at the end
    clean = start_cli(["convert", str(book), "-f", "wav", "-o", "clean", "-w", "1", "--batch-chars", "150",
                       "--work-dir", str(tmp_path / "clean-work")], tmp_path)  # fmt: skip

    shared = tmp_path / "shared"
    wa = Worker(tmp_path, "wa", redis_server.url, shared)
    wb: Worker | None = None
    log = tmp_path / "coordinator.log"
    try:
        wa.wait_ready()
        args = coordinator_args(book, redis_server.url, shared, "-f", "wav", "-o", "dist",
                                "--batch-chars", "150")  # fmt: skip
        with log.open("wb") as fh:
            coord = subprocess.Popen(
                [sys.executable, "-m", "ebook2audio", *args],
                env=cli_env(tmp_path),
                cwd=tmp_path,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        said = lambda: " ".join(log.read_text(errors="replace").split())  # noqa: E731
        _wait(lambda: len(chunk_files(shared)) >= 1 and _held_task(wa), 120, "wa holding a batch", coord)
        os.killpg(wa.proc.pid, signal.SIGSTOP)  # the worker and its pool: paused mid-batch
        paused_at = time.monotonic()
        wb = Worker(tmp_path, "wb", redis_server.url, shared)
        wb.wait_ready()
        _wait(
            lambda: re.search(r"worker wa@\S+ (is gone while holding batch|stopped answering)", said()),
            120,
            "the coordinator giving wa's batch to another worker",
            coord,
        )
        assert time.monotonic() - paused_at >= 5
        os.killpg(wa.proc.pid, signal.SIGCONT)
        assert coord.wait(300) == 0, said()
        assert SUMMARY.search(said()), said()
        # wa's late copy finishes (its writes are no-ops or are removed with the finished job)
        _wait(lambda: not _held_task(wa), 120, "wa finishing its late copy")
        time.sleep(1)
        _out, err = clean.communicate(timeout=300)
        assert clean.returncode == 0, err
        (clean_wav,) = (tmp_path / "clean").glob("*.wav")
        (dist_wav,) = (tmp_path / "dist").glob("*.wav")
        assert _pcm(dist_wav) == _pcm(clean_wav)  # every chunk byte-identical to the clean run's
        left = [p for p in shared.rglob("*") if p.is_file()]
        assert left == [], left
    finally:
        if clean.poll() is None:
            clean.kill()
            clean.communicate()
        for w in (wa, wb):
            if w is not None:
                if w.proc.poll() is None:
                    os.killpg(w.proc.pid, signal.SIGCONT)
                w.stop()
