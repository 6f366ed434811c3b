"""Plain-text books: encoding detection, Project Gutenberg boilerplate, paragraphs and chapter headings."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import BookError
from ..model import Book, Chapter, Metadata
from .common import (
    PG_END,
    PG_START,
    clean_text,
    decode_bytes,
    has_words,
    heading_kind,
    join_title_parts,
    language_code,
    looks_like_prose,
    pg_header_fields,
    pg_title_author,
    unspace_letters,
    word_count,
)
from .safety import HostileInputError

log = logging.getLogger(__name__)

# The largest real books are 5-10 MB of text (the Bible: 4.5 MB); a decoded text may take 4 bytes a
# character and is copied a few times while it is split, so these bound memory to a few hundred MB.
MAX_TEXT_BYTES = 16 * 1024 * 1024
MAX_TEXT_LINES = 500_000  # Shakespeare's complete works: 170k lines
# Front matter (before the first heading) is read as a chapter only when it holds real prose:
# a paragraph at least this long. Title pages, imprints and credits are shorter.
PROSE_PARAGRAPH_WORDS = 20
_TITLE_LINE_MAX_CHARS = 80
_TITLE_LINE_MAX_WORDS = 12
_TITLE_LINE_MAX_WORDS_WITH_STOP = 4
_CONTENTS_MIN_ENTRIES = 3
_CREDIT_LINE = re.compile(r"^\s*(?:Produced by|E-?text prepared by|Transcribed by)\b", re.IGNORECASE)
_LINE_BREAK = re.compile(r"\r\n|[\r\n\f]")
_WORDS = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


@dataclass(frozen=True)
class _Block:
    """Consecutive non-blank lines."""

    lines: tuple[str, ...]

    @property
    def single(self) -> str | None:
        return self.lines[0] if len(self.lines) == 1 else None


def read_text(path: Path) -> Book:
    """Read a plain-text book (any common encoding, any line ending)."""
    try:
        size = path.stat().st_size
        if size > MAX_TEXT_BYTES:
            raise BookError(f"{path.name} is too large for a text book ({size // (1024 * 1024)} MB)")
        data = path.read_bytes()
    except OSError as exc:
        raise BookError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    text, encoding = decode_bytes(data)
    del data
    log.debug("%s decoded as %s", path.name, encoding)
    try:
        book = book_from_text(text)
    except HostileInputError as exc:
        raise HostileInputError(f"{path.name}: {exc}") from exc
    warnings = list(book.warnings)
    if "\ufffd" in text:
        warnings.append(f"{path.name}: {text.count(chr(0xFFFD))} undecodable bytes replaced ({encoding})")
    return Book(
        metadata=book.metadata,
        chapters=book.chapters,
        cover=None,
        source_format="txt",
        warnings=tuple(warnings),
    )


def book_from_text(text: str) -> Book:
    """Split decoded text into metadata and chapters (pure; ``read_text`` does the file and decoding)."""
    breaks = max(text.count("\n"), text.count("\r"))
    if breaks > MAX_TEXT_LINES:
        raise HostileInputError(f"the text has too many lines ({breaks}; limit {MAX_TEXT_LINES})")
    lines = _LINE_BREAK.split(text)  # one pass: no copies of a text that may be tens of MB
    warnings: list[str] = []
    header, body, footer = _split_gutenberg(lines)
    fields = pg_header_fields(header)
    if not fields:
        body, fields = _leading_fields(body)
    title, author = fields.get("title", ""), fields.get("author", "")
    for line in [*header[:40], *footer[:5]]:
        if title and author:
            break
        t, a = pg_title_author(line)
        title, author = title or t, author or a

    blocks = _blocks(body)
    while blocks and _CREDIT_LINE.match(blocks[0].lines[0]):
        blocks.pop(0)  # "Produced by ..." credits right after the Gutenberg header
    if not title:
        title = _title_from_first_block(blocks)
        if title:
            blocks.pop(0)  # the title line is spoken as the book's title, not as text

    front, chapters = _chapters(blocks, warnings)
    if chapters:
        if looks_like_prose(front, PROSE_PARAGRAPH_WORDS):
            chapters.insert(0, Chapter(title=title, paragraphs=tuple(front)))
        elif front:
            warnings.append(
                f"skipped {word_count(front)} words of title page before the first chapter: "
                + clean_text(" / ".join(front))[:80]
            )
    elif front:
        chapters = [Chapter(title=title, paragraphs=tuple(front))]

    authors = tuple(a for a in (clean_text(x) for x in re.split(r";|\s+and\s+", author)) if a)
    metadata = Metadata(
        title=title,
        authors=authors,
        language=language_code(fields.get("language", "")),
    )
    return Book(metadata=metadata, chapters=tuple(chapters), source_format="txt", warnings=tuple(warnings))


def _leading_fields(body: list[str]) -> tuple[list[str], dict[str, str]]:
    """A plain-text book may open with a block of ``Title:``/``Author:``/``Language:`` lines."""
    start = 0
    while start < len(body) and not body[start].strip():
        start += 1
    end = start
    while end < len(body) and body[end].strip():
        end += 1
    fields = pg_header_fields(body[start:end])
    if "title" in fields and all(":" in line for line in body[start:end] if not line.startswith((" ", "\t"))):
        return body[end:], fields
    return body, {}


def _split_gutenberg(lines: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(header, body, footer) around the Project Gutenberg START/END markers (either may be missing)."""
    start = next((i for i, line in enumerate(lines) if PG_START.match(line)), None)
    begin = 0
    if start is not None:
        begin = start + 1
        # A marker line may wrap: "*** START OF THE PROJECT GUTENBERG EBOOK" / "DIE VERWANDLUNG ***"
        if (
            not lines[start].rstrip().endswith("***")
            and begin < len(lines)
            and lines[begin].rstrip().endswith("***")
        ):
            begin += 1
    end = next((i for i in range(begin, len(lines)) if PG_END.match(lines[i])), len(lines))
    header = lines[:start] if start is not None else []
    return header, lines[begin:end], lines[end:]


def _blocks(lines: list[str]) -> list[_Block]:
    """Group non-blank lines; a text with no blank lines but long lines has one paragraph per line."""
    cleaned = [unspace_letters(line.rstrip()) for line in lines]
    nonblank = [line for line in cleaned if line.strip()]
    blank = len(cleaned) - len(nonblank)
    if nonblank and blank < len(nonblank) * 0.05:
        average = sum(len(line) for line in nonblank) / len(nonblank)
        if average > 150:  # one paragraph per (very long) line
            return [_Block((line,)) for line in nonblank]
    blocks: list[_Block] = []
    current: list[str] = []
    for line in cleaned:
        if line.strip():
            current.append(line)
        elif current:
            blocks.append(_Block(tuple(current)))
            current = []
    if current:
        blocks.append(_Block(tuple(current)))
    return blocks


def _title_from_first_block(blocks: list[_Block]) -> str:
    if not blocks or blocks[0].single is None:
        return ""
    line = clean_text(blocks[0].lines[0])
    if heading_kind(line) or not _is_title_line(line) or line[-1] in ".!?":
        return ""
    if line.isupper():
        return " ".join(word.capitalize() for word in line.split())
    return line


def _is_title_line(line: str) -> bool:
    """A short line that can be a chapter's title: "Down the Rabbit-Hole", "The Pool of Tears"."""
    if len(line) > 8 * _TITLE_LINE_MAX_CHARS:
        return False
    text = clean_text(line)
    if not text or len(text) > _TITLE_LINE_MAX_CHARS or len(text.split()) > _TITLE_LINE_MAX_WORDS:
        return False
    if not has_words(text) or text[-1] in ",;:-–—":
        return False
    if text[-1] == "." and len(text.split()) > _TITLE_LINE_MAX_WORDS_WITH_STOP:
        return False  # a short sentence, not a title
    return text[0].isupper() or text[0].isdigit()


def _heading(block: _Block, following: _Block | None) -> tuple[str, str, bool] | None:
    """(kind, title, consumed the following block) when the block is a stand-alone heading."""
    first = clean_text(block.lines[0])
    kind = heading_kind(first)
    if kind is None:
        return None
    if len(block.lines) == 2:
        second = clean_text(block.lines[1])
        if kind in ("chapter", "part", "numeral") and _is_title_line(second) and not heading_kind(second):
            return kind, join_title_parts([first, second]), False
        return None
    if len(block.lines) > 2:
        return None
    bare = kind == "numeral" or (kind in ("chapter", "part") and _bare_keyword(first))
    if (
        bare
        and following is not None
        and following.single is not None
        and _is_title_line(following.single)
        and not heading_kind(following.single)
    ):
        return kind, join_title_parts([first, following.single]), True
    return kind, first, False


def _starts_heading(block: _Block) -> bool:
    return len(block.lines) <= 2 and heading_kind(block.lines[0]) is not None


def _bare_keyword(text: str) -> bool:
    """ "CHAPTER IV" or "PART ONE" with no title after the number."""
    return len(text.split()) <= 3 and not any(ch in text for ch in ":—–")


def _chapters(blocks: list[_Block], warnings: list[str]) -> tuple[list[str], list[Chapter]]:
    """(front matter paragraphs, chapters). Headings that follow each other merge ("PART ONE. CHAPTER I").

    Tables of contents are skipped: a block whose lines are mostly headings, or a run of "chapters"
    that each hold a single title line (a contents list spaced with blank lines).
    """
    vocabulary = _vocabulary(blocks)
    found: list[tuple[int, str, str, bool]] = []  # (block index, kind, title, consumed next)
    i = 0
    while i < len(blocks):
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        # A title line is only joined when a text block (not another heading) follows it.
        if nxt is not None and (i + 2 >= len(blocks) or _starts_heading(blocks[i + 2])):
            nxt = None
        head = _heading(blocks[i], nxt)
        if head:
            found.append((i, *head))
            i += 2 if head[2] else 1
        else:
            i += 1
    chapter_like = sum(1 for _, kind, _, _ in found if kind == "chapter")
    headings = {
        index: (kind, title, consumed)
        for index, kind, title, consumed in found
        if not (kind == "numeral" and chapter_like >= 2)  # numbered sections inside real chapters
    }

    front: list[str] = []
    chapters: list[Chapter] = []
    pending: list[tuple[str, str]] = []  # (kind, title) of headings not yet followed by text
    paragraphs: list[str] = []
    title = ""
    started = False
    i = 0
    while i < len(blocks):
        if i in headings:
            kind, heading_title, consumed = headings[i]
            if started and paragraphs:
                chapters.append(Chapter(title=title, paragraphs=tuple(paragraphs)))
                paragraphs = []
            pending.append((kind, heading_title))
            i += 2 if consumed else 1
            continue
        block = blocks[i]
        i += 1
        if _is_contents_block(block):
            warnings.append(f"skipped a table of contents ({len(block.lines)} lines)")
            continue
        text = _join_lines(block.lines, vocabulary)
        if not has_words(text):
            continue
        if pending:
            title = _merge_pending(pending)
            pending = []
            started = True
            paragraphs = []
        (paragraphs if started else front).append(text)
    if started and paragraphs:
        chapters.append(Chapter(title=title, paragraphs=tuple(paragraphs)))
    return front, _drop_contents_runs(chapters, warnings)


def _is_contents_block(block: _Block) -> bool:
    if len(block.lines) < _CONTENTS_MIN_ENTRIES:
        return False
    headings = sum(1 for line in block.lines if heading_kind(line))
    return headings >= max(_CONTENTS_MIN_ENTRIES, 0.6 * len(block.lines))


def _drop_contents_runs(chapters: list[Chapter], warnings: list[str]) -> list[Chapter]:
    def entry(chapter: Chapter) -> bool:
        return len(chapter.paragraphs) == 1 and _is_title_line(chapter.paragraphs[0])

    out: list[Chapter] = []
    i = 0
    while i < len(chapters):
        j = i
        while j < len(chapters) and entry(chapters[j]):
            j += 1
        if j - i >= _CONTENTS_MIN_ENTRIES:
            warnings.append(f"skipped a table of contents ({j - i} entries)")
            i = j
        else:
            out.append(chapters[i])
            i += 1
    return out


def _merge_pending(pending: list[tuple[str, str]]) -> str:
    """Titles of consecutive headings; a run that repeats a kind is a table of contents: keep the last."""
    kinds = [kind for kind, _ in pending]
    if len(set(kinds)) < len(kinds):
        return pending[-1][1]
    return join_title_parts(title for _, title in pending)


def _vocabulary(blocks: list[_Block]) -> tuple[frozenset[str], frozenset[str]]:
    """(plain words, hyphenated words) of the whole text, lower-cased: evidence for de-hyphenation."""
    plain: set[str] = set()
    hyphenated: set[str] = set()
    for block in blocks:
        for line in block.lines:
            # Word by word: line.lower() of a long non-ASCII line allocates 12 bytes a character.
            for match in _WORDS.finditer(line):
                word = match.group(0).lower()
                (hyphenated if "-" in word else plain).add(word)
    return frozenset(plain), frozenset(hyphenated)


_LINE_END_HYPHEN = re.compile(r"([^\W\d_]+)-$")
_LINE_START_WORD = re.compile(r"^([^\W\d_]+)")


def _join_lines(lines: tuple[str, ...], vocabulary: tuple[frozenset[str], frozenset[str]]) -> str:
    """Join hard-wrapped lines. "exam-" + "ple" becomes "example" only when the text elsewhere spells
    "example" and never "exam-ple"; otherwise the hyphen is kept ("well-" + "known" -> "well-known")."""
    plain, hyphenated = vocabulary
    out = lines[0].strip()
    for raw in lines[1:]:
        line = raw.strip()
        if not line:
            continue
        head = _LINE_END_HYPHEN.search(out[-64:]) if out.endswith("-") else None
        tail = _LINE_START_WORD.match(line)
        if head and tail and not out.endswith("--") and tail.group(1)[0].islower():
            left, right = head.group(1).lower(), tail.group(1).lower()
            if left + right in plain and f"{left}-{right}" not in hyphenated:
                out = out[:-1] + line
            else:
                out = out + line
        else:
            out = f"{out} {line}"
    return clean_text(out)
