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

The guide's ``--voice jenny --language fr``: ``jenny`` is an English Piper voice, so the book is read by
the French voice instead, said in one line (:func:`guide_voice`). Run in the compose file's coordinator
container, the command's output is also copied to the container's log (``EBOOK2AUDIO_LOG_MIRROR``).

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


def guide_voice(voice: str | None, language: str | None, notes: list[str] | None = None) -> str | None:
    """The ``--voice`` to pass for the guide's ``--voice NAME --language L``.

    The guide's voice names are short aliases of Piper voices (``jenny`` = en_GB-jenny_dioco-medium,
    an English voice). An alias whose voice does not speak ``L`` (the guide's ``--voice jenny
    --language fr``) is dropped: the book is read by the language's own voice (an installed Piper
    voice of L, else L's default Piper voice, fetched on first use: fr_FR-siwis-medium for French),
    and ``notes`` gets one line saying so. Full voice names and .onnx paths are always kept.
    """
    if not voice or not language:
        return voice
    from ebook2audio.engines._common import primary_language
    from ebook2audio.engines.registry import VOICE_ALIASES, default_piper_voice

    name = VOICE_ALIASES.get(voice.strip().lower())
    if name is None or primary_language(name.split("-")[0].replace("_", "-")) == primary_language(language):
        return voice
    default = default_piper_voice(language)
    instead = f"the {language} voice ({default} unless another is installed)" if default else "espeak-ng"
    if notes is not None:
        notes.append(
            f"note: --voice {voice} is {name}, which does not speak {language}: the book is read by "
            f"{instead}; give --voice {name} to keep it anyway"
        )
    return None


def translate(
    argv: Sequence[str], env: Mapping[str, str] | None = None, notes: list[str] | None = None
) -> list[str]:
    """The ``ebook2audio`` arguments for the guide's ``app.py`` arguments (``notes``: lines to print).

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
    voice = guide_voice(a.voice, a.language, notes)
    for flag, value in (
        ("--num-workers", a.num_workers),
        ("--voice", voice),
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
    notes: list[str] = []
    try:
        args = translate(sys.argv[1:] if argv is None else argv, notes=notes)
    except AppUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in notes:
        print(line, file=sys.stderr)
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror and os.getpid() != 1:
        return run_mirrored(args, mirror, notes)
    from ebook2audio.cli import main as cli_main

    return cli_main(args)


# --------------------------------------------------------------------------- docker logs
#
# In the coordinator container, `docker exec ... python app.py ...` is a second process: what it prints
# reaches the `docker exec` terminal, not the container's log. With EBOOK2AUDIO_LOG_MIRROR set (the
# compose file sets /proc/1/fd/2, the stderr of the container's main process), app.py runs the
# command as a child and copies each line it prints to that file too, so `docker logs -f` shows it.

MIRROR_ENV = "EBOOK2AUDIO_LOG_MIRROR"


def run_mirrored(args: list[str], mirror_path: str, notes: Sequence[str] = ()) -> int:
    """Run ``ebook2audio ARGS`` as a child; its output goes to ours and to ``mirror_path``. Its exit code."""
    import contextlib
    import signal
    import subprocess
    import threading

    try:
        mirror = open(mirror_path, "ab", buffering=0)  # noqa: SIM115 - closed below
    except OSError as exc:
        print(
            f"warning: cannot copy the log to {mirror_path} ({exc.strerror or exc}): not mirrored",
            file=sys.stderr,
        )
        from ebook2audio.cli import main as cli_main

        return cli_main(args)
    lock = threading.Lock()

    def copy(src: object, dst: object) -> None:
        for line in iter(src.readline, b""):  # type: ignore[attr-defined]
            with contextlib.suppress(OSError):  # a closed terminal or log: the command goes on
                dst.write(line)  # type: ignore[attr-defined]
                dst.flush()  # type: ignore[attr-defined]
            with lock, contextlib.suppress(OSError):
                mirror.write(line)

    with lock:
        for line in notes:
            mirror.write(f"{line}\n".encode())
    # Its own session: a terminal's Ctrl-C reaches only us, and we pass exactly one signal on.
    child = subprocess.Popen(
        [sys.executable, "-m", "ebook2audio", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    threads = [
        threading.Thread(target=copy, args=(child.stdout, sys.stdout.buffer), daemon=True),
        threading.Thread(target=copy, args=(child.stderr, sys.stderr.buffer), daemon=True),
    ]
    for t in threads:
        t.start()
    code = child.wait()
    for t in threads:
        t.join(timeout=5)
    mirror.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
