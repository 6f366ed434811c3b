"""HTML books (one page, e.g. Project Gutenberg's): an HTML parser, chapters at the repeating heading level.

BeautifulSoup with Python's ``html.parser`` is used (never an XML parser: named entities such as
``&mdash;`` and sloppy markup must work). bs4 is imported inside ``read_html`` only.
"""

from __future__ import annotations

import codecs
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ..errors import BookError
from ..model import Book, Chapter, Cover, Metadata
from .common import (
    MAX_COVER_BYTES,
    PG_END,
    PG_START,
    clean_text,
    decode_bytes,
    has_words,
    heading_kind,
    image_mime,
    join_title_parts,
    language_code,
    looks_like_prose,
    pg_header_fields,
    pg_title_author,
    word_count,
)
from .safety import HostileInputError, TagBudget

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag

log = logging.getLogger(__name__)

MAX_HTML_BYTES = 64 * 1024 * 1024  # the file, inline (data: URI) images included
MAX_HTML_TEXT_BYTES = 16 * 1024 * 1024  # without them: ~7 s and ~350 MB at worst
_MARKED_SECTION = re.compile(r"<!\[(?!CDATA\[)")
_DATA_URI = re.compile(rb"""(=\s*)(["'])data:[^"']{256,}?\2""", re.IGNORECASE)
# BeautifulSoup needs about 1 KB and 40 µs a tag: 300k tags is ~250 MB and ~12 s (Alice: 1,900 tags).
MAX_HTML_TAGS = 300_000
# Elements nested deeper than this are left out of the tree (their text is kept): the tree walks below
# recurse, and a chain of 100,000 <div>s would otherwise exhaust the stack or take quadratic time.
MAX_HTML_DEPTH = 200
_BR = "\u2028"  # stands for <br> (and a newline inside <pre>) until paragraphs are split
_BLOCK_TAGS = frozenset((
    "p", "div", "section", "article", "aside", "blockquote", "li", "ul", "ol", "dl", "dt", "dd", "pre",
    "table", "thead", "tbody", "tfoot", "tr", "td", "th", "figure", "figcaption", "header", "footer",
    "main", "center", "address", "body", "hr", "caption", "details", "summary",
))  # fmt: skip
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_DROP_TAGS = (
    "script", "style", "noscript", "template", "svg", "math", "object", "iframe", "button", "select",
    "textarea", "img", "nav", "head",
)  # fmt: skip
_PG_BOILERPLATE_IDS = (
    "pg-header",
    "pg-footer",
    "pg-machine-header",
    "pg-start-separator",
    "pg-end-separator",
)
_BOILERPLATE_CLASS = re.compile(r"^(pg-boilerplate|pagenum|page-?number)$", re.IGNORECASE)
_NOTE_MARKER = re.compile(r"^\s*[\[(]?\s*(?:\d{1,4}|[*†‡§¶]+|[ivxlc]{1,6}|[a-z])\s*[\])]?\s*$", re.IGNORECASE)
_CHARSET_META = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([\w.:-]+)""", re.IGNORECASE)
# A link-heavy block is a table of contents when the text outside its links is this short per link.
_TOC_MIN_LINKS = 3
_TOC_CONTAINERS = ("table", "ul", "ol", "dl", "div", "p", "section", "blockquote")
_TOC_MAX_OTHER_WORDS_PER_LINK = 8


@dataclass
class _Block:
    level: int  # 1..6 for a heading, 0 for a paragraph
    lines: list[str]  # pieces split at <br>

    @property
    def text(self) -> str:
        if self.level:
            return join_title_parts(self.lines)
        return clean_text(" ".join(self.lines))


@dataclass
class _State:
    chapters: list[Chapter] = field(default_factory=list)
    front: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    title: str = ""
    paragraphs: list[str] = field(default_factory=list)
    started: bool = False

    def close(self) -> None:
        if self.started and self.paragraphs:
            self.chapters.append(Chapter(title=self.title, paragraphs=tuple(self.paragraphs)))
        self.paragraphs = []

    def start(self, title: str) -> None:
        self.close()
        self.title = join_title_parts([*self.pending, title])
        self.pending = []
        self.started = True

    def add(self, text: str) -> None:
        (self.paragraphs if self.started else self.front).append(text)


def read_html(path: Path) -> Book:
    """Read a single-file HTML book; images and the cover are looked up next to it, never outside."""
    try:
        size = path.stat().st_size
        if size > MAX_HTML_BYTES:
            raise BookError(f"{path.name} is too large for an HTML book ({size // (1024 * 1024)} MB)")
        data = path.read_bytes()
    except OSError as exc:
        raise BookError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    data = _DATA_URI.sub(rb"\1\2\2", data)  # inline images are never read: drop their bytes first
    if len(data) > MAX_HTML_TEXT_BYTES:
        raise HostileInputError(
            f"{path.name} is too large for an HTML book ({len(data) // (1024 * 1024)} MB of markup)"
        )
    text = decode_html(data)
    TagBudget(path.name, MAX_HTML_TAGS).spend(text)
    soup = parse_html(text, path.name)
    warnings: list[str] = []
    pg_fields = _gutenberg_header_fields(soup)
    metadata = _metadata(soup, pg_fields)
    cover = _cover(soup, path, warnings)
    _strip(soup)
    blocks = _cut_gutenberg(_blocks(soup.body or soup))
    chapters = _chapters(blocks, metadata.title, warnings)
    return Book(
        metadata=metadata,
        chapters=tuple(chapters),
        cover=cover,
        source_format="html",
        warnings=tuple(warnings),
    )


def parse_html(text: str, name: str = "") -> BeautifulSoup:
    """BeautifulSoup with ``html.parser``; tags nested deeper than MAX_HTML_DEPTH are dropped, text kept."""
    from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning

    class _BoundedSoup(BeautifulSoup):
        def reset(self) -> None:
            super().reset()
            self.skipped: dict[str, int] = {}  # name -> start tags dropped and not yet closed

        def handle_starttag(self, name: str, *args: Any, **kwargs: Any) -> Any:
            if len(self.tagStack) > MAX_HTML_DEPTH and name not in self.builder.empty_element_tags:
                self.skipped[name] = self.skipped.get(name, 0) + 1
                if name in _BLOCK_TAGS or name in _HEADINGS:
                    self.handle_data(" ")
                return None
            return super().handle_starttag(name, *args, **kwargs)

        def handle_endtag(self, name: str, nsprefix: str | None = None) -> None:
            if self.skipped.get(name):
                self.skipped[name] -= 1
                if name in _BLOCK_TAGS or name in _HEADINGS:
                    self.handle_data(" ")
                return
            super().handle_endtag(name, nsprefix)

    from bs4.exceptions import ParserRejectedMarkup

    with warnings.catch_warnings():  # XHTML read as HTML on purpose; a tiny page is no "locator"
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        try:
            return _BoundedSoup(text, "html.parser")
        except ParserRejectedMarkup:
            pass  # html.parser gives up on a malformed "<![" marked section: make it text, try again
        try:
            return _BoundedSoup(_MARKED_SECTION.sub("&lt;![", text), "html.parser")
        except ParserRejectedMarkup as exc:
            raise BookError(f"{name or 'the page'}: the HTML cannot be parsed ({exc})") from exc


def _decomposed(tag: Any) -> bool:
    """``tag.decomposed`` without its cost: on a live Tag, bs4 looks the attribute up as a child tag
    named "_decomposed", a search of the whole subtree (quadratic over a page)."""
    return bool(getattr(tag, "__dict__", {}).get("_decomposed", False))


def decode_html(data: bytes) -> str:
    """Decode with the declared charset (``<meta charset>``, XML declaration), else detect it."""
    head = data[:4096]
    match = _XML_ENCODING.search(head) or _CHARSET_META.search(head)
    if match:
        name = match.group(1).decode("ascii", errors="ignore").lower()
        if name in ("iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii"):
            name = "cp1252"  # what browsers do (WHATWG encoding standard)
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            pass
        else:
            if codec == "utf-8" and data.startswith(codecs.BOM_UTF8):
                codec = "utf-8-sig"
            return data.decode(codec, errors="replace")
    return decode_bytes(data)[0]


# --- metadata and cover ---------------------------------------------------------------------------


def _meta(soup: BeautifulSoup, *names: str) -> str:
    wanted = {n.lower() for n in names}
    for tag in soup.find_all("meta"):
        name = str(tag.get("name") or tag.get("property") or "").lower()
        if name in wanted:
            value = clean_text(str(tag.get("content") or ""))
            if value:
                return value
    return ""


def _gutenberg_header_fields(soup: BeautifulSoup) -> dict[str, str]:
    """Title/Author/Language from a Gutenberg header (``id="pg-header"`` or the text before START)."""
    header = soup.find(id="pg-header")
    if header is not None:
        return pg_header_fields(line for block in _blocks(header) for line in block.lines)
    body = soup.body or soup
    if "START OF" not in body.get_text():
        return {}
    lines = [line for block in _blocks(body) for line in block.lines]
    for i, line in enumerate(lines):
        if PG_START.match(line):
            return pg_header_fields(lines[:i])
    return {}


def _metadata(soup: BeautifulSoup, pg: dict[str, str]) -> Metadata:
    title_tag = soup.find("title")
    page_title = clean_text(title_tag.get_text()) if title_tag else ""
    page_title = re.sub(r"\s*\|\s*Project Gutenberg\s*$", "", page_title, flags=re.IGNORECASE)
    banner_title, banner_author = pg_title_author(page_title)
    h1 = soup.find("h1")
    title = (
        _meta(soup, "dc.title", "dcterms.title", "og:title")
        or pg.get("title", "")
        or banner_title
        or page_title
        or (clean_text(h1.get_text(" ")) if h1 else "")
    )
    author = _meta(soup, "author", "dc.creator", "dcterms.creator") or pg.get("author", "") or banner_author
    html = soup.find("html")
    lang = ""
    if html is not None:
        lang = str(html.get("lang") or html.get("xml:lang") or "")
    lang = language_code(
        _meta(soup, "dc.language", "dcterms.language", "language") or lang or pg.get("language", "")
    )
    authors = tuple(a for a in (clean_text(x) for x in re.split(r";|\s+and\s+", author)) if a)
    return Metadata(
        title=title,
        authors=authors,
        language=lang,
        publisher=_meta(soup, "dc.publisher", "dcterms.publisher"),
        date=_meta(soup, "dc.date", "dcterms.date", "dcterms.created"),
        description=_meta(soup, "description", "dc.description", "dcterms.description"),
        subjects=tuple(s for s in (_meta(soup, "dc.subject", "keywords"),) if s),
    )


def _cover(soup: BeautifulSoup, path: Path, warnings: list[str]) -> Cover | None:
    href = ""
    for link in soup.find_all("link"):
        rel = link.get("rel") or []
        rels = [str(r).lower() for r in (rel if isinstance(rel, list) else str(rel).split())]
        if "coverpage" in rels or "cover" in rels:
            href = str(link.get("href") or "")
            break
    if not href:
        for img in soup.find_all("img"):
            src = str(img.get("src") or "")
            if "cover" in src.lower():
                href = src
                break
    if not href:
        return None
    return read_local_image(path, href, warnings)


def read_local_image(book: Path, href: str, warnings: list[str]) -> Cover | None:
    """An image referenced by the page, read only when it lies inside the book's own directory."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path:
        warnings.append(f"cover {href!r} is not a local file: ignored")
        return None
    base = book.resolve().parent
    try:
        target = (base / unquote(parts.path)).resolve()
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(base):
        warnings.append(f"cover {href!r} lies outside the book's directory: ignored")
        return None
    try:
        if not target.is_file():
            warnings.append(f"cover {href!r} not found")
            return None
        if target.stat().st_size > MAX_COVER_BYTES:
            warnings.append(f"cover {href!r} is too large: ignored")
            return None
        data = target.read_bytes()
    except OSError as exc:
        warnings.append(f"cover {href!r} unreadable: {exc.strerror or exc}")
        return None
    mime = image_mime(data)
    if mime is None:
        warnings.append(f"cover {href!r} is neither JPEG nor PNG: ignored")
        return None
    return Cover(data=data, mime=mime)


# --- cleaning -------------------------------------------------------------------------------------


def _strip(soup: BeautifulSoup) -> None:
    """Remove what is never read aloud: code, images, page numbers, note markers, boilerplate, TOCs."""
    for tag in soup.find_all(True):  # one pass over the tree (each find_all is a walk of all of it)
        if not _decomposed(tag) and _never_read(tag):
            tag.decompose()
    for link in soup.find_all("a"):
        if not _decomposed(link) and _is_note_marker(link):
            parent = link.parent
            link.decompose()
            if parent is not None and parent.name == "sup" and not parent.get_text(strip=True):
                parent.decompose()
    _strip_tables_of_contents(soup)


def _never_read(tag: Tag) -> bool:
    """Code, media, navigation, Project Gutenberg boilerplate, page numbers and hidden elements."""
    if tag.name in _DROP_TAGS or tag.get("id") in _PG_BOILERPLATE_IDS:
        return True
    if any(_BOILERPLATE_CLASS.match(c) for c in _attr(tag, "class").split()):
        return True
    return tag.has_attr("hidden") or str(tag.get("aria-hidden", "")).lower() == "true"


def _is_note_marker(link: Tag) -> bool:
    kind = " ".join(_attr(link, k) for k in ("epub:type", "role", "class", "type")).lower()
    if "noteref" in kind or "footnote" in kind or "note" in kind.split():
        return True
    href = str(link.get("href") or "")
    return "#" in href and bool(_NOTE_MARKER.match(link.get_text()))


def _attr(tag: Tag, name: str) -> str:
    value = tag.get(name)
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value or "")


def _strip_tables_of_contents(soup: BeautifulSoup) -> None:
    """Remove blocks made of internal links with little else (a table of contents), outermost first."""
    links: dict[int, list[Tag]] = {}
    for link in soup.find_all("a", href=True):
        parts = urlsplit(str(link.get("href")))
        if parts.scheme or parts.netloc:
            continue
        for parent in link.parents:
            if parent.name in _TOC_CONTAINERS:
                links.setdefault(id(parent), []).append(link)
    for tag in soup.find_all(_TOC_CONTAINERS):
        found = links.get(id(tag), [])
        if _decomposed(tag) or len(found) < _TOC_MIN_LINKS:
            continue
        link_words = sum(len(a.get_text(" ").split()) for a in found)
        other = len(tag.get_text(" ").split()) - link_words
        if other <= _TOC_MAX_OTHER_WORDS_PER_LINK * len(found):
            tag.decompose()


# --- blocks ---------------------------------------------------------------------------------------


def _blocks(root: Any) -> list[_Block]:
    """The page as a flat list of headings and paragraphs, in reading order."""
    from bs4 import Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag

    out: list[_Block] = []
    buffer: list[str] = []

    def flush() -> None:
        if not buffer:
            return
        raw = "".join(buffer)
        buffer.clear()
        # Two or more <br> in a row separate paragraphs (stanzas); one <br> is a line break.
        for chunk in re.split(rf"{_BR}\s*(?:{_BR}\s*)+", raw):
            lines = [clean_text(piece) for piece in chunk.split(_BR)]
            lines = [line for line in lines if line]
            if lines:
                out.append(_Block(0, lines))

    def heading(tag: Tag, level: int) -> None:
        pieces: list[str] = []
        collect(tag, pieces, pre=False)
        lines = [clean_text(p) for p in "".join(pieces).split(_BR)]
        lines = [line for line in lines if line]
        if lines:
            out.append(_Block(level, lines))

    def collect(node: Any, into: list[str], pre: bool) -> None:
        for child in node.children:
            if isinstance(child, (Comment, Declaration, Doctype, ProcessingInstruction)):
                continue
            if isinstance(child, NavigableString):
                into.append(str(child).replace("\n", _BR) if pre else str(child))
            elif isinstance(child, Tag):
                if child.name == "br":
                    into.append(_BR)
                else:
                    collect(child, into, pre or child.name == "pre")

    def walk(node: Any, pre: bool) -> None:
        for child in node.children:
            if isinstance(child, (Comment, Declaration, Doctype, ProcessingInstruction)):
                continue
            if isinstance(child, NavigableString):
                buffer.append(str(child).replace("\n", _BR) if pre else str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name
            if name in _HEADINGS:
                flush()
                heading(child, _HEADINGS[name])
            elif name == "br":
                buffer.append(_BR)
            elif name in _BLOCK_TAGS:
                flush()
                walk(child, pre or name == "pre")
                flush()
            else:
                walk(child, pre)

    walk(root, pre=False)
    flush()
    return out


def _cut_gutenberg(blocks: list[_Block]) -> list[_Block]:
    """Drop a Project Gutenberg header and licence kept as text (``*** START OF`` / ``*** END OF``)."""
    start = next((i for i, b in enumerate(blocks) if any(PG_START.match(line) for line in b.lines)), None)
    if start is not None:
        blocks = blocks[start + 1 :]
    end = next((i for i, b in enumerate(blocks) if any(PG_END.match(line) for line in b.lines)), None)
    return blocks[:end] if end is not None else blocks


# --- chapters -------------------------------------------------------------------------------------


def _chapter_level(blocks: list[_Block], carries: list[bool]) -> int | None:
    """The heading level that repeats and carries the chapters (h2 in Gutenberg's Alice).

    The level with the most headings that look like chapters ("CHAPTER I.", "II", "Chapitre 3") wins;
    without such headings, the highest level with at least two headings that have text under them
    (or with one, for a page holding a single chapter).
    """
    numbered: dict[int, int] = {}
    carrying: dict[int, int] = {}
    for block, carry in zip(blocks, carries, strict=True):
        if not block.level:
            continue
        if heading_kind(block.text) in ("chapter", "numeral") and carry:
            numbered[block.level] = numbered.get(block.level, 0) + 1
        if carry:
            carrying[block.level] = carrying.get(block.level, 0) + 1
    if numbered and max(numbered.values()) >= 2:
        return min(numbered, key=lambda level: (-numbered[level], level))
    levels = sorted(level for level, count in carrying.items() if count >= 2) or sorted(carrying)
    return levels[0] if levels else None


def _carries_text(blocks: list[_Block]) -> tuple[list[bool], list[bool]]:
    """For each heading: (text directly after it, text anywhere before the next heading of its level)."""
    direct = [False] * len(blocks)
    scope = [False] * len(blocks)
    for i, block in enumerate(blocks):
        if not block.level:
            continue
        for j in range(i + 1, len(blocks)):
            other = blocks[j]
            if other.level and other.level <= block.level:
                break
            if not other.level and has_words(other.text):
                scope[i] = True
                if all(not b.level for b in blocks[i + 1 : j]):
                    direct[i] = True
                break
    return direct, scope


def _chapters(blocks: list[_Block], book_title: str, warnings: list[str]) -> list[Chapter]:
    if not any(not b.level and has_words(b.text) for b in blocks):
        return []  # headings and nothing under any of them: no text to read
    direct, scope = _carries_text(blocks)
    level = _chapter_level(blocks, scope)
    state = _State()
    for i, block in enumerate(blocks):
        text = block.text
        if not block.level:
            if has_words(text):
                state.add(text)
            continue
        if level is None or block.level > level:
            if has_words(text):
                state.add(text)  # a sub-heading inside a chapter is read as a line of text
            continue
        if block.level == level:
            if scope[i]:
                state.start(text)
            # else: "Contents", "by Lewis Carroll", ...: a chapter-level heading with nothing under it
            continue
        # A heading above the chapter level: a part title (kept for the next chapter's title) or the
        # book's title (dropped); read as a chapter of its own when text follows it directly.
        if direct[i]:
            state.start(text)
        elif heading_kind(text) in ("part", "chapter", "numeral"):
            state.close()
            state.pending.append(text)
    state.close()
    chapters = state.chapters
    if not chapters:
        return [Chapter(title=book_title, paragraphs=tuple(state.front))] if state.front else []
    if looks_like_prose(state.front):
        chapters.insert(0, Chapter(title=book_title, paragraphs=tuple(state.front)))
    elif state.front:
        warnings.append(
            f"skipped {word_count(state.front)} words of title page before the first chapter: "
            + clean_text(" / ".join(state.front))[:80]
        )
    return chapters
