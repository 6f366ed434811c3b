"""Chunk audio -> the final chaptered audiobook (one file, or several parts), plus subtitles.

Design (two passes, one chunk in memory at a time):

1. *Measure.* ffmpeg needs the chapter list (an ffmetadata input) before it reads the audio on
   stdin, so every chunk's sample count is known first. With ``chunk_sizes`` (the WAV byte size of
   a chunk, e.g. ``Storage.size``) this costs no audio I/O: our chunks are canonical 44-byte-header
   WAVs, so samples = (size - 44) / 2. Without it each chunk is read and parsed once.
   From the counts come the exact layout of the book: every chunk's first sample, every chapter's
   first sample, hence chapter marks and subtitle cues that are exact sample offsets of the output.
2. *Stream.* Per output file one ffmpeg is started; for each chapter, each chunk's PCM and then
   ``pause_after_ms`` of silence are written to its stdin. Every chunk's real sample count is
   checked against the measured one, so the metadata written up front can never drift from the
   audio (a mismatch raises CorruptAudioError naming the chunk).

Parallel encoding (``AssemblyOptions.encode_jobs`` > 1, AAC formats: m4b, m4a). One ffmpeg encodes
about 130x real time on one core, so a 20-hour book spends ~10 minutes in step 2. With several jobs,
each file is cut into pieces that separate ffmpeg processes encode at once to raw AAC (ADTS); then
one more ffmpeg copies the joined frames into the container with the tags, chapters and cover. The
cuts keep the result identical in timing to a serial encode, sample for sample:

- every cut is a multiple of 1024 samples (one AAC frame) from the file's start, so every piece but
  the last is a whole number of frames and adds no padding;
- ffmpeg's AAC encoder starts each piece with one priming frame (1024 samples of delay): it is
  dropped from every piece but the first, whose priming the MP4 edit list hides as usual (the frame
  counts are checked: an encoder that behaves otherwise is an error, never a silent drift);
- every cut lies inside a pause, with at least ``JOIN_GUARD`` silent samples on each side: AAC
  frames overlap their neighbours by 1024 samples, and in silence the two encoders agree exactly,
  so a join leaves no click (a cut in speech would leave a ~46 ms artefact).

Chapter marks and subtitle cues are computed from the same exact layout as in the serial case. One
difference remains: a serial MP4 ends exactly on its last sample (the edit list trims the last
frame's padding), a joined one plays up to 1023 samples (46 ms at 22.05 kHz) of silence more at the
very end. A file without a long-enough pause (every pause under ~0.2 s) is encoded serially.

Streaming (:class:`StreamingAssembler`, used by the pipeline for m4b/m4a with ``encode_jobs`` > 1):
the same pieces, but cut after synthesis batches and encoded while the rest of the book is still
being synthesised, so that assembly costs little more than the join once the last batch is done.
Its cuts cannot be placed on the book's frame grid (the length of what comes before is not known
yet), so each piece is made a whole number of frames by stretching or shortening its last pause by
at most 512 samples; the marks and cues follow the real pauses and stay exact (see the class).

Outputs (audio and subtitles) are written under temporary names and moved to the final names only
when everything succeeded; on failure the temporaries are removed, so an earlier good output is
never damaged and no partial file ever carries the final name. With ``AssemblyOptions.temp_dir``
(the pipeline passes its scratch folder in the work directory) every temporary, pieces included,
lives there and the output folder only ever receives finished files (:mod:`ebook2audio.scratch`);
without it they are hidden files beside the output.
"""

from __future__ import annotations

import bisect
import contextlib
import glob
import logging
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

from ebook2audio.audio import adts
from ebook2audio.audio import subtitles as subs
from ebook2audio.audio.ffmpeg import (
    EncodeSpec,
    MetaChapter,
    PcmEncoder,
    ProbeResult,
    ffmetadata,
    image_ok,
    output_format,
    probe,
)
from ebook2audio.audio.pcm import CorruptAudioError, ms_to_samples, parse_wav, samples_from_wav_size
from ebook2audio.errors import AssemblyError, ConfigError
from ebook2audio.model import ChapterMark, Chunk, Cover, Metadata, Plan
from ebook2audio.scratch import move_into_place

log = logging.getLogger(__name__)

__all__ = [
    "AssemblyOptions",
    "AssemblyResult",
    "ChapterLayout",
    "ChunkSpan",
    "PartResult",
    "ProbeResult",
    "StreamingAssembler",
    "assemble",
    "book_tags",
    "layout_book",
    "piece_bounds",
    "probe",
    "split_parts",
    "stream_pieces",
]

FRAME = adts.SAMPLES_PER_FRAME  # samples in one AAC frame
JOIN_GUARD = 2 * FRAME  # silent samples needed on each side of a cut between two pieces
MIN_PIECE_SECONDS = 60.0  # shorter pieces cost more in process starts than they gain
PIECES_PER_JOB = 4  # several pieces per job, so that unequal speeds even out

# ISO 639-1 -> ISO 639-2/B, for the audio stream's language field of MP4 files.
_ISO639_2 = {
    "ar": "ara", "bg": "bul", "ca": "cat", "cs": "cze", "cy": "wel", "da": "dan", "de": "ger",
    "el": "gre", "en": "eng", "eo": "epo", "es": "spa", "et": "est", "eu": "baq", "fa": "per",
    "fi": "fin", "fr": "fre", "ga": "gle", "he": "heb", "hi": "hin", "hr": "hrv", "hu": "hun",
    "id": "ind", "is": "ice", "it": "ita", "ja": "jpn", "ka": "geo", "ko": "kor", "la": "lat",
    "lt": "lit", "lv": "lav", "nb": "nob", "nl": "dut", "nn": "nno", "no": "nor", "pl": "pol",
    "pt": "por", "ro": "rum", "ru": "rus", "sk": "slo", "sl": "slv", "sr": "srp", "sv": "swe",
    "sw": "swa", "tr": "tur", "uk": "ukr", "vi": "vie", "zh": "chi",
}  # fmt: skip


@dataclass(frozen=True)
class AssemblyOptions:
    format: str = "m4b"  # m4b, m4a, mp3, opus, ogg, flac, wav
    bitrate: str = "64k"  # lossy formats only
    split_hours: float | None = None  # None: one file, whatever its length
    subtitles: bool = True
    subtitle_formats: tuple[str, ...] = ("srt", "vtt")
    tags_extra: Mapping[str, str] = field(default_factory=dict)  # added to (and override) the tags
    # ffmpeg processes encoding pieces of each file at once (m4b and m4a; other formats: 1).
    # 1 = one ffmpeg streams the whole file. The result has the same timing either way.
    encode_jobs: int = 1
    # Where temporaries go (pieces, outputs before their final move); None: hidden beside the output.
    temp_dir: Path | None = None


@dataclass(frozen=True)
class ChunkSpan:
    """Where one chunk lies in the book, in samples from the start of the whole book."""

    chunk: Chunk
    start: int
    samples: int  # speech
    pause: int  # silence after it

    @property
    def end(self) -> int:
        return self.start + self.samples + self.pause


@dataclass(frozen=True)
class ChapterLayout:
    index: int  # PlannedChapter.index
    title: str
    spans: tuple[ChunkSpan, ...]

    @property
    def start(self) -> int:
        return self.spans[0].start

    @property
    def end(self) -> int:
        return self.spans[-1].end


@dataclass(frozen=True)
class PartResult:
    path: Path
    duration: float  # seconds of audio in this file
    chapters: tuple[ChapterMark, ...]  # times from the start of this file
    subtitles: tuple[Path, ...]


@dataclass(frozen=True)
class AssemblyResult:
    outputs: tuple[Path, ...]  # the audio files, in order
    duration: float  # seconds, all parts together
    chapters: tuple[ChapterMark, ...]  # whole-book times (equal to the file's when not split)
    subtitles: tuple[Path, ...]
    parts: tuple[PartResult, ...] = ()  # per-file details (one entry when not split)


# --------------------------------------------------------------------------- pure layout


def layout_book(
    plan: Plan, samples_of: Callable[[str], int], pauses: Mapping[str, int] | None = None
) -> tuple[ChapterLayout, ...]:
    """Lay out every non-empty chapter: each chunk's first sample, from per-chunk sample counts.

    ``pauses`` (chunk id -> samples) overrides the planned pause after some chunks (the streaming
    assembler's frame-aligned cuts). Chapters without chunks are skipped. Raises AssemblyError on a
    chunk id unknown to the plan or when the plan holds no audio at all.
    """
    chunks = plan.chunk_map()
    rate = plan.sample_rate
    pos = 0
    chapters: list[ChapterLayout] = []
    for planned in plan.chapters:
        if not planned.chunk_ids:
            log.debug("chapter %d (%r) has no chunks: skipped", planned.index, planned.title)
            continue
        spans = []
        for cid in planned.chunk_ids:
            chunk = chunks.get(cid)
            if chunk is None:
                raise AssemblyError(f"chapter {planned.index} lists chunk {cid} that the plan does not hold")
            n = samples_of(cid)
            pause = pauses[cid] if pauses and cid in pauses else ms_to_samples(chunk.pause_after_ms, rate)
            spans.append(ChunkSpan(chunk=chunk, start=pos, samples=n, pause=pause))
            pos += n + pause
        title = planned.title.strip() or f"Chapter {len(chapters) + 1}"
        chapters.append(ChapterLayout(index=planned.index, title=title, spans=tuple(spans)))
    if not chapters or pos == 0:
        raise AssemblyError("nothing to assemble: the plan holds no audio")
    return tuple(chapters)


def split_parts(
    chapters: Sequence[ChapterLayout], max_samples: int | None
) -> tuple[tuple[ChapterLayout, ...], ...]:
    """Group whole chapters into parts of at most ``max_samples`` each.

    A new part starts at the chapter boundary that would make the current part exceed the limit; a
    single chapter longer than the limit stays whole, in a part of its own.
    """
    if max_samples is None:
        return (tuple(chapters),)
    parts: list[list[ChapterLayout]] = []
    current: list[ChapterLayout] = []
    for chapter in chapters:
        if current and chapter.end - current[0].start > max_samples:
            parts.append(current)
            current = []
        current.append(chapter)
    if current:
        parts.append(current)
    return tuple(tuple(p) for p in parts)


def piece_bounds(
    part: Sequence[ChapterLayout], jobs: int, rate: int, min_piece_seconds: float | None = None
) -> tuple[int, ...]:
    """Where to cut one output file into pieces for ``jobs`` parallel encoders.

    Returns sample offsets from the file's start: 0, the cuts, then the file's length (so
    ``(0, length)`` means one piece). A cut is a multiple of FRAME with JOIN_GUARD silent samples
    on each side, inside the pause after a chunk. Pieces aim at ``1 / (jobs * PIECES_PER_JOB)`` of
    the file, and at least ``min_piece_seconds`` (default MIN_PIECE_SECONDS). Pure.
    """
    offset = part[0].start
    total = part[-1].end - offset
    if jobs <= 1:
        return (0, total)
    min_s = MIN_PIECE_SECONDS if min_piece_seconds is None else min_piece_seconds
    target = max(round(min_s * rate), -(-total // (jobs * PIECES_PER_JOB)), FRAME)
    cuts = [0]
    for chapter in part:
        for span in chapter.spans:
            silent_from = span.start - offset + span.samples
            cut = (span.end - offset - JOIN_GUARD) // FRAME * FRAME  # the last frame start that fits
            if cut - JOIN_GUARD < silent_from or cut - cuts[-1] < target or total - cut < target // 4:
                continue
            cuts.append(cut)
    return (*cuts, total)


def _iso639_2(language: str) -> str:
    primary = language.replace("_", "-").split("-")[0].lower()
    if len(primary) == 3 and primary.isalpha():
        return primary
    return _ISO639_2.get(primary, "")


def book_tags(
    metadata: Metadata,
    format: str,
    *,
    fallback_title: str = "",
    language: str = "",
    part: int | None = None,
    parts: int | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The global tags of an output file (empty values are dropped when written)."""
    fmt = output_format(format)
    title = metadata.title.strip() or fallback_title
    authors = ", ".join(a.strip() for a in metadata.authors if a.strip())
    date = metadata.year if fmt.name == "mp3" and metadata.year else metadata.date
    tags = {
        "title": title,
        "artist": authors,
        "album_artist": authors,
        "album": title,
        "date": date,
        "genre": "Audiobook",
        "comment": metadata.description,
        "description": metadata.description,
        "publisher": metadata.publisher,
        "language": metadata.language or language,
    }
    if fmt.name == "m4b":
        tags["media_type"] = "2"  # iTunes 'stik' = audiobook
    if part is not None:
        tags["track"] = f"{part}/{parts}" if parts else str(part)
    tags.update(extra or {})
    return {k: v.strip() for k, v in tags.items() if v and v.strip()}


# --------------------------------------------------------------------------- staging


class _Staging:
    """Temporary outputs (in ``temp_dir``, else next to their final names); moved to their final
    names together at the end, or removed."""

    def __init__(self, temp_dir: Path | None = None) -> None:
        self._pairs: list[tuple[Path, Path]] = []
        self._dir = temp_dir

    def temp_for(self, final: Path) -> Path:
        """A fresh temporary name for ``final``: "<random>.part.EXT" in the temp folder, else
        ".NAME.<random>.part.EXT" beside ``final`` (created by whoever writes it, so it gets the
        usual permissions)."""
        if self._dir is not None:
            tmp = self._dir / f"{secrets.token_hex(6)}.part{final.suffix}"
        else:
            tmp = final.with_name(f".{final.stem}.{secrets.token_hex(4)}.part{final.suffix}")
        self._pairs.append((tmp, final))
        return tmp

    def commit(self) -> None:
        for tmp, final in self._pairs:
            try:
                move_into_place(tmp, final)
            except OSError as exc:
                raise AssemblyError(f"cannot rename the finished output to {final}: {exc.strerror}") from exc
        self._pairs.clear()

    def discard(self) -> None:
        for tmp, _ in self._pairs:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._pairs.clear()


# --------------------------------------------------------------------------- assembly


def _measure(
    plan: Plan, read_chunk: Callable[[str], bytes], chunk_sizes: Callable[[str], int | None] | None
) -> Callable[[str], int]:
    if chunk_sizes is None:
        return lambda cid: len(_read_pcm(cid, read_chunk, plan.sample_rate)) // 2
    sizes = chunk_sizes

    def from_size(cid: str) -> int:
        size = sizes(cid)
        if size is None:
            raise CorruptAudioError(f"chunk {cid}: no audio stored", chunk_id=cid)
        try:
            return samples_from_wav_size(size)
        except CorruptAudioError as exc:
            raise CorruptAudioError(f"chunk {cid}: {exc}", chunk_id=cid) from exc

    return from_size


def _read_pcm(cid: str, read_chunk: Callable[[str], bytes], sample_rate: int) -> bytes:
    try:
        rate, pcm = parse_wav(read_chunk(cid))
    except CorruptAudioError as exc:
        raise CorruptAudioError(f"chunk {cid}: {exc}", chunk_id=cid) from exc
    if rate != sample_rate:
        raise CorruptAudioError(f"chunk {cid}: sample rate {rate} Hz, the plan says {sample_rate} Hz", cid)
    return pcm


def _part_path(out_path: Path, number: int, count: int) -> Path:
    """``out_path`` itself, or "NAME - Part N.ext" (N zero-padded so that names sort in order)."""
    if count == 1:
        return out_path
    return out_path.with_name(f"{out_path.stem} - Part {number:0{len(str(count))}d}{out_path.suffix}")


def _warn_stale_parts(out_path: Path, outputs: set[Path]) -> None:
    """Parts of an earlier run that this run did not rewrite (it made fewer parts) would mislead."""
    pattern = f"{glob.escape(out_path.stem)} - Part *{glob.escape(out_path.suffix)}"
    stale = sorted(p.name for p in out_path.parent.glob(pattern) if p not in outputs)
    if stale:
        log.warning("older parts not written by this run remain: %s", ", ".join(stale))


def _cover_file(cover: Cover | None, fmt_cover: str | None, workdir: Path) -> tuple[Path | None, bool]:
    """Write the cover where ffmpeg can read it; (path, copy-as-is) or (None, _) when unusable."""
    if cover is None or not cover.data:
        return None, True
    if fmt_cover is None:
        log.debug("the output format cannot hold a cover: cover skipped")
        return None, True
    data = cover.data
    if data.startswith(b"\xff\xd8\xff"):
        path, copy = workdir / "cover.jpg", True
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        path, copy = workdir / "cover.png", True
    else:
        path, copy = workdir / "cover.img", False  # GIF, WebP, ...: re-encoded to JPEG
    path.write_bytes(data)
    if not image_ok(path):
        log.warning("the cover image (%s, %d bytes) cannot be decoded: cover skipped", cover.mime, len(data))
        return None, True
    return path, copy


def _cues(part: Sequence[ChapterLayout], rate: int) -> Iterator[subs.Cue]:
    offset = part[0].start
    for chapter in part:
        for span in chapter.spans:
            start = span.start - offset
            text = span.chunk.display.strip() or span.chunk.text.strip()
            yield subs.Cue(start=start / rate, end=(start + span.samples) / rate, text=text)


@dataclass(frozen=True)
class _Job:
    """What every part of one assembly shares."""

    plan: Plan
    read_chunk: Callable[[str], bytes]
    out_path: Path
    options: AssemblyOptions
    workdir: Path
    cover_path: Path | None
    cover_copy: bool
    parts: int


def _part_output(job: _Job, part: Sequence[ChapterLayout], number: int) -> tuple[Path, EncodeSpec]:
    """The final path of one output file, and how to encode it (its ffmetadata file written)."""
    plan, rate = job.plan, job.plan.sample_rate
    fmt = output_format(job.options.format)
    final = _part_path(job.out_path, number, job.parts)
    offset = part[0].start
    tags = book_tags(
        plan.metadata,
        fmt.name,
        fallback_title=job.out_path.stem,
        language=plan.voice.language,
        part=number if job.parts > 1 else None,
        parts=job.parts,
        extra=job.options.tags_extra,
    )
    meta_file = job.workdir / f"part{number}.ffmeta"
    meta_chapters = [MetaChapter(c.title, c.start - offset, c.end - offset) for c in part]
    meta_file.write_text(ffmetadata(tags, meta_chapters, rate), encoding="utf-8")
    language = _iso639_2(plan.metadata.language or plan.voice.language)
    spec = EncodeSpec(
        format=fmt.name,
        sample_rate=rate,
        bitrate=job.options.bitrate,
        metadata_file=meta_file,
        cover_file=job.cover_path,
        cover_copy=job.cover_copy,
        stream_tags={"language": language} if fmt.cover == "mp4" and language else {},
    )
    return final, spec


def _finish_part(job: _Job, part: Sequence[ChapterLayout], final: Path, staging: _Staging) -> PartResult:
    """Write the subtitles of one output file; its PartResult."""
    rate = job.plan.sample_rate
    offset = part[0].start
    sub_paths: list[Path] = []
    if job.options.subtitles:
        for kind in job.options.subtitle_formats:
            sub_final = final.with_suffix(f".{kind}")
            with open(staging.temp_for(sub_final), "x", encoding="utf-8", newline="\n") as fh:
                fh.writelines(subs.render(kind, _cues(part, rate)))
            sub_paths.append(sub_final)
    marks = tuple(
        ChapterMark(title=c.title, start=(c.start - offset) / rate, end=(c.end - offset) / rate) for c in part
    )
    duration = (part[-1].end - offset) / rate
    return PartResult(path=final, duration=duration, chapters=marks, subtitles=tuple(sub_paths))


def _encode_part(
    job: _Job, part: Sequence[ChapterLayout], number: int, staging: _Staging, on_chunk: Callable[[], None]
) -> PartResult:
    rate = job.plan.sample_rate
    fmt = output_format(job.options.format)
    final, spec = _part_output(job, part, number)
    offset = part[0].start
    duration = (part[-1].end - offset) / rate
    bounds = (0, part[-1].end - offset)
    if job.options.encode_jobs > 1 and fmt.codec == "aac":
        bounds = piece_bounds(part, job.options.encode_jobs, rate)
    log.info(
        "encoding %s (%d chapters, %.0f s%s)",
        final.name,
        len(part),
        duration,
        f", {len(bounds) - 1} pieces in {job.options.encode_jobs} processes" if len(bounds) > 2 else "",
    )
    if len(bounds) > 2:
        _encode_pieces(job, part, bounds, spec, staging.temp_for(final), final.name, on_chunk)
    else:
        with PcmEncoder(spec, staging.temp_for(final), label=final.name) as encoder:
            for chapter in part:
                for span in chapter.spans:
                    encoder.write(_checked_pcm(job, span))
                    if span.pause:
                        encoder.write(bytes(2 * span.pause))
                    on_chunk()
            encoder.finish()
    return _finish_part(job, part, final, staging)


def _checked_pcm(job: _Job, span: ChunkSpan) -> bytes:
    pcm = _read_pcm(span.chunk.id, job.read_chunk, job.plan.sample_rate)
    if len(pcm) // 2 != span.samples:
        raise CorruptAudioError(
            f"chunk {span.chunk.id}: {len(pcm) // 2} samples, but {span.samples} were "
            "measured (non-canonical WAV header, or it changed meanwhile)",
            span.chunk.id,
        )
    return pcm


class _Cancelled(Exception):
    """Another piece failed: this one stops early (never escapes _encode_pieces)."""


def _encode_pieces(
    job: _Job,
    part: Sequence[ChapterLayout],
    bounds: Sequence[int],
    spec: EncodeSpec,
    out: Path,
    label: str,
    on_chunk: Callable[[], None],
) -> None:
    """Encode ``part`` as pieces ``bounds`` in parallel ffmpeg processes, then join them into ``out``."""
    offset = part[0].start
    spans = [s for chapter in part for s in chapter.spans]
    starts = [s.start - offset for s in spans]
    pieces = len(bounds) - 1
    stop = threading.Event()
    lock = threading.Lock()

    def chunk_done() -> None:
        with lock:
            on_chunk()

    def encode_piece(k: int, path: Path) -> None:
        lo, hi = bounds[k], bounds[k + 1]
        piece_spec = EncodeSpec(
            format=spec.format, sample_rate=spec.sample_rate, bitrate=spec.bitrate, muxer="adts"
        )
        with PcmEncoder(piece_spec, path, label=f"{label} (piece {k + 1} of {pieces})") as encoder:
            for i in range(max(0, bisect.bisect_right(starts, lo) - 1), len(spans)):
                if starts[i] >= hi:
                    break
                if stop.is_set():
                    raise _Cancelled
                span, start = spans[i], starts[i]
                if lo <= start < hi:  # cuts lie in pauses: a chunk's speech is in one piece
                    encoder.write(_checked_pcm(job, span))
                    chunk_done()
                quiet = min(start + span.samples + span.pause, hi) - max(start + span.samples, lo)
                if quiet > 0:
                    encoder.write(bytes(2 * quiet))
            encoder.finish()

    with tempfile.TemporaryDirectory(prefix=f".{out.stem}.pieces-", dir=out.parent) as tmp:
        paths = [Path(tmp) / f"{k:05d}.aac" for k in range(pieces)]
        with ThreadPoolExecutor(max_workers=min(job.options.encode_jobs, pieces)) as pool:
            futures = [pool.submit(encode_piece, k, paths[k]) for k in range(pieces)]
            try:
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                failed = any(f.exception() is not None for f in done)
            except BaseException:  # interrupted: let the running pieces stop at their next chunk
                failed = True
                raise
            finally:
                if failed:
                    stop.set()
                    for f in futures:
                        f.cancel()
        for f in futures:
            exc = None if f.cancelled() else f.exception()
            if exc is not None and not isinstance(exc, _Cancelled):
                raise exc
        _join_pieces(spec, out, label, [(paths[k], bounds[k + 1] - bounds[k]) for k in range(pieces)])


def _join_pieces(spec: EncodeSpec, out: Path, label: str, pieces: Iterable[tuple[Path, int]]) -> None:
    """Mux ADTS ``pieces`` (path, samples), in order, into ``out`` with ``spec``'s tags, chapters, cover.

    ``pieces`` may be lazy (a piece still being encoded is waited for as the join reaches it).

    Every piece's frames are copied, the priming frame of each but the first dropped; the first
    piece's priming stays and is hidden by the edit list, as in a serial encode. Each piece must
    hold exactly its samples in whole frames plus the priming frame (else AssemblyError: a drift
    is never silent). Piece files are removed once copied.
    """
    with PcmEncoder(replace(spec, input="adts", input_delay=FRAME), out, label=label) as muxer:
        for k, (path, samples) in enumerate(pieces):
            expected = -(-samples // FRAME) + 1
            with path.open("rb") as fh:
                frames = adts.copy_frames(fh, muxer.write, skip=1 if k else 0)
            if frames != expected:
                raise AssemblyError(
                    f"ffmpeg's AAC encoder wrote {frames} frames for piece {k + 1} of {label}, "
                    f"{expected} expected: encode with one process (encode_jobs=1)"
                )
            path.unlink()
        muxer.finish()


def assemble(
    plan: Plan,
    read_chunk: Callable[[str], bytes],
    out_path: Path,
    options: AssemblyOptions | None = None,
    cover: Cover | None = None,
    progress: Callable[[int], None] | None = None,
    chunk_sizes: Callable[[str], int | None] | None = None,
) -> AssemblyResult:
    """Encode the plan's chunk audio, in reading order, into ``out_path`` (or parts of it).

    ``read_chunk(id)`` returns a chunk's WAV bytes. ``chunk_sizes(id)``, when given, returns its
    byte size or None when missing (like ``Storage.size``) and saves reading every chunk twice.
    ``progress(n)`` is called after each chunk with the number of chunks written so far.
    A corrupt chunk raises CorruptAudioError (``chunk_id`` set); an ffmpeg failure raises
    AssemblyError; in both cases no output file is created or changed.
    """
    options = options or AssemblyOptions()
    fmt = output_format(options.format)
    for kind in options.subtitle_formats:
        if kind not in subs.SUBTITLE_KINDS:
            raise ConfigError(
                f"unknown subtitle format {kind!r}; choose from {', '.join(subs.SUBTITLE_KINDS)}"
            )
    rate = plan.sample_rate
    if options.encode_jobs < 1:
        raise ConfigError(f"encode_jobs must be at least 1, got {options.encode_jobs}")
    max_samples = None
    if options.split_hours is not None:
        if options.split_hours <= 0:
            raise ConfigError(f"--split-hours must be positive, got {options.split_hours}")
        max_samples = max(1, round(options.split_hours * 3600 * rate))
    out_path = Path(out_path)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AssemblyError(f"cannot create the output folder {out_path.parent}: {exc.strerror}") from exc

    chapters = layout_book(plan, _measure(plan, read_chunk, chunk_sizes))
    parts = split_parts(chapters, max_samples)
    done = 0

    def on_chunk() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done)

    staging = _Staging(options.temp_dir)
    results: list[PartResult] = []
    try:
        with tempfile.TemporaryDirectory(prefix="ebook2audio-assemble-", dir=options.temp_dir) as work:
            workdir = Path(work)
            cover_path, cover_copy = _cover_file(cover, fmt.cover, workdir)
            job = _Job(plan, read_chunk, out_path, options, workdir, cover_path, cover_copy, len(parts))
            for number, part in enumerate(parts, start=1):
                results.append(_encode_part(job, part, number, staging, on_chunk))
        staging.commit()
    except BaseException:
        staging.discard()
        raise
    _warn_stale_parts(out_path, {r.path for r in results})
    book_start = chapters[0].start
    return AssemblyResult(
        outputs=tuple(r.path for r in results),
        duration=(chapters[-1].end - book_start) / rate,
        chapters=tuple(
            ChapterMark(title=c.title, start=(c.start - book_start) / rate, end=(c.end - book_start) / rate)
            for c in chapters
        ),
        subtitles=tuple(p for r in results for p in r.subtitles),
        parts=tuple(results),
    )


# --------------------------------------------------------------------------- streaming


STREAM_CUT_PAUSE = 2 * JOIN_GUARD + FRAME // 2  # the shortest pause (samples) a streaming cut can sit in


@dataclass
class _StreamPiece:
    """Consecutive chunks (whole batches) encoded together as soon as all of them are synthesised."""

    index: int
    chunks: tuple[Chunk, ...]
    batches: set[str]  # batches not reported done yet
    path: Path
    samples: dict[str, int] = field(default_factory=dict)  # measured while encoding
    tail: int = 0  # silence after the last chunk inside this piece (samples)
    length: int = 0  # samples in all
    future: Future[None] | None = None  # its encoding, once submitted


def _stream_tail(pos: int, pause: int, last: bool) -> int:
    """The silence that closes a streaming piece holding ``pos`` samples before it.

    The planned ``pause``, less the JOIN_GUARD samples that open the next piece, stretched or
    shortened by at most FRAME // 2 so that the piece is a whole number of frames; the book's last
    piece keeps its pause as it is.
    """
    if last:
        return pause
    pause -= JOIN_GUARD
    rest = (pos + pause) % FRAME
    return pause - rest if rest <= FRAME // 2 else pause + FRAME - rest


def _stream_shape(piece: _StreamPiece, samples: Sequence[int], pieces: int, rate: int) -> tuple[int, int]:
    """(tail, length) of ``piece`` for its chunks' sample counts ``samples``. Pure."""
    pos = JOIN_GUARD if piece.index else 0
    tail = 0
    for i, (chunk, n) in enumerate(zip(piece.chunks, samples, strict=True)):
        pos += n
        pause = ms_to_samples(chunk.pause_after_ms, rate)
        if i == len(piece.chunks) - 1:
            pause = tail = _stream_tail(pos, pause, piece.index == pieces - 1)
        pos += pause
    return tail, pos


class StreamingAssembler:
    """Encodes an m4b/m4a while the book is being synthesised; ``finish()`` then only joins.

    The book is cut into pieces of whole batches, at the pause after a batch's last chunk (when it is
    at least STREAM_CUT_PAUSE samples long; shorter pauses keep the next batch in the same piece).
    ``batch_done(id)`` is called as batches are synthesised (in any order); a piece whose batches
    are all done is encoded at once, to raw AAC, in a background ffmpeg (at most
    ``options.encode_jobs`` at a time). ``finish()`` encodes what is left, joins the pieces' frames
    into the output with tags, chapters and cover (a stream copy), and writes the subtitles.

    So that a piece can be encoded knowing only its own chunks, each piece starts JOIN_GUARD samples
    into the pause that precedes it, and its last pause is stretched or shortened by at most half a
    frame (512 samples, 23 ms at 22.05 kHz) so that the piece is a whole number of AAC frames. The
    chapter marks and subtitle cues are computed from these real pause lengths, so they stay exact;
    only the pauses at cuts differ from the plan by those few milliseconds.

    Use ``StreamingAssembler.open(...)``: it returns None where streaming does not apply (a format
    other than m4b/m4a, ``split_hours``, ``encode_jobs`` 1, or no pause to cut in): then call
    ``assemble()`` after synthesis. On failure call ``abort()`` (or use it as a context manager).
    """

    def __init__(
        self,
        plan: Plan,
        read_chunk: Callable[[str], bytes],
        out_path: Path,
        options: AssemblyOptions,
        cover: Cover | None,
        pieces: list[list[Chunk]],
        chunk_sizes: Callable[[str], int | None] | None = None,
    ) -> None:
        self.plan = plan
        self.read_chunk = read_chunk
        self.chunk_sizes = chunk_sizes
        self.out_path = Path(out_path)
        self.options = options
        self.cover = cover
        if options.temp_dir is not None:
            self._tmp = tempfile.TemporaryDirectory(prefix="pieces-", dir=options.temp_dir)
        else:
            self._tmp = tempfile.TemporaryDirectory(
                prefix=f".{self.out_path.stem}.pieces-", dir=self.out_path.parent
            )
        tmp = Path(self._tmp.name)
        batch_of = {cid: b.id for b in plan.batches for cid in b.chunk_ids}
        self._pieces = [
            _StreamPiece(k, tuple(chunks), {batch_of.get(c.id, c.id) for c in chunks}, tmp / f"{k:05d}.aac")
            for k, chunks in enumerate(pieces)
        ]
        self._by_batch: dict[str, list[_StreamPiece]] = {}
        for piece in self._pieces:
            for b in piece.batches:
                self._by_batch.setdefault(b, []).append(piece)
        self._pool = ThreadPoolExecutor(max_workers=max(1, options.encode_jobs), thread_name_prefix="encode")
        self._stop = threading.Event()
        self._closed = False

    @classmethod
    def open(
        cls,
        plan: Plan,
        read_chunk: Callable[[str], bytes],
        out_path: Path,
        options: AssemblyOptions | None = None,
        cover: Cover | None = None,
        chunk_sizes: Callable[[str], int | None] | None = None,
    ) -> StreamingAssembler | None:
        """A streaming assembler for ``plan``, or None where streaming does not apply.

        ``chunk_sizes(id)`` (a chunk's WAV size, like ``Storage.size``) lets ``finish()`` lay the book
        out and start the final join before the last pieces are encoded.
        """
        options = options or AssemblyOptions()
        fmt = output_format(options.format)
        if fmt.codec != "aac" or options.split_hours is not None or options.encode_jobs < 2:
            return None
        pieces = stream_pieces(plan)
        if len(pieces) < 2:
            return None
        out_path = Path(out_path)
        try:
            out_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AssemblyError(f"cannot create the output folder {out_path.parent}: {exc.strerror}") from exc
        return cls(plan, read_chunk, out_path, options, cover, pieces, chunk_sizes)

    @property
    def pieces(self) -> int:
        return len(self._pieces)

    def batch_done(self, batch_id: str) -> None:
        """Batch ``batch_id`` is synthesised (its audio in storage): encode the pieces it completes."""
        for piece in self._by_batch.get(batch_id, ()):
            piece.batches.discard(batch_id)
            if not piece.batches:
                self._submit(piece)

    def _submit(self, piece: _StreamPiece) -> None:
        if piece.future is None and not self._closed:
            piece.future = self._pool.submit(self._encode, piece)

    def _encode(self, piece: _StreamPiece) -> None:
        rate = self.plan.sample_rate
        last = piece.index == len(self._pieces) - 1
        spec = EncodeSpec(
            format=self.options.format, sample_rate=rate, bitrate=self.options.bitrate, muxer="adts"
        )
        label = f"{self.out_path.name} (piece {piece.index + 1} of {len(self._pieces)})"
        with PcmEncoder(spec, piece.path, label=label) as encoder:
            pos = JOIN_GUARD if piece.index else 0
            if pos:
                encoder.write(bytes(2 * pos))
            for i, chunk in enumerate(piece.chunks):
                if self._stop.is_set():
                    raise _Cancelled
                pcm = _read_pcm(chunk.id, self.read_chunk, rate)
                encoder.write(pcm)
                piece.samples[chunk.id] = len(pcm) // 2
                pos += len(pcm) // 2
                del pcm
                pause = ms_to_samples(chunk.pause_after_ms, rate)
                if i == len(piece.chunks) - 1:
                    pause = piece.tail = _stream_tail(pos, pause, last)
                if pause:
                    encoder.write(bytes(2 * pause))
                pos += pause
            encoder.finish()
        piece.length = pos

    def finish(self) -> AssemblyResult:
        """Encode the pieces not encoded yet and join all of them into the output; the result.

        With ``chunk_sizes`` the join starts at once and takes the pieces in order as they are
        encoded; without, it waits for every piece first.
        """
        if self._closed:
            raise AssemblyError("the streaming assembler is closed")
        try:
            for piece in self._pieces:
                self._submit(piece)
            return self._join()
        except BaseException:
            self.abort()
            raise
        finally:
            self._close()

    def _join(self) -> AssemblyResult:
        plan, rate = self.plan, self.plan.sample_rate
        if self.chunk_sizes is None:
            for piece in self._pieces:
                assert piece.future is not None
                piece.future.result()
            measure: Callable[[str], int] = {
                c: n for p in self._pieces for c, n in p.samples.items()
            }.__getitem__
        else:
            measure = _measure(plan, self.read_chunk, self.chunk_sizes)
        samples: dict[str, int] = {}
        pauses: dict[str, int] = {}
        shapes: list[tuple[int, int]] = []
        for piece in self._pieces:
            counts = [measure(c.id) for c in piece.chunks]
            samples.update(zip((c.id for c in piece.chunks), counts, strict=True))
            tail, length = _stream_shape(piece, counts, len(self._pieces), rate)
            shapes.append((tail, length))
            guard = JOIN_GUARD if piece.index < len(self._pieces) - 1 else 0
            pauses[piece.chunks[-1].id] = tail + guard
        chapters = layout_book(plan, samples.__getitem__, pauses)
        total = chapters[-1].end - chapters[0].start
        if total != sum(length for _, length in shapes):
            raise AssemblyError(f"the pieces hold {sum(x for _, x in shapes)} samples, not {total}")

        def ready(k: int) -> tuple[Path, int]:
            """Piece ``k`` once encoded, checked against the layout the chapter marks come from."""
            piece = self._pieces[k]
            assert piece.future is not None
            piece.future.result()
            for c in piece.chunks:
                if piece.samples.get(c.id) != samples[c.id]:
                    raise CorruptAudioError(
                        f"chunk {c.id}: {piece.samples.get(c.id)} samples encoded, but {samples[c.id]} were "
                        "measured (non-canonical WAV header, or it changed meanwhile)",
                        c.id,
                    )
            if piece.length != shapes[k][1]:
                raise AssemblyError(f"piece {k + 1}: {piece.length} samples encoded, {shapes[k][1]} planned")
            return piece.path, piece.length

        fmt = output_format(self.options.format)
        staging = _Staging(self.options.temp_dir)
        try:
            with tempfile.TemporaryDirectory(prefix="ebook2audio-assemble-", dir=self.options.temp_dir) as work:
                workdir = Path(work)
                cover_path, cover_copy = _cover_file(self.cover, fmt.cover, workdir)
                job = _Job(
                    plan, self.read_chunk, self.out_path, self.options, workdir, cover_path, cover_copy, 1
                )
                final, spec = _part_output(job, chapters, 1)
                log.info(
                    "joining %s (%d chapters, %.0f s, %d pieces)",
                    final.name,
                    len(chapters),
                    total / rate,
                    len(self._pieces),
                )
                _join_pieces(spec, staging.temp_for(final), final.name, map(ready, range(len(self._pieces))))
                part = _finish_part(job, chapters, final, staging)
            staging.commit()
        except BaseException:
            staging.discard()
            raise
        _warn_stale_parts(self.out_path, {part.path})
        return AssemblyResult(
            outputs=(part.path,),
            duration=part.duration,
            chapters=part.chapters,
            subtitles=part.subtitles,
            parts=(part,),
        )

    def abort(self) -> None:
        """Stop the encoders and remove the pieces (nothing is written to the output's name)."""
        self._stop.set()
        for piece in self._pieces:
            if piece.future is not None:
                piece.future.cancel()
        self._close()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._tmp.cleanup()

    def __enter__(self) -> StreamingAssembler:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self._close()


def stream_pieces(plan: Plan) -> list[list[Chunk]]:
    """The streaming assembler's pieces: runs of whole batches, cut where a pause is long enough. Pure.

    A cut goes after a chunk that ends a batch (in reading order) when its pause is at least
    STREAM_CUT_PAUSE samples; chapters without chunks are skipped.
    """
    chunks = plan.chunk_map()
    batch_of = {cid: b.id for b in plan.batches for cid in b.chunk_ids}
    order = [chunks[cid] for ch in plan.chapters for cid in ch.chunk_ids if cid in chunks]
    pieces: list[list[Chunk]] = []
    current: list[Chunk] = []
    for i, chunk in enumerate(order):
        current.append(chunk)
        nxt = order[i + 1] if i + 1 < len(order) else None
        if nxt is None:
            break
        ends_batch = batch_of.get(chunk.id, chunk.id) != batch_of.get(nxt.id, nxt.id)
        if ends_batch and ms_to_samples(chunk.pause_after_ms, plan.sample_rate) >= STREAM_CUT_PAUSE:
            pieces.append(current)
            current = []
    if current:
        pieces.append(current)
    return pieces
