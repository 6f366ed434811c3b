"""The terminal face of a conversion: a rich progress bar fed by batch completions, and a summary."""

from __future__ import annotations

import time

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

from .model import BatchResult, Plan


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
