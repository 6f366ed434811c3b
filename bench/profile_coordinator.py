"""Profile the distributed coordinator with py-spy during one scaling run (where its time goes).

Starts Redis and N real ``ebook2audio worker`` processes on the generated scaling book (the sim
engine sleeps, so the workers overlap on 2 cores), runs the coordinator under
``py-spy record --subprocesses`` and prints the functions that hold the most samples (own time and
time including callees), split into the coordinator's threads. The raw profile (speedscope JSON) is
written next to BENCHMARKS.md's section as ``--out`` if given.

    .venv/bin/python bench/profile_coordinator.py --workers 8 --scale 0.3 --ms-per-char 5

py-spy samples wall-clock stacks with ``--idle`` off: a thread that waits (sleep, select, a lock)
is not counted, so the totals are the CPU the coordinator spends, and where.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import tempfile
from pathlib import Path

import _cluster
import bookgen


def summarise(profile: Path, top: int) -> list[str]:
    """Own / total sample counts per function from a speedscope profile (all its threads)."""
    data = json.loads(profile.read_text())
    frames = data["shared"]["frames"]
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    samples = 0
    for prof in data["profiles"]:
        name = prof.get("name", "?")
        for stack, weight in zip(prof["samples"], prof["weights"], strict=True):
            if not stack:
                continue
            samples += weight
            threads[name] += weight
            labels = [
                f"{frames[i]['name']} ({Path(frames[i].get('file', '?')).name}:{frames[i].get('line', 0)})"
                for i in stack
            ]
            own[labels[-1]] += weight
            for label in set(labels):
                total[label] += weight
    out = [f"samples: {samples}"]
    out += [f"  thread {n}: {w} ({w / samples:.0%})" for n, w in threads.most_common(12)]
    out.append("own time:")
    out += [f"  {w / samples:6.1%}  {label}" for label, w in own.most_common(top)]
    out.append("total time (with callees):")
    out += [f"  {w / samples:6.1%}  {label}" for label, w in total.most_common(top)]
    return out


def _busy(log: Path) -> tuple[int, float, str, str]:
    """(tasks, seconds inside them, first start, last end) from a worker's Celery log."""
    import re

    text = log.read_text(encoding="utf-8", errors="replace")
    times = [float(x) for x in re.findall(r"succeeded in ([0-9.]+)s", text)]
    stamps = re.findall(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+).*?(received|succeeded)", text)
    received = [t for t, kind in stamps if kind == "received"]
    ended = [t for t, kind in stamps if kind == "succeeded"]
    return len(times), sum(times), received[0] if received else "-", ended[-1] if ended else "-"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--scale", type=float, default=0.3, help="book size factor (1 = 2,000 sentences)")
    p.add_argument("--ms-per-char", type=float, default=5.0)
    p.add_argument("--batch-chars", type=int, default=1200)
    p.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--out", type=Path, help="keep the speedscope profile here")
    p.add_argument("--idle", action="store_true", help="count waiting threads too (wall-clock profile)")
    args = p.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmpdir:
        tmp = Path(tmpdir)
        book = tmp / "scaling-book.txt"
        bookgen.generate(book, args.scale)
        redis = _cluster.Redis(tmp)
        storage = tmp / "shared"
        storage.mkdir()
        logs = tmp / "logs"
        logs.mkdir()
        out = tmp / "out"
        cluster = _cluster.Cluster(redis, storage, logs)
        profile = tmp / "profile.json"
        try:
            cluster.start([args.ms_per_char] * args.workers)
            cluster.wait_ready()
            prefix = [spy, "record", "--format", "speedscope", "-o", str(profile), "--rate", str(args.rate)]
            prefix += [
                "--subprocesses",
                "--threads",
                "--nonblocking",
                *(["--idle"] if args.idle else []),
                "--",
            ]
            run = _cluster.run_coordinator(
                book,
                redis.url,
                storage,
                out,
                args.workers,
                extra=["--batch-chars", str(args.batch_chars)],
                cluster=cluster,
                prefix=prefix,
            )
            busy = {w.name: _busy(w.log) for w in cluster.workers}
        finally:
            cluster.stop()
            redis.close()
        print(
            f"wall {run.wall:.1f} s, coordinator CPU (with py-spy) {run.cpu:.1f} s, workers + Redis {run.cluster_cpu:.1f} s"
        )
        for t, line in run.lines:
            print(f"  {t:7.2f}  {line}")
        for name, (tasks, seconds, first, last) in busy.items():
            print(
                f"  {name}: {tasks} tasks, {seconds:.1f} s inside tasks; first started {first}, last ended {last}"
            )
        print("\n".join(summarise(profile, args.top)))
        if args.out is not None:
            shutil.copy(profile, args.out)


if __name__ == "__main__":
    main()
