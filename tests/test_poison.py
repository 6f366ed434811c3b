"""The poison-sentence logic in isolation: counting, decisions, substitutes, the report.

A process's death is modelled by leaving a counter marked (what a death leaves behind); the real
deaths (SIGSEGV in pool processes and Celery workers) are in tests/e2e/test_poison.py and
tests/distributed/test_poison.py.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from ebook2audio.audio.flac import decode_flac
from ebook2audio.engines.base import EngineInfo
from ebook2audio.errors import PoisonSentenceError, SynthesisError
from ebook2audio.jobstore import chunk_key
from ebook2audio.model import Book, Chapter, Metadata, VoiceSpec
from ebook2audio.plan import make_plan
from ebook2audio.poison import (
    Action,
    BatchGuard,
    StorageAttempts,
    Substitution,
    batch_marker,
    chunk_action,
    chunk_marker,
    job_keys,
    load_substitutions,
    max_batch_deaths,
    report_path,
    resample,
    save_substitution,
    silence_samples,
    write_report,
)
from ebook2audio.storage.local import LocalStorage
from ebook2audio.tasks import synthesize_batch

from .fakes import FAKE_INFO, FakeEngine

BOOK = Book(
    metadata=Metadata(title="T"),
    chapters=(
        Chapter("One", ("First sentence here. The poison sentence. Third sentence here.",)),
        Chapter("Two", ("Another chapter speaks.",)),
    ),
)


def _setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    storage = LocalStorage(tmp_path)
    plan = make_plan(BOOK, FAKE_INFO, VoiceSpec(engine="fake"), "s")
    batch = plan.batches[0]
    chunks = [plan.chunk_map()[i] for i in batch.chunk_ids]
    return storage, plan, batch, chunks


def _pcm(data: bytes) -> tuple[int, bytes]:
    """(rate, PCM) of a stored chunk: FLAC, or a WAV."""
    if data[:4] == b"fLaC":
        return decode_flac(data)
    return struct.unpack_from("<I", data, 24)[0], data[44:]


def _wav_rate_and_samples(data: bytes) -> tuple[int, int]:
    rate, pcm = _pcm(data)
    return rate, len(pcm) // 2


class FallbackEngine(FakeEngine):
    """A fallback voice at another rate (16 kHz vs the main 8 kHz): its audio must be resampled."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__(
            EngineInfo(engine="espeak", voice="en", language="en", sample_rate=16000, max_chars=1000)
        )
        self.fail = fail

    def synthesize(self, text: str, *, seed: int | None = None) -> bytes:
        if self.fail:
            raise SynthesisError("espeak-ng failed")
        self.calls.append(text)
        return b"\x20\x00" * 1600  # 0.1 s at 16 kHz


def test_chunk_action_table() -> None:
    assert [chunk_action(d, strict=False) for d in range(5)] == [
        Action.MAIN, Action.MAIN, Action.FALLBACK, Action.SILENCE, Action.SILENCE,
    ]  # fmt: skip
    assert [chunk_action(d, strict=True) for d in range(4)] == [
        Action.MAIN, Action.MAIN, Action.FAIL, Action.FAIL,
    ]  # fmt: skip
    assert chunk_action(2, strict=False, fallback=False) is Action.SILENCE
    # a batch can absorb 2 deaths, then 3 per chunk (main twice, fallback once), and no more
    assert max_batch_deaths(4) == 2 + 3 * 4 + 2


def test_silence_length_follows_the_text_and_the_speed(tmp_path: Path) -> None:
    _, _, _, chunks = _setup(tmp_path)
    c = chunks[0]
    n = silence_samples(c, 22050)
    assert n == round(len(c.text) * 0.065 * 22050)
    assert silence_samples(c, 22050, speed=2.0) == pytest.approx(n / 2, abs=1)


def test_resample_keeps_the_duration() -> None:
    pcm = struct.pack("<4410h", *([1000, -1000] * 2205))  # 0.2 s at 22050 Hz
    out = resample(pcm, 22050, 16000)
    assert len(out) // 2 == 3200  # 0.2 s at 16 kHz
    assert resample(pcm, 22050, 22050) == pcm


def test_storage_attempts_count_and_clear(tmp_path: Path) -> None:
    a = StorageAttempts(LocalStorage(tmp_path))
    assert [a.mark("s/attempts/b-x") for _ in range(3)] == [1, 2, 3]
    a.unmark("s/attempts/b-x")
    assert a.mark("s/attempts/b-x") == 3
    a.clear("s/attempts/b-x")
    a.clear("s/attempts/b-x")  # clearing twice is harmless
    assert a.mark("s/attempts/b-x") == 1


def test_a_normal_batch_leaves_no_marker(tmp_path: Path) -> None:
    storage, _plan, batch, chunks = _setup(tmp_path)
    attempts = StorageAttempts(storage)
    with BatchGuard(attempts, storage, "s", batch.id, len(chunks)) as guard:
        assert not guard.suspect
        synthesize_batch(storage, "s", batch.id, chunks, FakeEngine(), guard=guard)
    assert not list(storage.list("s/attempts/"))
    assert not list(storage.list("s/substitutes/"))


def test_an_exception_is_not_a_death(tmp_path: Path) -> None:
    storage, _plan, batch, chunks = _setup(tmp_path)
    attempts = StorageAttempts(storage)
    for _ in range(3):
        with pytest.raises(SynthesisError), BatchGuard(attempts, storage, "s", batch.id, len(chunks)):
            raise SynthesisError("engine error")
    assert attempts.mark(batch_marker("s", batch.id)) == 1  # nothing was left counted


def _die(attempts: StorageAttempts, name: str, times: int) -> None:
    for _ in range(times):
        attempts.mark(name)  # what a process that died after marking leaves behind


def test_suspect_batch_replaces_the_poison_sentence_with_the_fallback(tmp_path: Path) -> None:
    storage, plan, batch, chunks = _setup(tmp_path)
    attempts = StorageAttempts(storage)
    poison = chunks[1]
    _die(attempts, batch_marker("s", batch.id), 2)
    _die(attempts, chunk_marker("s", poison.id), 2)
    engine, fallback = FakeEngine(), FallbackEngine()
    with BatchGuard(attempts, storage, "s", batch.id, len(chunks), fallback=lambda: fallback) as guard:
        assert guard.suspect and guard.deaths == 2
        result = synthesize_batch(storage, "s", batch.id, chunks, engine, guard=guard)
    assert len(result.chunks) == len(chunks)
    assert poison.text not in engine.calls and fallback.calls == [poison.text]
    # the fallback's 0.1 s at 16 kHz is stored at the plan's 8 kHz
    rate, samples = _wav_rate_and_samples(storage.get_bytes(chunk_key("s", poison.id)))
    assert (rate, samples) == (8000, 800)
    (sub,) = load_substitutions(storage, plan)
    assert (sub.chunk_id, sub.chapter, sub.index, sub.text) == (poison.id, 0, 1, poison.display)
    assert sub.replacement == "fallback voice espeak-ng en"
    assert "died 2 times" in sub.reason
    assert not list(storage.list("s/attempts/"))  # every marker cleared


@pytest.mark.parametrize("fallback_fails", [False, True])
def test_silence_when_the_fallback_died_or_fails(tmp_path: Path, fallback_fails: bool) -> None:
    storage, plan, batch, chunks = _setup(tmp_path)
    attempts = StorageAttempts(storage)
    poison = chunks[1]
    _die(attempts, batch_marker("s", batch.id), 5)
    # a failing fallback is tried at 2 deaths; a fallback that killed its process (3 deaths) is not
    _die(attempts, chunk_marker("s", poison.id), 2 if fallback_fails else 3)
    fallback = FallbackEngine(fail=fallback_fails)
    with BatchGuard(attempts, storage, "s", batch.id, len(chunks), fallback=lambda: fallback) as guard:
        synthesize_batch(storage, "s", batch.id, chunks, FakeEngine(), guard=guard)
    data = storage.get_bytes(chunk_key("s", poison.id))
    assert set(_pcm(data)[1]) == {0}
    assert _wav_rate_and_samples(data) == (8000, silence_samples(poison, 8000))
    (sub,) = load_substitutions(storage, plan)
    assert sub.replacement.startswith("silence (")
    assert ("failed too" in sub.reason) if fallback_fails else ("fallback voice included" in sub.reason)


def test_strict_stops_on_the_poison_sentence_and_keeps_the_count(tmp_path: Path) -> None:
    storage, plan, batch, chunks = _setup(tmp_path)
    attempts = StorageAttempts(storage)
    poison = chunks[1]
    _die(attempts, batch_marker("s", batch.id), 2)
    _die(attempts, chunk_marker("s", poison.id), 2)
    engine = FakeEngine()
    with (
        pytest.raises(PoisonSentenceError, match=r"sentence 2 of chapter 1 .*--strict"),
        BatchGuard(attempts, storage, "s", batch.id, len(chunks), strict=True) as guard,
    ):
        synthesize_batch(storage, "s", batch.id, chunks, engine, guard=guard)
    assert engine.calls == [chunks[0].text]  # the sentence before it is kept, the poison never spoken
    assert storage.exists(chunk_key("s", chunks[0].id))
    assert not load_substitutions(storage, plan)
    # stopping is no death: a second --strict run counts the same, then without it the sentence
    # goes to the fallback (2 deaths), not to silence
    with (
        pytest.raises(PoisonSentenceError),
        BatchGuard(attempts, storage, "s", batch.id, len(chunks), strict=True) as guard,
    ):
        assert guard.deaths == 2
        synthesize_batch(storage, "s", batch.id, chunks, engine, guard=guard)
    with BatchGuard(attempts, storage, "s", batch.id, len(chunks), fallback=FallbackEngine) as guard:
        synthesize_batch(storage, "s", batch.id, chunks, engine, guard=guard)
    (sub,) = load_substitutions(storage, plan)
    assert sub.chunk_id == poison.id and sub.replacement.startswith("fallback voice")


def test_a_batch_that_dies_outside_any_sentence_gives_up(tmp_path: Path) -> None:
    storage, _plan, batch, chunks = _setup(tmp_path)
    attempts = StorageAttempts(storage)
    _die(attempts, batch_marker("s", batch.id), max_batch_deaths(len(chunks)) + 1)
    with pytest.raises(SynthesisError, match="killed its synthesis process"):
        BatchGuard(attempts, storage, "s", batch.id, len(chunks)).__enter__()


def test_substitutions_are_listed_per_plan_in_reading_order_and_reported(tmp_path: Path) -> None:
    storage, plan, _batch, _chunks = _setup(tmp_path)
    c0, c2 = plan.chunks[0], plan.chunks[-1]
    for c in (c2, c0):
        save_substitution(storage, "s", Substitution(c.id, c.chapter, c.index, c.text, "r", "silence (1.0 s)"))
    save_substitution(storage, "s", Substitution("0" * 24, 0, 9, "other plan", "r", "x"))
    subs = load_substitutions(storage, plan)
    assert [s.chunk_id for s in subs] == [c0.id, c2.id]
    out = tmp_path / "out" / "Author - Title.m4b"
    out.parent.mkdir()
    path = write_report(out, plan, subs)
    assert path == report_path(out) == out.parent / "Author - Title.report.json"
    data = json.loads(path.read_text())
    assert [(e["chapter"], e["chapter_title"], e["index"], e["text"]) for e in data["substituted"]] == [
        (1, "One", c0.index + 1, c0.text),
        (2, "Two", c2.index + 1, c2.text),
    ]  # 1-based, the chapter's spoken title first
    assert write_report(out, plan, []) is None and not path.exists()  # a stale report goes


def test_job_keys_name_everything_a_plan_left(tmp_path: Path) -> None:
    """A cleanup deleting job_keys(plan) leaves no record or counter of the plan behind."""
    storage, plan, batch, chunks = _setup(tmp_path)
    attempts = StorageAttempts(storage)
    _die(attempts, batch_marker("s", batch.id), 2)
    _die(attempts, chunk_marker("s", chunks[1].id), 2)
    _die(attempts, chunk_marker("s", chunks[2].id), 1)  # a death in the middle of a sentence
    with BatchGuard(attempts, storage, "s", batch.id, len(chunks), fallback=FallbackEngine) as guard:
        synthesize_batch(storage, "s", batch.id, chunks[:2], FakeEngine(), guard=guard)
    _die(attempts, batch_marker("s", plan.batches[-1].id), 1)
    left = set(storage.list("s/attempts/")) | set(storage.list("s/substitutes/"))
    assert left and left <= set(job_keys(plan))
