"""`ebook2audio serve --distributed`: the web queue feeds a real Celery worker through a real Redis,
two books at once (the second book's batches wait in the cluster's queue while the first runs)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.web.helpers import running_server, tiny_text_book

from .conftest import RedisServer
from .helpers import Worker

pytestmark = pytest.mark.slow

SIM = {"EBOOK2AUDIO_SIM_MS_PER_CHAR": "8"}


def test_web_queue_on_the_cluster(redis_server: RedisServer, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    books = [tiny_text_book(tmp_path / f"book{n}.md", f"Book {n}", 2, 2) for n in (1, 2)]
    worker = Worker(tmp_path, "w1", redis_server.url, shared, "--concurrency", "2", **SIM)
    try:
        worker.wait_ready()
        with running_server(
            tmp_path, "--distributed", "--redis-url", redis_server.url, "--storage-path", str(shared),
            "--num-workers", "1", "--worker-timeout", "60", **SIM,
        ) as server, server.client() as c:  # fmt: skip
            assert c.get("/api/health").json()["distributed"] is True
            assert [w.split("@")[0] for w in c.get("/api/workers").json()["workers"]] == ["w1"]
            ids = []
            for book in books:
                with book.open("rb") as fh:
                    added = c.post("/api/books", files={"files": (book.name, fh, "text/markdown")}).json()
                ids.append(c.post("/api/jobs", json={"book_id": added["books"][0]["id"], "engine": "sim"}).json()["id"])
            together = False
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                jobs = c.get("/api/jobs").json()["jobs"]
                together = together or sum(j["state"] == "running" and j["sentences_total"] > 0 for j in jobs) == 2
                if all(j["state"] in ("done", "failed") for j in jobs):
                    break
                time.sleep(0.1)
            assert [j["state"] for j in jobs] == ["done", "done"], [j["error"] for j in jobs]
            assert together, "the two books never ran at the same time"
            for job in jobs:
                assert job["sentences_done"] == job["sentences_total"] >= 6
                titles = [ch["title"] for ch in job["chapters"]]
                assert len(titles) == 2 and titles[0].endswith("Chapter 1") and titles[1] == "Chapter 2", titles
            # The cluster did the work: the worker ran the batches of both books (task ids begin with
            # the book's session).
            sessions = set(re.findall(r"synthesize_batch\[([0-9a-f]{16})\.\S+\] succeeded", worker.text()))
            assert len(sessions) == 2, worker.text()[-3000:]
            # The Redis password reached no command line and no log of the server.
            ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            assert redis_server.password not in ps
            assert redis_server.password not in server.log.read_text()
    finally:
        worker.stop()
