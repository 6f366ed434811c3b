"""End to end with Kokoro-82M (the shipped int8 model and speaker vectors): the real CLI in a subprocess,
read back with ffprobe (chapters, duration) and heard by Whisper (a sentence over the token limit)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from ebook2audio.audio.assemble import probe
from ebook2audio.engines.kokoro_phonemes import MAX_TOKENS, phonemize, tokenize

from ..conftest import OFFLINE_KOKORO_URL
from ..engines.kokoro_entry import kokoro_entry_point
from .helpers import read_srt, run_cli
from .whisper_asr import transcribe_english, word_list

pytestmark = pytest.mark.slow

BOOK = """# The Garden

Anna walked into the garden early in the morning. Yes.

# The River

The river ran quickly past the old mill.
"""

# One sentence of about 600 Kokoro tokens (checked below): plain words a listener can follow.
LONG = (
    "On the first morning of summer the farmer and his daughter walked slowly down the hill to the "
    "market in the village, where they sold apples, bread, butter, cheese, eggs and honey to the "
    "neighbours, bought a new rope, a lamp, a basket and a warm blanket for the winter, talked with "
    "the baker about the weather and the price of flour, listened to the old teacher telling a story "
    "about a ship that sailed across the ocean to a green island full of birds, and then, when the sun "
    "was high and the bells of the church began to ring, they carried everything back up the hill, "
    "sat down under the big tree beside the river, and ate their lunch while the horses rested in the shade."
)


def _env(tmp_path: Path, cache: Path) -> dict[str, str]:
    env = {"XDG_CACHE_HOME": str(cache), "EBOOK2AUDIO_KOKORO_URL": OFFLINE_KOKORO_URL}
    folder = kokoro_entry_point(tmp_path / "entry")
    if folder is not None:  # the installed metadata predates the kokoro entry point
        import os

        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kokoro-e2e-cache")  # the shipped model joined once for the module


def test_chapters_with_kokoro(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "garden.md").write_text(BOOK, encoding="utf-8")
    r = run_cli(
        ["convert", "garden.md", "--engine", "kokoro", "--voice", "jf_alpha", "--language", "en", "-o", "out"],
        tmp_path,
        **_env(tmp_path, cache),
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    p = probe(tmp_path / "out" / "garden.m4b")
    assert [c.title for c in p.chapters] == ["The Garden", "The River"]
    assert p.chapters[0].start == pytest.approx(0, abs=0.05)
    assert all(a.end == pytest.approx(b.start, abs=0.05) for a, b in itertools.pairwise(p.chapters))
    assert p.chapters[-1].end == pytest.approx(p.duration, abs=0.3)
    words = len(BOOK.split()) - 4
    assert words / 4.0 < p.duration < words / 1.2 + 8  # speech, not silence or a runaway
    # "Yes." was spoken together with the sentence before it (Kokoro garbles very short inputs)
    cues = [c.text for c in read_srt(tmp_path / "out" / "garden.srt")]
    assert any("morning" in c and "Yes." in c for c in cues), cues
    assert not any(c.strip() == "Yes." for c in cues)


def test_blend_reads_a_sentence_over_the_token_limit(tmp_path: Path, cache: Path) -> None:
    assert len(tokenize(phonemize(LONG, "en-US"))) > MAX_TOKENS + 50
    (tmp_path / "long.md").write_text(f"# Market Day\n\n{LONG}\n", encoding="utf-8")
    r = run_cli(
        ["convert", "long.md", "--engine", "kokoro", "--voice", "jf_alpha:0.6,jm_kumo:0.4", "--language", "en",
         "-o", "out", "--format", "mp3"],
        tmp_path,
        **_env(tmp_path, cache),
    )
    assert r.returncode == 0, r.stderr
    (out,) = (tmp_path / "out").glob("*.mp3")
    assert probe(out).duration > 30
    heard = set(word_list(transcribe_english(out)))
    said = word_list(LONG)
    missed = [w for w in said if w not in heard]
    # every part of the sentence is heard (a dropped piece would lose a run of words), the end included
    for tenth in range(10):
        part = said[len(said) * tenth // 10 : len(said) * (tenth + 1) // 10]
        assert sum(w in heard for w in part) >= 0.8 * len(part), (tenth, missed)
    assert len(missed) <= len(said) // 20, missed
