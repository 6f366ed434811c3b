"""End to end: the real CLI, real corpus books, the real bundled Piper voice (or espeak-ng), real ffmpeg."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from ebook2audio.audio.assemble import probe
from ebook2audio.ingest import read_book

from .helpers import inspect_json, read_srt, run_cli, shortest_chapters, words

pytestmark = pytest.mark.slow

CASES = [
    # (corpus file, chapters to convert, expected engine in the log, extra flags)
    ("epub3_moby-dick_melville_en.epub", 3, "piper", []),
    ("epub2_esprit-des-lois_montesquieu_fr.epub", 2, "espeak", []),  # no French Piper voice: espeak-ng
    # Alice's shortest chapter is 1,700 words: espeak-ng, like the long formats below (Piper reads
    # English from the EPUB above)
    ("html_alice-in-wonderland_carroll_en/11-h.htm", 1, "espeak", ["--engine", "espeak"]),
    ("fb2_voina-i-mir-example_tolstoy_ru.fb2", 2, "espeak", []),
    # (the first two paragraphs of each chapter: see TRIMMED)
    ("txt_die-verwandlung_kafka_de.txt", 2, "espeak", []),
    # the other formats' chapters are long: espeak-ng (hundreds of times real time) keeps these fast
    ("pdf_a-study-in-scarlet_doyle_en.pdf", 1, "espeak", ["--engine", "espeak"]),  # 1,800 words
    ("docx_jekyll-and-hyde_stevenson_en_GENERATED.docx", 2, "espeak", ["--engine", "espeak"]),
    ("mobi_childrens-literature_curry-clippinger_en.mobi", 2, "espeak", ["--engine", "espeak"]),
]

# `--chapters` takes whole chapters, and Kafka's are 6,000 words each (35 minutes of audio): this book is
# converted from a copy in the test's own folder that keeps the front matter, the first N paragraphs of
# each chapter and the end line. The same reader, chapter markers, language and voice; ingesting the
# whole file is tests/ingest/test_text.py's.
TRIMMED = {"txt_die-verwandlung_kafka_de.txt": (re.compile(r"[IVX]+\."), 2)}


def _trimmed_copy(src: Path, dest: Path, marker: re.Pattern[str], paragraphs: int) -> Path:
    """``src`` with each chapter (from a line matching ``marker`` to the next) cut to ``paragraphs``
    paragraphs; what comes before the first chapter, and the last paragraph (the end matter: here the
    Project Gutenberg line that names the author), kept as they are."""
    blocks = re.split(r"(\n[ \t]*\n)", src.read_text(encoding="utf-8").rstrip() + "\n")
    pairs = list(itertools.zip_longest(blocks[::2], blocks[1::2], fillvalue=""))
    kept: list[str] = []
    in_chapter, count = False, 0
    for i, (text, sep) in enumerate(pairs):
        if marker.fullmatch(text.strip()):
            in_chapter, count = True, -1
        if not in_chapter or count < paragraphs or i == len(pairs) - 1:
            kept += [text, sep]
        count += 1
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("".join(kept), encoding="utf-8")
    return dest


@pytest.mark.parametrize(("name", "n", "engine", "extra"), CASES, ids=[c[0].split("_")[0] for c in CASES])
def test_convert_corpus_book_to_chaptered_m4b(
    corpus: Path, tmp_path: Path, name: str, n: int, engine: str, extra: list[str]
) -> None:
    book_path = corpus / name
    if name in TRIMMED:
        book_path = _trimmed_copy(book_path, tmp_path / "book" / name, *TRIMMED[name])
    info = inspect_json(book_path, tmp_path)
    chosen = shortest_chapters(info, n, min_words=30 if n > 1 else 20)
    sel = ",".join(str(c["index"]) for c in chosen)
    r = run_cli(
        ["convert", str(book_path), "--chapters", sel, "-o", "out", "--keep-work", "-q", "--workers", "2", *extra],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert engine in r.stderr  # says which voice it chose
    outs = list((tmp_path / "out").glob("*.m4b"))
    assert len(outs) == 1, r.stderr
    out = outs[0]
    if info["authors"]:
        assert out.name.startswith(info["authors"][0][:10])
    p = probe(out)
    # chapters: the selected ones, same titles, same order, increasing starts that tile the audio
    assert [c.title for c in p.chapters] == [c["title"] for c in chosen]
    starts = [c.start for c in p.chapters]
    assert starts[0] == pytest.approx(0, abs=0.05)
    assert all(b > a for a, b in itertools.pairwise(starts))
    assert p.chapters[-1].end == pytest.approx(p.duration, abs=0.3)
    # duration plausible for the word count (speech is 1.5-4 words a second)
    total_words = sum(c["words"] for c in chosen)
    assert total_words / 4.0 < p.duration < total_words / 1.2 + 10
    assert p.tags.get("title") == info["title"]
    assert p.tags.get("genre") == "Audiobook"
    if info["authors"]:
        assert info["authors"][0] in p.tags.get("artist", "")
    assert p.has_cover == info["cover"]
    assert p.codec == "aac"
    # subtitles: one cue per planned sentence, every word of the chapters present, in order
    srt = read_srt(out.with_suffix(".srt"))
    assert out.with_suffix(".vtt").is_file()
    session_dirs = [
        d for d in (tmp_path / "cache" / "ebook2audio" / "jobs").iterdir() if not d.name.startswith(".")
    ]
    (plan_file,) = (session_dirs[0] / "plans").glob("*.json")
    plan = json.loads(plan_file.read_text())
    assert len(srt) == len(plan["chunks"])
    book = read_book(book_path)
    expected: list[str] = []
    for c in chosen:
        ch = book.chapters[c["index"] - 1]
        expected += words(ch.title + " " + " ".join(ch.paragraphs))
    assert words(" ".join(cue.text for cue in srt)) == expected
    # every sentence has audio: cues are ordered, non-empty, and chapter starts fall on cue starts
    assert all(c.end > c.start for c in srt)
    assert all(b.start >= a.end - 0.001 for a, b in itertools.pairwise(srt))
    cue_starts = [c.start for c in srt]
    for ch in p.chapters:
        assert min(abs(ch.start - s) for s in cue_starts) < 0.05


def test_mp3_and_split_hours(corpus: Path, tmp_path: Path) -> None:
    book_path = corpus / "epub3_moby-dick_melville_en.epub"
    info = inspect_json(book_path, tmp_path)
    chosen = shortest_chapters(info, 3, min_words=30)
    sel = ",".join(str(c["index"]) for c in chosen)
    r = run_cli(
        [
            "convert",
            str(book_path),
            "--chapters",
            sel,
            "-o",
            "out",
            "-f",
            "mp3",
            "--split-hours",
            "0.001",
            "-q",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    outs = sorted((tmp_path / "out").glob("*.mp3"))
    assert len(outs) == 3  # each chapter is longer than 3.6 s: one part each, chapters kept whole
    titles = []
    for o in outs:
        p = probe(o)
        titles += [c.title for c in p.chapters]
        assert p.codec == "mp3"
    assert titles == [c["title"] for c in chosen]


def test_readme_sample_book(tmp_path: Path) -> None:
    """The quick start's book: name, chapters, every sentence of the sample in the subtitles."""
    from .helpers import ROOT

    sample = ROOT / "samples" / "lighthouse.txt"
    r = run_cli(["convert", str(sample), "--output-dir", "out"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr.lower()
    out = tmp_path / "out" / "The ebook2audio authors - The Keeper of Gull Rock.m4b"
    p = probe(out)
    assert [c.title for c in p.chapters] == [
        "CHAPTER I. The Lamp",
        "CHAPTER II. The Storm",
        "CHAPTER III. The Morning",
    ]
    assert 50 < p.duration < 150
    book = read_book(sample)
    expected = words(" ".join(ch.title + " " + " ".join(ch.paragraphs) for ch in book.chapters))
    assert words(" ".join(c.text for c in read_srt(out.with_suffix(".srt")))) == expected
    assert not (tmp_path / "cache" / "ebook2audio" / "jobs").exists() or not any(
        (tmp_path / "cache" / "ebook2audio" / "jobs").iterdir()
    )  # work cleaned up after success
