from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ebook2audio.text.normalize import ABBREVIATIONS, normalize, rules_for, speakable
from ebook2audio.text.segment import split_sentences

CASES = [
    # English numbers, money, ordinals, years, times
    ("en", "It cost $5.", "It cost five dollars."),
    ("en", "£3.50 each", "three pounds and fifty pence each"),
    ("en", "$0.99", "ninety-nine cents"),
    ("en", "$1", "one dollar"),
    ("en", "$3 million", "three million dollars"),
    ("en", "5 €", "five euros"),
    ("en", "1,000 men", "one thousand men"),
    ("en", "1 000 000", "one million"),
    ("en", "3.5 miles", "three point five miles"),
    ("en", "50% off", "fifty percent off"),
    ("en", "the 1st, 2nd, 3rd and 21st", "the first, second, third and twenty-first"),
    ("en", "the 20th century", "the twentieth century"),
    ("en", "In 1851.", "In eighteen fifty-one."),
    ("en", "in 2024", "in twenty twenty-four"),
    ("en", "the 1850s", "the eighteen fifties"),
    ("en", "at 10:30", "at ten thirty"),
    ("en", "at 10:05 p.m.", "at ten oh five P M"),
    ("en", "at 9:00", "at nine o'clock"),
    ("en", "pages 10–20", "pages ten to twenty"),
    ("en", "20°C", "twenty degrees Celsius"),
    ("en", "-5 degrees", "minus five degrees"),
    ("en", "007", "zero zero seven"),
    ("en", "2½ cups", "two and one half cups"),
    ("en", "A4 paper", "A four paper"),
    ("en", "150,000 lbs. of fish", "one hundred and fifty thousand pounds of fish"),
    # Roman numerals: headings and regnal names, never the pronoun
    ("en", "Chapter IV", "Chapter four"),
    ("en", "CHAPTER XII. The Pulpit", "CHAPTER twelve. The Pulpit"),
    ("en", "Chapter I", "Chapter one"),
    ("en", "Henry VIII married", "Henry the Eighth married"),
    ("en", "Louis XIV", "Louis the Fourteenth"),
    ("en", "Charles I of England", "Charles the First of England"),
    ("en", "World War II", "World War two"),
    ("en", "II.", "two."),
    ("en", "I.", "I."),
    ("en", "I think I am.", "I think I am."),
    ("en", "the book I read", "the book I read"),
    ("en", "Then Charles I said", "Then Charles I said"),
    # abbreviations
    ("en", "Mr. Smith met Dr. Watson.", "Mister Smith met Doctor Watson."),
    ("en", "Mrs. Hussey", "Missus Hussey"),
    ("en", "Mr Smith", "Mister Smith"),
    ("en", "St. Paul", "Saint Paul"),
    ("en", "on Baker St.", "on Baker Street."),
    ("en", "apples, pears, etc.", "apples, pears, et cetera."),
    ("en", "e.g. this, i.e. that", "for example this, that is that"),
    ("en", "cats vs. dogs", "cats versus dogs"),
    ("en", "No. 5", "number five"),
    ("en", "No. They", "No. They"),
    # symbols and typography
    ("en", "salt & pepper", "salt and pepper"),
    ("en", "2 + 2 = 4", "two plus two equals four"),
    ("en", "me@home", "me at home"),
    ("en", "§ 3", "section three"),
    ("en", "He said—no, never—that", "He said, no, never, that"),
    ("en", "well -- maybe", "well, maybe"),
    ("en", "(SPERM WHALE).—This whale", "(SPERM WHALE). This whale"),
    ("en", "“Fine,” she said… ‘Good.’", "\"Fine,\" she said... 'Good.'"),
    ("en", "a word[1] and another*", "a word and another"),
    ("en", "the pound.1", "the pound."),
    ("en", "soft\u00adhyphen", "softhyphen"),
    ("en", "tab\there\nnew  line\x07bell\u200b", "tab here new line bell"),
    ("en", "ﬁne ﬂower", "fine flower"),
    ("en", "* * *", ""),
    ("en-US", "Dr. No", "Doctor No"),
    # French
    ("fr", "M. Dupont est arrivé.", "Monsieur Dupont est arrivé."),
    ("fr-CA", "Mme Martin et Mlle Durand", "Madame Martin et Mademoiselle Durand"),
    ("fr", "Il a 1 000 livres.", "Il a mille livres."),
    ("fr", "Il a 1\u00a0000 livres.", "Il a mille livres."),
    ("fr", "1.000 hommes", "mille hommes"),
    ("fr", "3,5 kg", "trois virgule cinq kg"),
    ("fr", "50 %", "cinquante pour cent"),
    ("fr", "5 €", "cinq euros"),
    ("fr", "10 $", "dix dollars"),
    ("fr", "1,50 €", "un euro et cinquante centimes"),
    ("fr", "2 000 000 €", "deux millions d'euros"),
    ("fr", "1 £", "une livre"),
    ("fr", "le 1er mai", "le premier mai"),
    ("fr", "la 1re fois", "la première fois"),
    ("fr", "le 2e jour", "le deuxième jour"),
    ("fr", "le 2ème", "le deuxième"),
    ("fr", "la 2nde", "la seconde"),
    ("fr", "le XIXe siècle", "le dix-neuvième siècle"),
    ("fr", "au XIX siècle", "au dix-neuvième siècle"),
    ("fr", "François Ier", "François premier"),
    ("fr", "En 1851", "En mille huit cent cinquante et un"),
    ("fr", "à 10h30", "à dix heures trente"),
    ("fr", "à 1h", "à une heure"),
    ("fr", "à 10:30", "à dix heures trente"),
    ("fr", "Chapitre IV", "Chapitre quatre"),
    ("fr", "Livre III", "Livre trois"),
    ("fr", "LIVRE I", "LIVRE premier"),
    ("fr", "Louis XIV", "Louis quatorze"),
    ("fr", "Henri IV et Napoléon III", "Henri quatre et Napoléon trois"),
    ("fr", "p. ex. ceci", "par exemple ceci"),
    ("fr", "c.-à-d. ceci", "c'est-à-dire ceci"),
    ("fr", "n° 5", "numéro cinq"),
    ("fr", "etc.", "et cætera."),
    ("fr", "— Bonjour ! dit-il.", "Bonjour! dit-il."),
    ("fr", "« Ce livre ? » Le De", '"Ce livre?" Le De'),  # "Le", "De", "Ce" are not numerals
    ("fr", "portion[M89], et", "portion, et"),
    # other languages: generic tables + num2words
    ("de", "Kapitel IV", "Kapitel vier"),
    ("de", "1851", "achtzehnhunderteinundfünfzig"),
    ("de", "3,5 %", "drei Komma fünf Prozent"),
    ("de", "1.000", "eintausend"),
    ("de", "10:30 Uhr", "zehn Uhr dreißig"),
    ("de", "z. B. hier", "zum Beispiel hier"),
    ("de", "»Was?« dachte er", '"Was?" dachte er'),
    ("es", "el 1º y la 2ª", "el primero y la segunda"),
    ("es", "5 €", "cinco euros"),
    ("it", "5 €", "cinque euro"),
    ("ru", "5 €", "пять евро"),
    ("ru", "Глава IV", "Глава четыре"),
    ("ja", "名前は123もない。", "名前は百二十三もない。"),
    ("zh", "我有3本书。", "我有3本书。"),  # no num2words for Chinese: digits are left to the engine
    ("tlh", "Some 12 text & more", "Some 12 text & more"),  # unknown language: typography only
]


@pytest.mark.parametrize(("language", "text", "expected"), CASES)
def test_normalize_examples(language: str, text: str, expected: str) -> None:
    assert normalize(text, language) == expected


def test_speakable() -> None:
    assert speakable("a") and speakable("5") and speakable("名") and speakable("...Oui!")
    assert not speakable("") and not speakable(" ... — * * *") and not speakable("«»")


def test_rules_for_falls_back_to_the_generic_table() -> None:
    assert rules_for("en-GB").percent == "percent"
    assert rules_for("sv").percent == ""  # no table: the engine reads "%" itself
    assert normalize("5 %", "sv") == "fem %"  # but num2words still spells the number


# --------------------------------------------------------------------------------------------
# Properties: no word is ever lost
# --------------------------------------------------------------------------------------------

_LIGATURES = "".join(chr(c) for c in range(0xFB00, 0xFB07))
# lower-case and caseless letters: no Roman numerals, titles or capitalised abbreviations
WORD = st.text(
    alphabet=st.characters(categories=("Ll", "Lo"), exclude_characters=_LIGATURES),
    min_size=1,
    max_size=12,
)
SEPARATOR = st.sampled_from(
    [
        " ",
        " ",
        " ",
        ", ",
        ". ",
        "! ",
        "? ",
        "; ",
        ": ",
        " — ",
        "–",
        "-",
        "… ",
        " « ",
        " » ",
        '"',
        "'",
        "(",
        ") ",
        "[",
        "] ",
        "*",
        " & ",
        "%",
        " § ",
        "@",
        " + ",
        " = ",
        "\n",
        "\t",
        "\u00a0",
        "\u00ad",
        "\u200b",
        "。",
        "、",
        "¿",
        "¡",
        "__",
        "\x07",
    ]
)
LANGUAGES = st.sampled_from(["en", "fr", "de", "es", "ru", "ja", "zh", "tlh"])


def letter_words(text: str) -> list[str]:
    """Maximal runs of letters (str.isalpha), in order."""
    return "".join(ch if ch.isalpha() else " " for ch in text).split()


def visible(text: str) -> str:
    """What a reader sees: NFC, without invisible format characters (soft hyphens join a word)."""
    text = unicodedata.normalize("NFC", text)
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def is_subsequence(needles: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(any(n == h for h in it) for n in needles)


def abbreviation_words(language: str) -> set[str]:
    """Letter-words that an abbreviation rule of this language may replace."""
    words: set[str] = set()
    for abbreviation in ABBREVIATIONS.get(language, ()):
        words.update(w.lower() for w in letter_words(abbreviation.written))
    return words


@st.composite
def texts(draw: st.DrawFn) -> tuple[str, list[str]]:
    words = draw(st.lists(WORD, min_size=1, max_size=25))
    parts = []
    for word in words:
        parts.append(word)
        parts.append(draw(SEPARATOR))
    return "".join(parts), words


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=texts(), language=LANGUAGES)
def test_normalize_keeps_every_letter_word_in_order(sample: tuple[str, list[str]], language: str) -> None:
    """Every letter-word of the input (NFC, invisible characters removed) is in the output, in
    order. Words that an abbreviation of the language could stand for are not generated."""
    text, words = sample
    forbidden = abbreviation_words(language)
    assume(not any(w.lower() in forbidden for w in letter_words(" ".join(words))))
    out = normalize(text, language)
    assert is_subsequence(letter_words(visible(text)), letter_words(out))
    assert out == out.strip() and "  " not in out
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in out)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200), language=LANGUAGES)
def test_normalize_never_fails_on_arbitrary_text(text: str, language: str) -> None:
    out = normalize(text, language)
    assert isinstance(out, str) and out == out.strip()
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in out)


@settings(max_examples=200, deadline=None)
@given(value=st.integers(min_value=0, max_value=10**12), language=st.sampled_from(["en", "fr", "de", "es"]))
def test_every_number_is_spelled(value: int, language: str) -> None:
    for text in (str(value), f"{value:,}" if language == "en" else f"{value:,}".replace(",", " ")):
        out = normalize(f"Il y a {text} choses.", language)
        assert not re.search(r"\d", out), out


# --------------------------------------------------------------------------------------------
# A real book
# --------------------------------------------------------------------------------------------


def test_esprit_des_lois_has_no_digits_or_footnote_markers_left(esprit_paragraphs: list[str]) -> None:
    spoken = [normalize(s, "fr") for p in esprit_paragraphs for s in split_sentences(p, "fr")]
    assert len(spoken) > 4000
    joined = "\n".join(spoken)
    assert not re.search(r"\d", joined)  # every number is spelled by num2words
    assert "[" not in joined.replace("[Illustration", "")  # [1], [C61], [M89] footnote calls are gone
    assert "Monsieur Law" in joined and "Louis quatorze" in joined
    assert "dix-huitième siècle" in joined or "dix-septième siècle" in joined
