"""Any other ebook format (LIT, LRF, PDB, CBZ with text, SNB, TCR, ...) through Calibre's ``ebook-convert``.

When ``ebook-convert`` is on PATH, the book is converted to EPUB in a private temporary directory (which
is always removed) and read by the EPUB reader. Without Calibre the format is refused with a message
that names it and says what to install. This module is the only place that runs Calibre.

Public API:
    read_with_calibre(path, timeout=...) -> Book
    convert_command(executable, source, target) -> list[str]
    calibre_executable() -> str | None
    format_name(path) -> str
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from ..errors import BookError, UnsupportedFormatError
from ..model import Book

__all__ = ["calibre_executable", "convert_command", "format_name", "read_with_calibre"]

log = logging.getLogger(__name__)

EXECUTABLE = "ebook-convert"
DEFAULT_TIMEOUT_S = 600.0
MAX_EPUB_BYTES = 512 * 1024 * 1024

# Extensions Calibre reads that have no reader of their own here, with the name users know them by.
FORMAT_NAMES = {
    ".lit": "LIT", ".lrf": "LRF", ".pdb": "PDB (eReader/Palm)", ".pml": "PML", ".cbz": "CBZ",
    ".cbr": "CBR", ".cb7": "CB7", ".cbc": "CBC", ".snb": "SNB", ".tcr": "TCR", ".rb": "RB (Rocket eBook)",
    ".djvu": "DjVu", ".djv": "DjVu", ".chm": "CHM", ".htmlz": "HTMLZ", ".txtz": "TXTZ", ".lrx": "LRX",
    ".oeb": "OEB", ".opf": "OPF", ".pmlz": "PMLZ", ".recipe": "recipe", ".docm": "DOCM", ".odp": "ODP",
}  # fmt: skip


def format_name(path: Path) -> str:
    """The user-facing name of a book's format, from its extension ("LIT", "PDB (eReader/Palm)")."""
    suffix = Path(path).suffix.lower()
    return FORMAT_NAMES.get(suffix) or (suffix[1:].upper() if suffix else "this")


def calibre_executable() -> str | None:
    return shutil.which(EXECUTABLE)


def convert_command(executable: str, source: Path, target: Path) -> list[str]:
    """The ``ebook-convert`` command line: input and output paths, nothing interactive."""
    return [executable, str(source), str(target)]


def read_with_calibre(path: Path, *, timeout: float = DEFAULT_TIMEOUT_S) -> Book:
    """Convert a book with Calibre to EPUB and read that; UnsupportedFormatError without Calibre."""
    path = Path(path)
    name = format_name(path)
    executable = calibre_executable()
    if executable is None:
        raise UnsupportedFormatError(
            f"{path.name}: {name} books are not read directly; install Calibre (ebook-convert) to read it"
        )
    from .epub import read_epub

    with tempfile.TemporaryDirectory(prefix="ebook2audio-calibre-") as tmp:
        target = Path(tmp) / "book.epub"
        _run(convert_command(executable, path.resolve(), target), path, timeout, Path(tmp))
        if not target.is_file() or target.stat().st_size == 0:
            raise BookError(f"{EXECUTABLE} did not produce an EPUB from {path.name}")
        if target.stat().st_size > MAX_EPUB_BYTES:
            raise BookError(f"{EXECUTABLE} produced an oversized EPUB from {path.name}")
        book = read_epub(target)
    fmt = Path(path).suffix.lower().lstrip(".") or "calibre"
    return dataclasses.replace(
        book, source_format=fmt, warnings=(*book.warnings, f"converted from {name} with Calibre")
    )


def _run(command: list[str], path: Path, timeout: float, cwd: Path) -> None:
    log.debug("running %s", command)
    try:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that a timeout ends its children too
        )
    except OSError as exc:
        raise BookError(f"cannot run {EXECUTABLE}: {exc.strerror or exc}") from exc
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise BookError(f"{EXECUTABLE} took longer than {timeout:.0f} s on {path.name}; gave up") from exc
    if proc.returncode != 0:
        lines = [ln.strip() for ln in output.decode("utf-8", errors="replace").splitlines() if ln.strip()]
        last = lines[-1] if lines else "no output"
        raise BookError(f"{EXECUTABLE} failed on {path.name} (exit {proc.returncode}): {last[:200]}")
