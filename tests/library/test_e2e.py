"""``ebook2audio library`` end to end: the real CLI in a subprocess, outputs read back with ffprobe."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import cli_env, run_cli

from .books import CalibreBook, calibre_library, epub, jpeg, txt

pytestmark = pytest.mark.slow
SIM = ["--engine", "sim", "-w", "1", "--encode-jobs", "1", "-q"]
FAST = {"EBOOK2AUDIO_SIM_MS_PER_CHAR": "0"}


def ffprobe_chapters(path: Path) -> list[str]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_chapters", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [c["tags"]["title"] for c in json.loads(out)["chapters"]]


def chapters(n: int, word: str) -> list[tuple[str, str]]:
    return [
        (f"Chapter {i + 1}", f"The {word} number {i + 1} waits by the sea. It is calm.") for i in range(n)
    ]


def audiobooks(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*.m4b"))


def test_folder_tree_converts_only_what_is_new(tmp_path: Path) -> None:
    src, out = tmp_path / "books", tmp_path / "out"
    red = jpeg(tmp_path / "red.jpg")
    epub(src / "one.epub", "First Light", "Ann Author", chapters(2, "lamp"), cover=red)
    txt(src / "notes" / "two.txt", "Second Wind", "Bob Writer", chapters(1, "kite"))
    r = run_cli(["library", str(src), "-o", str(out), *SIM], tmp_path, **FAST)
    assert r.returncode == 0, r.stderr
    assert "library: 2 converted, 0 already converted, 0 failed" in r.stderr

    blue = jpeg(tmp_path / "blue.jpg", "blue")
    epub(src / "shelf" / "three.epub", "Third Door", "Ann Author", chapters(3, "door"), cover=blue)
    txt(src / "shelf" / "deep" / "four.txt", "Fourth Step", "Cy Poet", chapters(2, "step"))
    epub(src / "five.epub", "Fifth Ring", "Dee Smith", chapters(1, "ring"))
    txt(src / "six.txt", "Sixth Sense", "Eve One and Fay Two", chapters(1, "sense"))
    (src / "cover.jpg").write_bytes(red)  # not a book: ignored
    r = run_cli(["library", str(src), "-o", str(out), *SIM], tmp_path, **FAST)
    assert r.returncode == 0, r.stderr
    assert "library: 4 converted, 2 already converted, 0 failed" in r.stderr
    assert audiobooks(out) == [
        "Ann Author/First Light/First Light.m4b",
        "Ann Author/Third Door/Third Door.m4b",
        "Bob Writer/Second Wind/Second Wind.m4b",
        "Cy Poet/Fourth Step/Fourth Step.m4b",
        "Dee Smith/Fifth Ring/Fifth Ring.m4b",
        "Eve One & Fay Two/Sixth Sense/Sixth Sense.m4b",
    ]
    third = out / "Ann Author" / "Third Door"
    assert ffprobe_chapters(third / "Third Door.m4b") == ["Chapter 1", "Chapter 2", "Chapter 3"]
    meta = json.loads((third / "metadata.json").read_text(encoding="utf-8"))
    assert meta["title"] == "Third Door" and meta["authors"] == ["Ann Author"] and meta["series"] == []
    assert [c["title"] for c in meta["chapters"]] == ["Chapter 1", "Chapter 2", "Chapter 3"]
    assert meta["chapters"][0]["start"] == 0 and meta["chapters"][-1]["end"] > meta["chapters"][-1]["start"]
    assert (third / "cover.jpg").read_bytes() == blue  # the book's own cover
    assert not (out / "Dee Smith" / "Fifth Ring" / "cover.jpg").exists()  # no cover in the book
    sixth = json.loads((out / "Eve One & Fay Two" / "Sixth Sense" / "metadata.json").read_text())
    assert sixth["authors"] == ["Eve One", "Fay Two"]
    assert (third / "Third Door.srt").is_file()

    # Rerun: nothing converted, nothing rewritten.
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    r = run_cli(["library", str(src), "-o", str(out), *SIM], tmp_path, **FAST)
    assert r.returncode == 0, r.stderr
    assert "library: 0 converted, 6 already converted, 0 failed" in r.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps

    # A damaged book is one line; the others are still skipped; exit 1. --dry-run lists the new book.
    (src / "broken.epub").write_bytes(b"PK\x03\x04 this is not a zip")
    txt(src / "seven.txt", "Seventh Day", "Gil Late", chapters(1, "day"))
    r = run_cli(["library", str(src), "-o", str(out), "--dry-run", *SIM], tmp_path, **FAST)
    assert r.returncode == 1, r.stderr
    assert r.stdout.strip() == f"{src / 'seven.txt'} -> {out / 'Gil Late' / 'Seventh Day' / 'Seventh Day'}"
    assert "library: 1 to convert, 6 already converted, 1 unreadable" in r.stderr
    failed = [line for line in r.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "broken.epub" in failed[0], r.stderr
    assert "Traceback" not in r.stderr
    assert audiobooks(out) == sorted(stamps_m4b(stamps, out))


def stamps_m4b(stamps: dict[Path, int], out: Path) -> list[str]:
    return [p.relative_to(out).as_posix() for p in stamps if p.suffix == ".m4b"]


def test_calibre_library_with_the_real_voice(tmp_path: Path) -> None:
    cover = jpeg(tmp_path / "cover.jpg", "green")
    series_epub = epub(tmp_path / "s.epub", "The Second Tide", "Ann Author", [("Dawn", "The tide came in.")])
    lone_txt = txt(tmp_path / "l.txt", "A Lone Hill", "Bob Writer", [("Noon", "The hill was quiet.")])
    lib = calibre_library(
        tmp_path / "Calibre Library",
        [
            CalibreBook("The Second Tide", ("Ann Author",), {"EPUB": series_epub.read_bytes(), "TXT": b"Other."},
                        series="Tides", series_index=2.0, cover=cover, comment="Waves and more."),
            CalibreBook("A Lone Hill", ("Bob Writer",), {"TXT": lone_txt.read_bytes()}),
        ],
    )  # fmt: skip
    out = tmp_path / "audiobooks"
    r = run_cli(["library", str(lib), "-o", str(out), "-w", "1", "--encode-jobs", "1", "-q"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "library: 2 converted" in r.stderr
    item = out / "Ann Author" / "Tides" / "Vol 2 - The Second Tide"
    assert audiobooks(out) == [
        "Ann Author/Tides/Vol 2 - The Second Tide/The Second Tide.m4b",
        "Bob Writer/A Lone Hill/A Lone Hill.m4b",
    ]
    meta = json.loads((item / "metadata.json").read_text(encoding="utf-8"))
    assert meta["series"] == ["Tides #2"] and meta["description"] == "Waves and more."
    assert meta["narrators"] == ["en_US-joe-medium"] and meta["publishedYear"] == "2019"
    assert (item / "cover.jpg").read_bytes() == cover  # Calibre's cover.jpg
    assert ffprobe_chapters(item / "The Second Tide.m4b") == ["Dawn"]
    assert not (out / "Bob Writer" / "A Lone Hill" / "cover.jpg").exists()


def test_watch_picks_up_a_book_added_later(tmp_path: Path) -> None:
    src, out = tmp_path / "books", tmp_path / "out"
    txt(src / "one.txt", "Early Bird", "Ann Author", chapters(1, "bird"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ebook2audio", "library", str(src), "-o", str(out), "--watch", "0.5", *SIM],
        env=cli_env(tmp_path, **FAST), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        first = out / "Ann Author" / "Early Bird" / "metadata.json"
        second = out / "Bob Writer" / "Late Comer" / "metadata.json"
        wait_for(first, proc)
        txt(src / "later" / "two.txt", "Late Comer", "Bob Writer", chapters(2, "comer"))
        wait_for(second, proc)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped watching" in err
    assert "library: 2 converted, 0 already converted, 0 failed" in err
    assert ffprobe_chapters(out / "Bob Writer" / "Late Comer" / "Late Comer.m4b") == [
        "Chapter 1",
        "Chapter 2",
    ]


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def test_bad_arguments_are_one_line(tmp_path: Path) -> None:
    r = run_cli(["library", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o")], tmp_path)
    assert r.returncode == 2 and r.stderr.strip().endswith(
        "not a folder (give a folder of books or a Calibre library)"
    )
    r = run_cli(["library", str(tmp_path), "--output-name", "x"], tmp_path)
    assert r.returncode == 2 and "--output-name" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(["library", str(tmp_path), "--watch", "--dry-run"], tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--watch" in r.stderr
    r = run_cli(["library", str(tmp_path), "--json"], tmp_path)
    assert r.returncode == 2 and r.stderr.strip() == "error: --json lists the books of --dry-run: add --dry-run"
    (tmp_path / "books").mkdir()
    outside = txt(tmp_path / "elsewhere.txt", "Far", "Nobody", chapters(1, "far"))
    r = run_cli(["library", str(tmp_path / "books"), "-o", str(tmp_path / "o"), "--only", str(outside)], tmp_path)
    assert r.returncode == 2 and r.stderr.strip().endswith(f"{outside}: not a book of the library {tmp_path / 'books'}")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "metadata.db").write_bytes(b"not a database" * 100)
    r = run_cli(["library", str(tmp_path / "lib"), "-o", str(tmp_path / "o")], tmp_path)
    assert r.returncode == 2 and "Calibre library" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_interrupt_then_rerun_redoes_nothing(tmp_path: Path) -> None:
    src, out = tmp_path / "books", tmp_path / "out"
    txt(src / "a.txt", "Quick One", "Ann Author", chapters(1, "one"))
    slow = txt(src / "b.txt", "Slow Two", "Bob Writer", chapters(6, "two"))
    session = hashlib.sha256(slow.read_bytes()).hexdigest()[:16]
    work = tmp_path / "cache" / "ebook2audio" / "jobs" / session
    args = ["library", str(src), "-o", str(out), *SIM]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ebook2audio", *args], env=cli_env(tmp_path, EBOOK2AUDIO_SIM_MS_PER_CHAR="8"),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while len(list(work.rglob("*.flac"))) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "library: 1 converted, 0 already converted, 0 failed" in err
    assert "interrupted:" in err and "Traceback" not in err
    r = run_cli(args, tmp_path, **FAST)
    assert r.returncode == 0, r.stderr
    assert "library: 1 converted, 1 already converted, 0 failed" in r.stderr
    resumed = re.search(r"\((\d+) synthesised, (\d+) resumed\)", r.stderr)
    assert resumed and int(resumed.group(2)) >= 2, r.stderr
