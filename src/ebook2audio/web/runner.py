"""Runs the queue's jobs: each one is ``ebook2audio convert`` in a child process.

The child writes JSON lines on stderr (``--log-format json``, the schema of docs/log-schema.json);
:class:`EventReader` turns them into the numbers the CLI's progress bar shows (sentences done,
x real time, ETA) and into the job's one-line error. A child that crashes, or a hostile book, is a
failed job: the server never runs a book's code in its own process.

Cancel and pause send SIGTERM: the CLI stops cleanly and keeps every finished sentence in the work
folder, so resume and retry redo nothing. In distributed mode the children are ``convert
--distributed`` coordinators; ``slots`` of them run at once, and since each keeps only a window
of its batches in the Celery queue (``--max-in-flight``), their books share the workers batch by
batch, and the workers stay busy while one book is being assembled or read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .queue import Job, JobSettings, Progress, Queue, QueueError

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 30.0
BUSY = "is already being made from this book"  # job.JobBusyError: a stopping conversion still holds it
BUSY_WAIT_SECONDS = 2.0
BUSY_TRIES = 30


@dataclass
class EventReader:
    """Folds the child's stderr lines into progress, outputs and the error line (pure)."""

    progress: Progress = field(default_factory=lambda: Progress("starting", 0, 0, 0.0, None))
    outputs: list[str] = field(default_factory=list)  # file names
    paths: list[str] = field(default_factory=list)  # the same, as the child wrote them
    error: str = ""
    last_text: str = ""  # the last line that was not JSON (a crash's last words)

    def feed(self, line: str) -> bool:
        """Read one line; True when the progress changed."""
        line = line.strip()
        if not line:
            return False
        try:
            event = json.loads(line)
            if not isinstance(event, dict):
                raise ValueError
        except ValueError:
            self.last_text = line[:500]
            return False
        kind = event.get("event")
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        message = str(event.get("message", ""))
        p = self.progress
        if kind == "synthesis.started":
            done = int(data.get("sentences_done", 0))
            self.progress = Progress("synthesising", done, int(data.get("sentences_total", 0)), 0.0, None, done)
            return True
        if kind == "batch.done":
            eta = data.get("eta_seconds")
            self.progress = Progress(
                "synthesising",
                int(data.get("sentences_done", p.sentences_done)),
                int(data.get("sentences_total", p.sentences_total)),
                float(data.get("realtime_factor", p.realtime)),
                float(eta) if eta is not None else None,
                p.resumed,
            )
            return True
        if kind == "phase":
            self.progress = Progress(
                str(data.get("phase", message)), p.sentences_done, p.sentences_total, p.realtime, None, p.resumed
            )
            return True
        if kind == "error":
            self.error = message.removeprefix("error: ").strip()
            return False
        if kind == "message":
            if message.startswith("failed: ") and not self.error:  # `library --only`: its book failed
                self.error = message.removeprefix("failed: ").strip()
            for prefix in ("wrote ", "already converted: "):
                if message.startswith(prefix):
                    self.paths.append(message[len(prefix):])
                    self.outputs.append(Path(message[len(prefix):]).name)
        if event.get("level") in ("ERROR", "CRITICAL") and not self.error:
            self.error = message.strip()
        return False

    def failure(self, returncode: int) -> str:
        """The job's one-line error for a child that ended with ``returncode``."""
        text = self.error or self.last_text
        if not text:
            if returncode < 0:
                text = f"the conversion was killed by {signal.Signals(-returncode).name}"
            else:
                text = f"the conversion stopped with exit code {returncode}"
        return " ".join(text.split())[:500]


def read_chapters(path: Path, env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The chapter marks of an audio file (title, start, end in seconds), read back with ffmpeg."""
    from ..audio.ffmpeg import find_ffmpeg

    try:
        r = subprocess.run(
            [find_ffmpeg(env), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_ffmetadata_chapters(r.stdout)


def parse_ffmetadata_chapters(text: str) -> list[dict[str, Any]]:
    chapters: list[dict[str, Any]] = []
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line == "[CHAPTER]":
            current = {}
            chapters.append(current)  # type: ignore[arg-type]
        elif line.startswith("["):
            current = None
        elif current is not None and "=" in line:
            key, value = line.split("=", 1)
            current[key.upper()] = re.sub(r"\\(.)", r"\1", value)
    out = []
    for i, ch in enumerate(chapters, 1):
        num, _, den = ch.get("TIMEBASE", "1/1000").partition("/")
        try:
            scale = int(num) / int(den or 1)
            start, end = int(ch.get("START", 0)) * scale, int(ch.get("END", 0)) * scale
        except (ValueError, ZeroDivisionError):
            continue
        out.append({"title": ch.get("TITLE", f"Chapter {i}"), "start": round(start, 3), "end": round(end, 3)})
    return out


@dataclass(frozen=True)
class RunnerConfig:
    output_dir: Path
    work_dir: Path
    slots: int = 1  # jobs running at once (distributed: coordinators interleaving on the cluster)
    extra_args: tuple[str, ...] = ()  # e.g. ("--distributed", "--redis-url", ...)
    env: Mapping[str, str] | None = None


class Runner:
    """Starts the queued jobs in order, ``config.slots`` at a time, on a background thread."""

    def __init__(self, queue: Queue, config: RunnerConfig) -> None:
        self.queue = queue
        self.config = config
        self._lock = threading.RLock()
        self._procs: dict[int, subprocess.Popen[str]] = {}
        self._stop_as: dict[int, str] = {}  # job id -> the state a stopped child leaves it in
        self._busy: dict[int, int] = {}  # job id -> tries that found the book still locked
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._dispatcher = threading.Thread(target=self._dispatch, name="queue-dispatcher", daemon=True)

    def start(self) -> None:
        requeued = self.queue.requeue_interrupted()
        if requeued:
            log.info("resuming %d job(s) interrupted by the last stop: %s", len(requeued), requeued)
        self._dispatcher.start()

    def close(self) -> None:
        """Stop: running children are stopped (their jobs wait again, to resume at the next start)."""
        self._closing.set()
        with self._lock:
            for job_id in list(self._procs):
                self._stop_as[job_id] = "queued"
                self._terminate(job_id)
        for t in list(self._threads):
            t.join(STOP_GRACE_SECONDS + 5)
        self._dispatcher.join(5)

    def output_dir(self, job_id: int) -> Path:
        return self.config.output_dir / f"job-{job_id}"

    def job_dir(self, job: Job) -> Path:
        """The folder a job's ``outputs`` are relative to: its own, or for a library job the whole
        output folder (its outputs are ``Author/[Series/]Title/Title.m4b``)."""
        return self.config.output_dir if job.library else self.output_dir(job.id)

    # -- control -------------------------------------------------------------------------------

    def stop(self, job_id: int, state: str) -> Job:
        """Pause or cancel a job: a running one's child is stopped, its work kept."""
        with self._lock:
            if job_id in self._procs:
                self._stop_as[job_id] = state
                self._terminate(job_id)
                return self.queue.job(job_id)
        allowed = ("queued", "paused") if state == "cancelled" else ("queued",)
        return self.queue.set_state(job_id, state, allowed_from=allowed)

    def resume(self, job_id: int) -> Job:
        return self.queue.set_state(job_id, "queued", allowed_from=("paused",))

    def retry(self, job_id: int) -> Job:
        return self.queue.set_state(job_id, "queued", allowed_from=("failed", "cancelled"))

    def running(self) -> list[int]:
        with self._lock:
            return list(self._procs)

    def _terminate(self, job_id: int) -> None:
        proc = self._procs.get(job_id)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # the CLI and its pool: each keeps its work

    # -- the loop ------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        version = -1
        while not self._closing.is_set():
            with self._lock:  # claimed and started under the lock: a pause never finds it half-started
                job = self.queue.claim_next() if len(self._procs) < self.config.slots else None
                if job is not None:
                    self._launch(job)
                    continue
            version = self.queue.wait_change(version, 1.0)

    def command(self, job: Job) -> list[str]:
        # A library job is `ebook2audio library LIBRARY --only BOOK`: the very code path of the CLI's
        # library mode (its folders, metadata.json and cover), for this one book.
        what = ["library", job.library, "--only", job.book_path] if job.library else ["convert", job.book_path]
        args = [
            sys.executable, "-m", "ebook2audio.web.child", str(os.getpid()), *what, "--log-format", "json",
            "--output-dir", str(self.job_dir(job)), "--work-dir", str(self.config.work_dir),
        ]  # fmt: skip
        return [*args, *settings_args(job.settings), *self.config.extra_args]

    def _launch(self, job: Job) -> None:
        out = self.job_dir(job)
        try:
            out.mkdir(parents=True, exist_ok=True)
            env = dict(os.environ if self.config.env is None else self.config.env)
            env.setdefault("PYTHONUNBUFFERED", "1")
            env.pop("EBOOK2AUDIO_WEB_PASSWORD", None)  # the child needs no web credentials
            env.pop("EBOOK2AUDIO_WEB_USER", None)
            proc = subprocess.Popen(
                self.command(job), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True, errors="replace", env=env, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            self.queue.set_state(job.id, "failed", error=f"cannot start the conversion: {exc.strerror}")
            return
        with self._lock:
            self._procs[job.id] = proc
        t = threading.Thread(target=self._watch, args=(job, proc), name=f"job-{job.id}", daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def _watch(self, job: Job, proc: subprocess.Popen[str]) -> None:
        reader = EventReader()
        assert proc.stderr is not None
        for line in proc.stderr:
            if reader.feed(line):
                self.queue.progress(job.id, reader.progress)
        try:
            rc = proc.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
        busy = rc != 0 and BUSY in reader.error and self._busy.get(job.id, 0) < BUSY_TRIES
        if busy and not self._closing.is_set():
            # The conversion of a server that died just before is still stopping and holds the
            # book's lock: wait a little (holding this slot) and queue the job again.
            self._busy[job.id] = self._busy.get(job.id, 0) + 1
            self._closing.wait(BUSY_WAIT_SECONDS)
        with self._lock:
            self._procs.pop(job.id, None)
            stopped_as = self._stop_as.pop(job.id, None)
        if busy and stopped_as is None:
            stopped_as = "queued"
        try:
            self._settle(job, rc, reader, stopped_as)
        except QueueError as exc:
            log.warning("job %d: %s", job.id, exc)

    def _settle(self, job: Job, rc: int, reader: EventReader, stopped_as: str | None) -> None:
        if rc == 0:
            out = self.job_dir(job)
            if job.library:  # paths under the output folder, as the child printed them
                found = (_relative(Path(p), out) for p in reader.paths)
                names = [n for n in dict.fromkeys(found) if n and (out / n).is_file()]
            else:
                names = [n for n in dict.fromkeys(reader.outputs) if (out / n).is_file()]
            audio = [n for n in names if not n.endswith((".srt", ".vtt", ".json"))]
            chapters = read_chapters(out / audio[0]) if len(audio) == 1 else []
            self.queue.finish(job.id, names, chapters)
            log.info("job %d done: %s", job.id, ", ".join(names))
        elif stopped_as is not None:
            self.queue.set_state(job.id, stopped_as)
            log.info("job %d %s", job.id, stopped_as)
        else:
            error = reader.failure(rc)
            self.queue.set_state(job.id, "failed", error=error)
            log.info("job %d failed: %s", job.id, error)


def settings_args(s: JobSettings) -> list[str]:
    """A job's settings as the CLI's flags (``convert`` and ``library`` read the same ones)."""
    args = ["--format", s.format or "m4b", "--speed", repr(float(s.speed or 1.0))]
    for flag, value in (("--language", s.language), ("--engine", s.engine), ("--voice", s.voice),
                        ("--chapters", s.chapters), ("--voice-sample", s.voice_sample)):  # fmt: skip
        if value:
            args += [flag, value]
    return args


def _relative(path: Path, root: Path) -> str:
    """``path`` (absolute, or relative to this process's folder, as the child's) under ``root``, as
    a POSIX relative path; "" when it is not under it."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return ""


def distributed_args(values: Mapping[str, Any], flags: Sequence[tuple[str, str]]) -> list[str]:
    """``--distributed`` and the coordinator flags given to ``serve`` (dest -> flag), for each child."""
    out = ["--distributed"]
    for dest, flag in flags:
        value = values.get(dest)
        if value is not None:
            out += [flag, str(value)]
    return out
