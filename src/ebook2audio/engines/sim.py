"""A simulated GPU-bound engine for benchmarks and tests of the executors.

``synthesize(text)`` waits ``ms_per_char * len(text)`` milliseconds in ``time.sleep`` (no CPU used,
the GIL released: like waiting on a GPU), then returns real audio of a speech-like length
(``len(text) * 0.06 s``, about 15 characters a second, divided by ``speed``): a quiet tone with a
little noise, deterministic per text, so encoders do real work. The noise is set so that the audio
compresses like real speech: stored as FLAC it takes 0.48 of its WAV size, as Piper's `joe` does
(0.46-0.48 measured), so storage traffic measured with it is a speech-like one. Generating it is
cheap: one second of audio is computed at construction and tiled.

A testing aid: with ``EBOOK2AUDIO_SIM_CRASH_ON=<text>``, synthesising a sentence that contains
``<text>`` kills the process with SIGSEGV, like a crash in a native TTS library.
"""

from __future__ import annotations

import math
import os
import signal
import time
import zlib
from collections.abc import Mapping

from ..errors import ConfigError, SynthesisError
from .base import EngineInfo

SAMPLE_RATE = 22050
SECONDS_PER_CHAR = 0.06
DEFAULT_MS_PER_CHAR = 10.0
ENV_MS_PER_CHAR = "EBOOK2AUDIO_SIM_MS_PER_CHAR"
ENV_CRASH_ON = "EBOOK2AUDIO_SIM_CRASH_ON"


def ms_per_char_from_env(env: Mapping[str, str] | None = None) -> float:
    """EBOOK2AUDIO_SIM_MS_PER_CHAR (milliseconds of 'GPU time' per character), default 10."""
    env = os.environ if env is None else env
    raw = env.get(ENV_MS_PER_CHAR, "").strip()
    if not raw:
        return DEFAULT_MS_PER_CHAR
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{ENV_MS_PER_CHAR} must be a number of milliseconds, not {raw!r}") from exc
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{ENV_MS_PER_CHAR} must be >= 0, not {raw!r}")
    return value


class SimEngine:
    """Sleeps like a GPU would, then returns plausible-length, non-silent 16-bit PCM."""

    def __init__(
        self,
        info: EngineInfo,
        *,
        speed: float = 1.0,
        ms_per_char: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        import numpy as np

        self.info = info
        self.device = "sim"
        self.speed = speed
        self.ms_per_char = ms_per_char_from_env(env) if ms_per_char is None else float(ms_per_char)
        if not math.isfinite(self.ms_per_char) or self.ms_per_char < 0:
            raise ConfigError(f"ms_per_char must be >= 0, not {ms_per_char!r}")
        rate = info.sample_rate
        t = np.arange(rate, dtype=np.float64) / rate
        # 220 Hz and 330 Hz at about -24 dBFS, plus soft noise (-60 dBFS: FLAC sizes like speech's):
        # never silent, never loud.
        tone = 0.04 * np.sin(2 * np.pi * 220 * t) + 0.02 * np.sin(2 * np.pi * 330 * t)
        noise = np.random.default_rng(12345).normal(0.0, 0.001, rate)
        self._second = np.clip((tone + noise) * 32767, -32767, 32767).astype("<i2")
        self.crash_on = (os.environ if env is None else env).get(ENV_CRASH_ON, "")
        self._closed = False

    def samples_for(self, text: str) -> int:
        """How many samples ``synthesize(text)`` returns."""
        text = text.strip()
        return round(len(text) * SECONDS_PER_CHAR / self.speed * self.info.sample_rate) if text else 0

    def synthesize(self, text: str, *, seed: int | None = None) -> bytes:
        import numpy as np

        if self._closed:
            raise SynthesisError("the sim engine is closed")
        if self.crash_on and self.crash_on in text:
            os.kill(os.getpid(), signal.SIGSEGV)  # a native library's crash, for the poison tests
        time.sleep(self.ms_per_char * len(text) / 1000.0)
        count = self.samples_for(text)
        if count == 0:
            return b""
        start = zlib.crc32(text.encode("utf-8")) % len(self._second)
        return np.resize(np.roll(self._second, -start), count).tobytes()

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> SimEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
