"""The xtts engine (XTTS-v2 voice cloning) on a tiny random model built here: the real coqui-tts code
path, voice samples checked and carried through storage, one-line errors."""

from __future__ import annotations

import hashlib
import importlib.util
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ebook2audio.acx import narrator
from ebook2audio.engines import resolve_voice, voice_sample
from ebook2audio.engines.xtts import CHAR_LIMITS, MODEL_PAGE, XTTS, XttsEngine, model_dir, xtts_language
from ebook2audio.errors import VoiceError
from ebook2audio.model import Book, Chapter, Metadata, VoiceSpec
from ebook2audio.plan import make_plan
from ebook2audio.storage.local import LocalStorage

from .xtts_fixture import build_tiny_xtts, piper_recording, xtts_entry_point

pytestmark = pytest.mark.skipif(importlib.util.find_spec("TTS") is None, reason='needs ebook2audio[clone]')

REFERENCE = "The old lighthouse keeper walked slowly along the rocky shore, counting the ships that came home."


@pytest.fixture(scope="session")
def xtts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_xtts(tmp_path_factory.mktemp("xtts") / "model")


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("samples")
    return (
        piper_recording(folder / "ref.wav", REFERENCE),
        piper_recording(folder / "other.wav", REFERENCE, length_scale=0.75),
    )


@pytest.fixture(scope="session")
def session_env(xtts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {"EBOOK2AUDIO_XTTS_DIR": str(xtts_dir), "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="session")
def engine(session_env: dict[str, str], samples: tuple[Path, Path]) -> Iterator[XttsEngine]:
    info = XTTS.resolve(VoiceSpec(engine="xtts", language="en", sample=str(samples[0])), session_env)
    loaded = XTTS.load(info, speed=1.0, device="cpu", env=session_env)
    yield loaded
    loaded.close()


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# --------------------------------------------------------------------------- pure parts


def test_char_limits_are_the_tokenizers() -> None:
    from ebook2audio.engines._torchaudio_shim import ensure_torchaudio

    ensure_torchaudio()
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

    assert VoiceBpeTokenizer().char_limits == CHAR_LIMITS


def test_languages() -> None:
    assert xtts_language("fr-CA") == "fr"
    assert xtts_language("EN_us") == "en"
    assert xtts_language("zh") == "zh-cn"
    with pytest.raises(VoiceError) as exc:
        xtts_language("sv")
    assert "'sv'" in one_line(exc) and "fr" in str(exc.value)


def test_model_dir_default_is_in_the_voices_dir(tmp_path: Path) -> None:
    assert model_dir({"EBOOK2AUDIO_VOICES_DIR": str(tmp_path)}) == tmp_path / "xtts-v2"
    assert model_dir({"EBOOK2AUDIO_VOICES_DIR": str(tmp_path), "EBOOK2AUDIO_XTTS_DIR": "/m"}) == Path("/m")


def test_missing_model_is_one_line_with_where_and_licence(tmp_path: Path, samples: tuple[Path, Path]) -> None:
    (tmp_path / "xtts-v2").mkdir()
    (tmp_path / "xtts-v2" / "config.json").write_text("{}")
    env = {"EBOOK2AUDIO_VOICES_DIR": str(tmp_path)}
    with pytest.raises(VoiceError) as exc:
        XTTS.resolve(VoiceSpec(engine="xtts", sample=str(samples[0])), env)
    text = one_line(exc)
    assert str(tmp_path / "xtts-v2") in text and "model.pth, vocab.json missing" in text
    assert MODEL_PAGE in text and "non-commercial" in text
    assert XTTS.voices(env) == []


# --------------------------------------------------------------------------- voice samples


def test_bad_samples_are_one_line(tmp_path: Path, session_env: dict[str, str], samples: tuple[Path, Path]) -> None:
    import soundfile

    short = tmp_path / "short.wav"
    soundfile.write(short, np.sin(np.arange(22050) / 5.0).astype("float32") * 0.3, 22050)
    silent = tmp_path / "silent.flac"
    soundfile.write(silent, np.zeros(22050 * 5, dtype="float32"), 22050)
    text = tmp_path / "notes.wav"
    text.write_text("not a recording")
    cases = {
        short: "lasts 1.0 s",
        silent: "is silent",
        text: "not a readable recording",
        tmp_path / "missing.wav": "cannot read voice sample",
    }
    for path, expected in cases.items():
        with pytest.raises(VoiceError) as exc:
            XTTS.resolve(VoiceSpec(engine="xtts", sample=str(path)), session_env)
        assert expected in one_line(exc), path
    with pytest.raises(VoiceError) as exc:
        XTTS.resolve(VoiceSpec(engine="xtts"), session_env)
    assert "--voice-sample" in one_line(exc)
    with pytest.raises(VoiceError) as exc:
        XTTS.resolve(VoiceSpec(engine="xtts", language="sv", sample=str(samples[0])), session_env)
    assert "does not speak 'sv'" in one_line(exc)


def test_engine_that_cannot_clone_refuses_a_sample(samples: tuple[Path, Path]) -> None:
    with pytest.raises(VoiceError) as exc:
        resolve_voice(VoiceSpec(engine="piper", sample=str(samples[0])), env={})
    assert "cannot clone" in one_line(exc)


def test_the_sample_is_the_voice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_env: dict[str, str], samples: tuple[Path, Path]
) -> None:
    """The sample's SHA-256 is in the voice: another recording gives other chunk ids; the planner cuts
    sentences under XTTS's per-language limit."""
    folder = xtts_entry_point(tmp_path / "entry")
    if folder is not None:
        monkeypatch.syspath_prepend(str(folder))
    infos = [
        resolve_voice(VoiceSpec(engine="xtts", language="fr", sample=str(s)), env=session_env) for s in samples
    ]
    digest = hashlib.sha256(samples[0].read_bytes()).hexdigest()
    assert infos[0].sample == digest and digest in infos[0].voice and infos[0].max_chars == CHAR_LIMITS["fr"]
    assert infos[1].sample != digest and infos[0].sample_rate == 24000
    assert narrator(infos[0]) == "XTTS"  # --preset acx's credits do not read a digest aloud
    long = " ".join(["Le vieux gardien du phare marchait lentement le long du rivage"] * 8) + "."
    book = Book(metadata=Metadata(title="t", language="fr"), chapters=(Chapter(title="Un", paragraphs=(long,)),))
    plans = [make_plan(book, info, VoiceSpec(engine="xtts"), "s") for info in infos]
    assert all(len(c.text) <= CHAR_LIMITS["fr"] for c in plans[0].chunks) and len(plans[0].chunks) > 2
    assert not {c.id for c in plans[0].chunks} & {c.id for c in plans[1].chunks}


def test_samples_travel_through_storage(tmp_path: Path, samples: tuple[Path, Path]) -> None:
    sample = voice_sample.read_sample(samples[0])
    assert 3 <= sample.seconds <= 30
    storage = LocalStorage(tmp_path / "work")
    voice_sample.store(storage, "sess", sample.path, sample.sha256)
    worker_env = {"XDG_CACHE_HOME": str(tmp_path / "worker-cache")}
    with pytest.raises(VoiceError) as exc:  # not on the worker, and the coordinator's path is not there
        voice_sample.locate(sample.sha256, str(tmp_path / "elsewhere.wav"), worker_env)
    assert "not on this machine" in one_line(exc)
    got = voice_sample.fetch(storage, "sess", sample.sha256, worker_env)
    assert got.read_bytes() == samples[0].read_bytes() and got.parent == voice_sample.cache_dir(worker_env)
    assert voice_sample.locate(sample.sha256, "", worker_env) == got
    other_env = {"XDG_CACHE_HOME": str(tmp_path / "other-cache")}
    storage.put_bytes(voice_sample.sample_key("sess", sample.sha256), b"RIFF tampered")
    with pytest.raises(VoiceError) as exc:
        voice_sample.fetch(storage, "sess", sample.sha256, other_env)
    assert "does not match its SHA-256" in one_line(exc)
    with pytest.raises(VoiceError) as exc:
        voice_sample.fetch(storage, "other-session", sample.sha256, other_env)
    assert "not in" in one_line(exc)


# --------------------------------------------------------------------------- the real engine


def test_speaks_english_and_french_at_24khz(engine: XttsEngine, session_env: dict[str, str], samples: tuple[Path, Path]) -> None:
    assert engine.info.sample_rate == 24000 and engine.device == "cpu"
    pcm = engine.synthesize("Hello there, this is a test.", seed=7)
    assert len(pcm) % 2 == 0 and len(pcm) / 2 / 24000 > 0.5
    assert np.abs(np.frombuffer(pcm, dtype="<i2")).max() > 0
    info_fr = XTTS.resolve(VoiceSpec(engine="xtts", language="fr", sample=str(samples[0])), session_env)
    french = XTTS.load(info_fr, speed=1.0, device="cpu", env=session_env)
    assert french.language == "fr"
    pcm_fr = french.synthesize("Bonjour, c'est un essai à l'école.", seed=7)
    assert len(pcm_fr) / 2 / 24000 > 0.5 and pcm_fr != pcm
    assert engine.synthesize("...", seed=1) == b""


def test_same_seed_same_bytes(engine: XttsEngine) -> None:
    text = "The same sentence twice."
    first = engine.synthesize(text, seed=1234)
    assert engine.synthesize(text, seed=1234) == first
    assert engine.synthesize(text, seed=99) != first


def test_another_sample_is_another_conditioning(engine: XttsEngine, session_env: dict[str, str], samples: tuple[Path, Path]) -> None:
    import torch

    info = XTTS.resolve(VoiceSpec(engine="xtts", language="en", sample=str(samples[1])), session_env)
    other = XTTS.load(info, speed=1.0, device="cpu", env=session_env)
    assert other._loaded is not None and other._loaded is engine._loaded  # the model is loaded once
    assert not torch.equal(other._latents, engine._latents)
    assert not torch.equal(other._speaker, engine._speaker)
    assert other.synthesize("One voice or another.", seed=5) != engine.synthesize("One voice or another.", seed=5)


def test_cuda_asked_without_cuda_is_one_line(session_env: dict[str, str], samples: tuple[Path, Path]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    info = XTTS.resolve(VoiceSpec(engine="xtts", sample=str(samples[0])), session_env)
    with pytest.raises(VoiceError) as exc:
        XTTS.load(info, speed=1.0, device="cuda", env=session_env)
    assert "no CUDA" in one_line(exc)


def test_speed_changes_the_length(engine: XttsEngine, session_env: dict[str, str]) -> None:
    fast = XTTS.load(engine.info, speed=2.0, device="cpu", env=session_env)
    normal = engine.synthesize("Quick or slow.", seed=3)
    quick = fast.synthesize("Quick or slow.", seed=3)
    assert math.isclose(len(quick) / len(normal), 0.5, abs_tol=0.1)


def test_other_weights_in_the_same_folder_are_another_voice(
    xtts_dir: Path, samples: tuple[Path, Path], tmp_path: Path
) -> None:
    """The voice names the sample AND the model, so swapped weights never reuse the old sentences."""
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(xtts_dir, copy)
    spec = VoiceSpec(engine="xtts", language="en", sample=str(samples[0]))
    first = XTTS.resolve(spec, {"EBOOK2AUDIO_XTTS_DIR": str(copy)}).voice
    assert first == XTTS.resolve(spec, {"EBOOK2AUDIO_XTTS_DIR": str(xtts_dir)}).voice  # same files: same voice
    with (copy / "model.pth").open("r+b") as f:  # one byte of the weights' tail changed
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    second = XTTS.resolve(spec, {"EBOOK2AUDIO_XTTS_DIR": str(copy)}).voice
    assert second != first and second.startswith(first.split("-model-")[0])
