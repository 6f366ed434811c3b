"""Engine plug-ins through the ``ebook2audio.engines`` entry point group: found, resolved, loaded,
listed; a broken one is one line (a warning in ``voices``, an error for ``--engine``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ebook2audio.engines import list_voices, load_engine, resolve_voice
from ebook2audio.engines.registry import engine_names, installed_engines
from ebook2audio.errors import VoiceError
from ebook2audio.model import VoiceSpec

from ..conftest import OFFLINE_VOICES_URL
from .plugin_fixture import install_plugins


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = install_plugins(tmp_path / "site")
    monkeypatch.syspath_prepend(str(root))
    return root


def test_builtin_engines_without_plugins() -> None:
    names = engine_names()
    assert names[:3] == ("piper", "espeak", "sim")
    engines, warnings = installed_engines()
    assert [n for n, _ in engines][:3] == ["piper", "espeak", "sim"] and warnings == []


def test_plugin_resolved_loaded_and_listed(plugins: Path, voices_env: dict[str, str]) -> None:
    assert "tiny" in engine_names() and "broken" in engine_names()
    info = resolve_voice(VoiceSpec(engine="TINY", language="fr"), env=voices_env)
    assert (info.engine, info.voice, info.sample_rate, info.max_chars) == ("tiny", "beep", 16000, 200)
    engine = load_engine(info, speed=2.0, env=voices_env)
    assert engine.device == "cpu"
    assert len(engine.synthesize("x" * 100)) == 2 * 16000  # 100 characters: 2 s at 1x, 1 s at 2x
    warnings: list[str] = []
    entries = list_voices(env=voices_env, warnings=warnings)
    assert [(e.engine, e.name) for e in entries if e.engine == "tiny"] == [("tiny", "beep")]
    assert entries[0].engine == "piper" and any(e.engine == "espeak" for e in entries)
    [warning] = warnings
    assert warning.startswith("engine 'broken' (brokenengine:Plugin) cannot be loaded: ModuleNotFoundError:")
    assert "\n" not in warning


def test_broken_plugin_named_is_one_error(plugins: Path, voices_env: dict[str, str]) -> None:
    with pytest.raises(VoiceError, match=r"^engine 'broken' .*cannot be loaded: ModuleNotFoundError"):
        resolve_voice(VoiceSpec(engine="broken"), env=voices_env)
    with pytest.raises(VoiceError, match=r"unknown engine 'nope': choose one of piper, espeak, sim, broken, (kokoro, )?tiny"):
        resolve_voice(VoiceSpec(engine="nope"), env=voices_env)


def _cli(args: list[str], tmp: Path, plugin_root: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBOOK2AUDIO_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(plugin_root), env.get("PYTHONPATH", "")) if p)
    env.update(
        XDG_CACHE_HOME=str(tmp / "cache"),
        EBOOK2AUDIO_VOICES_DIR=str(tmp / "voices"),
        EBOOK2AUDIO_VOICES_URL=OFFLINE_VOICES_URL,
    )
    return subprocess.run(
        [sys.executable, "-m", "ebook2audio", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp,
        stdin=subprocess.DEVNULL,
    )


def test_cli_voices_lists_plugins_and_warns_once(tmp_path: Path) -> None:
    root = install_plugins(tmp_path / "site")
    r = _cli(["voices"], tmp_path, root)
    assert r.returncode == 0, r.stderr
    assert "tiny:\n  en         beep  (a 440 Hz tone)" in r.stdout
    assert r.stdout.startswith("piper:\n")
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: engine 'broken' (brokenengine:Plugin) cannot")
    j = _cli(["voices", "--json"], tmp_path, root)
    assert {"engine": "tiny", "name": "beep"}.items() <= next(
        e for e in json.loads(j.stdout) if e["engine"] == "tiny"
    ).items()


@pytest.mark.slow
def test_cli_converts_with_a_plugin_engine_and_refuses_a_broken_one(tmp_path: Path) -> None:
    import av

    root = install_plugins(tmp_path / "site")
    book = tmp_path / "book.md"
    book.write_text(
        "# Tiny Book\n\n## One\n\nThe first chapter is short.\n\n## Two\n\nThe second one is short too.\n",
        encoding="utf-8",
    )
    r = _cli(["convert", str(book), "--engine", "tiny", "-o", "out", "-w", "1", "-q"], tmp_path, root)
    assert r.returncode == 0, r.stderr
    [m4b] = (tmp_path / "out").glob("*.m4b")
    with av.open(str(m4b)) as container:
        chapters = container.chapters()
        stream = container.streams.audio[0]
        assert stream.sample_rate in (16000, 22050, 24000, 44100, 48000)
        seconds = float(container.duration or 0) / 1e6
    assert [c["metadata"].get("title") for c in chapters] == ["One", "Two"]
    assert seconds > 1.0
    bad = _cli(["convert", str(book), "--engine", "broken", "-o", "out2", "-q"], tmp_path, root)
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: engine 'broken' (brokenengine:Plugin) cannot be loaded: ModuleNotFoundError")
    assert not (tmp_path / "out2").exists() or not list((tmp_path / "out2").iterdir())
