"""A throw-away distributed setup for the benchmarks: a private redis-server, real `ebook2audio worker`
processes, and a timed coordinator (`ebook2audio convert --distributed`), all on this machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import _common as c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Redis:
    """redis-server on a free localhost port, no persistence; stopped by ``close()``."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        self.client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.1)

    def flush(self) -> None:
        self.client.flushall()

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    ms_per_char: float

    def tasks_done(self) -> int:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return 0
        return text.count("succeeded in")

    def task_log(self) -> list[tuple[float, float]]:
        """(end time as a Unix timestamp, seconds inside the task) of each task done, from the log."""
        import datetime as dt
        import re

        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        out = []
        for stamp, secs in re.findall(
            r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)[^\n]*?succeeded in ([0-9.]+)s", text
        ):
            when = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            out.append((when, float(secs)))
        return out


class Cluster:
    """Workers (one process each, concurrency 1) sharing ``storage`` through Redis ``redis``."""

    def __init__(
        self,
        redis: Redis,
        storage: Path,
        logdir: Path,
        storage_args: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.redis = redis
        self.storage = storage
        self.logdir = logdir
        # how the workers reach the shared storage (default: the local directory ``storage``)
        self.storage_args = list(storage_args or ["--storage-type", "local", "--storage-path", str(storage)])
        self.env = dict(env or {})  # extra environment of every worker (e.g. the S3 endpoint)
        self.workers: list[Worker] = []

    def start(self, ms_per_char: Sequence[float], extra_env: Mapping[str, str] | None = None) -> None:
        for ms in ms_per_char:
            name = f"w{len(self.workers) + 1}"
            log = self.logdir / f"{name}.log"
            env = c.bench_env(**{"EBOOK2AUDIO_SIM_MS_PER_CHAR": f"{ms:g}", **self.env, **(extra_env or {})})
            cmd = [*c.CLI, "worker", "--redis-url", self.redis.url, *self.storage_args]
            cmd += ["--concurrency", "1", "--hostname", f"{name}@bench"]
            fh = log.open("wb")
            proc = subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            fh.close()
            self.workers.append(Worker(name, proc, log, ms))

    def pids(self) -> list[int]:
        """The worker processes: each main process and its pool children."""
        import psutil

        out = []
        for w in self.workers:
            try:
                root = psutil.Process(w.proc.pid)
                out += [root.pid, *(p.pid for p in root.children(recursive=True))]
            except psutil.Error:
                continue
        return out

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the workers (with their pool processes) and redis-server."""
        import psutil

        total = 0.0
        pids = [w.proc.pid for w in self.workers] + [self.redis.proc.pid]
        for pid in pids:
            try:
                root = psutil.Process(pid)
                for p in [root, *root.children(recursive=True)]:
                    t = p.cpu_times()
                    total += t.user + t.system
            except psutil.Error:
                continue
        return total

    def cpu_split(self) -> dict[str, float]:
        """CPU seconds so far, by role: ``main`` (each worker's Celery main process: consumer, events,
        heartbeats), ``pool`` (the pool processes' own: the task's Python, FLAC, mastering, storage),
        ``children`` (what the pool processes' exited children used, e.g. the ffmpeg that encodes a
        piece: counted once reaped), ``redis``."""
        import psutil

        out = {"main": 0.0, "pool": 0.0, "children": 0.0, "redis": self.redis_cpu_seconds()}
        for w in self.workers:
            try:
                root = psutil.Process(w.proc.pid)
                t = root.cpu_times()
                out["main"] += t.user + t.system
                for p in root.children(recursive=True):
                    t = p.cpu_times()
                    out["pool"] += t.user + t.system
                    out["children"] += t.children_user + t.children_system
            except psutil.Error:
                continue
        return out

    def redis_cpu_seconds(self) -> float:
        import psutil

        try:
            t = psutil.Process(self.redis.proc.pid).cpu_times()
        except psutil.Error:
            return 0.0
        return t.user + t.system

    def wait_ready(self, timeout: float = 180) -> float:
        """Wait until every worker answers a Celery ping; the seconds it took."""
        from ebook2audio.distributed_config import load_distributed_settings
        from ebook2audio.executors.celery_app import make_celery_app

        t0 = time.monotonic()
        app = make_celery_app(load_distributed_settings({"redis_url": self.redis.url}, env={}))
        try:
            while True:
                for w in self.workers:
                    if w.proc.poll() is not None:
                        raise RuntimeError(f"worker {w.name} exited: {w.log.read_text()[-2000:]}")
                replies = app.control.ping(timeout=1.0) or []
                if len({name for r in replies for name in r}) >= len(self.workers):
                    return time.monotonic() - t0
                if time.monotonic() - t0 > timeout:
                    raise RuntimeError(f"only {len(replies)} of {len(self.workers)} workers answer")
        finally:
            app.close()

    def stop_worker(self, name: str) -> None:
        for w in [w for w in self.workers if w.name == name]:
            self._stop([w])
            self.workers.remove(w)

    def stop(self) -> None:
        self._stop(self.workers)
        self.workers = []

    def _stop(self, workers: Sequence[Worker]) -> None:
        for w in workers:
            if w.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(w.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for w in workers:
            try:
                w.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(w.proc.pid, signal.SIGKILL)
                w.proc.wait()


@dataclass
class CoordinatorRun:
    wall: float
    cpu: float
    lines: list[tuple[float, str]]  # (seconds since start, stderr line)
    peaks: dict[str, int] = field(default_factory=dict)
    others: float = 0.0  # cores used by processes outside the coordinator and the cluster
    cluster_cpu: float = 0.0  # CPU seconds of the workers and Redis during the run
    redis_cpu: float = 0.0  # CPU seconds of redis-server during the run (part of cluster_cpu)
    own_cpu: float = 0.0  # CPU seconds of the coordinator's own process (its Python), sampled; rest: ffmpeg

    def mark(self, needle: str) -> float | None:
        """When the first stderr line containing ``needle`` came (seconds since start)."""
        for t, line in self.lines:
            if needle in line:
                return t
        return None


def run_coordinator(
    book: Path,
    redis_url: str,
    storage: Path,
    out: Path,
    workers: int,
    extra: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    classify: Callable[[int, list[str], int], str] | None = None,
    timeout: float = 7200,
    cluster: Cluster | None = None,
    prefix: Sequence[str] = (),
    storage_args: Sequence[str] | None = None,
) -> CoordinatorRun:
    """``ebook2audio convert BOOK --distributed ...`` (after ``prefix``, e.g. GNU time), timed, each
    stderr line time-stamped."""
    import resource

    cmd = [*prefix, *c.CLI, "convert", str(book), "--distributed", "--num-workers", str(workers)]
    cmd += ["--redis-url", redis_url]
    cmd += storage_args if storage_args is not None else ["--storage-type", "local", "--storage-path", str(storage)]
    cmd += ["-o", str(out), "--engine", "sim", "-q", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = c.busy_seconds()
    cluster0 = cluster.cpu_seconds() if cluster is not None else 0.0
    redis0 = cluster.redis_cpu_seconds() if cluster is not None else 0.0
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        env=dict(env) if env is not None else c.bench_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append((time.perf_counter() - t0, line.rstrip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    own = [0.0]
    stop_own = threading.Event()

    def sample_own() -> None:  # the coordinator's own user + system time (not its children's)
        import psutil

        try:
            me = psutil.Process(proc.pid)
            while not stop_own.is_set():
                t = me.cpu_times()
                own[0] = max(own[0], t.user + t.system)
                stop_own.wait(0.05)
        except psutil.Error:
            pass

    owner = threading.Thread(target=sample_own, daemon=True)
    owner.start()
    sampler = c.TreeSampler(proc.pid, classify).start() if classify is not None else None
    try:
        code = proc.wait(timeout)
    finally:
        stop_own.set()
        if sampler is not None:
            sampler.stop()
    wall = time.perf_counter() - t0
    busy = c.busy_seconds() - busy0
    cluster_cpu = (cluster.cpu_seconds() - cluster0) if cluster is not None else 0.0
    redis_cpu = (cluster.redis_cpu_seconds() - redis0) if cluster is not None else 0.0
    reader.join(10)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if code != 0:
        tail = "\n".join(x for _, x in lines[-30:])
        raise RuntimeError(f"the coordinator failed ({code}):\n{tail}")
    return CoordinatorRun(
        wall=wall,
        cpu=cpu,
        lines=lines,
        peaks=sampler.peak_by_role() if sampler is not None else {},
        others=max(0.0, busy - cpu - cluster_cpu) / wall,
        cluster_cpu=cluster_cpu,
        own_cpu=own[0],
        redis_cpu=redis_cpu,
    )
