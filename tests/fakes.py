"""A fake engine for unit tests that isolate pipeline logic (the real voices are tested end to end)."""

from __future__ import annotations

from ebook2audio.engines.base import EngineInfo

FAKE_INFO = EngineInfo(engine="fake", voice="fake", language="en", sample_rate=8000, max_chars=80)


class FakeEngine:
    """Returns 10 ms of a constant per character; counts calls."""

    def __init__(self, info: EngineInfo = FAKE_INFO) -> None:
        self.info = info
        self.device = "cpu"
        self.calls: list[str] = []

    def synthesize(self, text: str, *, seed: int | None = None) -> bytes:
        self.calls.append(text)
        return b"\x10\x00" * (80 * len(text))

    def close(self) -> None:
        pass
