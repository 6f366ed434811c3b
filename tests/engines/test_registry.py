"""Which voice speaks: resolution rules, fallbacks, helpful errors, listing and loading."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from ebook2audio.engines import (
    PiperEngine,
    list_voices,
    load_engine,
    resolve_voice,
    voices_dir,
)
from ebook2audio.engines.piper import BUNDLED_VOICE, bundled_voice
from ebook2audio.errors import ConfigError, VoiceError
from ebook2audio.model import VoiceSpec

from .conftest import pcm_rms


def test_english_default_is_the_bundled_voice(voices_env: dict[str, str]) -> None:
    for language in ("en", "en-US", "en_us", "EN-GB", ""):
        info = resolve_voice(VoiceSpec(language=language), env=voices_env)
        assert info.engine == "piper"
        assert info.voice == BUNDLED_VOICE
        assert info.language == "en-US"
        assert info.sample_rate == 22050
        assert info.max_chars == 400
        assert info.path == str(bundled_voice().model_path)


def test_joe_alias_and_name(voices_env: dict[str, str]) -> None:
    assert resolve_voice(VoiceSpec(voice="joe", language="fr"), env=voices_env).voice == BUNDLED_VOICE
    assert resolve_voice(VoiceSpec(voice=BUNDLED_VOICE), env=voices_env).voice == BUNDLED_VOICE


def test_french_falls_back_to_espeak_without_a_french_piper_voice(voices_env: dict[str, str]) -> None:
    info = resolve_voice(VoiceSpec(language="fr"), env=voices_env)
    assert info.engine == "espeak"
    assert info.voice == "fr"
    assert info.language == "fr-FR"
    assert info.max_chars == 1000
    assert "no Piper voice for fr" in info.description


def test_french_piper_voice_in_voices_dir_is_used_and_listed(
    voices_env: dict[str, str], add_voice: Callable[..., Path]
) -> None:
    model = add_voice("fr_FR-test-medium", "fr_FR", "fr")
    for language in ("fr", "fr-FR", "fr-CA"):
        info = resolve_voice(VoiceSpec(language=language), env=voices_env)
        assert (info.engine, info.voice, info.language) == ("piper", "fr_FR-test-medium", "fr-FR")
        assert info.path == str(model)
    by_name = resolve_voice(VoiceSpec(voice="fr_FR-test-medium"), env=voices_env)
    assert by_name.voice == "fr_FR-test-medium"
    entries = [e for e in list_voices(env=voices_env) if e.engine == "piper"]
    assert [(e.name, e.language) for e in entries] == [
        (BUNDLED_VOICE, "en-US"),
        ("fr_FR-test-medium", "fr-FR"),
    ]
    assert entries[1].path == str(model)
    assert entries[1].quality == "medium"


def test_region_match_beats_the_bundled_voice_and_quality_breaks_ties(
    voices_env: dict[str, str], add_voice: Callable[..., Path]
) -> None:
    add_voice("en_GB-b-low", "en_GB", "en-gb", quality="low")
    add_voice("en_GB-a-high", "en_GB", "en-gb", quality="high")
    assert resolve_voice(VoiceSpec(language="en-GB"), env=voices_env).voice == "en_GB-a-high"
    assert resolve_voice(VoiceSpec(language="en"), env=voices_env).voice == BUNDLED_VOICE


def test_language_from_espeak_field_when_no_language_code(voices_env: dict[str, str], tmp_path: Path) -> None:
    import json

    directory = Path(voices_env["EBOOK2AUDIO_VOICES_DIR"])
    config = json.loads(bundled_voice().config_path.read_text(encoding="utf-8"))
    del config["language"]
    config["espeak"] = {"voice": "de"}
    (directory / "old-german.onnx").write_bytes(b"x")
    (directory / "old-german.onnx.json").write_text(json.dumps(config), encoding="utf-8")
    info = resolve_voice(VoiceSpec(language="de-AT"), env=voices_env)
    assert (info.engine, info.voice, info.language) == ("piper", "old-german", "de")


def test_jenny_not_installed_says_how_to_install(voices_env: dict[str, str]) -> None:
    with pytest.raises(VoiceError) as caught:
        resolve_voice(VoiceSpec(voice="jenny"), env=voices_env)
    message = str(caught.value)
    assert "\n" not in message
    assert "en_GB-jenny_dioco-medium.onnx and en_GB-jenny_dioco-medium.onnx.json" in message
    assert voices_env["EBOOK2AUDIO_VOICES_DIR"] in message
    assert "ebook2audio voices download en_GB-jenny_dioco-medium" in message


def test_jenny_installed_is_found(voices_env: dict[str, str], add_voice: Callable[..., Path]) -> None:
    add_voice("en_GB-jenny_dioco-medium", "en_GB", "en-gb")
    info = resolve_voice(VoiceSpec(voice="Jenny"), env=voices_env)
    assert (info.voice, info.language) == ("en_GB-jenny_dioco-medium", "en-GB")


def test_voice_by_path(tmp_path: Path, voices_env: dict[str, str]) -> None:
    joe = bundled_voice()
    info = resolve_voice(VoiceSpec(voice=str(joe.model_path)), env=voices_env)
    assert (info.voice, info.path) == (BUNDLED_VOICE, str(joe.model_path))
    lonely = tmp_path / "lonely.onnx"
    shutil.copyfile(joe.config_path, lonely)
    with pytest.raises(VoiceError, match="has no config"):
        resolve_voice(VoiceSpec(voice=str(lonely)), env=voices_env)
    with pytest.raises(VoiceError, match="not found"):
        resolve_voice(VoiceSpec(voice=str(tmp_path / "missing.onnx")), env=voices_env)


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        (VoiceSpec(engine="festival"), r"unknown engine 'festival': choose one of piper, espeak, sim"),
        (VoiceSpec(language="xx"), r"no voice speaks language 'xx'.*ebook2audio voices"),
        (VoiceSpec(language="not a language"), r"is not a language code"),
        (VoiceSpec(engine="espeak", language="qq-ZZ"), r"no voice speaks language 'qq-ZZ'"),
        (VoiceSpec(engine="espeak", voice="vulcan"), r"unknown espeak-ng voice 'vulcan'.*ebook2audio voices"),
        (VoiceSpec(engine="espeak", voice="fr+nosuchvariant"), r"unknown espeak-ng voice variant"),
        (VoiceSpec(voice="fr"), r"Piper voice 'fr' is not installed.*--engine espeak --voice fr"),
        (VoiceSpec(engine="sim", voice="joe"), r"engine sim has no voices"),
    ],
)
def test_unknown_things_are_voice_errors(spec: VoiceSpec, pattern: str, voices_env: dict[str, str]) -> None:
    with pytest.raises(VoiceError, match=pattern):
        resolve_voice(spec, env=voices_env)


@pytest.mark.parametrize("speed", [0.0, -1.0, float("nan"), 50.0])
def test_bad_speed_is_a_config_error(speed: float, voices_env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="speed"):
        resolve_voice(VoiceSpec(speed=speed), env=voices_env)


def test_espeak_engine_by_voice_and_language(voices_env: dict[str, str]) -> None:
    assert resolve_voice(VoiceSpec(engine="espeak-ng", language="de"), env=voices_env).voice == "de"
    by_name = resolve_voice(VoiceSpec(engine="espeak", voice="French (Belgium)"), env=voices_env)
    assert (by_name.voice, by_name.language) == ("fr-BE", "fr-BE")
    assert resolve_voice(VoiceSpec(engine="espeak", voice="en_us"), env=voices_env).voice == "en-US"


def test_sim_engine_resolves() -> None:
    info = resolve_voice(VoiceSpec(engine="sim", language="fr"), env={})
    assert (info.engine, info.voice, info.sample_rate, info.max_chars) == ("sim", "", 22050, 400)


def test_voices_dir_default_and_override(tmp_path: Path) -> None:
    assert voices_dir({"HOME": str(tmp_path)}) == tmp_path / ".local/share/ebook2audio/voices"
    assert voices_dir({"HOME": "/x", "EBOOK2AUDIO_VOICES_DIR": str(tmp_path)}) == tmp_path


def test_list_voices_has_bundled_piper_and_espeak_languages(voices_env: dict[str, str]) -> None:
    entries = list_voices(env=voices_env)
    assert entries[0].engine == "piper"
    assert entries[0].name == BUNDLED_VOICE
    espeak_entries = {e.name: e for e in entries if e.engine == "espeak"}
    assert espeak_entries["fr"].language == "fr-FR"
    assert espeak_entries["de"].description == "German"
    assert len(espeak_entries) > 100


def test_load_uses_info_path_else_finds_the_voice_by_name(voices_env: dict[str, str]) -> None:
    info = resolve_voice(VoiceSpec(), env=voices_env)
    elsewhere = replace(info, path="/another/machine/site-packages/en_US-joe-medium.onnx")
    engine = load_engine(elsewhere, env=voices_env)
    assert isinstance(engine, PiperEngine)
    assert pcm_rms(engine.synthesize("Found again by name.")) > 1000
    engine.close()


def test_load_refuses_a_voice_with_another_sample_rate(voices_env: dict[str, str]) -> None:
    info = replace(resolve_voice(VoiceSpec(), env=voices_env), sample_rate=16000)
    with pytest.raises(VoiceError, match="speaks at 22050 Hz, not the planned 16000 Hz"):
        load_engine(info, env=voices_env)


def test_load_reports_a_missing_voice(voices_env: dict[str, str]) -> None:
    info = replace(resolve_voice(VoiceSpec(), env=voices_env), voice="de_DE-gone-medium", path="")
    with pytest.raises(VoiceError, match="de_DE-gone-medium' is not installed"):
        load_engine(info, env=voices_env)
