from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = (ROOT / ".." / "shared" / "corpus").resolve()
OFFLINE_VOICES_URL = "http://127.0.0.1:9/piper-voices"  # the discard port: nothing listens
OFFLINE_KOKORO_URL = "http://127.0.0.1:9/kokoro"


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"the shared corpus is missing at {CORPUS}")
    return CORPUS


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the user's cache, config or voices."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no user lexicon
    monkeypatch.setenv("EBOOK2AUDIO_VOICES_DIR", str(tmp_path / "voices"))
    for var in list(os.environ):
        if var.startswith("EBOOK2AUDIO_") and var != "EBOOK2AUDIO_VOICES_DIR":
            monkeypatch.delenv(var)
    # Voices are never fetched from the public repository in tests: a closed local port is "offline".
    monkeypatch.setenv("EBOOK2AUDIO_VOICES_URL", OFFLINE_VOICES_URL)
    monkeypatch.setenv("EBOOK2AUDIO_KOKORO_URL", OFFLINE_KOKORO_URL)
