"""Real redis-server, real worker processes, the real coordinator CLI: faults on the way.

The sim engine (sleeps ``EBOOK2AUDIO_SIM_MS_PER_CHAR`` per character, like a GPU) keeps these fast;
the voice itself is tested in test_corpus.py. A SIGKILLed worker, a SIGKILLed coordinator and a Redis
restart mid-job are tested with the real Piper voice in test_faults_piper.py (their sim twins were
removed: every assertion they made is there).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from ebook2audio.audio.assemble import probe

from .conftest import RedisServer
from .helpers import (
    Worker,
    chunk_files,
    coordinator_args,
    file_samples,
    run_cli,
    start_cli,
    write_book,
)

pytestmark = pytest.mark.slow

SIM = {"EBOOK2AUDIO_SIM_MS_PER_CHAR": "6"}


def _wait(predicate, timeout: float, what: str, proc=None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            _out, err = proc.communicate()
            raise AssertionError(f"coordinator exited {proc.returncode} before {what}:\n{err[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _plan(shared: Path) -> tuple[str, dict]:
    (plan_path,) = shared.glob("*/plans/*.json")
    return plan_path.parent.parent.name, json.loads(plan_path.read_text())


def _assert_complete(shared: Path, out: Path) -> None:
    """Every planned chunk is stored exactly once and the book's duration is the sum of its parts."""
    session, plan = _plan(shared)
    ids = [c["id"] for c in plan["chunks"]]
    stored = list(chunk_files(shared / session / "chunks"))
    assert sorted(p.stem for p in stored) == sorted(ids)
    rate = plan["sample_rate"]
    samples = sum(file_samples(p) for p in stored)
    pauses = sum((c["pause_after_ms"] * rate + 500) // 1000 for c in plan["chunks"])
    (m4b,) = out.glob("*.m4b")
    info = probe(m4b)
    assert info.duration == pytest.approx((samples + pauses) / rate, abs=0.15)
    assert len(info.chapters) == len(plan["chapters"])


def _held_task(worker: Worker) -> bool:
    """The worker has received a task it has not finished."""
    text = worker.text()
    received = set(re.findall(r"Task ebook2audio\.synthesize_batch\[([^\]]+)\] received", text))
    finished = set(re.findall(r"Task ebook2audio\.synthesize_batch\[([^\]]+)\] succeeded", text))
    return bool(received - finished)


def test_killed_pool_process_is_redelivered(redis_server: RedisServer, tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.txt", chapters=2, paragraphs=3)
    shared = tmp_path / "shared"
    w = Worker(tmp_path, "solo", redis_server.url, shared, **SIM)
    try:
        w.wait_ready()
        args = coordinator_args(book, redis_server.url, shared, "--engine", "sim", "--batch-chars", "150",
                                "-o", "out", "--keep-work")  # fmt: skip
        coord = start_cli(args, tmp_path)
        _wait(lambda: len(chunk_files(shared)) >= 2 and _held_task(w), 60, "a task in progress", coord)
        (child,) = w.pool_pids()
        os.kill(child, signal.SIGKILL)  # the pool process only: task_reject_on_worker_lost requeues at once
        _out, err = coord.communicate(timeout=120)
        assert coord.returncode == 0, err
        assert "WorkerLostError" in w.text() or "exited with 'signal 9" in w.text()
        _assert_complete(shared, tmp_path / "out")
    finally:
        w.stop()


def test_no_worker_fails_fast_with_exit_2(redis_server: RedisServer, tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.txt", chapters=1, paragraphs=1)
    t0 = time.monotonic()
    r = run_cli(
        coordinator_args(
            book, redis_server.url, tmp_path / "shared", "--engine", "sim", "--worker-timeout", "3"
        ),
        tmp_path,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert time.monotonic() - t0 < 30
    assert "waiting for 1 worker, 0 connected" in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("error: no worker connected to Redis at localhost:") and "ebook2audio worker" in last
    )
    assert redis_server.password not in r.stderr


def test_all_workers_gone_mid_job_fails_with_exit_2(redis_server: RedisServer, tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.txt", chapters=3, paragraphs=3)
    shared = tmp_path / "shared"
    w = Worker(tmp_path, "only", redis_server.url, shared, **SIM)
    try:
        w.wait_ready()
        args = coordinator_args(book, redis_server.url, shared, "--engine", "sim", "--batch-chars", "150",
                                "--worker-timeout", "4", "-o", "out")  # fmt: skip
        coord = start_cli(args, tmp_path)
        _wait(lambda: len(chunk_files(shared)) >= 2, 60, "2 chunks", coord)
        w.kill()
        t_kill = time.monotonic()
        _out, err = coord.communicate(timeout=60)
        assert coord.returncode == 2, err
        assert time.monotonic() - t_kill < 20
        assert "no worker is alive: start `ebook2audio worker`" in " ".join(err.split())
        assert err.strip().splitlines()[-1].startswith("error: no worker has been alive")
        assert chunk_files(shared)  # the work done so far is kept
        assert not list((tmp_path / "out").glob("*.m4b")) if (tmp_path / "out").exists() else True
        cp = redis_server.client().hgetall(f"checkpoint:{_plan(shared)[0]}")
        assert cp[b"status"] == b"stalled"
    finally:
        w.stop()


def test_corrupt_checkpoint_is_repaired_from_storage(redis_server: RedisServer, tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.txt", chapters=1, paragraphs=2)
    shared = tmp_path / "shared"
    w = Worker(tmp_path, "w1", redis_server.url, shared, EBOOK2AUDIO_SIM_MS_PER_CHAR="0")
    try:
        w.wait_ready()
        args = coordinator_args(book, redis_server.url, shared, "--engine", "sim", "--session", "sess1",
                                "-o", "out", "--keep-work")  # fmt: skip
        redis_server.client().set("checkpoint:sess1", "garbage")  # a string where a hash belongs
        r = run_cli(args, tmp_path, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "checkpoint:sess1 was corrupt" in " ".join(r.stderr.split())
        cp = redis_server.client().hgetall("checkpoint:sess1")
        _session, plan = _plan(shared)
        assert cp[b"status"] == b"done"
        assert int(cp[b"done"]) == int(cp[b"total"]) == len(plan["chunks"])
    finally:
        w.stop()
