"""A real book through a coordinator and two real Piper workers matches the embedded conversion."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ebook2audio.audio.assemble import probe

from .conftest import RedisServer
from .helpers import CORPUS, SUMMARY, Worker, coordinator_args, run_cli, wait_purged

pytestmark = pytest.mark.slow

BOOK = CORPUS / "epub3_moby-dick_melville_en.epub"


def _two_short_chapters(tmp: Path) -> list[dict]:
    r = run_cli(["inspect", str(BOOK), "--json"], tmp)
    assert r.returncode == 0, r.stderr
    chapters = [c for c in json.loads(r.stdout)["chapters"] if c["words"] >= 40]
    return sorted(sorted(chapters, key=lambda c: c["words"])[:2], key=lambda c: c["index"])


def test_two_piper_workers_match_the_embedded_mode(redis_server: RedisServer, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    workers = [Worker(tmp_path, name, redis_server.url, shared) for name in ("piper1", "piper2")]
    try:
        chosen = _two_short_chapters(tmp_path)  # while the workers start
        common = [
            "--chapters",
            ",".join(str(c["index"]) for c in chosen),
            "--output-name",
            "book",
            "--batch-chars",
            "300",
        ]
        for w in workers:
            w.wait_ready()
        dist = run_cli(
            [*coordinator_args(BOOK, redis_server.url, shared, "--num-workers", "2"), *common, "-o", "dist"],
            tmp_path,
        )
        assert dist.returncode == 0, dist.stderr
        # the coordinator moved the finished session aside in one rename; a worker deletes it
        assert [p.name for p in shared.iterdir()] in ([], [".trash"]), list(shared.iterdir())
        wait_purged(shared)
    finally:
        for w in workers:
            w.stop()
    for w in workers:  # both took batches, and said where they synthesise
        log = w.text()
        assert re.search(r"worker piper\d@\S+: synthesis on the CPU", log), log[:2000]
        assert "piper voice 'en_US-joe-medium' loaded on the CPU" in log, log[-3000:]
        assert "succeeded" in log
    assert not list(shared.rglob("*.flac"))  # cleaned up after success, by the workers

    emb = run_cli(["convert", str(BOOK), *common, "-o", "emb", "--workers", "2"], tmp_path)
    assert emb.returncode == 0, emb.stderr

    d, e = probe(tmp_path / "dist" / "book.m4b"), probe(tmp_path / "emb" / "book.m4b")
    assert [c.title for c in d.chapters] == [c.title for c in e.chapters] == [c["title"] for c in chosen]
    # Piper samples phoneme durations with a little noise: equal within a small tolerance
    assert d.duration == pytest.approx(e.duration, rel=0.04)
    for dc, ec in zip(d.chapters, e.chapters, strict=True):
        assert dc.end - dc.start == pytest.approx(ec.end - ec.start, rel=0.06, abs=0.5)
    assert d.tags.get("title") == e.tags.get("title")
    m = SUMMARY.search(dist.stderr)
    assert m and int(m.group(2)) == 0
