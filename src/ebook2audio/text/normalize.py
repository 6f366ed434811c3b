"""Turn written text into speakable text for a TTS engine.

``normalize(text, language)`` rewrites what an engine would misread: numbers (cardinals with
thousands separators, decimals, percentages, currency, ordinals, years, times, ranges), Roman
numerals after heading words and regnal names, common abbreviations, symbols, and typography
(quotes, dashes, ellipses, footnote markers, soft hyphens, control characters, whitespace).

The rules are tables (:class:`SpeechRules`), one per language; English and French have full
tables, German, Spanish, Italian, Portuguese, Dutch and Russian have symbol and heading tables,
and every other language gets the generic table: typography only, plus number spelling when
num2words supports the language. Where no rule applies, the text is left for the engine's
phonemiser (espeak-ng reads digits and symbols in its own language).

Numbers are always spelled by num2words (this module is its adapter); if num2words fails on a
number, the digits are kept. Normalisation never drops a word: every letter-word of the input is
still in the output, except abbreviations and Roman numerals, which are replaced by their
spoken form.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Literal

from ebook2audio.text.languages import LanguageInfo, base_language, language_info

__all__ = [
    "ABBREVIATIONS",
    "Abbreviation",
    "Currency",
    "SpeechRules",
    "normalize",
    "rules_for",
    "speakable",
]

logger = logging.getLogger(__name__)


def _words(text: str) -> frozenset[str]:
    """A constant set of words written as one space-separated string."""
    return frozenset(text.split())


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

Context = Literal["any", "name", "number"]


@dataclass(frozen=True)
class Abbreviation:
    """An abbreviation and how it is spoken.

    ``before`` says what must follow for the expansion to apply: "any" (always), "name" (a
    capitalised word: "Mr. Smith", "St-Denis") or "number" (a digit or a Roman numeral: "No. 5").
    """

    written: str  # as printed: "Mr.", "p. ex." (a space inside matches any spacing, or none)
    spoken: str
    before: Context = "any"
    ignore_case: bool = False
    dot_optional: bool = False  # also match without the final period ("Mr Smith", "Dr Watson")
    otherwise: str = ""  # spoken form when a "name" abbreviation has no name after it ("Baker St.")


@dataclass(frozen=True)
class Currency:
    singular: str
    plural: str
    sub_singular: str = ""  # "" = no subunit words: amounts with decimals are read as decimals
    sub_plural: str = ""
    feminine: bool = False  # French "une livre", "vingt et une livres"


@dataclass(frozen=True)
class SpeechRules:
    """How one language speaks what is written. Empty fields mean "leave it to the engine"."""

    abbreviations: tuple[Abbreviation, ...] = ()
    symbols: Mapping[str, str] = field(default_factory=dict)  # "&" -> "and"
    percent: str = ""
    degree: tuple[str, str] = ("", "")  # singular, plural
    minus: str = ""
    range_word: str = ""  # "10–20" -> "10 to 20"
    and_word: str = ""  # between units and cents
    currencies: Mapping[str, Currency] = field(default_factory=dict)  # hand-written money words
    magnitudes: tuple[str, ...] = ()  # "$3 million" -> "three million dollars"
    # heading words followed by a Roman numeral read as a cardinal ("Chapter IV"); value: feminine?
    heading_words: Mapping[str, bool] = field(default_factory=dict)
    first: tuple[str, str] = ("", "")  # how "I" reads after a heading word (masc., fem.) if not "one"
    regnal_names: frozenset[str] = frozenset()
    regnal: Literal["", "ordinal", "cardinal"] = ""  # "Henry the Eighth" / "Louis quatorze"
    ordinal_suffixes: Mapping[str, str] = field(default_factory=dict)  # "st" -> "m", "re" -> "f"
    roman_ordinals: bool = False  # French "XIXe", "Ier", "XIX siècle"
    century_words: tuple[str, ...] = ()
    ordinal_indicators: bool = False  # Spanish/Italian/Portuguese "1º", "2ª"
    time: Literal["", "en", "fr"] = ""
    hour_word: str = ""  # German "Uhr"
    year_style: bool = False  # 1851 -> "eighteen fifty-one" (num2words to="year")
    decades: bool = False  # "1850s" -> "eighteen fifties"
    fractions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:  # the tables are constants: make their mappings read-only
        for name in ("symbols", "currencies", "heading_words", "ordinal_suffixes", "fractions"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))


_EN_TITLES: Mapping[str, str] = MappingProxyType(
    {
        "Mr.": "Mister",
        "Mrs.": "Missus",
        "Ms.": "Miz",
        "Messrs.": "Messieurs",
        "Dr.": "Doctor",
        "Prof.": "Professor",
        "Capt.": "Captain",
        "Col.": "Colonel",
        "Gen.": "General",
        "Lt.": "Lieutenant",
        "Sgt.": "Sergeant",
        "Cpl.": "Corporal",
        "Rev.": "Reverend",
        "Hon.": "Honourable",
        "Gov.": "Governor",
        "Sen.": "Senator",
        "Rep.": "Representative",
        "St.": "Saint",
        "Mt.": "Mount",
        "Ft.": "Fort",
    }
)
_EN_MONTHS: Mapping[str, str] = MappingProxyType(
    {
        "Jan.": "January",
        "Feb.": "February",
        "Mar.": "March",
        "Apr.": "April",
        "Jun.": "June",
        "Jul.": "July",
        "Aug.": "August",
        "Sep.": "September",
        "Sept.": "September",
        "Oct.": "October",
        "Nov.": "November",
        "Dec.": "December",
    }
)

_EN_ABBREVIATIONS: tuple[Abbreviation, ...] = (
    *(
        Abbreviation(
            w,
            s,
            "name",
            dot_optional=w in ("Mr.", "Mrs.", "Ms.", "Dr.", "St."),
            otherwise="Street" if w == "St." else "",
        )
        for w, s in _EN_TITLES.items()
    ),
    *(Abbreviation(w, s, "number") for w, s in _EN_MONTHS.items()),
    Abbreviation("Jr.", "Junior"),
    Abbreviation("Sr.", "Senior"),
    Abbreviation("Esq.", "Esquire"),
    Abbreviation("etc.", "et cetera", ignore_case=True),
    Abbreviation("&c.", "et cetera"),
    Abbreviation("e.g.", "for example", ignore_case=True),
    Abbreviation("i.e.", "that is", ignore_case=True),
    Abbreviation("vs.", "versus", ignore_case=True),
    Abbreviation("viz.", "namely", ignore_case=True),
    Abbreviation("cf.", "compare", ignore_case=True),
    Abbreviation("approx.", "approximately", ignore_case=True),
    Abbreviation("ca.", "circa", "number", ignore_case=True),
    Abbreviation("No.", "number", "number", ignore_case=True),
    Abbreviation("Nos.", "numbers", "number", ignore_case=True),
    Abbreviation("#", "number", "number"),
    Abbreviation("pp.", "pages", "number"),
    Abbreviation("p.", "page", "number"),
    Abbreviation("vol.", "volume", "number", ignore_case=True),
    Abbreviation("vols.", "volumes", "number", ignore_case=True),
    Abbreviation("chap.", "chapter", "number", ignore_case=True),
    Abbreviation("ch.", "chapter", "number", ignore_case=True),
    Abbreviation("fig.", "figure", "number", ignore_case=True),
    Abbreviation("a.m.", "A M", ignore_case=True),
    Abbreviation("lbs.", "pounds"),
    Abbreviation("lb.", "pound"),
    Abbreviation("oz.", "ounces"),
    Abbreviation("ft.", "feet"),
    Abbreviation("yds.", "yards"),
    Abbreviation("hrs.", "hours"),
    Abbreviation("cwt.", "hundredweight"),
    Abbreviation("p.m.", "P M", ignore_case=True),
)

_FR_ABBREVIATIONS: tuple[Abbreviation, ...] = (
    Abbreviation("M.", "Monsieur", "name"),
    Abbreviation("MM.", "Messieurs", "name"),
    Abbreviation("Mme", "Madame", "name", dot_optional=True),
    Abbreviation("Mmes", "Mesdames", "name", dot_optional=True),
    Abbreviation("Mlle", "Mademoiselle", "name", dot_optional=True),
    Abbreviation("Mlles", "Mesdemoiselles", "name", dot_optional=True),
    Abbreviation("Mgr", "Monseigneur", "name", dot_optional=True),
    Abbreviation("Dr", "Docteur", "name", dot_optional=True),
    Abbreviation("Pr", "Professeur", "name", dot_optional=True),
    Abbreviation("Me", "Maître", "name"),
    Abbreviation("St", "Saint", "name", dot_optional=True),
    Abbreviation("Ste", "Sainte", "name", dot_optional=True),
    Abbreviation("Cie", "Compagnie"),
    Abbreviation("etc.", "et cætera", ignore_case=True),
    Abbreviation("&c.", "et cætera"),
    Abbreviation("p. ex.", "par exemple"),
    Abbreviation("c.-à-d.", "c'est-à-dire"),
    Abbreviation("c-à-d", "c'est-à-dire"),
    Abbreviation("cf.", "confer", ignore_case=True),
    Abbreviation("av. J.-C.", "avant Jésus-Christ"),
    Abbreviation("apr. J.-C.", "après Jésus-Christ"),
    Abbreviation("J.-C.", "Jésus-Christ"),
    Abbreviation("env.", "environ"),
    Abbreviation("n°", "numéro", "number", ignore_case=True),
    Abbreviation("nº", "numéro", "number", ignore_case=True),
    Abbreviation("nos", "numéros", "number"),
    Abbreviation("No", "numéro", "number", dot_optional=True),
    Abbreviation("pp.", "pages", "number"),
    Abbreviation("p.", "page", "number"),
    Abbreviation("t.", "tome", "number"),
    Abbreviation("vol.", "volume", "number", ignore_case=True),
    Abbreviation("chap.", "chapitre", "number", ignore_case=True),
    Abbreviation("art.", "article", "number", ignore_case=True),
    Abbreviation("fig.", "figure", "number", ignore_case=True),
)

_DE_ABBREVIATIONS: tuple[Abbreviation, ...] = (
    Abbreviation("z. B.", "zum Beispiel"),
    Abbreviation("d. h.", "das heißt"),
    Abbreviation("u. a.", "unter anderem"),
    Abbreviation("usw.", "und so weiter"),
    Abbreviation("bzw.", "beziehungsweise"),
    Abbreviation("vgl.", "vergleiche"),
    Abbreviation("ca.", "circa"),
    Abbreviation("Dr.", "Doktor", "name"),
    Abbreviation("Prof.", "Professor", "name"),
    Abbreviation("Nr.", "Nummer", "number"),
    Abbreviation("S.", "Seite", "number"),
)

_ES_ABBREVIATIONS: tuple[Abbreviation, ...] = (
    Abbreviation("Sr.", "señor", "name"),
    Abbreviation("Sra.", "señora", "name"),
    Abbreviation("Srta.", "señorita", "name"),
    Abbreviation("Dr.", "doctor", "name"),
    Abbreviation("Dra.", "doctora", "name"),
    Abbreviation("Ud.", "usted"),
    Abbreviation("Uds.", "ustedes"),
    Abbreviation("etc.", "etcétera", ignore_case=True),
    Abbreviation("pág.", "página", "number"),
)

_IT_ABBREVIATIONS: tuple[Abbreviation, ...] = (
    Abbreviation("Sig.", "signor", "name"),
    Abbreviation("Sig.ra", "signora", "name"),
    Abbreviation("Dott.", "dottor", "name"),
    Abbreviation("Prof.", "professor", "name"),
    Abbreviation("ecc.", "eccetera", ignore_case=True),
    Abbreviation("pag.", "pagina", "number"),
)

_PT_ABBREVIATIONS: tuple[Abbreviation, ...] = (
    Abbreviation("Sr.", "senhor", "name"),
    Abbreviation("Sra.", "senhora", "name"),
    Abbreviation("Dr.", "doutor", "name"),
    Abbreviation("Dra.", "doutora", "name"),
    Abbreviation("etc.", "etcétera", ignore_case=True),
    Abbreviation("pág.", "página", "number"),
)

_RU_ABBREVIATIONS: tuple[Abbreviation, ...] = (
    Abbreviation("т. е.", "то есть"),
    Abbreviation("т. к.", "так как"),
    Abbreviation("и т. д.", "и так далее"),
    Abbreviation("и т. п.", "и тому подобное"),
    Abbreviation("стр.", "страница", "number"),
)

ABBREVIATIONS: Mapping[str, tuple[Abbreviation, ...]] = MappingProxyType(
    {
        "en": _EN_ABBREVIATIONS,
        "fr": _FR_ABBREVIATIONS,
        "de": _DE_ABBREVIATIONS,
        "es": _ES_ABBREVIATIONS,
        "it": _IT_ABBREVIATIONS,
        "pt": _PT_ABBREVIATIONS,
        "ru": _RU_ABBREVIATIONS,
    }
)

_EN_REGNAL = _words(
    "Louis Henry Edward George William Charles James Richard John Elizabeth Mary Victoria "
    "Anne Philip Pius Leo Gregory Benedict Innocent Clement Urban Alexander Frederick "
    "Napoleon Peter Ivan Nicholas Catherine Francis Ferdinand Alfonso Ludwig Otto Gustavus "
    "Gustav Christian Paul Boniface Sixtus Adrian Stephen Constantine Ramses Rameses "
    "Amenhotep Thutmose Ptolemy Antiochus Darius Xerxes Artaxerxes Harold Malcolm David "
    "Robert Wilhelm Friedrich Leopold Joseph Maximilian Rudolf Sigismund Casimir Haakon Olaf "
    "Magnus Eric Valdemar Julius Martin Eugene Hadrian Selim Suleiman Mehmed Murad Mahmud "
    "Pedro Carlos Felipe Fernando Manuel Umberto Alaric Theodoric"
)
_FR_REGNAL = _words(
    "Louis Henri Charles François Philippe Jean Napoléon Pie Léon Grégoire Benoît Clément "
    "Urbain Innocent Jacques Guillaume Édouard Richard Frédéric Pierre Paul Alexandre Nicolas "
    "Catherine Marie Élisabeth Victoria Ferdinand Alphonse Léopold Rodolphe Othon Gustave "
    "Christian Sixte Boniface Jules Ramsès Ptolémée Georges Hugues Robert Lothaire Clotaire "
    "Childéric Dagobert Pépin Eugène Martin Adrien Étienne Constantin Darius Xerxès Antiochus"
)

_EN_RULES = SpeechRules(
    abbreviations=_EN_ABBREVIATIONS,
    symbols={"&": "and", "%": "percent", "§": "section", "@": "at", "+": "plus", "=": "equals"},
    percent="percent",
    degree=("degree", "degrees"),
    minus="minus",
    range_word="to",
    and_word="and",
    currencies={
        "$": Currency("dollar", "dollars", "cent", "cents"),
        "£": Currency("pound", "pounds", "penny", "pence"),
        "€": Currency("euro", "euros", "cent", "cents"),
        "¥": Currency("yen", "yen"),
        "₽": Currency("rouble", "roubles", "kopek", "kopeks"),
        "₹": Currency("rupee", "rupees", "paisa", "paise"),
        "¢": Currency("cent", "cents"),
    },
    magnitudes=("thousand", "million", "billion", "trillion"),
    heading_words={
        w: False
        for w in [
            "chapter",
            "book",
            "part",
            "volume",
            "vol",
            "act",
            "scene",
            "canto",
            "section",
            "article",
            "appendix",
            "letter",
            "psalm",
            "stave",
            "war",
        ]
    },
    regnal_names=_EN_REGNAL,
    regnal="ordinal",
    ordinal_suffixes={"st": "m", "nd": "m", "rd": "m", "th": "m"},
    time="en",
    year_style=True,
    decades=True,
    fractions={
        "½": "one half",
        "¼": "one quarter",
        "¾": "three quarters",
        "⅓": "one third",
        "⅔": "two thirds",
        "⅛": "one eighth",
    },
)

_FR_RULES = SpeechRules(
    abbreviations=_FR_ABBREVIATIONS,
    symbols={"&": "et", "%": "pour cent", "§": "paragraphe", "@": "arobase", "+": "plus", "=": "égale"},
    percent="pour cent",
    degree=("degré", "degrés"),
    minus="moins",
    range_word="à",
    and_word="et",
    currencies={
        "€": Currency("euro", "euros", "centime", "centimes"),
        "$": Currency("dollar", "dollars", "cent", "cents"),
        "£": Currency("livre", "livres", "penny", "pence", feminine=True),
        "¥": Currency("yen", "yens"),
        "₽": Currency("rouble", "roubles", "kopeck", "kopecks"),
        "¢": Currency("cent", "cents"),
    },
    magnitudes=("millions", "million", "milliards", "milliard"),
    heading_words={
        "chapitre": False,
        "livre": False,
        "partie": True,
        "tome": False,
        "acte": False,
        "scène": True,
        "section": True,
        "article": False,
        "titre": False,
        "chant": False,
        "lettre": True,
        "volume": False,
        "annexe": True,
        "leçon": True,
        "vol": False,
    },
    first=("premier", "première"),
    regnal_names=_FR_REGNAL,
    regnal="cardinal",
    ordinal_suffixes={
        "er": "m",
        "re": "f",
        "ère": "f",
        "ers": "mp",
        "res": "fp",
        "ères": "fp",
        "e": "m",
        "ème": "m",
        "eme": "m",
        "è": "m",
        "es": "mp",
        "èmes": "mp",
        "emes": "mp",
        "nd": "second",
        "nde": "seconde",
        "nds": "seconds",
        "ndes": "secondes",
    },
    roman_ordinals=True,
    century_words=("siècle", "siècles"),
    time="fr",
    fractions={"½": "un demi", "¼": "un quart", "¾": "trois quarts", "⅓": "un tiers", "⅔": "deux tiers"},
)


def _generic_rules(
    abbreviations: tuple[Abbreviation, ...],
    symbols: dict[str, str],
    degree: tuple[str, str],
    range_word: str,
    heading_words: str,
    **extra: object,
) -> SpeechRules:
    rules = SpeechRules(
        abbreviations=abbreviations,
        symbols=symbols,
        percent=symbols.get("%", ""),
        degree=degree,
        range_word=range_word,
        heading_words=dict.fromkeys(heading_words.split(), False),
    )
    return replace(rules, **extra)


_RULES: Mapping[str, SpeechRules] = MappingProxyType(
    {
        "en": _EN_RULES,
        "fr": _FR_RULES,
        "de": _generic_rules(
            _DE_ABBREVIATIONS,
            {"&": "und", "%": "Prozent", "§": "Paragraf", "@": "at", "+": "plus", "=": "gleich"},
            ("Grad", "Grad"),
            "bis",
            "kapitel teil buch band akt szene abschnitt",
            hour_word="Uhr",
            year_style=True,
        ),
        "es": _generic_rules(
            _ES_ABBREVIATIONS,
            {"&": "y", "%": "por ciento", "§": "sección", "@": "arroba", "+": "más", "=": "igual a"},
            ("grado", "grados"),
            "a",
            "capítulo libro parte tomo acto escena",
            ordinal_indicators=True,
        ),
        "it": _generic_rules(
            _IT_ABBREVIATIONS,
            {"&": "e", "%": "per cento", "§": "paragrafo", "@": "chiocciola", "+": "più", "=": "uguale a"},
            ("grado", "gradi"),
            "a",
            "capitolo libro parte tomo atto scena canto",
            ordinal_indicators=True,
        ),
        "pt": _generic_rules(
            _PT_ABBREVIATIONS,
            {"&": "e", "%": "por cento", "§": "parágrafo", "@": "arroba", "+": "mais", "=": "igual a"},
            ("grau", "graus"),
            "a",
            "capítulo livro parte tomo ato cena",
            ordinal_indicators=True,
        ),
        "nl": _generic_rules(
            (),
            {"&": "en", "%": "procent", "@": "apenstaartje", "+": "plus", "=": "is gelijk aan"},
            ("graad", "graden"),
            "tot",
            "hoofdstuk deel boek",
        ),
        "ru": _generic_rules(
            _RU_ABBREVIATIONS,
            {"&": "и", "%": "процентов", "§": "параграф", "+": "плюс", "=": "равно"},
            ("градус", "градусов"),
            "",
            "глава часть том книга",
        ),
    }
)

_GENERIC_RULES = SpeechRules()

_CURRENCY_CODES: Mapping[str, str] = MappingProxyType(
    {"$": "USD", "£": "GBP", "€": "EUR", "¥": "JPY", "₽": "RUB", "₹": "INR", "₩": "KRW"}
)


def rules_for(language: str) -> SpeechRules:
    """The speech rules used for a BCP 47 tag (the generic table when the language has none)."""
    return _RULES.get(base_language(language), _GENERIC_RULES)


# ---------------------------------------------------------------------------------------------
# Typography
# ---------------------------------------------------------------------------------------------

# Format (Cf) characters (soft hyphen, zero-width spaces and joiners, bidi marks, BOM...),
# surrogates and private-use characters: removed. C0/C1 controls: become spaces.
_INVISIBLE = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff\ue000-\uf8ff\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
    "\U000f0000-\U0010ffff]"
)
_HAS_DIGIT = re.compile(r"\d")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_TYPOGRAPHY = str.maketrans(
    {
        "“": '"',
        "”": '"',
        "„": '"',
        "‟": '"',
        "«": '"',
        "»": '"',
        "＂": '"',
        "″": '"',
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‛": "'",
        "‹": "'",
        "›": "'",
        "′": "'",
        "ʼ": "'",
        "…": "...",
        "‥": "..",
        "ﬀ": "ff",
        "ﬁ": "fi",
        "ﬂ": "fl",
        "ﬃ": "ffi",
        "ﬄ": "ffl",
        "ﬅ": "st",
        "ﬆ": "st",
        "−": "-",
        "‐": "-",
        "‑": "-",
        "_": " ",
        "*": " ",
        "†": " ",
        "‡": " ",
        "\t": " ",
        "\n": " ",
        "\r": " ",
        "\x0b": " ",
        "\x0c": " ",
        "\u2028": " ",
        "\u2029": " ",
        "\x85": " ",
    }
)
_SUPERSCRIPT_LETTERS = str.maketrans("ᵉʳᵈˢᵗʰⁿᵃᵐᵒ", "erdsthnamo")
_SUPERSCRIPT_SUFFIX = re.compile(r"([0-9IVXLCDM])([ᵉʳᵈˢᵗʰⁿᵃᵐᵒ]+)")
_SUPERSCRIPT_DIGITS = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹]+")
_SUPERSCRIPTS = re.compile("[ᵉʳᵈˢᵗʰⁿᵃᵐᵒ⁰¹²³⁴⁵⁶⁷⁸⁹]")
# footnote references: [1], [12a], [C61], [M89], [*], {3}; a number glued after the end of a
# sentence ("the pound.1 ") is one too
_FOOTNOTE = re.compile(r"\[\s*(?:[A-Za-z]{0,2}\d{1,4}[a-z]?|[*†‡§#]+)\s*\]|\{\s*\d{1,4}\s*\}")
_GLUED_NOTE = re.compile(r"(?<=[^\W\d_][.;:!?])(?:[\"”’)\]]*)\d{1,3}(?=\s|$)")
_SPACED_DOTS = re.compile(r"\.(?:\s\.){2,}")
# French spacing inside guillemets: "« Bonjour »" -> "«Bonjour»" (German »Was?« dachte er: untouched)
_GUILLEMET_SPACE = re.compile(r"(?:(?<=\s)|^)([«‹])\s+|\s+([»›])(?=\s|$|[,.;:!?)])")


def _keep_closers(m: re.Match[str]) -> str:
    return "".join(ch for ch in m.group(0) if not ch.isdigit())


def _clean(text: str) -> str:
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
        text = _INVISIBLE.sub("", text)
        if _SUPERSCRIPTS.search(text):
            text = _SUPERSCRIPT_SUFFIX.sub(lambda m: m[1] + m[2].translate(_SUPERSCRIPT_LETTERS), text)
            text = _SUPERSCRIPT_DIGITS.sub("", text)
        if "«" in text or "»" in text or "‹" in text or "›" in text:
            text = _GUILLEMET_SPACE.sub(lambda m: m[1] or m[2], text)
    text = _CONTROL.sub(" ", text)
    if "[" in text or "{" in text:
        text = _FOOTNOTE.sub(" ", text)
    if _HAS_DIGIT.search(text):
        text = _GLUED_NOTE.sub(_keep_closers, text)
    text = text.translate(_TYPOGRAPHY)
    if ". ." in text:
        text = _SPACED_DOTS.sub("...", text)
    return text


_MULTI_HYPHEN = re.compile(r"-{2,}")
_EM_DASH = re.compile(r"\s*[—―⸺⸻]\s*")
_EN_DASH = re.compile(r"\s*–\s*")
_SPACED_HYPHEN = re.compile(r"(?:(?<=\s)|^)-(?=\s|$)")
_WHITESPACE = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r" (?=[,.;:!?)\]}])")
_SPACE_AFTER_OPEN = re.compile(r"([(\[{]) ")
_REPEATED_WEAK = re.compile(r"([,;:])(?: ?[,;:])+")
_WEAK_BEFORE_STRONG = re.compile(r"[,;:]+(?= ?[.!?])")
_WEAK_AFTER_STRONG = re.compile(r"([.!?;:][\"')\]]*) ?,")
_OPEN_THEN_WEAK = re.compile(r"([(\[{]) ?[,;:] ?")


def _punctuation(text: str) -> str:
    if "--" in text:
        text = _MULTI_HYPHEN.sub("—", text)
    if "—" in text or "―" in text or "⸺" in text or "⸻" in text:
        text = _EM_DASH.sub(", ", text)
    if "–" in text:
        text = _EN_DASH.sub(", ", text)
    if "-" in text:
        text = _SPACED_HYPHEN.sub(",", text)
    text = _WHITESPACE.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT.sub("", text)
    if "(" in text or "[" in text or "{" in text:
        text = _SPACE_AFTER_OPEN.sub(r"\1", text)
        text = _OPEN_THEN_WEAK.sub(r"\1", text)
    text = _REPEATED_WEAK.sub(r"\1", text)
    text = _WEAK_BEFORE_STRONG.sub("", text)
    text = _WEAK_AFTER_STRONG.sub(r"\1", text)
    return text.strip(" ,;:")


# ---------------------------------------------------------------------------------------------
# num2words adapter
# ---------------------------------------------------------------------------------------------


def _num2words(value: int | Decimal, lang: str, to: str = "cardinal", **kwargs: object) -> str | None:
    """num2words, or None when it cannot say this number in this language."""
    from num2words import num2words  # heavy-ish import kept inside the adapter

    try:
        return str(num2words(value, lang=lang, to=to, **kwargs))
    except Exception as exc:  # num2words raises many types (NotImplementedError, OverflowError...)
        logger.debug("num2words cannot say %r (lang=%s, to=%s): %s", value, lang, to, exc)
        return None


def _digits_one_by_one(digits: str, lang: str) -> str | None:
    words = [_num2words(int(d), lang) for d in digits]
    if any(w is None for w in words):
        return None
    return " ".join(w for w in words if w)


@dataclass(frozen=True)
class _Speaker:
    """Says numbers for one language (num2words code + rules)."""

    lang: str  # num2words code
    rules: SpeechRules

    def cardinal(self, digits: str, *, negative: bool = False) -> str | None:
        digits = "".join(ch for ch in digits if ch.isdigit())
        if not digits:
            return None
        if (len(digits) > 1 and digits[0] == "0") or len(digits) > 15:
            spoken = _digits_one_by_one(digits, self.lang)
            if spoken is not None and negative:
                return f"{self.rules.minus or '-'} {spoken}"
            return spoken
        value = int(digits)
        return _num2words(-value if negative else value, self.lang)

    def number(self, int_part: str, frac: str | None, *, negative: bool = False) -> str | None:
        if not frac:
            return self.cardinal(int_part, negative=negative)
        digits = "".join(ch for ch in int_part if ch.isdigit())
        try:
            value = Decimal(f"{int(digits)}.{''.join(ch for ch in frac if ch.isdigit())}")
        except (InvalidOperation, ValueError):
            return None
        return _num2words(-value if negative else value, self.lang)

    def ordinal(self, value: int) -> str | None:
        return _num2words(value, self.lang, "ordinal")

    def year(self, value: int) -> str | None:
        return _num2words(value, self.lang, "year")


def _unspaced(ch: str) -> bool:
    """Characters of scripts written without spaces between words (Chinese, Japanese)."""
    code = ord(ch)
    return 0x2E80 <= code <= 0xA4CF or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFFEF or code >= 0x20000


def _pad(match: re.Match[str], words: str) -> str:
    """Surround replacement words with spaces where they would touch a letter or digit."""
    if not words:
        return words
    text = match.string
    before = text[match.start() - 1] if match.start() > 0 else " "
    after = text[match.end()] if match.end() < len(text) else " "
    left = " " if before.isalnum() and not (_unspaced(before) and _unspaced(words[0])) else ""
    right = " " if after.isalnum() and not (_unspaced(after) and _unspaced(words[-1])) else ""
    return f"{left}{words}{right}"


def _feminine_fr(words: str) -> str:
    """French feminine of a cardinal: "un" -> "une", "vingt et un" -> "vingt et une"."""
    return re.sub(r"\bun$", "une", words)


# ---------------------------------------------------------------------------------------------
# Compiled patterns
# ---------------------------------------------------------------------------------------------


def _number_pattern(decimal_comma: bool) -> str:
    if decimal_comma:
        group, dec = r"[ \u00a0\u202f\u2009.]", r"[,.]"
    else:
        group, dec = r"[, \u00a0\u202f\u2009]", r"\."
    return rf"(?P<int>\d{{1,3}}(?:{group}\d{{3}})+(?!\d)|\d+)(?:{dec}(?P<frac>\d+))?(?!\d)"


def _alternation(words: Iterable[str]) -> str:
    items = sorted(words, key=len, reverse=True)
    return "|".join(re.escape(w) for w in items)


def _abbreviation_pattern(abbreviations: tuple[Abbreviation, ...]) -> re.Pattern[str] | None:
    if not abbreviations:
        return None
    parts = []
    firsts: set[str] = set()
    order = sorted(range(len(abbreviations)), key=lambda i: len(abbreviations[i].written), reverse=True)
    for i in order:
        a = abbreviations[i]
        written = a.written
        final_dot = written.endswith(".")
        core = written[:-1] if final_dot else written
        body = ""
        for ch in core:
            if ch == " ":
                body += r"\s*"
            elif ch == ".":
                body += r"\.\s*"
            else:
                body += re.escape(ch)
        body = body.replace(r"\s*\s*", r"\s*")
        if final_dot:
            body += r"\.?" if a.dot_optional else r"\."
        elif a.dot_optional:
            body += r"\.?"
        end = r"(?!\w)" if (not final_dot or a.dot_optional) and core[-1].isalnum() else ""
        context = r"(?=\s*(?:\d|[IVXLCDM]+\b))" if a.before == "number" else ""
        inner = f"{body}{end}"
        first = written[0]
        if a.ignore_case:
            inner = f"(?i:{inner})"
            firsts.update((first.lower(), first.upper()))
        else:
            firsts.add(first)
        parts.append(f"(?P<a{i}>{inner}{context})")
    # one boundary and a first-character test up front: most positions fail at once (fast)
    lead = "".join(re.escape(ch) for ch in sorted(firsts))
    return re.compile(rf"(?<![\w.])(?=[{lead}])(?:{'|'.join(parts)})")


@dataclass(frozen=True)
class _Compiled:
    abbreviations: re.Pattern[str] | None
    number: re.Pattern[str]
    percent: re.Pattern[str]
    degree: re.Pattern[str]
    money_before: re.Pattern[str]
    money_after: re.Pattern[str]
    ordinal: re.Pattern[str] | None
    indicator: re.Pattern[str]
    decade: re.Pattern[str]
    range: re.Pattern[str]
    time_colon: re.Pattern[str]
    time_h: re.Pattern[str]
    fraction: re.Pattern[str] | None
    numeral: re.Pattern[str]  # a standalone upper-case Roman numeral, with a French ordinal suffix
    symbols: re.Pattern[str] | None


_CURRENCY_SYMBOLS = "$£€¥₽₹₩"
_ROMAN = r"[IVXLCDM]+"


def _compile(rules: SpeechRules, decimal_comma: bool) -> _Compiled:
    num = _number_pattern(decimal_comma)
    start = r"(?<![\w.,\-])"
    neg = r"(?P<neg>-)?"
    mags = rf"(?:\s(?P<mag>{_alternation(rules.magnitudes)}))?" if rules.magnitudes else ""
    ordinal = None
    if rules.ordinal_suffixes:
        ordinal = re.compile(rf"{start}(?P<int>\d+)(?P<suf>{_alternation(rules.ordinal_suffixes)})(?!\w)")
    symbols = fraction = None
    suffixes = ""
    if rules.roman_ordinals:
        suffixes = _alternation(s for s in rules.ordinal_suffixes if not s.startswith("n"))
    numeral = re.compile(
        rf"(?P<num>{_ROMAN})" + (rf"(?P<suf>{suffixes})?" if suffixes else "") + r"(?![\w'’-])"
    )
    if rules.symbols:
        symbols = re.compile(rf"\s*(?:{_alternation(rules.symbols)})\s*")
    if rules.fractions:
        fraction = re.compile(rf"(?:(?<![\w.,])(?P<int>\d+)\s?)?(?P<frac>[{''.join(rules.fractions)}])")
    return _Compiled(
        abbreviations=_abbreviation_pattern(rules.abbreviations),
        number=re.compile(rf"{start}{neg}{num}"),
        percent=re.compile(rf"{start}{neg}{num}\s?%"),
        degree=re.compile(rf"{start}{neg}{num}\s?°\s?(?P<scale>[CF](?!\w))?"),
        money_before=re.compile(rf"(?<![\w$£€¥₽₹₩])(?P<neg>-)?(?P<cur>[{_CURRENCY_SYMBOLS}])\s?{num}{mags}"),
        money_after=re.compile(rf"{start}{neg}{num}\s?(?P<cur>[{_CURRENCY_SYMBOLS}¢])"),
        ordinal=ordinal,
        indicator=re.compile(rf"{start}(?P<int>\d+)\.?(?P<suf>[ºª])"),
        decade=re.compile(r"(?<![\w.,])['’]?(?P<int>\d*0)s(?!\w)"),
        range=re.compile(r"(?<![\w.,\-–])(?P<a>\d+)\s?[-–]\s?(?P<b>\d+)(?![\w\-–]|[.,]\d)"),
        time_colon=re.compile(
            r"(?<![\w.,:])(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?![\d:])"
            r"(?:\s?(?P<ampm>(?i:[ap])\.?\s?(?i:m)\.?)(?!\w))?(?P<uhr>\s?Uhr(?!\w))?"
        ),
        time_h=re.compile(r"(?<![\w.,:])(?P<h>[01]?\d|2[0-3])\s?h\s?(?P<m>[0-5]\d)?(?!\w)"),
        fraction=fraction,
        numeral=numeral,
        symbols=symbols,
    )


_COMPILED: Mapping[tuple[str, bool], _Compiled] = MappingProxyType(
    {
        (code, dc): _compile(rules, dc)
        for code, rules in (*_RULES.items(), ("", _GENERIC_RULES))
        for dc in (False, True)
    }
)

# ---------------------------------------------------------------------------------------------
# Roman numerals
# ---------------------------------------------------------------------------------------------

_ROMAN_CANONICAL = re.compile(r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
_ROMAN_DIGITS = MappingProxyType({"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000})


def _roman_value(numeral: str) -> int | None:
    """The value of a canonical upper-case Roman numeral ("XIV" -> 14), else None."""
    if not numeral or not _ROMAN_CANONICAL.fullmatch(numeral):
        return None
    total = 0
    largest = 0
    for ch in reversed(numeral):
        value = _ROMAN_DIGITS[ch]
        if value < largest:
            total -= value
        else:
            total += value
            largest = value
    return total


_ENDS_CLAUSE = re.compile(r"\s*(?:[,.;:!?)\]\"'—–-]|$|of\b)")
_WHOLE_ROMAN = re.compile(rf"^(?P<num>{_ROMAN})(?P<dot>\.?)(?=\s|$)")


def _word_before(text: str, pos: int) -> tuple[str, str]:
    """The word that ends just before ``pos`` (across spaces and one period) and what separates
    them: for "Chapter IV" at the "I", ("Chapter", " ")."""
    end = pos
    while end > 0 and text[end - 1].isspace():
        end -= 1
    if end == pos:
        return "", ""
    if end > 0 and text[end - 1] == ".":
        end -= 1
    begin = end
    while begin > 0 and text[begin - 1].isalpha():
        begin -= 1
    if begin > 0 and (text[begin - 1].isalnum() or text[begin - 1] in "-'’"):
        return "", ""
    return text[begin:end], text[end:pos]


def _roman(text: str, info: LanguageInfo, rules: SpeechRules, compiled: _Compiled, speaker: _Speaker) -> str:
    def heading(word: str, numeral: str, value: int, after: int) -> str | None:
        if numeral == "I" and (word.islower() or not _ENDS_CLAUSE.match(text, after)):
            return None  # "the book I read": a pronoun
        feminine = rules.heading_words.get(word.lower(), False)
        if value == 1 and rules.first[0]:
            return rules.first[1] if feminine else rules.first[0]
        spoken = speaker.cardinal(str(value))
        if spoken and feminine and info.code == "fr":
            spoken = _feminine_fr(spoken)
        return spoken

    def regnal(numeral: str, value: int, after: int) -> str | None:
        if value == 1 and not _ENDS_CLAUSE.match(text, after):
            return None
        if rules.regnal == "ordinal":
            spoken = speaker.ordinal(value)
            return f"the {spoken[:1].upper()}{spoken[1:]}" if spoken else None
        if value == 1 and rules.first[0]:
            return rules.first[0]
        return speaker.cardinal(str(value))

    def replace(m: re.Match[str]) -> str:
        numeral = m["num"]
        start = m.start()
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "-_"):
            return m.group(0)
        value = _roman_value(numeral)
        if value is None:
            return m.group(0)
        suffix = m.groupdict().get("suf")
        if suffix:  # French "XIXe", "Ier", "IIIes"
            form = rules.ordinal_suffixes.get(suffix, "m")
            if len(numeral) == 1 and numeral not in "IVX":
                return m.group(0)  # "Le", "De", "Ce", "Me" are words, not numerals
            if numeral == "I" and suffix in ("e", "es", "ème", "èmes", "eme", "emes", "è"):
                return m.group(0)
            spoken = _ordinal_fr_like(speaker, value, form)
            return _pad(m, spoken) if spoken else m.group(0)
        word, _ = _word_before(text, start)
        spoken = None
        if word and word.lower() in rules.heading_words:
            spoken = heading(word, numeral, value, m.end())
        elif word in rules.regnal_names:
            spoken = regnal(numeral, value, m.end())
        elif rules.century_words and (len(numeral) > 1 or numeral in "VX"):
            following = _CENTURY.match(text, m.end())
            if following is not None and following["word"] in rules.century_words:
                spoken = _ordinal_fr_like(speaker, value, "m")
        return spoken if spoken else m.group(0)

    if rules.heading_words or rules.regnal_names or rules.roman_ordinals or rules.century_words:
        text = compiled.numeral.sub(replace, text)
    # a heading that is only a numeral ("II.", "IV. The Pulpit"); a lone "I" stays a pronoun in English
    whole = _WHOLE_ROMAN.match(text)
    if whole is not None and (whole["dot"] or whole.end() == len(text)):
        numeral = whole["num"]
        value = _roman_value(numeral)
        if value is not None and not (numeral == "I" and info.code == "en"):
            spoken = speaker.cardinal(str(value))
            if spoken:
                text = spoken + text[whole.end("num") :]
    return text


_CENTURY = re.compile(r"\s+(?P<word>\w+)")


def _ordinal_fr_like(speaker: _Speaker, value: int, form: str) -> str | None:
    """Ordinal words for a suffix form: "m", "f", "mp", "fp", or a literal word ("second")."""
    if form not in ("m", "f", "mp", "fp"):
        return form if value == 2 else speaker.ordinal(value)
    spoken = speaker.ordinal(value)
    if spoken is None:
        return None
    if form.startswith("f") and spoken.endswith("premier"):
        spoken = spoken[: -len("premier")] + "première"
    if form.endswith("p"):
        spoken += "s"
    return spoken


# ---------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------


def _numbers(text: str, info: LanguageInfo, rules: SpeechRules, c: _Compiled, sp: _Speaker) -> str:
    is_fr = info.code == "fr"

    def time_colon(m: re.Match[str]) -> str:
        return _pad(m, _say_time(int(m["h"]), int(m["m"]), m["ampm"], rules, sp) or m.group(0))

    def time_h(m: re.Match[str]) -> str:
        minutes = int(m["m"]) if m["m"] else 0
        return _pad(m, _say_time(int(m["h"]), minutes, None, rules, sp) or m.group(0))

    def money(m: re.Match[str]) -> str:
        mag = m.groupdict().get("mag")
        spoken = _say_money(m["cur"], m["int"], m["frac"], mag, bool(m["neg"]), info, rules, sp)
        return _pad(m, spoken) if spoken else m.group(0)

    def percent(m: re.Match[str]) -> str:
        spoken = sp.number(m["int"], m["frac"], negative=bool(m["neg"]))
        return _pad(m, f"{spoken} {rules.percent}") if spoken else m.group(0)

    def degree(m: re.Match[str]) -> str:
        spoken = sp.number(m["int"], m["frac"], negative=bool(m["neg"]))
        if not spoken:
            return m.group(0)
        one = m["int"] == "1" and not m["frac"]
        unit = rules.degree[0] if one else rules.degree[1]
        scale = {"C": " Celsius", "F": " Fahrenheit"}.get(m["scale"] or "", "")
        return _pad(m, f"{spoken} {unit}{scale}")

    def ordinal(m: re.Match[str]) -> str:
        value = int(m["int"])
        form = rules.ordinal_suffixes.get(m["suf"], "m")
        spoken = _ordinal_fr_like(sp, value, form) if is_fr else sp.ordinal(value)
        return _pad(m, spoken) if spoken else m.group(0)

    def indicator(m: re.Match[str]) -> str:
        spoken = sp.ordinal(int(m["int"]))
        if spoken and m["suf"] == "ª":
            spoken = " ".join(w[:-1] + "a" if w.endswith("o") else w for w in spoken.split())
        return _pad(m, spoken) if spoken else m.group(0)

    def decade(m: re.Match[str]) -> str:
        digits = m["int"]
        value = int(digits)
        if value == 0:
            return m.group(0)
        spoken = sp.year(value) if len(digits) == 4 else sp.cardinal(digits)
        if not spoken:
            return m.group(0)
        spoken = spoken[:-1] + "ies" if spoken.endswith("y") else spoken + "s"
        return _pad(m, spoken)

    def number_range(m: re.Match[str]) -> str:
        return f"{m['a']} {rules.range_word} {m['b']}"

    def fraction(m: re.Match[str]) -> str:
        words = rules.fractions[m["frac"]]
        if m["int"]:
            whole = sp.cardinal(m["int"])
            if whole:
                return _pad(m, f"{whole} {rules.and_word or 'and'} {words}")
        return _pad(m, words)

    def number(m: re.Match[str]) -> str:
        int_part, frac, negative = m["int"], m["frac"], bool(m["neg"])
        spoken = None
        if (
            rules.year_style
            and not frac
            and not negative
            and len(int_part) == 4
            and int_part.isdigit()
            and 1100 <= int(int_part) <= 2099
        ):
            spoken = sp.year(int(int_part))
        if spoken is None:
            spoken = sp.number(int_part, frac, negative=negative)
        return _pad(m, spoken) if spoken else m.group(0)

    def leftover(m: re.Match[str]) -> str:
        spoken = sp.cardinal(m.group(0))
        return _pad(m, spoken) if spoken else m.group(0)

    if ":" in text:
        text = c.time_colon.sub(time_colon, text)
    if rules.time == "fr" and "h" in text:
        text = c.time_h.sub(time_h, text)
    if any(ch in text for ch in _CURRENCY_SYMBOLS):
        text = c.money_before.sub(money, text)
    if any(ch in text for ch in _CURRENCY_SYMBOLS) or "¢" in text:
        text = c.money_after.sub(money, text)
    if rules.percent and "%" in text:
        text = c.percent.sub(percent, text)
    if rules.degree[1] and "°" in text:
        text = c.degree.sub(degree, text)
    if c.ordinal is not None:
        text = c.ordinal.sub(ordinal, text)
    if rules.ordinal_indicators and ("º" in text or "ª" in text):
        text = c.indicator.sub(indicator, text)
    if rules.decades:
        text = c.decade.sub(decade, text)
    if c.fraction is not None:
        text = c.fraction.sub(fraction, text)
    if rules.range_word:
        text = c.range.sub(number_range, text)
    text = c.number.sub(number, text)
    return _LEFTOVER_DIGITS.sub(leftover, text)


_LEFTOVER_DIGITS = re.compile(r"\d+")


def _say_time(h: int, minutes: int, ampm: str | None, rules: SpeechRules, sp: _Speaker) -> str | None:
    hours = sp.cardinal(str(h))
    mins = sp.cardinal(str(minutes)) if minutes else ""
    if hours is None or mins is None:
        return None
    if rules.time == "en":
        suffix = ""
        if ampm:
            suffix = " A M" if ampm.strip()[0].lower() == "a" else " P M"
        if minutes == 0:
            if ampm:
                return f"{hours}{suffix}"
            return f"{hours} o'clock" if h <= 12 else f"{hours} hundred"
        if minutes < 10:
            zero = sp.cardinal("0")
            return f"{hours} oh {mins}{suffix}" if zero else None
        return f"{hours} {mins}{suffix}"
    if rules.time == "fr":
        hours = _feminine_fr(hours)
        word = "heure" if h in (0, 1) else "heures"
        return f"{hours} {word} {_feminine_fr(mins)}".strip()
    if rules.hour_word:
        return f"{hours} {rules.hour_word} {mins}".strip()
    return f"{hours} {mins}".strip()


def _say_money(
    symbol: str,
    int_part: str,
    frac: str | None,
    magnitude: str | None,
    negative: bool,
    info: LanguageInfo,
    rules: SpeechRules,
    sp: _Speaker,
) -> str | None:
    digits = "".join(ch for ch in int_part if ch.isdigit())
    currency = rules.currencies.get(symbol)
    sign = f"{rules.minus} " if negative and rules.minus else ("- " if negative else "")
    if currency is None:
        return _say_money_num2words(symbol, digits, frac, magnitude, sign, sp)
    if magnitude:
        amount = sp.number(digits, frac)
        if amount is None:
            return None
        joiner = " "
        if info.code == "fr":
            joiner = " d'" if currency.plural[0] in "aeiouéèêh" else " de "
        return f"{sign}{amount} {magnitude}{joiner}{currency.plural}".replace("' ", "'")
    units = int(digits)
    if frac and (len(frac) > 2 or not currency.sub_plural):
        amount = sp.number(digits, frac)
        return f"{sign}{amount} {currency.plural}" if amount else None
    cents = int(frac.ljust(2, "0")) if frac else 0
    parts = []
    if units or not cents:
        amount = sp.cardinal(digits)
        if amount is None:
            return None
        if currency.feminine and info.code == "fr":
            amount = _feminine_fr(amount)
        if info.code == "fr" and units >= 1_000_000 and units % 1_000_000 == 0:
            joiner = " d'" if currency.plural[0] in "aeiouéèêh" else " de "
            parts.append(f"{amount}{joiner}{currency.plural}".replace("' ", "'"))
        else:
            parts.append(f"{amount} {currency.singular if units == 1 else currency.plural}")
    if cents:
        amount = sp.cardinal(str(cents))
        if amount is None:
            return None
        parts.append(f"{amount} {currency.sub_singular if cents == 1 else currency.sub_plural}")
    return sign + f" {rules.and_word or 'and'} ".join(parts)


def _say_money_num2words(
    symbol: str, digits: str, frac: str | None, magnitude: str | None, sign: str, sp: _Speaker
) -> str | None:
    code = _CURRENCY_CODES.get(symbol)
    if code is None or magnitude:
        return None
    value = Decimal(f"{int(digits)}.{(frac or '0')[:2].ljust(2, '0')}")
    spoken = _num2words(value, sp.lang, "currency", currency=code)
    if spoken is None:
        return None
    if not frac or int(frac) == 0:
        zero = _num2words(0, sp.lang)
        tail = re.search(rf"(?:,|\s+[^\s,]+)\s+{re.escape(zero)}\s+\S+$", spoken) if zero else None
        if tail is not None:
            spoken = spoken[: tail.start()]
    return sign + spoken


# ---------------------------------------------------------------------------------------------
# Abbreviations and symbols
# ---------------------------------------------------------------------------------------------

_SENTENCE_TAIL = re.compile(r"[\s\"')\]]*$")


def _abbreviations(text: str, rules: SpeechRules, pattern: re.Pattern[str]) -> str:
    def expand(m: re.Match[str]) -> str:
        name = m.lastgroup
        if name is None:
            return m.group(0)
        abbreviation = rules.abbreviations[int(name[1:])]
        spoken = abbreviation.spoken
        if abbreviation.before == "name":
            following = m.string[m.end() :].lstrip().lstrip("-")
            if not following[:1].isupper():
                if not abbreviation.otherwise:
                    return m.group(0)
                spoken = abbreviation.otherwise
        if m.group(0).endswith(".") and _SENTENCE_TAIL.match(m.string, m.end()):
            spoken += "."  # the period also ended the sentence
        return _pad(m, spoken)

    return pattern.sub(expand, text)


def _symbols(text: str, rules: SpeechRules, pattern: re.Pattern[str]) -> str:
    def say(m: re.Match[str]) -> str:
        return f" {rules.symbols[m.group(0).strip()]} "

    return pattern.sub(say, text)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def normalize(text: str, language: str) -> str:
    """Rewrite ``text`` (one sentence or paragraph) as the words a TTS engine should say.

    ``language`` is a BCP 47 tag ("en-US", "fr"); only its base language matters. The result
    has single spaces, no control characters and no footnote markers; it may be "" when the
    input had nothing to say (e.g. "* * *").
    """
    info = language_info(language)
    rules = _RULES.get(info.code, _GENERIC_RULES)
    compiled = _COMPILED[(info.code if info.code in _RULES else "", info.decimal_comma)]
    speaker = _Speaker(info.num2words, rules) if info.num2words else None

    text = _clean(text)
    if compiled.abbreviations is not None:
        text = _abbreviations(text, rules, compiled.abbreviations)
    if speaker is not None:
        text = _roman(text, info, rules, compiled, speaker)
        if _HAS_DIGIT.search(text):
            text = _numbers(text, info, rules, compiled, speaker)
    if compiled.symbols is not None:
        text = _symbols(text, rules, compiled.symbols)
    return _punctuation(text)


def speakable(text: str) -> bool:
    """True when ``text`` has something a TTS engine can say: a letter or a digit."""
    return any(ch.isalnum() for ch in text)
