"""A sentence that kills its synthesis process (SIGSEGV), in the embedded mode, through the real CLI.

The sim engine crashes on a marked sentence (EBOOK2AUDIO_SIM_CRASH_ON); the real voice (Piper joe) is
made to crash by a ``sitecustomize`` wrapper loaded into every process of the run. The run must end in
bounded time with every other sentence spoken by the main voice, the poison one by espeak-ng, and the
summary and the report naming it; ``--strict`` stops instead (exit 2, one line, work kept).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from ebook2audio.audio.assemble import probe
from ebook2audio.audio.flac import decode_flac
from ebook2audio.engines.sim import SECONDS_PER_CHAR

from .helpers import read_srt, run_cli

pytestmark = pytest.mark.slow

MARK = "Zanzibar"
POISON = f"The {MARK} lantern glows at the harbour."


def write_book(path: Path, chapters: int = 3, paragraphs: int = 3) -> Path:
    """A plain-text book with the poison sentence in the middle of chapter 2."""
    parts = []
    for c in range(chapters):
        parts.append(f"CHAPTER {c + 1}")
        for p in range(paragraphs):
            sentences = [f"Paragraph {p + 1} of chapter {c + 1} tells tale number {s + 1} of the sea." for s in range(3)]
            if (c, p) == (1, 1):
                sentences.insert(2, POISON)
            parts.append(" ".join(sentences))
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


def _job(tmp_path: Path) -> tuple[Path, dict]:
    (plan_path,) = (tmp_path / "cache" / "ebook2audio" / "jobs").glob("*/plans/*.json")
    return plan_path.parent.parent, json.loads(plan_path.read_text())


def _wav_samples(job: Path, chunk_id: str) -> tuple[int, bytes]:
    """A stored chunk's sample count and PCM (FLAC, or the 44-byte WAV of an empty chunk)."""
    folder = job / "chunks" / chunk_id[:2]
    flac = folder / f"{chunk_id}.flac"
    if flac.is_file():
        _rate, pcm = decode_flac(flac.read_bytes())
        return len(pcm) // 2, pcm
    data = (folder / f"{chunk_id}.wav").read_bytes()
    return (len(data) - 44) // 2, data[44:]


def _check_report(out: Path, replacement: str, chapter: int = 2) -> dict:
    (report,) = out.glob("*.report.json")
    data = json.loads(report.read_text())
    (entry,) = data["substituted"]
    assert MARK in entry["text"]
    assert entry["chapter"] == chapter
    assert "died 2 times" in entry["reason"]
    assert entry["replacement"].startswith(replacement)
    return entry


@pytest.mark.parametrize("workers", ["2", "1"])
def test_sim_poison_sentence_is_replaced_and_reported(tmp_path: Path, workers: str) -> None:
    """-w 1 too: the one synthesis process is a child, so its crash costs a process, not the run."""
    book = write_book(tmp_path / "book.txt")
    t0 = time.monotonic()
    r = run_cli(["convert", str(book), "--engine", "sim", "-w", workers, "-o", "out", "--keep-work", "-q"],
                tmp_path, timeout=180, EBOOK2AUDIO_SIM_MS_PER_CHAR="2", EBOOK2AUDIO_SIM_CRASH_ON=MARK)  # fmt: skip
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert elapsed < 120
    said = " ".join(r.stderr.split())
    assert "killed by SIGSEGV" in said
    # each death was charged to the poison's batch only (the other process was left alone)
    assert len(set(re.findall(r"killed by SIGSEGV\) on batch (\w+)", said))) == 1, r.stderr
    assert "1 sentence(s) replaced because they crash the voice" in said
    assert "replaced chapter 2, sentence" in said and MARK in said
    entry = _check_report(tmp_path / "out", "fallback voice espeak-ng")

    # every other sentence was spoken by the main voice (the sim's exact length), the poison one by espeak-ng
    job, plan = _job(tmp_path)
    rate = plan["sample_rate"]
    total = 0
    for c in plan["chunks"]:
        n, pcm = _wav_samples(job, c["id"])
        total += n + (c["pause_after_ms"] * rate + 500) // 1000
        if c["id"] == entry["chunk_id"]:
            assert MARK in c["text"]
            assert n != round(len(c["text"].strip()) * SECONDS_PER_CHAR * rate)
            assert pcm.count(0) < len(pcm) * 0.9  # a voice, not silence
        else:
            assert n == round(len(c["text"].strip()) * SECONDS_PER_CHAR * rate), c["text"]
    (m4b,) = (tmp_path / "out").glob("*.m4b")
    info = probe(m4b)
    assert info.duration == pytest.approx(total / rate, abs=0.15)
    assert len(info.chapters) == 3
    cues = read_srt(m4b.with_suffix(".srt"))
    assert any(MARK in cue.text for cue in cues)
    assert len(cues) == len(plan["chunks"])


def test_strict_stops_with_one_line_and_keeps_the_work(tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.txt")
    args = ["convert", str(book), "--engine", "sim", "-w", "2", "-o", "out", "-q"]
    env = {"EBOOK2AUDIO_SIM_MS_PER_CHAR": "2", "EBOOK2AUDIO_SIM_CRASH_ON": MARK}
    t0 = time.monotonic()
    r = run_cli([*args, "--strict"], tmp_path, timeout=180, **env)
    assert time.monotonic() - t0 < 120
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "--strict" in errors[0] and MARK in errors[0] and "chapter 2" in errors[0]
    assert not list((tmp_path / "out").glob("*.m4b"))
    job, plan = _job(tmp_path)
    kept = [*(job / "chunks").rglob("*.flac"), *(job / "chunks").rglob("*.wav")]
    assert 0 < len(kept) < len(plan["chunks"])

    # also through the environment; the work is still kept
    r = run_cli(args, tmp_path, timeout=180, EBOOK2AUDIO_STRICT="1", **env)
    assert r.returncode == 2 and "--strict" in r.stderr, r.stderr

    # without --strict the same command completes, resuming the kept chunks
    r = run_cli(args, tmp_path, timeout=180, **env)
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stderr.split())
    resumed = int(said.split(" resumed)")[0].rsplit("(", 1)[1].split(", ")[1].split()[0])
    assert resumed >= len(kept)
    _check_report(tmp_path / "out", "fallback voice espeak-ng")


HOOK = '''
import os
import signal

_MARK = os.environ.get("POISON_TEST_MARK")
if _MARK:
    from ebook2audio.engines import piper as _piper

    _real = _piper.PiperEngine.synthesize

    def _synthesize(self, text, *, seed=None):
        if _MARK in text:
            os.kill(os.getpid(), signal.SIGSEGV)  # like a crash inside onnxruntime
        return _real(self, text, seed=seed)

    _piper.PiperEngine.synthesize = _synthesize
'''


def test_real_voice_crashing_on_a_sentence(tmp_path: Path) -> None:
    """Piper joe, made to segfault on one sentence by a wrapper loaded into every process."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    book = tmp_path / "short.txt"
    book.write_text(
        "CHAPTER 1\n\nThe ship left at dawn. " + POISON + " The crew sang all night.\n\n"
        "CHAPTER 2\n\nThe island was green.\n",
        encoding="utf-8",
    )
    pythonpath = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    t0 = time.monotonic()
    r = run_cli(["convert", str(book), "--voice", "joe", "-w", "2", "-o", "out", "--keep-work", "-q"],
                tmp_path, timeout=300, POISON_TEST_MARK=MARK, PYTHONPATH=pythonpath)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 240
    assert "killed by SIGSEGV" in r.stderr
    entry = _check_report(tmp_path / "out", "fallback voice espeak-ng", chapter=1)
    assert "piper en_US-joe-medium" in entry["reason"]
    job, plan = _job(tmp_path)
    assert plan["sample_rate"] == 22050
    for c in plan["chunks"]:
        n, _pcm = _wav_samples(job, c["id"])
        assert n > 0.3 * 22050, c["text"]  # every sentence has audio, the poison one by espeak-ng
    (m4b,) = (tmp_path / "out").glob("*.m4b")
    assert len(probe(m4b).chapters) == 2
