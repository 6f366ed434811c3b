"""The simulated GPU-bound engine: sleeps without CPU, returns audio of a speech-like length."""

from __future__ import annotations

import time

import pytest

from ebook2audio.engines import SimEngine, load_engine, resolve_voice
from ebook2audio.engines.sim import ms_per_char_from_env
from ebook2audio.errors import ConfigError, SynthesisError
from ebook2audio.model import VoiceSpec

from .conftest import pcm_rms, pcm_seconds


def _sim(ms_per_char: float = 0.0, speed: float = 1.0) -> SimEngine:
    return SimEngine(resolve_voice(VoiceSpec(engine="sim"), env={}), ms_per_char=ms_per_char, speed=speed)


def test_sleeps_without_using_the_cpu() -> None:
    engine = _sim(ms_per_char=2.0)
    text = "x" * 100
    wall, cpu = time.perf_counter(), time.process_time()
    pcm = engine.synthesize(text)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert wall >= 0.19
    assert cpu < 0.1
    assert pcm_seconds(pcm) == pytest.approx(100 * 0.06, abs=1e-3)


def test_audio_is_quiet_but_not_silent_and_deterministic() -> None:
    engine = _sim()
    a = engine.synthesize("It was a dark and stormy night.")
    assert 300 < pcm_rms(a) < 3000
    assert engine.synthesize("It was a dark and stormy night.") == a
    assert engine.synthesize("It was a bright and sunny day...") != a


def test_speed_shortens_audio_and_empty_text_is_empty() -> None:
    assert pcm_seconds(_sim(speed=2.0).synthesize("y" * 50)) == pytest.approx(1.5, abs=1e-3)
    assert _sim().synthesize("   ") == b""


def test_ms_per_char_from_environment() -> None:
    assert ms_per_char_from_env({}) == 10.0
    assert ms_per_char_from_env({"EBOOK2AUDIO_SIM_MS_PER_CHAR": "2.5"}) == 2.5
    for bad in ("fast", "-1", "nan"):
        with pytest.raises(ConfigError, match="EBOOK2AUDIO_SIM_MS_PER_CHAR"):
            ms_per_char_from_env({"EBOOK2AUDIO_SIM_MS_PER_CHAR": bad})
    engine = load_engine(
        resolve_voice(VoiceSpec(engine="sim"), env={}), env={"EBOOK2AUDIO_SIM_MS_PER_CHAR": "0"}
    )
    assert isinstance(engine, SimEngine)
    assert engine.ms_per_char == 0.0
    assert engine.device == "sim"


def test_closed_sim_refuses() -> None:
    engine = _sim()
    engine.close()
    with pytest.raises(SynthesisError):
        engine.synthesize("a")


def test_crash_trigger_kills_the_process_with_sigsegv() -> None:
    """EBOOK2AUDIO_SIM_CRASH_ON: the testing aid of the poison-sentence tests."""
    import os
    import signal
    import subprocess
    import sys

    code = (
        "from ebook2audio.engines import SimEngine, resolve_voice\n"
        "from ebook2audio.model import VoiceSpec\n"
        "e = SimEngine(resolve_voice(VoiceSpec(engine='sim'), env={}), ms_per_char=0)\n"
        "assert e.synthesize('a harmless sentence')\n"
        "print('spoke', flush=True)\n"
        "e.synthesize('the Zanzibar sentence')\n"
        "print('survived', flush=True)\n"
    )
    env = {**os.environ, "EBOOK2AUDIO_SIM_CRASH_ON": "Zanzibar"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == -signal.SIGSEGV, r.stderr
    assert r.stdout.split() == ["spoke"]
    assert _sim().crash_on == ""  # off unless set
