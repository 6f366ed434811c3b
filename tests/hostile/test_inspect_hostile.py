"""Every hostile or broken input of ``generate.CASES`` through the real CLI (`inspect --json`).

Each run must end in exit 0 with the readable text, or exit 2 with one line ``error: ...``; never a
traceback, a hang (60 s), resident memory over 500 MB (see helpers), a file written anywhere, or a
secret file's content in the output (XXE).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ebook2audio.engines.registry import resolve_voice
from ebook2audio.errors import BookError
from ebook2audio.ingest import read_book
from ebook2audio.model import VoiceSpec
from ebook2audio.plan import make_plan

from .generate import CASES, SECRET, Case, case
from .helpers import PEAK_RSS_LIMIT, Run, assert_user_error, run_cli, snapshot

ABSOLUTE_SLIP_TARGET = Path("/tmp/hostile-evil-abs")


def _inspect(c: Case, tmp_path: Path) -> tuple[Path, Run]:
    root = tmp_path / "root"
    root.mkdir()
    try:
        book = c.build(root)
    except ImportError as exc:  # pypdf writes the PDF cases: an optional ("formats") dependency
        pytest.skip(f"cannot build {c.name}: {exc}")
    cwd = root / "a" / "b" / "c"  # so that "../../evil" from here would still land inside tmp_path
    cwd.mkdir(parents=True, exist_ok=True)
    before = snapshot(tmp_path)
    run = run_cli(["inspect", "--json", *c.argv_tail, str(book)], tmp_path, cwd=cwd)
    assert snapshot(tmp_path) == before, "inspect created, removed or changed files"
    assert not ABSOLUTE_SLIP_TARGET.exists()
    return book, run


def _text(book: Path) -> str:
    return "\n".join([p for ch in read_book(book).chapters for p in (ch.title, *ch.paragraphs)])


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_hostile_input_through_inspect(c: Case, tmp_path: Path) -> None:
    book, run = _inspect(c, tmp_path)
    assert run.peak_rss < PEAK_RSS_LIMIT, f"peak RSS {run.peak_rss >> 20} MB"
    assert SECRET not in run.stdout and SECRET not in run.stderr
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    assert run.returncode in (0, 2), (run.returncode, run.stderr[-2000:])
    if c.expect == "error" or (c.expect == "either" and run.returncode == 2):
        assert_user_error(run, c.needle if c.expect == "error" else "")
        assert run.stdout == ""
        return
    assert run.returncode == 0, run.stderr[-2000:]
    info = run.json()
    assert info["chapters"], info
    assert all(ch["words"] > 0 for ch in info["chapters"]), info["chapters"]
    if c.words != (0, 0):
        assert c.words[0] <= sum(ch["words"] for ch in info["chapters"]) <= c.words[1], info["chapters"]
    if c.text:  # the text itself (inspect shows only titles and counts): read again, in this process
        text = _text(book)
        assert SECRET not in text
        assert c.text.lower() in text.lower()


def test_there_are_at_least_30_distinct_hostile_cases() -> None:
    assert len(CASES) >= 30
    assert {c.expect for c in CASES} == {"ok", "error", "either"}


@pytest.mark.parametrize("name", ["txt-5mb-one-paragraph", "txt-5mb-one-word"])
def test_five_megabytes_without_punctuation_are_planned_in_bounded_time(name: str, tmp_path: Path) -> None:
    """The reading is covered by inspect above; here the planner cuts it (with the sim engine's limits:
    a full synthesis would take hours) into chunks that all fit the engine, losing no word."""
    book = read_book(case(name).build(tmp_path))
    assert len(book.chapters) == 1
    spec = VoiceSpec(engine="sim", voice="", language="en")
    info = resolve_voice(spec)
    start = time.monotonic()
    plan = make_plan(book, info, spec, "hostile")
    assert time.monotonic() - start < 60
    assert plan.chunks
    assert all(0 < len(chunk.text) <= info.max_chars for chunk in plan.chunks)
    source_words = sum(len(p.split()) for p in book.chapters[0].paragraphs)
    planned_words = sum(len(chunk.text.split()) for chunk in plan.chunks)
    # The chapter title is spoken too; a word longer than the engine's limit is cut into pieces.
    assert source_words <= planned_words <= source_words * 1.02 + 20_000


def test_zip_slip_member_names_are_refused_in_process(tmp_path: Path) -> None:
    for name in ("zip-slip-dotdot", "zip-slip-absolute", "zip-slip-backslash", "zip-slip-drive-letter"):
        with pytest.raises(BookError, match="unsafe member name"):
            read_book(case(name).build(tmp_path / name))
