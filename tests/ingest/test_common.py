from __future__ import annotations

import pytest

from ebook2audio.ingest.common import (
    clean_text,
    guess_language,
    has_words,
    heading_kind,
    join_title_parts,
    language_code,
    pg_header_fields,
    pg_title_author,
    roman_to_int,
    unspace_letters,
)


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("CHAPTER IV", "chapter"),
        ("Chapter 4", "chapter"),
        ("Chapter IV. The Title", "chapter"),
        ("Chapter the First", "chapter"),
        ("Chapitre 3", "chapter"),
        ("CHAPITRE PREMIER", "chapter"),
        ("Chapitre II : Le loup", "chapter"),
        ("Kapitel 2", "chapter"),
        ("Erstes Kapitel", "chapter"),
        ("Глава 5", "chapter"),
        ("第三章 旅立ち", "chapter"),
        ("PART ONE", "part"),
        ("BOOK I", "part"),
        ("Livre deuxième", "part"),
        ("I.", "numeral"),
        ("XII", "numeral"),
        ("12.", "numeral"),
        ("Prologue", "standalone"),
        ("EPILOGUE.", "standalone"),
        ("Préface", "standalone"),
        # not headings
        ("Part of the problem was the rain.", None),
        ("Book I found on the shelf", None),
        ("Chapter and verse", None),
        ("IIII.", None),
        ("It was a dark and stormy night; the rain fell in torrents.", None),
        ("", None),
        ("Chapter " + "x" * 200, None),
    ],
)
def test_heading_kind(line: str, kind: str | None) -> None:
    assert heading_kind(line) == kind


@pytest.mark.parametrize(
    ("text", "value"),
    [("I", 1), ("iv", 4), ("XIV", 14), ("MCMXCIX", 1999), ("IIII", None), ("", None), ("VX", None)],
)
def test_roman_to_int(text: str, value: int | None) -> None:
    assert roman_to_int(text) == value


def test_clean_text_and_has_words() -> None:
    assert clean_text("  a\u00a0\u00a0b\n\tc\u00adde\u200b ") == "a b cde"
    assert has_words("* * *") is False
    assert has_words("— 1 —") is True


def test_join_title_parts() -> None:
    assert join_title_parts(["CHAPTER I.", "Down the Rabbit-Hole"]) == "CHAPTER I. Down the Rabbit-Hole"
    assert join_title_parts(["Part One", " ", "Chapter 1"]) == "Part One. Chapter 1"


def test_unspace_letters() -> None:
    assert (
        unspace_letters("    K\u00a0 U\u00a0 R\u00a0 T\u00a0  W\u00a0 O\u00a0 L\u00a0 F\u00a0 F")
        == "KURT WOLFF"
    )
    assert unspace_letters("K U R T  W O L F F") == "KURT WOLFF"
    assert unspace_letters("a normal line of text") == "a normal line of text"


def test_language_code() -> None:
    assert language_code("German") == "de"
    assert language_code("English") == "en"
    assert language_code("French") == "fr"
    assert language_code("en-US") == "en-US"
    assert language_code("English and French") == "en"
    assert language_code("Klingon") == ""


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("The cat sat on the mat and it was happy, but the dog was not in the garden with her.", "en"),
        ("Als Gregor Samsa eines Morgens aus unruhigen Träumen erwachte, fand er sich in seinem Bett zu "
         "einem ungeheueren Ungeziefer verwandelt. Er lag auf dem Rücken und sah, dass es nicht gut war.", "de"),
        ("Il était une fois une petite fille qui vivait dans la forêt avec sa mère et elle ne savait pas "
         "que le loup était dans le bois.", "fr"),
        ("Так говорила в июле 1805 года известная Анна Павловна, и он не знал что сказать, но она так и "
         "не ответила.", "ru"),
        ("吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。", "ja"),
        ("12345 67890", ""),
    ],
)  # fmt: skip
def test_guess_language(text: str, lang: str) -> None:
    assert guess_language(text) == lang


def test_gutenberg_banner_and_header() -> None:
    assert pg_title_author(
        "The Project Gutenberg eBook of Alice’s Adventures in Wonderland, by Lewis Carroll"
    ) == (
        "Alice’s Adventures in Wonderland",
        "Lewis Carroll",
    )
    assert pg_title_author("End of the Project Gutenberg EBook of Die Verwandlung, by Franz Kafka") == (
        "Die Verwandlung",
        "Franz Kafka",
    )
    assert pg_title_author("Just a line") == ("", "")
    fields = pg_header_fields(
        ["Title: The Long", "       Title Continued", "", "Author: Someone", "Language: German"]
    )
    assert fields == {"title": "The Long Title Continued", "author": "Someone", "language": "German"}
