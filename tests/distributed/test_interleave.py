"""Bounded in-flight dispatch (issue #11): each coordinator keeps only its window of batches in the
shared first-in-first-out queue, so two jobs on one cluster share the workers batch by batch, and a
single job still keeps every worker busy.

Real redis-server, two real `ebook2audio worker` processes (sim engine: a sleep per character), the
real coordinator CLI. What is asserted is read from the workers' task logs (which session's batch
each worker received, in what order), not from wall time.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import RedisServer
from .helpers import Worker, coordinator_args, run_cli, start_cli, write_book

pytestmark = pytest.mark.slow

SIM = {"EBOOK2AUDIO_SIM_MS_PER_CHAR": "5"}
TASK = re.compile(
    r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)[^\]]*\] Task ebook2audio\.synthesize_batch\[([0-9a-zA-Z_-]+)\.[^\]]+\] "
    r"(received|succeeded)"
)
WORKERS = 2  # concurrency 1 each: the auto window is 2 x 2 slots + 2 = 6
WINDOW = 2 * WORKERS + 2


@dataclass
class Cluster:
    redis: RedisServer
    shared: Path
    tmp: Path
    workers: list[Worker]

    def marks(self) -> list[int]:
        return [len(w.text()) for w in self.workers]

    def events(self, since: list[int]) -> list[tuple[float, str, str, str]]:
        """(time, worker, session, received|succeeded) of every task logged after ``since``, in time order."""
        out = []
        for w, start in zip(self.workers, since, strict=True):
            for stamp, session, what in TASK.findall(w.text()[start:]):
                when = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
                out.append((when, w.name, session, what))
        return sorted(out)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("interleave")
    redis = RedisServer(tmp / "redis")
    redis.start()
    shared = tmp / "shared"
    shared.mkdir()
    workers = [Worker(tmp, f"w{n}", redis.url, shared, "--concurrency", "1", **SIM) for n in range(1, WORKERS + 1)]
    try:
        for w in workers:
            w.wait_ready()
        yield Cluster(redis, shared, tmp, workers)
    finally:
        for w in workers:
            w.stop()
        redis.stop()


def _args(c: Cluster, book: Path, out: str, *extra: str) -> list[str]:
    return coordinator_args(
        book, c.redis.url, c.shared, "--engine", "sim", "--num-workers", str(WORKERS),
        "--batch-chars", "90", "-f", "wav", "-o", out, *extra,
    )  # fmt: skip


def _runs(seq: list[str]) -> list[int]:
    """Lengths of the runs of equal items in ``seq``."""
    out: list[int] = []
    for i, x in enumerate(seq):
        if i and x == seq[i - 1]:
            out[-1] += 1
        else:
            out.append(1)
    return out


def test_two_jobs_share_the_workers(cluster: Cluster) -> None:
    tmp = cluster.tmp / "two"
    tmp.mkdir()
    books = [write_book(tmp / "a.txt", chapters=1, paragraphs=8), write_book(tmp / "b.txt", chapters=1, paragraphs=4)]
    since = cluster.marks()
    procs = []
    try:  # two coordinators of one cluster, started 2 s apart (about 24 and 12 one-sentence batches)
        for n, book in enumerate(books):
            if n:
                time.sleep(2.0)
            procs.append(start_cli(_args(cluster, book, f"out-{n}"), tmp))
        errs = [p.communicate(timeout=180)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, err in zip(procs, errs, strict=True):
        assert p.returncode == 0, err[-3000:]
    received = [(w, s) for _, w, s, what in cluster.events(since) if what == "received"]
    order = [s for _, s in received]
    a, b = order[0], next(s for s in order if s != order[0])  # a: the book whose batches came first
    pattern = "".join("A" if s == a else "B" for s in order)
    print("batches received, in order:", pattern)  # shown with -s, and on a failure
    assert set(order) == {a, b}
    n_a = order.count(a)
    assert min(n_a, len(order) - n_a) >= 2 * WINDOW, pattern
    b_first = order.index(b)
    b_last = len(order) - 1 - order[::-1].index(b)
    # The second book started long before the first ended: a third or more of the first book's
    # batches were received by a worker after the second book's first one (a FIFO queue holding the
    # whole first book, as before the window, gives 0).
    assert order[b_first:].count(a) >= n_a // 3, pattern
    # While both ran, they alternated: neither book held the workers for more than about a window's
    # batches in a row, and both workers ran batches of both books.
    span = order[b_first : b_last + 1]
    assert max(_runs(span)) <= WINDOW + WORKERS, pattern
    assert len(_runs(span)) >= 3, pattern
    for w in cluster.workers:
        assert {s for name, s in received if name == w.name} == {a, b}, (w.name, pattern)
    for n in range(len(books)):
        assert list((tmp / f"out-{n}").glob("*.wav")), f"no audiobook in out-{n}"


def test_one_job_keeps_every_worker_busy(cluster: Cluster) -> None:
    tmp = cluster.tmp / "one"
    tmp.mkdir()
    book = write_book(tmp / "c.txt", chapters=1, paragraphs=6)  # ~18 batches: 3 windows
    spans = {}
    for label, extra in (("window", ()), ("no-window", ("--max-in-flight", "100000"))):
        since = cluster.marks()
        r = run_cli(_args(cluster, book, f"out-{label}", "--session", f"one-{label}", *extra), tmp, timeout=180)
        assert r.returncode == 0, r.stderr[-3000:]
        events = cluster.events(since)
        counts = [sum(1 for _, w, _, what in events if w == x.name and what == "succeeded") for x in cluster.workers]
        mean = sum(counts) / len(counts)
        assert sum(counts) >= 3 * WINDOW, counts
        # No worker waited while batches remained: the work is shared evenly.
        assert all(abs(n - mean) <= 1 for n in counts), (label, counts)
        spans[label] = events[-1][0] - events[0][0]  # first batch received -> last one done
    print("first batch received -> last done (s):", spans)
    # The window costs no synthesis time (generous margin: the machine is shared).
    assert spans["window"] <= 1.25 * spans["no-window"] + 1.5, spans
