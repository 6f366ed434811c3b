"""End to end on S3: `convert --distributed` + a real worker, sharing chunk audio through an S3 server.

A real redis-server (the ``redis_server`` fixture), a real S3-compatible server (moto, localhost),
a real ``ebook2audio worker`` subprocess and a real Flower: nothing is mocked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.distributed.flower_helpers import FLOWER_PASSWORD, FLOWER_USER, running_flower
from tests.distributed.helpers import SUMMARY, Worker, run_cli, write_book
from tests.s3_server import S3Server, s3_bucket, s3_server

__all__ = ["s3_bucket", "s3_server"]  # fixtures used below

TASK_NAME = "ebook2audio.synthesize_batch"


@pytest.mark.slow
def test_distributed_convert_through_s3(
    redis_server, s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    book = write_book(tmp_path / "book.txt", chapters=3, paragraphs=2)
    env = {**s3_server.env(s3_bucket), "EBOOK2AUDIO_SIM_MS_PER_CHAR": "1"}
    no_dir = tmp_path / "no-such-shared-dir"  # S3 mode must not need (or create) a shared directory
    client = s3_server.client()

    with running_flower(redis_server.url, tmp_path) as flower:
        worker = Worker(tmp_path, "s3w", redis_server.url, no_dir, **env)
        try:
            worker.wait_ready()
            args = ["convert", str(book), "--distributed", "--num-workers", "1", "--redis-url", redis_server.url,
                    "--engine", "sim", "-o", "out", "--worker-timeout", "60"]  # fmt: skip
            first = run_cli([*args, "--keep-work"], tmp_path, timeout=240, **env)
            assert first.returncode == 0, first.stderr + first.stdout + worker.text()[-3000:]
            text = first.stdout + first.stderr
            m = SUMMARY.search(text)
            assert m and int(m.group(1)) > 0 and m.group(2) == "0", text
            synthesised = int(m.group(1))
            session = re.search(r"session (\S+):", text)
            assert session, text
            sid = session.group(1)

            # The chunk audio is in the bucket (one object a sentence), not on a local disk.
            keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
            chunks = [k for k in keys if k.startswith(f"{sid}/chunks/") and k.endswith(".flac")]
            assert len(chunks) == synthesised, keys
            assert [k for k in keys if k.startswith(f"{sid}/plans/") and k.endswith(".json")], keys
            assert not no_dir.exists()
            assert list((tmp_path / "cache").rglob("*.flac")) == []
            outputs = list((tmp_path / "out").glob("*.m4b"))
            assert len(outputs) == 1 and outputs[0].stat().st_size > 10_000

            # Rerun: everything is resumed from S3, then the session's objects are cleaned up.
            outputs[0].unlink()
            second = run_cli(args, tmp_path, timeout=240, **env)
            assert second.returncode == 0, second.stderr + second.stdout
            m2 = SUMMARY.search(second.stdout + second.stderr)
            assert m2 and m2.groups() == ("0", str(synthesised)), second.stdout + second.stderr
            assert client.list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0
            assert len(list((tmp_path / "out").glob("*.m4b"))) == 1
        finally:
            worker.stop()

        # Flower saw the batches, under their task name, with the session id readable in the args.
        status, body = flower.get("/api/tasks", (FLOWER_USER, FLOWER_PASSWORD))
        assert status == 200
        tasks = json.loads(body)
        ours = [t for t in tasks.values() if t.get("name") == TASK_NAME]
        assert ours, tasks
        assert all(sid in str(t.get("args")) for t in ours), ours[:2]
        assert any(t.get("state") == "SUCCESS" for t in ours)
        assert worker.text().count(s3_server.secret_key) == 0
