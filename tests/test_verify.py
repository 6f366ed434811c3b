"""The pure parts of --verify: comparison, verdicts, takes, the chunk recipe, the report, model choice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ebook2audio import asr
from ebook2audio.against import AgainstLimits, ChapterResult, chapter_problems, compare_chapter
from ebook2audio.errors import UserError
from ebook2audio.model import Book, Chapter, ChapterMark, EngineInfo, Metadata, Plan, Verification, VoiceSpec
from ebook2audio.plan import PlanOptions, make_plan
from ebook2audio.report import ChapterMeasure, render_html, verify_data
from ebook2audio.verify import (
    ChunkCheck,
    Verdict,
    best,
    comparable,
    edit_distance,
    error_rates,
    judge,
    listen,
    take_plans,
)

EN = Verification(language="en")


def test_both_sides_are_normalised_the_same_way() -> None:
    # numbers as the text normaliser spells them, case, punctuation, apostrophes, accents
    assert comparable("She counted 23 ships!", "en") == comparable("she counted twenty-three ships", "en")
    assert comparable("It’s “done”.", "en") == ["it's", "done"]
    assert comparable("L'été à Noël", "fr") == comparable("l'ete a noel", "fr")
    assert comparable("", "en") == []
    assert comparable("Um, um, um! Er, yes.", "en") == ["yes"]
    assert comparable("On the first of March, 1,891.", "en") == comparable("On the first of March, 1891.", "en")  # hesitations: recognisers drop them


def test_edit_distance_and_error_rates() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance(["a", "b", "c"], ["a", "c"]) == 1
    assert edit_distance([], ["x"]) == 1
    wer, cer = error_rates(["the", "cat", "sat"], ["the", "cat", "sat"])
    assert (wer, cer) == (0.0, 0.0)
    wer, cer = error_rates(["today", "it", "rains"], ["to", "day", "it", "rains"])
    assert wer == pytest.approx(2 / 3) and cer == 0.0  # a split word costs words, not characters
    assert error_rates([], []) == (0.0, 0.0)
    assert error_rates([], ["noise"]) == (1.0, 1.0)


def test_verdicts_flag_wrong_words_truncated_and_run_on_takes() -> None:
    text = "The lighthouse keeper climbed the stairs at dusk."  # 49 characters: about 3.2 s
    assert judge(text, "The lighthouse keeper climbed the stairs at dusk.", 3.0, EN).passed
    wrong = judge(text, "Bring me the red book from the kitchen.", 3.0, EN)
    assert not wrong.passed and any("word error rate" in p for p in wrong.problems)
    short = judge(text, "The lighthouse keeper climbed the stairs at dusk.", 0.8, EN)
    assert short.problems == ("too short (0.8 s for about 3.2 s of text): truncated",)
    long = judge(text, "The lighthouse keeper climbed the stairs at dusk.", 12.0, EN)
    assert any("too long" in p for p in long.problems)
    assert judge("Yes.", "Yes.", 2.0, EN).ratio == 0.0  # too short a text to judge its length
    # fewer than 3 words: characters only, and only when nearly nothing like it was heard
    assert judge("Loaded?", "Love it.", 0.7, EN).passed
    assert judge("Stern all!", "", 0.7, EN).problems == ("character error rate 100% over 80%",)
    assert judge("Um, um, um!", "on", 0.9, EN).passed  # nothing but hesitations: nothing to compare
    # thresholds are the spec's
    assert judge(text, "The lighthouse keeper climbed the stair.", 3.0, EN).passed
    strict = Verification(language="en", max_wer=0.1, max_cer=0.01)
    assert not judge(text, "The lighthouse keeper climbed the stair.", 3.0, strict).passed
    # a slower take is judged at its own speed
    assert judge(text, text, 3.6, EN, speed=0.85).ratio == pytest.approx(3.6 / (49 * 0.065 / 0.85))


def test_takes_try_other_seeds_then_slower_and_keep_the_best() -> None:
    assert [(t.seed_variant, t.slower) for t in take_plans(3)] == [(0, 1.0), (1, 1.0), (2, 0.85)]
    assert [(t.seed_variant, t.slower) for t in take_plans(2)] == [(0, 1.0), (1, 1.0)]
    assert len(take_plans(1)) == 1
    bad = Verdict("x", 1.0, 0.9, 1.0, 1.0, ("p",))
    worse = Verdict("x", 1.0, 1.0, 1.0, 1.0, ("p",))
    good = Verdict("x", 0.0, 0.0, 1.0, 1.0, ())
    assert best([worse, bad]) == 1
    assert best([bad, good, good]) == 1


def test_a_check_round_trips_through_json() -> None:
    c = ChunkCheck("id1", 2, 5, "Text.", 3, 1, Verdict("heard", 0.5, 0.25, 1.5, 0.9, ("a", "b")))
    again = ChunkCheck.from_json(json.loads(json.dumps(c.to_json())))
    assert again == c and again.retaken and again.failed


def _plan(verify: Verification | None) -> Plan:
    book = Book(Metadata(title="t"), (Chapter("One", ("A first sentence. A second one.",)),))
    info = EngineInfo("sim", "sim", "en", 22050, 400)
    return make_plan(book, info, VoiceSpec(engine="sim"), "s", PlanOptions(verify=verify))


def test_verify_settings_are_part_of_the_chunk_recipe_only_when_on() -> None:
    plain, verified = _plan(None), _plan(EN)
    assert [c.id for c in plain.chunks] == [c.id for c in _plan(None).chunks]
    assert {c.id for c in plain.chunks}.isdisjoint(c.id for c in verified.chunks)
    assert all(c.verify is None for c in plain.chunks) and all(c.verify == EN for c in verified.chunks)
    assert {c.id for c in _plan(Verification(language="en", takes=2)).chunks}.isdisjoint(
        c.id for c in verified.chunks
    )
    # the plan travels to workers as JSON: the recipe survives
    assert Plan.from_json(json.loads(json.dumps(verified.to_json()))) == verified


def test_report_data_and_a_self_contained_page() -> None:
    plan = _plan(EN)
    a, b = plan.chunks[1], plan.chunks[2]
    checks = [
        ChunkCheck(plan.chunks[0].id, 0, 0, "One", 1, 0, Verdict("One", 0.0, 0.0, 0.5, 0.0, ())),
        ChunkCheck(a.id, 0, 1, "A first sentence.", 2, 1, Verdict("A first sentence", 0.0, 0.0, 1.0, 0.0, ())),
        ChunkCheck(b.id, 0, 2, "A <second> one.", 3, 2, Verdict("nothing", 1.0, 0.8, 1.0, 0.0, ("word error rate 100% over 50%",))),
    ]  # fmt: skip
    data = verify_data(
        plan, checks, [ChapterMark("One", 0.0, 5.0)], [ChapterMeasure(-19.1, -3.4)], {b.id: (2.5, 1.0), a.id: (1.0, 1.0)}
    )
    assert data["verified"] == 3
    assert [e["index"] for e in data["retaken"]] == [2] and [e["index"] for e in data["failed"]] == [3]
    assert data["failed"][0]["time"] == 2.5 and data["failed"][0]["heard"] == "nothing"
    ch = data["chapters"][0]
    assert (ch["duration"], ch["integrated_lufs"], ch["true_peak_dbtp"], ch["retaken"], ch["failed"]) == (5.0, -19.1, -3.4, 1, 1)
    assert 0 < ch["wer"] < 1
    page = render_html({"engine": "sim", "voice": "sim", "session": "s", "verify": data}, "My Book.m4b")
    assert "<script" not in page and "http" not in page  # nothing fetched, nothing run
    assert 'src="My%20Book.m4b#t=2.30,3.80"' in page  # the failed sentence, playable from its time
    assert "A &lt;second&gt; one." in page and "<second>" not in page


def test_model_choice_and_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert asr.resolve_model("en-US").name == "tiny.en"
    assert asr.resolve_model("en", "tiny.en").english_only
    with pytest.raises(UserError, match="no such folder"):
        asr.resolve_model("fr", str(tmp_path / "nope"))
    (tmp_path / "m").mkdir()
    with pytest.raises(UserError, match=r"model\.bin, config\.json missing"):
        asr.resolve_model("fr", str(tmp_path / "m"))
    monkeypatch.setenv(asr.ENV_MODEL, str(tmp_path / "gone"))
    with pytest.raises(UserError, match="gone"):
        asr.resolve_model("en")
    # a local folder is used as it is
    model = asr.resolve_model("en", str(asr.tiny_en().path))
    assert model.path == asr.tiny_en().path


def test_chapter_comparison_problem_lines() -> None:
    ch = Chapter("Night", ("The lamp was lit at dusk.",))
    ok = compare_chapter(1, ch, "Night. The lamp was lit at dusk.", 2.0, "en")
    assert (ok.wer, ok.cer) == (0.0, 0.0)
    bad = compare_chapter(2, ch, "Morning. The sea was calm.", 0.5, "en")
    lines = chapter_problems([ok, bad], AgainstLimits())
    assert len(lines) == 1 and lines[0].startswith("speech: chapter 2 (Night): word error rate")
    assert "short for its text" in lines[0]
    assert chapter_problems([ChapterResult(1, "", 9.0, 0.0, 0.0, 3.0, "")], AgainstLimits()) == [
        "speech: chapter 1: 9 s is long for its text (x3.00 the usual length)"
    ]


def test_a_failing_take_is_heard_again_with_timestamps_and_the_better_verdict_stands() -> None:
    text = "He trimmed the wick, polished the great lens, and wrote in the log before he sat down."
    calls: list[bool] = []

    def hear(timestamps: bool) -> str:
        calls.append(timestamps)
        return text if timestamps else "He trimmed the wick."  # greedy decoding stopped early

    assert listen(hear, text, 5.5, EN).passed and calls == [False, True]
    calls.clear()
    assert listen(lambda ts: calls.append(ts) or text, text, 5.5, EN).passed and calls == [False]  # type: ignore[func-returns-value]
    assert not listen(lambda ts: "", text, 5.5, EN).passed
