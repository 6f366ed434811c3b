"""The queue's rules and the runner's reading of the CLI's JSON lines (no server, no child)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ebook2audio.web.queue import Book, JobSettings, Queue, QueueError
from ebook2audio.web.runner import EventReader, parse_ffmetadata_chapters


def _book(q: Queue, n: int) -> Book:
    return q.add_book(Book(id=f"{n:016x}", path=f"/b/{n}.epub", name=f"{n}.epub", added=n, info={"title": f"B{n}"}))


def test_order_move_and_restart(tmp_path: Path) -> None:
    q = Queue(tmp_path / "q.sqlite3")
    jobs = [q.add_job(_book(q, n), JobSettings(engine="sim", chapters="1-2")) for n in range(1, 4)]
    assert [j.title for j in q.jobs()] == ["B1", "B2", "B3"]
    q.move(jobs[2].id, -5)  # to the head, clamped
    q.move(jobs[0].id, 1)
    assert [j.title for j in q.jobs()] == ["B3", "B2", "B1"]
    first = q.claim_next()
    assert first is not None and first.title == "B3" and first.state == "running" and first.runs == 1
    q.set_state(jobs[1].id, "paused", allowed_from=("queued",))
    with pytest.raises(QueueError, match="paused: it cannot become"):
        q.set_state(jobs[1].id, "queued", allowed_from=("failed",))
    q.close()

    # The server dies: the running job waits again, first in line, with its settings.
    q = Queue(tmp_path / "q.sqlite3")
    assert q.requeue_interrupted() == [jobs[2].id]
    again = q.claim_next()
    assert again is not None and again.id == jobs[2].id and again.runs == 2
    assert again.settings == JobSettings(engine="sim", chapters="1-2")
    assert q.claim_next() is not None and q.claim_next() is None  # B1 next; B2 is paused
    with pytest.raises(QueueError, match="no job 99"):
        q.job(99)


def _line(event: str, message: str = "", level: str = "INFO", **data: object) -> str:
    return json.dumps({"event": event, "message": message, "level": level, "data": data})


def test_event_reader_gives_the_cli_numbers() -> None:
    r = EventReader()
    assert r.feed(_line("synthesis.started", sentences_total=10, sentences_done=4))
    assert (r.progress.sentences_done, r.progress.resumed) == (4, 4)
    assert r.feed(_line("batch.done", sentences_done=6, sentences_total=10, realtime_factor=12.5, eta_seconds=3.0))
    assert (r.progress.sentences_done, r.progress.realtime, r.progress.eta, r.progress.resumed) == (6, 12.5, 3.0, 4)
    assert r.feed(_line("phase", "assembling...", phase="assembling")) and r.progress.phase == "assembling"
    r.feed(_line("message", "wrote out/job-1/A - B.m4b"))
    r.feed(_line("message", "wrote out/job-1/A - B.srt"))
    assert r.outputs == ["A - B.m4b", "A - B.srt"]
    r.feed("Traceback (most recent call last):")  # not JSON: kept as the last words
    r.feed("Segmentation fault")
    assert r.failure(-11) == "Segmentation fault"
    r.feed(_line("error", "error: book.epub: the archive expands beyond 1 GiB", "ERROR"))
    assert r.failure(2) == "book.epub: the archive expands beyond 1 GiB"
    assert EventReader().failure(-9) == "the conversion was killed by SIGKILL"


def test_ffmetadata_chapters() -> None:
    text = ";FFMETADATA1\ntitle=x\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=2500\ntitle=One \\= 1\n" \
           "[CHAPTER]\nTIMEBASE=1/44100\nSTART=110250\nEND=220500\ntitle=Two\n"  # fmt: skip
    assert parse_ffmetadata_chapters(text) == [
        {"title": "One = 1", "start": 0.0, "end": 2.5},
        {"title": "Two", "start": 2.5, "end": 5.0},
    ]


def test_same_job_is_found_and_children_get_no_login(tmp_path: Path) -> None:
    from ebook2audio.web.server import child_environment

    q = Queue(tmp_path / "q.sqlite3")
    book = _book(q, 1)
    job = q.add_job(book, JobSettings(engine="sim", chapters="2"))
    assert q.same_job(book.id, JobSettings(engine="sim", chapters="2")) == job
    assert q.same_job(book.id, JobSettings(engine="sim", chapters="1")) is None
    q.set_state(job.id, "failed", error="x")
    assert q.same_job(book.id, JobSettings(engine="sim", chapters="2")) is None  # a retry is a new job
    env = {"EBOOK2AUDIO_WEB_USER": "u", "EBOOK2AUDIO_WEB_PASSWORD": "p", "REDIS_URL": "redis://r", "PATH": "/bin"}
    assert child_environment(env) == {"REDIS_URL": "redis://r", "PATH": "/bin"}
