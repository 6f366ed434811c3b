"""Shared fixtures for the engine tests: the bundled Piper voice loaded once, voices directories."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from ebook2audio.engines import load_engine, resolve_voice
from ebook2audio.engines.piper import PiperEngine, bundled_voice
from ebook2audio.model import VoiceSpec

from ..conftest import OFFLINE_VOICES_URL

TEN_WORDS = "The old lighthouse keeper walked slowly along the rocky shore."


def pcm_seconds(pcm: bytes, sample_rate: int = 22050) -> float:
    return len(pcm) / 2 / sample_rate


def pcm_rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


@pytest.fixture(scope="session")
def joe_engine() -> Iterator[PiperEngine]:
    engine = load_engine(resolve_voice(VoiceSpec(), env={}), env={})
    assert isinstance(engine, PiperEngine)
    yield engine
    engine.close()


@pytest.fixture
def voices_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose voices directory exists and is empty."""
    directory = tmp_path / "voices"
    directory.mkdir()
    return {"EBOOK2AUDIO_VOICES_DIR": str(directory), "EBOOK2AUDIO_VOICES_URL": OFFLINE_VOICES_URL}


@pytest.fixture
def add_voice(voices_env: dict[str, str]) -> Callable[..., Path]:
    """Install the bundled joe model under another name and language in the voices directory."""

    def add(name: str, code: str, espeak_voice: str, quality: str = "medium") -> Path:
        directory = Path(voices_env["EBOOK2AUDIO_VOICES_DIR"])
        joe = bundled_voice()
        model = directory / f"{name}.onnx"
        try:
            os.symlink(joe.model_path, model)  # the 60 MB model is not copied
        except OSError:
            shutil.copyfile(joe.model_path, model)
        config = json.loads(joe.config_path.read_text(encoding="utf-8"))
        config["language"] = {"code": code, "family": code.split("_")[0]}
        config["espeak"] = {"voice": espeak_voice}
        config["audio"]["quality"] = quality
        (directory / f"{name}.onnx.json").write_text(json.dumps(config), encoding="utf-8")
        return model

    return add
