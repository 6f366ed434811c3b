"""Does a sentence's audio say its text? Pure comparison of the text with what speech recognition heard.

Both sides are normalised the same way (``comparable``): the project's text normaliser (numbers,
abbreviations and symbols spelled as the voice was given them), then lower case, accents dropped,
apostrophes unified, every other non-letter/digit a space, hesitations ("um", "euh") left out. Then:

- word error rate (WER): word-level edit distance / words in the text;
- character error rate (CER): character-level edit distance of the words joined without spaces /
  characters of the text (so "to day" for "today" costs nothing);
- duration ratio: the audio's length / the usual length of the text for the voice
  (``SECONDS_PER_CHAR`` / speed per character); under ``min_duration`` the take is truncated,
  over ``max_duration`` it runs on (noise, babble, a stuck voice). Only judged on texts of at least
  ``RATE_MIN_CHARS`` characters (a short word's length is mostly its attack and release).

A take fails when any of them is over its threshold (``Verification`` in model.py), except that a text
of fewer than ``SHORT_WORDS`` words is judged on its characters only, against at least
``SHORT_MAX_CER``: recognisers miss isolated short words ("Loaded?" heard "Love it.", measured on
Moby-Dick with tiny.en), and a silent, noisy or misplaced take still scores near 100 %.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .model import Verification
from .text.normalize import normalize

SECONDS_PER_CHAR = 0.065  # a voice's usual pace, about 15 characters a second (poison.SECONDS_PER_CHAR)
RATE_MIN_CHARS = 25
# Hesitations a recogniser leaves out by design (Whisper transcribes "Um, um, um!" as nothing): not compared.
FILLERS = frozenset({"um", "umm", "uh", "uhm", "er", "erm", "hmm", "hm", "mm", "mmm", "euh", "hum"})
SHORT_WORDS = 3  # a text of fewer words: its word error rate is not judged, and its characters only
SHORT_MAX_CER = 0.8  # when nearly nothing like it was heard (silence, noise, another sentence)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_NON_WORD = re.compile(r"[^\w']+|_")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")


def comparable(text: str, language: str) -> list[str]:
    """``text`` as the words compared: normalised, lower case, no punctuation."""
    if language.lower().split("-")[0] == "en":
        text = _THOUSANDS.sub("", text)  # "1,891" (a recogniser's year) is 1891, as the book writes it
    spoken = normalize(text, language) if text.strip() else ""
    decomposed = unicodedata.normalize("NFKD", spoken).translate(_APOSTROPHES).lower()
    flat = "".join(ch for ch in decomposed if not unicodedata.combining(ch))  # accents are the recogniser's guess
    words = (w.strip("'") for w in _NON_WORD.sub(" ", flat).split())
    return [w for w in words if w and w not in FILLERS]


def edit_distance(a: Sequence[str] | str, b: Sequence[str] | str) -> int:
    """Levenshtein distance between two sequences (words or characters); numpy rows, so a chapter's
    tens of thousands of characters take a second or two, not minutes."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    codes: dict[str, int] = {}
    xa = np.array([codes.setdefault(x, len(codes)) for x in a], dtype=np.int64)
    xb = np.array([codes.setdefault(y, len(codes)) for y in b], dtype=np.int64)
    steps = np.arange(len(xb) + 1, dtype=np.int64)
    previous = steps.copy()
    for i, x in enumerate(xa, 1):
        # Substitution or deletion first, then insertions as a running minimum (cur[j] <= cur[j-1] + 1).
        best = np.empty_like(previous)
        best[0] = i
        best[1:] = np.minimum(previous[1:] + 1, previous[:-1] + (xb != x))
        previous = np.minimum.accumulate(best - steps) + steps
    return int(previous[-1])


def error_rates(reference: Sequence[str], heard: Sequence[str]) -> tuple[float, float]:
    """(WER, CER) of ``heard`` against ``reference`` (comparable words). An empty reference: 0, or 1
    when something was heard."""
    if not reference:
        return (0.0, 0.0) if not heard else (1.0, 1.0)
    wer = edit_distance(reference, heard) / len(reference)
    ref_chars, heard_chars = "".join(reference), "".join(heard)
    cer = edit_distance(ref_chars, heard_chars) / len(ref_chars)
    return wer, cer


def expected_seconds(text: str, speed: float = 1.0) -> float:
    return len(text.strip()) * SECONDS_PER_CHAR / max(speed, 0.01)


@dataclass(frozen=True)
class Verdict:
    """One take of one sentence, judged."""

    heard: str
    wer: float
    cer: float
    seconds: float
    ratio: float  # seconds / the usual duration of the text (0 when not judged)
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def score(self) -> float:
        """Lower is better: used to keep the best of several failing takes."""
        off = 0.0
        if self.ratio:
            off = max(0.0, 0.5 - self.ratio) + max(0.0, self.ratio - 2.0) * 0.25
        return self.cer + 0.5 * self.wer + off

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["problems"] = list(self.problems)
        for k in ("wer", "cer", "seconds", "ratio"):
            d[k] = round(d[k], 4)
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        return cls(
            heard=str(data["heard"]),
            wer=float(data["wer"]),
            cer=float(data["cer"]),
            seconds=float(data["seconds"]),
            ratio=float(data["ratio"]),
            problems=tuple(data.get("problems") or ()),
        )


def judge(text: str, heard: str, seconds: float, spec: Verification, speed: float = 1.0) -> Verdict:
    """The verdict on a take of ``text`` lasting ``seconds`` in which the recogniser heard ``heard``. Pure."""
    reference = comparable(text, spec.language)
    # Nothing to compare (only hesitations, "Um, um, um!"): what is heard is not judged.
    wer, cer = error_rates(reference, comparable(heard, spec.language)) if reference else (0.0, 0.0)
    problems: list[str] = []
    short = len(reference) < SHORT_WORDS  # "Loaded?" heard "Love it.": one word wrong is all of them
    max_cer = max(spec.max_cer, SHORT_MAX_CER) if short else spec.max_cer
    if wer > spec.max_wer and not short:
        problems.append(f"word error rate {wer:.0%} over {spec.max_wer:.0%}")
    if cer > max_cer:
        problems.append(f"character error rate {cer:.0%} over {max_cer:.0%}")
    ratio = 0.0
    usual = expected_seconds(text, speed)
    if len(text.strip()) >= RATE_MIN_CHARS and usual > 0:
        ratio = seconds / usual
        if ratio < spec.min_duration:
            problems.append(f"too short ({seconds:.1f} s for about {usual:.1f} s of text): truncated")
        elif ratio > spec.max_duration:
            problems.append(f"too long ({seconds:.1f} s for about {usual:.1f} s of text)")
    return Verdict(heard=heard, wer=wer, cer=cer, seconds=seconds, ratio=ratio, problems=tuple(problems))


def listen(
    transcribe: Callable[[bool], str], text: str, seconds: float, spec: Verification, speed: float = 1.0
) -> Verdict:
    """The verdict on one take; ``transcribe(timestamps)`` hears it. A take that fails is heard a
    second time with timestamps: greedy decoding without them sometimes stops early on a long
    sentence (measured: tiny.en ended a 14 s sentence after its first clause), and the better of the
    two verdicts stands."""
    first = judge(text, transcribe(False), seconds, spec, speed)
    if first.passed or not first.heard.strip():  # nothing heard at all (silence, noise): nothing cut short
        return first
    second = judge(text, transcribe(True), seconds, spec, speed)
    return second if second.score < first.score else first


@dataclass(frozen=True)
class TakePlan:
    """How the n-th take (0-based) of a sentence is made: ``seed_variant`` 0 is the chunk's own seed;
    ``slower`` < 1 slows the voice down (the last take, when there are 3 or more)."""

    seed_variant: int
    slower: float = 1.0


SLOWER = 0.85


def take_plans(takes: int) -> list[TakePlan]:
    """The takes to try, in order: the chunk's own, other seeds, and (3 takes or more) a slower last one."""
    n = max(1, takes)
    plans = [TakePlan(i) for i in range(n)]
    if n >= 3:
        plans[-1] = TakePlan(n - 1, SLOWER)
    return plans


def best(verdicts: list[Verdict]) -> int:
    """Index of the take to keep: the first that passed, else the lowest score."""
    for i, v in enumerate(verdicts):
        if v.passed:
            return i
    return min(range(len(verdicts)), key=lambda i: (verdicts[i].score, i))


def check_key(session: str, chunk_id: str) -> str:
    """Where --verify records what it found for a chunk."""
    return f"{session}/verify/{chunk_id}.json"


def checks_prefix(session: str) -> str:
    return f"{session}/verify/"


@dataclass(frozen=True)
class ChunkCheck:
    """What verification found for one stored chunk (``<session>/verify/<chunk id>.json``)."""

    chunk_id: str
    chapter: int  # 0-based
    index: int  # 0-based in its chapter
    text: str  # the book's text (display)
    takes: int  # syntheses made
    kept: int  # 0-based take stored
    verdict: Verdict  # of the kept take

    @property
    def retaken(self) -> bool:
        return self.takes > 1

    @property
    def failed(self) -> bool:
        return not self.verdict.passed

    def to_json(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "chapter": self.chapter,
            "index": self.index,
            "text": self.text,
            "takes": self.takes,
            "kept": self.kept,
            "verdict": self.verdict.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChunkCheck:
        return cls(
            chunk_id=str(data["chunk_id"]),
            chapter=int(data["chapter"]),
            index=int(data["index"]),
            text=str(data["text"]),
            takes=int(data["takes"]),
            kept=int(data["kept"]),
            verdict=Verdict.from_json(data["verdict"]),
        )
