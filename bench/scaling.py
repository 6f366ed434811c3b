"""Distributed scaling: 1 / 2 / 4 / 8 real workers on a real Redis, the sim engine, end to end.

The book is generated (bench/bookgen.py): 12 chapters of 20 to 400 sentences, 2,000 in all. The sim
engine sleeps ``--ms-per-char`` per character without using the CPU (like a GPU), so 8 workers
overlap even on 2 cores. Workers are started first and must all answer a ping; then the coordinator
(``ebook2audio convert BOOK --distributed --num-workers N ...``, m4b output) is timed from its start
to its exit: ingest, plan, dispatch, synthesis, assembly.

- ideal synthesis = total characters x ms per character / N (for a mixed cluster: / the sum of the
  workers' speeds): the time of the sleeps alone, perfectly shared;
- non-synthesis share = 1 - ideal / wall: everything else (start-up, planning, dispatch, polling,
  storage, imbalance at the end, assembly);
- phases, from the coordinator's own messages: start (ingest + plan, up to "synthesising"), workers
  (ping + dispatch, up to "connected"), synthesis (up to "assembling"), assembly (to the exit).

Runs: sentence batches (default ``--batch-chars 1200``) at each N; chapter granularity
(``--granularity chapter``, one task per chapter) at the largest N; and a mixed cluster at the
largest N where one worker is twice as slow (its EBOOK2AUDIO_SIM_MS_PER_CHAR doubled).

    .venv/bin/python bench/scaling.py --quick    # 200 sentences, 2 ms/char (~3 min)
    .venv/bin/python bench/scaling.py            # 2,000 sentences, 10 ms/char (~55 min)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _cluster
import _common as c
import bookgen


@dataclass
class Result:
    label: str
    workers: int
    speeds: list[float]  # ms per char of each worker
    granularity: str
    wall: float
    ideal: float
    start: float
    dispatch: float
    synthesis: float
    assembly: float
    tasks: list[int]
    coord_cpu: float
    cluster_cpu: float
    others: float
    in_tasks: float  # mean seconds a worker spent inside tasks
    end_spread: float  # seconds between the first and the last worker's last task end


def plan_stats(book: Path, granularity: str, batch_chars: int, parallel: int = 1) -> tuple[int, int, int]:
    """(characters the sim engine will sleep on, chunks, batches) for ``book``."""
    from ebook2audio.config import Settings
    from ebook2audio.ingest import read_book
    from ebook2audio.pipeline import plan_options, resolve
    from ebook2audio.plan import make_plan

    settings = Settings(engine="sim", granularity=granularity, batch_chars=batch_chars)
    b = read_book(book)
    spec, info = resolve(b, settings)
    plan = make_plan(b, info, spec, "stats", plan_options(settings, parallel))
    return sum(len(ch.text) for ch in plan.chunks), len(plan.chunks), len(plan.batches)


def one_run(
    label: str,
    book: Path,
    redis: _cluster.Redis,
    cluster: _cluster.Cluster,
    tmp: Path,
    granularity: str,
    batch_chars: int,
    chars: int,
    quiet: float,
) -> Result:
    redis.flush()
    out = Path(tempfile.mkdtemp(prefix="out-", dir=tmp))
    speeds = [w.ms_per_char for w in cluster.workers]
    before = [w.tasks_done() for w in cluster.workers]
    logs_before = [len(w.task_log()) for w in cluster.workers]
    c.wait_quiet(quiet)
    run = _cluster.run_coordinator(
        book,
        redis.url,
        cluster.storage,
        out,
        len(cluster.workers),
        extra=["--granularity", granularity, "--batch-chars", str(batch_chars)],
        cluster=cluster,
    )
    time.sleep(0.5)  # let the workers' last log lines land
    tasks = [w.tasks_done() - b for w, b in zip(cluster.workers, before, strict=True)]
    done = [w.task_log()[n:] for w, n in zip(cluster.workers, logs_before, strict=True)]
    ends = [max(t for t, _ in d) for d in done if d]
    in_tasks = sum(s for d in done for _, s in d) / max(1, len(done))
    m_synth = run.mark("synthesising") or 0.0
    m_conn = run.mark("connected") or m_synth
    m_asm = run.mark("assembling") or run.wall
    capacity = sum(1.0 / ms for ms in speeds)
    res = Result(
        label=label,
        workers=len(speeds),
        speeds=speeds,
        granularity=granularity,
        wall=run.wall,
        ideal=chars / capacity / 1000.0,
        start=m_synth,
        dispatch=m_conn - m_synth,
        synthesis=m_asm - m_conn,
        assembly=run.wall - m_asm,
        tasks=tasks,
        coord_cpu=run.cpu,
        cluster_cpu=run.cluster_cpu,
        others=run.others,
        in_tasks=in_tasks,
        end_spread=max(ends) - min(ends) if ends else 0.0,
    )
    print(
        f"{label}: {res.wall:.1f} s (ideal {res.ideal:.1f} s; start {res.start:.1f}, workers {res.dispatch:.1f}, "
        f"synthesis {res.synthesis:.1f}, assembly {res.assembly:.1f}); tasks {tasks}; "
        f"coordinator CPU {run.cpu:.1f} s; other jobs {run.others:.2f} cores",
        flush=True,
    )
    for f in out.iterdir():
        f.unlink()
    for d in sorted(cluster.storage.rglob("*"), reverse=True):  # the next run starts from nothing
        if d.is_file():
            d.unlink()
        else:
            d.rmdir()
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a tenth of the book at 2 ms/char (~3 min)")
    p.add_argument("--ms-per-char", type=float, help="sim engine cost (default: 2 quick, 10 full)")
    p.add_argument("--scale", type=float, help="book size factor (default: 0.1 quick, 1 full)")
    p.add_argument("--workers", default="1,2,4,8", help="worker counts (default 1,2,4,8)")
    p.add_argument("--batch-chars", type=int, default=1200)
    p.add_argument(
        "--wait-quiet", type=float, help="wait up to S s for other jobs to go quiet before each run"
    )
    p.add_argument("--no-write", action="store_true", help="print the table, do not touch BENCHMARKS.md")
    args = p.parse_args()
    started = time.time()
    ms = args.ms_per_char or (2.0 if args.quick else 10.0)
    scale = args.scale or (0.1 if args.quick else 1.0)
    counts = [int(x) for x in args.workers.split(",")]
    quiet = args.wait_quiet if args.wait_quiet is not None else (3.0 if args.quick else 30.0)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmpdir:
        tmp = Path(tmpdir)
        book = tmp / "scaling-book.txt"
        sentences = bookgen.generate(book, scale)
        chars, chunks, batches = plan_stats(book, "sentence", args.batch_chars)
        _, _, chapter_tasks = plan_stats(book, "chapter", args.batch_chars)
        split_counts = {n: plan_stats(book, "sentence", args.batch_chars, n)[2] for n in counts}
        print(
            f"book: {sentences} sentences, {chunks} chunks, {chars} characters, {batches} batches", flush=True
        )
        redis = _cluster.Redis(tmp)
        storage = tmp / "shared"
        storage.mkdir()
        logs = tmp / "logs"
        logs.mkdir()
        cluster = _cluster.Cluster(redis, storage, logs)

        def run(label: str, granularity: str) -> None:
            results.append(
                one_run(label, book, redis, cluster, tmp, granularity, args.batch_chars, chars, quiet)
            )

        try:
            for n in counts:
                cluster.start([ms] * (n - len(cluster.workers)))
                ready = cluster.wait_ready()
                print(f"{n} workers ready ({ready:.1f} s)", flush=True)
                run(f"{n} workers", "sentence")
            n = len(cluster.workers)
            run(f"{n} workers, chapters", "chapter")
            cluster.stop_worker(cluster.workers[-1].name)
            cluster.start([2 * ms])
            cluster.wait_ready()
            run(f"{n} workers, one 2x slower", "sentence")
            run(f"{n} workers, one 2x slower, chapters", "chapter")
        finally:
            cluster.stop()
            redis.close()

    base = next(
        r for r in results if r.workers == 1 and r.granularity == "sentence" and len(set(r.speeds)) == 1
    )
    rows = []
    for r in results:
        capacity = sum(min(r.speeds) / s for s in r.speeds)
        speedup = base.wall / r.wall
        rows.append(
            [
                r.label,
                r.granularity,
                r.wall,
                r.ideal,
                f"{speedup:.2f}x",
                f"{speedup / capacity:.1%}",
                f"{1 - r.ideal / r.wall:.1%}",
                f"{r.start:.1f} / {r.dispatch:.1f} / {r.synthesis:.1f} / {r.assembly:.1f}",
                ", ".join(map(str, r.tasks)),
                f"{r.in_tasks:.1f}",
                f"{r.end_spread:.2f}",
                f"{r.coord_cpu:.1f} / {r.cluster_cpu:.1f}",
                f"{r.others:.2f}",
            ]
        )
    targets = {2: 1.98, 4: 3.94, 8: 7.8}
    checks = []
    for r in results:
        if r.granularity == "sentence" and len(set(r.speeds)) == 1 and r.workers in targets:
            s = base.wall / r.wall
            checks.append(
                [
                    f"speed-up at {r.workers} workers",
                    f"{s:.2f}x",
                    f">= {targets[r.workers]}x",
                    _yes(s >= targets[r.workers]),
                ]
            )
    top = max(
        (r for r in results if r.granularity == "sentence" and len(set(r.speeds)) == 1),
        key=lambda r: r.workers,
    )
    share = 1 - top.ideal / top.wall
    checks.append(
        [f"non-synthesis share at {top.workers} workers", f"{share:.1%}", "<= 2 %", _yes(share <= 0.02)]
    )
    lines = c.header(
        f"Distributed scaling, sim engine {'(quick)' if args.quick else '(full)'}",
        started,
        [
            f"book: generated, 12 chapters of {min(bookgen.scaled_sizes(scale))} to {max(bookgen.scaled_sizes(scale))} "
            f"sentences ({sentences} in all; {chunks} chunks with the titles, {chars} characters); "
            f"{batches} sentence batches of <= {args.batch_chars} characters, the last ones split for N workers "
            f"({', '.join(f'{n}: {k}' for n, k in split_counts.items())}), "
            f"or {chapter_tasks} chapter tasks",
            f"sim engine: {ms:g} ms per character (sleeps, no CPU); real redis-server on localhost; real "
            "`ebook2audio worker` processes (concurrency 1), shared storage: a local directory; output m4b",
            "phases (s): start (ingest + plan) / workers (ping + dispatch) / synthesis / assembly; "
            "efficiency = speed-up / (workers, weighted by speed); other jobs: cores used outside this benchmark",
        ],
    )
    lines += c.table(
        [
            "run",
            "tasks",
            "wall s",
            "ideal synthesis s",
            "speed-up",
            "efficiency",
            "non-synthesis share",
            "phases s",
            "tasks per worker",
            "in tasks s (mean per worker)",
            "last-task end spread s",
            "CPU s: coordinator (+ffmpeg) / workers + Redis",
            "other jobs' cores",
        ],
        rows,
    )
    lines += c.table(["measure", "value", "target", "met"], checks)
    print("\n".join(lines))
    if not args.no_write:
        c.write_section("scaling-quick" if args.quick else "scaling", lines)


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


if __name__ == "__main__":
    main()
