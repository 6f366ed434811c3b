"""espeak-ng through its C API (ctypes), from the library and data shipped in the ``espeakng_loader`` wheel.

No system package is needed. This is NOT the espeak-ng that piper uses for phonemization (piper
links its own copy in ``piper/espeakbridge.so`` with its own ``piper/espeak-ng-data``); the two
never share a data path.

Two halves:

* the voice catalogue (:func:`list_espeak_voices`, :func:`find_voice_for_language`,
  :func:`find_voice_by_name`) reads the ``espeak-ng-data/lang/**`` files only: no library is loaded;
* :class:`EspeakEngine` speaks through the library.

**One library per process.** libespeak-ng keeps global state (current voice, rate, callback). The
first :class:`EspeakEngine` initialises it; later instances in the same process share it: every
``synthesize`` call takes one process-wide lock and re-selects its own voice and rate, so several
instances with different voices are correct, only serialised. ``close()`` does not terminate the
library (re-initialising espeak-ng in one process is not reliable); the OS frees it at exit.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SynthesisError, VoiceError
from ..interrupts import deferred_interrupts
from ._common import is_speakable, normalize_language
from .base import EngineInfo

log = logging.getLogger(__name__)

SAMPLE_RATE = 22050  # what espeak_Initialize returns for the shipped data; checked at load
DEFAULT_RATE_WPM = 175
MIN_RATE_WPM = 80
MAX_RATE_WPM = 450

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 0x02  # synth callback called inside espeak_Synth, in the calling thread
_INITIALIZE_DONT_EXIT = 0x8000  # never exit() the process on a data error
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ESPEAK_RATE = 1  # espeak_PARAMETER espeakRATE
_EE_OK = 0
_DEFAULT_PRIORITY = 5
_PHONEMES_IPA = 0x02  # espeak_TextToPhonemes phonememode: IPA as UTF-8
_PHONEMES_TIE = 0x80  # ... with bits 8-23 as a tie inside multi-letter phonemes

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


@dataclass(frozen=True)
class EspeakVoice:
    """One espeak-ng language voice, from its ``lang/`` file."""

    identifier: str  # path under lang/, e.g. "roa/fr"
    name: str  # display name, e.g. "French (France)"
    languages: tuple[tuple[str, int], ...]  # (lower-case tag, priority: lower = preferred)

    @property
    def voice_id(self) -> str:
        """The name espeak_SetVoiceByName takes, e.g. ``"fr"``, ``"en-US"``."""
        return self.identifier.rsplit("/", 1)[-1]

    @property
    def language(self) -> str:
        """The voice's own language as BCP 47, e.g. ``"fr-FR"``."""
        return normalize_language(self.languages[0][0]) if self.languages else self.voice_id


def data_path() -> Path:
    """The ``espeak-ng-data`` directory shipped in the espeakng_loader wheel."""
    try:
        import espeakng_loader

        return Path(espeakng_loader.get_data_path())
    except (ImportError, RuntimeError) as exc:
        raise VoiceError(f"espeak-ng data is missing (package espeakng-loader): {exc}") from exc


def _parse_lang_file(path: Path, root: Path) -> tuple[EspeakVoice, str]:
    """The voice in ``path`` and the dictionary it needs."""
    name = ""
    languages: list[tuple[str, int]] = []
    dictionary = ""
    for raw in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        fields = raw.split("//", 1)[0].split()
        if len(fields) < 2:
            continue
        key = fields[0]
        if key == "name" and not name:
            name = " ".join(fields[1:])
        elif key == "language":
            priority = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else _DEFAULT_PRIORITY
            languages.append((fields[1].lower(), priority))
        elif key == "dictionary":
            dictionary = fields[1]
    identifier = path.relative_to(root).as_posix()
    if not dictionary:
        dictionary = languages[0][0].split("-", 1)[0] if languages else path.name.lower()
    voice = EspeakVoice(identifier=identifier, name=name or path.name, languages=tuple(languages))
    return voice, dictionary


def _catalogue(data_dir: Path) -> tuple[EspeakVoice, ...]:
    root = data_dir / "lang"
    voices = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        voice, dictionary = _parse_lang_file(path, root)
        if not (data_dir / f"{dictionary}_dict").is_file():
            continue  # espeak-ng would speak it without its dictionary: skip it (kaa, fo, xex)
        voices.append(voice)
    return tuple(voices)


def list_espeak_voices(data_dir: Path | None = None) -> list[EspeakVoice]:
    """The espeak-ng language voices that have their dictionary, sorted by identifier."""
    return list(_catalogue(data_dir or data_path()))


def find_voice_for_language(language: str, voices: list[EspeakVoice] | None = None) -> EspeakVoice | None:
    """The preferred voice for a BCP 47 tag: exact tag first, then ever shorter prefixes (fr-CA -> fr)."""
    voices = list_espeak_voices() if voices is None else voices
    parts = normalize_language(language).lower().split("-")
    for size in range(len(parts), 0, -1):
        wanted = "-".join(parts[:size])
        best: tuple[int, EspeakVoice] | None = None
        for voice in voices:
            for tag, priority in voice.languages:
                if tag == wanted and (best is None or priority < best[0]):
                    best = (priority, voice)
        if best is not None:
            return best[1]
    return None


def find_voice_by_name(
    name: str, voices: list[EspeakVoice] | None = None, *, by_language: bool = True
) -> EspeakVoice | None:
    """A voice by its id (``fr-BE``), identifier (``roa/fr-BE``), display name or (``by_language``) tag."""
    voices = list_espeak_voices() if voices is None else voices
    wanted = name.strip().lower().replace("_", "-")
    for voice in voices:
        if wanted in (voice.voice_id.lower(), voice.identifier.lower(), voice.name.lower()):
            return voice
    if by_language and wanted and "+" not in wanted:
        return find_voice_for_language(wanted, voices)
    return None


def variant_exists(variant: str, data_dir: Path | None = None) -> bool:
    """True when ``voices/!v/<variant>`` exists (``fr+f3`` uses variant ``f3``)."""
    if not variant or "/" in variant or variant.startswith("."):
        return False
    return ((data_dir or data_path()) / "voices" / "!v" / variant).is_file()


class _EspeakLibrary:
    """The process's one initialised libespeak-ng. Use through :func:`_library` only."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,  # text
            ctypes.c_size_t,  # size
            ctypes.c_uint,  # position
            ctypes.c_int,  # position_type
            ctypes.c_uint,  # end_position
            ctypes.c_uint,  # flags
            ctypes.c_void_p,  # unique_identifier
            ctypes.c_void_p,  # user_data
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path()).encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise VoiceError(f"espeak-ng failed to initialise with data {data_path()}")
        self.lib = lib
        self.sample_rate = rate
        self.lock = threading.Lock()
        self.voice = ""
        self.rate_wpm = 0
        self._pieces: list[bytes] = []
        self._callback = _SynthCallback(self._on_audio)  # kept alive as long as the library
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav: Any, count: int, _events: Any) -> int:
        if wav and count > 0:
            self._pieces.append(ctypes.string_at(wav, count * 2))
        return 0  # 0 = go on

    def select(self, voice: str, rate_wpm: int) -> None:
        """Make ``voice`` and ``rate_wpm`` current (caller holds the lock)."""
        if voice != self.voice:
            status = self.lib.espeak_SetVoiceByName(voice.encode())
            if status != _EE_OK:
                self.voice = ""
                raise VoiceError(f"espeak-ng cannot select voice {voice!r} (error {status})")
            self.voice = voice
            self.rate_wpm = 0  # a new voice resets the rate
        if rate_wpm != self.rate_wpm:
            self.lib.espeak_SetParameter(_ESPEAK_RATE, rate_wpm, 0)
            self.rate_wpm = rate_wpm

    def phonemes(self, text: str, mode: int) -> list[str]:
        """``text``'s phonemes with the current voice, one string per clause (caller holds the lock)."""
        buffer = ctypes.create_string_buffer(text.encode("utf-8"))  # NUL-terminated, alive until the end
        cursor = ctypes.c_void_p(ctypes.addressof(buffer))
        clauses: list[str] = []
        while cursor.value:  # espeak-ng advances the cursor one clause a call, NULL at the end
            out = self.lib.espeak_TextToPhonemes(ctypes.byref(cursor), _CHARS_UTF8, mode)
            if out:
                clauses.append(out.decode("utf-8", errors="replace"))
        return clauses

    def speak(self, text: str) -> bytes:
        """PCM for ``text`` with the current voice (caller holds the lock)."""
        data = text.encode("utf-8")
        buffer = ctypes.create_string_buffer(data)  # NUL-terminated
        self._pieces = []
        with deferred_interrupts():  # (an interrupt inside the audio callback would be lost)
            status = self.lib.espeak_Synth(buffer, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self.lib.espeak_Synchronize()
        pieces, self._pieces = self._pieces, []
        if status != _EE_OK:
            raise SynthesisError(f"espeak-ng failed on a {len(text)}-character chunk (error {status})")
        pcm = b"".join(pieces)
        if sys.byteorder == "big":  # pragma: no cover - native int16 -> little-endian
            import array

            samples = array.array("h", pcm)
            samples.byteswap()
            pcm = samples.tobytes()
        return pcm


_LIBRARY_LOCK = threading.Lock()


@functools.cache
def _load_library() -> _EspeakLibrary:
    return _EspeakLibrary()


def _library() -> _EspeakLibrary:
    with _LIBRARY_LOCK:
        return _load_library()


def rate_for_speed(speed: float) -> int:
    """espeak words per minute for a speed factor (1.0 = 175 wpm), within espeak's 80-450."""
    return max(MIN_RATE_WPM, min(MAX_RATE_WPM, round(DEFAULT_RATE_WPM * speed)))


def ipa_phonemes(voice: str, text: str, *, tie: str = "") -> list[str]:
    """espeak-ng's IPA for ``text`` read by ``voice`` (``"en-us"``, ``"fr"``), one string per clause
    (punctuation dropped, words separated by spaces, stress marks kept). ``tie``: one character joined
    inside multi-letter phonemes (``"^"``: ``t^ʃ``). Shares the process's one library and its lock."""
    mode = _PHONEMES_IPA | ((_PHONEMES_TIE | (ord(tie) << 8)) if tie else 0)
    library = _library()
    with library.lock:
        library.select(voice, library.rate_wpm or DEFAULT_RATE_WPM)
        return library.phonemes(text, mode)


class EspeakEngine:
    """An espeak-ng voice. Instances share the process's one library (see the module doc)."""

    def __init__(self, info: EngineInfo, *, speed: float = 1.0) -> None:
        self.info = info
        self.device = "cpu"
        self.speed = speed
        self.rate_wpm = rate_for_speed(speed)
        self._closed = False
        library = _library()
        if library.sample_rate != info.sample_rate:
            raise VoiceError(
                f"espeak-ng speaks at {library.sample_rate} Hz, not the planned {info.sample_rate} Hz"
            )
        with library.lock:
            library.select(info.voice, self.rate_wpm)  # fails now, not on the first chunk
        self._library = library

    def synthesize(self, text: str, *, seed: int | None = None) -> bytes:
        """16-bit LE mono PCM at 22050 Hz for ``text``; b"" for text with nothing to say."""
        if self._closed:
            raise SynthesisError("the espeak-ng engine is closed")
        if not is_speakable(text):
            return b""
        with self._library.lock:
            try:
                self._library.select(self.info.voice, self.rate_wpm)
            except VoiceError as exc:
                raise SynthesisError(str(exc)) from exc
            return self._library.speak(text)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> EspeakEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
