"""Job: session ids, per-job plans, cleanup that deletes exactly what no other job needs, file locks."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from ebook2audio.errors import UserError
from ebook2audio.job import FileLocks, Job, JobBusyError, NoLocks, check_session_id, job_id
from ebook2audio.jobstore import chunk_key, done_chunks, load_plan, plan_key
from ebook2audio.model import Book, Chapter, Metadata, VoiceSpec
from ebook2audio.plan import make_plan
from ebook2audio.storage.local import LocalStorage
from ebook2audio.tasks import synthesize_batch

from .fakes import FAKE_INFO, FakeEngine

BOOK = Book(
    metadata=Metadata(title="T"),
    chapters=(
        Chapter("One", ("First sentence here. Second sentence here.",)),
        Chapter("Two", ("Third sentence here. Fourth one.",)),
    ),
)


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "/abs", "a" * 65, "-x", "a b", "é", "a\nb", "_x"])
def test_invalid_session_ids_are_refused(bad: str) -> None:
    with pytest.raises(UserError, match="invalid session id"):
        check_session_id(bad)


@pytest.mark.parametrize("good", ["a", "0f3a", "book-1_fr", "A" * 64])
def test_valid_session_ids(good: str) -> None:
    assert check_session_id(good) == good


def _synth_all(storage: LocalStorage, job: Job) -> None:
    cmap = job.plan.chunk_map()
    for b in job.plan.batches:
        synthesize_batch(storage, job.session, b.id, [cmap[i] for i in b.chunk_ids], FakeEngine())


def test_job_ids_differ_by_target_and_plan() -> None:
    plan = make_plan(BOOK, FAKE_INFO, VoiceSpec(engine="fake"), "s")
    assert job_id(plan, "/o/a.m4b") != job_id(plan, "/o/a.mp3")
    one = make_plan(Book(BOOK.metadata, BOOK.chapters[:1]), FAKE_INFO, VoiceSpec(engine="fake"), "s")
    assert job_id(plan, "/o/a.m4b") != job_id(one, "/o/a.m4b")
    assert len(job_id(plan, "x")) == 16


def test_cleanup_keeps_the_chunks_of_other_registered_jobs(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    full_plan = make_plan(BOOK, FAKE_INFO, VoiceSpec(engine="fake"), "s")
    part_plan = make_plan(Book(BOOK.metadata, BOOK.chapters[:1]), FAKE_INFO, VoiceSpec(engine="fake"), "s")
    # an interrupted full run: registered, all its audio made, never cleaned up
    full = Job.for_plan(storage, full_plan, "/out/T.m4b", NoLocks())
    assert full.register() == {}
    _synth_all(storage, full)
    assert load_plan(storage, "s", full.id) == full.plan
    # then `--chapters 1`: finds chapter 1 done, finishes, cleans up
    part = Job.for_plan(storage, part_plan, "/out/T.m4b", NoLocks())
    assert set(part.register()) == {c.id for c in part.plan.chunks}
    assert part.cleanup() == 0  # every chunk of chapter 1 is needed by the full run
    assert not storage.exists(plan_key("s", part.id))
    assert done_chunks(storage, full.plan) == {c.id for c in full.plan.chunks}
    # a finished job of another voice deletes only the chunks it alone needed
    other_plan = make_plan(BOOK, FAKE_INFO, VoiceSpec(engine="fake", speed=1.5), "s")
    other = Job.for_plan(storage, other_plan, "/out/T.m4b", NoLocks())
    other.register()
    _synth_all(storage, other)
    mine = {c.id for c in other.plan.chunks} - {c.id for c in full.plan.chunks}
    assert mine and all(storage.exists(chunk_key("s", c)) for c in mine)
    assert other.cleanup() == len(mine)
    assert not any(storage.exists(chunk_key("s", c)) for c in mine)
    assert done_chunks(storage, full.plan) == {c.id for c in full.plan.chunks}
    # the last job of the session takes the whole folder with it
    storage.put_bytes("s/cover", b"image/png\n")
    full.cleanup()
    assert not (tmp_path / "s").exists()


def _hold(root: str, ready: multiprocessing.synchronize.Event, release: multiprocessing.synchronize.Event) -> None:
    with FileLocks(Path(root)).hold_job("s", "j", "out.m4b"):
        ready.set()
        release.wait(30)


def test_file_lock_excludes_the_same_job_in_another_process_and_frees_on_exit(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold, args=(str(tmp_path), ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        locks = FileLocks(tmp_path)
        busy = rf"out.m4b is already being made from this book by pid {proc.pid}"
        with pytest.raises(JobBusyError, match=busy), locks.hold_job("s", "j", "out.m4b"):
            pass
        # another job of the same book runs beside it
        with locks.hold_job("s", "other-job", "out.mp3"), locks.session_critical("s"):
            pass
    finally:
        release.set()
        proc.join(30)
    with FileLocks(tmp_path).hold_job("s", "j", "out.m4b"):
        pass
    assert not (tmp_path / ".locks").exists()  # lock files go with their holders


def _kill_holder(root: str, ready: multiprocessing.synchronize.Event) -> None:
    import os
    import signal

    with FileLocks(Path(root)).hold_job("s", "j", "out.m4b"):
        ready.set()
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_holder_never_blocks_the_rerun(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_kill_holder, args=(str(tmp_path), ready))
    proc.start()
    proc.join(30)
    assert ready.is_set() and proc.exitcode == -9
    t0 = time.monotonic()
    with FileLocks(tmp_path).hold_job("s", "j", "out.m4b"):
        assert time.monotonic() - t0 < 1
