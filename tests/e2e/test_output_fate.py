"""What becomes of the output: safe names, finished books skipped, and interrupts that keep the work
and leave no temporaries (the real CLI in a subprocess)."""

from __future__ import annotations

import os
import random
import re
import resource
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest

from ebook2audio.audio.assemble import probe
from ebook2audio.scratch import LOCK_NAME, STALE_AFTER

from .helpers import cli_env, run_cli

pytestmark = pytest.mark.slow

FAST_SIM = {"EBOOK2AUDIO_SIM_MS_PER_CHAR": "0"}
WORDS = ["lamp", "sea", "storm", "keeper", "light", "tower", "rock", "wave", "night", "ship", "sail", "wind", "rain", "gull", "stone", "door", "stair"]


def _book(path: Path, title: str, chapters: int = 2, paragraphs: int = 1, seed: int = 1) -> Path:
    rnd = random.Random(seed)
    lines = [f"Title: {title}", "Author: Ann Tester", "Language: English", "", ""]
    for c in range(1, chapters + 1):
        lines.append(f"CHAPTER {c}. Part {c}\n")
        for _ in range(paragraphs):
            sentences = [" ".join(rnd.choice(WORDS) for _ in range(10)).capitalize() + "." for _ in range(4)]
            lines.append(" ".join(sentences) + "\n")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def _work(tmp: Path) -> Path:
    return tmp / "cache" / "ebook2audio" / "jobs"


def _scratch_entries(tmp: Path) -> list[Path]:
    root = _work(tmp) / ".tmp"
    return sorted(root.rglob("*")) if root.exists() else []


def test_a_long_japanese_title_and_a_bidi_control_give_valid_short_names(tmp_path: Path) -> None:
    title = "吾輩は猫である名前はまだ無い" * 22  # 308 characters, 924 UTF-8 bytes
    book = _book(tmp_path / "jp.txt", title)
    r = run_cli(["convert", str(book), "-o", "out", "--engine", "sim", "-q"], tmp_path, **FAST_SIM)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert [Path(n).suffix for n in names] == [".m4b", ".srt", ".vtt"]
    stem = Path(names[0]).stem
    assert 190 < len(stem.encode("utf-8")) <= 200
    assert f"Ann Tester - {title}".startswith(stem)
    assert probe(tmp_path / "out" / names[0]).tags["title"] == title  # the tag keeps the whole title

    evil = _book(tmp_path / "evil.txt", "Invoice\u202egpj.exe\u2066 final\u200f")
    r = run_cli(["convert", str(evil), "-o", "out2", "--engine", "sim", "-q"], tmp_path, **FAST_SIM)
    assert r.returncode == 0, r.stderr
    out = sorted(p.name for p in (tmp_path / "out2").iterdir())
    assert out[0] == "Ann Tester - Invoicegpj.exe final.m4b"
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") for name in out for ch in name)


def test_a_finished_book_is_skipped_overwrite_redoes_it_other_settings_are_refused(tmp_path: Path) -> None:
    book = _book(tmp_path / "book.txt", "Gull Rock")
    args = ["convert", str(book), "-o", "out", "--engine", "sim", "-f", "mp3"]
    r = run_cli(args, tmp_path, **FAST_SIM)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out" / "Ann Tester - Gull Rock.mp3"
    first = out.stat()
    work_before = _tree(tmp_path / "cache")

    walls, cpus = [], []
    for _ in range(3):
        t0, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
        r = run_cli(args, tmp_path, **FAST_SIM)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        walls.append(time.monotonic() - t0)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        assert r.returncode == 0, r.stderr
        assert f"already converted: out/{out.name}" in r.stderr
        assert "synthesising" not in r.stderr and "session" not in r.stderr
    assert max(cpus) < 2.0, cpus  # the CLI's own work, whatever else the machine runs
    if os.getloadavg()[0] < 1.5 * (os.cpu_count() or 1):  # wall time means something only then
        assert min(walls) < 2.0, walls
    assert _tree(tmp_path / "cache") == work_before  # no plan written, nothing synthesised
    assert out.stat().st_mtime_ns == first.st_mtime_ns and out.stat().st_ino == first.st_ino

    # other settings: refused before any synthesis, the file untouched
    r = run_cli([*args, "--speed", "1.5"], tmp_path, **FAST_SIM)
    assert r.returncode == 2
    error = r.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and "--overwrite" in error and "--output-name" in error
    assert "Traceback" not in r.stderr and "synthesising" not in r.stderr
    assert out.stat().st_ino == first.st_ino and _tree(tmp_path / "cache") == work_before

    # ... unless to another name, or with --overwrite
    r = run_cli([*args, "--speed", "1.5", "--output-name", "fast"], tmp_path, **FAST_SIM)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "fast.mp3").is_file()
    r = run_cli([*args, "--speed", "1.5", "--overwrite"], tmp_path, **FAST_SIM)
    assert r.returncode == 0, r.stderr
    assert f"wrote out/{out.name}" in r.stderr and out.stat().st_ino != first.st_ino
    # the environment variable works too, and the rewritten file is now the finished one
    r = run_cli([*args, "--speed", "1.5"], tmp_path, EBOOK2AUDIO_OVERWRITE="1", **FAST_SIM)
    assert r.returncode == 0 and "synthesising" in r.stderr, r.stderr
    r = run_cli([*args, "--speed", "1.5"], tmp_path, **FAST_SIM)
    assert r.returncode == 0 and "already converted" in r.stderr, r.stderr


def _popen(args: list[str], tmp: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ebook2audio", *args],
        env=cli_env(tmp, **env),
        cwd=tmp,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _group_gone(pgid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(
    ("workers", "sig", "code"),
    [("2", signal.SIGTERM, 143), ("1", signal.SIGINT, 130)],  # the process pool; synthesis in the CLI itself
)
def test_a_signal_mid_run_stops_cleanly_and_the_rerun_resumes(
    tmp_path: Path, workers: str, sig: int, code: int
) -> None:
    book = _book(tmp_path / "book.txt", "The Long Watch", chapters=2, paragraphs=3)
    args = ["convert", str(book), "-o", "out", "--engine", "espeak", "-w", workers, "--batch-chars", "150", "-q"]
    proc = _popen(args, tmp_path)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(_work(tmp_path).rglob("*.flac"))) < 3:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    proc.send_signal(sig)  # to the CLI only, as `kill PID` or a service manager does
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    m = re.search(r"^interrupted: (\d+) of (\d+) sentences kept; rerun the same command to resume$", err, re.M)
    assert m, err
    kept, total = int(m.group(1)), int(m.group(2))
    assert 3 <= kept < total
    assert "Traceback" not in err and "error" not in err
    assert _group_gone(proc.pid), "a pool process outlived the interrupted CLI"
    out = tmp_path / "out"
    assert not out.exists() or list(out.iterdir()) == []  # no hidden temporaries, no partial book
    assert [p.name for p in _scratch_entries(tmp_path)] == []
    assert len(list(_work(tmp_path).rglob("*.flac"))) == kept

    r = run_cli(args, tmp_path)
    assert r.returncode == 0, r.stderr
    m = re.search(r"\((\d+) synthesised, (\d+) resumed\)", r.stderr)
    assert m, r.stderr
    assert int(m.group(2)) == kept and int(m.group(1)) == total - kept
    assert sorted(p.name for p in out.iterdir()) == [f"Ann Tester - The Long Watch.{x}" for x in ("m4b", "srt", "vtt")]


def test_sigkill_mid_assembly_then_rerun_leaves_no_temporaries(tmp_path: Path) -> None:
    book = _book(tmp_path / "book.txt", "Assembly", chapters=4, paragraphs=6)
    args = ["convert", str(book), "-o", "out", "--engine", "sim", "-w", "2", "--encode-jobs", "2", "--keep-work"]
    r = run_cli(args, tmp_path, **FAST_SIM)  # every chunk synthesised and kept: the next run only assembles
    assert r.returncode == 0, r.stderr
    proc = _popen([*args, "--overwrite"], tmp_path, **FAST_SIM)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(
        p.is_file() and p.name != ".lock" for p in _scratch_entries(tmp_path)
    ):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its ffmpeg encoders, all at once
    proc.wait()
    assert any(p.is_file() and p.name != ".lock" for p in _scratch_entries(tmp_path))  # left behind
    out = tmp_path / "out"
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"Ann Tester - Assembly.{x}" for x in ("m4b", "srt", "vtt")]  # nothing hidden there

    # Ten seconds on: the killed run's lock is older than scratch.STALE_AFTER (a lock this old and free
    # is a dead run's; a younger one may belong to a run about to lock it). Aged, not waited for.
    old = time.time() - STALE_AFTER - 1
    for lock in [p for p in _scratch_entries(tmp_path) if p.name == LOCK_NAME]:
        os.utime(lock, (old, old))
    r = run_cli([*args, "--overwrite"], tmp_path, **FAST_SIM)
    assert r.returncode == 0, r.stderr
    assert _scratch_entries(tmp_path) == []
    assert sorted(p.name for p in out.iterdir()) == names
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.name.endswith((".part.m4b", ".aac", ".tmp"))]
    assert [p for p in leftovers if p.is_file()] == []
