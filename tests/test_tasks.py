from __future__ import annotations

from pathlib import Path

from ebook2audio.jobstore import chunk_done, chunk_key, done_chunks
from ebook2audio.model import Book, Chapter, Metadata, VoiceSpec
from ebook2audio.plan import make_plan
from ebook2audio.storage.local import LocalStorage
from ebook2audio.tasks import synthesize_batch

from .fakes import FAKE_INFO, FakeEngine

BOOK = Book(
    metadata=Metadata(title="T"),
    chapters=(Chapter("One", ("First sentence here. Second sentence here.", "Third one.")),),
)


def test_synthesize_batch_is_idempotent_and_redoes_corrupt_chunks(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    plan = make_plan(BOOK, FAKE_INFO, VoiceSpec(engine="fake"), "s")
    batch = plan.batches[0]
    chunks = [plan.chunk_map()[i] for i in batch.chunk_ids]
    engine = FakeEngine()
    r1 = synthesize_batch(storage, "s", batch.id, chunks, engine)
    assert len(r1.chunks) == len(chunks) and r1.skipped == 0
    assert done_chunks(storage, plan) == {c.id for c in chunks}
    # a second delivery of the same batch does nothing
    r2 = synthesize_batch(storage, "s", batch.id, chunks, engine)
    assert r2.chunks == () and r2.skipped == len(chunks)
    assert len(engine.calls) == len(chunks)
    # a truncated chunk file is detected and redone
    key = chunk_key("s", chunks[1].id)
    data = storage.get_bytes(key)
    (tmp_path / key).write_bytes(data[: len(data) // 2])
    assert not chunk_done(storage, "s", chunks[1].id)
    r3 = synthesize_batch(storage, "s", batch.id, chunks, engine)
    assert [c.chunk_id for c in r3.chunks] == [chunks[1].id]
    assert storage.get_bytes(key) == data
