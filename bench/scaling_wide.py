"""Distributed scaling from 1 to 64 workers: real Redis, real worker processes, the sleeping sim engine.

On a 2-core machine a strong-scaling run of one book over 1..64 workers would need the 1-worker
point to last about an hour for the fixed costs (start, assembly) to weigh under 8 % at 64 workers.
So every point gets its own generated book (bench/bookgen.py, scaled) holding ``--seconds`` of sim
work per worker: N workers get N times the characters (weak scaling), and every point lasts about
``--seconds``. What is compared:

- ideal = characters x ms per character / N: the sleeps alone, perfectly shared;
- efficiency = ideal / wall. It is a lower bound of speed-up / N on that point's book, since one
  worker cannot do the book faster than its sleeps (N x ideal); the table also gives the efficiency
  against the 1-worker point's own rate (its wall per character), the usual weak-scaling measure;
- non-synthesis share = 1 - ideal / wall.

The per-character rate (``--ms-per-char``, default 750) and the seconds per point (``--seconds``,
default 360) are chosen so that the machine's two cores are not the limit at 64 workers. What limits
is not the average CPU but its rounds: each task costs the workers' processes CPU (measured per point
and printed: the pool process's Python, mastering and FLAC, 14-21 ms; the ffmpeg child that encodes
the batch's AAC piece, 42-53 ms; Celery's main process and Redis, mostly background), about 0.065 CPU
s inside a task of ~68 characters (4.8 s of audio), and N workers fed batches of similar length end
their tasks together, so a round's N x 0.065 CPU s waits for 2 cores: N x 0.065 / 2 s, 2.1 s at 64
workers, whatever the rate. As a share of a task (the "round burst" column: workers x CPU per task /
cores / task seconds; an upper bound, as tasks drift apart) that is 14 % of a 15-s task at 250 ms per
character and 4.1 % (measured) at 750 ms (45-s tasks), where the average demand (workers x CPU per
task / task seconds) is 0.08 cores of 2. (The 250-ms run of 2026-12-05 16:18 lost 13 % at 64 workers;
bench/model.py, fed the CPU per task measured since, puts 2 points of it on these rounds: the rest
was not measured by process then, see BENCHMARKS.md.) The batches stay about 8 per worker (60
characters, as at 250 ms), so that the last round's spread stays small; 360 s per point keeps the
full run under an hour. Each row gives, as evidence, the per-task CPU by process, the demand, the
cores this benchmark's processes used (coordinator tree, workers + Redis), the other jobs' cores and
the machine's idle share during the run.

Workers are added between points (started in parallel), and all must answer a ping before the
point is timed. Each row also gives the workers' total RSS and the machine's available memory.
Results also go to bench/results/scaling_wide.json (read by bench/model.py).

    .venv/bin/python bench/scaling_wide.py --quick   # 1/2/4/8 workers, 10 s a point, 20 ms/char (~3 min)
    .venv/bin/python bench/scaling_wide.py           # 1..64 workers, 360 s a point (~50 min)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _cluster
import _common as c
import bookgen

RESULTS = Path(__file__).resolve().parent / "results"
FULL_SCALE_CHARS = 137375  # characters the sim engine sleeps on in the scaling book at scale 1
TARGETS = {8: 0.97, 32: 0.95, 64: 0.92}
IDLE_WINDOW = 4.0  # seconds the idle cluster's CPU is measured before each point


@dataclass
class Point:
    workers: int
    sentences: int
    chunks: int
    batches: int
    chars: int
    ms_per_char: float
    ideal: float
    wall: float
    start: float
    dispatch: float
    synthesis: float
    assembly: float
    audio_hours: float
    tasks: list[int]
    in_tasks: float  # mean seconds a worker spent inside tasks
    end_spread: float
    coord_cpu: float
    cluster_cpu: float
    others: float
    idle: float  # the machine's idle share of its cores during the run
    workers_rss_mib: float
    available_gib: float
    ready_s: float
    measured_at: str = ""  # when the point was measured (UTC): a resumed run adds points later
    scale: float = 0.0
    own_cpu: float = 0.0  # the coordinator's own process (Python); the rest of coord_cpu is ffmpeg
    redis_cpu: float = 0.0
    batch_list: list[list[int]] = field(default_factory=list)  # [characters, chunks] in dispatch order
    # CPU seconds during the run by role (bench/_cluster.py Cluster.cpu_split): worker main processes,
    # pool processes' own, their reaped children (ffmpeg encoding pieces), redis-server
    split: dict[str, float] = field(default_factory=dict)
    # the same roles' CPU per second while the cluster idles (measured just before the run)
    idle_split: dict[str, float] = field(default_factory=dict)

    def task_cpu(self) -> dict[str, float]:
        """CPU seconds per task by role: the run's CPU less what the idle cluster would have used."""
        n = max(1, sum(self.tasks))
        return {k: max(0.0, v - self.idle_split.get(k, 0.0) * self.wall) / n for k, v in self.split.items()}

    def task_seconds(self) -> float:
        """The mean sleep of one task (its batch's characters x ms per character)."""
        return self.ideal * self.workers / max(1, self.batches)

    def cpu_demand(self) -> tuple[float, float]:
        """(cores the tasks' CPU needs on average: workers x CPU per task / task seconds; the share of
        a task that a round of ``workers`` tasks ending together needs to get its CPU from the
        machine's cores: workers x CPU per task / cores / task seconds). CPU per task: the pool
        process's and its ffmpeg's, spent inside the task; Celery's main processes and Redis spend
        theirs mostly in the background (heartbeats, polling: the workers + Redis cores column)."""
        t = self.task_cpu()
        cpu = t["pool"] + t["children"]
        t = self.task_seconds()
        return self.workers * cpu / t, self.workers * cpu / c.cores() / t


def plan_batches(book: Path, batch_chars: int, parallel: int) -> tuple[int, int, list[list[int]]]:
    """(characters the sim engine sleeps on, chunks, [[characters, chunks] of each batch in dispatch order])."""
    from ebook2audio.config import Settings
    from ebook2audio.ingest import read_book
    from ebook2audio.pipeline import plan_options, resolve
    from ebook2audio.plan import dispatch_order, make_plan

    settings = Settings(engine="sim", granularity="sentence", batch_chars=batch_chars)
    b = read_book(book)
    spec, info = resolve(b, settings)
    plan = make_plan(b, info, spec, "stats", plan_options(settings, parallel))
    size = {ch.id: len(ch.text) for ch in plan.chunks}
    batches = [[sum(size[i] for i in x.chunk_ids), len(x.chunk_ids)] for x in dispatch_order(plan.batches)]
    return sum(size.values()), len(plan.chunks), batches


def book_sizes(scale: float) -> tuple[int, ...]:
    """Chapter sizes of the scaling book at ``scale``; a small book keeps fewer chapters (at least
    4 sentences each) instead of 12 chapters of 2, so that it stays near the size asked."""
    want = max(4, round(sum(bookgen.CHAPTER_SIZES) * scale))
    sizes = bookgen.scaled_sizes(scale)
    if sum(sizes) <= want * 1.05:
        return sizes
    k = max(1, min(len(bookgen.CHAPTER_SIZES), want // 8))
    first = bookgen.CHAPTER_SIZES[:k]
    out = [max(4, round(n * want / sum(first))) for n in first]
    return tuple(out)


def machine_idle() -> tuple[float, float]:
    import psutil

    t = psutil.cpu_times()
    return t.idle + getattr(t, "iowait", 0.0), time.monotonic()


def tree_rss(pids: list[int]) -> int:
    import psutil

    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            continue
    return total


def one_point(
    n: int,
    tmp: Path,
    redis: _cluster.Redis,
    cluster: _cluster.Cluster,
    ms: float,
    seconds: float,
    batch_chars: int,
    ready: float,
) -> Point:
    import psutil

    from ebook2audio.audio.ffmpeg import probe

    book = tmp / f"book-{n}.txt"
    scale = n * seconds / (ms / 1000.0) / FULL_SCALE_CHARS
    sizes = book_sizes(scale)
    book.write_text(bookgen.book_text(sizes), encoding="utf-8")
    sentences = sum(sizes)
    chars, chunks, batch_list = plan_batches(book, batch_chars, n)
    batches = len(batch_list)
    redis.flush()
    out = Path(tempfile.mkdtemp(prefix="out-", dir=tmp))
    before = [w.tasks_done() for w in cluster.workers]
    logs_before = [len(w.task_log()) for w in cluster.workers]
    rss = tree_rss(cluster.pids())
    avail = psutil.virtual_memory().available / 2**30
    c.wait_quiet(3.0)
    s0, w0 = cluster.cpu_split(), time.monotonic()
    time.sleep(IDLE_WINDOW)
    s1, w1 = cluster.cpu_split(), time.monotonic()
    idle_split = {k: (s1[k] - s0[k]) / (w1 - w0) for k in s0}
    idle0, t0 = machine_idle()
    run = _cluster.run_coordinator(
        book,
        redis.url,
        cluster.storage,
        out,
        n,
        extra=["--batch-chars", str(batch_chars)],
        cluster=cluster,
    )
    idle1, t1 = machine_idle()
    time.sleep(0.5)
    s2 = cluster.cpu_split()
    tasks = [w.tasks_done() - b for w, b in zip(cluster.workers, before, strict=True)]
    done = [w.task_log()[k:] for w, k in zip(cluster.workers, logs_before, strict=True)]
    ends = [max(t for t, _ in d) for d in done if d]
    m_synth = run.mark("synthesising") or 0.0
    m_conn = run.mark("connected") or m_synth
    m_asm = run.mark("assembling") or run.wall
    hours = probe(next(out.glob("*.m4b"))).duration / 3600.0
    shutil.rmtree(out)
    for d in sorted(cluster.storage.rglob("*"), reverse=True):
        # the workers' purge task may be removing the finished session's folder (.trash) meanwhile
        with contextlib.suppress(FileNotFoundError):
            d.unlink() if d.is_file() else d.rmdir()
    p = Point(
        workers=n,
        sentences=sentences,
        chunks=chunks,
        batches=batches,
        chars=chars,
        ms_per_char=ms,
        ideal=chars * ms / 1000.0 / n,
        wall=run.wall,
        start=m_synth,
        dispatch=m_conn - m_synth,
        synthesis=m_asm - m_conn,
        assembly=run.wall - m_asm,
        audio_hours=hours,
        tasks=tasks,
        in_tasks=sum(s for d in done for _, s in d) / max(1, len(done)),
        end_spread=max(ends) - min(ends) if ends else 0.0,
        coord_cpu=run.cpu,
        cluster_cpu=run.cluster_cpu,
        others=run.others,
        idle=(idle1 - idle0) / ((t1 - t0) * c.cores()),
        workers_rss_mib=c.mib(rss),
        available_gib=avail,
        ready_s=ready,
        measured_at=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        scale=scale,
        own_cpu=run.own_cpu,
        redis_cpu=run.redis_cpu,
        batch_list=batch_list,
        split={k: s2[k] - s1[k] for k in s1},
        idle_split=idle_split,
    )
    per = p.task_cpu()
    demand, burst = p.cpu_demand()
    print(
        f"{n} workers: {p.wall:.1f} s (ideal {p.ideal:.1f}, efficiency {p.ideal / p.wall:.3f}; start {p.start:.1f}, "
        f"synthesis {p.synthesis:.1f}, assembly {p.assembly:.1f}); {chars} chars, {batches} batches, "
        f"{hours:.3f} h; coordinator {run.cpu / p.wall:.2f} cores, workers+Redis {run.cluster_cpu / p.wall:.2f}, "
        f"others {run.others:.2f}, idle {p.idle:.0%}; workers RSS {p.workers_rss_mib:.0f} MiB",
        flush=True,
    )
    print(
        f"   per task CPU ms: worker main {per['main'] * 1000:.0f}, pool {per['pool'] * 1000:.0f}, "
        f"ffmpeg children {per['children'] * 1000:.0f}, redis {per['redis'] * 1000:.0f}; idle cluster "
        f"{sum(idle_split.values()):.3f} cores; task CPU demand {demand:.3f} cores on average, a round of "
        f"{n} tasks ending together {burst:.1%} of a task on {c.cores()} cores",
        flush=True,
    )
    return p


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1/2/4/8 workers, 10 s a point, 20 ms/char (~3 min)")
    p.add_argument("--workers", help="worker counts (default 1,2,4,8,16,32,64; quick 1,2,4,8)")
    p.add_argument("--ms-per-char", type=float, help="sim engine cost (default 750; quick 20)")
    p.add_argument("--seconds", type=float, help="ideal seconds of sim work per worker and point (default 360; quick 10)")
    p.add_argument("--batch-chars", type=int, help="batch size (default: about 8 batches per worker)")
    p.add_argument("--no-write", action="store_true", help="print the table, do not touch BENCHMARKS.md")
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the saved points (same rate, seconds and batch size) of the worker counts not measured now",
    )
    args = p.parse_args()
    started = time.time()
    ms = args.ms_per_char or (20.0 if args.quick else 750.0)
    seconds = args.seconds or (10.0 if args.quick else 360.0)
    batch_chars = args.batch_chars or max(60, round(seconds / 8 / (ms / 1000.0)))
    counts = [int(x) for x in (args.workers or ("1,2,4,8" if args.quick else "1,2,4,8,16,32,64")).split(",")]
    points: list[Point] = []
    if args.resume:
        points, started = saved_points(args, ms, seconds, batch_chars, counts, started)
    with tempfile.TemporaryDirectory(prefix="bench-wide-") as tmpdir:
        tmp = Path(tmpdir)
        redis = _cluster.Redis(tmp)
        storage = tmp / "shared"
        storage.mkdir()
        logs = tmp / "logs"
        logs.mkdir()
        cluster = _cluster.Cluster(redis, storage, logs)
        try:
            for n in counts:
                cluster.start([ms] * (n - len(cluster.workers)))
                ready = cluster.wait_ready(timeout=900)
                print(f"{n} workers ready ({ready:.1f} s)", flush=True)
                points.append(one_point(n, tmp, redis, cluster, ms, seconds, batch_chars, ready))
                points.sort(key=lambda x: x.workers)
                if not args.no_write:  # after every point: a run cut short keeps what it measured
                    save(points, args, ms, seconds, batch_chars, started)
        finally:
            cluster.stop()
            redis.close()
    lines = report(points, args, ms, seconds, batch_chars, started)
    print("\n".join(lines))


def saved_points(
    args: argparse.Namespace, ms: float, seconds: float, batch_chars: int, counts: list[int], started: float
) -> tuple[list[Point], float]:
    """The saved run's points for worker counts not in ``counts``, and that run's start (--resume)."""
    import calendar

    path = RESULTS / ("scaling_wide-quick.json" if args.quick else "scaling_wide.json")
    data = json.loads(path.read_text())
    if (data["ms_per_char"], data["seconds_per_point"], data["batch_chars"]) != (ms, seconds, batch_chars):
        raise SystemExit(f"{path.name} was measured with other settings: cannot resume it")
    kept = [Point(**p) for p in data["points"] if p["workers"] not in counts]
    when = calendar.timegm(time.strptime(data["date"], "%Y-%m-%d %H:%M UTC"))
    print(f"resuming the run of {data['date']}: keeping {[p.workers for p in kept]} workers", flush=True)
    return kept, float(when)


def save(points: list[Point], args: argparse.Namespace, ms: float, seconds: float, batch_chars: int, started: float) -> None:
    """Write the JSON (for bench/model.py) and the BENCHMARKS.md section of the points so far."""
    lines = report(points, args, ms, seconds, batch_chars, started)
    RESULTS.mkdir(exist_ok=True)
    data = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "machine": c.machine_line(),
        "command": c.command_line(),
        "ms_per_char": ms,
        "seconds_per_point": seconds,
        "batch_chars": batch_chars,
        "points": [asdict(x) for x in points],
    }
    name = "scaling_wide-quick.json" if args.quick else "scaling_wide.json"
    (RESULTS / name).write_text(json.dumps(data, indent=1) + "\n")
    c.write_section("scaling-wide-quick" if args.quick else "scaling-wide", lines)


def report(
    points: list[Point], args: argparse.Namespace, ms: float, seconds: float, batch_chars: int, started: float
) -> list[str]:
    base = next((x for x in points if x.workers == 1), None)
    rows = []
    for x in points:
        eff = x.ideal / x.wall
        rate = (base.wall / base.chars) / (x.wall / x.chars) / x.workers if base else float("nan")
        rows.append(
            [
                x.workers,
                x.chars,
                f"{x.audio_hours:.3f}",
                x.batches,
                x.ideal,
                x.wall,
                f"{eff * x.workers:.2f}x",
                f"{eff:.3f}",
                f"{rate:.3f}",
                f"{1 - eff:.1%}",
                f"{x.start:.1f} / {x.dispatch:.1f} / {x.synthesis:.1f} / {x.assembly:.1f}",
                f"{min(x.tasks)}-{max(x.tasks)}",
                f"{x.end_spread:.2f}",
                f"{x.coord_cpu / x.wall:.2f} / {x.cluster_cpu / x.wall:.2f} / {x.others:.2f}",
                f"{x.idle:.0%}",
                _task_cpu_cell(x),
                _demand_cell(x),
                f"{x.workers_rss_mib:.0f} / {x.available_gib:.1f}",
            ]
        )
    checks = []
    for x in points:
        eff = x.ideal / x.wall
        if x.workers in TARGETS:
            checks.append([f"efficiency at {x.workers} workers", f"{eff:.3f}", f">= {TARGETS[x.workers]}", _yes(eff >= TARGETS[x.workers])])
        if x.workers == 8:
            checks.append(["speed-up at 8 workers", f"{eff * 8:.2f}x", ">= 7.8x", _yes(eff * 8 >= 7.8)])
            checks.append(["non-synthesis share at 8 workers", f"{1 - eff:.1%}", "<= 2 %", _yes(1 - eff <= 0.02)])
    lines = c.header(
        f"Scaling to 64 workers, sim engine {'(quick)' if args.quick else '(full)'}",
        started,
        [
            f"weak scaling: each point's book (generated scaling book, scaled) holds {seconds:g} s of sim work per "
            f"worker at {ms:g} ms per character (sleeps, no CPU); `--batch-chars {batch_chars}`; real redis-server; "
            "real `ebook2audio worker` processes (concurrency 1: a main and one pool process each), "
            "started in parallel and all answering a ping before the point is timed; local shared storage; m4b",
            "efficiency = ideal / wall (a lower bound of speed-up / N: one worker needs at least N x ideal for that "
            "book); vs 1-worker rate = (1-worker wall per character) / (N x this wall per character); "
            "speed-up = N x efficiency",
            "cores: this benchmark's coordinator tree / workers + Redis / other jobs of the machine, averaged over "
            "the run; idle: the machine's idle share of its cores during the run (the evidence that the cores are "
            "not the limit)",
            "phases (s): start (ingest + plan) / workers (ping + dispatch) / synthesis / assembly",
            "CPU per task: each role's CPU during the run (worker main processes: Celery's consumer and events; "
            "pool processes: the task's Python, mastering, FLAC, storage; their reaped children: the ffmpeg that "
            f"encodes the batch's piece; redis-server), less what the idle cluster used ({IDLE_WINDOW:g} s measured "
            "before the point), over the tasks; task CPU demand: workers x CPU per task / task seconds (cores, on "
            "average) and the round burst: workers x CPU per task / cores / task seconds, the share of a task that "
            "a round of tasks ending together waits for the cores",
        ],
    )
    lines += c.table(
        [
            "workers", "characters", "audio h", "batches", "ideal s", "wall s", "speed-up", "efficiency",
            "vs 1-worker rate", "non-synthesis share", "phases s", "tasks per worker", "last-task end spread s",
            "cores: coordinator / workers + Redis / others", "machine idle",
            "CPU ms per task: worker main / pool / ffmpeg / Redis", "task CPU demand: cores / round burst",
            "workers RSS MiB / available GiB",
        ],
        rows,
    )
    lines += c.table(["measure", "value", "target", "met"], checks)
    return lines


def _task_cpu_cell(x: Point) -> str:
    if not x.split:
        return "-"
    t = x.task_cpu()
    return " / ".join(f"{t[k] * 1000:.0f}" for k in ("main", "pool", "children", "redis"))


def _demand_cell(x: Point) -> str:
    if not x.split:
        return "-"
    avg, burst = x.cpu_demand()
    return f"{avg:.2f} / {burst:.1%}"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


if __name__ == "__main__":
    main()
