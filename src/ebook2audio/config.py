"""Typed settings: defaults < config file (TOML) < environment < command-line flags.

Environment variables are ``EBOOK2AUDIO_<NAME>`` for every setting below (e.g. EBOOK2AUDIO_WORKERS=2),
plus the few well-known names of the distributed guide (REDIS_URL, ...) handled in distributed config.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

FORMATS = ("m4b", "m4a", "mp3", "opus", "ogg", "flac", "wav")
DEVICES = ("cpu", "auto", "cuda")


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def default_work_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ebook2audio" / "jobs"


@dataclass(frozen=True)
class Settings:
    output_dir: Path = Path(".")
    output_name: str = ""  # "" = "Author - Title"
    format: str = "m4b"
    language: str = ""  # "" = the book's own language (else English)
    engine: str = "piper"
    voice: str = ""  # "" = the engine's default voice for the language
    voice_sample: Path = Path()  # a recording whose voice a cloning engine (xtts) imitates; Path() = none
    speed: float = 1.0
    workers: int = 0  # 0 = one per core
    device: str = "cpu"  # cpu | auto | cuda[:N]
    session: str = ""  # "" = derived from the book's content
    work_dir: Path = Path()  # Path() = $XDG_CACHE_HOME/ebook2audio/jobs
    keep_work: bool = False
    overwrite: bool = False  # redo an output that exists (else: skipped when finished, an error when different)
    bitrate: str = "64k"
    sentence_pause_ms: int = 300
    paragraph_pause_ms: int = 700
    chapter_pause_ms: int = 2000
    split_hours: float = 0.0  # 0 = one file
    subtitles: bool = True
    chapters: str = ""  # "" = all; "1-3,7" = a selection (1-based, as `inspect` numbers them)
    batch_chars: int = 1200
    granularity: str = "sentence"  # sentence | chapter
    encode_jobs: int = 0  # ffmpeg processes encoding an m4b/m4a in pieces; 0 = one per core, 1 = serial
    strict: bool = False  # a sentence that crashes the engine is an error (exit 2), not replaced
    master: bool = True  # every chunk levelled to `loudness` with true peaks under `true_peak` (audio/master.py)
    loudness: float = -19.0  # LUFS
    true_peak: float = -3.0  # dBTP
    lexicon: Path = Path()  # a book's pronunciation lexicon (TOML); Path() = none (the user's is always read)
    preset: str = ""  # "acx": the package ACX asks for (acx.py), instead of one audiobook file
    verify: bool = False  # every sentence heard by speech recognition and retaken when wrong (verify.py)
    verify_takes: int = 3  # at most this many syntheses of a sentence
    verify_max_wer: float = 0.8  # word error rate over which a take fails
    verify_max_cer: float = 0.4  # character error rate over which a take fails
    asr_model: str = ""  # "" = by language (asr.py); a CTranslate2 Whisper folder or tiny.en / base

    def validated(self) -> Settings:
        if self.format not in FORMATS:
            raise ConfigError(f"unknown output format {self.format!r} (choose from {', '.join(FORMATS)})")
        if not (0.25 <= self.speed <= 4.0):
            raise ConfigError(f"--speed must be between 0.25 and 4.0, not {self.speed}")
        if self.workers < 0:
            raise ConfigError("--workers must be 0 (one per core) or more")
        if self.device.split(":")[0] not in DEVICES:
            raise ConfigError(f"unknown device {self.device!r} (cpu, auto, cuda or cuda:N)")
        if self.granularity not in ("sentence", "chapter"):
            raise ConfigError("--granularity must be 'sentence' or 'chapter'")
        for name in ("sentence_pause_ms", "paragraph_pause_ms", "chapter_pause_ms"):
            if not (0 <= getattr(self, name) <= 60_000):
                raise ConfigError(f"{name.replace('_', '-')} must be between 0 and 60000 ms")
        if self.split_hours < 0:
            raise ConfigError("--split-hours must be positive")
        if self.batch_chars < 1:
            raise ConfigError("--batch-chars must be positive")
        if not (-40.0 <= self.loudness <= -5.0):
            raise ConfigError(f"--loudness must be between -40 and -5 LUFS, not {self.loudness}")
        if not (-20.0 <= self.true_peak <= 0.0):
            raise ConfigError(f"--true-peak must be between -20 and 0 dBTP, not {self.true_peak}")
        if self.encode_jobs < 0:
            raise ConfigError("--encode-jobs must be 0 (one per core) or more")
        if self.preset not in ("", "acx"):
            raise ConfigError(f"unknown preset {self.preset!r} (choose from acx)")
        if not (1 <= self.verify_takes <= 10):
            raise ConfigError(f"--verify-takes must be between 1 and 10, not {self.verify_takes}")
        if not (0 < self.verify_max_wer <= 5 and 0 < self.verify_max_cer <= 5):
            raise ConfigError("--verify-max-wer and --verify-max-cer must be over 0 (1 = 100 %)")
        return self

    @property
    def effective_workers(self) -> int:
        return self.workers or default_workers()

    @property
    def effective_encode_jobs(self) -> int:
        return self.encode_jobs or default_workers()


_FIELDS = {f.name: f for f in fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    default = getattr(Settings(), name)
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, Path):
            return Path(str(value)).expanduser()
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid value for {name}: {value!r}") from exc


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge the layers. ``flags`` holds only the flags the user gave (None means not given)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = config_file or (Path(env["EBOOK2AUDIO_CONFIG"]) if env.get("EBOOK2AUDIO_CONFIG") else None)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        section = data.get("ebook2audio", data)
        for key, value in section.items():
            name = key.replace("-", "_")
            if name not in _FIELDS:
                raise ConfigError(f"unknown setting {key!r} in {path}")
            values[name] = _coerce(name, value)
    for name in _FIELDS:
        raw = env.get(f"EBOOK2AUDIO_{name.upper()}")
        if raw is not None and raw != "":
            values[name] = _coerce(name, raw)
    for name, value in (flags or {}).items():
        if value is not None and name in _FIELDS:
            values[name] = _coerce(name, value)
    settings = replace(Settings(), **values)
    if settings.work_dir == Path():
        settings = replace(settings, work_dir=default_work_dir(env))
    return settings.validated()


def parse_chapter_selection(spec: str, count: int) -> list[int]:
    """'1-3,7' -> [0, 1, 2, 6] (0-based indexes), checked against the number of chapters."""
    if not spec.strip():
        return list(range(count))
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                a, b = part.split("-", 1)
                lo = int(a) if a.strip() else 1
                hi = int(b) if b.strip() else count
            else:
                lo = hi = int(part)
        except ValueError as exc:
            raise ConfigError(f"invalid chapter selection {spec!r} (example: 1-3,7)") from exc
        if lo < 1 or hi > count or lo > hi:
            raise ConfigError(f"chapter selection {part!r} is outside 1-{count}")
        out.extend(i - 1 for i in range(lo, hi + 1) if i - 1 not in out)
    return out
