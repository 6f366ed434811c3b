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

Outputs (audio and subtitles) are written under temporary names in the target folder and renamed
over the final names only when everything succeeded; on failure the temporaries are removed, so an
earlier good output is never damaged and no partial file ever carries the final name.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
from ebook2audio.audio.pcm import CorruptAudioError, ms_to_samples, parse_wav, samples_from_wav_size, silence
from ebook2audio.errors import AssemblyError, ConfigError
from ebook2audio.model import ChapterMark, Chunk, Cover, Metadata, Plan

log = logging.getLogger(__name__)

__all__ = [
    "AssemblyOptions",
    "AssemblyResult",
    "ChapterLayout",
    "ChunkSpan",
    "PartResult",
    "ProbeResult",
    "assemble",
    "book_tags",
    "layout_book",
    "probe",
    "split_parts",
]

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


def layout_book(plan: Plan, samples_of: Callable[[str], int]) -> tuple[ChapterLayout, ...]:
    """Lay out every non-empty chapter: each chunk's first sample, from per-chunk sample counts.

    Chapters without chunks are skipped. Raises AssemblyError on a chunk id unknown to the plan or
    when the plan holds no audio at all.
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
            pause = ms_to_samples(chunk.pause_after_ms, rate)
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
    """Temporary outputs next to their final names; renamed together at the end, or removed."""

    def __init__(self) -> None:
        self._pairs: list[tuple[Path, Path]] = []

    def temp_for(self, final: Path) -> Path:
        """A fresh name ".NAME.<random>.part.EXT" beside ``final`` (created by whoever writes it,
        so it gets the usual permissions)."""
        tmp = final.with_name(f".{final.stem}.{secrets.token_hex(4)}.part{final.suffix}")
        self._pairs.append((tmp, final))
        return tmp

    def commit(self) -> None:
        for tmp, final in self._pairs:
            try:
                os.replace(tmp, final)
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


def _encode_part(
    job: _Job, part: Sequence[ChapterLayout], number: int, staging: _Staging, on_chunk: Callable[[], None]
) -> PartResult:
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
    duration = (part[-1].end - offset) / rate
    log.info("encoding %s (%d chapters, %.0f s)", final.name, len(part), duration)
    with PcmEncoder(spec, staging.temp_for(final), label=final.name) as encoder:
        for chapter in part:
            for span in chapter.spans:
                pcm = _read_pcm(span.chunk.id, job.read_chunk, rate)
                if len(pcm) // 2 != span.samples:
                    raise CorruptAudioError(
                        f"chunk {span.chunk.id}: {len(pcm) // 2} samples, but {span.samples} were "
                        "measured (non-canonical WAV header, or it changed meanwhile)",
                        span.chunk.id,
                    )
                encoder.write(pcm)
                del pcm
                if span.pause:
                    encoder.write(silence(span.chunk.pause_after_ms, rate))
                on_chunk()
        encoder.finish()
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
    return PartResult(path=final, duration=duration, chapters=marks, subtitles=tuple(sub_paths))


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

    staging = _Staging()
    results: list[PartResult] = []
    try:
        with tempfile.TemporaryDirectory(prefix="ebook2audio-assemble-") as work:
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
