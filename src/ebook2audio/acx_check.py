"""``ebook2audio check --preset acx PATH``: every ACX number, file by file, and the package's files.

A file is measured in one pass of ffmpeg (``audio.ffmpeg.analyze_levels``: plain RMS by astats,
true peak by ebur128, the quietest 50 ms windows by astats as the noise floor, silences under
-60 dB by silencedetect for the room tone) and read with the probe (codec, rate, channels); its
MP3 frame headers are read to tell a constant bit rate from a variable one. ``file_problems`` and
``package_problems`` turn the measurements into one line per problem. Pure but for ``measure``,
``check_path`` and ``run_check``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .acx import ACX, CLOSING, OPENING, SAMPLE
from .audio.ffmpeg import analyze_levels, probe
from .errors import Ebook2AudioError, UserError

_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)  # MPEG-1 Layer III
_RATES = (44100, 48000, 32000)
EDGE_S = 0.05  # a silence this close to the start (end) of a file is its head (tail) room tone


def mp3_bitrates(data: bytes) -> list[int]:
    """The bit rate (kb/s) of every MPEG-1 Layer III frame of an MP3 file's bytes, in order (an
    ID3v2 tag skipped); [] when the frames are not MPEG-1 Layer III. Pure."""
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = (data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F)
        pos = 10 + size + (10 if data[5] & 0x10 else 0)
    rates: list[int] = []
    while pos + 4 <= len(data):
        b1, b2 = data[pos + 1], data[pos + 2]
        if data[pos] != 0xFF or (b1 & 0xE0) != 0xE0:
            if data[pos : pos + 3] == b"TAG":  # ID3v1 at the end
                break
            pos += 1  # not a frame start: resynchronise
            continue
        version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
        index, rate_index, padding = b2 >> 4, (b2 >> 2) & 3, (b2 >> 1) & 1
        if version != 3 or layer != 1 or not (0 < index < 15) or rate_index == 3:
            return rates
        kbps = _KBPS[index]
        rates.append(kbps)
        pos += 144 * kbps * 1000 // _RATES[rate_index] + padding
    return rates


@dataclass(frozen=True)
class FileCheck:
    name: str
    codec: str
    sample_rate: int
    channels: int
    kbps: tuple[int, ...]  # the distinct frame bit rates (one: constant)
    duration: float  # s
    rms: float  # dB, plain RMS of the whole file
    true_peak: float  # dBTP
    sample_peak: float  # dBFS
    noise_floor: float  # dB, the quietest 50 ms windows (-inf: digital silence)
    head: float  # s of silence (under -60 dB) at the start
    tail: float  # s at the end


def measure(path: Path) -> FileCheck:
    try:
        info = probe(path)
        levels = analyze_levels(path, silence_db=ACX.noise_floor_max, min_silence=0.2)
    except Ebook2AudioError as exc:
        raise UserError(str(exc)) from exc
    stats = levels.stats
    duration = levels.duration or info.duration
    head = next((d for s, d in stats.silences if s <= EDGE_S), 0.0)
    tail = next((d for s, d in reversed(stats.silences) if s + d >= duration - EDGE_S), 0.0)
    kbps = tuple(sorted(set(mp3_bitrates(path.read_bytes())))) if info.codec == "mp3" else ()
    return FileCheck(
        name=path.name,
        codec=info.codec,
        sample_rate=info.sample_rate,
        channels=info.channels,
        kbps=kbps,
        duration=duration,
        rms=levels.rms,
        true_peak=stats.true_peak,
        sample_peak=stats.sample_peak,
        noise_floor=stats.noise_floor,
        head=head,
        tail=tail,
    )


def file_problems(f: FileCheck) -> list[str]:
    """One line per ACX number ``f`` misses. Pure."""
    out: list[str] = []
    say = out.append
    if f.codec != "mp3":
        say(f"{f.name}: format {f.codec or 'unknown'}, ACX takes MP3")
    elif not f.kbps:
        say(f"{f.name}: not MPEG-1 Layer III frames (ACX: 44.1 kHz MP3)")
    elif len(f.kbps) > 1:
        say(f"{f.name}: variable bit rate ({min(f.kbps)}-{max(f.kbps)} kb/s), ACX takes a constant bit rate")
    elif f.kbps[0] < ACX.min_kbps:
        say(f"{f.name}: {f.kbps[0]} kb/s, under ACX's {ACX.min_kbps} kb/s")
    if f.sample_rate != ACX.sample_rate:
        say(f"{f.name}: sample rate {f.sample_rate} Hz, ACX takes {ACX.sample_rate} Hz")
    if not (ACX.rms_min <= f.rms <= ACX.rms_max):
        say(f"{f.name}: RMS {f.rms:.1f} dB, outside {ACX.rms_min:g} to {ACX.rms_max:g} dB")
    if f.true_peak > ACX.peak_max:
        say(f"{f.name}: peak {f.true_peak:.1f} dBTP, over {ACX.peak_max:g} dB")
    if f.noise_floor > ACX.noise_floor_max:
        say(f"{f.name}: noise floor {f.noise_floor:.1f} dB, over {ACX.noise_floor_max:g} dB")
    if not (ACX.head_min <= f.head <= ACX.head_max):
        say(f"{f.name}: {f.head:.2f} s of room tone at the head, ACX asks {ACX.head_min:g} to {ACX.head_max:g} s")
    if not (ACX.tail_min <= f.tail <= ACX.tail_max):
        say(f"{f.name}: {f.tail:.2f} s of room tone at the tail, ACX asks {ACX.tail_min:g} to {ACX.tail_max:g} s")
    if f.duration > ACX.max_minutes * 60:
        say(f"{f.name}: {f.duration / 60:.0f} minutes long, over ACX's {ACX.max_minutes:g} minutes per file")
    return out


def package_problems(files: list[FileCheck]) -> list[str]:
    """What the package as a whole lacks: the credits, a retail sample of one to five minutes, files
    all mono or all stereo. Pure."""
    out: list[str] = []
    names = [f.name for f in files]
    if not any(OPENING in n for n in names):
        out.append(f"package: no opening credits file ('... {OPENING}.mp3')")
    if not any(CLOSING in n for n in names):
        out.append(f"package: no closing credits file ('... {CLOSING}.mp3')")
    sample = next((f for f in files if f.name == f"{SAMPLE}.mp3"), None)
    if sample is None:
        out.append(f"package: no retail sample ('{SAMPLE}.mp3')")
    elif not (ACX.sample_min_s <= sample.duration <= ACX.sample_max_s):
        out.append(
            f"package: the retail sample lasts {sample.duration:.0f} s, ACX asks "
            f"{ACX.sample_min_s:g} to {ACX.sample_max_s:g} s"
        )
    layouts = {f.channels for f in files}
    if len(layouts) > 1:
        out.append("package: mono and stereo files mixed (ACX: all mono or all stereo)")
    return out


def check_path(path: Path) -> tuple[list[FileCheck], list[str]]:
    """Measure a package folder (its MP3 files, and the package's completeness) or one file."""
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() == ".mp3" and p.is_file())
        if not paths:
            raise UserError(f"{path}: no MP3 file in this folder")
    else:
        paths = [path]
    files = [measure(p) for p in paths]
    found = [line for f in files for line in file_problems(f)]
    if path.is_dir():
        found += package_problems(files)
    return files, found


def _db(v: float) -> str:
    return "-inf" if v == -math.inf else f"{v:.1f}"


def describe(f: FileCheck) -> str:
    rate = f"{f.kbps[0]} kb/s CBR" if len(f.kbps) == 1 else "VBR" if f.kbps else f.codec
    layout = {1: "mono", 2: "stereo"}.get(f.channels, f"{f.channels} channels")
    return (
        f"{f.name}: {f.sample_rate} Hz {layout} {rate}, RMS {_db(f.rms)} dB, peak {_db(f.true_peak)} dBTP, "
        f"noise floor {_db(f.noise_floor)} dB{' (digital silence)' if f.noise_floor == -math.inf else ''}, room tone {f.head:.2f} s + {f.tail:.2f} s, {f.duration:.1f} s"
    )


def run_check(path: Path, as_json: bool = False) -> int:
    """Print the measurements and one line per problem; 0 when every number is met, else 1."""
    files, found = check_path(path)
    if as_json:

        def clean(value: Any) -> Any:
            return None if isinstance(value, float) and not math.isfinite(value) else value

        data = {
            "path": str(path),
            "passed": not found,
            "files": [{k: clean(v) for k, v in asdict(f).items()} for f in files],
            "problems": found,
        }
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        for f in files:
            print(describe(f))
        for line in found:
            print(line)
        print("passed (ACX)" if not found else f"failed (ACX): {len(found)} problem(s)")
    return 0 if not found else 1
