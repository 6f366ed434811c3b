"""The engine plug-in seam: what an engine declares, and the one call it must answer."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..model import EngineInfo

__all__ = ["Engine", "EngineInfo", "chunk_seed"]


@runtime_checkable
class Engine(Protocol):
    """A loaded voice. One per process, loaded once, one inference thread."""

    info: EngineInfo
    device: str  # "cpu", "cuda:0", ...: said loudly by workers

    def synthesize(self, text: str, *, seed: int | None = None) -> bytes:
        """Return 16-bit little-endian mono PCM at info.sample_rate for ``text`` (<= info.max_chars).

        ``seed``: where the engine samples noise, the same seed gives the same samples (tasks pass
        ``chunk_seed(chunk.id)``, so a chunk synthesised twice, on any worker, is byte-identical where the
        engine allows it). Engines without randomness ignore it.
        """
        ...

    def close(self) -> None: ...


def chunk_seed(chunk_id: str) -> int:
    """The noise seed of a chunk: a 63-bit number derived from its (content-hash) id."""
    import hashlib

    return int.from_bytes(hashlib.sha256(chunk_id.encode()).digest()[:8], "big") >> 1
