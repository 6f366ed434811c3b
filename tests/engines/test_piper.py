"""The Piper adapter with the real bundled voice: speech, speed, threads, devices, errors."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from ebook2audio.engines import CudaOutOfMemoryError, load_engine, resolve_voice
from ebook2audio.engines import piper as piper_mod
from ebook2audio.engines.base import chunk_seed
from ebook2audio.engines.piper import (
    BUNDLED_VOICE,
    PiperEngine,
    bundled_voice,
    looks_like_oom,
    read_voice,
    scan_voices_dir,
)
from ebook2audio.errors import SynthesisError, VoiceError
from ebook2audio.model import EngineInfo, VoiceSpec

from .conftest import TEN_WORDS, pcm_rms, pcm_seconds


def test_bundled_voice_config_is_read_without_loading() -> None:
    voice = bundled_voice()
    assert voice.name == BUNDLED_VOICE
    assert voice.language == "en-US"
    assert voice.sample_rate == 22050
    assert voice.quality == "medium"
    assert voice.bundled


def test_english_sentence_is_plausible_speech(joe_engine: PiperEngine) -> None:
    pcm = joe_engine.synthesize(TEN_WORDS)
    assert len(pcm) % 2 == 0
    assert 1.5 <= pcm_seconds(pcm) <= 6.0
    assert pcm_rms(pcm) > 1000  # speech, not silence or hiss


def test_several_sentences_are_concatenated_without_loss(joe_engine: PiperEngine) -> None:
    one = joe_engine.synthesize("The sea was calm.")
    three = joe_engine.synthesize("The sea was calm. The sky was grey. Nobody spoke.")
    assert pcm_seconds(three) > 2 * pcm_seconds(one)


def test_speed_two_is_clearly_shorter(joe_engine: PiperEngine) -> None:
    fast = load_engine(joe_engine.info, speed=2.0)
    try:
        normal = pcm_seconds(joe_engine.synthesize(TEN_WORDS))
        quick = pcm_seconds(fast.synthesize(TEN_WORDS))
    finally:
        fast.close()
    assert quick < 0.7 * normal


LONG_SENTENCE = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, the epoch of incredulity, it was the season of Light, "
    "it was the season of Darkness, it was the spring of hope, it was the winter of despair, we had "
    "everything before us, we had nothing before us, we were going direct to Heaven, we were "
    "all going the other way."
)


def _synthesize_in_a_new_process(text: str, seed: int | None, speed: float = 1.0) -> bytes:
    """Run in a spawned process: load the bundled voice from scratch and speak ``text`` once."""
    engine = load_engine(resolve_voice(VoiceSpec(), env={}), speed=speed, env={})
    try:
        return engine.synthesize(text, seed=seed)
    finally:
        engine.close()


def _in_new_process(text: str, seed: int | None, speed: float = 1.0) -> bytes:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_synthesize_in_a_new_process, text, seed, speed).result(timeout=300)


def test_same_text_and_seed_give_identical_audio_in_separate_processes(joe_engine: PiperEngine) -> None:
    assert joe_engine.seeded
    seed = chunk_seed("a chunk id")
    first = _in_new_process(TEN_WORDS, seed)
    second = _in_new_process(TEN_WORDS, seed)
    assert first == second
    assert joe_engine.synthesize(TEN_WORDS, seed=seed) == first  # a process that has spoken before, too
    assert 1.5 <= pcm_seconds(first) <= 6.0
    assert pcm_rms(first) > 1000


def test_different_seeds_give_different_audio(joe_engine: PiperEngine) -> None:
    takes = {joe_engine.synthesize(TEN_WORDS, seed=seed) for seed in (1, 2, 3)}
    assert len(takes) == 3
    lengths = [pcm_seconds(pcm) for pcm in takes]
    assert max(lengths) - min(lengths) < 0.5  # the same sentence, read a little differently


def test_no_seed_still_speaks_with_fresh_noise(joe_engine: PiperEngine) -> None:
    first, second = joe_engine.synthesize(TEN_WORDS), joe_engine.synthesize(TEN_WORDS, seed=None)
    assert first != second
    for pcm in (first, second):
        assert 1.5 <= pcm_seconds(pcm) <= 6.0
        assert pcm_rms(pcm) > 1000


def test_several_sentences_in_one_chunk_are_reproducible(joe_engine: PiperEngine) -> None:
    text = "The sea was calm. The sky was grey. Nobody spoke."
    pcm = joe_engine.synthesize(text, seed=5)
    assert pcm == joe_engine.synthesize(text, seed=5)
    # each sentence gets its own noise: not the first sentence's noise replayed
    assert pcm != joe_engine.synthesize(text, seed=6)


def test_a_chunk_near_the_limit_is_reproducible_whatever_the_noise_buffer_sizes(
    joe_engine: PiperEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert joe_engine.info.max_chars - 40 <= len(LONG_SENTENCE) <= joe_engine.info.max_chars
    expected = joe_engine.synthesize(LONG_SENTENCE, seed=11)
    assert 15.0 <= pcm_seconds(expected) <= 40.0
    assert pcm_rms(expected) > 1000
    # A fresh engine whose first buffers are far too short: retried with longer ones, same audio.
    monkeypatch.setattr(piper_mod, "_FIRST_PER_UNIT", 1.0)
    fresh = load_engine(joe_engine.info, env={})
    try:
        assert fresh.synthesize(LONG_SENTENCE, seed=11) == expected
    finally:
        fresh.close()


def test_slow_and_fast_speeds_are_reproducible(joe_engine: PiperEngine) -> None:
    text = LONG_SENTENCE[:150]
    normal = pcm_seconds(joe_engine.synthesize(text, seed=3))
    for speed in (0.5, 2.0):
        engine = load_engine(joe_engine.info, speed=speed, env={})  # fresh: first buffer sizes
        try:
            pcm = engine.synthesize(text, seed=3)
            assert engine.synthesize(text, seed=3) == pcm
        finally:
            engine.close()
        assert pcm_rms(pcm) > 1000
        assert pcm_seconds(pcm) == pytest.approx(normal / speed, rel=0.25)


@pytest.mark.parametrize("text", ["", "   \n", "...", "—", "!?"])
def test_unspeakable_text_gives_no_samples(joe_engine: PiperEngine, text: str) -> None:
    assert joe_engine.synthesize(text) == b""


def test_session_runs_one_inference_thread(joe_engine: PiperEngine) -> None:
    options = joe_engine.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.inter_op_num_threads == 1
    assert joe_engine.session.get_providers()[0] == "CPUExecutionProvider"
    assert joe_engine.device == "cpu"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_loading_and_speaking_start_no_thread_pool() -> None:
    before = len(os.listdir("/proc/self/task"))
    engine = load_engine(resolve_voice(VoiceSpec(), env={}), env={})
    engine.synthesize("A short test of the thread count.")
    after = len(os.listdir("/proc/self/task"))
    engine.close()
    assert after <= before


def test_cuda_without_cuda_provider_is_an_error_not_a_fallback() -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has a CUDA onnxruntime")
    info = resolve_voice(VoiceSpec(), env={})
    for device in ("cuda", "cuda:1", "gpu"):
        with pytest.raises(VoiceError, match="CUDA requested but onnxruntime has no CUDA provider"):
            load_engine(info, device=device)


def test_cuda_provider_that_falls_back_to_cpu_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    real = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" in real:
        pytest.skip("this machine has a CUDA onnxruntime")
    # onnxruntime says it has CUDA, but the session it builds runs on the CPU: must be caught.
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", *real])
    info = resolve_voice(VoiceSpec(), env={})
    with pytest.warns(UserWarning), pytest.raises(VoiceError, match="could not use cuda:0"):
        load_engine(info, device="cuda")
    with pytest.warns(UserWarning):
        auto = load_engine(info, device="auto", env={})
    assert auto.device == "cpu"
    assert auto.synthesize("Hello.") != b""


def test_auto_honours_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    calls: list[object] = []
    real_session = onnxruntime.InferenceSession

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("providers"))
        return real_session(*args, **kwargs)

    real = onnxruntime.get_available_providers()
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", *real])
    monkeypatch.setattr(onnxruntime, "InferenceSession", spy)
    engine = load_engine(resolve_voice(VoiceSpec(), env={}), device="auto", env={"CUDA_VISIBLE_DEVICES": ""})
    assert engine.device == "cpu"
    assert calls == [["CPUExecutionProvider"]]  # CUDA was not even tried


def test_unknown_device_is_a_user_error(joe_engine: PiperEngine) -> None:
    from ebook2audio.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown device"):
        load_engine(joe_engine.info, device="tpu")


def _fake_voice(error: Exception) -> SimpleNamespace:
    def synthesize(text: str, syn_config: object = None) -> object:
        raise error

    return SimpleNamespace(config=SimpleNamespace(length_scale=1.0), synthesize=synthesize)


def test_cuda_out_of_memory_is_recognisable() -> None:
    info = EngineInfo(engine="piper", voice="x", language="en-US", sample_rate=22050, max_chars=400)
    oom = RuntimeError(
        "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running "
        "Conv node. CUDA failure 2: out of memory ; GPU=0"
    )
    on_gpu = PiperEngine(info, _fake_voice(oom), device="cuda:0")
    with pytest.raises(CudaOutOfMemoryError, match="CUDA out of memory on cuda:0") as caught:
        on_gpu.synthesize("Hello there.")
    assert isinstance(caught.value, SynthesisError)
    assert caught.value.__cause__ is oom

    other = PiperEngine(info, _fake_voice(RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT")))
    with pytest.raises(SynthesisError, match="INVALID_ARGUMENT") as caught_other:
        other.synthesize("Hello there.")
    assert not isinstance(caught_other.value, CudaOutOfMemoryError)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("CUDA failure 2: out of memory", True),
        ("CUDNN_STATUS_ALLOC_FAILED", True),
        ("BFCArena::AllocateRawInternal Failed to allocate memory for requested buffer", True),
        ("CUDA error cudaErrorMemoryAllocation:out of memory", True),
        ("INVALID_ARGUMENT : Got invalid dimensions", False),
    ],
)
def test_out_of_memory_messages(message: str, expected: bool) -> None:
    assert looks_like_oom(message) is expected


def test_closed_engine_refuses_to_speak() -> None:
    info = EngineInfo(engine="piper", voice="x", language="en-US", sample_rate=22050, max_chars=400)
    engine = PiperEngine(info, _fake_voice(RuntimeError("never called")))
    engine.close()
    with pytest.raises(SynthesisError, match="closed"):
        engine.synthesize("Hello.")


def test_voice_without_config_is_a_voice_error(tmp_path: Path) -> None:
    model = tmp_path / "lonely.onnx"
    shutil.copyfile(bundled_voice().config_path, model)  # any file will do: it is never loaded
    with pytest.raises(VoiceError, match=r"lonely.onnx.json must sit beside it"):
        read_voice(model)
    assert scan_voices_dir(tmp_path) == []


def test_voice_with_broken_config_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "bad.onnx").write_bytes(b"x")
    (tmp_path / "bad.onnx.json").write_text("{not json", encoding="utf-8")
    good_config = json.loads(bundled_voice().config_path.read_text(encoding="utf-8"))
    (tmp_path / "good.onnx").write_bytes(b"x")
    (tmp_path / "good.onnx.json").write_text(json.dumps(good_config), encoding="utf-8")
    with pytest.raises(VoiceError, match="unreadable Piper voice config"):
        read_voice(tmp_path / "bad.onnx")
    assert [v.name for v in scan_voices_dir(tmp_path)] == ["good"]
