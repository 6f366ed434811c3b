"""The pronunciation lexicon: matching rules, files, and what it does to a plan's chunks."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from ebook2audio.errors import ConfigError
from ebook2audio.model import Book, Chapter, Mastering, Metadata, Plan, VoiceSpec
from ebook2audio.plan import PlanOptions, make_plan
from ebook2audio.text.lexicon import Lexicon, load_lexicon, user_lexicon_path

from ..fakes import FAKE_INFO

LEX = Lexicon(
    exact=(("SQL", "sequel"), ("New York", "Noo York"), ("Hermione", "Her-my-oh-nee")),
    any_case=(("gif", "jif"), ("new", "neu")),
)


def test_whole_words_case_rules_longest_first_one_pass() -> None:
    text, n = LEX.apply("A GIF of SQL in New York; new sql, gifs, Hermione's Gif.")
    assert text == "A jif of sequel in Noo York; neu sql, gifs, Her-my-oh-nee's jif."
    assert n == 6  # "sql" (not exact case) and "gifs" (a longer word) are left alone


def test_respelling_is_not_matched_again() -> None:
    lex = Lexicon(any_case=(("a", "b"), ("b", "a")))
    assert lex.apply("a b") == ("b a", 2)


def test_french_entries_and_accents() -> None:
    lex = Lexicon(exact=(("Saint-Exupéry", "Saint-Exupéri"),), any_case=(("fils", "fisse"),))
    assert lex.apply("Le fils de Saint-Exupéry. Les Fils.") == ("Le fisse de Saint-Exupéri. Les fisse.", 3)


def test_files_user_then_book_override(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text('[exact]\n"SQL" = "ess queue ell"\n[any_case]\n"Gif" = "gif"\n', "utf-8")
    book = tmp_path / "book.toml"
    book.write_text('[exact]\n"SQL" = "sequel"\n[any_case]\n"GIF" = "jif"\n', "utf-8")
    lex = load_lexicon([user, book])
    assert lex.exact == (("SQL", "sequel"),) and lex.any_case == (("GIF", "jif"),)
    assert lex.apply("gif SQL") == ("jif sequel", 2)
    assert user_lexicon_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/ebook2audio/lexicon.toml")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[exact]\n"x" = 3\n', "the respelling of 'x' must be a non-empty string"),
        ('[words]\n"x" = "y"\n', "unknown table 'words' (use [exact] and [any_case])"),
        ("[exact\n", "is not valid TOML"),
        ('exact = "y"\n', "exact must be a table"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "lex.toml"
    path.write_text(content, "utf-8")
    with pytest.raises(ConfigError, match="^lexicon .*" + re.escape(message)):
        load_lexicon([path])
    with pytest.raises(ConfigError, match="cannot read lexicon"):
        load_lexicon([tmp_path / "missing.toml"])


BOOK = Book(
    metadata=Metadata(title="T", language="en"),
    chapters=(Chapter("One", ("Hermione read it. The wind rose. Hermione slept.", "Nothing else.")),),
)


def _plan(lexicon: Lexicon, **kw: object) -> Plan:
    return make_plan(BOOK, FAKE_INFO, VoiceSpec(engine="fake"), "s", PlanOptions(lexicon=lexicon, **kw))  # type: ignore[arg-type]


def test_plan_text_respelled_ids_change_only_where_the_word_is() -> None:
    plain = _plan(Lexicon())
    lexed = _plan(Lexicon(exact=(("Hermione", "Her-my-oh-nee"),)))
    assert lexed.respelled == 2 and plain.respelled == 0
    changed = [a.text for a, b in zip(plain.chunks, lexed.chunks, strict=True) if a.id != b.id]
    assert changed == ["Hermione read it.", "Hermione slept."]
    assert [c.display for c in lexed.chunks] == [c.display for c in plain.chunks]  # subtitles: the book's words
    assert "Her-my-oh-nee read it." in [c.text for c in lexed.chunks]


def test_phoneme_entries_only_for_piper() -> None:
    lex = Lexicon(exact=(("Hermione", "[[ hɚmˈaɪəni ]]"),))
    assert _plan(lex).respelled == 0  # the fake engine takes no phonemes
    piper = replace(FAKE_INFO, engine="piper")
    plan = make_plan(BOOK, piper, VoiceSpec(), "s", PlanOptions(lexicon=lex))
    assert plan.respelled == 2 and "[[ hɚmˈaɪəni ]] slept." in [c.text for c in plan.chunks]


def test_mastering_is_part_of_every_chunk_and_its_id() -> None:
    raw = _plan(Lexicon())
    mastered = _plan(Lexicon(), master=Mastering())
    louder = _plan(Lexicon(), master=Mastering(loudness=-16.0))
    assert all(c.master is None for c in raw.chunks)
    assert all(c.master == Mastering() for c in mastered.chunks)
    ids = [{c.id for c in p.chunks} for p in (raw, mastered, louder)]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2])  # never mixed on resume
    assert Plan.from_json(mastered.to_json()) == mastered
