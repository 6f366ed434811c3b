"""--verify through the real task code: real Piper / espeak-ng audio, the real bundled Whisper models
(tiny.en for English, the multilingual base for French), planted faults.

A fault is planted by an engine that wraps the real one and spoils the takes of one sentence: the
audio of another sentence, the first 40 % of the sentence, silence, or noise, each as long as the
real take. Every one must be found; the clean sentences beside them must pass (no false alarm); a
bad first take must be retaken and the good take stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from ebook2audio import asr
from ebook2audio.audio.master import master_chunk
from ebook2audio.engines.base import Engine
from ebook2audio.engines.registry import load_engine, resolve_voice
from ebook2audio.jobstore import read_chunk_pcm
from ebook2audio.model import Book, Chapter, Mastering, Metadata, Plan, Verification, VoiceSpec
from ebook2audio.plan import PlanOptions, make_plan
from ebook2audio.report import load_checks
from ebook2audio.storage.local import LocalStorage
from ebook2audio.tasks import synthesize_batch, take_seed
from ebook2audio.verify import ChunkCheck

pytestmark = pytest.mark.slow  # real voices and real recognition models: 5-25 s a test on 2 busy cores

Fault = Callable[[bytes, "FaultyEngine"], bytes]


def other_sentence(text: str) -> Fault:
    return lambda pcm, e: e.real.synthesize(text, seed=7)


def truncated(pcm: bytes, e: FaultyEngine) -> bytes:
    return pcm[: int(len(pcm) * 0.4) // 2 * 2]


def silence(pcm: bytes, e: FaultyEngine) -> bytes:
    return bytes(len(pcm))


def noise(pcm: bytes, e: FaultyEngine) -> bytes:
    rng = np.random.default_rng(3)
    return (rng.normal(0, 3000, len(pcm) // 2).clip(-32768, 32767).astype("<i2")).tobytes()


@dataclass
class FaultyEngine:
    """The real engine, with the first ``bad_takes`` takes of some sentences spoilt by their fault."""

    real: Engine
    faults: dict[str, Fault]
    bad_takes: int = 99
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def info(self):  # type: ignore[no-untyped-def]
        return self.real.info

    @property
    def device(self) -> str:
        return self.real.device

    @property
    def speed(self) -> float:
        return float(getattr(self.real, "speed", 1.0))

    def synthesize(self, text: str, *, seed: int | None = None) -> bytes:
        pcm = self.real.synthesize(text, seed=seed)
        n = self.calls[text] = self.calls.get(text, 0) + 1
        fault = self.faults.get(text)
        return fault(pcm, self) if fault is not None and n <= self.bad_takes else pcm

    def at_speed(self, speed: float) -> FaultyEngine:  # the slower take: the same faults, counted on
        return FaultyEngine(self.real.at_speed(speed), self.faults, self.bad_takes, self.calls)  # type: ignore[attr-defined]

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def piper() -> Iterator[Engine]:
    engine = load_engine(resolve_voice(VoiceSpec(engine="piper", language="en")))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def espeak_fr() -> Iterator[Engine]:
    engine = load_engine(resolve_voice(VoiceSpec(engine="espeak", language="fr")))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def asr_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: the multilingual model's halves are joined once."""
    return tmp_path_factory.mktemp("asr-cache")


def run_batch(tmp: Path, engine: Engine, texts: list[str], spec: Verification) -> tuple[dict[str, ChunkCheck], LocalStorage, list]:
    book = Book(Metadata(title="t", language=spec.language), (Chapter("", tuple(texts)),))
    plan = make_plan(
        book, engine.info, VoiceSpec(engine=engine.info.engine, language=spec.language), "s1",
        PlanOptions(speak_titles=False, master=Mastering(), verify=spec),
    )  # fmt: skip
    storage = LocalStorage(tmp / "work")
    synthesize_batch(storage, "s1", "b1", plan.chunks, engine)
    checks = {c.text: c for c in load_checks(storage, plan)}
    return checks, storage, list(plan.chunks)


def _plan_of(chunks: list) -> Plan:
    return Plan("s1", VoiceSpec(), 22050, (), tuple(chunks), ())


EN = [
    "The lighthouse keeper climbed the stairs at dusk.",
    "She counted twenty-three ships before the storm came in from the west.",
    "Nobody in the village had ever seen the ocean so calm and so grey.",
    "The old dog slept beside the stove while the kettle began to sing.",
    "At dawn the fishermen pulled their boats high onto the pebbled beach.",
]


def test_english_planted_faults_are_each_detected_and_clean_sentences_pass(
    tmp_path: Path, piper: Engine
) -> None:
    faults = {EN[1]: other_sentence(EN[0]), EN[2]: truncated,
              EN[3]: silence, EN[4]: noise}  # fmt: skip
    engine = FaultyEngine(piper, faults)
    checks, _, _ = run_batch(tmp_path, engine, EN, Verification(language="en", takes=1))  # type: ignore[arg-type]
    assert set(checks) == set(EN)
    assert checks[EN[0]].verdict.passed, checks[EN[0]]  # no false alarm beside the faults
    for text in EN[1:]:
        c = checks[text]
        assert c.failed and c.takes == 1, (text, c)
    assert any("truncated" in p or "word error" in p for p in checks[EN[2]].verdict.problems)
    assert checks[EN[3]].verdict.wer >= 0.9  # silence: (almost) nothing heard


FR = [
    "Le gardien du phare monta l'escalier au crépuscule.",
    "Nous avons mangé du pain et du fromage dans la cuisine.",
    "La mer était calme et le ciel était bleu ce matin-là.",
    "Elle compta vingt-trois navires avant que la tempête n'arrive.",
    "Les pêcheurs tirèrent leurs bateaux sur la plage de galets.",
]
# Whisper base hears espeak-ng's French poorly: correct sentences score 35-65 % CER, wrong ones 75-100 %
# (docs/verify.md). These limits separate them on this text; the defaults suit Piper voices.
FR_SPEC = Verification(language="fr", takes=1, max_wer=10.0, max_cer=0.72)


def test_french_planted_faults_are_each_detected_with_the_multilingual_model(
    tmp_path: Path, espeak_fr: Engine, asr_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(asr_cache))
    assert asr.resolve_model("fr").name == "base"
    faults = {FR[1]: other_sentence(FR[0]), FR[2]: truncated,
              FR[3]: silence, FR[4]: noise}  # fmt: skip
    checks, _, _ = run_batch(tmp_path, FaultyEngine(espeak_fr, faults), FR, FR_SPEC)  # type: ignore[arg-type]
    assert checks[FR[0]].verdict.passed, checks[FR[0]]
    for text in FR[1:]:
        assert checks[text].failed, (text, checks[text])
    assert (asr_cache / "ebook2audio" / "asr" / "whisper-base" / "model.bin").stat().st_size == asr.BASE_SIZE


def test_bad_takes_are_retaken_with_another_seed_then_slower_and_the_good_take_stored(
    tmp_path: Path, piper: Engine
) -> None:
    once, twice = EN[0], EN[1]
    engine = FaultyEngine(piper, {once: silence, twice: silence}, bad_takes=1)
    engine.calls[twice] = -1  # its first two takes are spoilt: the third, slower, is good
    checks, storage, chunks = run_batch(tmp_path, engine, [once, twice], Verification(language="en", takes=3))  # type: ignore[arg-type]
    rate = piper.info.sample_rate
    c = checks[once]
    assert c.retaken and not c.failed and c.takes == 2 and c.kept == 1, c
    # The stored audio is the second take: the voice with the take's own seed, mastered.
    expected = master_chunk(piper.synthesize(once, seed=take_seed(chunks[0].id, 1)), rate, Mastering())
    assert read_chunk_pcm(storage, "s1", chunks[0].id, rate) == expected
    c = checks[twice]
    assert c.takes == 3 and c.kept == 2 and not c.failed, c
    normal = len(piper.synthesize(twice, seed=take_seed(chunks[1].id, 2))) // 2
    stored = len(read_chunk_pcm(storage, "s1", chunks[1].id, rate)) // 2
    assert stored > normal * 1.04  # spoken at 0.85x (measured: 8.5 % longer for this sentence)
    # A resume finds both stored (the recipe is the plan's): nothing synthesised or heard again.
    again = FaultyEngine(piper, {})
    result = synthesize_batch(storage, "s1", "b1", chunks, again)  # type: ignore[arg-type]
    assert result.skipped == 2 and not again.calls
    assert {c.chunk_id: c for c in load_checks(storage, _plan_of(chunks))}.keys() == {c.id for c in chunks}


def test_the_model_is_loaded_once_per_process() -> None:
    model = asr.resolve_model("en")
    assert asr.transcriber(model, "en") is asr.transcriber(model, "en")
    assert asr.transcriber(model, "en").transcribe(np.zeros(16_000, dtype=np.float32)) == ""  # silence
