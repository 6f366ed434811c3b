"""The ffmpeg adapter: the only place that starts ffmpeg (and the only user of PyAV, for probe()).

Raw 16-bit mono PCM is streamed into ffmpeg's stdin in blocks, so memory stays bounded whatever the
length of the book; tags and chapters come from an ffmetadata file and the cover from an image file,
both given as extra inputs. ffmpeg failures become AssemblyError carrying the tail of its stderr.

Which ffmpeg: the build bundled with the imageio-ffmpeg package, the same for everyone, unless
$EBOOK2AUDIO_FFMPEG names another (a path, or a name looked up on PATH, e.g. ``ffmpeg``); an ffmpeg
on PATH is used only when there is no bundled build for the platform. ``check_ffmpeg()`` reads the
version of the one chosen and refuses one older than 4.4 (the ``setts`` filter the join needs).

Before ffmpeg 7, the command-line tool reads each input in a thread of its own when there are
several (the ffmetadata and the cover are inputs too), through a queue of 8 packets by default, and
its main loop sleeps 10 ms whenever that queue is empty. A consumer faster than 8 packets per 10 ms
(copying AAC frames into the m4b: one packet is one 46 ms frame; writing WAV or FLAC) was held to
that pace: with Debian's ffmpeg 5.1 the join of a book idled about a second per piece, while the
bundled 9.0 build ran at copy speed. Every stdin input is therefore given a deep queue
(``-thread_queue_size``), which every ffmpeg from 4.4 on accepts.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from ebook2audio.errors import AssemblyError, ConfigError
from ebook2audio.model import ChapterMark

log = logging.getLogger(__name__)

__all__ = [
    "FORMATS",
    "MIN_VERSION",
    "AudioStats",
    "EncodeSpec",
    "FfmpegBuild",
    "Levels",
    "MetaChapter",
    "OutputFormat",
    "PcmEncoder",
    "ProbeResult",
    "analyze_audio",
    "analyze_levels",
    "check_ffmpeg",
    "encode_command",
    "encode_pcm",
    "escape_ffmetadata",
    "ffmetadata",
    "ffmpeg_build",
    "find_ffmpeg",
    "image_ok",
    "parse_version",
    "probe",
]

ENV_FFMPEG = "EBOOK2AUDIO_FFMPEG"
WRITE_BLOCK = 1 << 20  # bytes per write to ffmpeg's stdin
# Packets queued from the stdin input (see the module's doc). PCM packets are 1024 samples (2 KiB):
# at most 2 MiB wait there when the encoder is the slower side. ADTS packets are one AAC frame
# (~370 bytes at 64 kb/s): ffmpeg 4.4-6.x then sleeps once per 4096 frames (3 minutes of audio at
# 22.05 kHz) instead of once per 8; measured with Debian's 5.1 on a 2.4-hour join, 1.5 s instead
# of 62 s, for 2 MiB more at most (16384 packets: no faster, 13 MiB more).
PCM_QUEUE_PACKETS = 1024
ADTS_QUEUE_PACKETS = 4096
MIN_VERSION = (4, 4)
# The library versions of the ffmpeg 4.4 release: a build's own version string may be a git
# description ("N-113000-g..."), its libraries' versions always compare.
_MIN_LIBS = {"libavcodec": (58, 134), "libavformat": (58, 76)}
_STDERR_LINES = 20  # lines of ffmpeg's stderr kept for error messages


@dataclass(frozen=True)
class OutputFormat:
    name: str
    muxer: str  # ffmpeg -f
    codec: str  # ffmpeg -c:a
    ext: str  # file suffix, with the dot
    lossy: bool  # takes -b:a
    cover: str | None  # how the cover is attached: "mp4", "id3", "flac"; None = not supported
    chapters: bool  # chapters can be read back from the file


FORMATS: Mapping[str, OutputFormat] = {
    f.name: f
    for f in (
        OutputFormat("m4b", "ipod", "aac", ".m4b", lossy=True, cover="mp4", chapters=True),
        OutputFormat("m4a", "ipod", "aac", ".m4a", lossy=True, cover="mp4", chapters=True),
        OutputFormat("mp3", "mp3", "libmp3lame", ".mp3", lossy=True, cover="id3", chapters=True),
        OutputFormat("opus", "opus", "libopus", ".opus", lossy=True, cover=None, chapters=True),
        OutputFormat("ogg", "ogg", "libvorbis", ".ogg", lossy=True, cover=None, chapters=False),
        OutputFormat("flac", "flac", "flac", ".flac", lossy=False, cover="flac", chapters=False),
        OutputFormat("wav", "wav", "pcm_s16le", ".wav", lossy=False, cover=None, chapters=False),
    )
}


def output_format(name: str) -> OutputFormat:
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown output format {name!r}; choose one of {', '.join(FORMATS)}") from None


def _bundled_ffmpeg() -> str | None:
    """imageio-ffmpeg's build, or None when the package or its binary for this platform is missing."""
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError) as exc:
        log.debug("no bundled ffmpeg: %s", exc)
        return None


def find_ffmpeg(env: Mapping[str, str] | None = None) -> str:
    """The ffmpeg executable: $EBOOK2AUDIO_FFMPEG, else imageio-ffmpeg's bundled one, else ffmpeg on PATH.

    ``env`` defaults to ``os.environ``. The bundled build comes first so that output and speed do
    not depend on what happens to be installed; ``EBOOK2AUDIO_FFMPEG=ffmpeg`` picks the one on PATH.
    """
    environ = os.environ if env is None else env
    named = environ.get(ENV_FFMPEG, "").strip()
    if named:
        found = shutil.which(named, path=environ.get("PATH"))
        if found is None:
            raise ConfigError(f"{ENV_FFMPEG}={named!r} is not an executable file")
        return found
    bundled = _bundled_ffmpeg()
    if bundled is not None:
        return bundled
    found = shutil.which("ffmpeg", path=environ.get("PATH"))
    if found:
        return found
    raise AssemblyError("ffmpeg not found: install ffmpeg or the imageio-ffmpeg package")


@dataclass(frozen=True)
class FfmpegBuild:
    """What ``ffmpeg -version`` says about one executable."""

    path: str
    version: str  # as ffmpeg prints it: "5.1.9-0+deb12u1", "n9.0.2-17-g2a571b6068-20260930", "N-113000-g..."
    libs: Mapping[str, tuple[int, int]]  # "libavcodec" -> (major, minor), libavformat likewise

    @property
    def recent_enough(self) -> bool:
        """Libraries at least those of ffmpeg 4.4 (False when ``-version`` did not list them)."""
        return all(self.libs.get(lib, (0, 0)) >= low for lib, low in _MIN_LIBS.items())


_VERSION_RE = re.compile(r"^ffmpeg version (\S+)", re.MULTILINE)
_LIB_RE = re.compile(r"^(libav\w+)\s+(\d+)\.\s*(\d+)\.\s*\d+", re.MULTILINE)


def parse_version(path: str, text: str) -> FfmpegBuild:
    """An FfmpegBuild from the text of ``ffmpeg -version``. Pure."""
    version = _VERSION_RE.search(text)
    libs = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in _LIB_RE.finditer(text)}
    return FfmpegBuild(path=path, version=version.group(1) if version else "of unknown version", libs=libs)


def ffmpeg_build(path: str) -> FfmpegBuild:
    """Run ``path -version`` and parse it; ConfigError when it cannot be run."""
    try:
        done = subprocess.run(
            [path, "-hide_banner", "-version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"cannot run ffmpeg {path}: {exc}") from exc
    if done.returncode != 0:
        raise ConfigError(f"{path} -version failed (exit code {done.returncode}): is it ffmpeg?")
    return parse_version(path, done.stdout.decode("utf-8", "replace"))


def check_ffmpeg(env: Mapping[str, str] | None = None) -> FfmpegBuild:
    """The ffmpeg that will be used (``find_ffmpeg``), checked to be 4.4 or newer; ConfigError if not.

    Called once before a conversion starts, so that a too old ffmpeg stops it at once, not after
    the synthesis.
    """
    environ = os.environ if env is None else env
    build = ffmpeg_build(find_ffmpeg(environ))
    if not build.recent_enough:
        low = ".".join(map(str, MIN_VERSION))
        named = bool(environ.get(ENV_FFMPEG, "").strip())
        hint = f"unset {ENV_FFMPEG} to use the bundled build" if named else f"set {ENV_FFMPEG} to a newer one"
        raise ConfigError(
            f"ffmpeg {build.version} ({build.path}) is too old: ebook2audio needs ffmpeg {low} or newer; {hint}"
        )
    return build


# --------------------------------------------------------------------------- ffmetadata


@dataclass(frozen=True)
class MetaChapter:
    """A chapter in ffmetadata units: start/end are counts of 1/timebase seconds (samples)."""

    title: str
    start: int
    end: int


def escape_ffmetadata(value: str) -> str:
    """Escape a key or value for an ffmetadata file: '=', ';', '#', '\\' and newlines."""
    out = []
    for ch in value.replace("\r\n", "\n").replace("\r", "\n"):
        if ch in "=;#\\\n":
            out.append("\\")
        out.append(ch)
    return "".join(out)


def ffmetadata(tags: Mapping[str, str], chapters: Sequence[MetaChapter], timebase: int) -> str:
    """An ffmetadata document: global ``tags`` (empty values dropped) and ``chapters``.

    ``timebase`` is the chapters' unit as 1/timebase seconds (the sample rate gives exact times).
    """
    lines = [";FFMETADATA1"]
    for key, value in tags.items():
        if value:
            lines.append(f"{escape_ffmetadata(key)}={escape_ffmetadata(value)}")
    for ch in chapters:
        if ch.end < ch.start:
            raise ValueError(f"chapter {ch.title!r} ends before it starts")
        lines += [
            "",
            "[CHAPTER]",
            f"TIMEBASE=1/{timebase}",
            f"START={ch.start}",
            f"END={ch.end}",
            f"title={escape_ffmetadata(ch.title)}",
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class EncodeSpec:
    """How to encode one output file from raw s16le mono PCM at ``sample_rate``."""

    format: str
    sample_rate: int
    bitrate: str = "64k"
    metadata_file: Path | None = None  # ffmetadata: tags and chapters
    cover_file: Path | None = None  # JPEG or PNG are copied as they are; other images become JPEG
    cover_copy: bool = True  # False: re-encode the cover to JPEG
    stream_tags: Mapping[str, str] = field(default_factory=dict)  # on the audio stream (language=eng)
    extra_args: tuple[str, ...] = ()  # added before the output file
    # What stdin carries: "pcm" (raw PCM, encoded with the format's codec) or "adts" (AAC frames in
    # ADTS framing, copied as they are: the join of parallel-encoded pieces; AAC formats only).
    input: str = "pcm"
    input_delay: int = 0  # "adts": the encoder's priming samples at the start, hidden by an edit list
    muxer: str = ""  # "" = the format's own container; "adts" = raw AAC frames (a piece of a book)


def encode_command(ffmpeg: str, spec: EncodeSpec, out_path: Path) -> list[str]:
    """The ffmpeg command line that reads PCM from stdin and writes ``out_path``. Pure."""
    fmt = output_format(spec.format)
    copy = spec.input == "adts"
    if spec.input not in ("pcm", "adts") or (copy and fmt.codec != "aac"):
        raise ConfigError(f"cannot encode {spec.format} from {spec.input!r} input")
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    extra_out: list[str] = []
    if copy:
        if spec.input_delay:
            # Start the stream before 0 by the priming samples: the MP4 muxer then writes an edit
            # list that skips them, as when it encodes itself. Microseconds, exact to < 0.05 sample.
            cmd += ["-itsoffset", f"-{round(spec.input_delay * 1_000_000 / spec.sample_rate)}us"]
        cmd += ["-thread_queue_size", str(ADTS_QUEUE_PACKETS), "-f", "aac", "-i", "pipe:0"]
        # The ADTS demuxer counts time in 1/28224000 s: past 152 s the MP4 chapter track's times
        # overflow (chapters come out garbled). Count in samples instead (exact for every AAC rate).
        extra_out = ["-bsf:a", f"setts=time_base=1/{spec.sample_rate}"]
    else:
        cmd += ["-thread_queue_size", str(PCM_QUEUE_PACKETS)]
        cmd += ["-f", "s16le", "-ar", str(spec.sample_rate), "-ac", "1", "-i", "pipe:0"]
    inputs = 1
    meta_input = cover_input = None
    if spec.metadata_file is not None:
        cmd += ["-f", "ffmetadata", "-i", str(spec.metadata_file)]
        meta_input, inputs = inputs, inputs + 1
    if spec.cover_file is not None and fmt.cover is not None:
        cmd += ["-i", str(spec.cover_file)]
        cover_input = inputs
    cmd += ["-map", "0:a"]
    if meta_input is not None:
        cmd += ["-map_metadata", str(meta_input), "-map_chapters", str(meta_input)]
    else:
        cmd += ["-map_metadata", "-1"]
    cmd += ["-c:a", "copy" if copy else fmt.codec, *extra_out]
    if fmt.lossy and not copy:
        cmd += ["-b:a", spec.bitrate]
    for key, value in spec.stream_tags.items():
        if value:
            cmd += ["-metadata:s:a:0", f"{key}={value}"]
    if cover_input is not None:
        cmd += ["-map", f"{cover_input}:v:0"]
        cmd += ["-c:v", "copy"] if spec.cover_copy else ["-c:v", "mjpeg", "-frames:v", "1"]
        if fmt.cover == "id3":
            cmd += ["-metadata:s:v", "title=Album cover", "-metadata:s:v", "comment=Cover (front)"]
        else:
            cmd += ["-disposition:v:0", "attached_pic"]
    if fmt.cover == "id3":
        cmd += ["-id3v2_version", "3"]  # ID3v2.3 tags, APIC and CHAP frames
    muxer = spec.muxer or fmt.muxer
    if muxer == "ipod":
        cmd += ["-movflags", "+faststart"]
    cmd += list(spec.extra_args)
    cmd += ["-f", muxer, str(out_path)]
    return cmd


class PcmEncoder:
    """A running ffmpeg that encodes PCM written to it (or copies AAC frames: ``EncodeSpec.input``);
    use as a context manager.

    ``write()`` feeds PCM in blocks; ``finish()`` closes stdin, waits, and raises AssemblyError
    (with ffmpeg's last stderr lines) on failure. Leaving the ``with`` block on an exception kills
    ffmpeg. The output file is left as ffmpeg wrote it: the caller owns temp names and clean-up.
    """

    def __init__(
        self, spec: EncodeSpec, out_path: Path, ffmpeg: str | None = None, label: str | None = None
    ) -> None:
        self.spec = spec
        self.out_path = out_path
        self.label = label or out_path.name  # the name used in error messages
        fmt = output_format(spec.format)
        if spec.cover_file is not None and fmt.cover is None:
            log.debug("format %s cannot hold a cover; cover skipped", fmt.name)
        self.command = encode_command(ffmpeg or find_ffmpeg(), spec, out_path)
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self.bytes_written = 0

    def __enter__(self) -> PcmEncoder:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()

    def start(self) -> None:
        log.debug("starting %s", " ".join(self.command))
        try:
            self._proc = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise AssemblyError(f"cannot start ffmpeg ({self.command[0]}): {exc}") from exc
        self._reader = threading.Thread(target=self._drain_stderr, name="ffmpeg-stderr", daemon=True)
        self._reader.start()

    def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for raw in self._proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr.append(line)

    def _failure(self, what: str) -> AssemblyError:
        if self._reader is not None:
            self._reader.join(timeout=5)
        tail = " | ".join(self._stderr) or "no message"
        return AssemblyError(f"ffmpeg {what} writing {self.label}: {tail}")

    def write(self, pcm: bytes | bytearray | memoryview) -> None:
        if self._proc is None or self._proc.stdin is None:
            raise AssemblyError("ffmpeg is not running")
        view = memoryview(pcm).cast("B")
        try:
            for pos in range(0, len(view), WRITE_BLOCK):
                self._proc.stdin.write(view[pos : pos + WRITE_BLOCK])
        except (BrokenPipeError, ValueError) as exc:
            self._proc.wait()
            raise self._failure(f"stopped (exit code {self._proc.returncode})") from exc
        self.bytes_written += len(view)

    def finish(self) -> None:
        if self._proc is None:
            raise AssemblyError("ffmpeg is not running")
        proc = self._proc
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except BrokenPipeError:
            pass
        code = proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if code != 0:
            raise self._failure(f"failed (exit code {code})")
        if self._stderr:
            log.debug("ffmpeg said: %s", " | ".join(self._stderr))

    def abort(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.kill()
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)


def encode_pcm(blocks: Iterable[bytes], out_path: Path, spec: EncodeSpec, ffmpeg: str | None = None) -> int:
    """Encode an iterable of PCM blocks into ``out_path``; returns the PCM bytes written."""
    with PcmEncoder(spec, out_path, ffmpeg) as enc:
        for block in blocks:
            enc.write(block)
        enc.finish()
        return enc.bytes_written


def image_ok(path: Path, ffmpeg: str | None = None) -> bool:
    """True when ffmpeg can decode the image at ``path`` (checked before using it as a cover)."""
    cmd = [ffmpeg or find_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error"]
    cmd += ["-xerror", "-i", str(path), "-frames:v", "1", "-f", "null", "-"]
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("image check failed: %s", exc)
        return False
    if done.returncode != 0:
        log.debug("image check: %s", done.stderr.decode("utf-8", "replace").strip()[-500:])
    return done.returncode == 0


# --------------------------------------------------------------------------- probe (PyAV)


@dataclass(frozen=True)
class ProbeResult:
    duration: float  # seconds
    chapters: tuple[ChapterMark, ...]  # title, start, end in seconds
    tags: Mapping[str, str]  # container tags merged with the audio stream's, lower-case keys
    has_cover: bool
    codec: str  # of the first audio stream
    sample_rate: int
    streams: tuple[str, ...] = ()  # stream types in order: "audio", "video", "data", ...
    channels: int = 0  # of the first audio stream


def probe(path: Path) -> ProbeResult:
    """Read an audio file back like ffprobe would: duration, chapters, tags, cover, codec."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is in the test extra
        raise AssemblyError("probing audio files needs PyAV: pip install av") from exc
    try:
        with av.open(str(path)) as container:
            audio = container.streams.audio[0] if container.streams.audio else None
            tags = {str(k).lower(): str(v) for k, v in container.metadata.items()}
            if audio is not None:
                for k, v in audio.metadata.items():
                    tags.setdefault(str(k).lower(), str(v))
            chapters = tuple(
                ChapterMark(
                    title=str(ch["metadata"].get("title", "")),
                    start=float(ch["start"] * ch["time_base"]),
                    end=float(ch["end"] * ch["time_base"]),
                )
                for ch in container.chapters()
            )
            if container.duration is not None:
                duration = container.duration / 1_000_000
            elif audio is not None and audio.duration is not None and audio.time_base is not None:
                duration = float(audio.duration * audio.time_base)
            else:
                duration = 0.0
            has_cover = any(
                s.type == "video" and bool(s.disposition & av.stream.Disposition.attached_pic)
                for s in container.streams
            )
            return ProbeResult(
                duration=duration,
                chapters=chapters,
                tags=tags,
                has_cover=has_cover,
                codec=audio.codec_context.name.removesuffix("float")
                if audio is not None
                else "",  # mp3float -> mp3
                sample_rate=int(audio.sample_rate or 0) if audio is not None else 0,
                streams=tuple(s.type for s in container.streams),
                channels=int(audio.codec_context.channels or 0) if audio is not None else 0,
            )
    except av.FFmpegError as exc:
        raise AssemblyError(f"cannot read {path.name}: {exc}") from exc


# --------------------------------------------------------------------------- loudness analysis


@dataclass(frozen=True)
class AudioStats:
    """What ffmpeg's ``ebur128``, ``astats`` and ``silencedetect`` filters measure on a file's audio."""

    integrated: float  # LUFS (BS.1770 gated)
    lra: float  # loudness range, LU
    true_peak: float  # dBTP
    sample_peak: float  # dBFS
    noise_floor: float  # dBFS: the quietest short window (astats), -inf when the pauses are digital silence
    silences: tuple[tuple[float, float], ...]  # (start, duration) in seconds, each at least min_silence


_SUMMARY_RE = {
    "integrated": re.compile(r"Integrated loudness:\s*I:\s*(-?[\d.]+|-?inf|nan) LUFS", re.S),
    "lra": re.compile(r"Loudness range:\s*LRA:\s*(-?[\d.]+|-?inf|nan) LU", re.S),
    "true_peak": re.compile(r"True peak:\s*Peak:\s*(-?[\d.]+|-?inf|nan) dBFS", re.S),
    "sample_peak": re.compile(r"Sample peak:\s*Peak:\s*(-?[\d.]+|-?inf|nan) dBFS", re.S),
}
_NOISE_RE = re.compile(r"Overall.*?Noise floor dB: (-?[\d.]+|-?inf|nan)", re.S)
_SILENCE_RE = re.compile(r"silence_end: (-?[\d.]+) \| silence_duration: ([\d.]+)")
_SILENCE_OPEN_RE = re.compile(r"silence_start: (-?[\d.]+)")


def analyze_command(ffmpeg: str, path: Path, silence_db: float, min_silence: float) -> list[str]:
    """The ffmpeg command line that measures ``path``'s first audio stream (the report on stderr). Pure."""
    chain = (
        "ebur128=peak=sample+true:framelog=quiet,astats=measure_perchannel=none,"
        f"silencedetect=noise={silence_db}dB:d={min_silence}"
    )
    return [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-i", str(path), "-map", "0:a:0", "-af", chain]


def parse_analysis(text: str, duration: float = 0.0) -> AudioStats:
    """AudioStats from the stderr of ``analyze_command`` (``duration`` closes a silence left open). Pure."""
    values: dict[str, float] = {}
    for name, pattern in _SUMMARY_RE.items():
        m = pattern.search(text)
        if m is None:
            raise AssemblyError(f"ffmpeg's ebur128 filter printed no {name.replace('_', ' ')}")
        values[name] = float(m.group(1))
    noise = _NOISE_RE.search(text)
    silences = [(float(end) - float(dur), float(dur)) for end, dur in _SILENCE_RE.findall(text)]
    starts = _SILENCE_OPEN_RE.findall(text)
    if len(starts) > len(silences) and duration > 0:  # silent up to the end
        start = float(starts[-1])
        silences.append((start, duration - start))
    return AudioStats(
        noise_floor=float(noise.group(1)) if noise else math.nan, silences=tuple(silences), **values
    )


def analyze_audio(
    path: Path,
    *,
    silence_db: float = -60.0,
    min_silence: float = 5.0,
    ffmpeg: str | None = None,
    span: tuple[float, float] | None = None,
) -> AudioStats:
    """Measure the audio of ``path`` in one pass of ffmpeg (streamed: any length); ``span``: only
    (start, seconds) of it."""
    cmd = [*analyze_command(ffmpeg or find_ffmpeg(), path, silence_db, min_silence), "-f", "null", "-"]
    if span is not None:
        at = cmd.index("-i")
        cmd[at:at] = ["-ss", f"{max(0.0, span[0]):.3f}", "-t", f"{max(0.01, span[1]):.3f}"]
    text, duration = _run_analysis(cmd, path)
    return parse_analysis(text, duration)


def _run_analysis(cmd: list[str], path: Path) -> tuple[str, float]:
    """Run an analysis command (output to null); its stderr and the duration it decoded."""
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    except OSError as exc:
        raise AssemblyError(f"cannot start ffmpeg ({cmd[0]}): {exc}") from exc
    text = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        tail = " | ".join(line for line in text.splitlines()[-3:] if line.strip())
        raise AssemblyError(f"ffmpeg cannot read {path.name}: {tail}")
    m = re.findall(r"time=(\d+):(\d+):([\d.]+)", text)
    return text, (int(m[-1][0]) * 3600 + int(m[-1][1]) * 60 + float(m[-1][2]) if m else 0.0)


_RMS_RE = re.compile(r"Overall.*?RMS level dB: (-?[\d.]+|-?inf|nan)", re.S)


@dataclass(frozen=True)
class Levels:
    """``analyze_audio``'s measurements, the plain (unweighted) RMS of the whole file, its duration."""

    stats: AudioStats
    rms: float  # dBFS: 20 log10 of the root mean square of every sample (a full-scale sine: -3 dB)
    duration: float  # seconds, as decoded


def analyze_levels(
    path: Path, *, silence_db: float = -60.0, min_silence: float = 0.3, ffmpeg: str | None = None
) -> Levels:
    """``analyze_audio`` and the file's RMS level (astats' overall "RMS level dB"), in one pass."""
    cmd = [*analyze_command(ffmpeg or find_ffmpeg(), path, silence_db, min_silence), "-f", "null", "-"]
    text, duration = _run_analysis(cmd, path)
    rms = _RMS_RE.search(text)
    return Levels(parse_analysis(text, duration), float(rms.group(1)) if rms else math.nan, duration)


def decode_pcm(path: Path, rate: int, span: tuple[float, float] | None = None, ffmpeg: str | None = None) -> bytes:
    """The first audio stream of ``path`` (or ``span`` = (start, seconds) of it) as 16-bit mono PCM at ``rate``."""
    cmd = [ffmpeg or find_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error"]
    if span is not None:
        cmd += ["-ss", f"{max(0.0, span[0]):.3f}", "-t", f"{max(0.01, span[1]):.3f}"]
    cmd += ["-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(rate), "-f", "s16le", "-"]
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    except OSError as exc:
        raise AssemblyError(f"cannot start ffmpeg ({cmd[0]}): {exc}") from exc
    if done.returncode != 0:
        tail = " | ".join(line for line in done.stderr.decode("utf-8", "replace").splitlines()[-3:] if line.strip())
        raise AssemblyError(f"ffmpeg cannot read {path.name}: {tail}")
    return done.stdout
