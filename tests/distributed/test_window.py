"""The coordinator's dispatch window (pure logic; the end-to-end test is test_interleave.py)."""

from __future__ import annotations

import contextlib
from collections import OrderedDict, deque
from collections.abc import Iterator
from pathlib import Path

import pytest

from ebook2audio.distributed_config import DistributedSettings, load_distributed_settings
from ebook2audio.errors import ConfigError
from ebook2audio.executors.celery_app import TASK_NAME
from ebook2audio.executors.distributed import DistributedExecutor, Track, Window, pool_slots
from ebook2audio.model import Plan
from ebook2audio.plan import dispatch_order
from ebook2audio.storage.local import LocalStorage


def test_window_size() -> None:
    assert Window().size == 4  # no worker known yet: counts one slot
    assert Window(slots={"w1@h": 1, "w2@h": 1}).size == 6
    assert Window(slots={"gpu@h": 4, "w2@h": 1}).size == 12
    assert Window(configured=3, slots={"w1@h": 8}).size == 3


def test_pool_slots_from_inspect_stats() -> None:
    stats = {
        "w1@h": {"pool": {"max-concurrency": 4, "processes": [1, 2, 3, 4]}},
        "w2@h": {"pool": {}},  # a pool without the field (e.g. solo): one slot
        "w3@h": "garbage",
    }
    assert pool_slots(stats) == {"w1@h": 4, "w2@h": 1, "w3@h": 1}
    assert pool_slots(None) == {}


def test_max_in_flight_setting() -> None:
    assert load_distributed_settings({}, env={}).max_in_flight == 0
    assert load_distributed_settings({}, env={"EBOOK2AUDIO_MAX_IN_FLIGHT": "8"}).max_in_flight == 8
    assert load_distributed_settings({"max_in_flight": 2}, env={"EBOOK2AUDIO_MAX_IN_FLIGHT": "8"}).max_in_flight == 2
    with pytest.raises(ConfigError, match="max-in-flight"):
        load_distributed_settings({"max_in_flight": -1}, env={})


class _FakeTask:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def apply_async(self, **kwargs: object) -> None:
        self.sent.append(str(kwargs["task_id"]))


class _FakeApp:
    def __init__(self) -> None:
        self.tasks = {TASK_NAME: _FakeTask()}

    @contextlib.contextmanager
    def producer_or_acquire(self) -> Iterator[None]:
        yield None


def _plan() -> Plan:
    from ebook2audio.engines.registry import resolve_voice
    from ebook2audio.model import Book, Chapter, Metadata, VoiceSpec
    from ebook2audio.plan import PlanOptions, make_plan

    spec = VoiceSpec(engine="sim", language="en")
    paragraphs = tuple(f"Sentence number {n} of the only chapter, long enough to stand alone." for n in range(12))
    book = Book(Metadata(title="t"), (Chapter("One", paragraphs),))
    return make_plan(book, resolve_voice(spec), spec, "sess", PlanOptions(batch_chars=60))


def test_refill_keeps_the_window_in_dispatch_order(tmp_path: Path) -> None:
    app = _FakeApp()
    ex = DistributedExecutor(app, DistributedSettings(), LocalStorage(tmp_path), notify=lambda _: None)
    plan = _plan()
    ordered = dispatch_order(plan.batches)
    assert len(ordered) >= 8
    waiting = deque(Track(batch=b) for b in ordered)
    tracks: OrderedDict[str, Track] = OrderedDict()
    window = Window(configured=3)
    ex._refill(plan, tracks, waiting, window)
    assert list(tracks) == [b.id for b in ordered[:3]] and len(waiting) == len(ordered) - 3
    ex._refill(plan, tracks, waiting, window)  # full: nothing more goes out
    assert len(app.tasks[TASK_NAME].sent) == 3
    for bid in list(tracks)[:2]:  # two finish: the next two, in order, take their places
        tracks.pop(bid)
    ex._refill(plan, tracks, waiting, window)
    assert list(tracks) == [ordered[2].id, ordered[3].id, ordered[4].id]
    sent = [tid.split(".")[2] for tid in app.tasks[TASK_NAME].sent]
    assert sent == [b.id for b in ordered[:5]]
