"""Turn an (X)HTML element tree into paragraphs of plain text, the way a narrator would read it.

Works on trees from lxml's XML parser (XHTML namespace, ``epub:type`` namespaced) and from lxml's HTML
parser (no namespace, a literal ``epub:type`` attribute). What is not read: scripts, styles, the head,
images, ruby readings (``<rt>``/``<rp>``: the base text is read once), footnote/endnote markers and the
notes themselves (EPUB ``noteref``/``footnote``..., DPUB-ARIA roles, PG-style ``[1]`` links), page-break
markers, hidden elements, front/back-matter sections such as the title page or the copyright page,
and Project Gutenberg's header/footer boxes. Block elements end paragraphs; a table row is one
paragraph with its cells separated by commas.

Public API:
    paragraphs_from_element(el) -> list[str]
    blocks_from_element(el, anchors=()) -> list[Block | Anchor]   (headings marked; split points found)
    inline_text(el) -> str                                          (one line: titles, TOC labels)
    normalize_space(text) -> str
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FRONT_BACK_MATTER_TYPES",
    "Anchor",
    "Block",
    "blocks_from_element",
    "epub_types",
    "inline_text",
    "normalize_space",
    "paragraphs_from_element",
]

EPUB_TYPE_ATTRS = ("{http://www.idpf.org/2007/ops}type", "epub:type")

# Elements whose content is never read.
SKIP_TAGS = frozenset(
    {
        "head", "title", "script", "style", "meta", "link", "noscript", "template",
        "img", "image", "svg", "math", "picture", "audio", "video", "source", "track", "object", "embed",
        "iframe", "canvas", "map", "area", "button", "input", "select", "textarea", "option",
        "rt", "rp", "rtc",
    }
)  # fmt: skip

# Elements that end the current paragraph (before and after them).
BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
        "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2",
        "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "html", "legend", "li", "main", "nav", "ol",
        "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip

HEADING_LEVELS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}

# epub:type / DPUB-ARIA role values of notes and markers: never read inline.
NOTE_TYPES = frozenset(
    {
        "noteref", "footnote", "footnotes", "endnote", "endnotes", "rearnote", "rearnotes", "note",
        "annotation", "pagebreak", "page-list",
        "doc-noteref", "doc-footnote", "doc-endnote", "doc-endnotes", "doc-pagebreak", "doc-pagelist",
        "doc-backlink",
    }
)  # fmt: skip

# epub:type / role values of front/back matter that a narrator skips (cover, title page, imprint,
# copyright, colophon, tables of contents and other lists, index).
FRONT_BACK_MATTER_TYPES = frozenset(
    {
        "cover", "titlepage", "halftitlepage", "seriespage", "copyright-page", "colophon", "imprint",
        "imprimatur", "toc", "toc-brief", "landmarks", "loa", "loi", "lot", "lov", "index",
        "doc-cover", "doc-toc", "doc-colophon", "doc-index", "doc-pagelist",
    }
)  # fmt: skip

# Class names of boilerplate boxes and page numbers (Project Gutenberg and common converters).
SKIP_CLASSES = frozenset(
    {"pgheader", "pgfooter", "pg-boilerplate", "pagenum", "pageno", "x-ebookmaker-pageno"}
)
SKIP_IDS = frozenset({"pg-header", "pg-footer", "pg-machine-header"})

# Text of a link that is a note marker: "1", "[1]", "[C5]", "(12)", "*", "†".
_MARKER_RE = re.compile(r"^(?:\[[^\]\s]{1,8}\]|\(\d{1,4}\)|\d{1,4}[a-z]?|[*†‡§¶#]{1,3}|[a-z])$")
_WS_RE = re.compile(r"\s+")
# ZWNJ/ZWJ kept (Persian, Indic, emoji); DEL and C1 controls (legal in XML, never text) dropped.
_INVISIBLE_RE = re.compile("[\u00ad\u200b\u2060\ufeff\x7f-\x9f]")
_CJK = "\u2e80-\u2fff\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_GAP_RE = re.compile(f"(?<=[{_CJK}]) (?=[{_CJK}])")
_SENTENCE_END = (".", "!", "?", ";", ":", "…", "。", "！", "？", "»", '"', "”", "’", ")")


@dataclass(frozen=True)
class Block:
    """One paragraph of plain text. ``heading`` is 1-6 for h1-h6, 0 for any other block."""

    text: str
    heading: int = 0


@dataclass(frozen=True)
class Anchor:
    """A split point: the element with this id (one of the requested anchors) starts here."""

    id: str


def normalize_space(text: str) -> str:
    """Collapse runs of whitespace to one space, drop soft hyphens and zero-width characters."""
    text = _INVISIBLE_RE.sub("", text)
    text = _WS_RE.sub(" ", text).strip()
    if " " in text:
        text = _CJK_GAP_RE.sub("", text)
    return text


def epub_types(el: Any) -> frozenset[str]:
    """The element's ``epub:type`` tokens plus its ``role`` tokens, lower-cased, prefixes dropped."""
    values: list[str] = []
    for attr in EPUB_TYPE_ATTRS:
        v = el.get(attr)
        if v:
            values.extend(v.split())
    role = el.get("role")
    if role:
        values.extend(role.split())
    return frozenset(v.lower().rpartition(":")[2] for v in values)


def _local(tag: Any) -> str:
    if not isinstance(tag, str):
        return ""  # comment, processing instruction, entity
    return tag.rpartition("}")[2].lower()


def _is_note_marker(el: Any, tag: str) -> bool:
    """A link (or a superscript holding a link) that only points at a note: not read inline."""
    if tag == "a":
        href = el.get("href") or ""
        if "#" not in href:
            return False
        text = "".join(el.itertext()).strip()
        return bool(text) and _MARKER_RE.match(text) is not None
    if tag == "sup":
        links = [c for c in el.iter() if _local(c.tag) == "a" and c.get("href")]
        if not links:
            return False
        text = "".join(el.itertext()).strip()
        return len(text) <= 8
    return False


def _hidden(el: Any) -> bool:
    if el.get("hidden") is not None or el.get("aria-hidden") == "true":
        return True
    style = el.get("style")
    return bool(style) and "display:none" in style.replace(" ", "").lower()


def _skipped(el: Any, tag: str, skip_types: frozenset[str]) -> bool:
    if tag in SKIP_TAGS or _hidden(el):
        return True
    types = epub_types(el)
    if types and (types & NOTE_TYPES or types & skip_types):
        return True
    cls = el.get("class")
    if cls and not SKIP_CLASSES.isdisjoint(cls.lower().split()):
        return True
    if el.get("id") in SKIP_IDS:
        return True
    return _is_note_marker(el, tag)


class _Walker:
    """Depth-first walk that accumulates inline text and emits Blocks at block boundaries."""

    def __init__(self, anchors: Collection[str], skip_types: frozenset[str]) -> None:
        self.anchors = anchors
        self.skip_types = skip_types
        self.out: list[Block | Anchor] = []
        self.buf: list[str] = []
        self.heading = 0
        self.brs = 0  # consecutive <br> since the last text

    # -- output -------------------------------------------------------------------------------------
    def flush(self) -> None:
        text = normalize_space("".join(self.buf))
        self.buf.clear()
        self.brs = 0
        if text:
            self.out.append(Block(text, self.heading))

    def text(self, s: str | None) -> None:
        if s:
            self.buf.append(s)
            if not s.isspace():
                self.brs = 0

    def anchor_ids(self, el: Any) -> list[str]:
        found = []
        i = el.get("id")
        if i and i in self.anchors:
            found.append(i)
        n = el.get("name")
        if n and n != i and n in self.anchors:
            found.append(n)
        return found

    # -- walk ---------------------------------------------------------------------------------------
    def walk(self, el: Any) -> None:
        tag = _local(el.tag)
        if not tag:
            return
        if self.anchors:
            ids = self.anchor_ids(el)
            if ids:
                self.flush()
                self.out.extend(Anchor(i) for i in ids)
        if _skipped(el, tag, self.skip_types):
            if self.anchors:  # split points inside a skipped element still count
                for sub in el.iterdescendants():
                    ids = self.anchor_ids(sub) if isinstance(sub.tag, str) else []
                    if ids:
                        self.flush()
                        self.out.extend(Anchor(i) for i in ids)
            return
        if tag == "br":
            self.brs += 1
            if self.brs >= 2:
                self.flush()
            else:
                self.buf.append(" ")
            return
        if tag == "tr":
            self.flush()
            self.row(el)
            return
        block = tag in BLOCK_TAGS
        if block:
            self.flush()
            level = HEADING_LEVELS.get(tag, 0)
            outer_heading = self.heading
            if level:
                self.heading = level
        self.text(el.text)
        for child in el:
            self.walk(child)
            self.text(child.tail)
        if block:
            self.flush()
            self.heading = outer_heading

    def row(self, tr: Any) -> None:
        cells: list[str] = []
        for cell in tr:
            if _local(cell.tag) not in ("td", "th"):
                continue
            sub = _Walker(self.anchors, self.skip_types)
            sub.walk(cell)
            sub.flush()
            for item in sub.out:
                if isinstance(item, Anchor):
                    self.out.append(item)
            text = " ".join(b.text for b in sub.out if isinstance(b, Block))
            if text:
                cells.append(text)
        line = ""
        for cell in cells:
            if line:
                line += " " if line.endswith((*_SENTENCE_END, ",")) else ", "
            line += cell
        if line:
            self.out.append(Block(line, 0))


def blocks_from_element(
    el: Any,
    anchors: Collection[str] = (),
    *,
    skip_types: Iterable[str] = FRONT_BACK_MATTER_TYPES,
) -> list[Block | Anchor]:
    """Paragraphs (as Blocks) of ``el`` in reading order, with an Anchor where an element whose id is in
    ``anchors`` starts. Elements whose epub:type/role is in ``skip_types`` are not read."""
    w = _Walker(anchors, frozenset(skip_types))
    w.walk(el)
    w.flush()
    return w.out


def paragraphs_from_element(el: Any, *, skip_types: Iterable[str] = FRONT_BACK_MATTER_TYPES) -> list[str]:
    """The plain-text paragraphs of an (X)HTML element (usually ``<body>``), in reading order."""
    return [b.text for b in blocks_from_element(el, skip_types=skip_types) if isinstance(b, Block)]


def inline_text(el: Any) -> str:
    """The element's text on one line (ruby base text, no note markers), e.g. a TOC label or a title.

    The element itself is always read, even when it would be skipped inside a paragraph (a TOC link
    labelled "1" is a label, not a note marker)."""
    w = _Walker((), frozenset())
    w.text(el.text)
    for child in el:
        w.walk(child)
        w.text(child.tail)
    w.flush()
    return normalize_space(" ".join(b.text for b in w.out if isinstance(b, Block)))
