"""convert(): ingest -> plan -> execute -> assemble. Resume = skip the chunks already in storage."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from .audio.assemble import AssemblyOptions, AssemblyResult, StreamingAssembler, assemble
from .config import Settings, parse_chapter_selection
from .engines.base import EngineInfo
from .engines.registry import resolve_voice
from .errors import SynthesisError, UserError
from .executors.base import Executor
from .ingest import read_book
from .job import FileLocks, Job, JobLocks, check_session_id
from .jobstore import chunk_key, save_cover, stored_chunk_sizes
from .logging_setup import log_context
from .model import BatchResult, Book, Plan, VoiceSpec
from .plan import Pauses, PlanOptions, make_plan
from .poison import Substitution, load_substitutions, write_report
from .storage.base import Storage
from .storage.local import LocalStorage

log = logging.getLogger(__name__)


class Reporter(Protocol):
    """How the pipeline tells a person what it does (the CLI draws a progress bar from it)."""

    def message(self, text: str) -> None: ...

    def synthesis_started(self, plan: Plan, done: set[str]) -> None: ...

    def batch_done(self, result: BatchResult, chunks_in_batch: int) -> None: ...

    def synthesis_finished(self) -> None: ...

    def phase(self, text: str) -> None: ...


class QuietReporter:
    def message(self, text: str) -> None:
        log.info("%s", text)

    def synthesis_started(self, plan: Plan, done: set[str]) -> None:
        pass

    def batch_done(self, result: BatchResult, chunks_in_batch: int) -> None:
        pass

    def synthesis_finished(self) -> None:
        pass

    def phase(self, text: str) -> None:
        log.info("%s", text)


@dataclass(frozen=True)
class ConvertResult:
    outputs: tuple[Path, ...]
    subtitles: tuple[Path, ...]
    duration: float  # seconds of audio
    chapters: int
    chunks_total: int
    chunks_synthesized: int
    chunks_skipped: int
    wall_seconds: float
    synth_wall_seconds: float
    session: str
    voice: EngineInfo
    substitutions: tuple[Substitution, ...] = ()  # sentences the voice could not speak (poison.py)
    report: Path | None = None  # the report.json listing them, beside the output

    @property
    def realtime_factor(self) -> float:
        return self.duration / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def summary(self) -> list[str]:
        """What the CLI prints at the end: the files written, then one line of totals."""

        def hms(s: float) -> str:
            t = round(s)
            return f"{t // 3600}:{t % 3600 // 60:02d}:{t % 60:02d}"

        lines = [f"wrote {path}" for path in (*self.outputs, *self.subtitles)]
        lines.append(
            f"done: {hms(self.duration)} of audio, {self.chapters} chapters, {self.chunks_total} sentences "
            f"({self.chunks_synthesized} synthesised, {self.chunks_skipped} resumed) in {hms(self.wall_seconds)} "
            f"wall time: {self.realtime_factor:.1f}x real time"
            + (
                f"; {len(self.substitutions)} sentence(s) replaced because they crash the voice "
                f"(listed above and in {self.report})"
                if self.substitutions
                else ""
            )
        )
        return [*lines[:-1], *(f"replaced {s.describe()}" for s in self.substitutions), lines[-1]]


def book_session_id(path: Path) -> str:
    """Derived from the book's bytes, so rerunning the same command finds the same job."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]+')


def output_basename(book: Book, settings: Settings) -> str:
    if settings.output_name:
        name = settings.output_name
    else:
        authors = ", ".join(book.metadata.authors[:2])
        title = book.metadata.title or "Untitled"
        name = f"{authors} - {title}" if authors else title
    name = _UNSAFE.sub(" ", name).strip(" .")
    name = re.sub(r"\s+", " ", name)
    return (name or "audiobook")[:180]


def select_chapters(book: Book, spec: str) -> Book:
    if not spec.strip():
        return book
    keep = parse_chapter_selection(spec, len(book.chapters))
    return replace(book, chapters=tuple(book.chapters[i] for i in keep))


def resolve(
    book: Book, settings: Settings, env: Mapping[str, str] | None = None
) -> tuple[VoiceSpec, EngineInfo]:
    language = settings.language or book.metadata.language or "en"
    spec = VoiceSpec(engine=settings.engine, voice=settings.voice, language=language, speed=settings.speed)
    return spec, resolve_voice(spec, env)


def plan_options(settings: Settings, parallel: int | None = None) -> PlanOptions:
    """The planning options of ``settings``; ``parallel``: the workers sharing the batches
    (default: the embedded pool's size)."""
    return PlanOptions(
        pauses=Pauses(
            sentence_ms=settings.sentence_pause_ms,
            paragraph_ms=settings.paragraph_pause_ms,
            title_ms=max(settings.sentence_pause_ms, min(settings.chapter_pause_ms, 1000)),
            chapter_ms=settings.chapter_pause_ms,
        ),
        batch_chars=settings.batch_chars,
        granularity=settings.granularity,
        parallel=parallel or settings.effective_workers,
    )


ExecutorFactory = Callable[[Storage, EngineInfo, Settings], Executor]


def local_executor(storage: Storage, info: EngineInfo, settings: Settings) -> Executor:
    from .executors.local import LocalExecutor

    if not isinstance(storage, LocalStorage):
        raise UserError("the embedded executor needs local storage")
    return LocalExecutor(
        root=storage.root,
        info=info,
        speed=settings.speed,
        device=settings.device,
        workers=settings.effective_workers,
        strict=settings.strict,
    )


def convert(
    book_path: Path,
    settings: Settings,
    reporter: Reporter | None = None,
    *,
    storage: Storage | None = None,
    executor_factory: ExecutorFactory = local_executor,
    env: Mapping[str, str] | None = None,
    parallel: int | None = None,
    locks: JobLocks | None = None,
) -> ConvertResult:
    """Read, plan, synthesise (with ``executor_factory``'s executor) and assemble one book.

    ``parallel``: how many workers share the batches (shapes the plan's last batches; default: the
    embedded pool's size). ``locks``: who else may work on this book (default: file locks in the work
    directory; the distributed coordinator passes its Redis lock).
    """
    rep = reporter or QuietReporter()
    t_start = time.perf_counter()
    if settings.session:
        check_session_id(settings.session)
    book = read_book(book_path)
    for w in book.warnings:
        rep.message(f"warning: {w}")
    book = select_chapters(book, settings.chapters)
    spec, info = resolve(book, settings, env)
    if info.engine != spec.engine:
        rep.message(
            f"no {spec.engine} voice for language '{spec.language}': using {info.engine} voice '{info.voice}'"
        )
    rep.message(f"voice: {info.engine} {info.voice} ({info.language}, {info.sample_rate} Hz)")

    session = settings.session or book_session_id(book_path)
    store = storage or LocalStorage(settings.work_dir)
    if locks is None:
        if not isinstance(store, LocalStorage):
            raise UserError("a conversion on shared storage needs the coordinator's lock")
        locks = FileLocks(store.root)
    plan = make_plan(book, info, spec, session, plan_options(settings, parallel))
    if not plan.chunks:
        raise UserError(f"{book_path.name}: nothing to read aloud")
    out_dir = settings.output_dir
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output directory {out_dir}: {exc.strerror}") from exc
    out_path = out_dir / f"{output_basename(book, settings)}.{settings.format}"
    job = Job.for_plan(store, plan, str(out_path.resolve()), locks)
    plan = job.plan
    with locks.hold_job(session, job.id, str(out_path)), log_context(session=session, job=job.id):
        outcome = _run_job(job, book, settings, rep, out_path, executor_factory, info)
        locks.check()
        if not settings.keep_work:
            job.cleanup()
    result = outcome.result
    return ConvertResult(
        outputs=result.outputs,
        subtitles=result.subtitles,
        duration=result.duration,
        chapters=len(plan.chapters),
        chunks_total=len(plan.chunks),
        chunks_synthesized=outcome.synthesized,
        chunks_skipped=len(outcome.done),
        wall_seconds=time.perf_counter() - t_start,
        synth_wall_seconds=outcome.synth_wall,
        session=session,
        voice=info,
        substitutions=outcome.substitutions,
        report=outcome.report,
    )


@dataclass(frozen=True)
class JobOutcome:
    result: AssemblyResult
    done: set[str]  # chunks already whole at the start
    synthesized: int  # chunks made during the run
    synth_wall: float
    substitutions: tuple[Substitution, ...]
    report: Path | None


def _run_job(
    job: Job,
    book: Book,
    settings: Settings,
    rep: Reporter,
    out_path: Path,
    executor_factory: ExecutorFactory,
    info: EngineInfo,
) -> JobOutcome:
    """Register the job, synthesise what is missing, assemble, write the report of replaced sentences."""
    plan, store, session = job.plan, job.storage, job.session
    wav_sizes: dict[str, int] = dict(job.register())
    done = set(wav_sizes)
    if book.cover is not None:
        save_cover(store, session, book.cover)
    pending = [b for b in plan.batches if any(cid not in done for cid in b.chunk_ids)]
    rep.message(
        f"session {session}: {len(plan.chapters)} chapters, {len(plan.chunks)} sentences"
        + (f", {len(done)} already done" if done else "")
    )
    options = AssemblyOptions(
        format=settings.format,
        bitrate=settings.bitrate,
        split_hours=settings.split_hours or None,
        subtitles=settings.subtitles,
        encode_jobs=settings.effective_encode_jobs,
    )

    def read_chunk(cid: str) -> bytes:
        return store.get_bytes(chunk_key(session, cid))

    # m4b/m4a with 2+ encode jobs: pieces of the book are encoded while the rest is synthesised.
    # Each chunk's WAV size is filled by the done-checks: assembly lays the book out from it (and
    # reads no storage metadata again).
    streaming = StreamingAssembler.open(
        plan, read_chunk, out_path, options, cover=book.cover, chunk_sizes=wav_sizes.get
    )
    try:
        if streaming is not None:
            for b in plan.batches:
                if all(cid in done for cid in b.chunk_ids):
                    streaming.batch_done(b.id)
        rep.synthesis_started(plan, done)
        t_synth = time.perf_counter()
        batch_sizes = {b.id: len(b.chunk_ids) for b in plan.batches}

        def on_batch(result: BatchResult) -> None:
            rep.batch_done(result, batch_sizes.get(result.batch_id, len(result.chunks) + result.skipped))
            if streaming is not None:
                streaming.batch_done(result.batch_id)

        if pending:
            executor = executor_factory(store, info, settings)
            try:
                executor.run(plan, pending, on_batch)
            finally:
                close = getattr(executor, "close", None)
                if close is not None:
                    close()
        rep.synthesis_finished()
        synth_wall = time.perf_counter() - t_synth
        job.locks.check()

        wav_sizes.update(stored_chunk_sizes(store, plan))  # once: per chunk was quadratic in the book's length
        now_done = set(wav_sizes)
        # Made during this run, whoever made them (a duplicate or a task left queued by an earlier run).
        synthesized = len(now_done - done)
        missing = [c.id for c in plan.chunks if c.id not in now_done]
        if missing:
            raise SynthesisError(f"{len(missing)} sentences have no audio after synthesis; rerun to resume")
        substitutions = load_substitutions(store, plan)

        rep.phase("assembling")
        if streaming is not None:
            result = streaming.finish()
        else:
            result = assemble(
                plan,
                read_chunk,
                out_path,
                options,
                cover=book.cover,
                chunk_sizes=wav_sizes.get,
            )
    except BaseException:
        if streaming is not None:
            streaming.abort()
        raise
    report = write_report(out_path, plan, substitutions)
    return JobOutcome(result, done, synthesized, synth_wall, tuple(substitutions), report)
