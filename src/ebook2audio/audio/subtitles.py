"""SRT and WebVTT subtitles: one cue per chunk, timed from the exact sample offsets of the audio."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Cue", "format_timestamp", "render", "render_srt", "render_vtt", "write_subtitles"]

SUBTITLE_KINDS = ("srt", "vtt")


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    text: str


def format_timestamp(seconds: float, sep: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT) or, with ``sep='.'``, ``HH:MM:SS.mmm`` (WebVTT)."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{ms:03d}"


def _clean(text: str) -> str:
    """Cue text without blank lines (a blank line ends a cue in both formats)."""
    lines = (line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return "\n".join(line for line in lines if line) or "..."


def render_srt(cues: Iterable[Cue]) -> Iterator[str]:
    for number, cue in enumerate(cues, start=1):
        yield f"{number}\n{format_timestamp(cue.start)} --> {format_timestamp(cue.end)}\n{_clean(cue.text)}\n\n"


def _vtt_text(text: str) -> str:
    text = _clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text  # '-->' cannot survive: its '>' is escaped


def render_vtt(cues: Iterable[Cue]) -> Iterator[str]:
    yield "WEBVTT\n\n"
    for number, cue in enumerate(cues, start=1):
        start, end = format_timestamp(cue.start, "."), format_timestamp(cue.end, ".")
        yield f"{number}\n{start} --> {end}\n{_vtt_text(cue.text)}\n\n"


def render(kind: str, cues: Iterable[Cue]) -> Iterator[str]:
    if kind == "srt":
        return render_srt(cues)
    if kind == "vtt":
        return render_vtt(cues)
    raise ValueError(f"unknown subtitle kind {kind!r}")


def write_subtitles(path: Path, cues: Iterable[Cue], kind: str | None = None) -> Path:
    """Write ``cues`` to ``path`` atomically (a temporary file in the same folder, then a rename).

    ``kind`` is "srt" or "vtt"; by default it is taken from the file's suffix.
    """
    kind = kind or path.suffix.lstrip(".").lower()
    lines = render(kind, cues)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.part.{kind}")
    try:
        with open(tmp, "x", encoding="utf-8", newline="\n") as fh:
            fh.writelines(lines)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
