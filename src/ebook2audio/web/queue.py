"""The web app's persistent queue: books and conversion jobs in one SQLite file of the data folder.

Plain dataclasses in, plain dataclasses out; no web framework here. Every call takes the lock and
commits, so the file is always consistent: a server killed at any moment restarts with the same
queue (:meth:`Queue.requeue_interrupted` puts the jobs that were running back at the head of the
queue; their conversion resumes from the chunks already in the work folder).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

STATES = ("queued", "running", "paused", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS books (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, name TEXT NOT NULL, added REAL NOT NULL,
    info TEXT NOT NULL DEFAULT '{}', error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, book_id TEXT NOT NULL, book_path TEXT NOT NULL,
    title TEXT NOT NULL, settings TEXT NOT NULL, state TEXT NOT NULL, position REAL NOT NULL,
    phase TEXT NOT NULL DEFAULT '', sentences_done INTEGER NOT NULL DEFAULT 0,
    sentences_total INTEGER NOT NULL DEFAULT 0, realtime REAL NOT NULL DEFAULT 0,
    eta REAL, error TEXT NOT NULL DEFAULT '', outputs TEXT NOT NULL DEFAULT '[]',
    chapters TEXT NOT NULL DEFAULT '[]', created REAL NOT NULL, updated REAL NOT NULL,
    runs INTEGER NOT NULL DEFAULT 0, resumed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS watches (
    id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, settings TEXT NOT NULL,
    added REAL NOT NULL, last_scan REAL NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
    UNIQUE (path, settings)
);
"""


@dataclass(frozen=True)
class JobSettings:
    """What a job asks of ``ebook2audio convert`` ("" = the CLI's own default)."""

    language: str = ""
    engine: str = ""
    voice: str = ""
    speed: float = 1.0
    format: str = "m4b"
    chapters: str = ""  # "1-3,7" as `inspect` numbers them; "" = all
    voice_sample: str = ""  # --voice-sample: a stored sample's path (POST /api/voice-samples); "" = none

    def to_json(self) -> str:
        """As stored (and compared) in the queue: without an unused voice_sample, so that the rows
        written before it existed still compare equal."""
        data = asdict(self)
        if not data["voice_sample"]:
            del data["voice_sample"]
        return json.dumps(data)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Book:
    id: str  # the first 16 hex digits of the file's SHA-256
    path: str
    name: str  # the file name shown to the user
    added: float
    info: dict[str, Any] = field(default_factory=dict)  # the `inspect` data (title, authors, chapters, ...)
    error: str = ""  # one line when the book could not be read


@dataclass(frozen=True)
class Job:
    id: int
    book_id: str
    book_path: str
    title: str
    settings: JobSettings
    state: str
    position: float
    created: float
    updated: float
    phase: str = ""  # "", "synthesising", "assembling"
    sentences_done: int = 0
    sentences_total: int = 0
    realtime: float = 0.0  # x real time of the current run
    eta: float | None = None  # seconds
    error: str = ""
    outputs: tuple[str, ...] = ()  # file names in the job's output folder
    chapters: tuple[dict[str, Any], ...] = ()  # {"title", "start", "end"} read from the audiobook
    runs: int = 0  # how many times a child process started on it
    resumed: int = 0  # sentences already done (kept from an earlier run) when the last run started
    library: str = ""  # a library's folder: the book goes to the output folder in Audiobookshelf's layout

    @property
    def percent(self) -> float:
        if self.state == "done":
            return 100.0
        return 100.0 * self.sentences_done / self.sentences_total if self.sentences_total else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["outputs"] = list(self.outputs)
        data["chapters"] = list(self.chapters)
        data["percent"] = round(self.percent, 1)
        return data


@dataclass(frozen=True)
class Watch:
    """A library folder the server rescans every few minutes, queueing the books added to it."""

    id: int
    path: str  # relative to the input folder ("" = the input folder itself)
    settings: JobSettings
    added: float
    last_scan: float = 0.0
    last_error: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Progress:
    phase: str
    sentences_done: int
    sentences_total: int
    realtime: float
    eta: float | None
    resumed: int = 0  # sentences found done when the synthesis started


class QueueError(Exception):
    """A request the queue refuses (an unknown job, a state change that makes no sense)."""


class Queue:
    """The queue in ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {r["name"] for r in self._db.execute("PRAGMA table_info(jobs)")}
        if "library" not in columns:  # a queue made before library jobs existed
            self._db.execute("ALTER TABLE jobs ADD COLUMN library TEXT NOT NULL DEFAULT ''")
        self._changed = threading.Condition(self._lock)
        self.version = 0  # bumped on every change: server-sent events compare it

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self.version += 1
            self._changed.notify_all()

    def wait_change(self, version: int, timeout: float) -> int:
        """Block until the queue changed after ``version`` (or ``timeout``); the current version."""
        with self._changed:
            if self.version == version:
                self._changed.wait(timeout)
            return self.version

    # -- books ---------------------------------------------------------------------------------

    def add_book(self, book: Book) -> Book:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO books (id, path, name, added, info, error) VALUES (?, ?, ?, ?, ?, ?)",
                (book.id, book.path, book.name, book.added, json.dumps(book.info), book.error),
            )
        return book

    def book(self, book_id: str) -> Book:
        with self._lock:
            row = self._db.execute("SELECT * FROM books WHERE id = ?", (book_id,)).fetchone()
        if row is None:
            raise QueueError(f"no book {book_id}")
        return _book(row)

    def books(self) -> list[Book]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM books ORDER BY added").fetchall()
        return [_book(r) for r in rows]

    # -- jobs ----------------------------------------------------------------------------------

    def add_job(self, book: Book, settings: JobSettings, title: str = "", library: str = "") -> Job:
        now = time.time()
        with self._tx() as db:
            top = db.execute("SELECT COALESCE(MAX(position), 0) FROM jobs").fetchone()[0]
            cur = db.execute(
                "INSERT INTO jobs (book_id, book_path, title, settings, state, position, created, updated, "
                "library) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                (book.id, book.path, title or book.info.get("title") or book.name,
                 settings.to_json(), top + 1, now, now, library),
            )  # fmt: skip
            job_id = int(cur.lastrowid or 0)
        return self.job(job_id)

    def same_job(self, book_id: str, settings: JobSettings) -> Job | None:
        """A job of this book with these settings that is waiting, running, paused or done."""
        wanted = settings.to_json()
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE book_id = ? AND settings = ? AND state NOT IN ('failed', 'cancelled') "
                "ORDER BY id LIMIT 1",
                (book_id, wanted),
            ).fetchone()
        return _job(row) if row is not None else None

    def library_job(self, book_path: str, settings: JobSettings) -> Job | None:
        """The latest library job of this book file with these settings."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE book_path = ? AND settings = ? AND library != '' ORDER BY id DESC LIMIT 1",
                (book_path, settings.to_json()),
            ).fetchone()
        return _job(row) if row is not None else None

    # -- watched library folders ---------------------------------------------------------------

    def add_watch(self, path: str, settings: JobSettings) -> Watch:
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO watches (path, settings, added, last_scan) VALUES (?, ?, ?, ?)",
                (path, settings.to_json(), time.time(), time.time()),  # just scanned by the caller
            )
            row = db.execute(
                "SELECT * FROM watches WHERE path = ? AND settings = ?", (path, settings.to_json())
            ).fetchone()
        return _watch(row)

    def watches(self) -> list[Watch]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM watches ORDER BY id").fetchall()
        return [_watch(r) for r in rows]

    def scanned(self, watch_id: int, error: str = "") -> None:
        with self._tx() as db:
            db.execute("UPDATE watches SET last_scan = ?, last_error = ? WHERE id = ?", (time.time(), error, watch_id))

    def remove_watch(self, watch_id: int) -> None:
        with self._tx() as db:
            if db.execute("DELETE FROM watches WHERE id = ?", (watch_id,)).rowcount == 0:
                raise QueueError(f"no watched folder {watch_id}")

    def job(self, job_id: int) -> Job:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise QueueError(f"no job {job_id}")
        return _job(row)

    def jobs(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY position").fetchall()
        return [_job(r) for r in rows]

    def claim_next(self) -> Job | None:
        """The first queued job, now marked running (None when nothing waits)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE state = 'queued' ORDER BY position LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', phase = 'starting', error = '', runs = runs + 1, "
                "updated = ? WHERE id = ?",
                (time.time(), row["id"]),
            )
        return self.job(int(row["id"]))

    def set_state(self, job_id: int, state: str, *, error: str = "", allowed_from: tuple[str, ...] = STATES) -> Job:
        if state not in STATES:
            raise QueueError(f"unknown state {state!r}")
        with self._tx() as db:
            row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise QueueError(f"no job {job_id}")
            if row["state"] not in allowed_from:
                raise QueueError(f"job {job_id} is {row['state']}: it cannot become {state}")
            extra = ", eta = NULL" if state != "running" else ""
            db.execute(
                f"UPDATE jobs SET state = ?, error = ?, phase = '', updated = ?{extra} WHERE id = ?",
                (state, error, time.time(), job_id),
            )
            # read back in the same transaction: the job as this call left it, even when the runner
            # claims it (queued -> running) the moment the transaction ends
            return _job(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def progress(self, job_id: int, p: Progress) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET phase = ?, sentences_done = ?, sentences_total = ?, realtime = ?, eta = ?, "
                "resumed = ?, updated = ? WHERE id = ? AND state = 'running'",
                (p.phase, p.sentences_done, p.sentences_total, p.realtime, p.eta, p.resumed, time.time(), job_id),
            )

    def finish(self, job_id: int, outputs: list[str], chapters: list[dict[str, Any]]) -> Job:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = 'done', phase = '', error = '', eta = 0, outputs = ?, chapters = ?, "
                "sentences_done = sentences_total, updated = ? WHERE id = ?",
                (json.dumps(outputs), json.dumps(chapters), time.time(), job_id),
            )
        return self.job(job_id)

    def move(self, job_id: int, delta: int) -> Job:
        """Move a job ``delta`` places (negative: towards the head of the queue)."""
        with self._tx() as db:
            ids = [r["id"] for r in db.execute("SELECT id FROM jobs ORDER BY position").fetchall()]
            if job_id not in ids:
                raise QueueError(f"no job {job_id}")
            i = ids.index(job_id)
            ids.insert(max(0, min(len(ids) - 1, i + delta)), ids.pop(i))
            for pos, jid in enumerate(ids, 1):
                db.execute("UPDATE jobs SET position = ? WHERE id = ?", (pos, jid))
        return self.job(job_id)

    def requeue_interrupted(self) -> list[int]:
        """On start: the jobs that were running when the server stopped wait again, first in line."""
        with self._tx() as db:
            rows = db.execute("SELECT id FROM jobs WHERE state = 'running'").fetchall()
            low = db.execute("SELECT COALESCE(MIN(position), 0) FROM jobs").fetchone()[0]
            for k, r in enumerate(rows):
                db.execute(
                    "UPDATE jobs SET state = 'queued', phase = '', eta = NULL, position = ?, updated = ? WHERE id = ?",
                    (low - len(rows) + k, time.time(), r["id"]),
                )
        return [int(r["id"]) for r in rows]

    def rename(self, job_id: int, title: str) -> Job:
        with self._tx() as db:
            db.execute("UPDATE jobs SET title = ? WHERE id = ?", (title, job_id))
        return self.job(job_id)


def _book(row: sqlite3.Row) -> Book:
    return Book(
        id=row["id"], path=row["path"], name=row["name"], added=row["added"],
        info=json.loads(row["info"]), error=row["error"],
    )  # fmt: skip


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=int(row["id"]),
        book_id=row["book_id"],
        book_path=row["book_path"],
        title=row["title"],
        settings=JobSettings.from_json(json.loads(row["settings"])),
        state=row["state"],
        position=row["position"],
        created=row["created"],
        updated=row["updated"],
        phase=row["phase"],
        sentences_done=row["sentences_done"],
        sentences_total=row["sentences_total"],
        realtime=row["realtime"],
        eta=row["eta"],
        error=row["error"],
        outputs=tuple(json.loads(row["outputs"])),
        chapters=tuple(json.loads(row["chapters"])),
        runs=row["runs"],
        resumed=row["resumed"],
        library=row["library"],
    )


def _watch(row: sqlite3.Row) -> Watch:
    return Watch(
        id=int(row["id"]), path=row["path"], settings=JobSettings.from_json(json.loads(row["settings"])),
        added=row["added"], last_scan=row["last_scan"], last_error=row["last_error"],
    )  # fmt: skip



