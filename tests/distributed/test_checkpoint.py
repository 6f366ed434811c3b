"""The coordinator's pure bookkeeping: checkpoint repair, lost-batch detection, results as JSON."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest

from ebook2audio.distributed_config import DistributedSettings
from ebook2audio.engines.piper import CudaOutOfMemoryError
from ebook2audio.errors import SynthesisError, UserError
from ebook2audio.executors.celery_app import (
    TASK_NAME,
    celery_config,
    result_from_json,
    result_to_json,
    synthesize_halving,
)
from ebook2audio.executors.distributed import (
    Checkpoint,
    DistributedExecutor,
    Track,
    lost_in_transit,
    lost_to_dead_workers,
    parse_checkpoint,
    repair_checkpoint,
)
from ebook2audio.jobstore import chunk_done
from ebook2audio.model import Batch, BatchResult, Chunk, ChunkResult, Plan
from ebook2audio.storage.local import LocalStorage

from ..fakes import FakeEngine

NOW = "2025-01-02T03:04:05Z"


def test_fresh_checkpoint() -> None:
    cp, note = repair_checkpoint(None, session="s", total=10, done=3, now=NOW)
    assert cp == Checkpoint("s", 10, 3, NOW, "running", NOW) and note is None


def test_valid_checkpoint_keeps_its_start_and_takes_storage_counts() -> None:
    raw = {b"session": b"s", b"total": b"10", b"done": b"7", b"started": b"2024-12-31T00:00:00Z",
           b"status": b"running", b"updated": b"2025-01-01T00:00:00Z"}  # fmt: skip
    assert parse_checkpoint(raw).done == 7
    cp, note = repair_checkpoint(raw, session="s", total=10, done=4, now=NOW)
    assert cp.started == "2024-12-31T00:00:00Z" and cp.done == 4 and cp.updated == NOW
    assert note is not None and "storage wins" in note
    cp, note = repair_checkpoint(raw, session="s", total=10, done=7, now=NOW)
    assert note is None


@pytest.mark.parametrize(
    "raw",
    [
        "string",  # the key holds another Redis type
        {b"total": b"ten", b"done": b"1", b"started": NOW, b"status": b"running", b"updated": NOW},
        {b"total": b"10", b"done": b"11", b"started": NOW, b"status": b"running", b"updated": NOW},
        {b"total": b"10", b"done": b"1", b"started": b"yesterday", b"status": b"running", b"updated": NOW},
        {b"total": b"10", b"done": b"1", b"started": NOW, b"status": b"exploded", b"updated": NOW},
        {b"total": b"10"},
        {b"total": b"\xff\xfe", b"done": b"1", b"started": NOW, b"status": b"running", b"updated": NOW},
    ],
)
def test_corrupt_checkpoint_is_rebuilt_from_storage(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_checkpoint(raw)
    cp, note = repair_checkpoint(raw, session="s", total=10, done=2, now=NOW)
    assert cp == Checkpoint("s", 10, 2, NOW, "running", NOW)
    assert note is not None and "corrupt" in note


def _track(state: str, *, holder: str = "", since: float = 0.0, dispatched: float = 0.0) -> Track:
    return Track(Batch(f"b{state}{holder}", 0, ("c",), 5), ["t1"], dispatched, state, since, holder)


def test_dead_holder_detection() -> None:
    alive = _track("STARTED", holder="w1@h", since=0)
    dead = _track("STARTED", holder="w2@h", since=0)
    never_seen = _track("STARTED", holder="w3@h", since=8)
    pending = _track("PENDING")
    last_seen = {"w1@h": 10.0, "w2@h": 3.0}
    lost = lost_to_dead_workers([alive, dead, never_seen, pending], last_seen, now=10.0, dead_after=6.0)
    assert lost == [dead]
    assert lost_to_dead_workers([never_seen], last_seen, now=14.0, dead_after=6.0) == [never_seen]
    # A batch started after its worker's last ping reply is a sign of life (its pings lag behind).
    back = _track("STARTED", holder="w2@h", since=9.0)
    assert lost_to_dead_workers([back], last_seen, now=14.0, dead_after=6.0) == []
    assert lost_to_dead_workers([back], last_seen, now=15.0, dead_after=6.0) == [back]


def test_lost_in_transit_needs_an_empty_queue_twice() -> None:
    t = _track("PENDING", dispatched=0.0)
    started = _track("STARTED", holder="w", dispatched=0.0)
    assert lost_in_transit([t, started], queue_length=0, now=10, grace=6, retry_grace=300) == []
    assert lost_in_transit([t, started], queue_length=3, now=12, grace=6, retry_grace=300) == []  # reset
    assert lost_in_transit([t], queue_length=0, now=14, grace=6, retry_grace=300) == []
    assert lost_in_transit([t], queue_length=0, now=16, grace=6, retry_grace=300) == [t]
    young = _track("PENDING", dispatched=15.0)
    for now in (16, 17, 18):
        assert lost_in_transit([young], queue_length=0, now=now, grace=6, retry_grace=300) == []


def test_result_json_round_trip() -> None:
    r = BatchResult("b1", (ChunkResult("c1", 100), ChunkResult("c2", 5)), 1, 0.5, 0.25)
    data = result_to_json(r, hostname="w@h")
    assert data["hostname"] == "w@h"
    assert result_from_json(data) == r


def test_celery_config_is_json_only_with_late_acks() -> None:
    ds = DistributedSettings(redis_url="rediss://:pw@h:6380/0?ssl_cert_reqs=none", visibility_timeout=7200)
    conf = celery_config(ds)
    assert conf["accept_content"] == ["json"] and conf["result_accept_content"] == ["json"]
    assert conf["task_serializer"] == conf["result_serializer"] == conf["event_serializer"] == "json"
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_transport_options"]["visibility_timeout"] == 7200
    assert conf["task_time_limit"] > conf["task_soft_time_limit"]
    assert conf["worker_send_task_events"] and conf["task_send_sent_event"] and conf["task_track_started"]
    assert conf["broker_url"] == "rediss://:pw@h:6380/0"
    assert conf["broker_use_ssl"]["ssl_cert_reqs"] == 0
    assert "pickle" not in repr(conf)
    assert TASK_NAME == "ebook2audio.synthesize_batch"


class OomOnce(FakeEngine):
    """Raises CUDA out-of-memory on the n-th call (once), like a GPU that is briefly too full."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.failed = False

    def synthesize(self, text: str, *, seed: int | None = None) -> bytes:
        if not self.failed and len(self.calls) == self.fail_at:
            self.failed = True
            self.calls.append("<oom>")
            raise CudaOutOfMemoryError("CUDA out of memory")
        return super().synthesize(text, seed=seed)


def _chunks(n: int) -> list[Chunk]:
    return [Chunk(f"chunk{i:02d}", 0, i, f"sentence number {i}.", f"Sentence {i}.", 300) for i in range(n)]


def test_cuda_oom_splits_the_batch_instead_of_failing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    chunks = _chunks(6)
    engine = OomOnce(fail_at=2)
    result = synthesize_halving(storage, "s", "b1", chunks, engine)  # type: ignore[arg-type]
    assert all(chunk_done(storage, "s", c.id) for c in chunks)
    assert {c.chunk_id for c in result.chunks} | {"chunk00", "chunk01"} == {c.id for c in chunks}
    assert (len(result.chunks), result.skipped) == (
        4,
        2,
    )  # the halves skip the 2 chunks written before the error
    assert engine.calls.count("<oom>") == 1


def test_cuda_oom_on_a_single_chunk_raises_for_a_retry(tmp_path: Path) -> None:
    with pytest.raises(CudaOutOfMemoryError):
        synthesize_halving(LocalStorage(tmp_path), "s", "b1", _chunks(1), OomOnce(fail_at=0))  # type: ignore[arg-type]


class _FakeTask:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    def apply_async(self, **kwargs: object) -> None:
        self.sent.append(kwargs)


class _FakeApp:
    def __init__(self) -> None:
        self.tasks = {TASK_NAME: _FakeTask()}


def _executor(tmp_path: Path) -> tuple[DistributedExecutor, Plan, Track]:
    from ebook2audio.engines.registry import resolve_voice
    from ebook2audio.model import Book, Chapter, Metadata, VoiceSpec
    from ebook2audio.plan import make_plan

    spec = VoiceSpec(engine="sim", language="en")
    book = Book(Metadata(title="t"), (Chapter("One", ("A first sentence. A second one.",)),))
    plan = make_plan(book, resolve_voice(spec), spec, "sess")
    ex = DistributedExecutor(_FakeApp(), DistributedSettings(), LocalStorage(tmp_path), notify=lambda _: None)
    track = Track(batch=plan.batches[0])
    ex._dispatch(plan, track)
    return ex, plan, track


def _failure(exc_type: str, message: str) -> dict:
    return {"status": "FAILURE", "result": {"exc_type": exc_type, "exc_message": [message]}, "worker": "w1@h"}


def _observe(ex: DistributedExecutor, plan: Plan, track: Track, meta: dict) -> None:
    tracks = OrderedDict({track.batch.id: track})
    ex._observe(plan, tracks, track, meta["status"], meta, track.task_ids[-1], 0.0, lambda t, r: None)


def test_a_worker_side_user_error_stops_the_job(tmp_path: Path) -> None:
    ex, plan, track = _executor(tmp_path)
    with pytest.raises(UserError, match="w1@h: Piper voice 'x' is not installed"):
        _observe(ex, plan, track, _failure("VoiceError", "Piper voice 'x' is not installed"))


def test_failed_batches_are_retried_then_fail(tmp_path: Path) -> None:
    ex, plan, track = _executor(tmp_path)
    for _ in range(5):  # Redis or storage away: retried without counting
        _observe(ex, plan, track, _failure("ConnectionError", "Error 111"))
    assert len(track.task_ids) == 6 and track.failures == 0
    _observe(ex, plan, track, _failure("SynthesisError", "engine broke"))
    _observe(ex, plan, track, _failure("SynthesisError", "engine broke"))
    assert len(track.task_ids) == 8
    with pytest.raises(SynthesisError, match="failed 8 times, last on w1@h: SynthesisError: engine broke"):
        _observe(ex, plan, track, _failure("SynthesisError", "engine broke"))
    sent = ex.app.tasks[TASK_NAME].sent
    assert sent[0]["args"] == ("sess", track.batch.id) and sent[0]["kwargs"]["chapter"] == 1
    assert len({s["task_id"] for s in sent}) == len(sent)  # a fresh task id each time


def test_a_worker_without_the_plan_means_storage_is_not_shared(tmp_path: Path) -> None:
    ex, plan, track = _executor(tmp_path)
    meta = {
        "status": "SUCCESS",
        "result": {
            "batch_id": track.batch.id,
            "missing": "plan",
            "storage": "local:/elsewhere",
            "hostname": "w9@h",
        },
    }
    with pytest.raises(UserError, match=r"w9@h does not find .* \(local:/elsewhere\)"):
        _observe(ex, plan, track, meta)


def test_success_counts_only_when_the_audio_is_in_storage(tmp_path: Path) -> None:
    from ebook2audio.audio.pcm import wav_bytes
    from ebook2audio.jobstore import chunk_key

    ex, plan, track = _executor(tmp_path)
    done: list[BatchResult] = []
    meta = {
        "status": "SUCCESS",
        "result": {"batch_id": track.batch.id, "chunks": [[c, 10] for c in track.batch.chunk_ids]},
    }
    tracks = OrderedDict({track.batch.id: track})
    ex._observe(plan, tracks, track, "SUCCESS", meta, track.task_ids[-1], 0.0, lambda t, r: done.append(r))
    assert done == [] and track.unverified_since == 0.0  # reported, not yet visible: wait (NFS caches)
    for cid in track.batch.chunk_ids:
        LocalStorage(tmp_path).put_bytes(
            chunk_key("sess", cid), wav_bytes(b"\x01\x00" * 10, plan.sample_rate)
        )
    ex._observe(plan, tracks, track, "SUCCESS", meta, track.task_ids[-1], 1.0, lambda t, r: done.append(r))
    assert [r.batch_id for r in done] == [track.batch.id]
