"""Shared helpers of the benchmark scripts: machine description, timed runs, process-tree sampling,
and writing a result section into BENCHMARKS.md.

Only the standard library and psutil (a test extra of the project) are used.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = (ROOT / ".." / "shared" / "corpus").resolve()
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
PYTHON = sys.executable
CLI = [PYTHON, "-m", "ebook2audio"]

_INTRO = """# Benchmarks

Written by the scripts in `bench/` (see [bench/README.md](bench/README.md)); each section says when,
on which machine and with which command it was measured. Rerun a script to refresh its section.
The machine that produced these tables is shared and noisy (other jobs run at the same time): the
load average is given with each table, and ratios are only compared within one run.
"""


# --------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def ram_gib() -> float:
    import psutil

    return psutil.virtual_memory().total / 2**30


def loadavg() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def load1() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def machine_line() -> str:
    return (
        f"{cores()} cores ({cpu_model()}), {ram_gib():.1f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def command_line() -> str:
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        script = script.resolve().relative_to(ROOT)
    return " ".join([".venv/bin/python", shlex.quote(str(script)), *map(shlex.quote, sys.argv[1:])])


def header(title: str, started: float, extra: Sequence[str] = ()) -> list[str]:
    """The lines that open a result section: date, machine, command, load average."""
    when = _dt.datetime.fromtimestamp(started).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    took = time.time() - started
    lines = [
        f"### {title}",
        "",
        f"- date: {when} (the run took {took / 60:.1f} min)",
        f"- machine: {machine_line()}",
        f"- command: `{command_line()}`",
        f"- load average (1/5/15 min) at the end: {loadavg()}",
    ]
    lines += [f"- {x}" for x in extra]
    return [*lines, ""]


def table(heads: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)

    out = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return [*out, ""]


def write_section(key: str, lines: Sequence[str], path: Path = BENCHMARKS_MD) -> None:
    """Put ``lines`` between ``<!-- bench:KEY -->`` markers in BENCHMARKS.md (replacing an older run)."""
    begin, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
    body = "\n".join([begin, *lines, end])
    text = path.read_text(encoding="utf-8") if path.exists() else _INTRO
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: body, text)
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    print(f"wrote section {key!r} of {path}")


# --------------------------------------------------------------------------- runs


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of a measured run: no inherited EBOOK2AUDIO_* settings, unbuffered output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBOOK2AUDIO_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class TreeSampler:
    """Samples a process tree every ``interval`` s: the peak RSS of each process (VmHWM), by role."""

    root_pid: int
    classify: Callable[[int, list[str], int], str]  # (pid, cmdline, depth) -> role
    interval: float = 0.2
    # (pid, command line) -> (role, VmHWM bytes): a process that execs another program starts anew
    peaks: dict[tuple[int, tuple[str, ...]], tuple[str, int]] = field(default_factory=dict)
    tree_peak: int = 0  # the largest sum of RSS over the whole tree at one sample
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TreeSampler:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                root = psutil.Process(self.root_pid)
                procs = [(root, 0)]
                procs += [(p, _depth(p, self.root_pid)) for p in root.children(recursive=True)]
            except psutil.Error:
                procs = []
            total = 0
            for p, depth in procs:
                try:
                    cmdline = tuple(p.cmdline())
                    parent = p.parent()
                    if (
                        p.pid != self.root_pid
                        and parent is not None
                        and tuple(parent.cmdline()) == cmdline
                        and time.time() - p.create_time() < 1.0
                    ):
                        continue  # just forked, probably about to exec (a subprocess starting): not yet
                    hwm, rss = _vm_hwm(p.pid)
                except (psutil.Error, OSError):
                    continue
                total += rss
                key = (p.pid, cmdline)
                role, old = self.peaks.get(key, ("", 0))
                self.peaks[key] = (role or self.classify(p.pid, list(cmdline), depth), max(old, hwm))
            self.tree_peak = max(self.tree_peak, total)
            self._stop.wait(self.interval)

    def peak_by_role(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for role, hwm in self.peaks.values():
            out[role] = max(out.get(role, 0), hwm)
        return out


def _depth(proc: object, root_pid: int) -> int:
    import psutil

    depth = 0
    p = proc
    while isinstance(p, psutil.Process) and p.pid != root_pid and depth < 10:
        p = p.parent()
        depth += 1
    return depth


def _vm_hwm(pid: int) -> tuple[int, int]:
    """(peak RSS, current RSS) of a process in bytes, from /proc/PID/status."""
    hwm = rss = 0
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return hwm, rss


def busy_seconds() -> float:
    """CPU seconds spent by the whole machine so far (all cores, everything but idle and iowait)."""
    import psutil

    t = psutil.cpu_times()
    return (
        sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
    )


def wait_quiet(max_wait: float, busy_cores: float = 0.3, settle: float = 3.0) -> float:
    """Wait (at most ``max_wait`` s) until other jobs use under ``busy_cores`` cores for ``settle`` s.

    Returns the cores they used over the last ``settle`` seconds (the noise the next run starts in).
    ``BENCH_QUIET_WAIT=0`` in the environment skips the wait (returns 0.0): for smoke runs whose timings
    are not read, such as the test suite's.
    """
    if os.environ.get("BENCH_QUIET_WAIT", "").strip() == "0":
        return 0.0
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = busy_seconds(), time.monotonic()
        time.sleep(settle)
        used = (busy_seconds() - b0) / (time.monotonic() - t0)
        if used < busy_cores or time.monotonic() >= deadline:
            return used


@dataclass
class Timed:
    wall: float
    cpu: float  # user + system seconds of the process and every descendant it waited for
    returncode: int
    stdout: str
    stderr: str
    peaks: dict[str, int] = field(default_factory=dict)  # role -> peak RSS bytes (when sampled)
    load_before: float = 0.0
    load_after: float = 0.0
    others: float = 0.0  # cores used by OTHER processes of the machine during the run, on average


def run_timed(
    cmd: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 3600,
    classify: Callable[[int, list[str], int], str] | None = None,
    check: bool = True,
) -> Timed:
    """Run ``cmd``; wall time, CPU time of its whole tree, optional peak RSS per role."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = load1()
    busy0 = busy_seconds()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = TreeSampler(proc.pid, classify).start() if classify is not None else None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise
    finally:
        if sampler is not None:
            sampler.stop()
    wall = time.perf_counter() - t0
    busy = busy_seconds() - busy0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return Timed(
        wall=wall,
        cpu=cpu,
        returncode=proc.returncode,
        stdout=out,
        stderr=err,
        peaks=sampler.peak_by_role() if sampler is not None else {},
        load_before=load_before,
        load_after=load1(),
        others=max(0.0, busy - cpu) / wall if wall > 0 else 0.0,
    )


def mib(n: int) -> float:
    return n / 2**20
