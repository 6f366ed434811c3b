"""Distributed voice cloning: the coordinator's --voice-sample reaches a real worker process through the
shared storage (content-addressed under the session), never through the coordinator's path."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import pytest

from ebook2audio.audio.assemble import probe

from ..engines.xtts_fixture import build_tiny_xtts, piper_recording, xtts_entry_point
from .conftest import RedisServer
from .helpers import Worker, coordinator_args, run_cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("TTS") is None, reason="needs ebook2audio[clone]"),
]

BOOK = "# One\n\nAnna walked into the garden.\n\n# Two\n\nThe river ran past the mill.\n"


def test_the_sample_reaches_the_worker_through_storage(tmp_path: Path, redis_server: RedisServer) -> None:
    model = build_tiny_xtts(tmp_path / "xtts-v2")
    (tmp_path / "book.md").write_text(BOOK, encoding="utf-8")
    (tmp_path / "coordinator-only").mkdir()
    sample = piper_recording(
        tmp_path / "coordinator-only" / "ref.wav", "The old keeper walked slowly along the rocky shore, counting ships."
    )
    digest = hashlib.sha256(sample.read_bytes()).hexdigest()
    env = {"EBOOK2AUDIO_XTTS_DIR": str(model)}
    folder = xtts_entry_point(tmp_path / "entry")
    if folder is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    shared = tmp_path / "shared"
    worker_cache = tmp_path / "worker-cache"
    worker = Worker(tmp_path, "w1", redis_server.url, shared, **env, XDG_CACHE_HOME=str(worker_cache))
    try:
        worker.wait_ready()
        r = run_cli(
            [*coordinator_args(tmp_path / "book.md", redis_server.url, shared, "--num-workers", "1"),
             "--engine", "xtts", "--voice-sample", str(sample), "--language", "en", "-o", "out", "--keep-work"],
            tmp_path,
            **env,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    finally:
        worker.stop()
    log = worker.text()
    assert f"voice sample {digest[:12]}... copied from" in log, log[-3000:]
    assert "xtts voice" in log and "loaded on cpu" in log, log[-3000:]
    cached = worker_cache / "ebook2audio" / "voice-samples" / digest
    assert cached.read_bytes() == sample.read_bytes()
    stored = list(shared.rglob(f"voice-samples/{digest}"))
    assert len(stored) == 1 and stored[0].read_bytes() == sample.read_bytes()
    p = probe(tmp_path / "out" / "book.m4b")
    assert [c.title for c in p.chapters] == ["One", "Two"] and p.duration > 3
