"""Text-to-speech engines behind one seam (:class:`Engine`), chosen by name in :mod:`.registry`.

Importing this package is cheap: piper, onnxruntime and libespeak-ng load only with a voice.
"""

from .base import Engine, EngineInfo
from .espeak import EspeakEngine
from .piper import CudaOutOfMemoryError, PiperEngine
from .plugin import ENTRY_POINT_GROUP, EnginePlugin
from .registry import (
    ENGINES,
    MAX_CHARS,
    VOICE_ALIASES,
    VoiceEntry,
    download_voice,
    engine_names,
    list_voices,
    load_engine,
    resolve_voice,
    voices_dir,
)
from .sim import SimEngine

__all__ = [
    "ENGINES",
    "ENTRY_POINT_GROUP",
    "MAX_CHARS",
    "VOICE_ALIASES",
    "CudaOutOfMemoryError",
    "Engine",
    "EngineInfo",
    "EnginePlugin",
    "EspeakEngine",
    "PiperEngine",
    "SimEngine",
    "VoiceEntry",
    "download_voice",
    "engine_names",
    "list_voices",
    "load_engine",
    "resolve_voice",
    "voices_dir",
]
