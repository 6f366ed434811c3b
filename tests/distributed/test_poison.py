"""A sentence that kills its worker process (SIGSEGV), with real Redis and real worker processes.

Celery requeues a batch whose process died (``reject_on_worker_lost``); the delivery counter in Redis
makes the deliveries after two deaths look for the sentence, which is then spoken by espeak-ng (or,
with ``--strict``, stops the coordinator with exit 2). Before, every worker crashed on it in turn.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ebook2audio.audio.assemble import probe
from ebook2audio.engines.sim import SECONDS_PER_CHAR

from ..e2e.test_poison import MARK, write_book
from .conftest import RedisServer
from .helpers import SUMMARY, Worker, chunk_files, coordinator_args, file_samples, run_cli

pytestmark = pytest.mark.slow

CRASH = {"EBOOK2AUDIO_SIM_MS_PER_CHAR": "4", "EBOOK2AUDIO_SIM_CRASH_ON": MARK}


def _workers(tmp_path: Path, redis_url: str, shared: Path) -> list[Worker]:
    workers = [Worker(tmp_path, name, redis_url, shared, **CRASH) for name in ("w1", "w2")]
    for w in workers:
        w.wait_ready()
    return workers


def _report_entry(out: Path) -> dict:
    (report,) = out.glob("*.report.json")
    (entry,) = json.loads(report.read_text())["substituted"]
    assert MARK in entry["text"] and entry["chapter"] == 2
    assert "died 2 times" in entry["reason"]
    assert entry["replacement"].startswith("fallback voice espeak-ng")
    return entry


def test_poison_sentence_ends_in_distributed_mode(redis_server: RedisServer, tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.txt")
    shared = tmp_path / "shared"
    workers = _workers(tmp_path, redis_server.url, shared)
    try:
        args = coordinator_args(book, redis_server.url, shared, "--engine", "sim", "--num-workers", "2",
                                "--batch-chars", "150", "-o", "out", "--keep-work")  # fmt: skip
        t0 = time.monotonic()
        r = run_cli(args, tmp_path, timeout=240)
        assert r.returncode == 0, r.stderr
        assert time.monotonic() - t0 < 180
    finally:
        for w in workers:
            w.stop()
    logs = "".join(w.text() for w in workers)
    assert "SIGSEGV" in logs or "signal 11" in logs
    said = " ".join(r.stderr.split())
    assert "1 sentence(s) replaced because they crash the voice" in said and MARK in said
    entry = _report_entry(tmp_path / "out")

    (plan_path,) = shared.glob("*/plans/*.json")
    plan = json.loads(plan_path.read_text())
    rate = plan["sample_rate"]
    total = 0
    for c in plan["chunks"]:
        n = file_samples(plan_path.parent.parent / "chunks" / c["id"][:2] / f"{c['id']}.flac")
        total += n + (c["pause_after_ms"] * rate + 500) // 1000
        sim_length = round(len(c["text"].strip()) * SECONDS_PER_CHAR * rate)
        assert (n != sim_length) if c["id"] == entry["chunk_id"] else (n == sim_length), c["text"]
    (m4b,) = (tmp_path / "out").glob("*.m4b")
    assert probe(m4b).duration == pytest.approx(total / rate, abs=0.15)
    # the counters are gone from Redis once the batches succeeded
    assert not list(redis_server.client().scan_iter("ebook2audio:attempts:*"))


def test_strict_stops_the_coordinator_and_a_rerun_completes(redis_server: RedisServer, tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.txt")
    shared = tmp_path / "shared"
    workers = _workers(tmp_path, redis_server.url, shared)
    try:
        args = coordinator_args(book, redis_server.url, shared, "--engine", "sim", "--num-workers", "2",
                                "--batch-chars", "150", "-o", "out")  # fmt: skip
        t0 = time.monotonic()
        r = run_cli([*args, "--strict"], tmp_path, timeout=240)
        assert time.monotonic() - t0 < 180
        assert r.returncode == 2, r.stderr
        errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
        assert "--strict" in errors[0] and MARK in errors[0]
        assert not list((tmp_path / "out").glob("*.m4b"))
        kept = list(chunk_files(shared))
        assert kept

        r = run_cli(args, tmp_path, timeout=240)
        assert r.returncode == 0, r.stderr
    finally:
        for w in workers:
            w.stop()
    m = SUMMARY.search(" ".join(r.stderr.split()))
    assert m is not None and int(m.group(2)) > 0, r.stderr  # the first run's chunks were resumed
    _report_entry(tmp_path / "out")
