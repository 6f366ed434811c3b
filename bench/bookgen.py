"""A generated plain-text book for the scaling benchmark: chapters of very different sizes.

``generate(path)`` writes a .txt that ebook2audio reads as 12 chapters of 20 to 400 sentences
(2,000 in all), each sentence 5 to 25 words of plain English (no digits, no abbreviations, so that
one written sentence is one planned chunk). Deterministic for a given seed.

    .venv/bin/python bench/bookgen.py OUT.txt [--scale 0.1]
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence
from pathlib import Path

# Sentences per chapter: 20 to 400, in no particular order, 2,000 in all.
CHAPTER_SIZES = (20, 400, 60, 250, 35, 320, 90, 150, 45, 380, 110, 140)

_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV")
_SUBJECTS = (
    "the keeper", "the old sailor", "a young clerk", "the harbour master", "my aunt", "the doctor",
    "the fisherman", "a tired horse", "the schoolmaster", "the captain", "her brother", "the stranger",
)  # fmt: skip
_VERBS = (
    "walked along", "looked across", "spoke about", "thought of", "waited beside", "painted",
    "remembered", "counted", "carried", "followed", "listened to", "wrote about",
)  # fmt: skip
_OBJECTS = (
    "the grey water", "the narrow street", "a broken lantern", "the quiet chapel", "the long winter",
    "the wet sand", "a letter from home", "the empty market", "the northern road", "the lighthouse",
    "a field of barley", "the wooden bridge", "the evening tide", "the crowded inn",
)  # fmt: skip
_TAILS = (
    "while the wind rose over the hills",
    "and nobody said a word",
    "because the day was almost over",
    "as the bells rang in the distant town",
    "until the rain began to fall again",
    "although the others had already gone home",
    "with a patience that surprised everyone",
    "before the lamps were lit along the quay",
)
_TITLES = (
    "The Harbour", "A Letter", "The Long Road", "Winter", "The Chapel", "At the Inn", "The Tide",
    "Strangers", "The Bridge", "Night Watch", "The Market", "Homecoming", "The Fields", "Rain", "Morning",
)  # fmt: skip


def sentence(rng: random.Random) -> str:
    """One sentence of 5 to 25 words."""
    words = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        words += f" {rng.choice(_TAILS)}"
    return words[0].upper() + words[1:] + "."


def book_text(sizes: Sequence[int] = CHAPTER_SIZES, seed: int = 1) -> str:
    """The whole book: a Title/Author header, then "CHAPTER N. Title" and paragraphs of 3-7 sentences."""
    rng = random.Random(seed)
    out = ["Title: The Scaling Book", "Author: The ebook2audio benchmarks", "Language: English", "", ""]
    for i, n in enumerate(sizes):
        out += [f"CHAPTER {_ROMAN[i % len(_ROMAN)]}. {_TITLES[i % len(_TITLES)]}", ""]
        left = n
        while left > 0:
            k = min(left, rng.randint(3, 7))
            out += [" ".join(sentence(rng) for _ in range(k)), ""]
            left -= k
        out.append("")
    return "\n".join(out)


def scaled_sizes(scale: float) -> tuple[int, ...]:
    return tuple(max(2, round(n * scale)) for n in CHAPTER_SIZES)


def generate(path: Path, scale: float = 1.0, seed: int = 1) -> int:
    """Write the book to ``path``; the number of body sentences it holds."""
    sizes = scaled_sizes(scale)
    path.write_text(book_text(sizes, seed), encoding="utf-8")
    return sum(sizes)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--scale", type=float, default=1.0, help="multiply every chapter's size (default 1)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    n = generate(args.out, args.scale, args.seed)
    print(f"wrote {args.out}: {len(CHAPTER_SIZES)} chapters, {n} sentences")


if __name__ == "__main__":
    main()
