"""The distributed guide's command line (``python app.py ...``), mapped onto the ``ebook2audio`` CLI.

    python app.py --worker-mode
        -> ebook2audio worker                      (REDIS_URL, CELERY_WORKER_CONCURRENCY, ... from the
                                                    environment; CUDA_VISIBLE_DEVICES set -> --device cuda)
    python app.py --distributed --num-workers 2 --ebook input/livre.epub --voice jenny --language fr \\
        --script_mode headless --redis-url redis://:pw@localhost:6379/0
        -> ebook2audio convert input/livre.epub --distributed --num-workers 2 --voice jenny --language fr \\
           --redis-url redis://:pw@localhost:6379/0
    python app.py --ebook input/livre.epub --voice jenny
        -> ebook2audio convert input/livre.epub --voice jenny        (embedded: this machine only)
    python app.py [--distributed] [--host 0.0.0.0] [--port 7860]    (no --ebook, no --script_mode headless)
        -> ebook2audio serve ...                    (the web app, as ebook2audiobook opens its interface)

Both spellings of each flag work (``--output_dir`` and ``--output-dir``). ``--script_mode headless``
converts the ``--ebook`` (nothing ever prompts); any other mode, or no mode and no ``--ebook``,
starts the web app (docs/web.md).
Prefer the ``ebook2audio`` command itself: ``ebook2audio --help``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

HEADLESS_MODES = ("headless",)


class AppUsageError(Exception):
    """A guide flag that has no meaning here (exit code 2, one line)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="app.py",
        description="The distributed guide's command line; runs `ebook2audio convert` or `ebook2audio worker`.",
        allow_abbrev=False,
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--worker-mode", "--worker_mode", action="store_true", help="run a worker (ebook2audio worker)"
    )
    mode.add_argument("--distributed", action="store_true", help="convert through Redis workers")
    p.add_argument("--ebook", help="the book to convert")
    p.add_argument("--num-workers", "--num_workers", type=int, help="workers to wait for (distributed)")
    p.add_argument("--redis-url", "--redis_url", help="Redis broker URL (default REDIS_URL)")
    p.add_argument("--voice", help="voice name, alias (joe, jenny) or .onnx path")
    p.add_argument("--language", help="language of the book, e.g. fr")
    p.add_argument("--device", help="cpu, auto, cuda or cuda:N")
    p.add_argument("--output-dir", "--output_dir", help="directory for the audiobook")
    p.add_argument("--output-format", "--output_format", help="m4b (default), mp3, opus, ...")
    p.add_argument("--session", help="job id to resume")
    p.add_argument("--tts-engine", "--tts_engine", help="piper (default), espeak or sim")
    p.add_argument("--speed", help="speaking rate, 1.0 = the voice's own")
    p.add_argument(
        "--concurrency", type=int, help="worker processes (worker mode; CELERY_WORKER_CONCURRENCY)"
    )
    p.add_argument(
        "--script-mode",
        "--script_mode",
        help="headless: convert --ebook; any other mode (or none, without --ebook): the web app",
    )
    p.add_argument("--host", help="web app: address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="web app: port (default 7860)")
    return p


def _serve(a: argparse.Namespace) -> list[str]:
    """The web app's command for ``app.py`` without a headless conversion."""
    if a.ebook:
        raise AppUsageError("--ebook needs --script_mode headless (the web app takes its books from the page)")
    for flag, value in (("--voice", a.voice), ("--language", a.language), ("--device", a.device),
                        ("--output_format", a.output_format), ("--session", a.session),
                        ("--tts_engine", a.tts_engine), ("--speed", a.speed),
                        ("--concurrency", a.concurrency)):  # fmt: skip
        if value is not None:
            raise AppUsageError(f"{flag} belongs to --script_mode headless: the web app's page chooses it")
    out = ["serve"]
    if a.distributed:
        out.append("--distributed")
    for flag, value in (("--host", a.host), ("--port", a.port), ("--output-dir", a.output_dir),
                        ("--num-workers", a.num_workers), ("--redis-url", a.redis_url)):  # fmt: skip
        if value is not None:
            out += [flag, str(value)]
    return out


def translate(argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """The ``ebook2audio`` arguments for the guide's ``app.py`` arguments.

    Raises SystemExit(2) for unknown flags (argparse) and AppUsageError for flags that make no sense here.
    """
    env = os.environ if env is None else env
    a = _parser().parse_args(list(argv))
    if not a.worker_mode and (a.script_mode not in (None, *HEADLESS_MODES) or (a.script_mode is None and not a.ebook)):
        return _serve(a)
    if a.host is not None or a.port is not None:
        raise AppUsageError("--host and --port belong to the web app (no --script_mode headless)")
    if a.worker_mode:
        for flag, value in (("--ebook", a.ebook), ("--num-workers", a.num_workers), ("--voice", a.voice),
                            ("--language", a.language), ("--output_dir", a.output_dir),
                            ("--output_format", a.output_format), ("--session", a.session),
                            ("--tts_engine", a.tts_engine), ("--speed", a.speed)):  # fmt: skip
            if value is not None:
                raise AppUsageError(f"{flag} belongs to the coordinator, not to --worker-mode")
        out = ["worker"]
        if a.redis_url:
            out += ["--redis-url", a.redis_url]
        device = a.device
        if device is None and env.get("CUDA_VISIBLE_DEVICES", "").strip() not in ("", "-1"):
            device = "cuda"  # the guide picks the GPU with CUDA_VISIBLE_DEVICES: use it, never fall back
        if device:
            out += ["--device", device]
        if a.concurrency is not None:
            out += ["--concurrency", str(a.concurrency)]
        return out
    if not a.ebook:
        raise AppUsageError("give --ebook PATH to convert a book, or --worker-mode to run a worker")
    if a.concurrency is not None:
        raise AppUsageError("--concurrency belongs to --worker-mode")
    out = ["convert", a.ebook]
    if a.distributed:
        out.append("--distributed")
    for flag, value in (
        ("--num-workers", a.num_workers),
        ("--voice", a.voice),
        ("--language", a.language),
        ("--device", a.device),
        ("--output-dir", a.output_dir),
        ("--format", a.output_format),
        ("--session", a.session),
        ("--engine", a.tts_engine),
        ("--speed", a.speed),
        ("--redis-url", a.redis_url),
    ):
        if value is not None:
            out += [flag, str(value)]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = translate(sys.argv[1:] if argv is None else argv)
    except AppUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from ebook2audio.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
