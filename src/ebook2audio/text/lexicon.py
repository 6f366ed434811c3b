"""Pronunciation lexicon: whole words of the normalised text replaced by a respelling. Pure.

A lexicon is a TOML file with two tables (docs/mastering.md has examples)::

    [exact]       # matched only with this exact case
    "SQL" = "sequel"
    [any_case]    # matched whatever the case ("Gif", "GIF", "gif")
    "gif" = "jif"

Keys are matched as whole words (not inside a longer word: no letter, digit or underscore just
before or after them; "Hermione's" holds "Hermione") and may hold several words ("New York").
Where two keys could match at one place the longer one wins, and an exact-case entry wins over an
any-case one of the same length. The respelling is inserted as it is written; one written
``[[ ... ]]`` is phonemes (IPA as espeak-ng writes it), which Piper reads as they are: such entries
are used with Piper voices only (the other engines skip them). Matching is on the
text *after* normalisation (numbers and abbreviations already spelled out), in one pass: a
respelling is never matched again. The user's lexicon (``$XDG_CONFIG_HOME/ebook2audio/lexicon.toml``)
is read first, a book's (``--lexicon FILE``) second: its entries replace the user's of the same key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..errors import ConfigError

__all__ = ["Lexicon", "load_lexicon", "user_lexicon_path"]


@dataclass(frozen=True)
class Lexicon:
    exact: tuple[tuple[str, str], ...] = ()  # (word, respelling), case-sensitive
    any_case: tuple[tuple[str, str], ...] = ()  # (word, respelling), case-insensitive

    def __bool__(self) -> bool:
        return bool(self.exact or self.any_case)

    def __len__(self) -> int:
        return len(self.exact) + len(self.any_case)

    def without_phonemes(self) -> Lexicon:
        """The entries whose respelling is not phonemes (``[[ ... ]]``, which only Piper reads)."""
        return Lexicon(
            exact=tuple(e for e in self.exact if not _phonemes(e[1])),
            any_case=tuple(e for e in self.any_case if not _phonemes(e[1])),
        )

    def key(self) -> str:
        """A digest of the entries (part of the output's fingerprint)."""
        data = json.dumps([sorted(self.exact), sorted(self.any_case)], ensure_ascii=False)
        return hashlib.sha256(data.encode()).hexdigest()[:16] if self else ""

    def apply(self, text: str) -> tuple[str, int]:
        """``text`` with every entry replaced, and the number of replacements made."""
        if not self:
            return text, 0
        pattern, exact, folded = self._compiled
        count = 0

        def sub(m: re.Match[str]) -> str:
            nonlocal count
            count += 1
            word = m.group(0)
            return exact.get(word) or folded[word.casefold()]

        return pattern.sub(sub, text), count

    @cached_property
    def _compiled(self) -> tuple[re.Pattern[str], dict[str, str], dict[str, str]]:
        """The one regex of the lexicon, longest keys first (exact before any-case at equal length)."""
        alts = [(len(w), 1, re.escape(w)) for w, _ in self.exact]
        alts += [(len(w), 0, f"(?i:{re.escape(w)})") for w, _ in self.any_case]
        alts.sort(key=lambda a: (-a[0], -a[1]))
        pattern = re.compile(r"(?<!\w)(?:" + "|".join(a[2] for a in alts) + r")(?!\w)")
        return pattern, dict(self.exact), {w.casefold(): r for w, r in self.any_case}


def _phonemes(respelling: str) -> bool:
    text = respelling.strip()
    return text.startswith("[[") and text.endswith("]]")


def user_lexicon_path(env: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if env is None else env
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ebook2audio" / "lexicon.toml"


def _read(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read lexicon {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"lexicon {path} is not valid TOML: {exc}") from exc
    unknown = set(data) - {"exact", "any_case"}
    if unknown:
        raise ConfigError(f"lexicon {path}: unknown table {sorted(unknown)[0]!r} (use [exact] and [any_case])")
    tables: list[dict[str, str]] = []
    for name in ("exact", "any_case"):
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"lexicon {path}: {name} must be a table of \"word\" = \"respelling\"")
        for word, respelling in table.items():
            if not isinstance(respelling, str) or not respelling.strip():
                raise ConfigError(f"lexicon {path}: the respelling of {word!r} must be a non-empty string")
            if not word.strip() or word != word.strip():
                raise ConfigError(f"lexicon {path}: {word!r} is not a word")
        tables.append(dict(table))
    return tables[0], tables[1]


def load_lexicon(paths: Sequence[Path]) -> Lexicon:
    """The lexicon of the files ``paths`` (later files override earlier ones, key by key)."""
    exact: dict[str, str] = {}
    any_case: dict[str, str] = {}
    for path in paths:
        e, a = _read(path)
        exact.update(e)
        for word, respelling in a.items():
            for old in [k for k in any_case if k.casefold() == word.casefold()]:
                del any_case[old]
            any_case[word] = respelling
    return Lexicon(exact=tuple(sorted(exact.items())), any_case=tuple(sorted(any_case.items())))
