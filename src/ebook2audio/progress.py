"""The terminal face of a conversion: a rich progress bar fed by batch completions, and a summary."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from .logging_setup import SKIP_TEXT_CONSOLE
from .model import BatchResult, Plan

if TYPE_CHECKING:
    from .metrics import Metrics
    from .pipeline import Reporter

_log = logging.getLogger("ebook2audio.events")


class _RealTime(ProgressColumn):
    """Audio seconds produced per wall second (x real time)."""

    def render(self, task: Task) -> Text:
        audio = float(task.fields.get("audio", 0.0))
        started = task.fields.get("t0")
        if not started or audio <= 0:
            return Text("  -.-x RT", style="dim")
        return Text(f"{audio / max(time.monotonic() - started, 1e-6):5.1f}x RT", style="cyan")


class RichReporter:
    def __init__(self, console: Console | None = None, *, show_bar: bool = True) -> None:
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.show_bar = show_bar and self.console.is_terminal
        self._progress: Progress | None = None
        self._task: int | None = None
        self._audio = 0.0
        self._chapters_done: set[int] = set()
        self._plan: Plan | None = None
        self._left: dict[int, int] = {}
        self._chunk_chapter: dict[str, int] = {}
        self._n_chapters = 0

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def phase(self, text: str) -> None:
        self.console.print(f"{text}...", highlight=False)

    def synthesis_started(self, plan: Plan, done: set[str]) -> None:
        self._plan = plan
        total = len(plan.chunks)
        already_done = sum(1 for c in plan.chunks if c.id in done)
        self._chunk_chapter = {c.id: c.chapter for c in plan.chunks}
        self._left = {}
        for c in plan.chunks:
            if c.id not in done:
                self._left[c.chapter] = self._left.get(c.chapter, 0) + 1
        self._n_chapters = len(plan.chapters)
        if not self.show_bar:
            self.console.print(f"synthesising {total - already_done} of {total} sentences", highlight=False)
            return
        self._progress = Progress(
            TextColumn("[bold]sentences"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("chapters {task.fields[chapters]}"),
            _RealTime(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "synth",
            total=total,
            completed=already_done,
            chapters=self._chapters_text(),
            audio=0.0,
            t0=time.monotonic(),
        )

    def batch_done(self, result: BatchResult, chunks_in_batch: int) -> None:
        self._audio += result.audio_seconds
        if self._progress is None or self._task is None:
            return
        for r in result.chunks:
            ch = self._chunk_chapter.get(r.chunk_id)
            if ch is not None and ch in self._left:
                self._left[ch] -= 1
        self._progress.update(
            self._task,
            advance=len(result.chunks) + result.skipped,
            audio=self._audio,
            chapters=self._chapters_text(),
        )

    def _chapters_text(self) -> str:
        return f"{self._n_chapters - sum(1 for v in self._left.values() if v > 0)}/{self._n_chapters}"

    def synthesis_finished(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


# -- structured events and metrics ----------------------------------------------------------------


def estimate(
    *, total: int, done: int, done_at_start: int, audio_seconds: float, elapsed: float
) -> tuple[float, float | None]:
    """(x real time, ETA in seconds or None while unknown) from this run's own pace (pure)."""
    made = done - done_at_start
    elapsed = max(elapsed, 1e-6)
    realtime = audio_seconds / elapsed
    if done >= total:
        return realtime, 0.0
    if made <= 0:
        return realtime, None
    return realtime, (total - done) * elapsed / made


class ObservedReporter:
    """A reporter that also logs each step as a structured event (``extra={"event": ...}``: JSON lines
    and syslog carry them; the text console leaves them out, ``inner`` shows them) and feeds the
    metrics (``metrics.Metrics``). ``inner`` None: nothing is printed (JSON lines own stderr)."""

    def __init__(
        self,
        inner: Reporter | None,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        lines_every: float | None = None,
    ) -> None:
        self.inner = inner
        self.lines_every = lines_every  # seconds between progress lines printed by ``inner`` (no bar)
        self._last_line = 0.0
        self.metrics = metrics
        self.clock = clock
        self._t0 = 0.0
        self._total = 0
        self._done = 0
        self._done_at_start = 0
        self._audio = 0.0
        self._chapter_of: dict[str, int] = {}
        self._session: str | None = None

    def _event(self, event: str, message: str, level: int = logging.INFO, **extra: Any) -> None:
        _log.log(level, "%s", message, extra={"event": event, SKIP_TEXT_CONSOLE: True, **extra})

    def message(self, text: str) -> None:
        if self.inner is not None:
            self.inner.message(text)
        level = logging.WARNING if text.startswith(("warning:", "error:")) else logging.INFO
        self._event("message", text, level)

    def phase(self, text: str) -> None:
        if self.inner is not None:
            self.inner.phase(text)
        self._event("phase", f"{text}...", data={"phase": text})

    def synthesis_started(self, plan: Plan, done: set[str]) -> None:
        if self.inner is not None:
            self.inner.synthesis_started(plan, done)
        self._t0 = self.clock()
        self._total = len(plan.chunks)
        self._done = self._done_at_start = sum(1 for c in plan.chunks if c.id in done)
        self._audio = 0.0
        self._chapter_of = {b.id: b.chapter + 1 for b in plan.batches}
        self._session = plan.session
        self._last_line = self._t0
        self.metrics.started(plan.session, self._total, self._done)
        self._event(
            "synthesis.started",
            f"synthesising {self._total - self._done} of {self._total} sentences",
            session=plan.session,
            data={"sentences_total": self._total, "sentences_done": self._done, "batches": len(plan.batches)},
        )

    def batch_done(self, result: BatchResult, chunks_in_batch: int) -> None:
        if self.inner is not None:
            self.inner.batch_done(result, chunks_in_batch)
        self._done = min(self._total, self._done + len(result.chunks) + result.skipped)
        self._audio += result.audio_seconds
        realtime, eta = estimate(
            total=self._total,
            done=self._done,
            done_at_start=self._done_at_start,
            audio_seconds=self._audio,
            elapsed=self.clock() - self._t0,
        )
        chapter = self._chapter_of.get(result.batch_id, 0)
        self.metrics.batch_done(
            chapter=chapter,
            sentences_done=self._done,
            audio_seconds=result.audio_seconds,
            task_seconds=result.synth_seconds,
            realtime_factor=realtime,
            eta_seconds=eta,
        )
        data: dict[str, Any] = {
            "sentences": len(result.chunks),
            "skipped": result.skipped,
            "sentences_done": self._done,
            "sentences_total": self._total,
            "audio_seconds": round(result.audio_seconds, 3),
            "task_seconds": round(result.synth_seconds, 3),
            "realtime_factor": round(realtime, 3),
        }
        if eta is not None:
            data["eta_seconds"] = round(eta, 1)
        now = self.clock()
        if self.lines_every is not None and self.inner is not None and now - self._last_line >= self.lines_every:
            self._last_line = now
            self.inner.message(progress_line(self._done, self._total, realtime, eta))
        self._event(
            "batch.done",
            f"batch {result.batch_id} done: {self._done}/{self._total} sentences",
            session=self._session,
            batch=result.batch_id,
            chapter=chapter or None,
            data=data,
        )

    def synthesis_finished(self) -> None:
        """Said once per synthesis (the CLI calls it again on the way out of a failed run)."""
        if self.inner is not None:
            self.inner.synthesis_finished()
        if self._session is None:
            return
        complete = self._done >= self._total
        self.metrics.finished(complete=complete)
        elapsed = self.clock() - self._t0
        self._event(
            "synthesis.finished",
            f"synthesis {'finished' if complete else 'stopped'}: {self._done}/{self._total} sentences in {elapsed:.1f} s",
            session=self._session,
            data={
                "sentences_done": self._done,
                "sentences_total": self._total,
                "audio_seconds": round(self._audio, 3),
                "wall_seconds": round(elapsed, 3),
            },
        )
        self._session = None


def progress_line(done: int, total: int, realtime: float, eta: float | None) -> str:
    """One line of progress, for logs (no terminal: no bar). Pure."""
    pct = 100 * done // total if total else 100
    left = "unknown" if eta is None else f"{int(eta) // 3600}:{int(eta) % 3600 // 60:02d}:{int(eta) % 60:02d}"
    return f"progress: {done}/{total} sentences ({pct}%), {realtime:.1f}x real time, ETA {left}"


PROGRESS_INTERVAL_ENV = "EBOOK2AUDIO_PROGRESS_INTERVAL"


def make_reporter(*, quiet: bool, metrics: Metrics | None = None) -> ObservedReporter:
    """The CLI's reporter: the progress bar (unless stderr carries JSON lines), events and metrics.
    Without a terminal (a log, ``docker logs``) a progress line every $EBOOK2AUDIO_PROGRESS_INTERVAL
    seconds (default 30) stands for the bar, unless ``quiet``."""
    import os

    from .logging_setup import json_console
    from .metrics import NO_METRICS

    inner = None if json_console() else RichReporter(show_bar=not quiet)
    every = None
    if inner is not None and not quiet and not inner.show_bar:
        try:
            every = max(0.0, float(os.environ.get(PROGRESS_INTERVAL_ENV, "") or 30))
        except ValueError:
            every = 30.0
    return ObservedReporter(inner, metrics or NO_METRICS, lines_every=every)
