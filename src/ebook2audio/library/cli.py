"""The ``library`` command: its own flags, and the run (the conversion itself is ``convert``'s code
path, passed in by ebook2audio.cli)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import Ebook2AudioError, UserError
from ..model import ChapterMark
from .runner import Outcome

# Flags of `convert` that name one book: meaningless for a whole library.
ONE_BOOK_FLAGS = (("output_name", "--output-name"), ("session", "--session"), ("chapters", "--chapters"))


def add_library_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("library")
    g.add_argument(
        "--watch", nargs="?", type=float, const=60.0, default=None, metavar="SECONDS",
        help="keep scanning every SECONDS (default 60) and convert books added later, until SIGINT/SIGTERM",
    )  # fmt: skip
    g.add_argument(
        "--dry-run", action="store_true", help="list the books that would be converted, convert nothing"
    )
    g.add_argument(
        "--json", action="store_true",
        help="with --dry-run: one JSON object per book on stdout (source, state todo|skipped|failed, "
        "folder, name, title, authors, series, error)",
    )  # fmt: skip
    g.add_argument(
        "--only", type=Path, metavar="FILE",
        help="convert just this book file of the library (named, placed and described as the whole run would)",
    )  # fmt: skip


def _say(quiet: bool) -> Callable[[str], None]:
    from ..progress import make_reporter

    reporter = make_reporter(quiet=quiet)
    return reporter.message


def _probe_chapters(path: Path) -> tuple[ChapterMark, ...]:
    from ..audio.ffmpeg import probe

    try:
        return probe(path).chapters
    except (Ebook2AudioError, OSError):
        return ()


def run_library(
    args: argparse.Namespace,
    convert_one: Callable[[argparse.Namespace], Any],
    *,
    load_flags: Callable[[argparse.Namespace], Mapping[str, Any]],
    check_output_dir: Callable[[Path], None],
    env: Mapping[str, str] | None = None,
) -> int:
    from ..config import load_settings
    from ..ingest import read_book
    from ..ingest.registry import book_extensions
    from ..interrupts import trap
    from ..pipeline import finished_outputs
    from .runner import Library

    for dest, flag in ONE_BOOK_FLAGS:
        if getattr(args, dest, None):
            raise UserError(f"{flag} names one book's output: it cannot be used with `library`")
    src: Path = args.src
    if not src.is_dir():
        raise UserError(f"{src}: not a folder (give a folder of books or a Calibre library)")
    if args.watch is not None and args.watch <= 0:
        raise UserError("--watch SECONDS must be positive")
    if args.watch is not None and args.dry_run:
        raise UserError("--dry-run lists what one pass would convert: it cannot be used with --watch")
    if args.json and not args.dry_run:
        raise UserError("--json lists the books of --dry-run: add --dry-run")
    if args.only is not None and args.watch is not None:
        raise UserError("--only converts one book: it cannot be used with --watch")
    settings = load_settings(load_flags(args), env, config_file=args.config)
    out = Path(settings.output_dir)
    check_output_dir(out)
    say = _say(args.quiet)

    def convert_book(book: Path, folder: Path, name: str) -> Any:
        one = argparse.Namespace(**{**vars(args), "book": book, "output_dir": folder, "output_name": name})
        try:
            return convert_one(one)
        except Ebook2AudioError as exc:
            interrupted = signals.interrupted()
            if interrupted is not None:  # an error a signal caused (a killed encoder): stop the library
                raise interrupted from exc
            raise

    def find_done(book: Path, folder: Path, name: str) -> tuple[Path, ...] | None:
        return finished_outputs(book, replace(settings, output_dir=folder, output_name=name), env)

    library = Library(
        src=src,
        out=out,
        extensions=book_extensions(),
        read_book=read_book,
        convert_one=convert_book,
        find_done=find_done,
        say=say,
        probe_chapters=_probe_chapters,
        settle_s=2.0 if args.watch is not None else 0.0,
        only=args.only,
        listing=(lambda _line: None) if args.json else print,
    )
    with trap() as signals:
        try:
            if args.watch is not None:
                say(f"watching {src} every {args.watch:g} s (Ctrl-C or SIGTERM to stop)")
                library.watch(args.watch)
            else:
                library.run_once(dry_run=args.dry_run)
        except KeyboardInterrupt:  # during a conversion: the library's summary, then convert's message
            say(library.tally.summary())
            raise
    tally = library.tally
    if args.json:
        for outcome in tally.outcomes:
            print(json.dumps(outcome_json(outcome), ensure_ascii=False), flush=True)
    say(tally.summary(dry_run=args.dry_run))
    return 1 if tally.failed else 0


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """One book of ``--dry-run --json``: what the web app's library panel shows and queues."""
    book, dest = outcome.book, outcome.dest
    return {
        "source": str(book.source),
        "state": outcome.state,
        "folder": str(dest.folder) if dest else "",
        "name": dest.name if dest else "",
        "title": book.title,
        "authors": list(book.authors),
        "series": book.series,
        "series_index": book.series_index,
        "error": outcome.error,
    }
