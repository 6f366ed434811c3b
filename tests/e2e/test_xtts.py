"""End to end with the xtts engine: the real CLI in a subprocess clones a Piper recording with a tiny
random XTTS-v2 built here (the real coqui-tts path), read back with ffprobe; another sample is
another audiobook; bad input is one line."""

from __future__ import annotations

import importlib.util
import itertools
import os
from pathlib import Path

import pytest

from ebook2audio.audio.assemble import probe
from ebook2audio.output import read_output

from ..engines.xtts_fixture import build_tiny_xtts, piper_recording, xtts_entry_point
from .helpers import run_cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("TTS") is None, reason="needs ebook2audio[clone]"),
]

BOOK = """# The Garden

Anna walked into the garden.

# The River

The river ran past the mill.
"""
REFERENCE = "The old lighthouse keeper walked slowly along the rocky shore, counting the ships that came home."


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_xtts(tmp_path_factory.mktemp("xtts-e2e") / "xtts-v2")


def _env(tmp_path: Path, model: Path) -> dict[str, str]:
    env = {"EBOOK2AUDIO_XTTS_DIR": str(model)}
    folder = xtts_entry_point(tmp_path / "entry")
    if folder is not None:  # the installed metadata predates the xtts entry point
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return env


def test_convert_with_a_voice_sample(tmp_path: Path, model: Path) -> None:
    (tmp_path / "garden.md").write_text(BOOK, encoding="utf-8")
    piper_recording(tmp_path / "ref.wav", REFERENCE)
    piper_recording(tmp_path / "other.wav", REFERENCE, length_scale=0.75)
    env = _env(tmp_path, model)
    args = ["convert", "garden.md", "--engine", "xtts", "--language", "en", "-o", "out", "-w", "1"]
    r = run_cli([*args, "--voice-sample", "ref.wav"], tmp_path, **env)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "voice: xtts sample-" in r.stderr + r.stdout
    p = probe(tmp_path / "out" / "garden.m4b")
    assert [c.title for c in p.chapters] == ["The Garden", "The River"]
    assert all(a.end == pytest.approx(b.start, abs=0.05) for a, b in itertools.pairwise(p.chapters))
    assert p.duration > 4 and p.sample_rate in (22050, 24000, 44100, 48000)
    assert p.tags.get("title") == "garden", p.tags
    fingerprint = read_output(tmp_path / "out" / "garden.m4b").fingerprint
    assert fingerprint is not None and len(fingerprint) == 32

    again = run_cli([*args, "--voice-sample", "ref.wav"], tmp_path, **env)
    assert again.returncode == 0 and "already converted" in again.stdout + again.stderr, again.stderr
    other = run_cli([*args, "--voice-sample", "other.wav"], tmp_path, **env)  # another voice: another book
    assert other.returncode == 2, other.stderr
    assert "already converted" not in other.stdout + other.stderr
    errors = [line for line in other.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--overwrite" in errors[0] and "Traceback" not in other.stderr, other.stderr


def test_bad_input_is_one_line(tmp_path: Path, model: Path) -> None:
    (tmp_path / "garden.md").write_text(BOOK, encoding="utf-8")
    piper_recording(tmp_path / "ref.wav", REFERENCE)
    (tmp_path / "notes.wav").write_text("not a recording", encoding="utf-8")
    env = _env(tmp_path, model)
    cases = [
        (["--engine", "piper", "--voice-sample", "ref.wav"], "cannot clone"),
        (["--engine", "xtts", "--voice-sample", "notes.wav"], "not a readable recording"),
        (["--engine", "xtts", "--voice-sample", "missing.wav"], "cannot read voice sample"),
        (["--engine", "xtts", "--voice-sample", "ref.wav", "--language", "sv"], "does not speak 'sv'"),
        (["--engine", "xtts"], "--voice-sample"),
    ]
    for flags, expected in cases:
        r = run_cli(["convert", "garden.md", "-o", "out", *flags], tmp_path, **env)
        assert r.returncode == 2, (flags, r.stderr)
        assert r.stderr.startswith("error: ") and expected in r.stderr, (flags, r.stderr)
        assert r.stderr.strip().count("\n") == 0, (flags, r.stderr)
    missing = run_cli(
        ["convert", "garden.md", "-o", "out", "--engine", "xtts", "--voice-sample", "ref.wav"],
        tmp_path,
        **{**env, "EBOOK2AUDIO_XTTS_DIR": str(tmp_path / "nothing")},
    )
    assert missing.returncode == 2 and "https://huggingface.co/coqui/XTTS-v2" in missing.stderr, missing.stderr
    assert missing.stderr.strip().count("\n") == 0, missing.stderr
