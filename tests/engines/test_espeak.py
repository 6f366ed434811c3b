"""espeak-ng through ctypes from the espeakng_loader wheel: catalogue, speech, shared library."""

from __future__ import annotations

import pytest

from ebook2audio.engines import EspeakEngine, PiperEngine, load_engine, resolve_voice
from ebook2audio.engines import espeak as espeak_mod
from ebook2audio.errors import VoiceError
from ebook2audio.model import EngineInfo, VoiceSpec

from .conftest import pcm_rms, pcm_seconds

FRENCH = "Le petit garçon regardait la mer depuis la fenêtre de sa chambre."
GERMAN = "Der alte Mann ging langsam über die Brücke und sah auf den Fluss."


def _engine(language: str, speed: float = 1.0) -> EspeakEngine:
    engine = load_engine(resolve_voice(VoiceSpec(engine="espeak", language=language), env={}), speed=speed)
    assert isinstance(engine, EspeakEngine)
    return engine


def test_catalogue_is_read_from_the_wheel_data() -> None:
    voices = espeak_mod.list_espeak_voices()
    ids = {v.voice_id for v in voices}
    assert {"fr", "de", "en", "en-US", "es", "cmn"} <= ids
    assert "kaa" not in ids  # its dictionary is not shipped: espeak-ng would speak it without one
    assert "piper" not in str(espeak_mod.data_path())  # never piper's own espeak-ng-data


@pytest.mark.parametrize(
    ("language", "voice_id"),
    [
        ("fr", "fr"),
        ("fr-CA", "fr"),
        ("fr_BE", "fr-BE"),
        ("en", "en"),
        ("en-US", "en-US"),
        ("zh", "cmn"),
        ("pt-BR", "pt-BR"),
    ],
)
def test_language_picks_the_preferred_voice(language: str, voice_id: str) -> None:
    found = espeak_mod.find_voice_for_language(language)
    assert found is not None
    assert found.voice_id == voice_id


def test_unknown_language_has_no_voice() -> None:
    assert espeak_mod.find_voice_for_language("xx") is None
    assert espeak_mod.find_voice_by_name("nonexistent-voice", by_language=False) is None


def test_french_sentence_is_spoken() -> None:
    engine = _engine("fr")
    assert engine.info.voice == "fr"
    assert engine.info.language == "fr-FR"
    pcm = engine.synthesize(FRENCH)
    assert 2.0 <= pcm_seconds(pcm, engine.info.sample_rate) <= 9.0
    assert pcm_rms(pcm) > 500


def test_german_sentence_is_spoken_and_differs_from_french() -> None:
    german = _engine("de")
    french = _engine("fr")
    pcm = german.synthesize(GERMAN)
    assert 2.0 <= pcm_seconds(pcm) <= 9.0
    assert pcm_rms(pcm) > 500
    assert pcm != french.synthesize(GERMAN)  # the same text read by another language's rules


def test_instances_share_the_library_and_keep_their_own_voice() -> None:
    french = _engine("fr")
    first = len(french.synthesize(FRENCH))
    german = _engine("de")
    german_reading = len(german.synthesize(FRENCH))
    again = len(french.synthesize(FRENCH))  # the French voice is re-selected after German spoke
    # espeak-ng is not bit-exact from call to call (a few ms differ), but a voice's reading is stable
    # and the German reading of the same text is far from it.
    assert abs(again - first) < 0.03 * first
    assert abs(german_reading - first) > 0.1 * first


def test_speed_changes_the_rate() -> None:
    normal = pcm_seconds(_engine("fr").synthesize(FRENCH))
    quick = pcm_seconds(_engine("fr", speed=2.0).synthesize(FRENCH))
    assert quick < 0.7 * normal
    assert espeak_mod.rate_for_speed(1.0) == 175
    assert espeak_mod.rate_for_speed(10.0) == 450
    assert espeak_mod.rate_for_speed(0.1) == 80


def test_variant_voice_speaks() -> None:
    info = resolve_voice(VoiceSpec(engine="espeak", voice="fr+f3"), env={})
    assert info.voice == "fr+f3"
    assert pcm_rms(load_engine(info).synthesize("Bonjour.")) > 500


@pytest.mark.parametrize("text", ["", "  ", "…", "«»"])
def test_unspeakable_text_gives_no_samples(text: str) -> None:
    assert _engine("fr").synthesize(text) == b""


def test_cuda_is_refused_for_espeak() -> None:
    info = resolve_voice(VoiceSpec(engine="espeak", language="fr"), env={})
    with pytest.raises(VoiceError, match="CPU only"):
        load_engine(info, device="cuda")
    assert load_engine(info, device="auto").device == "cpu"


def test_unselectable_voice_fails_at_load() -> None:
    info = EngineInfo(
        engine="espeak", voice="no-such-voice", language="xx", sample_rate=22050, max_chars=1000
    )
    with pytest.raises(VoiceError, match="cannot select voice"):
        EspeakEngine(info)
    assert _engine("fr").synthesize("Bonjour.") != b""  # the shared library is still usable


def test_piper_phonemizer_is_untouched_by_our_espeak_library(joe_engine: PiperEngine) -> None:
    # piper has its own espeak-ng copy (espeakbridge.so + its data); ours must not disturb it.
    before = joe_engine._voice.phonemize("Hello world, said the cat.")
    french = _engine("fr")
    assert french.synthesize(FRENCH) != b""
    assert joe_engine._voice.phonemize("Hello world, said the cat.") == before
    assert joe_engine.synthesize("Hello world.") != b""
    assert french.synthesize("Encore une fois.") != b""
