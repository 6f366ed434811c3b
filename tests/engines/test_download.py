"""Voices fetched on first use, against a Piper voice repository served on 127.0.0.1: checks, resume,
atomic install, the offline errors, and French read by a fetched Piper voice instead of espeak-ng."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ebook2audio.engines import download_voice, resolve_voice
from ebook2audio.engines.registry import DEFAULT_PIPER_VOICES, default_piper_voice
from ebook2audio.errors import VoiceError
from ebook2audio.model import VoiceSpec

from ..conftest import OFFLINE_VOICES_URL
from .voice_server import Repository, serve

SIWIS = "fr_FR-siwis-medium"
MODEL = os.urandom(300_000)  # a fake model: resolution and fetching only, never synthesis


@pytest.fixture
def repo() -> Iterator[Repository]:
    repository = Repository()
    repository.add_voice(SIWIS, MODEL)
    with serve(repository) as served:
        yield served


def _env(voices: Path, url: str) -> dict[str, str]:
    return {"EBOOK2AUDIO_VOICES_DIR": str(voices), "EBOOK2AUDIO_VOICES_URL": url}


def _installed(voices: Path) -> list[str]:
    """What a user sees in the voices directory (the .partial work folder aside)."""
    return sorted(p.name for p in voices.iterdir() if p.name != ".partial") if voices.is_dir() else []


def _parts(voices: Path) -> list[Path]:
    return sorted((voices / ".partial").glob("*.part"))


def test_named_voice_downloaded_verified_and_resolved(repo: Repository, tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    env = _env(voices, repo.url)
    path = download_voice("siwis", env=env)
    assert path == voices / f"{SIWIS}.onnx"
    assert path.read_bytes() == MODEL
    assert _installed(voices) == [f"{SIWIS}.onnx", f"{SIWIS}.onnx.json"]
    assert _parts(voices) == []
    info = resolve_voice(VoiceSpec(voice=SIWIS), env=env)
    assert (info.engine, info.voice, info.language, info.path) == ("piper", SIWIS, "fr-FR", str(path))
    fetched = [p for p, _ in repo.requests]
    assert fetched == ["voices.json", f"fr/fr_FR/siwis/medium/{SIWIS}.onnx", f"fr/fr_FR/siwis/medium/{SIWIS}.onnx.json"]
    repo.requests.clear()
    resolve_voice(VoiceSpec(voice="siwis"), env=env)
    assert repo.requests == []  # installed: never fetched again


def test_named_voice_not_installed_is_fetched_on_first_use(repo: Repository, tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    info = resolve_voice(VoiceSpec(voice="siwis", language="en"), env=_env(voices, repo.url))
    assert info.voice == SIWIS and info.path == str(voices / f"{SIWIS}.onnx")
    assert (voices / f"{SIWIS}.onnx").read_bytes() == MODEL


@pytest.mark.parametrize("corruption", ["md5", "size", "sha256"])
def test_checksum_mismatch_refused_nothing_installed(tmp_path: Path, corruption: str) -> None:
    repository = Repository()
    model_path = repository.add_voice(
        SIWIS,
        MODEL,
        md5="0" * 32 if corruption == "md5" else "",
        size=len(MODEL) - 1 if corruption == "size" else 0,
    )
    if corruption == "sha256":  # what Hugging Face states for LFS files
        repository.headers[model_path] = {"X-Linked-Etag": '"' + "ab" * 32 + '"'}
    voices = tmp_path / "voices"
    with serve(repository) as repo:
        env = _env(voices, repo.url)
        with pytest.raises(VoiceError, match=rf"downloaded {SIWIS}.onnx is corrupt .*refused, nothing installed"):
            download_voice(SIWIS, env=env)
        assert _installed(voices) == []
        assert _parts(voices) == []
        # French is then read by espeak-ng rather than by a corrupt voice
        assert resolve_voice(VoiceSpec(language="fr"), env=env).engine == "espeak"
        assert _installed(voices) == []


def test_right_sha256_header_accepted(tmp_path: Path) -> None:
    repository = Repository()
    model_path = repository.add_voice(SIWIS, MODEL)
    repository.headers[model_path] = {"X-Linked-Etag": f'"{hashlib.sha256(MODEL).hexdigest()}"'}
    with serve(repository) as repo:
        assert download_voice(SIWIS, env=_env(tmp_path / "v", repo.url)).read_bytes() == MODEL


def test_dropped_connection_resumed_with_range(repo: Repository, tmp_path: Path) -> None:
    model_path = f"fr/fr_FR/siwis/medium/{SIWIS}.onnx"
    repo.drops[model_path] = (1, 100_000)  # the first answer stops after 100 kB
    path = download_voice(SIWIS, env=_env(tmp_path / "voices", repo.url))
    assert path.read_bytes() == MODEL
    assert [r for p, r in repo.requests if p == model_path] == ["", "bytes=100000-"]


def test_interrupted_download_resumed_by_the_next_run(repo: Repository, tmp_path: Path) -> None:
    model_path = f"fr/fr_FR/siwis/medium/{SIWIS}.onnx"
    repo.drops[model_path] = (3, 70_000)  # every attempt of the first run is cut short
    voices = tmp_path / "voices"
    env = _env(voices, repo.url)
    with pytest.raises(VoiceError, match=rf"cannot download Piper voice {SIWIS}: .*offline\? copy"):
        download_voice(SIWIS, env=env)
    assert _installed(voices) == []  # nothing half-installed
    [part] = _parts(voices)
    assert part.stat().st_size == 210_000  # three attempts of 70 kB, each resumed
    assert download_voice(SIWIS, env=env).read_bytes() == MODEL
    ranges = [r for p, r in repo.requests if p == model_path]
    assert ranges == ["", "bytes=70000-", "bytes=140000-", "bytes=210000-"]
    assert _parts(voices) == []


def test_offline_errors_unchanged(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    env = _env(voices, OFFLINE_VOICES_URL)
    with pytest.raises(VoiceError) as caught:
        download_voice("siwis", env=env)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"cannot download Piper voice {SIWIS}: ")
    assert f"(offline? copy {SIWIS}.onnx and {SIWIS}.onnx.json into {voices} by hand)" in message
    with pytest.raises(VoiceError) as caught:
        resolve_voice(VoiceSpec(voice="siwis"), env=env)
    assert str(caught.value) == (
        f"Piper voice 'siwis' ({SIWIS}) is not installed: put {SIWIS}.onnx and {SIWIS}.onnx.json in "
        f"{voices} ($EBOOK2AUDIO_VOICES_DIR), or run `ebook2audio voices download {SIWIS}` when online"
    )
    assert _installed(voices) == []


def test_unknown_voice_in_repository(repo: Repository, tmp_path: Path) -> None:
    env = _env(tmp_path / "voices", repo.url)
    with pytest.raises(VoiceError, match=r"cannot download Piper voice de_DE-nobody-medium: .*has no Piper voice"):
        download_voice("de_DE-nobody-medium", env=env)
    with pytest.raises(VoiceError, match="not a Piper voice name"):
        download_voice("nonsense", env=env)


# ----------------------------------------------------------------------------------------------------
# French (and every language with a Piper voice) by a fetched Piper voice, espeak-ng only offline
# ----------------------------------------------------------------------------------------------------


def test_french_default_is_the_fetched_piper_voice(repo: Repository, tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    env = _env(voices, repo.url)
    for language in ("fr", "fr-FR", "fr-CA"):
        info = resolve_voice(VoiceSpec(language=language), env=env)
        assert (info.engine, info.voice, info.language) == ("piper", SIWIS, "fr-FR")
        assert info.path == str(voices / f"{SIWIS}.onnx")
    assert (voices / f"{SIWIS}.onnx").read_bytes() == MODEL
    assert [p for p, _ in repo.requests].count(f"fr/fr_FR/siwis/medium/{SIWIS}.onnx") == 1


def test_french_offline_falls_back_to_espeak_in_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = _env(tmp_path / "voices", OFFLINE_VOICES_URL)
    with caplog.at_level(logging.WARNING, logger="ebook2audio"):
        info = resolve_voice(VoiceSpec(language="fr"), env=env)
    assert (info.engine, info.voice) == ("espeak", "fr")
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    line = record.getMessage()
    assert "\n" not in line
    assert line.startswith("reading with espeak-ng fr: no Piper voice for fr is installed and ")
    assert line.endswith(f"`ebook2audio voices download {SIWIS}` fetches the better voice")


def test_language_missing_from_the_repository_falls_back(repo: Repository, tmp_path: Path) -> None:
    info = resolve_voice(VoiceSpec(language="de"), env=_env(tmp_path / "voices", repo.url))
    assert info.engine == "espeak"  # de_DE-thorsten-medium is not served here


def test_fetching_turned_off(tmp_path: Path, repo: Repository) -> None:
    info = resolve_voice(VoiceSpec(language="fr"), env=_env(tmp_path / "voices", "off"))
    assert info.engine == "espeak"
    assert repo.requests == []


def test_default_voice_table() -> None:
    assert default_piper_voice("fr-BE") == SIWIS
    assert default_piper_voice("pt-PT") == "pt_PT-tugão-medium"
    assert default_piper_voice("pt-BR") == "pt_BR-faber-medium"
    assert default_piper_voice("qq") == ""
    for language, name in DEFAULT_PIPER_VOICES.items():
        region = name.split("-")[0]
        assert region.split("_")[0] == language or (language, region) == ("nb", "no_NO")


# ----------------------------------------------------------------------------------------------------
# Through the real CLI
# ----------------------------------------------------------------------------------------------------


def _cli(args: list[str], tmp: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBOOK2AUDIO_")}
    env.update(XDG_CACHE_HOME=str(tmp / "cache"), EBOOK2AUDIO_VOICES_DIR=str(tmp / "voices"))
    env["EBOOK2AUDIO_VOICES_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "ebook2audio", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp,
        stdin=subprocess.DEVNULL,
    )


def test_cli_voices_download_from_the_repository(repo: Repository, tmp_path: Path) -> None:
    r = _cli(["voices", "download", "siwis"], tmp_path, repo.url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"installed {tmp_path / 'voices' / (SIWIS + '.onnx')}"
    listed = _cli(["voices"], tmp_path, repo.url).stdout
    assert f"fr-FR      {SIWIS}" in listed
    offline = _cli(["voices", "download", "jenny"], tmp_path, OFFLINE_VOICES_URL)
    assert offline.returncode == 2
    assert offline.stderr.startswith("error: cannot download Piper voice en_GB-jenny_dioco-medium: ")
    assert len(offline.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_french_offline_read_by_espeak_with_one_notice(tmp_path: Path) -> None:
    book = tmp_path / "livre.md"
    book.write_text("# Un livre\n\n## Un\n\nBonjour à tous.\n", encoding="utf-8")
    r = _cli(["convert", str(book), "--language", "fr", "-o", "out", "-w", "1", "-q"], tmp_path, OFFLINE_VOICES_URL)
    assert r.returncode == 0, r.stderr
    notices = [line for line in r.stderr.splitlines() if "espeak-ng" in line and "voices download" in line]
    assert notices == [
        "reading with espeak-ng fr: no Piper voice for fr is installed and fr_FR-siwis-medium could not be "
        "fetched (Connection refused); `ebook2audio voices download fr_FR-siwis-medium` fetches the better voice"
    ]
    assert len(list((tmp_path / "out").glob("*.m4b"))) == 1


def test_progress_bar_follows_the_download(repo: Repository, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ebook2audio.engines.download import console_progress, fetch_piper_voice

    assert console_progress(False) is None
    seen: list[tuple[str, int, int | None]] = []
    bar = console_progress(True)
    assert bar is not None

    def progress(name: str, done: int, total: int | None) -> None:
        seen.append((name, done, total))
        bar(name, done, total)

    fetch_piper_voice(SIWIS, tmp_path / "voices", repo.url, progress=progress)
    model = [s for s in seen if s[0] == f"{SIWIS}.onnx"]
    assert model[-1] == (f"{SIWIS}.onnx", len(MODEL), len(MODEL))
    assert [d for _, d, _ in model] == sorted(d for _, d, _ in model)
    assert capsys.readouterr().out == ""  # the bar is on stderr
