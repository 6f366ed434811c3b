"""convert(): ingest -> plan -> execute -> assemble. Resume = skip the chunks already in storage."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

from . import output
from .acx import apply_preset, existing_package, package_dir, with_credits, write_package
from .audio.assemble import AssemblyOptions, AssemblyResult, StreamingAssembler, assemble
from .audio.chunkfmt import HEAD_BYTES, samples_from_head
from .audio.ffmpeg import analyze_audio, check_ffmpeg
from .audio.pcm import CorruptAudioError, ms_to_samples
from .audio.pieces import PieceSpec, batch_pieces, piece_codec
from .config import Settings, parse_chapter_selection
from .engines.base import EngineInfo
from .engines.registry import resolve_voice
from .errors import SynthesisError, UserError
from .executors.base import Executor
from .ingest import read_book
from .interrupts import note_progress
from .job import FileLocks, Job, JobLocks, check_session_id
from .jobstore import chunk_keys, done_chunks, read_chunk_pcm, save_cover, stored_chunk_sizes, stored_pieces
from .logging_setup import log_context
from .model import BatchResult, Book, ChapterMark, Mastering, Plan, Verification, VoiceSpec
from .plan import Pauses, PlanOptions, make_plan
from .poison import Substitution, load_substitutions
from .report import ChapterMeasure, load_checks, write_reports
from .scratch import Scratch, sweep_output_dir
from .storage.base import Storage
from .storage.local import LocalStorage
from .text.lexicon import Lexicon, load_lexicon, user_lexicon_path
from .verify import ChunkCheck

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
    already_converted: bool = False  # the outputs existed, made from this book with these settings
    lexicon_entries: int = 0  # entries of the pronunciation lexicon in use
    respelled: int = 0  # words it replaced
    verified: int = 0  # --verify: sentences heard by speech recognition (this run and earlier ones)
    retaken: int = 0  # of which fixed by a retake
    failed: tuple[str, ...] = ()  # still failing: "chapter C, sentence S 'text': problems"

    @property
    def realtime_factor(self) -> float:
        return self.duration / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def summary(self) -> list[str]:
        """What the CLI prints at the end: the files written, then one line of totals."""

        def hms(s: float) -> str:
            t = round(s)
            return f"{t // 3600}:{t % 3600 // 60:02d}:{t % 60:02d}"

        if self.already_converted:
            return [f"already converted: {path}" for path in self.outputs]
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
        if self.lexicon_entries:
            lines.insert(-1, f"lexicon: {self.respelled} words respelled ({self.lexicon_entries} entries)")
        if self.verified:
            lines[-1:-1] = [f"still failing after retakes: {f}" for f in self.failed]
            lines.insert(
                -1,
                f"verify: {self.verified} sentences heard, {self.retaken} fixed by a retake, "
                f"{len(self.failed)} still failing" + (f" (report: {self.report})" if self.report else ""),
            )
        return [*lines[:-1], *(f"replaced {s.describe()}" for s in self.substitutions), lines[-1]]


def book_session_id(path: Path) -> str:
    """Derived from the book's bytes, so rerunning the same command finds the same job."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def output_basename(book: Book, settings: Settings) -> str:
    """The audiobook's file name without extension (at most output.MAX_NAME_BYTES UTF-8 bytes)."""
    if settings.output_name:
        name = settings.output_name
    else:
        authors = ", ".join(book.metadata.authors[:2])
        title = book.metadata.title or "Untitled"
        name = f"{authors} - {title}" if authors else title
    return output.safe_name(name)


def lexicon_for(settings: Settings, env: Mapping[str, str] | None = None) -> Lexicon:
    """The user's lexicon (when the file exists) overridden by the book's (``--lexicon``)."""
    paths = [p for p in (user_lexicon_path(env),) if p.is_file()]
    if settings.lexicon != Path():
        paths.append(settings.lexicon)
    return load_lexicon(paths)


def mastering(settings: Settings) -> Mastering | None:
    return Mastering(loudness=settings.loudness, true_peak=settings.true_peak) if settings.master else None


def verification(settings: Settings, language: str) -> Verification | None:
    """``--verify``'s recipe for chunks in ``language`` (None without --verify)."""
    if not settings.verify:
        return None
    return Verification(
        language=language,
        model=settings.asr_model,
        takes=settings.verify_takes,
        max_wer=settings.verify_max_wer,
        max_cer=settings.verify_max_cer,
    )


def _verify_extra(settings: Settings) -> str:
    v = verification(settings, settings.language)
    return f";{v.key()}" if v is not None else ""


def output_fingerprint(
    book_digest: str, settings: Settings, info: EngineInfo, chapters: int, lexicon: Lexicon | None = None
) -> str:
    """The fingerprint of the audiobook ``settings`` make from the book of SHA-256 ``book_digest``
    (``chapters``: the book's chapter count, to read the chapter selection)."""
    selection = parse_chapter_selection(settings.chapters, chapters) if settings.chapters.strip() else []
    master = mastering(settings)
    audio = f"{master.key() if master else 'raw'};lexicon {lexicon.key() if lexicon else ''}"
    audio += f";preset {settings.preset}" if settings.preset else ""
    audio += _verify_extra(settings)
    return output.fingerprint(
        book_digest,
        replace(output.output_settings(
            info,
            speed=settings.speed,
            pauses=(settings.sentence_pause_ms, settings.paragraph_pause_ms, settings.chapter_pause_ms),
            chapters=tuple(selection) if selection != list(range(chapters)) else (),
            format=settings.format,
            bitrate=settings.bitrate,
            split_hours=settings.split_hours,
            subtitles=settings.subtitles,
        ), audio=audio),
    )


def select_chapters(book: Book, spec: str) -> Book:
    if not spec.strip():
        return book
    keep = parse_chapter_selection(spec, len(book.chapters))
    return replace(book, chapters=tuple(book.chapters[i] for i in keep))


def resolve(
    book: Book, settings: Settings, env: Mapping[str, str] | None = None
) -> tuple[VoiceSpec, EngineInfo]:
    language = settings.language or book.metadata.language or "en"
    spec = VoiceSpec(
        engine=settings.engine, voice=settings.voice, language=language, speed=settings.speed, sample=_sample_path(settings)
    )
    return spec, resolve_voice(spec, env)


def _sample_path(settings: Settings) -> str:
    """--voice-sample as an absolute path ("" without one)."""
    return str(settings.voice_sample.expanduser().absolute()) if settings.voice_sample != Path() else ""


def _sample_extra(settings: Settings) -> str:
    """The voice sample's SHA-256 for the request key: another recording is another audiobook."""
    if settings.voice_sample == Path():
        return ""
    from .engines.voice_sample import file_sha256

    return f";sample {file_sha256(settings.voice_sample.expanduser())}"


def plan_options(
    settings: Settings, parallel: int | None = None, lexicon: Lexicon | None = None, language: str = ""
) -> PlanOptions:
    """The planning options of ``settings``; ``parallel``: the workers sharing the batches
    (default: the embedded pool's size); ``lexicon``: the pronunciation lexicon (``lexicon_for``)."""
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
        master=mastering(settings),
        lexicon=lexicon or Lexicon(),
        verify=verification(settings, language or settings.language or "en"),
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
    settings = apply_preset(settings)  # --preset acx: mp3 192k, its loudness, no subtitles
    if settings.session:
        check_session_id(settings.session)
    check_ffmpeg()  # a too old $EBOOK2AUDIO_FFMPEG stops here, not after the synthesis
    digest = output.file_digest(book_path)
    lexicon = lexicon_for(settings, env)
    request = output.request_key(digest, settings, lexicon.key() + _verify_extra(settings) + _sample_extra(settings))
    known = None if settings.overwrite else output.recall(output.index_dir(env), request)
    if known is not None:  # the same command finished before: check its files without reading the book
        found = output.existing_output(
            known.out_path, known.fingerprint, split=known.split, subtitles=known.subtitles
        )
        if found.state == "done":
            paths = tuple(settings.output_dir / p.name for p in found.paths)
            voice = EngineInfo(**known.voice)  # type: ignore[arg-type]
            return _already_converted(paths, 0, voice, time.perf_counter() - t_start)
    book = read_book(book_path)
    for w in book.warnings:
        rep.message(f"warning: {w}")
    chapters_in_book = len(book.chapters)
    book = select_chapters(book, settings.chapters)
    spec, info = resolve(book, settings, env)
    if info.engine != spec.engine:
        rep.message(
            f"no {spec.engine} voice for language '{spec.language}': using {info.engine} voice '{info.voice}'"
        )
    rep.message(f"voice: {info.engine} {info.voice} ({info.language}, {info.sample_rate} Hz)")
    if settings.preset:
        book = with_credits(book, info)  # the opening and closing credits, read like chapters

    # The output: skipped when already made from this book with these settings, refused when made
    # otherwise (unless --overwrite), and its folder and name checked before any synthesis.
    out_dir = settings.output_dir
    base = output_basename(book, settings)
    out_path = package_dir(out_dir, base) if settings.preset else out_dir / f"{base}.{settings.format}"
    fingerprint = output_fingerprint(digest, settings, info, chapters_in_book, lexicon)
    if settings.preset:
        existing = existing_package(out_path, fingerprint)
    else:
        existing = output.existing_output(
            out_path, fingerprint, split=bool(settings.split_hours), subtitles=settings.subtitles
        )
    record = output.Record(out_path, fingerprint, bool(settings.split_hours), settings.subtitles, asdict(info))
    if existing.state == "done" and not settings.overwrite:
        output.remember(output.index_dir(env), request, record)  # the next rerun need not read the book
        return _already_converted(existing.paths, len(book.chapters), info, time.perf_counter() - t_start)
    if existing.state == "other" and not settings.overwrite:
        raise output.other_output_error(existing.paths)
    output.check_writable(out_dir, base, settings.format)
    sweep_output_dir(out_dir, base)

    session = settings.session or book_session_id(book_path)
    store = storage or LocalStorage(settings.work_dir)
    if locks is None:
        if not isinstance(store, LocalStorage):
            raise UserError("a conversion on shared storage needs the coordinator's lock")
        locks = FileLocks(store.root)
    options = plan_options(settings, parallel, lexicon, info.language or spec.language)
    if options.verify is not None:  # a missing model is one line before any work, not in a worker
        from .asr import resolve_model

        resolve_model(options.verify.language, options.verify.model, env)
    plan = make_plan(book, info, spec, session, options)
    # m4b/m4a: each batch's worker also encodes the batch's piece; the coordinator only joins.
    plan = replace(plan, pieces=piece_codec(settings.format, settings.bitrate, split=bool(settings.split_hours)))
    if not plan.chunks:
        raise UserError(f"{book_path.name}: nothing to read aloud")
    job = Job.for_plan(store, plan, str(out_path.resolve()), locks)
    plan = job.plan
    with locks.hold_job(session, job.id, str(out_path)), log_context(session=session, job=job.id):
        outcome = _run_job(job, book, settings, rep, out_path, executor_factory, info, fingerprint)
        locks.check()
        output.remember(output.index_dir(env), request, record)
        if not settings.keep_work:
            purge = outcome.purge_later
            if job.cleanup(discard=purge is not None) and purge is not None:
                purge()  # the workers delete what the cleanup moved aside
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
        lexicon_entries=len(lexicon),
        respelled=plan.respelled,
        verified=outcome.verified,
        retaken=outcome.retaken,
        failed=outcome.failed,
    )


@dataclass(frozen=True)
class JobOutcome:
    result: AssemblyResult
    done: set[str]  # chunks already whole at the start
    synthesized: int  # chunks made during the run
    synth_wall: float
    substitutions: tuple[Substitution, ...]
    report: Path | None
    verified: int = 0
    retaken: int = 0
    failed: tuple[str, ...] = ()
    # the executor's way to have the session's discarded folder deleted elsewhere (the workers), if any
    purge_later: Callable[[], None] | None = None


def _run_job(
    job: Job,
    book: Book,
    settings: Settings,
    rep: Reporter,
    out_path: Path,
    executor_factory: ExecutorFactory,
    info: EngineInfo,
    fingerprint: str,
) -> JobOutcome:
    """Register the job, synthesise what is missing, assemble, write the report of replaced sentences."""
    plan, store, session = job.plan, job.storage, job.session
    done = set(job.register())
    if book.cover is not None:
        save_cover(store, session, book.cover)
    if info.sample:  # --voice-sample: the workers (maybe on other machines) read it from the storage
        from .engines.voice_sample import store as store_sample

        store_sample(store, session, Path(info.path), info.sample)
    specs = batch_pieces(plan)
    pieces_stored = stored_pieces(store, session, job.id) if specs else set()
    pending = [
        b
        for b in plan.batches
        if any(cid not in done for cid in b.chunk_ids)
        or (b.id in specs and specs[b.id].key(session, job.id) not in pieces_stored)
    ]
    pending_ids = {b.id for b in pending}
    rep.message(
        f"session {session}: {len(plan.chapters)} chapters, {len(plan.chunks)} sentences"
        + (f", {len(done)} already done" if done else "")
    )
    scratch = Scratch.open(settings.work_dir, session)  # this run's temporaries (never the output folder)
    options = AssemblyOptions(
        format=settings.format,
        bitrate=settings.bitrate,
        split_hours=settings.split_hours or None,
        subtitles=settings.subtitles,
        encode_jobs=settings.effective_encode_jobs,
        tags_extra=output.fingerprint_tags(settings.format, fingerprint, _version()),
        temp_dir=scratch.path,
    )

    def read_chunk(cid: str) -> bytes:
        for key in chunk_keys(session, cid):
            try:
                return store.get_bytes(key)
            except (FileNotFoundError, KeyError):
                continue
        raise CorruptAudioError(f"chunk {cid}: no audio stored", chunk_id=cid)

    def chunk_samples(cid: str) -> int:
        """A chunk's length from its first bytes (FLAC STREAMINFO, WAV header): one small read."""
        for key in chunk_keys(session, cid):
            size = store.size(key)
            if size is not None:
                return samples_from_head(store.get_head(key, HEAD_BYTES), size)
        raise CorruptAudioError(f"chunk {cid}: no audio stored", chunk_id=cid)

    def fetch_piece(spec: PieceSpec) -> bytes | None:
        try:
            return store.get_bytes(spec.key(session, job.id))
        except (FileNotFoundError, KeyError):
            return None

    streaming: StreamingAssembler | None = None
    try:
        # m4b/m4a: the pieces are fetched (or, for a stretch no batch end can cut, encoded here) while
        # the rest of the book is synthesised; assembly then only joins them.
        streaming = StreamingAssembler.open(
            plan,
            out_path,
            options,
            cover=book.cover,
            fetch_piece=fetch_piece,
            read_pcm=lambda cid: read_chunk_pcm(store, session, cid, plan.sample_rate),
        )
        if streaming is not None:
            for b in plan.batches:
                if b.id not in pending_ids:
                    streaming.batch_done(b.id)
        rep.synthesis_started(plan, done)
        t_synth = time.perf_counter()
        batch_sizes = {b.id: len(b.chunk_ids) for b in plan.batches}

        def on_batch(result: BatchResult) -> None:
            rep.batch_done(result, batch_sizes.get(result.batch_id, len(result.chunks) + result.skipped))
            if streaming is not None:
                streaming.batch_done(result.batch_id)

        purge_later = None
        if pending:
            executor = executor_factory(store, info, settings)
            purge_later = getattr(executor, "purge_discarded_later", None)
            try:
                executor.run(plan, pending, on_batch)
            finally:
                close = getattr(executor, "close", None)
                if close is not None:
                    close()
        rep.synthesis_finished()
        synth_wall = time.perf_counter() - t_synth
        job.locks.check()

        # One listing: the chunks this run's workers wrote are whole (writes are atomic).
        now_done = done | set(stored_chunk_sizes(store, plan, verify=False))
        # Made during this run, whoever made them (a duplicate or a task left queued by an earlier run).
        synthesized = len(now_done - done)
        missing = [c.id for c in plan.chunks if c.id not in now_done]
        if missing:
            raise SynthesisError(f"{len(missing)} sentences have no audio after synthesis; rerun to resume")
        substitutions = load_substitutions(store, plan)

        rep.phase("assembling")
        if streaming is not None:
            result = streaming.finish()
        elif settings.preset:  # one MP3 per chapter, the credits and the retail sample (acx.py)
            result = write_package(
                plan,
                lambda cid: read_chunk_pcm(store, session, cid, plan.sample_rate),
                out_path,
                bitrate=settings.bitrate,
                true_peak=settings.true_peak,
                tags_extra=options.tags_extra,
                temp_dir=scratch.path,
            )
        else:
            result = assemble(
                plan, read_chunk, out_path, options, cover=book.cover, chunk_samples=chunk_samples
            )
    except BaseException as exc:
        if streaming is not None:
            streaming.abort()
        scratch.close()
        if isinstance(exc, KeyboardInterrupt):
            note_progress(exc, _kept(store, plan, done), len(plan.chunks))
        raise
    scratch.close()
    checks = load_checks(store, plan) if any(c.verify is not None for c in plan.chunks) else []

    def measure(mark: ChapterMark) -> ChapterMeasure | None:
        if len(result.outputs) != 1:
            return None  # split files: chapters are not at their book times
        stats = analyze_audio(result.outputs[0], span=(mark.start, mark.end - mark.start))
        return ChapterMeasure(stats.integrated, stats.true_peak)

    def chunk_times(listed: Sequence[ChunkCheck]) -> dict[str, tuple[float, float]]:
        """(start, seconds) in the book of the ``listed`` chunks: their chapters' lengths read back."""
        want, cmap, rate = {c.chunk_id for c in listed}, plan.chunk_map(), plan.sample_rate
        out: dict[str, tuple[float, float]] = {}
        for ch, mark in zip([ch for ch in plan.chapters if ch.chunk_ids], result.chapters, strict=False):
            if want.isdisjoint(ch.chunk_ids):
                continue
            t = mark.start
            for cid in ch.chunk_ids:
                n = chunk_samples(cid)
                if cid in want:
                    out[cid] = (t, n / rate)
                t += (n + ms_to_samples(cmap[cid].pause_after_ms, rate)) / rate
        return out

    report = write_reports(
        out_path, plan, substitutions, checks, marks=result.chapters, measure=measure, chunk_times=chunk_times
    )
    failed = tuple(
        f"chapter {c.chapter + 1}, sentence {c.index + 1} {c.text[:60]!r}: {'; '.join(c.verdict.problems)}"
        for c in checks
        if c.failed
    )
    retaken = sum(c.retaken and not c.failed for c in checks)
    return JobOutcome(
        result, done, synthesized, synth_wall, tuple(substitutions), report, len(checks), retaken, failed,
        purge_later,
    )


def _already_converted(paths: tuple[Path, ...], chapters: int, info: EngineInfo, wall: float) -> ConvertResult:
    return ConvertResult(
        outputs=paths,
        subtitles=(),
        duration=0.0,
        chapters=chapters,
        chunks_total=0,
        chunks_synthesized=0,
        chunks_skipped=0,
        wall_seconds=wall,
        synth_wall_seconds=0.0,
        session="",
        voice=info,
        already_converted=True,
    )


def _kept(store: Storage, plan: Plan, done: set[str]) -> int:
    """Sentences whose audio is in storage (after an interrupt: what a rerun will not redo)."""
    try:
        return len(done_chunks(store, plan))
    except Exception:  # storage unreachable: at least those done when this run started
        return len(done)


def _version() -> str:
    from . import __version__

    return __version__


def finished_outputs(book_path: Path, settings: Settings, env: Mapping[str, str] | None = None) -> tuple[Path, ...] | None:
    """The outputs ``convert(book_path, settings)`` would find already made (and skip), or None.
    Reads the book only when the finished-books index has no record of this command."""
    digest = output.file_digest(book_path)
    lexicon = lexicon_for(settings, env)
    known = output.recall(output.index_dir(env), output.request_key(digest, settings, lexicon.key()))
    if known is not None:
        found = output.existing_output(known.out_path, known.fingerprint, split=known.split, subtitles=known.subtitles)
        if found.state == "done":
            return found.paths
    book = read_book(book_path)
    chapters_in_book = len(book.chapters)
    book = select_chapters(book, settings.chapters)
    _spec, info = resolve(book, settings, env)
    out_path = settings.output_dir / f"{output_basename(book, settings)}.{settings.format}"
    fingerprint = output_fingerprint(digest, settings, info, chapters_in_book, lexicon)
    found = output.existing_output(out_path, fingerprint, split=bool(settings.split_hours), subtitles=settings.subtitles)
    return found.paths if found.state == "done" else None
