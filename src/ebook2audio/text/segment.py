"""Sentence segmentation and engine-sized chunks.

``split_sentences`` cuts a paragraph into sentences with a fast rule-based splitter that knows
abbreviations, initials, closing quotes and brackets after the end mark, French spaced
guillemets and CJK full stops. Where the rules have to guess (a period after an acronym such as
"U.S.", an abbreviation that may also end a sentence, or a short capitalised word such as "Inc.")
and pysbd has rules for the language, pysbd is asked about the text between the two sure
boundaries around the guess, and its answer is used at that place only. Its answer counts only
if its sentences cover that text exactly (whitespace aside), since pysbd can alter or drop
characters. pysbd is slow (~75 KB/s) and merges quoted dialogue into one sentence, so it is
never run on whole paragraphs: it gets at most 400 characters around each guess and 20 calls
per paragraph (the rules decide the rest); on Moby-Dick it sees under 2% of the text.

``chunk_text`` cuts a sentence that is too long for the engine at the strongest punctuation that
fits, then at spaces, and splits inside a word only when the word alone is too long.

``segment_paragraph`` glues both to :func:`~ebook2audio.text.normalize.normalize`: the display
text of each segment is original text (for subtitles), the spoken text is normalised.

None of these functions drops, truncates or reorders text: the sentences (and chunks) joined
together equal the input, whitespace aside.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from ebook2audio.text.languages import LanguageInfo, language_info
from ebook2audio.text.normalize import normalize, speakable

__all__ = ["Segment", "chunk_text", "segment_paragraph", "split_sentences"]

logger = logging.getLogger(__name__)


def _words(text: str) -> frozenset[str]:
    """A constant set of words written as one space-separated string."""
    return frozenset(text.split())


@dataclass(frozen=True)
class Segment:
    """One piece of speech: ``spoken`` goes to the engine, ``display`` is the original text."""

    display: str
    spoken: str


# ---------------------------------------------------------------------------------------------
# Sentences
# ---------------------------------------------------------------------------------------------

_CJK_ENDS = "。！？｡"
_CANDIDATE = re.compile(
    r"(?P<end>[.!?…‽‼⁇⁈⁉]+|[。！？｡]+)"
    r"(?P<close>[\"'”’“‘»«›‹)\]}」』）〕】〉》]*)"
    r"(?:[ \u00a0\u202f]+[»›](?=\s|$))?"  # French closing guillemet after a (thin) space
)
_ROMAN = re.compile(r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
_SKIP_BEFORE_NEXT = re.compile(r"[\s—–\-]*")
# titles: a period after them never ends a sentence, so the rules need no second opinion
_TITLES = _words(
    "mr mrs ms messrs dr prof capt col gen lt sgt cpl rev hon gov sen st mt ft m mm mme mmes "
    "mlle mlles mgr pr sr sra srta dra sig dott hr"
)
_OPENERS = ".([{\"'“‘«»„‚¿¡—–-"


@dataclass(frozen=True)
class _Candidate:
    """A place where the rules think a sentence may end."""

    mark: int  # offset of the end mark
    end: int  # offset just after the end mark and its closing quotes/brackets
    split: bool  # what the rules decided
    sure: bool  # False: a guess at an abbreviation-like word that pysbd may overrule


def _rule_candidates(text: str, info: LanguageInfo) -> list[_Candidate]:
    """Every end mark followed by something that could start a sentence, with the rules' verdict."""
    found: list[_Candidate] = []
    length = len(text)
    for m in _CANDIDATE.finditer(text):
        end = m.end()
        nxt = _SKIP_BEFORE_NEXT.match(text, end).end()
        if nxt >= length:
            break
        mark = m["end"]
        split, sure = True, True
        if mark[-1] not in _CJK_ENDS:
            if not text[end].isspace():
                continue  # "3.5", "e.g.x", "U.S.A", "?!"
            following = text[nxt]
            if following.islower() or following in ",;:":
                continue  # « Quoi ? » dit-il / etc., and
            if mark == ".":
                split, sure = _period_verdict(text, m.start(), following, info)
        found.append(_Candidate(m.start(), end, split, sure))
    return found


def _word_before(text: str, pos: int) -> tuple[str, str]:
    """The run of word characters and the run of non-space characters that end at ``pos``."""
    word_start = pos
    while word_start > 0 and (text[word_start - 1].isalnum() or text[word_start - 1] == "_"):
        word_start -= 1
    token_start = word_start
    while token_start > 0 and not text[token_start - 1].isspace():
        token_start -= 1
    return text[word_start:pos], text[token_start:pos]


def _period_verdict(text: str, dot: int, following: str, info: LanguageInfo) -> tuple[bool, bool]:
    """(ends a sentence, sure) for a single period followed by a space and ``following``."""
    word, token = _word_before(text, dot)
    if not word:
        return True, True  # after a closing bracket or quote
    lower = word.lower()
    if lower in _TITLES:
        return False, True  # "Mr. Smith"
    if len(word) == 1 and word.isalpha() and ("-" in token or "." not in token.lstrip(_OPENERS)):
        return False, True  # an initial: "J. Smith", "J.-J. Rousseau"
    if "." in token.lstrip(_OPENERS):
        return False, False  # an acronym or abbreviation with inner periods: "U.S.", "e.g.", "a.m."
    if lower in info.number_abbreviations:
        # "No. 5", "p. 12"; without a number it is a word ("No. They must...")
        return not (following.isdigit() or following in "IVXLCDM"), True
    if lower in info.abbreviations:
        return False, False
    if word.isdigit():
        return (False, False) if info.ordinal_dot else (True, True)
    if _ROMAN.fullmatch(word) and (len(word) > 1 or word in "VX"):
        return True, True  # "Chapter IV.", "Louis XIV."
    if word[0].isupper() and len(word) <= 3:
        return True, False  # "Inc.", "Co.", "USA.", "Liv." (or a short name: "Tom.")
    return True, True


def _spans(text: str, ends: list[int]) -> list[tuple[int, int]]:
    bounds = [0, *ends, len(text)]
    return _trim(text, list(pairwise(bounds)))


def _trim(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Strip whitespace from spans, drop empty ones, merge text without letters or digits into
    its neighbour (a sentence of its own would have nothing to say) and merge a span that starts
    with a lower-case letter into the one before it."""
    out: list[tuple[int, int]] = []
    for begin, end in spans:
        while begin < end and text[begin].isspace():
            begin += 1
        while end > begin and text[end - 1].isspace():
            end -= 1
        if begin == end:
            continue
        piece = text[begin:end]
        if out and (not speakable(piece) or _starts_lower(piece)):
            out[-1] = (out[-1][0], end)
        else:
            out.append((begin, end))
    if len(out) > 1 and not speakable(text[out[0][0] : out[0][1]]):
        out[1] = (out[0][0], out[1][1])
        del out[0]
    return out


def _starts_lower(piece: str) -> bool:
    for ch in piece:
        if ch.isalnum():
            return ch.islower()
    return False


def _pysbd_sentences(text: str, code: str) -> list[str] | None:
    """pysbd's sentences, or None if pysbd failed."""
    import pysbd  # heavy import kept inside the adapter

    try:
        return [str(s) for s in pysbd.Segmenter(language=code, clean=False).segment(text)]
    except Exception as exc:  # pysbd has known crashes on unusual input
        logger.debug("pysbd failed on a paragraph (%s): %s", code, exc)
        return None


def _align(text: str, pieces: list[str]) -> list[tuple[int, int]] | None:
    """Map sentences back onto ``text`` as spans; None unless they cover it exactly, in order,
    whitespace aside."""
    if "".join("".join(pieces).split()) != "".join(text.split()):
        return None
    # offsets of each run of non-space characters, and how many such characters precede it
    runs = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    counted: list[int] = []
    total = 0
    for begin, end in runs:
        counted.append(total)
        total += end - begin
    spans: list[tuple[int, int]] = []
    done = 0
    previous_end = 0
    for piece in pieces:
        size = len("".join(piece.split()))
        if not size:
            continue
        done += size
        index = bisect_right(counted, done - 1) - 1  # the run holding the last character
        run_begin, _ = runs[index]
        end = run_begin + (done - counted[index])
        spans.append((previous_end, end))
        previous_end = end
    return spans


def _pysbd_ends(text: str, begin: int, end: int, code: str) -> set[int] | None:
    """Where pysbd ends sentences in text[begin:end] (offsets in ``text``), or None when pysbd
    failed or changed the text."""
    while begin < end and text[begin].isspace():
        begin += 1
    window = text[begin:end]
    pieces = _pysbd_sentences(window, code)
    spans = _align(window, pieces) if pieces is not None else None
    if spans is None:
        if pieces is not None:
            logger.debug("pysbd changed the text of a sentence; the rules decide")
        return None
    return {begin + stop for _, stop in spans}


def split_sentences(paragraph: str, language: str) -> list[str]:
    """The sentences of ``paragraph``, stripped, in order; together they are the whole paragraph
    (whitespace aside). ``language`` is a BCP 47 tag.

    Rules decide; where they guess (a period after an acronym or a short capitalised word) and
    pysbd knows the language, pysbd is asked about the text between the two sure boundaries
    around the guess, and its answer is used at that place only.
    """
    if not paragraph.strip():
        return []
    info = language_info(language)
    candidates = _rule_candidates(paragraph, info)
    if info.pysbd and any(not c.sure for c in candidates):
        candidates = _ask_pysbd(paragraph, candidates, info.pysbd)
    return [paragraph[a:b] for a, b in _spans(paragraph, [c.end for c in candidates if c.split])]


_PYSBD_CONTEXT = 400  # characters of context given to pysbd on each side of a doubtful period
_PYSBD_CALLS = 20  # at most this many pysbd calls per paragraph; the rules decide the rest


def _ask_pysbd(text: str, candidates: list[_Candidate], code: str) -> list[_Candidate]:
    sure_ends = [c.end for c in candidates if c.sure and c.split]
    decided: list[_Candidate] = []
    window: tuple[int, int] | None = None
    ends: set[int] | None = None
    calls = 0
    for c in candidates:
        if c.sure or calls >= _PYSBD_CALLS:
            decided.append(c)
            continue
        index = bisect_right(sure_ends, c.mark)
        begin = sure_ends[index - 1] if index else 0
        stop = sure_ends[index] if index < len(sure_ends) else len(text)
        # pysbd needs local context only, and is slow on long text
        begin = max(begin, c.mark - _PYSBD_CONTEXT)
        stop = min(stop, c.end + _PYSBD_CONTEXT)
        if window != (begin, stop):
            window = (begin, stop)
            ends = _pysbd_ends(text, begin, stop, code)
            calls += 1
        if ends is None:
            decided.append(c)
        else:
            split = any(c.mark < e <= c.end for e in ends)
            decided.append(_Candidate(c.mark, c.end, split, True))
    return decided


# ---------------------------------------------------------------------------------------------
# Chunks
# ---------------------------------------------------------------------------------------------

_CLOSING = r"[\"'”’»)\]}」』）]*"
# cut points, strongest first; a cut is at the end of the match (or its start for plain spaces)
_CUT_LEVELS: tuple[re.Pattern[str], ...] = (
    re.compile(rf"[.!?…‽]+{_CLOSING}(?=\s)|[。！？｡]+{_CLOSING}"),
    re.compile(rf"[;:]+{_CLOSING}(?=\s)|[；：]+"),
    re.compile(rf"[,]+{_CLOSING}(?=\s)|[，、､]+"),
    re.compile(r"(?<=\s)[—–\-]+(?=\s)|[—–]+"),
)
_SPACE = re.compile(r"\s+")
_SYMBOLS = re.compile(r"[^\w\s]+")
_SPACE_RUNS = re.compile(r"\S+")


def _breakable(text: str, point: int) -> bool:
    """Whether text may be cut before ``point`` without separating an accent from its letter or
    cutting at an invisible joiner (a soft hyphen, a zero-width joiner) inside a word."""
    if point >= len(text):
        return True
    return not unicodedata.combining(text[point]) and "Cf" not in (
        unicodedata.category(text[point - 1]),
        unicodedata.category(text[point]),
    )


def _cut_point(text: str, start: int, max_chars: int) -> int:
    """How many characters of text[start:] (longer than max_chars) go into the next piece."""
    window = text[start : start + max_chars + 1]
    least = max(1, max_chars // 3)  # a punctuation cut must keep a useful head
    for level in _CUT_LEVELS:
        best = 0
        for m in level.finditer(window):
            if least <= m.end() <= max_chars:
                best = m.end()
        if best:
            return best
    best = 0
    for m in _SPACE.finditer(window):
        if 0 < m.start() <= max_chars:
            best = m.start()
    if best:
        return best
    for m in _SYMBOLS.finditer(window):  # no space: cut next to punctuation, not inside a word
        for point in (m.start(), m.end()):
            if 0 < point <= max_chars and _breakable(window, point):
                best = point
    if best:
        return best
    cut = max_chars  # one word longer than the limit: a hard split, not before a combining mark
    while cut > 1 and unicodedata.combining(window[cut]):
        cut -= 1
    return cut


def chunk_text(sentence: str, max_chars: int) -> list[str]:
    """Cut ``sentence`` into pieces of at most ``max_chars`` characters, stripped and non-empty.

    Cuts go at the strongest punctuation that fits (end marks, then ``; :``, then commas, then
    dashes; a punctuation cut must leave a head of at least a third of max_chars), then at
    spaces; a word is split only when it alone is longer than max_chars (next to punctuation
    inside it if it has some, never between a letter and its accent). Nothing is dropped: the
    pieces joined equal the sentence, whitespace and invisible format characters (Cf) aside.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, not {max_chars}")
    # Invisible format characters (soft hyphen, zero-width joiners...) are not spoken and must not
    # count against the limit or force a cut inside a word.
    text = "".join(ch for ch in sentence if unicodedata.category(ch) != "Cf").strip()
    pieces: list[str] = []
    start = 0
    while len(text) - start > max_chars:
        cut = start + _cut_point(text, start, max_chars)
        head = text[start:cut].rstrip()
        if head:
            pieces.append(head)
        start = cut
        while start < len(text) and text[start].isspace():
            start += 1
    if start < len(text):
        pieces.append(text[start:])
    return pieces


# ---------------------------------------------------------------------------------------------
# Paragraphs
# ---------------------------------------------------------------------------------------------


def _share_display(display: str, pieces: list[str]) -> list[str]:
    """Split a sentence's display text among its spoken pieces, in proportion to their length,
    at word boundaries. If the display text has too few words, the first piece gets it all and
    the others show their own spoken text."""
    if len(pieces) == 1:
        return [display]
    # cut points: after each run of non-space characters, and after punctuation inside one
    last = len(display.rstrip())
    points = {m.end() for m in _SPACE_RUNS.finditer(display)} | {m.end() for m in _SYMBOLS.finditer(display)}
    word_ends = sorted(p for p in points if 0 < p < last and _breakable(display, p))
    needed = len(pieces) - 1
    if len(word_ends) < needed:
        return [display, *pieces[1:]]
    total = sum(len(p) for p in pieces)
    cuts: list[int] = []
    done = 0
    low = 0  # index of the first word end still available
    for k, piece in enumerate(pieces[:-1]):
        done += len(piece)
        target = len(display) * done / total
        high = len(word_ends) - (needed - k - 1)  # leave one word end for every later cut
        near = bisect_right(word_ends, target, low, high)  # the nearest cut is at near-1 or near
        best = min((i for i in (near - 1, near) if low <= i < high), key=lambda i: abs(word_ends[i] - target))
        cuts.append(word_ends[best])
        low = best + 1
    bounds = [0, *cuts, len(display)]
    return [display[a:b].strip() for a, b in pairwise(bounds)]


def segment_paragraph(
    paragraph: str, language: str, max_chars: int, rewrite: Callable[[str], str] | None = None
) -> list[Segment]:
    """Sentences of ``paragraph`` as segments ready for an engine taking ``max_chars`` at most.

    Each sentence of the original paragraph is normalised, then cut into pieces that fit. A
    sentence cut into several pieces has its display text shared among them in proportion to the
    spoken length, at word boundaries (see :func:`_share_display`). Sentences or pieces with
    nothing to say (only punctuation) are skipped; they hold no words. ``rewrite`` (the
    pronunciation lexicon) is applied to each normalised sentence before it is cut.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, not {max_chars}")
    segments: list[Segment] = []
    for sentence in split_sentences(paragraph, language):
        spoken = normalize(sentence, language)
        if rewrite is not None:
            spoken = rewrite(spoken)
        pieces = [p for p in chunk_text(spoken, max_chars) if speakable(p)]
        if not pieces:
            continue
        displays = _share_display(sentence, pieces)
        segments.extend(Segment(d, p) for d, p in zip(displays, pieces, strict=True))
    return segments
