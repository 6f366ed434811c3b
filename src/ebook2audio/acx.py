"""``--preset acx``: the package ACX (Audible's publishing platform) asks for, as an output stage.

ACX's published audio submission requirements (help.acx.com, "ACX audio submission requirements";
room tone figures from ACX's own article on room tone), and what this stage does for each:

- one chapter per file, the section header read aloud: one MP3 per chapter of the plan, whose
  first sentence is the chapter's title;
- MP3, constant bit rate of 192 kb/s or more, 44.1 kHz, all files mono or all stereo: LAME at
  192 kb/s CBR (``ACX.bitrate``), resampled to 44.1 kHz by ffmpeg, mono;
- RMS between -23 and -18 dB, peaks at most -3 dB, noise floor at most -60 dB: the sentences are
  mastered to ``ACX_LOUDNESS`` LUFS with the usual -3 dBTP ceiling (the limiter aims at -4); a file
  shorter than a minute that its room tone pulls under the RMS aimed at (the credits) is mastered
  again as a whole, louder (``lift``); the pauses are digital silence;
- 0.5 to 1 s of room tone at the head, 1 to 5 s at the tail: ``ACX.head_s`` and ``ACX.tail_s`` of
  silence written around every file's speech (the planned pause after a chapter's last sentence is
  replaced by the tail);
- opening credits (title, authors, narrators) and closing credits ("You have been listening to
  ...", then "The end"): two more chapters, synthesised with the book (``with_credits``) and
  written to their own files;
- a retail sample of at most 5 minutes from the start of the book, without the credits: the first
  whole sentences of chapter 1 (and the next chapters, if it is short) up to ``ACX.sample_s``.

Pure but for ``write_package`` (ffmpeg, files) and ``existing_package`` (reads tags).
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import output
from .audio.assemble import AssemblyResult, book_tags
from .audio.ffmpeg import EncodeSpec, PcmEncoder, ffmetadata
from .audio.master import integrated_loudness, master_pcm
from .audio.pcm import ms_to_samples
from .config import Settings
from .errors import AssemblyError, ConfigError
from .model import Book, Chapter, Chunk, EngineInfo, Mastering, Metadata, Plan
from .scratch import move_into_place

log = logging.getLogger(__name__)

PRESETS = ("acx",)
# Mastering target. A chapter of Piper's mastered sentences with the book's pauses measures about
# 0.3 dB under its LUFS as plain RMS, espeak-ng's about 0.9 dB under (measured): -19.5 LUFS puts
# chapters at about -20 dB RMS. The room tone of a short file (the credits) takes up to 3 dB more
# away, and its peaks, held at -4 dBTP by the limiter, leave no room for a plain gain: ``lift``.
ACX_LOUDNESS = -19.5
ACX_RMS = -20.0  # dB: where a file's RMS is aimed
SHORT_S = 60.0  # files shorter than this (speech and pauses) are checked, and lifted, before encoding
RMS_SLACK = 0.5  # dB under ACX_RMS that a short file may stay
LIFT_MAX_DB = 6.0  # the most a short file is raised (into the limiter)
OPENING = "Opening Credits"
CLOSING = "Closing Credits"
SAMPLE = "Retail Sample"


@dataclass(frozen=True)
class AcxSpec:
    """ACX's numbers (limits as published) and what this stage writes within them."""

    sample_rate: int = 44100
    bitrate: str = "192k"
    min_kbps: int = 192
    channels: int = 1
    rms_min: float = -23.0  # dB, plain (unweighted) RMS of the whole file
    rms_max: float = -18.0
    peak_max: float = -3.0  # dB (checked as true peak, the stricter reading)
    noise_floor_max: float = -60.0  # dB
    head_min: float = 0.5  # s of room tone before the speech
    head_max: float = 1.0
    tail_min: float = 1.0  # s after it
    tail_max: float = 5.0
    max_minutes: float = 120.0  # per file
    sample_min_s: float = 60.0  # the retail sample: one to five minutes
    sample_max_s: float = 300.0
    head_s: float = 0.75  # what is written
    tail_s: float = 1.5  # short: silence lowers the RMS of the short files
    sample_s: float = 180.0  # the retail sample's speech, at most (whole sentences)


ACX = AcxSpec()


def check_preset(name: str) -> str:
    if name and name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    return name


def apply_preset(settings: Settings) -> Settings:
    """``settings`` with what the preset fixes: MP3 at 192 kb/s (or more, when asked), mastering at
    ACX_LOUDNESS with a ceiling at most -3 dBTP, no subtitles, no split (one file per chapter)."""
    if not check_preset(settings.preset):
        return settings
    kbps = _kbps(settings.bitrate)
    return replace(
        settings,
        format="mp3",
        bitrate=settings.bitrate if kbps is not None and kbps >= ACX.min_kbps else ACX.bitrate,
        master=True,
        loudness=ACX_LOUDNESS,
        true_peak=min(settings.true_peak, ACX.peak_max),
        subtitles=False,
        split_hours=0.0,
    )


def _kbps(bitrate: str) -> int | None:
    text = bitrate.strip().lower().removesuffix("k")
    return int(text) if text.isdigit() else None


# --------------------------------------------------------------------------- credits


def narrator(info: EngineInfo) -> str:
    """The voice's name as the credits say it: Piper's ``en_US-joe-medium`` is "Joe"."""
    if info.engine == "piper":
        parts = Path(info.voice).name.removesuffix(".onnx").split("-")
        if len(parts) >= 3 and parts[1]:
            return parts[1].replace("_", " ").title()
    if info.engine == "espeak":
        return "eSpeak"
    if info.sample:  # a cloned voice: its name is the sample's SHA-256, not something to read out
        return "XTTS" if info.engine == "xtts" else info.engine
    return info.voice


def _authors(md: Metadata) -> str:
    names = [a.strip() for a in md.authors if a.strip()]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def credits(md: Metadata, reader: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The paragraphs of the opening and the closing credits. Pure."""
    title = md.title.strip() or "Untitled"
    authors = _authors(md)
    written = f", written by {authors}" if authors else ""
    opening = (f"{title}{written}.", f"Read by {reader}, a synthetic voice.")
    holder = md.publisher.strip() or authors
    rights = ", ".join(p for p in (md.year, holder) if p)
    closing = (
        f"You have been listening to {title}{written}, read by {reader}.",
        *((f"Copyright {rights}.",) if rights else ()),
        "The end.",
    )
    return opening, closing


def with_credits(book: Book, info: EngineInfo) -> Book:
    """``book`` with the opening credits before its first chapter and the closing credits after its
    last, as chapters without a spoken title."""
    opening, closing = credits(book.metadata, narrator(info))
    return replace(book, chapters=(Chapter("", opening), *book.chapters, Chapter("", closing)))


# --------------------------------------------------------------------------- the package


def package_dir(out_dir: Path, base: str) -> Path:
    return out_dir / f"{base} (ACX)"


@dataclass(frozen=True)
class PackageFile:
    name: str  # file name, with .mp3
    title: str  # its title tag
    chunks: tuple[Chunk, ...]
    track: int | None  # None: the retail sample


def package_files(plan: Plan) -> list[PackageFile]:
    """The files of the package (credits first and last, as ``with_credits`` placed them), then the
    retail sample. Pure."""
    chunks = plan.chunk_map()
    chapters = [(pc, tuple(chunks[c] for c in pc.chunk_ids)) for pc in plan.chapters if pc.chunk_ids]
    if len(chapters) < 3:
        raise AssemblyError("an ACX package needs the credits and at least one chapter with text")
    width = max(2, len(str(len(chapters) - 1)))
    files: list[PackageFile] = []
    for number, (pc, spoken) in enumerate(chapters):
        if number == 0:
            title = OPENING
        elif number == len(chapters) - 1:
            title = CLOSING
        else:
            title = pc.title.strip() or f"Chapter {number}"
        name = output.safe_name(f"{number:0{width}d} {title}", limit=120)
        files.append(PackageFile(f"{name}.mp3", title, spoken, number + 1))
    sample: list[Chunk] = []
    speech = 0.0
    for _, spoken in chapters[1:-1]:
        for chunk in spoken:
            # Whole sentences while they fit; the first always (a single sentence is under a minute).
            if sample and speech + _estimate(chunk) > ACX.sample_max_s:
                break
            sample.append(chunk)
            speech += _estimate(chunk)
        else:
            continue
        break
    files.append(PackageFile(f"{SAMPLE}.mp3", SAMPLE, tuple(sample), None))
    return files


def _estimate(chunk: Chunk) -> float:
    """Seconds a chunk takes before its length is known (a fast reader's 15 characters a second, so
    that the candidates cover the sample; ``write_package`` cuts them by their real lengths)."""
    return len(chunk.text) / 15.0 + chunk.pause_after_ms / 1000


def write_package(
    plan: Plan,
    read_pcm: Callable[[str], bytes],
    folder: Path,
    *,
    bitrate: str = ACX.bitrate,
    true_peak: float = ACX.peak_max,
    tags_extra: Mapping[str, str] | None = None,
    temp_dir: Path | None = None,
) -> AssemblyResult:
    """Encode every file of the package into ``folder`` (created; files of the same names replaced
    only once all are written)."""
    rate = plan.sample_rate
    files = package_files(plan)
    reader = narrator(plan.engine) if plan.engine else plan.voice.voice
    total = len(files) - 1
    written: list[tuple[Path, Path]] = []
    duration = 0.0
    with tempfile.TemporaryDirectory(prefix="ebook2audio-acx-", dir=temp_dir) as work:
        workdir = Path(work)
        for k, pf in enumerate(files):
            chunks = pf.chunks if pf.track is not None else _sample_chunks(pf.chunks, read_pcm, rate)
            tags = book_tags(plan.metadata, "mp3", fallback_title=folder.name, language=plan.voice.language)
            tags.update(title=pf.title, album=tags.get("title", ""), composer=reader)
            tags.pop("description", None)
            if pf.track is not None:
                tags["track"] = f"{pf.track}/{total}"
            tags.update(tags_extra or {})
            meta = workdir / f"{k}.ffmeta"
            meta.write_text(ffmetadata(tags, [], rate), encoding="utf-8")
            spec = EncodeSpec(
                format="mp3", sample_rate=rate, bitrate=bitrate, metadata_file=meta,
                extra_args=("-ar", str(ACX.sample_rate), "-ac", str(ACX.channels)),
            )  # fmt: skip
            tmp = workdir / f"{k}.mp3"
            head = bytes(2 * ms_to_samples(round(ACX.head_s * 1000), rate))
            tail = bytes(2 * ms_to_samples(round(ACX.tail_s * 1000), rate))
            samples = (len(head) + len(tail)) // 2
            with PcmEncoder(spec, tmp, label=pf.name) as encoder:
                encoder.write(head)
                for block in _body(chunks, read_pcm, rate, samples, true_peak):
                    encoder.write(block)
                    samples += len(block) // 2
                encoder.write(tail)
                encoder.finish()
            if pf.track is not None:  # the sample repeats chapter 1: not counted
                duration += samples / rate
            if samples / rate > ACX.max_minutes * 60:
                log.warning("%s lasts %.0f minutes: ACX takes at most %g per file", pf.name, samples / rate / 60,
                            ACX.max_minutes)  # fmt: skip
            written.append((tmp, folder / pf.name))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for tmp, final in written:
                move_into_place(tmp, final)
        except OSError as exc:
            raise AssemblyError(f"cannot write the ACX package in {folder}: {exc.strerror or exc}") from exc
    outputs = tuple(final for _, final in written)
    stale = sorted(p.name for p in folder.glob("*.mp3") if p not in outputs)
    if stale:  # an earlier package of other chapters (--overwrite): they would be uploaded with it
        log.warning("files not written by this run remain in %s: %s", folder, ", ".join(stale))
    log.info("wrote the ACX package %s (%d files)", folder, len(outputs))
    return AssemblyResult(outputs=outputs, duration=duration, chapters=(), subtitles=())


def _body(
    chunks: tuple[Chunk, ...], read_pcm: Callable[[str], bytes], rate: int, room: int, true_peak: float
) -> Iterator[bytes]:
    """A file's speech and pauses (not its room tone: ``room`` samples of it). A file of less than
    ``SHORT_S`` whose RMS, room tone included, falls under ``ACX_RMS - RMS_SLACK`` (the credits: a few
    sentences in two seconds of silence) is held in memory and made louder by ``lift``."""
    blocks: list[bytes] = []
    held = 0
    for i, chunk in enumerate(chunks):
        pcm = read_pcm(chunk.id)
        pause = bytes(0 if i == len(chunks) - 1 else 2 * ms_to_samples(chunk.pause_after_ms, rate))
        if held > SHORT_S * rate * 2:  # a long file: streamed as it is
            yield pcm
            yield pause
            continue
        blocks += (pcm, pause)
        held += len(pcm) + len(pause)
        if held > SHORT_S * rate * 2:
            yield from blocks
            blocks = []
    if blocks:
        yield lift(b"".join(blocks), rate, room, true_peak)


def lift(body: bytes, rate: int, room: int, true_peak: float) -> bytes:
    """``body`` (16-bit PCM, mastered sentences and pauses) mastered again as a whole, louder under the
    same true-peak ceiling, when its RMS with ``room`` samples of silence added is more than
    RMS_SLACK under ACX_RMS: the limiter takes the peaks, so the RMS rises (at most LIFT_MAX_DB)."""
    x = np.frombuffer(body, dtype="<i2").astype(np.float64) / 32768.0
    if not x.size:
        return body

    def rms_db(y: np.ndarray) -> float:
        energy = float(np.dot(y, y))
        return 10 * math.log10(energy / (len(y) + room)) if energy > 0 else -math.inf

    missing = ACX_RMS - rms_db(x)
    if not (RMS_SLACK < missing < math.inf):
        return body
    loudness = integrated_loudness(x, rate)
    lifted = x
    for _ in range(3):  # the limiter takes part of the gain away: corrected tries
        target = loudness + min(missing, LIFT_MAX_DB)
        lifted = master_pcm(x, rate, Mastering(loudness=target, true_peak=true_peak))
        short = ACX_RMS - rms_db(lifted)
        if short < RMS_SLACK / 2:
            break
        missing += short
    return np.clip(np.rint(lifted * 32768.0), -32768, 32767).astype("<i2").tobytes()


def _sample_chunks(chunks: tuple[Chunk, ...], read_pcm: Callable[[str], bytes], rate: int) -> tuple[Chunk, ...]:
    """The retail sample's sentences, cut by their real lengths at ``ACX.sample_s`` of speech."""
    kept: list[Chunk] = []
    seconds = 0.0
    for chunk in chunks:
        length = len(read_pcm(chunk.id)) / 2 / rate + chunk.pause_after_ms / 1000
        if kept and seconds + length > ACX.sample_s:
            break
        kept.append(chunk)
        seconds += length
    return tuple(kept)


def existing_package(folder: Path, fingerprint: str) -> output.Existing:
    """What is at ``folder``: "absent" (nothing, or an empty folder), "done" (the credits and the
    sample there, every MP3 carrying ``fingerprint``) or "other"."""
    if not folder.is_dir():
        return output.Existing("other", (folder,)) if folder.exists() else output.Existing("absent")
    files = sorted(folder.glob("*.mp3"))
    if not files:
        return output.Existing("absent")
    ours = all(output.read_output(p).fingerprint == fingerprint for p in files)
    names = {p.name for p in files}
    complete = f"{SAMPLE}.mp3" in names and any(OPENING in n for n in names) and any(CLOSING in n for n in names)
    if ours and complete:
        return output.Existing("done", tuple(files))
    return output.Existing("other" if not ours else "partial", (folder,))
