"""The engine plug-in seam: what an engine declares, and the one call it must answer."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..model import EngineInfo

__all__ = ["Engine", "EngineInfo"]


@runtime_checkable
class Engine(Protocol):
    """A loaded voice. One per process, loaded once, one inference thread."""

    info: EngineInfo
    device: str  # "cpu", "cuda:0", ...: said loudly by workers

    def synthesize(self, text: str) -> bytes:
        """Return 16-bit little-endian mono PCM at info.sample_rate for ``text`` (<= info.max_chars)."""
        ...

    def close(self) -> None: ...
