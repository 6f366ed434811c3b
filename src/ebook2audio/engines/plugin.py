"""The engine plug-in interface: what a package registers under the ``ebook2audio.engines`` entry point
group (the built-in piper, espeak and sim engines register the same way). See docs/engines.md.

An entry point names an object (or a class, instantiated without arguments) with:

- ``resolve(spec, env) -> EngineInfo``: which voice speaks ``spec``, from files only (no model loaded;
  the planner runs it once); ``EngineInfo.engine`` is the entry point's name.
- ``load(info, *, speed, device, env) -> Engine``: the loaded voice (once per worker process).
- ``voices(env) -> list[VoiceEntry]``: the installed voices, for ``ebook2audio voices``.
- optionally ``clones_voices = True``: the engine speaks with the voice of ``VoiceSpec.sample``
  (``--voice-sample``; :mod:`.voice_sample`), and sets ``EngineInfo.sample`` to its SHA-256; other
  engines are refused a sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..model import EngineInfo, VoiceSpec
from .base import Engine

__all__ = ["ENTRY_POINT_GROUP", "Engine", "EngineInfo", "EnginePlugin", "VoiceEntry", "VoiceSpec"]

ENTRY_POINT_GROUP = "ebook2audio.engines"


@dataclass(frozen=True)
class VoiceEntry:
    """One installed voice, as ``ebook2audio voices`` lists it."""

    engine: str  # "piper", "espeak", or a plugin's name
    name: str  # what --voice takes: "en_US-joe-medium", "fr"
    language: str  # BCP 47, e.g. "fr-FR"
    quality: str = ""  # Piper's "x_low" .. "high"; "" for espeak-ng
    description: str = ""
    path: str = ""  # the model file, where the voice has one


@runtime_checkable
class EnginePlugin(Protocol):
    """What an engine package registers (see the module docstring)."""

    def resolve(self, spec: VoiceSpec, env: Mapping[str, str]) -> EngineInfo: ...

    def load(self, info: EngineInfo, *, speed: float, device: str, env: Mapping[str, str]) -> Engine: ...

    def voices(self, env: Mapping[str, str]) -> list[VoiceEntry]: ...
