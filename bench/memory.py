"""Peak memory on a long book (Moby-Dick), distributed and embedded, whole book against half of it.

The sim engine runs at a fast setting (``--ms-per-char``, default 0.05 ms, ``--speed 4`` so the
audio is a quarter as long, sentence pauses 0) so that the whole book takes minutes. Every process
of each run is sampled every 0.2 s from /proc (VmHWM: the kernel's own peak RSS of the process),
by role: the coordinator (or the embedded main process), its ffmpeg encoders, its pool processes,
and each worker's main and pool processes. The coordinator also runs under GNU time
(``/usr/bin/time -v``, package ``time``), whose "Maximum resident set size" is the largest process of
its tree: a cross-check that does not depend on sampling.

Memory must not grow with the book: each mode runs on the first half of the chapters and on the
whole book, and the table gives both.

    .venv/bin/python bench/memory.py --quick   # chapters 3-22 vs 3-41 (~2.5 min)
    .venv/bin/python bench/memory.py           # chapters 1-69 vs the whole book (~15 min)
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _cluster
import _common as c

MOBY = c.CORPUS / "epub3_moby-dick_melville_en.epub"
GNU_TIME = "/usr/bin/time"


def classify(pid: int, cmdline: list[str], depth: int) -> str:
    exe = Path(cmdline[0]).name if cmdline else ""
    if exe == "time":
        return "time"
    if "ffmpeg" in exe:
        return "ffmpeg"
    if depth <= 1 and any("ebook2audio" in a for a in cmdline):
        return "main"
    return "pool"


SIM_FLAGS = ["--speed", "4", "--sentence-pause", "0"]


def time_prefix() -> list[str]:
    return [GNU_TIME, "-v"] if Path(GNU_TIME).exists() else []


def max_rss_from_time(stderr_lines: list[str]) -> int:
    for line in stderr_lines:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", line)
        if m:
            return int(m.group(1)) * 1024
    return 0


def distributed_run(label: str, chapters: str, ms: float, workers: int, tmp: Path) -> dict[str, float | str]:
    redis = _cluster.Redis(tmp)
    storage = Path(tempfile.mkdtemp(prefix="shared-", dir=tmp))
    logs = Path(tempfile.mkdtemp(prefix="logs-", dir=tmp))
    out = Path(tempfile.mkdtemp(prefix="out-", dir=tmp))
    cluster = _cluster.Cluster(redis, storage, logs)
    samplers: list[c.TreeSampler] = []
    try:
        cluster.start([ms] * workers)
        cluster.wait_ready()
        samplers = [
            c.TreeSampler(w.proc.pid, lambda pid, cmd, d: "worker main" if d == 0 else "worker pool").start()
            for w in cluster.workers
        ]
        extra = [*SIM_FLAGS, "--chapters", chapters] if chapters else SIM_FLAGS
        run = _cluster.run_coordinator(
            MOBY, redis.url, storage, out, workers, extra=extra, classify=classify, prefix=time_prefix()
        )
    finally:
        for s in samplers:
            s.stop()
        cluster.stop()
        redis.close()
        shutil.rmtree(storage, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    peaks: dict[str, int] = {}
    for s in samplers:
        for role, v in s.peak_by_role().items():
            peaks[role] = max(peaks.get(role, 0), v)
    return _row(label, "distributed", run, peaks)


def embedded_run(label: str, chapters: str, ms: float, workers: int, tmp: Path) -> dict[str, float | str]:
    work = Path(tempfile.mkdtemp(prefix="work-", dir=tmp))
    out = Path(tempfile.mkdtemp(prefix="out-", dir=tmp))
    cmd = [*time_prefix(), *c.CLI, "convert", str(MOBY), "--engine", "sim", "-q", *SIM_FLAGS]
    cmd += ["-o", str(out), "--work-dir", str(work), "-w", str(workers)]
    if chapters:
        cmd += ["--chapters", chapters]
    env = c.bench_env(EBOOK2AUDIO_SIM_MS_PER_CHAR=f"{ms:g}")
    t = c.run_timed(cmd, env=env, classify=classify)
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    run = _cluster.CoordinatorRun(
        wall=t.wall,
        cpu=t.cpu,
        lines=[(0.0, x) for x in t.stderr.splitlines()],
        peaks=t.peaks,
        others=t.others,
    )
    return _row(label, "embedded", run, {})


def _row(
    label: str, mode: str, run: _cluster.CoordinatorRun, worker_peaks: dict[str, int]
) -> dict[str, float | str]:
    done = next((x for _, x in run.lines if x.startswith("done:")), "")
    m = re.search(r"done: (\d+):(\d\d):(\d\d) of audio, (\d+) chapters, (\d+) sentences", done)
    audio_h = (int(m.group(1)) + int(m.group(2)) / 60) if m else float("nan")
    row: dict[str, float | str] = {
        "label": label,
        "mode": mode,
        "chapters": int(m.group(4)) if m else 0,
        "sentences": int(m.group(5)) if m else 0,
        "audio_h": audio_h,
        "wall": run.wall,
        "main": c.mib(run.peaks.get("main", 0)),
        "pool": c.mib(run.peaks.get("pool", 0)),
        "ffmpeg": c.mib(run.peaks.get("ffmpeg", 0)),
        "gnu_time": c.mib(max_rss_from_time([x for _, x in run.lines])),
        "worker_main": c.mib(worker_peaks.get("worker main", 0)),
        "worker_pool": c.mib(worker_peaks.get("worker pool", 0)),
        "others": run.others,
    }
    print(
        f"{label}: {row['sentences']} sentences, {audio_h:.1f} h of audio, {run.wall:.0f} s; peak RSS MiB: "
        f"main {row['main']:.0f}, pool {row['pool']:.0f}, ffmpeg {row['ffmpeg']:.0f}, GNU time {row['gnu_time']:.0f}, "
        f"worker main {row['worker_main']:.0f}, worker pool {row['worker_pool']:.0f}",
        flush=True,
    )
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="20 vs 39 chapters (~2.5 min)")
    p.add_argument("--ms-per-char", type=float, default=0.05, help="sim engine cost (default 0.05)")
    p.add_argument("--workers", type=int, default=2, help="workers / processes (default 2)")
    p.add_argument("--no-write", action="store_true", help="print the table, do not touch BENCHMARKS.md")
    args = p.parse_args()
    started = time.time()
    half, whole = ("3-22", "3-41") if args.quick else ("1-69", "")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmpdir:
        tmp = Path(tmpdir)
        for label, sel in (
            (f"chapters {half}", half),
            (f"chapters {whole}" if whole else "whole book", whole),
        ):
            rows.append(distributed_run(label, sel, args.ms_per_char, args.workers, tmp))
            rows.append(embedded_run(label, sel, args.ms_per_char, args.workers, tmp))
    table = [
        [
            r["mode"],
            r["label"],
            r["sentences"],
            f"{r['audio_h']:.1f}",
            f"{r['wall']:.0f}",
            f"{r['main']:.0f}",
            f"{r['ffmpeg']:.0f}",
            f"{r['pool']:.0f}" if r["mode"] == "embedded" else "-",
            f"{r['worker_main']:.0f} / {r['worker_pool']:.0f}" if r["mode"] == "distributed" else "-",
            f"{r['gnu_time']:.0f}",
            f"{r['others']:.2f}",
        ]
        for r in rows
    ]
    coord = [r for r in rows if r["mode"] == "distributed"]
    biggest = max(float(r["main"]) for r in coord)
    growth = {}
    for mode in ("distributed", "embedded"):
        mine = [float(r["main"]) for r in rows if r["mode"] == mode]
        growth[mode] = mine[-1] - mine[0]
    lines = c.header(
        f"Memory, Moby-Dick {'(quick)' if args.quick else '(full)'}",
        started,
        [
            f"`{MOBY.name}`; sim engine at {args.ms_per_char:g} ms/char, `--speed 4 --sentence-pause 0`, m4b output; "
            f"{args.workers} workers (distributed: real Redis, `ebook2audio worker` processes) or `-w {args.workers}` (embedded)",
            "peak RSS in MiB per process (VmHWM sampled every 0.2 s), the largest of each role; "
            "main = the coordinator (distributed) or the embedded process; GNU time = `/usr/bin/time -v` "
            "maximum resident set size of the largest process in the coordinator's tree",
        ],
    )
    lines += c.table(
        [
            "mode",
            "book",
            "sentences",
            "audio h",
            "wall s",
            "main MiB",
            "ffmpeg MiB",
            "pool process MiB",
            "worker main / pool MiB",
            "GNU time MiB",
            "other jobs' cores",
        ],
        table,
    )
    lines += c.table(
        ["measure", "value", "target", "met"],
        [
            [
                "coordinator peak RSS, largest run",
                f"{biggest:.0f} MiB",
                "<= 300 MB",
                _yes(biggest * 1.048576 <= 300),
            ],
            [
                "coordinator growth, half -> whole",
                f"{growth['distributed']:+.0f} MiB",
                "none with the book's length",
                "",
            ],
            [
                "embedded main growth, half -> whole",
                f"{growth['embedded']:+.0f} MiB",
                "none with the book's length",
                "",
            ],
        ],
    )
    print("\n".join(lines))
    if not args.no_write:
        c.write_section("memory-quick" if args.quick else "memory", lines)


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


if __name__ == "__main__":
    main()
