"""Markdown books (.md): rendered with the ``markdown`` package, then read like an HTML page.

Chapters start at headings (``#``/``##`` or setext underlines): the level that repeats, so a single
``# Book Title`` above ``## Chapter`` headings is the title, not a chapter. Inline markup is stripped
(emphasis, links keep their text, images are not read). Footnotes are not read, like notes in every
other format. Code blocks ARE read, as plain text: in books they mostly hold verse, letters or
inscriptions that were indented by four spaces, and nothing may be dropped silently.

Metadata comes from a YAML front matter block (``title``, ``author``/``authors``, ``lang``/``language``,
``date``, ``description``, ``publisher``, ``subject``/``tags``/``keywords``, ``identifier``/``isbn``) or a
Pandoc title block (``% Title`` / ``% Author`` / ``% Date``); without them the title is a lone top heading.
The front matter is read by a small parser for flat ``key: value`` pairs and lists (no YAML library).

Public API:
    read_markdown(path) -> Book
    split_front_matter(text) -> (fields, body)
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from ..errors import BookError, UnsupportedFormatError
from ..model import Book, Metadata
from .common import clean_text, decode_bytes, has_words, language_code
from .html import _Block, _chapters
from .xhtml import Block, blocks_from_element

__all__ = ["read_markdown", "split_front_matter"]

log = logging.getLogger(__name__)

MAX_MARKDOWN_BYTES = 32 * 1024 * 1024
_EXTENSIONS = ("extra", "sane_lists")
_FRONT_KEY = re.compile(r"^(?P<key>[A-Za-z][\w-]*)\s*:\s*(?P<value>.*)$")
_LIST_ITEM = re.compile(r"^\s*-\s+(?P<value>.*)$")
_NESTED_NAME = re.compile(r"^\s+(?:-\s+)?name\s*:\s*(?P<value>.*)$")


def read_markdown(path: Path) -> Book:
    """Read a Markdown book into chapters at its repeating heading level."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_MARKDOWN_BYTES:
            raise BookError(f"{path.name} is too large for a Markdown book ({size // (1024 * 1024)} MB)")
        data = path.read_bytes()
    except OSError as exc:
        raise BookError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    try:
        import markdown  # noqa: F401  (used by _markdown_blocks)
    except ImportError as exc:
        raise UnsupportedFormatError(
            f"{path.name}: reading Markdown needs the markdown package (reinstall ebook2audio: pip install .)"
        ) from exc
    text, _encoding = decode_bytes(data)
    fields, body = split_front_matter(text)
    blocks = _markdown_blocks(body)
    metadata = _metadata(fields, blocks)
    warnings: list[str] = []
    chapters = _chapters(blocks, metadata.title, warnings)
    return Book(metadata=metadata, chapters=tuple(chapters), source_format="md", warnings=tuple(warnings))


def split_front_matter(text: str) -> tuple[dict[str, list[str]], str]:
    """YAML front matter (``---`` ... ``---``/``...``) or a Pandoc ``%`` title block, and the rest."""
    text = text.lstrip("\ufeff")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, min(len(lines), 500)) if lines[i].strip() in ("---", "...")), None)
        if end is not None:
            return _parse_fields(lines[1:end]), "\n".join(lines[end + 1 :])
    if lines and lines[0].startswith("% "):
        names = ("title", "author", "date")
        fields: dict[str, list[str]] = {}
        i = 0
        while i < len(lines) and i < 3 and lines[i].startswith("%"):
            value = lines[i][1:].strip()
            if value:
                fields[names[i]] = [v.strip() for v in value.split(";")] if names[i] == "author" else [value]
            i += 1
        return fields, "\n".join(lines[i:])
    return {}, text


def _parse_fields(lines: list[str]) -> dict[str, list[str]]:
    """Flat ``key: value`` pairs; a value may be a ``[a, b]`` list or a block of ``- item`` lines
    (items may be ``name: X`` mappings)."""
    fields: dict[str, list[str]] = {}
    key = ""
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _FRONT_KEY.match(line)
        if m and not line[0].isspace():
            key = m.group("key").casefold()
            value = m.group("value").strip()
            if value.startswith("[") and value.endswith("]"):
                fields[key] = [_scalar(v) for v in _split_inline_list(value[1:-1])]
            elif value and value not in ("|", ">", "|-", ">-"):
                fields[key] = [_scalar(value)]
            else:
                fields[key] = []
            continue
        if not key:
            continue
        item = _LIST_ITEM.match(line)
        nested = _NESTED_NAME.match(line)
        if nested:
            fields[key].append(_scalar(nested.group("value")))
        elif item:
            value = item.group("value")
            inner = _FRONT_KEY.match(value)
            if inner and inner.group("key").casefold() in ("name", "text", "value"):
                value = inner.group("value")
            elif inner:
                continue  # "- role: editor": not a name
            fields[key].append(_scalar(value))
        elif line[0].isspace() and fields.get(key) is not None:
            # a folded/literal block scalar or a continued value
            if fields[key]:
                fields[key][-1] = f"{fields[key][-1]} {line.strip()}"
            else:
                fields[key].append(line.strip())
    return {k: [v for v in vs if v] for k, vs in fields.items() if any(vs)}


def _split_inline_list(text: str) -> list[str]:
    items, current, quote = [], "", ""
    for ch in text:
        if quote:
            current += ch
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            current += ch
        elif ch == ",":
            items.append(current)
            current = ""
        else:
            current += ch
    items.append(current)
    return [i.strip() for i in items if i.strip()]


def _scalar(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    elif " #" in value:
        value = value.split(" #", 1)[0]  # a YAML comment after the value
    return clean_text(value)


def _markdown_blocks(body: str) -> list[_Block]:
    import markdown
    from lxml import html as lxml_html

    rendered = markdown.markdown(body, extensions=list(_EXTENSIONS), output_format="html")
    if not rendered.strip():
        return []
    root = lxml_html.fragment_fromstring(rendered, create_parent="div")
    _drop_footnotes(root)
    blocks: list[_Block] = []
    for item in blocks_from_element(root, skip_types=()):
        if isinstance(item, Block) and has_words(item.text):
            blocks.append(_Block(item.heading, [item.text]))
    return blocks


def _drop_footnotes(root: Any) -> None:
    """The footnotes section that the "footnotes" extension appends (markers are skipped by xhtml)."""
    for el in root.xpath('//div[contains(concat(" ", normalize-space(@class), " "), " footnote ")]'):
        el.getparent().remove(el)


def _metadata(fields: dict[str, list[str]], blocks: list[_Block]) -> Metadata:
    def first(*keys: str) -> str:
        for key in keys:
            if fields.get(key):
                return fields[key][0]
        return ""

    def every(*keys: str) -> list[str]:
        for key in keys:
            if fields.get(key):
                return fields[key]
        return []

    title = first("title")
    subtitle = first("subtitle")
    if title and subtitle and subtitle.casefold() not in title.casefold():
        title = f"{title}: {subtitle}"
    if not title:
        top = [b for b in blocks if b.level == 1]
        if len(top) == 1 and blocks.index(top[0]) == 0:
            title = top[0].text  # "# The Book" above "## Chapter" headings
    authors: list[str] = []
    for value in every("author", "authors", "creator", "creators"):
        authors.extend(a for a in (clean_text(x) for x in re.split(r";|\s+and\s+|&", value)) if a)
    date = first("date", "published", "year")
    return Metadata(
        title=title,
        authors=tuple(dict.fromkeys(authors)),
        language=language_code(first("lang", "language")),
        publisher=first("publisher"),
        date=str(date),
        description=first("description", "abstract", "summary"),
        identifiers=tuple(every("identifier", "isbn")),
        subjects=tuple(every("subject", "subjects", "tags", "keywords")),
    )
