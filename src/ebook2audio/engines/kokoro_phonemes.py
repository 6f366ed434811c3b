"""Text -> Kokoro phonemes -> token ids, and long phoneme strings cut under Kokoro's token limit.

Kokoro-82M reads a string of phoneme symbols, one token per symbol, from a fixed vocabulary
(:data:`VOCAB`, the ``vocab`` of the model's ``config.json``; Apache-2.0). Its English voices were
trained on misaki's symbols (diphthongs as one capital letter: ``A`` = /eɪ/, ``I`` = /aɪ/, ``O`` = /oʊ/
...), its other languages on espeak-ng's IPA with the same single symbols for affricates and
diphthongs. Here the IPA comes from espeak-ng (the library of the ``espeakng-loader`` wheel, through
:func:`.espeak.ipa_phonemes`, with ``^`` tying multi-letter phonemes) and is rewritten to those
symbols; punctuation that Kokoro knows (``. , ; : ! ? … — " ( ) “ ”``) is kept, because the model
pauses and intones on it.

Pure, apart from :func:`phonemize` (which calls espeak-ng).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

MAX_TOKENS = 510  # Kokoro's context is 512 positions: the phonemes plus a pad token at each end

# The model's vocabulary: symbol -> token id (0 is the pad). From Kokoro-82M's config.json.
_VOCAB_RUNS = (  # (first id, symbols with consecutive ids)
    (1, ";:,.!?"),
    (9, "—…\"()“” ̃ʣʥʦʨᵝꭧAI"),
    (31, "O"),
    (33, "Q"),
    (35, "ST"),
    (39, "W"),
    (41, "Yᵊabcdef"),
    (50, "hijklmnopqrstuvwxyzɑɐɒæ"),
    (75, "βɔɕç"),
    (80, "ɖðʤə"),
    (85, "ɚɛɜ"),
    (90, "ɟ"),
    (92, "ɡ"),
    (99, "ɥ"),
    (101, "ɨɪʝ"),
    (110, "ɯɰŋɳɲɴø"),
    (118, "ɸθœ"),
    (123, "ɹ"),
    (125, "ɾɻ"),
    (128, "ʁɽʂʃʈʧ"),
    (135, "ʊʋ"),
    (138, "ʌɣɤ"),
    (142, "χʎ"),
    (147, "ʒʔ"),
    (156, "ˈˌː"),
    (162, "ʰ"),
    (164, "ʲ"),
    (169, "↓"),
    (171, "→↗↘"),
    (177, "ᵻ"),
)


def _vocab() -> dict[str, int]:
    return {symbol: first + k for first, symbols in _VOCAB_RUNS for k, symbol in enumerate(symbols)}


VOCAB: dict[str, int] = _vocab()

# espeak-ng's tied multi-letter phonemes -> Kokoro's single symbols (every language).
_TIED = {
    "a^ɪ": "I",
    "a^ʊ": "W",
    "d^z": "ʣ",
    "d^ʒ": "ʤ",
    "e^ɪ": "A",
    "o^ʊ": "O",
    "ə^ʊ": "Q",
    "s^s": "S",
    "t^s": "ʦ",
    "t^ʃ": "ʧ",
    "ɔ^ɪ": "Y",
}
# English: espeak-ng's IPA -> misaki's symbols, which Kokoro's English voices were trained on.
_ENGLISH = {
    "ʔˌn\u0329": "ʔn",
    "ʔn\u0329": "ʔn",
    "ə^l": "ᵊl",
    "ʲo": "jo",
    "ʲə": "jə",
    "ʲ": "",
    "ɚ": "əɹ",
    "e": "A",
    "r": "ɹ",
    "x": "k",
    "ç": "k",
    "ɐ": "ə",
    "ɬ": "l",
    "\u0303": "",
}
_BRITISH = {"e^ə": "ɛː", "i^ə": "ɪə", "iə": "ɪə"}
_AMERICAN = {"ɜːɹ": "ɜɹ", "ɜː": "ɜɹ", "ɪə": "iə", "ː": ""}

# Punctuation Kokoro pauses on; what else is said as such
_PUNCT_RE = re.compile(r"([.,;:!?…—–\"“”«»()]+)")
_PUNCT_MAP = str.maketrans({"–": "—", "«": "“", "»": "”"})
_CLOSING = set(".,;:!?…”)")
_OPENING = set("“(")
_SYLLABIC_RE = re.compile(r"(\S)\u0329")
_FLAG_RE = re.compile(r"\([^()\s]*\)")
_STRONG = {**dict.fromkeys(".!?…", 3), **dict.fromkeys(";:", 2), **dict.fromkeys(",—", 1)}

# The languages Kokoro speaks through espeak-ng here: BCP 47 -> espeak-ng voice
ESPEAK_VOICES = {
    "en-US": "en-US",
    "en-GB": "en",  # espeak-ng's "en" is British English
    "fr-FR": "fr",
    "es-ES": "es",
    "it-IT": "it",
    "pt-BR": "pt-BR",
    "hi-IN": "hi",
}


def _replace_all(text: str, table: dict[str, str]) -> str:
    for old in sorted(table, key=len, reverse=True):
        text = text.replace(old, table[old])
    return text


def ipa_to_kokoro(ipa: str, espeak_voice: str) -> str:
    """espeak-ng IPA (ties written ``^``) as Kokoro's symbols for ``espeak_voice``; unknown symbols dropped.

    espeak-ng's language-switch flags (``(^e^n)football(^f^r)``: an English word in French) are removed;
    text parentheses never reach espeak-ng (:func:`phonemize` keeps them aside).
    """
    ipa = _FLAG_RE.sub("", ipa)
    if espeak_voice in ("en", "en-US"):
        region = _BRITISH if espeak_voice == "en" else _AMERICAN
        ps = _replace_all(ipa, {**_TIED, **_ENGLISH, **region})  # longest first: "e^ə" before "e"
        ps = _SYLLABIC_RE.sub(r"ᵊ\1", ps).replace("\u0329", "")
        ps = ps.replace("o", "ɔ").replace("ɾ", "T").replace("ʔ", "t")
    else:
        ps = _replace_all(ipa, _TIED).replace("-", "")
    ps = ps.replace("^", "")
    return " ".join("".join(ch for ch in ps if ch in VOCAB or ch.isspace()).split())


def _join(parts: list[str]) -> str:
    """Words and punctuation marks as one string: closing marks stick to the word before, opening
    ones to the word after."""
    out = ""
    for part in parts:
        if not part:
            continue
        if out and not (part[0] in _CLOSING or out[-1] in _OPENING):
            out += " "
        out += part
    return out


def phonemize(text: str, espeak_voice: str, ipa: Callable[[str, str], list[str]] | None = None) -> str:
    """Kokoro's phoneme string for ``text`` in the language of ``espeak_voice`` (see :data:`ESPEAK_VOICES`).

    ``ipa(voice, text)``: espeak-ng's clauses (default: :func:`.espeak.ipa_phonemes` with a ``^`` tie).
    """
    if ipa is None:
        from .espeak import ipa_phonemes

        def ipa(voice: str, words: str) -> list[str]:
            return ipa_phonemes(voice, words, tie="^")

    parts: list[str] = []
    for i, piece in enumerate(_PUNCT_RE.split(text)):
        if i % 2:  # a run of punctuation
            marks = "".join(ch for ch in piece.translate(_PUNCT_MAP).replace("...", "…") if ch in VOCAB)
            marks = re.sub(r"(.)\1+", r"\1", marks)[:3]  # "!!!" -> "!"
            parts.append(marks)
        elif any(ch.isalnum() for ch in piece):
            clauses = ipa(espeak_voice, piece.strip())
            parts.append(ipa_to_kokoro(" ".join(c.strip() for c in clauses), espeak_voice))
    return _join(parts)


def tokenize(phonemes: str) -> list[int]:
    """Token ids of a phoneme string (symbols outside the vocabulary are skipped)."""
    return [VOCAB[ch] for ch in phonemes if ch in VOCAB]


def _strength(phonemes: str, space: int) -> int:
    """How good a cut the space at ``space`` is: after a sentence end 3, ``;:`` 2, ``,—`` 1, else 0."""
    before = phonemes[:space].rstrip("”)\"")
    return _STRONG.get(before[-1], 0) if before else 0


def split_phonemes(phonemes: str, limit: int = MAX_TOKENS) -> list[str]:
    """``phonemes`` cut into pieces of at most ``limit`` symbols, at spaces, never dropping a symbol.

    Pieces are about equally long (Kokoro garbles very short inputs), cut preferably after a sentence
    end, then after ``;``/``:``, then after a comma or dash, else between words; a word longer than
    ``limit`` alone is split inside. Only the spaces at the cuts are left out. Pure.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    rest = " ".join(phonemes.split())
    pieces: list[str] = []
    while len(rest) > limit:
        count = math.ceil(len(rest) / limit)
        target = len(rest) / count
        spaces = [i for i in range(1, limit + 1) if rest[i] == " "]
        if not spaces:  # one word longer than the limit
            pieces.append(rest[:limit])
            rest = rest[limit:].lstrip()
            continue
        # the rest after the cut must still fit in count - 1 pieces where it can
        fits = [i for i in spaces if len(rest) - i - 1 <= (count - 1) * limit and i >= target / 2]
        cut = max(fits or spaces, key=lambda i: (_strength(rest, i), -abs(i - target)))
        pieces.append(rest[:cut])
        rest = rest[cut + 1 :]
    if rest:
        pieces.append(rest)
    return pieces
