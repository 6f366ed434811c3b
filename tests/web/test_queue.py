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
    lib = EventReader()  # a library job: `library --only BOOK` says its book's failure as a message
    lib.feed(_line("message", "wrote out/Ann/Title/Title.m4b"))
    lib.feed(_line("message", "failed: /in/b.epub: the voice is missing"))
    assert lib.paths == ["out/Ann/Title/Title.m4b"] and lib.failure(1) == "/in/b.epub: the voice is missing"


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


def test_library_states_watches_and_an_old_queue(tmp_path: Path) -> None:
    """Library mode's decisions (no child): which books are queued, which skipped and why; watched
    folders kept in the database; a queue file made before library jobs gets the new column."""
    import sqlite3

    from ebook2audio.web.library import Found, queue_books, report_summary

    old = tmp_path / "old.sqlite3"
    with sqlite3.connect(old) as db:  # the jobs table as the first version of the web app made it
        db.execute(
            "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, book_id TEXT NOT NULL, book_path TEXT NOT NULL, "
            "title TEXT NOT NULL, settings TEXT NOT NULL, state TEXT NOT NULL, position REAL NOT NULL, "
            "phase TEXT NOT NULL DEFAULT '', sentences_done INTEGER NOT NULL DEFAULT 0, "
            "sentences_total INTEGER NOT NULL DEFAULT 0, realtime REAL NOT NULL DEFAULT 0, eta REAL, "
            "error TEXT NOT NULL DEFAULT '', outputs TEXT NOT NULL DEFAULT '[]', chapters TEXT NOT NULL DEFAULT '[]', "
            "created REAL NOT NULL, updated REAL NOT NULL, runs INTEGER NOT NULL DEFAULT 0, "
            "resumed INTEGER NOT NULL DEFAULT 0)"
        )
        db.execute("INSERT INTO jobs (book_id, book_path, title, settings, state, position, created, updated) "
                   "VALUES ('a', '/a', 'A', '{}', 'done', 1, 0, 0)")  # fmt: skip
    q = Queue(old)
    assert q.job(1).library == "" and q.job(1).title == "A"

    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "new.txt").write_text("x")
    fresh = lib / "fresh.txt"
    fresh.write_text("x")

    def found(name: str, state: str = "todo", error: str = "") -> Found:
        return Found(str(lib / name), state, str(tmp_path / "out" / "A" / name), name, name.upper(), ("A",), "", error)

    s = JobSettings(engine="sim")
    books = [found("new.txt"), found("done.txt", "skipped"), found("bad.txt", "failed", "not a book")]
    r = queue_books(q, lib, books, s, relative_to=lib, dry_run=True)
    assert [b["state"] for b in r["books"]] == ["new", "converted", "unreadable"] and r["queued"] == []
    r = queue_books(q, lib, books, s, relative_to=lib, dry_run=False)
    assert [j.title for j in r["queued"]] == ["NEW.TXT"] and r["queued"][0].library == str(lib)
    assert r["skipped"] == [
        {"source": "done.txt", "title": "DONE.TXT", "reason": "already converted"},
        {"source": "bad.txt", "title": "BAD.TXT", "reason": "not a book"},
    ]
    job = r["queued"][0]
    r = queue_books(q, lib, books[:1], s, relative_to=lib, dry_run=False)  # asked again: not twice
    assert r["queued"] == [] and r["skipped"][0]["reason"] == f"already in the queue (job {job.id}, queued)"
    q.set_state(job.id, "failed", error="boom")
    r = queue_books(q, lib, books[:1], s, relative_to=lib, dry_run=False)
    assert r["queued"] == [] and "failed: retry it" in r["skipped"][0]["reason"]
    other = queue_books(q, lib, books[:1], JobSettings(engine="sim", speed=1.5), relative_to=lib, dry_run=False)
    assert len(other["queued"]) == 1  # other settings: another audiobook
    r = queue_books(q, lib, [found("fresh.txt")], s, relative_to=lib, dry_run=False, settle_s=60)
    assert r["queued"] == [] and "next scan" in r["skipped"][0]["reason"]  # still being copied

    w = q.add_watch("shelf", s)
    assert q.add_watch("shelf", s) == w and w.last_scan > 0  # once; just scanned by whoever added it
    q.scanned(w.id, "gone")
    q.close()
    q = Queue(old)
    assert [(x.path, x.settings, x.last_error) for x in q.watches()] == [("shelf", s, "gone")]
    q.remove_watch(w.id)
    with pytest.raises(QueueError, match="no watched folder"):
        q.remove_watch(w.id)

    report = tmp_path / "B.report.json"
    assert report_summary(report) is None
    report.write_text(json.dumps({"voice": "v", "engine": "piper", "substituted": [
        {"chapter": 2, "chapter_title": "Two", "index": 5, "chunk_id": "x", "text": "Ouch.", "reason": "died",
         "replacement": "espeak-ng en-us"}]}))  # fmt: skip
    assert report_summary(report) == {"substituted": 1, "voice": "v", "engine": "piper", "sentences": [
        {"chapter": 2, "chapter_title": "Two", "index": 5, "text": "Ouch.", "replacement": "espeak-ng en-us",
         "reason": "died"}]}  # fmt: skip
    report.write_text("[not json")
    assert report_summary(report) is None
