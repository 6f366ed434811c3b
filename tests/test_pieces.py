"""The data path: FLAC chunks, pieces encoded by the unit of work, a coordinator that only joins."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ebook2audio.audio.assemble import probe
from ebook2audio.audio.chunkfmt import blob_whole, chunk_bytes, chunk_pcm, streaminfo
from ebook2audio.audio.pcm import wav_bytes
from ebook2audio.audio.pieces import (
    JOIN_GUARD,
    batch_pieces,
    parse_piece,
    piece_codec,
    pieces_prefix,
    plan_pieces,
)
from ebook2audio.config import Settings
from ebook2audio.jobstore import chunk_key, done_chunks, read_chunk_pcm
from ebook2audio.model import Book, Chapter, Metadata, VoiceSpec
from ebook2audio.pipeline import convert
from ebook2audio.plan import Pauses, PlanOptions, make_plan
from ebook2audio.storage.local import LocalStorage
from ebook2audio.tasks import synthesize_batch

from .fakes import FAKE_INFO, FakeEngine

PARAS = tuple(f"Sentence {i} is here. And another sentence {i} follows it." for i in range(12))
BOOK = Book(metadata=Metadata(title="T"), chapters=(Chapter("One", PARAS[:6]), Chapter("Two", PARAS[6:])))


def _plan(codec: str = "aac/64k", batch_chars: int = 120, sentence_ms: int = 300):
    opts = PlanOptions(pauses=Pauses(sentence_ms=sentence_ms), batch_chars=batch_chars)
    return replace(make_plan(BOOK, FAKE_INFO, VoiceSpec(engine="fake"), "s", opts), pieces=codec, job="j")


# --------------------------------------------------------------------------- FLAC chunks


def test_flac_chunks_round_trip_and_are_checked() -> None:
    rng = np.random.default_rng(1)
    pcm = (np.sin(np.arange(30000) / 7) * 9000 + rng.normal(0, 300, 30000)).astype("<i2").tobytes()
    data = chunk_bytes(pcm, 22050)
    assert data[:4] == b"fLaC" and len(data) < len(pcm)
    assert chunk_pcm(data) == (22050, pcm)  # lossless, bit for bit
    info = streaminfo(data[:512])
    assert info is not None and (info.samples, info.sample_rate, info.bits) == (30000, 22050, 16)
    assert blob_whole(data[:512], len(data))
    assert not blob_whole(data[:512], len(data) // 3)  # cut short
    assert not blob_whole(data[:40], 40) and not blob_whole(b"not audio" * 20, 180)
    # a chunk without a sample (FLAC cannot hold one) is a WAV, and reads back the same
    assert chunk_pcm(chunk_bytes(b"", 22050)) == (22050, b"")
    # earlier versions' WAV chunks still read and pass the check
    wav = wav_bytes(pcm, 22050)
    assert chunk_pcm(wav) == (22050, pcm) and blob_whole(wav[:512], len(wav))
    assert not blob_whole(wav[:512], len(wav) - 2)


def test_old_wav_chunks_resume_across_the_upgrade(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    plan = _plan()
    batch = plan.batches[0]
    chunks = [plan.chunk_map()[i] for i in batch.chunk_ids]
    old = chunks[0]
    pcm = b"\x10\x00" * (80 * len(old.text))
    storage.put_bytes(chunk_key("s", old.id, ".wav"), wav_bytes(pcm, FAKE_INFO.sample_rate))
    assert old.id in done_chunks(storage, plan)
    engine = FakeEngine()
    r = synthesize_batch(storage, "s", batch.id, chunks, engine, piece=batch_pieces(plan)[batch.id], job="j")
    assert old.text not in engine.calls and r.skipped == 1  # the WAV counts as done
    assert read_chunk_pcm(storage, "s", old.id, FAKE_INFO.sample_rate) == pcm
    assert storage.get_bytes(chunk_key("s", chunks[1].id))[:4] == b"fLaC"  # new chunks are FLAC


# --------------------------------------------------------------------------- piece keys


def test_piece_keys_change_with_every_setting_they_depend_on() -> None:
    plan = _plan()
    specs = plan_pieces(plan, "aac/64k")
    assert len({s.digest() for s in specs}) == len(specs)
    assert [s.digest() for s in plan_pieces(plan, "aac/64k")] == [s.digest() for s in specs]  # stable
    first = specs[1]
    assert first.key("s", "j").startswith(pieces_prefix("s", "j")) and first.key("s", "j").endswith(".adts")
    others = [
        plan_pieces(plan, "aac/96k")[1],  # bitrate
        replace(first, sample_rate=24000),
        replace(first, lead=0),  # the lead rule
        replace(first, last=True),  # the tail rule
        replace(first, pauses=(*first.pauses[:-1], first.pauses[-1] + 1)),  # a pause
        replace(first, chunk_ids=(*first.chunk_ids[:-1], "x" * 24)),  # a chunk
    ]
    assert all(o.digest() != first.digest() for o in others)
    # longer sentence pauses: the same batches, other pieces
    longer = plan_pieces(_plan(sentence_ms=400), "aac/64k")
    assert {s.digest() for s in longer}.isdisjoint(s.digest() for s in specs)
    assert piece_codec("m4b", "64k") == piece_codec("m4a", "64k") == "aac/64k"
    assert piece_codec("mp3", "64k") == piece_codec("opus", "64k") == piece_codec("m4b", "64k", split=True) == ""


def test_the_planner_ends_batches_where_a_piece_can_be_cut() -> None:
    # 100 ms between sentences cannot hold a cut; 700 ms paragraph pauses can
    opts = PlanOptions(pauses=Pauses(sentence_ms=100), batch_chars=120)
    plan = make_plan(BOOK, FAKE_INFO, VoiceSpec(engine="fake"), "s", opts)
    specs = plan_pieces(plan, "aac/64k")
    assert all(s.by_worker for s in specs)  # every batch ends in a paragraph or chapter pause
    assert len(plan.batches) > len(plan.chapters)
    # with no pause at all nothing can be cut: one piece a chapter, encoded by the coordinator
    flat = make_plan(
        BOOK, FAKE_INFO, VoiceSpec(engine="fake"), "s", PlanOptions(Pauses(0, 0, 0, 2000), batch_chars=120)
    )
    assert all(len(b.chunk_ids) < len(flat.chunks) for b in flat.batches)
    assert [len(s.batch_ids) > 1 for s in plan_pieces(flat, "aac/64k")] == [True, True]


# --------------------------------------------------------------------------- the unit of work


def test_the_unit_of_work_stores_its_piece_and_resumes_a_missing_one(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    plan = _plan()
    pieces = batch_pieces(plan)
    batch = plan.batches[1]
    spec = pieces[batch.id]
    assert spec.lead == JOIN_GUARD
    chunks = [plan.chunk_map()[i] for i in batch.chunk_ids]
    engine = FakeEngine()
    r1 = synthesize_batch(storage, "s", batch.id, chunks, engine, piece=spec, job="j")
    blob = storage.get_bytes(spec.key("s", "j"))
    head = parse_piece(blob, spec)
    assert list(head.samples) == [c.samples for c in r1.chunks] == [80 * len(c.text) for c in chunks]
    assert (spec.lead + sum(head.samples) + sum(spec.pauses[:-1]) + head.tail) % 1024 == 0
    assert abs(head.tail - (spec.pauses[-1] - JOIN_GUARD)) <= 512
    # a second delivery: the piece is there, nothing is synthesised or read
    calls = len(engine.calls)
    r2 = synthesize_batch(storage, "s", batch.id, chunks, engine, piece=spec, job="j")
    assert r2.chunks == () and r2.skipped == len(chunks) and len(engine.calls) == calls
    # the piece lost (a worker died between chunks and piece, a resume): made again from the chunks
    storage.delete(spec.key("s", "j"))
    r3 = synthesize_batch(storage, "s", batch.id, chunks, engine, piece=spec, job="j")
    assert r3.skipped == len(chunks) and len(engine.calls) == calls
    assert parse_piece(storage.get_bytes(spec.key("s", "j")), spec) == head
    # a piece for other chunks is refused
    with pytest.raises(ValueError, match="not this batch"):
        synthesize_batch(storage, "s", batch.id, chunks[:1], engine, piece=spec, job="j")


# --------------------------------------------------------------------------- the coordinator joins


class CountingStorage(LocalStorage):
    """Local storage that counts the coordinator's reads by kind of key (chunks, pieces, ...)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: Counter[str] = Counter()

    def get_bytes(self, key: str) -> bytes:
        self.reads[key.split("/")[1]] += 1
        return super().get_bytes(key)

    def get_head(self, key: str, n: int) -> bytes:
        self.reads[key.split("/")[1] + "-head"] += 1
        return super().get_head(key, n)


def _book_file(tmp_path: Path) -> Path:
    path = tmp_path / "book.md"
    path.write_text("# One\n\n" + "\n\n".join(PARAS[:6]) + "\n\n# Two\n\n" + "\n\n".join(PARAS[6:]) + "\n")
    return path


@pytest.mark.parametrize(("sentence_ms", "paragraph_ms"), [(300, 700), (0, 700), (0, 0)])
def test_the_coordinator_reads_pieces_never_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sentence_ms: int, paragraph_ms: int
) -> None:
    monkeypatch.setenv("EBOOK2AUDIO_SIM_MS_PER_CHAR", "0")
    store = CountingStorage(tmp_path / "work")
    settings = Settings(
        output_dir=tmp_path / "out",
        engine="sim",
        workers=1,
        work_dir=tmp_path / "work",
        keep_work=True,
        batch_chars=150,
        sentence_pause_ms=sentence_ms,
        paragraph_pause_ms=paragraph_ms,
    )
    result = convert(_book_file(tmp_path), settings, storage=store)
    pieces = list(store.list(f"{result.session}/pieces/"))
    assert pieces and all(k.endswith(".adts") for k in pieces)
    if paragraph_ms:
        # batches end at pauses that can hold a cut (with --sentence-pause 0: at paragraph ends)
        assert store.reads["chunks"] == 0 and store.reads["chunks-head"] == 0  # not one chunk read
        assert store.reads["pieces"] == len(pieces)
    else:
        # no pause between paragraphs either: only the title and chapter ends can be cut, so the
        # stretches between are encoded here from their chunks
        assert store.reads["chunks"] == result.chunks_total - len(pieces)
    (out,) = result.outputs
    found = probe(out)
    assert [c.title for c in found.chapters] == ["One", "Two"]
    assert found.duration == pytest.approx(result.duration, abs=0.05)
    # a rerun with another bitrate makes new pieces; the same command again reuses them all
    before = set(store.list(f"{result.session}/pieces/"))
    other = replace(settings, bitrate="48k", overwrite=True)
    convert(_book_file(tmp_path), other, storage=store)
    after = set(store.list(f"{result.session}/pieces/"))
    assert before < after
    store.reads.clear()
    again = convert(_book_file(tmp_path), other, storage=store)
    assert not again.already_converted and again.chunks_synthesized == 0
    assert set(store.list(f"{result.session}/pieces/")) == after
    if paragraph_ms:
        assert store.reads["chunks"] == 0 and store.reads["pieces"] == len(after - before)


def test_formats_without_frame_joins_keep_the_coordinators_encoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EBOOK2AUDIO_SIM_MS_PER_CHAR", "0")
    store = CountingStorage(tmp_path / "work")
    settings = Settings(
        output_dir=tmp_path / "out", format="mp3", engine="sim", workers=1, work_dir=tmp_path / "work",
        keep_work=True, batch_chars=150,
    )  # fmt: skip
    result = convert(_book_file(tmp_path), settings, storage=store)
    assert list(store.list(f"{result.session}/pieces/")) == []  # no worker encodes for mp3
    # each chunk read once (its length from a header read, not from reading it twice)
    assert store.reads["chunks"] == result.chunks_total
    (out,) = result.outputs
    assert [c.title for c in probe(out).chapters] == ["One", "Two"]


class LookupCounter(LocalStorage):
    """Local storage that counts the lookups made before writing (HEAD requests on S3)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.lookups = 0

    def size(self, key: str) -> int | None:
        self.lookups += 1
        return super().size(key)

    def exists(self, key: str) -> bool:
        self.lookups += 1
        return super().exists(key)


def test_a_first_delivery_with_the_coordinators_listing_looks_nothing_up(tmp_path: Path) -> None:
    storage = LookupCounter(tmp_path)
    plan = _plan()
    batch = plan.batches[2]
    spec = batch_pieces(plan)[batch.id]
    chunks = [plan.chunk_map()[i] for i in batch.chunk_ids]
    engine = FakeEngine()
    r = synthesize_batch(storage, "s", batch.id, chunks, engine, piece=spec, job="j", stored=set())
    assert storage.lookups == 0 and len(r.chunks) == len(chunks)
    head = parse_piece(storage.get_bytes(spec.key("s", "j")), spec)
    # a stale listing (another copy stored two chunks meanwhile, one of them damaged): the whole one
    # stands and the piece is made from it; the damaged one is replaced
    storage.delete(spec.key("s", "j"))
    other = chunk_key("s", chunks[0].id)
    theirs = chunk_bytes(b"\x01\x00" * 1000, FAKE_INFO.sample_rate)
    storage.put_bytes(other, theirs)
    damaged = chunk_key("s", chunks[1].id)
    storage.put_bytes(damaged, storage.get_bytes(damaged)[:60])
    r2 = synthesize_batch(storage, "s", batch.id, chunks, engine, piece=spec, job="j", stored=set())
    # (the others are still stored from the first delivery: kept too)
    assert r2.skipped == len(chunks) - 1 and [c.chunk_id for c in r2.chunks] == [chunks[1].id]
    assert storage.get_bytes(other) == theirs
    assert chunk_pcm(storage.get_bytes(damaged))[1] == b"\x10\x00" * (80 * len(chunks[1].text))
    again = parse_piece(storage.get_bytes(spec.key("s", "j")), spec)
    assert again.samples[0] == 1000 and again.samples[1:] == head.samples[1:]


def test_the_sim_engines_audio_compresses_like_speech() -> None:
    """Storage traffic measured with the sim engine stands for a real voice's (Piper joe: 0.46-0.48)."""
    from ebook2audio.engines.registry import load_engine, resolve_voice

    info = resolve_voice(VoiceSpec(engine="sim"), env={})
    engine = load_engine(info, env={"EBOOK2AUDIO_SIM_MS_PER_CHAR": "0"})
    pcm = b"".join(engine.synthesize(f"Sentence number {i} of a simulated chapter, long enough.") for i in range(20))
    assert 0.42 < len(chunk_bytes(pcm, info.sample_rate)) / len(pcm) < 0.54


def test_a_rerun_with_pieces_missing_makes_them_again_from_the_stored_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EBOOK2AUDIO_SIM_MS_PER_CHAR", "0")
    store = CountingStorage(tmp_path / "work")
    settings = Settings(
        output_dir=tmp_path / "out", engine="sim", workers=2, work_dir=tmp_path / "work", keep_work=True,
        batch_chars=150,
    )  # fmt: skip
    first = convert(_book_file(tmp_path), settings, storage=store)
    pieces = sorted(store.list(f"{first.session}/pieces/"))
    for key in pieces[::2]:  # as if their workers died between the chunks and the piece
        store.delete(key)
    store.reads.clear()
    again = convert(_book_file(tmp_path), replace(settings, overwrite=True), storage=store)
    assert again.chunks_synthesized == 0 and again.chunks_skipped == again.chunks_total
    assert sorted(store.list(f"{first.session}/pieces/")) == pieces  # the same keys, made again
    assert store.reads["chunks"] == 0  # by the workers: the coordinator still only joins
    assert probe(again.outputs[0]).duration == pytest.approx(first.duration, abs=0.05)
