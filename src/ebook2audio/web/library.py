"""The web app's library mode: a folder of the input folder (a folder tree of books or a Calibre
library) scanned, and each book with no audiobook yet queued, its audiobook going to the output
folder in Audiobookshelf's layout (docs/web.md, "Library").

Nothing of the layout or the scan is done here: the scan is ``ebook2audio library FOLDER --dry-run
--json`` and each job ``ebook2audio library FOLDER --only BOOK`` (:mod:`.runner`), both in a child
process, so the web app and the CLI make the very same tree, and a hostile book costs a child.
Watched folders (table ``watches`` of the queue) are rescanned every ``interval`` seconds by
:class:`Watcher`, which survives restarts because the list is in the queue's database.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .queue import Book, Job, JobSettings, Queue
from .runner import settings_args

log = logging.getLogger(__name__)

SCAN_TIMEOUT = 600.0
MAX_FOLDERS = 2000
WAITING = ("queued", "running", "paused")


class LibraryError(Exception):
    """A scan that could not be done (one line)."""


@dataclass(frozen=True)
class Found:
    """One book of a scan, as ``library --dry-run --json`` printed it."""

    source: str  # absolute path of the book file
    state: str  # "todo", "skipped" (already converted), "failed" (unreadable)
    folder: str
    name: str
    title: str
    authors: tuple[str, ...]
    series: str
    error: str

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Found:
        return cls(
            source=str(d.get("source", "")), state=str(d.get("state", "")), folder=str(d.get("folder", "")),
            name=str(d.get("name", "")), title=str(d.get("title", "")),
            authors=tuple(str(a) for a in d.get("authors") or ()), series=str(d.get("series", "")),
            error=str(d.get("error", "")),
        )  # fmt: skip


def scan(
    folder: Path, output_dir: Path, work_dir: Path, settings: JobSettings, env: Mapping[str, str],
    extra_args: tuple[str, ...] = (), timeout: float = SCAN_TIMEOUT,
) -> list[Found]:  # fmt: skip
    """The books of the library at ``folder`` and whether each is converted (with ``settings``)."""
    command = [
        sys.executable, "-m", "ebook2audio.web.child", str(os.getpid()), "library", str(folder),
        "--dry-run", "--json", "--output-dir", str(output_dir), "--work-dir", str(work_dir),
        *settings_args(settings), *extra_args,
    ]  # fmt: skip
    try:
        r = subprocess.run(
            command, capture_output=True, text=True, errors="replace", timeout=timeout, env=dict(env),
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise LibraryError(f"scanning {folder.name or folder} took more than {timeout:.0f} s") from exc
    found = []
    for line in r.stdout.splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("source"):
            found.append(Found.from_json(data))
    if r.returncode not in (0, 1) or (r.returncode and not found):
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        text = lines[-1] if lines else f"the scan stopped with exit code {r.returncode}"
        with contextlib.suppress(ValueError, AttributeError):  # a JSON log line: its message
            text = str(json.loads(text).get("message", text))
        raise LibraryError(" ".join(text.removeprefix("error: ").split())[:500])
    return found


def library_book(found: Found) -> Book:
    """The queue's record of a library book (not stored in the books table: the library is its home)."""
    path = found.source
    return Book(
        id=hashlib.sha256(path.encode()).hexdigest()[:16], path=path, name=Path(path).name, added=time.time(),
        info={"title": found.title, "authors": list(found.authors), "series": found.series},
    )  # fmt: skip


def status(found: Found, existing: Job | None) -> tuple[str, str]:
    """(state, reason) of one book for the panel: "new" (to queue), "converted", "queued" (a job of
    it waits, runs or is paused), "failed" (its job failed or was cancelled: retry it there),
    "unreadable". Pure."""
    if found.state == "skipped":
        return "converted", "already converted"
    if found.state == "failed":
        return "unreadable", found.error or "unreadable"
    if existing is not None and existing.state in WAITING:
        return "queued", f"already in the queue (job {existing.id}, {existing.state})"
    if existing is not None and existing.state in ("failed", "cancelled"):
        return "failed", f"job {existing.id} {existing.state}: retry it in the queue"
    return "new", ""


def queue_books(
    queue: Queue, library: Path, found: list[Found], settings: JobSettings, *, relative_to: Path, dry_run: bool,
    settle_s: float = 0.0,
) -> dict[str, Any]:  # fmt: skip
    """Queue every "new" book of a scan; the books with their state, the jobs queued, the others
    with their reason. A file modified less than ``settle_s`` seconds ago is left for the next scan
    (a watched folder: it may still be being copied)."""
    books, queued, skipped = [], [], []
    for f in found:
        state, reason = status(f, queue.library_job(f.source, settings))
        if state == "new" and settle_s and _age(f.source) < settle_s:
            state, reason = "new", f"modified in the last {settle_s:g} s: left for the next scan"
        shown = _shown(f.source, relative_to)
        entry = {"source": shown, "title": f.title, "authors": list(f.authors), "state": state,
                 "reason": reason, "destination": _shown(str(Path(f.folder) / f.name), None)}  # fmt: skip
        if state == "new" and not dry_run and not reason:
            job = queue.add_job(library_book(f), settings, title=f.title or f.name, library=str(library))
            queued.append(job)
            entry["state"], entry["job"] = "queued", job.id
        elif state != "new" or reason:
            skipped.append({"source": shown, "title": f.title, "reason": reason})
        books.append(entry)
    return {"books": books, "queued": queued, "skipped": skipped}


def _age(path: str) -> float:
    try:
        return time.time() - Path(path).stat().st_mtime
    except OSError:
        return 0.0


def _shown(path: str, root: Path | None) -> str:
    try:
        return Path(path).relative_to(root).as_posix() if root is not None else path
    except ValueError:
        return path


def library_folders(root: Path, output_dir: Path, limit: int = MAX_FOLDERS) -> list[dict[str, Any]]:
    """The folders of the input folder (relative, "" = itself) that may be scanned as a library;
    hidden folders, links and the output folder are left out, and a Calibre library's own folders."""
    root = root.resolve()
    skip = output_dir.resolve()
    out: list[dict[str, Any]] = []
    for here, dirs, _files in os.walk(root, followlinks=False):
        path = Path(here)
        calibre = (path / "metadata.db").is_file()
        out.append({"path": path.relative_to(root).as_posix().removeprefix("."), "calibre": calibre})
        if len(out) >= limit:
            break
        dirs[:] = [] if calibre else sorted(d for d in dirs if not d.startswith(".") and (path / d).resolve() != skip)
    return out


def report_summary(report: Path, limit: int = 20) -> dict[str, Any] | None:
    """What the page shows of ``NAME.report.json``: how many sentences were replaced, and the first
    ``limit`` of them (chapter, sentence, text, replacement, reason); None without a readable one."""
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    subs = data.get("substituted") if isinstance(data.get("substituted"), list) else []
    keys = ("chapter", "chapter_title", "index", "text", "replacement", "reason")
    return {
        "substituted": len(subs),
        "sentences": [{k: s.get(k) for k in keys} for s in subs[:limit] if isinstance(s, dict)],
        "voice": str(data.get("voice", "")),
        "engine": str(data.get("engine", "")),
    }


class Watcher:
    """Rescans the watched library folders every ``interval`` seconds, on a background thread."""

    def __init__(self, queue: Queue, interval: float, rescan: Callable[[str, JobSettings], None]) -> None:
        self.queue = queue
        self.interval = interval
        self.rescan = rescan
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="library-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(SCAN_TIMEOUT + 5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for watch in self.queue.watches():
                if self._stop.is_set():
                    return
                if time.time() - watch.last_scan < self.interval:
                    continue
                error = ""
                try:
                    self.rescan(watch.path, watch.settings)
                except Exception as exc:  # a folder gone, a Calibre database being written: next time
                    error = " ".join(str(exc).split())[:500] or type(exc).__name__
                    log.warning("watched library %r: %s", watch.path or ".", error)
                self.queue.scanned(watch.id, error)
            self._stop.wait(min(self.interval, 5.0))
