"""Small helpers shared by the readers: text decoding, whitespace, headings, Roman numerals, languages.

Pure functions and constant tables only (charset-normalizer is imported inside ``decode_bytes``).
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable

# --- whitespace -----------------------------------------------------------------------------------

# Invisible characters that only break words apart for a speech engine (soft hyphen, zero-width space,
# word joiner, BOM). ZWNJ/ZWJ are kept: they matter in Persian, Indic scripts and emoji.
# Control characters (C0 but whitespace, DEL, C1) are never text either: junk bytes of a damaged file.
# (A regex, not str.translate: translate walks a long non-ASCII text one dict lookup a character.)
_INVISIBLE = re.compile("[\u00ad\u200b\u2060\ufeff\x00-\x08\x0e-\x1b\x7f-\x9f]+")
# Runs of whitespace, or one whitespace character that is not a plain space: a text that is already
# clean is returned as is (re.sub without a match does not copy), which matters for megabyte lines.
_SPACES = re.compile(r"\s{2,}|[^\S ]")


def clean_text(text: str) -> str:
    """One line of plain text: invisible and control characters removed, any run of whitespace (NBSP
    too) -> one space."""
    return _SPACES.sub(" ", _INVISIBLE.sub("", text)).strip()


def has_words(text: str) -> bool:
    """True when the text holds at least one letter or digit (``* * *`` and ``...`` do not)."""
    return any(ch.isalnum() for ch in text)


def word_count(paragraphs: Iterable[str]) -> int:
    return sum(len(p.split()) for p in paragraphs)


def looks_like_prose(paragraphs: Iterable[str], min_words: int = 20) -> bool:
    """True when some paragraph is real running text (title pages and imprints are short lines)."""
    return any(len(p.split()) >= min_words and any(c.islower() for c in p) for p in paragraphs)


def join_title_parts(parts: Iterable[str]) -> str:
    """Join title pieces ("CHAPTER I." + "Down the Rabbit-Hole") with a full stop where none is."""
    out = ""
    for raw in parts:
        part = clean_text(raw)
        if not part:
            continue
        if not out:
            out = part
        elif out[-1] in ".:!?;—–-…":
            out = f"{out} {part}"
        else:
            out = f"{out}. {part}"
    return out


_LETTER_SPACED = re.compile(r"^\s*\S(?:\s+\S){3,}\s*$")


def unspace_letters(line: str) -> str:
    """``K U R T  W O L F F`` -> ``KURT WOLFF``: undo letter-spacing (wider gaps separate words).

    Lines that are not made only of single letters are returned unchanged.
    """
    if not _LETTER_SPACED.match(line):
        return line
    stripped = line.strip()
    pieces = re.split(r"(\s+)", stripped)
    letters = pieces[0::2]
    gaps = pieces[1::2]
    if not all(len(t) == 1 and t.isalpha() for t in letters):
        return line
    narrow = min(len(g) for g in gaps)
    words = [letters[0]]
    for gap, letter in zip(gaps, letters[1:], strict=True):
        if len(gap) > narrow:
            words.append(letter)
        else:
            words[-1] += letter
    if len(words) == len(letters):  # every gap equal and wide: nothing to undo
        return line
    return " ".join(words)


# --- decoding -------------------------------------------------------------------------------------

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Single-byte encodings a book may come in; the first is preferred on a tie (identical decodings).
_SINGLE_BYTE = ("cp1252", "cp1250", "cp1251", "koi8_r", "cp1254", "cp1257", "iso8859_7", "cp866", "mac_roman")
_SINGLE_BYTE_ALIASES = {
    "latin_1": "cp1252",
    "iso8859_1": "cp1252",
    "iso8859_15": "cp1252",
    "ascii": "cp1252",
    "iso8859_2": "cp1250",
    "iso8859_5": "cp1251",
    "cp437": "cp1252",
    "cp850": "cp1252",
    "cp852": "cp1250",
}


def bom_encoding(data: bytes) -> str | None:
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    return None


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode book text of unknown encoding. Returns ``(text, encoding)``; never raises on bad bytes.

    Order: byte-order mark, UTF-16 without BOM, UTF-8 (also when only a few bytes are broken), then the
    guess of charset-normalizer for multi-byte encodings; single-byte encodings, which it confuses on
    Western text (German comes out as cp1250), are chosen by which decoding reads most like a language.
    """
    bom = bom_encoding(data)
    if bom:
        return data.decode(bom, errors="replace"), bom
    sixteen = utf16_without_bom(data)
    if sixteen:  # checked first: ASCII in UTF-16 is also valid (NUL-riddled) UTF-8
        return data.decode(sixteen, errors="replace"), sixteen
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    mixed = _decode_mixed(data)
    if mixed is not None:
        return mixed
    loose = data.decode("utf-8", errors="replace")
    if _mostly_utf8(loose):
        return loose, "utf-8"

    from charset_normalizer import from_bytes  # heavy: only for non-UTF-8 books

    best = from_bytes(data[:200_000]).best()
    guess = best.encoding if best is not None else ""
    guess = _SINGLE_BYTE_ALIASES.get(guess, guess)
    if guess and guess not in _SINGLE_BYTE and _is_multibyte(guess):
        return data.decode(guess, errors="replace"), guess
    enc = _best_single_byte(data, guess)
    return data.decode(enc, errors="replace"), enc


def _best_single_byte(data: bytes, guess: str = "") -> str:
    """The single-byte code page whose decoding reads most like a language."""
    candidates = list(_SINGLE_BYTE)
    if guess and guess not in candidates and not _is_multibyte(guess):
        candidates.append(guess)
    sample = data[:100_000]
    scored = [
        (_plausibility(sample.decode(enc, errors="replace")), -i, enc) for i, enc in enumerate(candidates)
    ]
    return max(scored)[2]


def _decode_mixed(data: bytes) -> tuple[str, str] | None:
    """Lines of UTF-8 and lines of a legacy code page in one file (texts pasted together): each line is
    decoded in its own encoding. None unless some non-ASCII line is valid UTF-8 and some line is not.
    A broken line that still holds UTF-8 characters (a stray byte in a UTF-8 line) stays UTF-8."""
    lines = data.splitlines(keepends=True)
    kinds = ["utf-8" if line.isascii() or _is_utf8(line) else "" for line in lines]
    if "" not in kinds or not any(
        kind and not line.isascii() for line, kind in zip(lines, kinds, strict=True)
    ):
        return None
    for i, line in enumerate(lines):
        if not kinds[i] and _mostly_utf8(line.decode("utf-8", errors="replace")):
            kinds[i] = "utf-8"
    legacy = b"".join(line for line, kind in zip(lines, kinds, strict=True) if not kind)
    encoding = _best_single_byte(legacy) if legacy else "utf-8"  # pasted-in legacy text: a code page
    text = "".join(
        line.decode(kind or encoding, errors="replace") for line, kind in zip(lines, kinds, strict=True)
    )
    return text, f"utf-8+{encoding}"


def _mostly_utf8(loose: str) -> bool:
    """A UTF-8 decoding with replacement characters is right when they are few next to real ones."""
    bad = loose.count("\ufffd")
    good = sum(1 for ch in loose if ord(ch) > 0x7F) - bad
    return good > 0 and bad <= max(3, good // 50)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _is_multibyte(encoding: str) -> bool:
    """True for CJK and Unicode codecs: single-byte code pages map 256 bytes to 256 characters."""
    try:
        decoded = bytes(range(256)).decode(encoding, errors="replace")
    except LookupError:
        return False
    return len(decoded) != 256 or decoded.count("\ufffd") > 32


def utf16_without_bom(data: bytes) -> str | None:
    sample = data[:4096]
    if len(sample) < 16:
        return None
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    half = len(sample) // 2
    if odd > half * 0.6 and even < half * 0.05:
        return "utf-16-le"
    if even > half * 0.6 and odd < half * 0.05:
        return "utf-16-be"
    return None


_WORD = re.compile(r"\w+")


def _plausibility(text: str) -> float:
    """How much a decoding reads like natural language: common words count, odd symbols cost."""
    score = 0.0
    for match in _WORD.finditer(text.lower()):
        word = match.group(0)
        if word in _ALL_STOPWORDS:
            score += 1.0
        if not word.isascii():
            scripts = {_script(ch) for ch in word if ch.isalpha()}
            if len(scripts) > 1:  # Latin and Cyrillic mixed inside one word: a wrong code page
                score -= 2.0
    for prev, ch, nxt in zip(" " + text, text, text[1:] + " ", strict=False):
        if ord(ch) < 0x80:
            continue
        cat = unicodedata.category(ch)
        if ch == "\ufffd" or cat.startswith("C"):
            score -= 3.0
        elif cat[0] in "SN" and (prev.isalpha() or nxt.isalpha()):
            score -= 2.0  # "³" or "¹" glued to letters: Polish read as cp1252
        elif cat == "Lu" and prev.isalpha() and prev.islower() and nxt.isalpha() and nxt.islower():
            score -= 0.5  # "hÉllo": capital letter inside a lowercase word
    return score


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else ""


# --- Roman numerals -------------------------------------------------------------------------------

_ROMAN_RE = re.compile(r"^M{0,4}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})$")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def roman_to_int(text: str) -> int | None:
    """``"XIV"`` -> 14; ``None`` for anything that is not a well-formed Roman numeral (either case)."""
    s = text.strip().upper()
    if not s or not _ROMAN_RE.match(s):
        return None
    total = 0
    for i, ch in enumerate(s):
        value = _ROMAN_VALUES[ch]
        if i + 1 < len(s) and _ROMAN_VALUES[s[i + 1]] > value:
            total -= value
        else:
            total += value
    return total


# --- headings -------------------------------------------------------------------------------------

# Words that name a chapter, and words that name a larger division (part, book, volume).
CHAPTER_WORDS = (
    "chapter", "chap", "chapitre", "kapitel", "capítulo", "capitulo", "capitolo", "hoofdstuk",
    "rozdział", "rozdzial", "kapitola", "глава", "luku", "kapittel",
)  # fmt: skip
PART_WORDS = (
    "part", "partie", "teil", "parte", "deel", "book", "livre", "buch", "libro", "boek", "volume", "vol",
    "tome", "band", "act", "acte", "akt", "часть", "книга", "том",
)  # fmt: skip
STANDALONE_WORDS = (
    "prologue", "prolog", "prólogo", "prologo", "epilogue", "epilog", "épilogue", "epílogo", "epilogo",
    "preface", "préface", "prefacio", "prefazione", "vorwort", "foreword", "introduction", "einleitung",
    "introducción", "introduzione", "afterword", "nachwort", "postface", "avant-propos", "conclusion",
    "interlude", "пролог", "эпилог", "предисловие", "вступление", "послесловие",
)  # fmt: skip
_NUMBER_WORDS = (
    # English
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
    "eleventh", "twelfth", "last", "final",
    # French
    "un", "une", "deux", "trois", "quatre", "cinq", "sept", "huit", "neuf", "dix", "onze", "douze",
    "premier", "première", "deuxième", "troisième", "quatrième", "cinquième", "sixième", "septième",
    "huitième", "neuvième", "dixième", "dernier", "dernière",
    # German
    "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn",
    "erstes", "erster", "erste", "zweites", "zweiter", "zweite", "drittes", "dritter", "dritte",
    "viertes", "vierter", "vierte", "fünftes", "fünfter", "fünfte", "letztes", "letzter",
    # Spanish / Italian
    "uno", "dos", "tres", "primero", "primera", "segundo", "segunda", "tercero", "tercera",
    "primo", "secondo", "terzo", "prima", "seconda", "terza",
    # Russian
    "первая", "вторая", "третья", "четвертая", "четвёртая", "пятая", "первый", "второй", "третий",
    "первая", "последняя",
)  # fmt: skip


def _alternation(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


_KW = _alternation(CHAPTER_WORDS + PART_WORDS)
_NUM = rf"(?:\d{{1,4}}|[IVXLCDMivxlcdm]+|{_alternation(_NUMBER_WORDS)})"
# "CHAPTER IV", "Chapter 4.", "Chapter IV. The Title", "Chapitre 3 : Le titre", "PART ONE", "BOOK I"
_KEYWORD_HEADING = re.compile(
    rf"^(?P<kw>{_KW})\.?\s+(?:the\s+)?(?P<num>{_NUM})(?![\w'’])\s*(?P<rest>.*)$", re.IGNORECASE
)
# "Erstes Kapitel", "1. Kapitel", "Premier chapitre", "Zweiter Teil", "Первая глава"
_ORDINAL_HEADING = re.compile(rf"^(?P<num>{_NUM}|\d{{1,3}}\.)\s+(?P<kw>{_KW})\.?$", re.IGNORECASE)
_STANDALONE_HEADING = re.compile(
    rf"^(?P<kw>{_alternation(STANDALONE_WORDS)})(?![\w'’])\s*(?P<rest>[.:—–-].*)?$", re.IGNORECASE
)
_BARE_NUMERAL = re.compile(r"^(?P<num>[IVXLCDM]+\.?|\d{1,3}\.)$")
_CJK_HEADING = re.compile(r"^第[一二三四五六七八九十百千零〇两\d]+[章回节節卷部篇话話]")
_TITLE_SEPARATOR = re.compile(r"^[.:—–\-]+\s*")

MAX_HEADING_CHARS = 100


def heading_kind(line: str) -> str | None:
    """Classify one stand-alone line as a heading.

    Returns ``"chapter"`` (CHAPTER IV, Chapitre 3, Kapitel 2, 第三章), ``"part"`` (PART ONE, BOOK I),
    ``"standalone"`` (Prologue, Preface...), ``"numeral"`` (a bare ``II.`` or ``12.``) or ``None``.
    """
    if len(line) > 8 * MAX_HEADING_CHARS:  # cheap: a long paragraph is no heading (and may be megabytes)
        return None
    text = clean_text(line)
    if not text or len(text) > MAX_HEADING_CHARS:
        return None
    if _BARE_NUMERAL.match(text):
        num = text.rstrip(".")
        if num.isdigit() or roman_to_int(num) is not None:
            return "numeral"
        return None
    if _CJK_HEADING.match(text):
        return "chapter"
    m = _KEYWORD_HEADING.match(text)
    if m and _valid_number(m.group("num")) and _valid_rest(m.group("rest")):
        return "chapter" if m.group("kw").lower() in CHAPTER_WORDS else "part"
    m = _ORDINAL_HEADING.match(text)
    if m and _valid_number(m.group("num").rstrip(".")):
        return "chapter" if m.group("kw").lower() in CHAPTER_WORDS else "part"
    m = _STANDALONE_HEADING.match(text)
    if m and (not m.group("rest") or len(m.group("rest")) < 80):
        return "standalone"
    return None


def _valid_number(num: str) -> bool:
    if num.isdigit() or num.lower() in _NUMBER_WORDS:
        return True
    return roman_to_int(num) is not None


def _valid_rest(rest: str) -> bool:
    """What follows "Chapter 4": nothing, a separator and a title, or a capitalised title."""
    rest = rest.strip()
    if not rest:
        return True
    if _TITLE_SEPARATOR.match(rest):
        return True
    first = rest[0]
    return first.isupper() or first.isdigit() or first in "\"'“‘«»„(["


def is_heading(line: str) -> bool:
    return heading_kind(line) is not None


# --- Project Gutenberg ----------------------------------------------------------------------------

PG_START = re.compile(
    r"^\s*\*{3}\s*START OF (?:THE |THIS )?PROJECT GUTENBERG|^\s*\*END\*THE SMALL PRINT", re.IGNORECASE
)
PG_END = re.compile(
    r"^\s*\*{3}\s*END OF (?:THE |THIS )?PROJECT GUTENBERG|^\s*End of (?:the )?Project Gutenberg",
    re.IGNORECASE,
)
# "The Project Gutenberg eBook of Alice's Adventures in Wonderland, by Lewis Carroll"
# "End of the Project Gutenberg EBook of Die Verwandlung, by Franz Kafka"
_PG_TITLE_LINE = re.compile(
    r"^\s*(?:\*+\s*)?(?:The |End of (?:the )?)?Project Gutenberg(?:'s)? e-?book,?\s+(?:of\s+)?"
    r"(?P<title>.+?)(?:,\s+by\s+(?P<author>.+?))?\s*\**\s*$",
    re.IGNORECASE,
)


def pg_title_author(line: str) -> tuple[str, str]:
    """Title and author from a Project Gutenberg banner line, or ``("", "")``."""
    m = _PG_TITLE_LINE.match(clean_text(line))
    if not m:
        return "", ""
    title = m.group("title").strip(" .,")
    author = (m.group("author") or "").strip(" .,")
    if title.isupper():  # "*** START OF THE PROJECT GUTENBERG EBOOK ALICE ***" shouts: not a usable title
        return "", ""
    return title, author


_PG_FIELD = re.compile(r"^\s*(?P<key>Title|Author|Language)\s*:\s*(?P<value>.*)$")


def pg_header_fields(lines: Iterable[str]) -> dict[str, str]:
    """The ``Title:``/``Author:``/``Language:`` fields of a Project Gutenberg header (continuations joined)."""
    fields: dict[str, str] = {}
    last = ""
    for line in lines:
        m = _PG_FIELD.match(line)
        if m:
            last = m.group("key").lower()
            if last not in fields:
                fields[last] = clean_text(m.group("value"))
            else:
                last = ""
        elif last and line.startswith((" ", "\t")) and line.strip():
            fields[last] = clean_text(f"{fields[last]} {line}")
        else:
            last = ""
    return {k: v for k, v in fields.items() if v}


# --- languages ------------------------------------------------------------------------------------

LANGUAGE_NAMES = {
    "english": "en", "german": "de", "deutsch": "de", "french": "fr", "français": "fr", "francais": "fr",
    "spanish": "es", "español": "es", "italian": "it", "italiano": "it", "dutch": "nl",
    "portuguese": "pt", "russian": "ru", "русский": "ru", "latin": "la", "finnish": "fi",
    "swedish": "sv", "danish": "da", "norwegian": "no", "polish": "pl", "czech": "cs",
    "hungarian": "hu", "greek": "el", "chinese": "zh", "japanese": "ja", "korean": "ko",
    "esperanto": "eo", "catalan": "ca", "ukrainian": "uk", "turkish": "tr", "arabic": "ar",
    "hebrew": "he", "welsh": "cy", "irish": "ga", "icelandic": "is", "romanian": "ro",
}  # fmt: skip
_LANG_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


def language_code(value: str) -> str:
    """``"German"`` -> ``"de"``; a tag such as ``"en-US"`` is kept; ``"English and French"`` -> ``"en"``."""
    text = clean_text(value)
    if not text:
        return ""
    if _LANG_TAG.match(text) and text.lower() not in LANGUAGE_NAMES:
        return text.replace("_", "-")
    first = re.split(r"[,;/]|\s+and\s+|\s+", text.lower())[0]
    return LANGUAGE_NAMES.get(first, "")


_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(["the", "and", "of", "to", "a", "in", "that", "is", "was", "he", "for", "it", "with", "as", "his", "on", "be", "at", "by", "i", "had", "not", "are", "but", "she", "her"]),
    "de": frozenset(["der", "die", "und", "in", "den", "von", "zu", "das", "mit", "sich", "des", "auf", "für", "ist", "im", "dem", "nicht", "ein", "eine", "als", "auch", "er", "es", "an", "war", "sie"]),
    "fr": frozenset(["le", "la", "les", "de", "des", "et", "est", "un", "une", "du", "en", "que", "qui", "dans", "pour", "pas", "au", "sur", "il", "elle", "ne", "se", "ce", "avec", "son", "sa"]),
    "es": frozenset(["el", "la", "de", "que", "y", "en", "los", "se", "del", "las", "un", "por", "con", "no", "una", "su", "para", "es", "al", "lo", "como", "más", "pero", "sus", "le"]),
    "it": frozenset(["il", "di", "che", "e", "la", "per", "un", "in", "non", "una", "sono", "del", "della", "le", "si", "con", "ma", "come", "io", "anche", "gli", "ha", "lo", "al"]),
    "pt": frozenset(["o", "a", "de", "que", "e", "do", "da", "em", "um", "para", "com", "não", "uma", "os", "no", "se", "na", "por", "mais", "as", "dos", "como", "mas", "ao", "ele"]),
    "nl": frozenset(["de", "het", "een", "en", "van", "ik", "te", "dat", "die", "in", "is", "niet", "zijn", "op", "aan", "met", "voor", "er", "maar", "om", "hij", "ze", "zij"]),
    "sv": frozenset(["och", "att", "det", "som", "en", "på", "är", "av", "för", "med", "till", "den", "har", "de", "inte", "om", "ett", "han", "var", "jag", "hon"]),
    "pl": frozenset(["i", "w", "nie", "na", "się", "z", "że", "do", "to", "jest", "jak", "o", "co", "ale", "po", "tak", "za", "od", "jego", "być", "przez", "już", "tylko"]),
    "cs": frozenset(["a", "se", "na", "je", "že", "v", "to", "s", "z", "do", "o", "jako", "ale", "by", "jsem", "jsou", "jeho", "není", "při", "které", "aby", "když", "jak"]),
    "ru": frozenset(["и", "в", "не", "на", "я", "что", "он", "с", "как", "а", "то", "все", "она", "так", "его", "но", "да", "ты", "к", "у", "же", "вы", "за", "бы", "по", "только"]),
    "uk": frozenset(["і", "в", "не", "на", "що", "я", "з", "як", "а", "та", "це", "він", "до", "але", "її", "його", "так", "ти", "від", "вона", "було", "є"]),
}  # fmt: skip
_ALL_STOPWORDS = frozenset().union(*_STOPWORDS.values())


def guess_language(text: str) -> str:
    """A cheap guess of a text's language (ISO 639-1), or ``""`` when unsure.

    By script first (kana, Hangul, Han, Greek, Hebrew, Arabic), then by counting common words.
    """
    sample = text[:50_000]
    counts: dict[str, int] = {}
    letters = 0
    for ch in sample:
        if not ch.isalpha():
            continue
        letters += 1
        if "\u3040" <= ch <= "\u30ff":
            counts["kana"] = counts.get("kana", 0) + 1
        elif "\uac00" <= ch <= "\ud7af":
            counts["hangul"] = counts.get("hangul", 0) + 1
        elif "\u4e00" <= ch <= "\u9fff":
            counts["han"] = counts.get("han", 0) + 1
        elif "\u0370" <= ch <= "\u03ff":
            counts["greek"] = counts.get("greek", 0) + 1
        elif "\u0590" <= ch <= "\u05ff":
            counts["hebrew"] = counts.get("hebrew", 0) + 1
        elif "\u0600" <= ch <= "\u06ff":
            counts["arabic"] = counts.get("arabic", 0) + 1
    if not letters:
        return ""
    if counts.get("kana", 0) > letters * 0.05:
        return "ja"
    for key, code in (("hangul", "ko"), ("han", "zh"), ("greek", "el"), ("hebrew", "he"), ("arabic", "ar")):
        if counts.get(key, 0) > letters * 0.3:
            return code
    hits = dict.fromkeys(_STOPWORDS, 0)
    total = 0
    for match in _WORD.finditer(sample.lower()):
        total += 1
        word = match.group(0)
        for code, words in _STOPWORDS.items():
            if word in words:
                hits[code] += 1
    ranked = sorted(hits.items(), key=lambda kv: kv[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top < 5 or top < total * 0.08 or top < second * 1.3:
        return ""
    return best


# --- images ---------------------------------------------------------------------------------------

MAX_COVER_BYTES = 16 * 1024 * 1024


def image_mime(data: bytes) -> str | None:
    """``"image/jpeg"`` or ``"image/png"`` by magic bytes; ``None`` for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None
