"""The audiobook's file: its name, the checks made before any synthesis, and finished-book detection.

- **Names** (:func:`safe_name`): control and format characters (Unicode Cc, Cf: bidi controls such as
  U+202E, zero-width joiners, BOMs) are removed, characters that file systems or shells refuse
  (``<>:"/\\|?*``) and line separators become spaces, and the result is cut to at most
  MAX_NAME_BYTES UTF-8 bytes on a character boundary (never inside a code point, never leaving a
  combining mark without its base). So every file derived from it (``NAME - Part 12.m4b``,
  ``NAME.srt``) stays under NAME_MAX (255 bytes).
- **Before synthesis** (:func:`check_writable`): a probe file with the longest name this run may
  write is created and removed in the output folder, so a name the file system refuses or a folder
  that cannot be written fails in a second, not after hours of synthesis.
- **Fingerprints** (:func:`fingerprint`): a hash of the book's bytes and of every setting that
  changes the output (voice, speed, language, pauses, chapters, format, bitrate, split, subtitles),
  written into the file as a tag (:func:`fingerprint_tags`): ``©too`` (encoding tool) in m4b/m4a,
  a ``TXXX:ebook2audio`` frame in mp3, an ``EBOOK2AUDIO`` Vorbis comment in opus/ogg/flac and the
  RIFF INFO ``ITCH`` field in wav. :func:`existing_output` reads it back (with the probe adapter) to
  tell a finished book (skipped) from a file made otherwise (an error without ``--overwrite``).
  Settings that only change how the work is done (workers, device, batch size, encode jobs, work
  directory, session) are not part of it.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .audio.ffmpeg import output_format, probe
from .config import Settings, default_work_dir
from .errors import Ebook2AudioError, UserError
from .model import EngineInfo

MAX_NAME_BYTES = 200  # UTF-8 bytes of a name before its extension
NAME_MAX = 255  # the usual limit of one path component (ext4, xfs, btrfs, APFS, NTFS: 255 units)
FINGERPRINT_VERSION = 1
# The longest suffix a run adds to the name: " - Part NNNN" (split files) then ".ext" or ".srt"/".vtt".
LONGEST_PART = " - Part 9999"

_UNSAFE = re.compile(r'[<>:"/\\|?*]+')
_FINGERPRINT = re.compile(r"\bebook2audio\b.*?\bfingerprint ([0-9a-f]{32})\b")


def _drop(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs") and ch not in "\t\n\r\x0b\x0c"


def _space(ch: str) -> bool:
    return ch in "\t\n\r\x0b\x0c" or unicodedata.category(ch) in ("Zl", "Zp")


def cut_utf8(text: str, limit: int) -> str:
    """The longest prefix of ``text`` of at most ``limit`` UTF-8 bytes that ends on a character
    boundary and does not cut a base character from the combining marks that follow it."""
    if len(text.encode("utf-8")) <= limit:
        return text
    end, size = 0, 0
    for i, ch in enumerate(text):
        size += len(ch.encode("utf-8"))
        if size > limit:
            end = i
            break
    # text[end] does not fit: if it is a combining mark, its base (and earlier marks) go too.
    while end > 0 and _is_mark(text[end]):
        end -= 1
    return text[:end]


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


def safe_name(raw: str, limit: int = MAX_NAME_BYTES, fallback: str = "audiobook") -> str:
    """``raw`` made safe as a file name (without extension); see the module's docstring. Pure."""
    text = unicodedata.normalize("NFC", raw)
    text = "".join(" " if _space(ch) else ch for ch in text if not _drop(ch))
    text = _UNSAFE.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip(" .")
    text = cut_utf8(text, limit).rstrip(" .")
    while text and _is_mark(text[0]):  # a name that starts with a lone combining mark
        text = text[1:]
    return text or fallback


def longest_name(base: str, fmt: str) -> str:
    """The longest file name a run may write for ``base``: a hidden split part (plus a byte for
    the dot that hides it), so that a probe with it proves every real name fits."""
    ext = output_format(fmt).ext
    return f".{base}{LONGEST_PART}{max(ext, '.srt', '.vtt', key=len)}"


def check_writable(out_dir: Path, base: str, fmt: str) -> None:
    """Create and remove a probe file with the longest name this run may write in ``out_dir``
    (created if needed); a one-line UserError when the folder or the name cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output directory {out_dir}: {exc.strerror or exc}") from exc
    final = out_dir / f"{base}{output_format(fmt).ext}"
    if os.path.isdir(final):  # (os.path: False, not an error, for a name too long)
        raise UserError(f"cannot write the audiobook {final}: a folder has that name")
    probe_path = out_dir / longest_name(base, fmt)
    try:
        fd = os.open(probe_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return  # a leftover of an earlier probe: the name is valid and the folder was writable
    except OSError as exc:
        long = exc.errno == errno.ENAMETOOLONG
        what = "the file name is too long for this file system" if long else exc.strerror or str(exc)
        raise UserError(f"cannot write the audiobook {base!r} in {out_dir}: {what}") from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe_path)


# --------------------------------------------------------------------------- fingerprints


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class OutputSettings:
    """Everything that changes the audiobook's bytes, besides the book itself."""

    engine: str
    voice: str
    language: str
    sample_rate: int
    speed: float
    sentence_pause_ms: int
    paragraph_pause_ms: int
    chapter_pause_ms: int
    chapters: tuple[int, ...]  # the selected chapters (0-based), () = all
    format: str
    bitrate: str  # "" for lossless formats
    split_hours: float  # 0 = one file
    subtitles: bool
    audio: str = ""  # what else shapes the audio: mastering and the pronunciation lexicon (pipeline)


def output_settings(
    info: EngineInfo,
    *,
    speed: float,
    pauses: tuple[int, int, int],
    chapters: tuple[int, ...],
    format: str,
    bitrate: str,
    split_hours: float,
    subtitles: bool,
) -> OutputSettings:
    fmt = output_format(format)
    return OutputSettings(
        engine=info.engine,
        voice=info.voice,
        language=info.language,
        sample_rate=info.sample_rate,
        speed=float(speed),
        sentence_pause_ms=pauses[0],
        paragraph_pause_ms=pauses[1],
        chapter_pause_ms=pauses[2],
        chapters=chapters,
        format=fmt.name,
        bitrate=bitrate if fmt.lossy else "",
        split_hours=float(split_hours or 0.0),
        subtitles=subtitles,
    )


def fingerprint(book_digest: str, settings: OutputSettings) -> str:
    """32 hex digits identifying (book bytes, output settings). Pure."""
    data = {"v": FINGERPRINT_VERSION, "book": book_digest, **settings.__dict__}
    data["chapters"] = list(settings.chapters)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def fingerprint_tags(fmt: str, fp: str, version: str = "") -> dict[str, str]:
    """The tag that carries ``fp`` in a file of format ``fmt`` (for AssemblyOptions.tags_extra)."""
    name = output_format(fmt).name
    value = f"ebook2audio{' ' + version if version else ''} fingerprint {fp}"
    if name in ("m4b", "m4a"):
        return {"encoding_tool": value}  # the iTunes ©too atom (ffmpeg keeps no custom mp4 keys)
    if name == "wav":
        return {"encoded_by": value}  # RIFF INFO ITCH (WAV's INFO list holds only known fields)
    return {"ebook2audio": value}  # TXXX frame (mp3), Vorbis comment (opus, ogg, flac)


@dataclass(frozen=True)
class ProbedOutput:
    path: Path
    fingerprint: str | None  # None: no ebook2audio fingerprint (or not readable)
    part: int | None  # "n" of a "n/m" track tag
    parts: int | None  # "m" of it


def read_output(path: Path) -> ProbedOutput:
    """The fingerprint and part number an existing output carries (via the probe adapter)."""
    try:
        tags = probe(path).tags
    except (Ebook2AudioError, OSError):
        return ProbedOutput(path, None, None, None)
    fp = None
    for key in ("encoder", "encoding_tool", "ebook2audio", "encoded_by"):
        m = _FINGERPRINT.search(tags.get(key, ""))
        if m:
            fp = m.group(1)
            break
    part = parts = None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", tags.get("track", ""))
    if m:
        part, parts = int(m.group(1)), int(m.group(2))
    return ProbedOutput(path, fp, part, parts)


def part_paths(out_path: Path) -> list[Path]:
    """The split parts ("NAME - Part N.ext") that exist beside ``out_path``."""
    pattern = f"{glob.escape(out_path.stem)} - Part *{glob.escape(out_path.suffix)}"
    return sorted(p for p in out_path.parent.glob(pattern) if p.is_file())


@dataclass(frozen=True)
class Existing:
    """What is already at the output's name: ``state`` is "absent" (nothing), "done" (this book with
    these settings, complete), "partial" (ours, same settings, but a part or subtitle is missing:
    redone without asking), or "other" (another book, other settings, or no fingerprint)."""

    state: str
    paths: tuple[Path, ...] = ()


def existing_output(out_path: Path, fp: str, *, split: bool, subtitles: bool) -> Existing:
    """Compare what exists at ``out_path`` (and its parts, when ``split``) with fingerprint ``fp``."""
    candidates = [out_path] if out_path.is_file() else []
    if split:
        candidates += part_paths(out_path)
    if not candidates:
        return Existing("absent")
    probed = [read_output(p) for p in candidates]
    if any(p.fingerprint != fp for p in probed):
        return Existing("other", tuple(p.path for p in probed if p.fingerprint != fp))
    whole = [p for p in probed if p.path == out_path and p.parts is None]
    if whole:
        complete: list[ProbedOutput] = whole
    else:
        numbered = {p.part: p for p in probed if p.part is not None and p.parts is not None}
        counts = {p.parts for p in numbered.values()}
        count = counts.pop() if len(counts) == 1 else 0
        complete = [numbered[n] for n in range(1, count + 1) if n in numbered]
        if not count or len(complete) != count:
            return Existing("partial", tuple(p.path for p in probed))
    paths = tuple(p.path for p in complete)
    if subtitles and not all(p.with_suffix(s).is_file() for p in paths for s in (".srt", ".vtt")):
        return Existing("partial", paths)
    return Existing("done", paths)


def other_output_error(paths: tuple[Path, ...]) -> UserError:
    first = paths[0]
    return UserError(
        f"{first} already exists and was not made from this book with these settings: "
        "use --overwrite to replace it, or --output-name to write another file"
    )


# --------------------------------------------------------------------------- the finished-books index
#
# Deciding "already converted" needs the output's name, which comes from the book's metadata: reading
# a long PDF takes seconds. So each success also records, in ``<cache>/ebook2audio/outputs/<key>.json``
# (beside the default work directory, whatever ``--work-dir`` says), where
# the output went and its fingerprint, under a key made of the book's bytes and the command's own
# settings (as given, before the voice is resolved). A rerun of the same command finds the record, checks
# the files and their fingerprint tags, and stops without reading the book. Any doubt (no record, a
# file missing or changed) falls back to reading the book and comparing fingerprints.

def index_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the finished-books index lives: ``$XDG_CACHE_HOME/ebook2audio/outputs``."""
    return default_work_dir(os.environ if env is None else env).parent / "outputs"


def request_key(book_digest: str, settings: Settings, extra: str = "") -> str:
    """A key for (book bytes, the output settings as the command gave them, where the output goes)."""
    fields = (
        "engine", "voice", "language", "speed", "sentence_pause_ms", "paragraph_pause_ms",
        "chapter_pause_ms", "chapters", "format", "bitrate", "split_hours", "subtitles", "output_name",
        "master", "loudness", "true_peak", "preset",
    )  # fmt: skip
    data: dict[str, object] = {name: getattr(settings, name) for name in fields}
    data["extra"] = extra  # the lexicon's entries (a file's content can change under the same name)
    data["output_dir"] = str(Path(settings.output_dir).resolve())
    data["v"], data["book"] = FINGERPRINT_VERSION, book_digest
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Record:
    """What a finished conversion left in the index."""

    out_path: Path
    fingerprint: str
    split: bool
    subtitles: bool
    voice: dict[str, object]  # the resolved EngineInfo's fields


def remember(folder: Path, key: str, record: Record) -> None:
    """Write ``record`` under ``key`` in ``folder`` (atomically; a failure only costs the fast path)."""
    data = {
        "out_path": str(record.out_path.resolve()),
        "fingerprint": record.fingerprint,
        "split": record.split,
        "subtitles": record.subtitles,
        "voice": record.voice,
    }
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, folder / f"{key}.json")


def recall(folder: Path, key: str) -> Record | None:
    try:
        data = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        return Record(
            out_path=Path(data["out_path"]),
            fingerprint=str(data["fingerprint"]),
            split=bool(data["split"]),
            subtitles=bool(data["subtitles"]),
            voice=dict(data["voice"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
