"""``ebook2audio library``: convert, one after the other, every book of a library with no audiobook yet.

The conversion of each book is the caller's (the CLI passes the same code path as ``convert``), so
a book already converted with the same settings is skipped by ``convert`` itself (its fingerprint
tag and the finished-books index), an interrupted book resumes from its stored sentences, and a
failed book is one line: the others go on. ``watch`` rescans every N seconds until a signal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import Ebook2AudioError, UserError
from ..model import Book, ChapterMark, Cover
from .layout import Destination, destination, write_sidecars
from .sources import LibraryBook, is_calibre_library, read_calibre, scan_folder


class ConvertResultLike(Protocol):
    outputs: tuple[Path, ...]
    already_converted: bool

    @property
    def voice(self) -> Any: ...


# (book file, the audiobook's folder, its name without extension) -> convert's result
ConvertOne = Callable[[Path, Path, str], ConvertResultLike]
# (book file, folder, name) -> the outputs of an earlier conversion with these settings, or None
FindDone = Callable[[Path, Path, str], tuple[Path, ...] | None]


@dataclass(frozen=True)
class Outcome:
    book: LibraryBook
    state: str  # "converted", "skipped" (already converted), "failed", "todo" (dry run)
    dest: Destination | None = None
    error: str = ""


@dataclass
class Tally:
    converted: int = 0
    skipped: int = 0
    failed: list[Outcome] = field(default_factory=list)
    todo: int = 0
    outcomes: list[Outcome] = field(default_factory=list)  # every book, in order (--json)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if outcome.state == "converted":
            self.converted += 1
        elif outcome.state == "skipped":
            self.skipped += 1
        elif outcome.state == "todo":
            self.todo += 1
        else:
            self.failed.append(outcome)

    def summary(self, dry_run: bool = False) -> str:
        if dry_run:
            return f"library: {self.todo} to convert, {self.skipped} already converted, {len(self.failed)} unreadable"
        return (
            f"library: {self.converted} converted, {self.skipped} already converted, "
            f"{len(self.failed)} failed"
        )


@dataclass
class Library:
    """A library at ``src`` whose audiobooks go to ``out`` in Audiobookshelf's layout."""

    src: Path
    out: Path
    extensions: tuple[str, ...]
    read_book: Callable[[Path], Book]
    convert_one: ConvertOne
    find_done: FindDone
    say: Callable[[str], None]
    probe_chapters: Callable[[Path], tuple[ChapterMark, ...]] = lambda _p: ()
    listing: Callable[[str], None] = print  # --dry-run: one line per book to convert (stdout)
    settle_s: float = 0.0  # files younger than this are left for the next scan (watch mode)
    only: Path | None = None  # convert just this file of the library (--only; the web app's jobs)
    tally: Tally = field(default_factory=lambda: Tally())
    _seen_files: dict[Path, tuple[int, int]] = field(default_factory=dict)  # done or failed: (size, mtime_ns)
    _described: dict[Path, tuple[tuple[int, int], LibraryBook, Cover | None]] = field(default_factory=dict)

    def scan(self) -> list[LibraryBook]:
        if is_calibre_library(self.src):
            books = read_calibre(self.src)
        else:
            files = scan_folder(self.src, self.extensions, exclude=[self.out], settle_s=self.settle_s)
            books = [LibraryBook(source=p) for p in files]
        if self.only is None:
            return books
        wanted = self.only.resolve()
        chosen = [b for b in books if b.source.resolve() == wanted]
        if not chosen:
            raise UserError(f"{self.only}: not a book of the library {self.src}")
        return chosen

    def run_once(self, *, dry_run: bool = False) -> Tally:
        tally = self.tally
        # A book that failed, or that is done, is not tried again while its file stays the same.
        books = [b for b in self.scan() if not self._seen(b.source)]
        for n, book in enumerate(books, 1):
            outcome = self._one(book, f"[{n}/{len(books)}]", dry_run)
            tally.add(outcome)
            if outcome.state != "todo":
                self._seen_files[book.source] = _stamp(book.source)
        return tally

    def watch(self, interval: float, sleep: Callable[[float], None] = time.sleep) -> Tally:
        """Scan, convert what is new, wait ``interval`` seconds, again. A signal while waiting
        (KeyboardInterrupt) ends it; during a conversion it propagates (the book is interrupted)."""
        self.run_once()  # a library that cannot be read at all stops here (UserError)
        while True:
            try:
                sleep(interval)
            except KeyboardInterrupt:
                self.say("stopped watching")
                return self.tally
            try:
                self.run_once()
            except UserError as exc:  # e.g. Calibre writing its database right now: the next scan
                self.say(f"warning: {exc}; next scan in {interval:g} s")

    # ----------------------------------------------------------------------------------------------

    def _one(self, book: LibraryBook, counter: str, dry_run: bool) -> Outcome:
        try:
            book, cover = self._describe(book)
            dest = destination(self.out, book)
            label = f"{counter} {book.source}"
            if dry_run:
                done = self.find_done(book.source, dest.folder, dest.name)
                if done:
                    return Outcome(book, "skipped", dest)
                self.listing(f"{book.source} -> {dest.folder / dest.name}")
                return Outcome(book, "todo", dest)
            self.say(f"{label} -> {dest.folder}")
            result = self.convert_one(book.source, dest.folder, dest.name)
            chapters = self.probe_chapters(result.outputs[0]) if len(result.outputs) == 1 else ()
            voice = getattr(result.voice, "voice", "") or getattr(result.voice, "engine", "")
            write_sidecars(dest.folder, book, cover, chapters, voice)
            return Outcome(book, "skipped" if result.already_converted else "converted", dest)
        except Ebook2AudioError as exc:
            return self._failure(book, str(exc))
        except OSError as exc:
            return self._failure(book, exc.strerror or str(exc))
        except Exception as exc:  # a bug on one book: one line, and the library goes on
            return self._failure(
                book, f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for details)"
            )

    def _failure(self, book: LibraryBook, error: str) -> Outcome:
        self.say(f"failed: {book.source}: {error}")
        return Outcome(book, "failed", error=error)

    def _describe(self, book: LibraryBook) -> tuple[LibraryBook, Cover | None]:
        """The book with its names (read from the file when the library gave none) and its cover."""
        cover = _cover_file(book.cover)
        if book.known:
            return book, cover
        stamp = _stamp(book.source)
        cached = self._described.get(book.source)
        if cached and cached[0] == stamp:
            return cached[1], cached[2]
        read = self.read_book(book.source)
        described = book.with_metadata(read.metadata)
        cover = cover or read.cover
        self._described[book.source] = (stamp, described, cover)
        return described, cover

    def _seen(self, path: Path) -> bool:
        stamp = self._seen_files.get(path)
        return stamp is not None and stamp == _stamp(path)


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (-1, -1)
    return (st.st_size, st.st_mtime_ns)


def _cover_file(path: Path | None) -> Cover | None:
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    mime = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return Cover(data, mime)
