"""What one distributed conversion costs the coordinator and the storage, per hour of audio.

End to end, distributed, m4b, the sim engine, real Redis and real ``ebook2audio worker`` processes on
this machine, the generated scaling book (bench/bookgen.py). Four runs, each from an empty storage:

1. **cpu**: local storage; the coordinator (``ebook2audio convert --distributed``) timed; its CPU
   seconds are user + system of the process and every descendant it waited for (its ffmpeg
   children), from ``getrusage(RUSAGE_CHILDREN)``; the phases from its own messages.
2. **io**: the same under ``strace -ff -y`` (the coordinator and its children; the workers and their
   pool processes attached): the bytes each side moved through read/write system calls on files
   under the storage folder (read, pread64, readv, sendfile, copy_file_range...). Nothing in the
   product is changed or instrumented; strace only slows this run, whose timing is not used.
   The workers' block-layer ``write_bytes`` (/proc/PID/io) is given beside it.
3. **s3**: the storage is a moto S3 server (``python -m moto.server``, as in the tests); every
   request it serves is one line of its access log: counted from the coordinator's start to its
   exit, split by HTTP method.
4. **ceiling**: local storage, the sim engine at 0 ms per character: the book's hours of audio per
   wall hour with one coordinator (x real time), and the cores its tree used.

Hours of audio = the m4b's duration (PyAV). The results also go to bench/results/coordinator_cost.json
(read by bench/model.py).

    .venv/bin/python bench/coordinator_cost.py --quick   # a tenth of the book (~3 min)
    .venv/bin/python bench/coordinator_cost.py           # the whole book, 2.3 h of audio (~12 min)
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _cluster
import _common as c
import bookgen

RESULTS = Path(__file__).resolve().parent / "results"
BEFORE_CPU_PER_HOUR = 54.0  # BENCHMARKS.md scaling (2026-11-28): ~125 CPU s for 2.3 h at 8 workers
TARGETS = {"cpu": 2.0, "read_mb": 35.0, "written_mb": 120.0, "s3_requests": 2000.0}

_READS = {"read", "pread64", "readv", "preadv", "preadv2"}
_WRITES = {"write", "pwrite64", "writev", "pwritev", "pwritev2"}
_CALL = re.compile(r"^(\w+)\((.*)\)\s+=\s+(-?\d+)")
_FD = re.compile(r"\d+<([^>]*)>")


@dataclass
class IoCount:
    read_storage: int = 0  # bytes read from files under the storage folder
    read_other_files: int = 0  # bytes read from other regular files (modules, temp pieces...)
    written_storage: int = 0
    files_read: set[str] = field(default_factory=set)


def parse_strace(files: list[Path], storage: Path) -> IoCount:
    """Sum the bytes of the read/write system calls on files, from ``strace -ff -y -o`` outputs."""
    root = str(storage.resolve())
    out = IoCount()
    for f in files:
        for line in f.read_text(errors="replace").splitlines():
            m = _CALL.match(line)
            if m is None:
                continue
            name, args, ret = m.group(1), m.group(2), int(m.group(3))
            if ret <= 0:
                continue
            paths = _FD.findall(args)
            src = dst = None
            if name in _READS:
                src = paths[0] if paths else None
            elif name in _WRITES:
                dst = paths[0] if paths else None
            elif name == "sendfile" and len(paths) >= 2:
                dst, src = paths[0], paths[1]
            elif name in ("copy_file_range", "splice") and len(paths) >= 2:
                src, dst = paths[0], paths[1]
            if src is not None and src.startswith("/"):
                if src.startswith(root):
                    out.read_storage += ret
                    out.files_read.add(src)
                else:
                    out.read_other_files += ret
            if dst is not None and dst.startswith(root):
                out.written_storage += ret
    return out


def proc_io(pids: list[int]) -> dict[str, int]:
    """The sum of /proc/PID/io counters over ``pids`` (live processes)."""
    total: collections.Counter[str] = collections.Counter()
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/io").read_text().splitlines():
                k, v = line.split(":")
                total[k] += int(v)
        except (OSError, ValueError):
            continue
    return dict(total)


def batches_of(book: Path, batch_chars: int, workers: int) -> tuple[int, int]:
    """(characters the sim engine sleeps on, batches) of the book's plan for ``workers`` workers."""
    from scaling import plan_stats

    chars, _chunks, batches = plan_stats(book, "sentence", batch_chars, workers)
    return chars, batches


def audio_hours(out: Path) -> float:
    from ebook2audio.audio.ffmpeg import probe

    m4b = next(out.glob("*.m4b"))
    return probe(m4b).duration / 3600.0


def clear(path: Path) -> None:
    for d in sorted(path.rglob("*"), reverse=True):
        if d.is_file() or d.is_symlink():
            d.unlink()
        else:
            d.rmdir()


@dataclass
class Run:
    name: str
    wall: float
    coord_cpu: float
    cluster_cpu: float
    others: float
    hours: float
    phases: dict[str, float]
    tasks: int
    extra: dict[str, float] = field(default_factory=dict)


def phases(run: _cluster.CoordinatorRun) -> dict[str, float]:
    synth = run.mark("synthesising") or 0.0
    conn = run.mark("connected") or synth
    asm = run.mark("assembling") or run.wall
    return {"start": synth, "workers": conn - synth, "synthesis": asm - conn, "assembly": run.wall - asm}


class Bench:
    def __init__(self, tmp: Path, book: Path, workers: int, ms: float, batch_chars: int) -> None:
        self.tmp, self.book, self.workers, self.ms, self.batch_chars = tmp, book, workers, ms, batch_chars
        self.redis = _cluster.Redis(tmp)

    def close(self) -> None:
        self.redis.close()

    def cluster(self, name: str, ms: float, storage_args: list[str] | None = None, env: dict[str, str] | None = None):
        storage = self.tmp / f"storage-{name}"
        storage.mkdir()
        logs = self.tmp / f"logs-{name}"
        logs.mkdir()
        cl = _cluster.Cluster(self.redis, storage, logs, storage_args=storage_args, env=env)
        cl.start([ms] * self.workers)
        cl.wait_ready()
        return cl

    def coordinator(
        self,
        cl: _cluster.Cluster,
        prefix: list[str] | None = None,
        storage_args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> tuple[_cluster.CoordinatorRun, float, int]:
        self.redis.flush()
        out = Path(tempfile.mkdtemp(prefix="out-", dir=self.tmp))
        before = sum(w.tasks_done() for w in cl.workers)
        c.wait_quiet(3.0)
        run = _cluster.run_coordinator(
            self.book,
            self.redis.url,
            cl.storage,
            out,
            len(cl.workers),
            extra=["--batch-chars", str(self.batch_chars)],
            env=c.bench_env(**(env or {})),
            cluster=cl,
            prefix=prefix or (),
            storage_args=storage_args,
        )
        time.sleep(0.5)
        hours = audio_hours(out)
        shutil.rmtree(out)
        return run, hours, sum(w.tasks_done() for w in cl.workers) - before

    def cpu_run(self, name: str, ms: float) -> Run:
        cl = self.cluster(name, ms)
        try:
            io0 = proc_io(cl.pids())
            run, hours, tasks = self.coordinator(cl)
            io1 = proc_io(cl.pids())
        finally:
            cl.stop()
        written = io1.get("write_bytes", 0) - io0.get("write_bytes", 0)
        r = Run(name, run.wall, run.cpu, run.cluster_cpu, run.others, hours, phases(run), tasks)
        r.extra["workers_write_bytes"] = float(written)
        r.extra["coordinator_own_cpu"] = run.own_cpu
        r.extra["redis_cpu"] = run.redis_cpu
        chars, batches = batches_of(self.book, self.batch_chars, self.workers)
        r.extra["chars"] = float(chars)
        r.extra["batches"] = float(batches)
        print(
            f"{name}: {run.wall:.1f} s wall, {hours:.3f} h of audio, coordinator CPU {run.cpu:.1f} s "
            f"({run.cpu / hours:.1f} s/h), workers+Redis CPU {run.cluster_cpu:.1f} s, tasks {tasks}, "
            f"other jobs {run.others:.2f} cores",
            flush=True,
        )
        return r

    def io_run(self) -> Run:
        strace = shutil.which("strace")
        if strace is None:
            raise SystemExit("strace is not installed (apt-get install strace)")
        cl = self.cluster("io", self.ms)
        traces = self.tmp / "strace"
        traces.mkdir()
        calls = "trace=read,pread64,readv,preadv,preadv2,write,pwrite64,writev,pwritev,pwritev2,sendfile,copy_file_range,splice"
        opts = ["-ff", "-y", "-s", "0", "-qq", "-e", calls]
        attach = [strace, *opts, "-o", str(traces / "worker")]
        for pid in cl.pids():
            attach += ["-p", str(pid)]
        tracer = subprocess.Popen(attach, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_traced(cl.pids(), tracer)  # strace attached to every process
        try:
            io0 = proc_io(cl.pids())
            run, hours, tasks = self.coordinator(cl, prefix=[strace, *opts, "-o", str(traces / "coord")])
            io1 = proc_io(cl.pids())
        finally:
            tracer.terminate()
            tracer.wait(30)
            cl.stop()
        coord = parse_strace(sorted(traces.glob("coord.*")), cl.storage)
        work = parse_strace(sorted(traces.glob("worker.*")), cl.storage)
        r = Run("io (under strace)", run.wall, run.cpu, run.cluster_cpu, run.others, hours, phases(run), tasks)
        r.extra.update(
            coordinator_read_storage=float(coord.read_storage),
            coordinator_files_read=float(len(coord.files_read)),
            coordinator_read_other_files=float(coord.read_other_files),
            coordinator_written_storage=float(coord.written_storage),
            workers_written_storage=float(work.written_storage),
            workers_read_storage=float(work.read_storage),
            workers_write_bytes=float(io1.get("write_bytes", 0) - io0.get("write_bytes", 0)),
        )
        print(
            f"io: {hours:.3f} h; coordinator read {c.mib(coord.read_storage):.1f} MiB from storage "
            f"({len(coord.files_read)} files); workers wrote {c.mib(work.written_storage):.1f} MiB",
            flush=True,
        )
        return r

    def s3_run(self) -> Run:
        port = _cluster.free_port()
        log = self.tmp / "moto.log"
        fh = log.open("wb")
        moto = subprocess.Popen(
            [c.PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
        fh.close()
        url = f"http://127.0.0.1:{port}"
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        env = {
            "S3_ENDPOINT_URL": url,
            "S3_BUCKET_NAME": bucket,
            "AWS_ACCESS_KEY_ID": "testing-access-key",
            "AWS_SECRET_ACCESS_KEY": "testing-secret-key-0123456789",
            "AWS_REGION": "us-east-1",
        }
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline or moto.poll() is not None:
                        raise RuntimeError("the moto server did not start") from None
                    time.sleep(0.2)
            import boto3

            boto3.session.Session().client(
                "s3",
                endpoint_url=url,
                region_name=env["AWS_REGION"],
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            ).create_bucket(Bucket=bucket)
            args = ["--storage-type", "s3", "--s3-bucket", bucket]
            cl = self.cluster("s3", self.ms, storage_args=args, env=env)
            try:
                n0 = len(requests(log))
                run, hours, tasks = self.coordinator(cl, storage_args=args, env=env)
                time.sleep(1.0)
                reqs = requests(log)[n0:]
            finally:
                cl.stop()
        finally:
            moto.terminate()
            try:
                moto.wait(10)
            except subprocess.TimeoutExpired:
                moto.kill()
                moto.wait()
        by_method = collections.Counter(m for m, _ in reqs)
        r = Run("s3 (moto)", run.wall, run.cpu, run.cluster_cpu, run.others, hours, phases(run), tasks)
        r.extra["s3_requests"] = float(len(reqs))
        r.extra.update({f"s3_{k}": float(v) for k, v in by_method.items()})
        print(f"s3: {hours:.3f} h; {len(reqs)} requests {dict(by_method)}; coordinator CPU {run.cpu:.1f} s", flush=True)
        return r


def wait_traced(pids: list[int], tracer: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until every process in ``pids`` has a tracer (``TracerPid`` in /proc/PID/status)."""
    deadline = time.monotonic() + timeout
    waiting = set(pids)
    while waiting:
        for pid in list(waiting):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:  # gone: nothing to trace
                waiting.discard(pid)
                continue
            m = re.search(r"^TracerPid:\s*(\d+)", status, re.M)
            if m is None or int(m.group(1)) != 0:
                waiting.discard(pid)
        if not waiting:
            return
        if tracer.poll() is not None or time.monotonic() > deadline:
            err = tracer.stderr.read().decode(errors="replace") if tracer.stderr else ""
            raise RuntimeError(f"strace did not attach to {sorted(waiting)}: {err[-500:]}")
        time.sleep(0.05)


_REQUEST = re.compile(r'"(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP/[0-9.]+" \d{3}')


def requests(log: Path) -> list[tuple[str, str]]:
    """(method, path) of every request in the moto server's access log, in order."""
    return _REQUEST.findall(log.read_text(errors="replace"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a tenth of the book (~3 min)")
    p.add_argument("--scale", type=float, help="book size factor (default: 0.1 quick, 1 full)")
    p.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
    p.add_argument("--ms-per-char", type=float, default=2.0, help="sim engine cost of the cpu/io/s3 runs")
    p.add_argument("--batch-chars", type=int, default=1200)
    p.add_argument("--runs", default="cpu,io,s3,ceiling", help="which runs (default all four)")
    p.add_argument("--no-write", action="store_true", help="print the tables, do not touch BENCHMARKS.md")
    args = p.parse_args()
    started = time.time()
    scale = args.scale or (0.1 if args.quick else 1.0)
    which = args.runs.split(",")
    runs: dict[str, Run] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmpdir:
        tmp = Path(tmpdir)
        book = tmp / "scaling-book.txt"
        sentences = bookgen.generate(book, scale)
        b = Bench(tmp, book, args.workers, args.ms_per_char, args.batch_chars)
        try:
            if "cpu" in which:
                runs["cpu"] = b.cpu_run("cpu", args.ms_per_char)
            if "io" in which:
                runs["io"] = b.io_run()
            if "s3" in which:
                runs["s3"] = b.s3_run()
            if "ceiling" in which:
                runs["ceiling"] = b.cpu_run("ceiling", 0.0)
        finally:
            b.close()
    lines = report(runs, args, scale, sentences, started)
    print("\n".join(lines))
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        data = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            "machine": c.machine_line(),
            "command": c.command_line(),
            "workers": args.workers,
            "ms_per_char": args.ms_per_char,
            "batch_chars": args.batch_chars,
            "sentences": sentences,
            "runs": {k: asdict(v) for k, v in runs.items()},
        }
        name = "coordinator_cost-quick.json" if args.quick else "coordinator_cost.json"
        (RESULTS / name).write_text(json.dumps(data, indent=1) + "\n")
        c.write_section("coordinator-cost-quick" if args.quick else "coordinator-cost", lines)


def report(runs: dict[str, Run], args: argparse.Namespace, scale: float, sentences: int, started: float) -> list[str]:
    rows = []
    for r in runs.values():
        ph = r.phases
        rows.append(
            [
                r.name,
                f"{r.hours:.3f}",
                r.wall,
                f"{r.hours * 3600 / r.wall:.0f}x",
                r.tasks,
                f"{r.coord_cpu:.1f}"
                + (f" ({r.extra['coordinator_own_cpu']:.1f})" if "coordinator_own_cpu" in r.extra else ""),
                f"{r.coord_cpu / r.hours:.1f}",
                f"{r.coord_cpu / r.wall:.2f}",
                f"{r.cluster_cpu / r.wall:.2f}",
                f"{ph['start']:.1f} / {ph['workers']:.1f} / {ph['synthesis']:.1f} / {ph['assembly']:.1f}",
                f"{r.others:.2f}",
            ]
        )
    checks = []
    if "cpu" in runs:
        r = runs["cpu"]
        v = r.coord_cpu / r.hours
        checks.append(["coordinator CPU s per hour of audio", f"{v:.1f}", f"before: ~{BEFORE_CPU_PER_HOUR:g} (2026-11-28)", f"<= {TARGETS['cpu']:g}", _yes(v <= TARGETS["cpu"])])
    if "io" in runs:
        r = runs["io"]
        rd = r.extra["coordinator_read_storage"] / 1e6 / r.hours
        wr = r.extra["workers_written_storage"] / 1e6 / r.hours
        wb = r.extra["workers_write_bytes"] / 1e6 / r.hours
        checks.append(["MB read by the coordinator from storage per hour", f"{rd:.1f}", f"{int(r.extra['coordinator_files_read'])} files", f"<= {TARGETS['read_mb']:g}", _yes(rd <= TARGETS["read_mb"])])
        checks.append(["MB written by the workers to storage per hour", f"{wr:.1f}", f"block layer: {wb:.1f} MB/h", f"<= {TARGETS['written_mb']:g}", _yes(wr <= TARGETS["written_mb"])])
    if "s3" in runs:
        r = runs["s3"]
        n = r.extra["s3_requests"] / r.hours
        split = ", ".join(f"{k[3:]} {v / r.hours:.0f}" for k, v in r.extra.items() if k.startswith("s3_") and k != "s3_requests")
        checks.append(["S3 requests per hour of audio (moto)", f"{n:.0f}", split, f"<= {TARGETS['s3_requests']:g}", _yes(n <= TARGETS["s3_requests"])])
    if "ceiling" in runs:
        r = runs["ceiling"]
        checks.append(["ceiling: x real time, 0 ms/char, one coordinator", f"{r.hours * 3600 / r.wall:.0f}x", f"coordinator {r.coord_cpu / r.wall:.2f} cores, workers + Redis {r.cluster_cpu / r.wall:.2f}", "(before/after)", ""])
    lines = c.header(
        f"Coordinator cost per hour of audio, distributed m4b {'(quick)' if args.quick else '(full)'}",
        started,
        [
            f"book: generated scaling book at scale {scale:g} ({sentences} sentences); `--batch-chars {args.batch_chars}`; "
            f"{args.workers} real `ebook2audio worker` processes (concurrency 1), real redis-server; sim engine at "
            f"{args.ms_per_char:g} ms/char (the ceiling run: 0); output m4b",
            "coordinator CPU: user + system of `convert --distributed` and its ffmpeg children (getrusage); "
            "bytes: read/write system calls on files under the storage folder, counted with `strace -ff -y` "
            "(coordinator with children, workers with pool processes; nothing instrumented in the product); "
            "S3: requests in the moto server's access log from the coordinator's start to its exit",
            "phases (s): start (ingest + plan) / workers (ping + dispatch) / synthesis / assembly; "
            "other jobs: cores used outside this benchmark during the run",
        ],
    )
    lines += c.table(
        ["run", "audio h", "wall s", "x real time", "tasks", "coordinator CPU s (its own process: Python)", "coordinator CPU s per audio h",
         "coordinator cores", "workers + Redis cores", "phases s", "other jobs' cores"],
        rows,
    )
    lines += c.table(["measure (per hour of audio)", "value", "detail", "target", "met"], checks)
    return lines


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


if __name__ == "__main__":
    main()
