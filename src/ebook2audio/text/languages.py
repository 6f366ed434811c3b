"""Language tags and what the text stage knows about each language.

A book declares its language as a BCP 47 tag ("en-US", "fr", "pt-BR", "zh-Hant", sometimes a
three-letter ISO 639-2 code such as "fre" or "eng"). The text stage only needs the base language:
``base_language("en-US") == "en"``.

``SUPPORTED_LANGUAGES`` is a constant table: for each base language, the num2words and pysbd
language codes (None where the library has none), how decimals are written, whether "3." is an
ordinal (German style), and the abbreviations after which a period does not end a sentence.
Languages absent from the table still work: :func:`language_info` returns a generic entry
(regex sentence splitting, no number spelling, symbols left for the engine's phonemiser).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "SUPPORTED_LANGUAGES",
    "LanguageInfo",
    "base_language",
    "is_supported",
    "language_info",
]


@dataclass(frozen=True)
class LanguageInfo:
    """What the text stage knows about one base language."""

    code: str  # base language, ISO 639-1 where one exists ("en", "fr", "nb")
    name: str  # English name, for messages
    num2words: str | None = None  # num2words language code, None if num2words cannot spell numbers
    pysbd: str | None = None  # pysbd language code, None if pysbd has no rules for it
    decimal_comma: bool = True  # "3,5" is a decimal (and "1.000" / "1 000" group thousands)
    ordinal_dot: bool = False  # "3. Mai" is an ordinal: a period after a number does not end a sentence
    # lower-case words (without their period) after which a period does not end a sentence
    abbreviations: frozenset[str] = frozenset()
    # the same, but only when a number follows ("No. 5", "p. 12")
    number_abbreviations: frozenset[str] = frozenset()
    first_class: bool = False  # full hand-written rule tables (English, French)


def _words(text: str) -> frozenset[str]:
    """A constant set of words written as one space-separated string."""
    return frozenset(text.split())


_EN_ABBREVIATIONS = _words(
    "mr mrs ms messrs dr prof capt col gen lt sgt cpl rev hon gov sen rep st mt ft vs viz cf"
)
_EN_NUMBER_ABBREVIATIONS = _words(
    "no nos vol vols p pp ch chap fig figs ca approx jan feb mar apr jun jul aug sep sept oct nov dec"
)
_FR_ABBREVIATIONS = frozenset(
    ["m", "mm", "mme", "mmes", "mlle", "mlles", "mgr", "dr", "pr", "me", "st", "ste", "env", "cf", "ex", "éd"]
)
_FR_NUMBER_ABBREVIATIONS = frozenset(["p", "pp", "t", "vol", "chap", "art", "fig", "no"])
_DE_ABBREVIATIONS = frozenset(
    ["dr", "prof", "hr", "fr", "bzw", "vgl", "ca", "str", "st", "z", "b", "d", "h", "u", "bd", "abs"]
)
_DE_NUMBER_ABBREVIATIONS = frozenset(["nr", "s", "art"])
_ES_ABBREVIATIONS = frozenset(["sr", "sra", "srta", "dr", "dra", "ud", "uds", "vd", "vds"])
_ES_NUMBER_ABBREVIATIONS = frozenset(["pág", "cap", "núm"])
_IT_ABBREVIATIONS = frozenset(["sig", "sigg", "dott", "prof", "avv", "ing", "dr"])
_IT_NUMBER_ABBREVIATIONS = frozenset(["pag", "cap"])
_PT_ABBREVIATIONS = frozenset(["sr", "sra", "srta", "dr", "dra"])
_PT_NUMBER_ABBREVIATIONS = frozenset(["pág", "cap"])
_NL_ABBREVIATIONS = frozenset(["dhr", "mevr", "dr", "prof"])
_NL_NUMBER_ABBREVIATIONS = frozenset(["blz", "nr"])
_RU_ABBREVIATIONS = frozenset(["т", "г", "д", "им", "ул", "рис", "см"])
_RU_NUMBER_ABBREVIATIONS = frozenset(["стр"])


def _entry(
    code: str,
    name: str,
    num2words: str | None = None,
    pysbd: str | None = None,
    *,
    decimal_comma: bool = True,
    ordinal_dot: bool = False,
    abbreviations: frozenset[str] = frozenset(),
    number_abbreviations: frozenset[str] = frozenset(),
    first_class: bool = False,
) -> tuple[str, LanguageInfo]:
    info = LanguageInfo(
        code=code,
        name=name,
        num2words=num2words,
        pysbd=pysbd,
        decimal_comma=decimal_comma,
        ordinal_dot=ordinal_dot,
        abbreviations=abbreviations,
        number_abbreviations=number_abbreviations,
        first_class=first_class,
    )
    return code, info


SUPPORTED_LANGUAGES: Mapping[str, LanguageInfo] = MappingProxyType(
    dict(
        [
            _entry(
                "en",
                "English",
                "en",
                "en",
                decimal_comma=False,
                abbreviations=_EN_ABBREVIATIONS,
                number_abbreviations=_EN_NUMBER_ABBREVIATIONS,
                first_class=True,
            ),
            _entry(
                "fr",
                "French",
                "fr",
                "fr",
                abbreviations=_FR_ABBREVIATIONS,
                number_abbreviations=_FR_NUMBER_ABBREVIATIONS,
                first_class=True,
            ),
            _entry(
                "de",
                "German",
                "de",
                "de",
                ordinal_dot=True,
                abbreviations=_DE_ABBREVIATIONS,
                number_abbreviations=_DE_NUMBER_ABBREVIATIONS,
            ),
            _entry(
                "es",
                "Spanish",
                "es",
                "es",
                abbreviations=_ES_ABBREVIATIONS,
                number_abbreviations=_ES_NUMBER_ABBREVIATIONS,
            ),
            _entry(
                "it",
                "Italian",
                "it",
                "it",
                abbreviations=_IT_ABBREVIATIONS,
                number_abbreviations=_IT_NUMBER_ABBREVIATIONS,
            ),
            _entry(
                "pt",
                "Portuguese",
                "pt",
                None,
                abbreviations=_PT_ABBREVIATIONS,
                number_abbreviations=_PT_NUMBER_ABBREVIATIONS,
            ),
            _entry(
                "nl",
                "Dutch",
                "nl",
                "nl",
                abbreviations=_NL_ABBREVIATIONS,
                number_abbreviations=_NL_NUMBER_ABBREVIATIONS,
            ),
            _entry(
                "ru",
                "Russian",
                "ru",
                "ru",
                abbreviations=_RU_ABBREVIATIONS,
                number_abbreviations=_RU_NUMBER_ABBREVIATIONS,
            ),
            _entry("uk", "Ukrainian", "uk", None),
            _entry("be", "Belarusian", "be", None),
            _entry("pl", "Polish", "pl", "pl", ordinal_dot=True),
            _entry("cs", "Czech", "cs", None, ordinal_dot=True),
            _entry("sk", "Slovak", "sk", "sk", ordinal_dot=True),
            _entry("sl", "Slovenian", "sl", None, ordinal_dot=True),
            _entry("sr", "Serbian", "sr", None, ordinal_dot=True),
            _entry("hr", "Croatian", None, None, ordinal_dot=True),
            _entry("bg", "Bulgarian", None, "bg"),
            _entry("ro", "Romanian", "ro", None),
            _entry("hu", "Hungarian", "hu", None, ordinal_dot=True),
            _entry("fi", "Finnish", "fi", None, ordinal_dot=True),
            _entry("et", "Estonian", None, None, ordinal_dot=True),
            _entry("lt", "Lithuanian", "lt", None),
            _entry("lv", "Latvian", "lv", None, ordinal_dot=True),
            _entry("sv", "Swedish", "sv", None),
            _entry("da", "Danish", "da", "da", ordinal_dot=True),
            _entry("nb", "Norwegian Bokmål", "no", None, ordinal_dot=True),
            _entry("nn", "Norwegian Nynorsk", "no", None, ordinal_dot=True),
            _entry("no", "Norwegian", "no", None, ordinal_dot=True),
            _entry("is", "Icelandic", "is", None, ordinal_dot=True),
            _entry("ca", "Catalan", "ca", None),
            _entry("cy", "Welsh", "cy", None, decimal_comma=False),
            _entry("eo", "Esperanto", "eo", None),
            _entry("el", "Greek", None, "el"),
            _entry("tr", "Turkish", "tr", None, ordinal_dot=True),
            _entry("az", "Azerbaijani", "az", None),
            _entry("kk", "Kazakh", "kz", "kk"),
            _entry("tg", "Tajik", "tg", None),
            _entry("hy", "Armenian", None, "hy"),
            _entry("ka", "Georgian", None, None),
            _entry("he", "Hebrew", "he", None, decimal_comma=False),
            _entry("ar", "Arabic", "ar", "ar", decimal_comma=False),
            _entry("fa", "Persian", "fa", "fa", decimal_comma=False),
            _entry("ur", "Urdu", None, "ur", decimal_comma=False),
            _entry("hi", "Hindi", None, "hi", decimal_comma=False),
            _entry("mr", "Marathi", None, "mr", decimal_comma=False),
            _entry("bn", "Bengali", "bn", None, decimal_comma=False),
            _entry("te", "Telugu", "te", None, decimal_comma=False),
            _entry("kn", "Kannada", "kn", None, decimal_comma=False),
            _entry("am", "Amharic", "am", "am", decimal_comma=False),
            _entry("my", "Burmese", None, "my", decimal_comma=False),
            _entry("th", "Thai", "th", None, decimal_comma=False),
            _entry("vi", "Vietnamese", "vi", None),
            _entry("id", "Indonesian", "id", None),
            _entry("ms", "Malay", None, None),
            _entry("sw", "Swahili", None, None, decimal_comma=False),
            _entry("ja", "Japanese", "ja", "ja", decimal_comma=False),
            _entry("zh", "Chinese", None, "zh", decimal_comma=False),
            _entry("ko", "Korean", "ko", None, decimal_comma=False),
            _entry("la", "Latin", None, None),
        ]
    )
)

# ISO 639-2 (bibliographic and terminology) codes and retired ISO 639-1 codes seen in book metadata.
_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "eng": "en",
        "fra": "fr",
        "fre": "fr",
        "deu": "de",
        "ger": "de",
        "spa": "es",
        "ita": "it",
        "por": "pt",
        "nld": "nl",
        "dut": "nl",
        "rus": "ru",
        "ukr": "uk",
        "pol": "pl",
        "ces": "cs",
        "cze": "cs",
        "slk": "sk",
        "slo": "sk",
        "ron": "ro",
        "rum": "ro",
        "hun": "hu",
        "fin": "fi",
        "swe": "sv",
        "dan": "da",
        "nor": "no",
        "nob": "nb",
        "nno": "nn",
        "isl": "is",
        "ice": "is",
        "cat": "ca",
        "ell": "el",
        "gre": "el",
        "tur": "tr",
        "heb": "he",
        "ara": "ar",
        "fas": "fa",
        "per": "fa",
        "hin": "hi",
        "jpn": "ja",
        "zho": "zh",
        "chi": "zh",
        "kor": "ko",
        "lat": "la",
        "vie": "vi",
        "ind": "id",
        "bul": "bg",
        "srp": "sr",
        "hrv": "hr",
        "slv": "sl",
        "est": "et",
        "lit": "lt",
        "lav": "lv",
        "epo": "eo",
        "cym": "cy",
        "wel": "cy",
        "tha": "th",
        "iw": "he",
        "in": "id",
        "ji": "yi",
        "jw": "jv",
        "mo": "ro",
    }
)


def base_language(tag: str) -> str:
    """The lower-case primary language of a BCP 47 tag: "en-US" -> "en", "pt_BR" -> "pt".

    Three-letter ISO 639-2 codes with a two-letter equivalent are mapped to it ("fre" -> "fr").
    An empty, undetermined ("und") or malformed tag gives "".
    """
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    if not primary.isascii() or not primary.isalpha() or not 2 <= len(primary) <= 8:
        return ""
    if primary in ("und", "mul", "zxx", "mis"):
        return ""
    return _ALIASES.get(primary, primary)


def language_info(tag: str) -> LanguageInfo:
    """The table entry for a tag's base language, or a generic entry for an unknown language."""
    code = base_language(tag)
    known = SUPPORTED_LANGUAGES.get(code)
    if known is not None:
        return known
    return LanguageInfo(code=code, name=code or "unknown")


def is_supported(tag: str) -> bool:
    """True when the base language of ``tag`` has an entry in :data:`SUPPORTED_LANGUAGES`."""
    return base_language(tag) in SUPPORTED_LANGUAGES
