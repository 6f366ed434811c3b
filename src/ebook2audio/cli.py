"""Command line: arguments -> Settings -> pipeline. The only place that configures logging."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import __version__
from .errors import AssemblyError, Ebook2AudioError, UserError
from .logging_setup import (
    SKIP_TEXT_CONSOLE,
    collect_secrets,
    configure_logging,
    json_console,
    log_options,
    structured_logging_active,
)
from .metrics import add_metrics_flags, metrics_options, serve_metrics

log = logging.getLogger("ebook2audio")


def _convert_flags(p: argparse.ArgumentParser) -> None:
    """Flags that map 1:1 onto Settings fields. Their default is None = 'not given' (lower layers win)."""
    p.add_argument("-o", "--output-dir", type=Path, help="directory for the audiobook (default: .)")
    p.add_argument("--output-name", help="file name without extension (default: 'Author - Title')")
    p.add_argument(
        "-f", "--format", choices=["m4b", "m4a", "mp3", "opus", "ogg", "flac", "wav"], help="default m4b"
    )
    p.add_argument("-l", "--language", help="language of the text, e.g. en, fr, de (default: the book's)")
    p.add_argument(
        "--engine", help="TTS engine: piper (default), espeak, sim or an installed plugin (`ebook2audio voices`)"
    )
    p.add_argument("-v", "--voice", help="voice name, alias (joe, jenny) or path to a Piper .onnx file")
    p.add_argument(
        "--voice-sample", type=Path, metavar="REF.wav",
        help="a 3-30 s recording whose voice a cloning engine (--engine xtts) reads the book with",
    )  # fmt: skip
    p.add_argument("--speed", type=float, help="speaking rate, 1.0 = the voice's own (0.25-4)")
    p.add_argument("-w", "--workers", type=int, help="synthesis processes (default: one per core)")
    p.add_argument("--device", help="cpu (default), auto, cuda or cuda:N; never silently falls back")
    p.add_argument("--session", help="job id to resume (default: derived from the book's content)")
    p.add_argument(
        "--work-dir",
        type=Path,
        help="where chunk audio is kept until done (default: ~/.cache/ebook2audio/jobs)",
    )
    p.add_argument("--keep-work", action="store_const", const=True, help="keep chunk audio after success")
    p.add_argument(
        "--overwrite", action="store_const", const=True,
        help="convert again even if the output exists (by default a finished book is skipped)",
    )  # fmt: skip
    p.add_argument("--bitrate", help="audio bitrate for lossy formats (default 64k)")
    p.add_argument("--sentence-pause", dest="sentence_pause_ms", type=int, metavar="MS", help="default 300")
    p.add_argument("--paragraph-pause", dest="paragraph_pause_ms", type=int, metavar="MS", help="default 700")
    p.add_argument("--chapter-pause", dest="chapter_pause_ms", type=int, metavar="MS", help="default 2000")
    p.add_argument(
        "--split-hours",
        type=float,
        metavar="H",
        help="split into parts of at most H hours (chapters kept whole)",
    )
    p.add_argument(
        "--no-subtitles", dest="subtitles", action="store_const", const=False, help="do not write .srt/.vtt"
    )
    p.add_argument("--chapters", help="convert only these chapters, as numbered by `inspect`: e.g. 1-3,7")
    p.add_argument("--batch-chars", type=int, help="characters per task (default 1200)")
    p.add_argument("--granularity", choices=["sentence", "chapter"], help="task size (default sentence)")
    p.add_argument(
        "--encode-jobs", type=int, metavar="N",
        help="ffmpeg processes encoding m4b/m4a pieces while synthesis runs (default: one per core; 1 = serial)",
    )  # fmt: skip
    p.add_argument(
        "--strict", action="store_const", const=True,
        help="stop (exit 2, work kept) on a sentence that crashes the voice instead of replacing it",
    )  # fmt: skip
    p.add_argument(
        "--loudness", type=float, metavar="LUFS",
        help="mastering: every sentence and the book at this integrated loudness (default -19)",
    )  # fmt: skip
    p.add_argument(
        "--true-peak", type=float, metavar="DBTP", help="mastering: true-peak ceiling (default -3)"
    )
    p.add_argument(
        "--no-master", dest="master", action="store_const", const=False,
        help="store the voice's audio as it is (no loudness levelling, no peak limiting)",
    )  # fmt: skip
    p.add_argument(
        "--lexicon", type=Path, metavar="FILE",
        help="pronunciation lexicon (TOML) of this book, over the user's ~/.config/ebook2audio/lexicon.toml",
    )  # fmt: skip
    p.add_argument(
        "--preset", choices=["acx"],
        help="acx: the package ACX (Audible) asks for: a folder of MP3s, one per chapter, with credits and a retail sample",
    )  # fmt: skip
    _verify_flags(p)
    p.add_argument("--config", type=Path, help="TOML settings file (also EBOOK2AUDIO_CONFIG)")


def _verify_flags(p: argparse.ArgumentParser) -> None:
    """--verify and its settings (docs/verify.md)."""
    p.add_argument(
        "--verify", action="store_const", const=True,
        help="hear every sentence with offline speech recognition and retake the wrong ones",
    )  # fmt: skip
    p.add_argument("--verify-takes", type=int, metavar="N", help="--verify: at most N takes a sentence (default 3)")
    p.add_argument("--verify-max-wer", type=float, metavar="R", help="--verify: word error rate limit (default 0.8)")
    p.add_argument("--verify-max-cer", type=float, metavar="R", help="--verify: character error rate limit (0.4)")
    p.add_argument(
        "--asr-model", metavar="PATH|NAME",
        help="speech-recognition model: a CTranslate2 Whisper folder, tiny.en or base (default: by language)",
    )  # fmt: skip


def _common_flags() -> argparse.ArgumentParser:
    """--debug and --quiet are accepted after the command too (``ebook2audio convert BOOK -q``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    _log_flags(common, default=argparse.SUPPRESS)
    return common


def _log_flags(p: argparse.ArgumentParser, default: Any) -> None:
    p.add_argument(
        "--log-format", choices=["text", "json"], default=default,
        help="text (default) or json: one JSON object per line on stderr (EBOOK2AUDIO_LOG_FORMAT)",
    )  # fmt: skip
    p.add_argument(
        "--log-syslog", metavar="ADDRESS", default=default,
        help="also send each event as RFC 5424 syslog to a unix socket path, udp://host:514 or "
        "tcp://host:601 (EBOOK2AUDIO_LOG_SYSLOG)",
    )  # fmt: skip


class _SubParser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parents", [])
        kwargs["parents"] = [*kwargs["parents"], _common_flags()]
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ebook2audio",
        description="Turn an ebook into a chaptered audiobook with offline neural text-to-speech.",
    )
    parser.add_argument("--version", action="version", version=f"ebook2audio {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar, only errors and the summary"
    )
    _log_flags(parser, default=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_SubParser)

    conv = sub.add_parser("convert", help="convert a book to an audiobook (rerun the same command to resume)")
    conv.add_argument(
        "book", type=Path, help="EPUB, PDF, DOCX, ODT, RTF, MOBI/AZW3, FB2, HTML, Markdown or TXT"
    )
    _convert_flags(conv)
    _distributed_flags(conv)
    add_metrics_flags(conv)

    insp = sub.add_parser("inspect", help="show metadata and chapters with word counts (no synthesis)")
    insp.add_argument("book", type=Path)
    insp.add_argument("--json", action="store_true", help="machine-readable output")

    chk = sub.add_parser(
        "check", help="check an audiobook's loudness, peaks, noise floor, silences and chapters (exit 1: problems)"
    )
    chk.add_argument("audiobook", type=Path, help="an audio file (m4b, mp3, ...); with --preset acx, a package folder or one of its files")
    chk.add_argument("--loudness", type=float, default=-19.0, metavar="LUFS", help="integrated target (default -19)")
    chk.add_argument("--tolerance", type=float, default=1.0, metavar="LU", help="either side of it (default 1)")
    chk.add_argument("--true-peak", type=float, default=-3.0, metavar="DBTP", help="ceiling (default -3)")
    chk.add_argument(
        "--noise-floor", type=float, default=-60.0, metavar="DB", help="the pauses must be quieter (default -60)"
    )
    chk.add_argument("--max-silence", type=float, default=5.0, metavar="S", help="longest silence (default 5)")
    chk.add_argument("--max-lra", type=float, default=15.0, metavar="LU", help="loudness range (default 15)")
    chk.add_argument(
        "--preset", choices=["acx"], help="acx: check a package folder (or one file) against each ACX number"
    )
    chk.add_argument("--json", action="store_true", help="machine-readable output")
    _against_flags(chk)

    voices = sub.add_parser("voices", help="list installed voices by engine and language")
    voices.add_argument("--json", action="store_true")
    vsub = voices.add_subparsers(dest="voices_command", metavar="ACTION")
    dl = vsub.add_parser(
        "download", help="download a Piper voice into the voices directory (needs a network)"
    )
    dl.add_argument("name", help="e.g. en_GB-jenny_dioco-medium or jenny")

    lib = sub.add_parser(
        "library", help="convert every book of a folder tree or Calibre library that has no audiobook yet"
    )
    lib.add_argument("src", type=Path, help="a folder of books, or a Calibre library (the folder of metadata.db)")
    _convert_flags(lib)
    _distributed_flags(lib)
    from .library.cli import add_library_flags

    add_library_flags(lib)

    _add_distributed_commands(sub)
    from .web.serve import add_serve_command  # the web app (fastapi, uvicorn: imported when it runs)

    add_serve_command(sub)
    return parser


def _against_flags(chk: argparse.ArgumentParser) -> None:
    """check --against: each chapter heard by speech recognition and compared with the book (against.py)."""
    chk.add_argument("--against", type=Path, metavar="BOOK", help="compare each chapter's speech with this book")
    chk.add_argument("--chapters", default="", help="--against: the book's chapters converted, e.g. 1-3,7")
    chk.add_argument("-l", "--language", default="", help="--against: the text's language (default: the book's)")
    chk.add_argument("--speed", type=float, default=1.0, help="--against: the speed it was made at (default 1)")
    chk.add_argument("--asr-model", default="", metavar="PATH|NAME", help="speech-recognition model (docs/verify.md)")
    chk.add_argument("--max-wer", type=float, default=0.25, metavar="R", help="--against: per chapter (0.25)")
    chk.add_argument("--max-cer", type=float, default=0.15, metavar="R", help="--against: per chapter (0.15)")


def _check_against(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[str]]:
    """Per chapter results and the problem lines of ``check --against`` (none without it)."""
    if args.against is None:
        return [], []
    from . import asr
    from .against import AgainstLimits, check_against
    from .ingest import read_book
    from .pipeline import select_chapters

    _check_book(args.against)
    book = select_chapters(read_book(args.against), args.chapters)
    language = args.language or book.metadata.language or "en"
    threads = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))
    listener = asr.transcriber(asr.resolve_model(language, args.asr_model), language, threads)
    limits = AgainstLimits(max_wer=args.max_wer, max_cer=args.max_cer, speed=args.speed)
    results, lines = check_against(
        args.audiobook, book, language, limits, lambda pcm, rate: listener.transcribe(asr.to_asr_input(pcm, rate), long=True)
    )
    data = [
        {"chapter": r.number, "title": r.title, "seconds": round(r.seconds, 3), "wer": round(r.wer, 4),
         "cer": round(r.cer, 4), "duration_ratio": round(r.ratio, 3)}
        for r in results
    ]  # fmt: skip
    return data, lines


def _distributed_flags(p: argparse.ArgumentParser) -> None:
    try:
        from .distributed_cli import add_convert_flags
    except ImportError:  # distributed extras not installed
        return
    add_convert_flags(p)


def _add_distributed_commands(sub: Any) -> None:
    try:
        from .distributed_cli import add_commands
    except ImportError:
        return
    add_commands(sub)


def _setup_logging(args: argparse.Namespace, debug: bool) -> None:
    """Text, JSON lines and/or syslog (logging_setup); ConfigError on a bad format or address."""
    role = args.command or "cli"
    if role == "convert" and getattr(args, "distributed", False):
        role = "coordinator"
    opts = log_options(
        args.log_format, args.log_syslog, os.environ, debug=debug, quiet=args.quiet, role=role
    )
    configure_logging(opts, collect_secrets(os.environ, [getattr(args, "redis_url", None)]))


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if v is not None}


def cmd_convert(args: argparse.Namespace) -> int:
    from .interrupts import trap

    # SIGINT/SIGTERM become Interrupted: the pool, the encoders and the temporaries are cleaned up on
    # the way out; an error a signal caused (a killed encoder) is reported as the interrupt it is.
    with trap() as signals:
        try:
            return _convert(args)
        except Ebook2AudioError as exc:
            interrupted = signals.interrupted()
            if interrupted is None:
                raise
            raise interrupted from exc


def _convert(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .pipeline import convert
    from .progress import make_reporter

    port, address, linger = metrics_options(
        args.metrics_port, args.metrics_address, args.metrics_linger, os.environ
    )
    if getattr(args, "distributed", False):
        from .distributed_cli import run_coordinator

        with serve_metrics(port, address, linger) as metrics:
            return run_coordinator(args, metrics)
    settings = load_settings(_flags(args), config_file=args.config)
    _check_book(args.book)
    _check_output_dir(Path(settings.output_dir))
    with serve_metrics(port, address, linger) as metrics:
        reporter = make_reporter(quiet=args.quiet, metrics=metrics)
        try:
            result = convert(args.book, settings, reporter)
        finally:
            reporter.synthesis_finished()  # stops the progress bar, whatever happened
        _summary(reporter, result)
    return 0


def convert_one(args: argparse.Namespace) -> Any:
    """``convert``'s code path for one book (``args.book``), embedded or through the cluster
    (``args.distributed``), its summary printed; the ConvertResult (used by ``library``)."""
    from .config import load_settings
    from .pipeline import convert
    from .progress import make_reporter

    if getattr(args, "distributed", False):
        from .distributed_cli import coordinate

        result, reporter = coordinate(args)
    else:
        settings = load_settings(_flags(args), config_file=args.config)
        _check_book(args.book)
        _check_output_dir(Path(settings.output_dir))
        reporter = make_reporter(quiet=args.quiet)
        try:
            result = convert(args.book, settings, reporter)
        finally:
            reporter.synthesis_finished()
    _summary(reporter, result)
    return result


def _check_book(path: Path) -> None:
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a book")


def _check_output_dir(out: Path) -> None:
    """Fail before any synthesis when the audiobook could not be written there (the final write, after
    hours of work, would fail the same way)."""
    existing = out
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent  # the folder that will hold the ones to create
    if existing.is_symlink() and not existing.exists():
        raise UserError(f"cannot write to {out}: {existing} is a broken link")
    if not existing.is_dir():
        what = "the output directory" if existing == out else "a parent of the output directory"
        raise UserError(f"cannot write to {out}: {existing} ({what}) is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to {out}: {existing} is not writable")


def _summary(reporter: Any, result: Any) -> None:
    for line in result.summary():
        reporter.message(line)


def cmd_library(args: argparse.Namespace) -> int:
    from .library.cli import run_library

    return run_library(args, convert_one, load_flags=_flags, check_output_dir=_check_output_dir)


def cmd_inspect(args: argparse.Namespace) -> int:
    from .ingest import read_book

    _check_book(args.book)
    book = read_book(args.book)
    md = book.metadata
    data = {
        "title": md.title,
        "authors": list(md.authors),
        "language": md.language,
        "publisher": md.publisher,
        "date": md.date,
        "description": md.description,
        "identifiers": list(md.identifiers),
        "format": book.source_format,
        "cover": book.cover is not None,
        "chapters": [
            {"index": i + 1, "title": ch.title, "words": ch.words} for i, ch in enumerate(book.chapters)
        ],
    }
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    print(f"title:    {md.title}")
    print(f"authors:  {', '.join(md.authors)}")
    print(f"language: {md.language}")
    if md.publisher:
        print(f"publisher: {md.publisher}")
    if md.date:
        print(f"date:     {md.date}")
    print(f"format:   {book.source_format}")
    print(f"cover:    {'yes' if book.cover else 'no'}")
    total = sum(ch.words for ch in book.chapters)
    print(f"chapters: {len(book.chapters)} ({total} words)")
    for i, ch in enumerate(book.chapters, 1):
        print(f"  {i:4d}  {ch.words:7d} words  {ch.title}")
    for w in book.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .check import CheckLimits, check_audiobook

    if args.preset:
        from .acx_check import run_check

        return run_check(args.audiobook, as_json=args.json)
    if args.tolerance < 0 or args.max_silence <= 0:
        raise UserError("--tolerance must be 0 or more and --max-silence positive")
    limits = CheckLimits(
        loudness=args.loudness,
        tolerance=args.tolerance,
        true_peak=args.true_peak,
        noise_floor=args.noise_floor,
        max_silence=args.max_silence,
        max_lra=args.max_lra,
    )
    report = check_audiobook(args.audiobook, limits)
    speech, lines = _check_against(args)
    report = replace(report, problems=(*report.problems, *lines))
    if args.json:
        print(json.dumps({**report.to_json(), **({"speech": speech} if speech else {})}, ensure_ascii=False, indent=2))
    else:
        s = report.stats
        print(
            f"{args.audiobook.name}: {s.integrated:.1f} LUFS integrated, LRA {s.lra:.1f} LU, "
            f"true peak {s.true_peak:.1f} dBTP, noise floor {s.noise_floor:.1f} dBFS, "
            f"{len(report.chapters)} chapters"
        )
        for r in speech:
            print(f"chapter {r['chapter']}: word error rate {r['wer']:.1%}, character error rate {r['cer']:.1%}")
        for line in report.problems:
            print(line)
        print("passed" if report.passed else f"failed: {len(report.problems)} problem(s)")
    return 0 if report.passed else 1


def cmd_voices(args: argparse.Namespace) -> int:
    from .engines.registry import download_voice, list_voices

    if args.voices_command == "download":
        path = download_voice(args.name)
        print(f"installed {path}")
        return 0
    warnings: list[str] = []
    entries = list_voices(warnings=warnings)
    for warning in warnings:  # a broken engine plugin: one line each, the other voices still listed
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps([e.__dict__ for e in entries], ensure_ascii=False, indent=2))
        return 0
    order = {"piper": 0, "espeak": 1}
    current = None
    for e in sorted(entries, key=lambda e: (order.get(e.engine, 2), e.engine, e.language, e.name)):
        if e.engine != current:
            current = e.engine
            print(f"{current}:")
        print(f"  {e.language:10s} {e.name}" + (f"  ({e.description})" if e.description else ""))
    return 0


def _exit_code(exc: Ebook2AudioError) -> int:
    """The error's own code, except that an output the system refused to write (no space, no
    permission, a folder in the way) is the user's to fix: 2, like any user error."""
    if isinstance(exc, AssemblyError) and isinstance(exc.__cause__, OSError):
        return UserError.exit_code
    return exc.exit_code


def _error(text: str) -> None:
    """The one-line error on stderr; as a JSON line with --log-format json, and to syslog too."""
    if structured_logging_active():
        log.error("%s", text, extra={"event": "error", SKIP_TEXT_CONSOLE: True})
    if not json_console():
        print(text, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("EBOOK2AUDIO_DEBUG", "") not in ("", "0")
    try:
        _setup_logging(args, debug)
    except Ebook2AudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _exit_code(exc)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    handlers = {"convert": cmd_convert, "inspect": cmd_inspect, "check": cmd_check, "voices": cmd_voices,
                "library": cmd_library}  # fmt: skip
    handler = handlers.get(args.command) or getattr(args, "handler", None)
    try:
        return int(handler(args) or 0)  # type: ignore[misc]
    except Ebook2AudioError as exc:
        if debug:
            traceback.print_exc()
        _error(f"error: {exc}")
        return _exit_code(exc)
    except KeyboardInterrupt as exc:  # Interrupted (SIGINT/SIGTERM) from convert, or Ctrl-C elsewhere
        from .interrupts import Interrupted

        interrupted = exc if isinstance(exc, Interrupted) else Interrupted()
        _error(interrupted.message())
        return interrupted.exit_code
    except BrokenPipeError:
        return 1
    except Exception as exc:  # an unexpected bug: still one line unless --debug
        if debug:
            traceback.print_exc()
        _error(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for details)")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
