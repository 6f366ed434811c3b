from __future__ import annotations

import re
import time
import unicodedata

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ebook2audio.text import segment
from ebook2audio.text.segment import Segment, chunk_text, segment_paragraph, split_sentences

from .test_normalize import (
    LANGUAGES,
    SEPARATOR,
    WORD,
    abbreviation_words,
    is_subsequence,
    letter_words,
    visible,
)


def squeeze(text: str) -> str:
    """Text without whitespace and without invisible format characters (soft hyphens...)."""
    return "".join(ch for ch in "".join(text.split()) if unicodedata.category(ch) != "Cf")


def tokens(text: str) -> list[str]:
    """Words; a soft hyphen or other invisible format character joins the parts of one word."""
    return re.findall(r"\w+", "".join(ch for ch in text if unicodedata.category(ch) != "Cf"))


# --------------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "paragraph", "sentences"),
    [
        ("en", "Mr. Smith met Dr. Watson.", ["Mr. Smith met Dr. Watson."]),
        (
            "en",
            'Mr. Smith met Dr. Watson. They talked. He said "Hello!" and left... Then? No.',
            ["Mr. Smith met Dr. Watson.", "They talked.", 'He said "Hello!" and left...', "Then?", "No."],
        ),
        (
            "en",
            "J. R. R. Tolkien wrote it. (See above.) Next.",
            ["J. R. R. Tolkien wrote it.", "(See above.)", "Next."],
        ),
        ("en", "“Is it?” she asked. “Yes.” He nodded.", ["“Is it?” she asked.", "“Yes.”", "He nodded."]),
        ("en", "See No. 5 and p. 12. No. They must go.", ["See No. 5 and p. 12.", "No.", "They must go."]),
        ("en", "It cost 3.5 dollars. Fine.", ["It cost 3.5 dollars.", "Fine."]),
        ("en", "no punctuation at all here", ["no punctuation at all here"]),
        (
            "en",
            "Hello. ... World.",
            ["Hello. ...", "World."],
        ),  # nothing to say alone: kept with its neighbour
        ("fr", "M. Dupont est arrivé. Il pleut.", ["M. Dupont est arrivé.", "Il pleut."]),
        ("fr", "« Bonjour ! » dit-il. « Quoi ? » Rien.", ["« Bonjour ! » dit-il.", "« Quoi ? »", "Rien."]),
        ("fr", "J.-J. Rousseau le dit. Voilà.", ["J.-J. Rousseau le dit.", "Voilà."]),
        (
            "de",
            "»Was ist mit mir geschehen?« dachte er. Es war kein Traum. Am 3. Mai kam er. „Ja.“ Er ging.",
            [
                "»Was ist mit mir geschehen?« dachte er.",
                "Es war kein Traum.",
                "Am 3. Mai kam er.",
                "„Ja.“",
                "Er ging.",
            ],
        ),
        (
            "ja",
            "吾輩は猫である。名前はまだ無い。「どこで生れたか？」とんと見当がつかぬ！",
            ["吾輩は猫である。", "名前はまだ無い。", "「どこで生れたか？」", "とんと見当がつかぬ！"],
        ),
        ("zh", "我有书。你呢？", ["我有书。", "你呢？"]),
        ("tlh", "Qapla'. NuqneH? Mr. Worf.", ["Qapla'.", "NuqneH?", "Mr. Worf."]),
        ("en", "   ", []),
        ("en", "", []),
    ],
)
def test_split_sentences_examples(language: str, paragraph: str, sentences: list[str]) -> None:
    assert split_sentences(paragraph, language) == sentences


def test_pysbd_settles_what_the_rules_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    real = segment._pysbd_sentences

    def spy(text: str, code: str) -> list[str] | None:
        asked.append(text)
        return real(text, code)

    monkeypatch.setattr(segment, "_pysbd_sentences", spy)
    # "U.S." may or may not end a sentence: pysbd is asked about that stretch only
    result = split_sentences("It rained. He lives in the U.S. He works at home. Then it stopped.", "en")
    assert result == ["It rained.", "He lives in the U.S.", "He works at home.", "Then it stopped."]
    assert asked == ["He lives in the U.S. He works at home."]
    # a plain paragraph never reaches pysbd
    asked.clear()
    plain = "It rained. Stop! Really? Mr. Smith left."
    assert split_sentences(plain, "en") == ["It rained.", "Stop!", "Really?", "Mr. Smith left."]
    assert asked == []


@pytest.mark.parametrize(
    "broken",
    [
        lambda text, code: [text.replace("U", "")],  # pysbd dropped a character
        lambda text, code: [text[len(text) // 2 :], text[: len(text) // 2]],  # reordered
        lambda text, code: None,  # pysbd raised (the adapter returns None)
    ],
)
def test_split_sentences_falls_back_to_rules_when_pysbd_misbehaves(
    monkeypatch: pytest.MonkeyPatch, broken
) -> None:
    monkeypatch.setattr(segment, "_pysbd_sentences", broken)
    paragraph = "It rained. He lives in the U.S. He works at home."
    # the rules' own guess stands: an acronym does not end a sentence
    assert split_sentences(paragraph, "en") == ["It rained.", "He lives in the U.S. He works at home."]


def test_pysbd_adapter_survives_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    import pysbd

    class Exploding:
        def __init__(self, **kwargs: object) -> None:
            pass

        def segment(self, text: str) -> list[str]:
            raise IndexError("pysbd bug")

    monkeypatch.setattr(pysbd, "Segmenter", Exploding)
    assert segment._pysbd_sentences("A. B.", "en") is None
    assert split_sentences("He lives in the U.S. He works.", "en") == ["He lives in the U.S. He works."]


# --------------------------------------------------------------------------------------------
# Chunks
# --------------------------------------------------------------------------------------------


def test_chunk_text_prefers_the_strongest_punctuation() -> None:
    sentence = "This is a long sentence, with commas; and semicolons: and more words — dashes too, to see."
    assert chunk_text(sentence, 40) == [
        "This is a long sentence, with commas;",
        "and semicolons:",
        "and more words — dashes too, to see.",
    ]
    assert chunk_text("Some words then more words — and a dash here", 30) == [
        "Some words then more words —",
        "and a dash here",
    ]
    assert chunk_text("one two three four five six", 10) == ["one two", "three four", "five six"]
    assert chunk_text("short", 10) == ["short"]
    assert chunk_text("  padded  ", 10) == ["padded"]
    assert chunk_text("", 10) == [] and chunk_text("   ", 3) == []


def test_chunk_text_splits_a_word_only_when_it_alone_is_too_long() -> None:
    assert chunk_text("a Supercalifragilistic word", 10) == ["a", "Supercalif", "ragilistic", "word"]
    assert chunk_text("abc.def,ghi", 5) == ["abc.", "def,", "ghi"]  # at punctuation, not inside "def"
    assert chunk_text("e\u0301e\u0301e\u0301", 3) == [
        "e\u0301",
        "e\u0301",
        "e\u0301",
    ]  # accents stay on their letter
    assert chunk_text("吾輩は猫である、名前はまだ無い、どこで生れたかとんと見当がつかぬ", 10) == [
        "吾輩は猫である、",
        "名前はまだ無い、",
        "どこで生れたかとんと",
        "見当がつかぬ",
    ]


def test_chunk_text_rejects_a_useless_limit() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        chunk_text("text", 0)
    with pytest.raises(ValueError, match="max_chars"):
        segment_paragraph("text", "en", 0)


# --------------------------------------------------------------------------------------------
# Paragraphs
# --------------------------------------------------------------------------------------------


def test_segment_paragraph_displays_original_and_speaks_normalised() -> None:
    segments = segment_paragraph("Mr. Smith paid $5 in 1851. * * * The end.", "en", 200)
    assert segments == [
        Segment("Mr. Smith paid $5 in 1851.", "Mister Smith paid five dollars in eighteen fifty-one."),
        Segment("* * * The end.", "The end."),  # "* * *" has nothing to say: it goes with its neighbour
    ]


def test_segment_paragraph_shares_a_long_sentence_display_among_its_pieces() -> None:
    sentence = (
        "Mr. Smith paid $5,000 in 1851 for Chapter IV of a very long book that goes on and on, "
        "with many clauses; and many words, until it is done."
    )
    segments = segment_paragraph(sentence, "en", 50)
    assert len(segments) > 2
    assert all(0 < len(s.spoken) <= 50 and s.display for s in segments)
    assert " ".join(s.display for s in segments) == sentence  # cut at spaces, nothing lost or repeated
    spoken = " ".join(s.spoken for s in segments)
    assert spoken.startswith("Mister Smith paid five thousand dollars in eighteen fifty-one for Chapter four")
    # the display share follows the spoken share: the first piece does not show the whole sentence
    assert len(segments[0].display) < len(sentence) / 2


def test_segment_paragraph_gives_each_piece_its_own_text_when_display_has_too_few_words() -> None:
    segments = segment_paragraph("1234567890123", "en", 20)  # one "word", a long spoken text
    assert len(segments) > 1
    assert segments[0].display == "1234567890123"
    assert [s.display for s in segments[1:]] == [s.spoken for s in segments[1:]]
    assert all(len(s.spoken) <= 20 for s in segments)


def test_segment_paragraph_skips_what_cannot_be_said() -> None:
    assert segment_paragraph("* * *", "en", 100) == []
    assert segment_paragraph("— … —", "fr", 100) == []
    assert segment_paragraph("", "en", 100) == []


# --------------------------------------------------------------------------------------------
# Properties: nothing is dropped, reordered or too long
# --------------------------------------------------------------------------------------------

ANY_PIECE = st.one_of(
    WORD,
    SEPARATOR,
    st.text(max_size=8),  # arbitrary unicode, including CJK, marks, controls, surrogates
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=30, max_size=90),  # very long words
    st.sampled_from(["Mr.", "Dr.", "U.S.", "J.", "M.", "3.5", "No.", "etc.", "XIX", "I", "«", "»", "„", "“"]),
)
PARAGRAPH = st.lists(ANY_PIECE, max_size=40).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(paragraph=PARAGRAPH, language=LANGUAGES)
def test_split_sentences_keeps_all_text_in_order(paragraph: str, language: str) -> None:
    sentences = split_sentences(paragraph, language)
    assert squeeze("".join(sentences)) == squeeze(paragraph)
    assert tokens(" ".join(sentences)) == tokens(paragraph)
    assert all(s and s == s.strip() for s in sentences)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sentence=PARAGRAPH, max_chars=st.integers(min_value=1, max_value=80))
def test_chunk_text_keeps_all_text_within_the_limit(sentence: str, max_chars: int) -> None:
    chunks = chunk_text(sentence, max_chars)
    assert all(0 < len(c) <= max_chars and c == c.strip() for c in chunks)
    assert squeeze("".join(chunks)) == squeeze(sentence)
    if all(len(t) <= max_chars for t in tokens(sentence)):
        assert tokens(" ".join(chunks)) == tokens(sentence)  # no word was cut


@st.composite
def speakable_paragraphs(draw: st.DrawFn) -> tuple[str, list[str]]:
    words = draw(st.lists(WORD, min_size=1, max_size=40))
    parts = []
    for word in words:
        parts.append(word)
        parts.append(draw(SEPARATOR))
    return "".join(parts), words


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=speakable_paragraphs(), language=LANGUAGES, max_chars=st.integers(min_value=16, max_value=120))
def test_segment_paragraph_speaks_every_word(
    sample: tuple[str, list[str]], language: str, max_chars: int
) -> None:
    """Words of lower-case or caseless letters only (no digits, Roman numerals or titles; words
    that an abbreviation of the language could stand for are not generated; none is longer than
    max_chars, so none is split): every one of them is spoken, in order, and shown in the display
    text, in order."""
    paragraph, words = sample
    forbidden = abbreviation_words(language)
    assume(not any(w.lower() in forbidden for w in letter_words(" ".join(words))))
    expected = letter_words(visible(paragraph))
    assume(all(len(w) <= max_chars for w in expected))  # a soft hyphen may join two words
    segments = segment_paragraph(paragraph, language, max_chars)
    assert all(0 < len(s.spoken) <= max_chars and s.display for s in segments)
    assert is_subsequence(expected, letter_words(" ".join(s.spoken for s in segments)))
    assert is_subsequence(expected, letter_words(visible(" ".join(s.display for s in segments))))
    # display text is original text, or (a piece of a sentence with too few words) its spoken text
    assert all(s.display in paragraph or s.display == s.spoken for s in segments)


# --------------------------------------------------------------------------------------------
# Real books
# --------------------------------------------------------------------------------------------


def plain_words(paragraph: str, language: str) -> list[str]:
    """Letter-words that no rule rewrites: lower-case, not glued to a digit, not an abbreviation."""
    forbidden = abbreviation_words(language)
    out = []
    for m in re.finditer(r"[^\W\d_]+", visible(paragraph)):
        word = m.group(0)
        glued = (m.start() > 0 and paragraph[m.start() - 1 : m.start()].isdigit()) or (
            m.end() < len(paragraph) and paragraph[m.end()].isdigit()
        )
        if word.islower() and not glued and word not in forbidden:
            out.append(word)
    return out


def test_moby_dick_whole_book_fast_and_complete(moby_paragraphs: list[str]) -> None:
    max_chars = 300
    start = time.perf_counter()
    spoken = [segment_paragraph(p, "en-US", max_chars) for p in moby_paragraphs]
    elapsed = time.perf_counter() - start
    chars = sum(len(p) for p in moby_paragraphs)
    assert chars > 1_000_000
    assert elapsed < 20, f"segmenting and normalising Moby-Dick took {elapsed:.1f} s"
    segments = [s for paragraph in spoken for s in paragraph]
    assert len(segments) > 9000
    assert all(0 < len(s.spoken) <= max_chars for s in segments)
    for paragraph, pieces in zip(moby_paragraphs, spoken, strict=True):
        said = letter_words(" ".join(s.spoken for s in pieces))
        assert is_subsequence(plain_words(paragraph, "en"), said), paragraph[:80]
    said = " ".join(s.spoken for s in segments)
    assert "Call me Ishmael." in said
    assert not re.search(r"\d", said)


@pytest.mark.parametrize(
    ("fixture", "language"),
    [("esprit_paragraphs", "fr"), ("kafka_paragraphs", "de"), ("kusamakura_paragraphs", "ja")],
)
def test_other_books_keep_every_word(request: pytest.FixtureRequest, fixture: str, language: str) -> None:
    paragraphs: list[str] = request.getfixturevalue(fixture)
    count = 0
    for paragraph in paragraphs:
        sentences = split_sentences(paragraph, language)
        assert squeeze("".join(sentences)) == squeeze(paragraph)
        pieces = segment_paragraph(paragraph, language, 120)
        assert all(0 < len(s.spoken) <= 120 for s in pieces)
        assert is_subsequence(
            plain_words(paragraph, language), letter_words(" ".join(s.spoken for s in pieces))
        )
        count += len(pieces)
    assert count > 1000
