"""OpenDocument text (.odt), read with odfpy.

Chapters start at headings (``text:h``, or a paragraph in a "Heading N" style): the outline level that
repeats, level 1 in a typical book. Paragraphs in the Title/Subtitle styles are metadata, not text.
What is not read: footnotes and endnotes (``text:note``), comments, tables of contents and indexes,
tracked deletions, pictures and other frames (text boxes, captions). Metadata comes from meta.xml; the cover is the first picture before the
first chapter.

The package is checked through :mod:`ebook2audio.ingest.safety` before odfpy opens it.

Public API:
    read_odt(path) -> Book
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BookError, UnsupportedFormatError
from ..model import Book, Cover, Metadata
from .common import MAX_COVER_BYTES, clean_text, has_words, image_mime, language_code
from .docx import check_office_package
from .html import _Block, _chapters
from .safety import SafeZip

__all__ = ["read_odt"]

log = logging.getLogger(__name__)

TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
STYLE = "urn:oasis:names:tc:opendocument:xmlns:style:1.0"
XLINK = "http://www.w3.org/1999/xlink"
META = "urn:oasis:names:tc:opendocument:xmlns:meta:1.0"
DC = "http://purl.org/dc/elements/1.1/"

# Elements whose content is never read.
_SKIP = frozenset(
    {
        (TEXT, "note"), (TEXT, "table-of-content"), (TEXT, "alphabetical-index"),
        (TEXT, "illustration-index"), (TEXT, "table-index"), (TEXT, "object-index"),
        (TEXT, "user-index"), (TEXT, "bibliography"), (TEXT, "tracked-changes"),
        (TEXT, "sequence-decls"), (TEXT, "variable-decls"), (TEXT, "user-field-decls"),
        (OFFICE, "annotation"), (OFFICE, "forms"), (TEXT, "deletion"), (DRAW, "frame"),
        (DRAW, "custom-shape"), (TEXT, "bookmark-ref"),
    }
)  # fmt: skip
_HEADING_STYLE = re.compile(r"^heading(?:_20_|\s*)(\d)$", re.IGNORECASE)
_BYLINE = re.compile(r"^\s*(?:by|von|par|di|por|door|av|af)\s+(?P<who>.+)$", re.IGNORECASE)


@dataclass
class _Walk:
    styles: dict[str, str]  # style name -> parent style name
    blocks: list[_Block] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    subtitles: list[str] = field(default_factory=list)
    cover_href: str = ""
    seen_heading: bool = False


def read_odt(path: Path) -> Book:
    """Read an .odt book: headings give chapters; meta.xml gives the metadata."""
    path = Path(path)
    try:
        from odf.opendocument import load
    except ImportError as exc:
        raise UnsupportedFormatError(
            f"{path.name}: reading ODT needs the odfpy package (reinstall ebook2audio: pip install .)"
        ) from exc
    check_office_package(path)

    try:
        document = load(str(path))
    except Exception as exc:  # odfpy raises zipfile, KeyError and SAX errors on damaged packages
        raise BookError(
            f"{path.name} is not a readable OpenDocument text ({type(exc).__name__}: {exc})"
        ) from exc
    if document.text is None:
        raise BookError(f"{path.name} is an OpenDocument file but not a text document")

    walk = _Walk(styles=_style_parents(document))
    for child in document.text.childNodes:
        _visit(child, walk)
    metadata = _metadata(document, walk)
    warnings: list[str] = []
    chapters = _chapters(walk.blocks, metadata.title, warnings)
    return Book(
        metadata=metadata,
        chapters=tuple(chapters),
        cover=_cover(path, walk.cover_href),
        source_format="odt",
        warnings=tuple(warnings),
    )


def _qname(node: Any) -> tuple[str, str]:
    return getattr(node, "qname", ("", ""))


def _attr(node: Any, ns: str, name: str) -> str:
    attributes = getattr(node, "attributes", None) or {}
    value = attributes.get((ns, name))
    return str(value) if value is not None else ""


def _style_parents(document: Any) -> dict[str, str]:
    parents: dict[str, str] = {}
    for container in (document.automaticstyles, document.styles):
        if container is None:
            continue
        for node in container.childNodes:
            if _qname(node) == (STYLE, "style"):
                name = _attr(node, STYLE, "name")
                if name:
                    parents[name] = _attr(node, STYLE, "parent-style-name")
    return parents


def _style_chain(name: str, styles: dict[str, str]) -> Iterator[str]:
    for _ in range(10):
        if not name:
            return
        yield name
        name = styles.get(name, "")


def _paragraph_role(node: Any, styles: dict[str, str]) -> tuple[str, int]:
    """("title" | "subtitle" | "", heading level) of a text:p from its style and the styles above it."""
    for name in _style_chain(_attr(node, TEXT, "style-name"), styles):
        key = name.replace("_20_", " ").casefold()
        if key == "title":
            return "title", 0
        if key == "subtitle":
            return "subtitle", 0
        m = _HEADING_STYLE.match(name)
        if m:
            return "", min(max(int(m.group(1)), 1), 6)
    return "", 0


def _visit(node: Any, walk: _Walk) -> None:
    qname = _qname(node)
    if qname in _SKIP:
        if qname == (DRAW, "frame") and not walk.cover_href and not walk.seen_heading:
            walk.cover_href = _first_image(node)
        return
    if qname == (TEXT, "h"):
        text = clean_text(_text(node, walk))
        try:
            level = int(_attr(node, TEXT, "outline-level") or 1)
        except ValueError:
            level = 1
        if has_words(text):
            walk.blocks.append(_Block(min(max(level, 1), 6), [text]))
            walk.seen_heading = True
        return
    if qname == (TEXT, "p"):
        text = clean_text(_text(node, walk))
        if not has_words(text):
            return
        role, level = _paragraph_role(node, walk.styles)
        if role == "title":
            walk.titles.append(text)
        elif role == "subtitle":
            walk.subtitles.append(text)
        else:
            walk.blocks.append(_Block(level, [text]))
            walk.seen_heading = walk.seen_heading or bool(level)
        return
    if qname == (TABLE, "table-row"):
        cells = [
            clean_text(_text(cell, walk)) for cell in node.childNodes if _qname(cell) == (TABLE, "table-cell")
        ]
        line = ", ".join(c for c in cells if c)
        if has_words(line):
            walk.blocks.append(_Block(0, [line]))
        return
    for child in getattr(node, "childNodes", ()):
        _visit(child, walk)  # sections, lists, list items, tables, ...


def _text(node: Any, walk: _Walk) -> str:
    """The inline text of a paragraph or heading, with ODF's space/tab/line-break elements."""
    parts: list[str] = []

    def inline(n: Any) -> None:
        if n.nodeType == n.TEXT_NODE:
            parts.append(str(n.data))
            return
        qname = _qname(n)
        if qname in _SKIP:
            if qname == (DRAW, "frame") and not walk.cover_href and not walk.seen_heading:
                walk.cover_href = _first_image(n)
            return
        if qname == (TEXT, "s"):
            try:
                parts.append(" " * max(1, int(_attr(n, TEXT, "c") or 1)))
            except ValueError:
                parts.append(" ")
            return
        if qname in ((TEXT, "tab"), (TEXT, "line-break")):
            parts.append(" ")
            return
        if qname == (TEXT, "soft-page-break"):
            return
        for child in getattr(n, "childNodes", ()):
            inline(child)

    for child in getattr(node, "childNodes", ()):
        inline(child)
    return "".join(parts)


def _first_image(frame: Any) -> str:
    for child in getattr(frame, "childNodes", ()):
        if _qname(child) == (DRAW, "image"):
            href = _attr(child, XLINK, "href")
            if href and "://" not in href:
                return href.removeprefix("./")
    return ""


def _metadata(document: Any, walk: _Walk) -> Metadata:
    fields: dict[tuple[str, str], list[str]] = {}
    meta = document.meta
    for node in getattr(meta, "childNodes", ()) if meta is not None else ():
        value = clean_text("".join(str(getattr(t, "data", "")) for t in getattr(node, "childNodes", ())))
        if value:
            fields.setdefault(_qname(node), []).append(value)

    def first(*keys: tuple[str, str]) -> str:
        for key in keys:
            if fields.get(key):
                return fields[key][0]
        return ""

    title = first((DC, "title")) or " ".join(walk.titles)
    author = first((META, "initial-creator"), (DC, "creator"))
    if not author:
        for line in walk.subtitles:
            m = _BYLINE.match(line)
            if m:
                author = m.group("who")
                break
    authors = tuple(a for a in (clean_text(x) for x in re.split(r";|\s+and\s+|&", author)) if a)
    when = first((META, "creation-date"), (DC, "date"))
    subjects = [*fields.get((DC, "subject"), []), *fields.get((META, "keyword"), [])]
    return Metadata(
        title=clean_text(title),
        authors=authors,
        language=language_code(first((DC, "language"))),
        date=when[:10] if re.match(r"^\d{4}-\d{2}-\d{2}", when) else when,
        description=first((DC, "description")),
        subjects=tuple(dict.fromkeys(subjects)),
    )


def _cover(path: Path, href: str) -> Cover | None:
    if not href:
        return None
    try:
        with SafeZip.open(path) as archive:
            if not archive.has(href):
                return None
            data = archive.read(href)
    except BookError as exc:
        log.debug("%s: no cover (%s)", path.name, exc)
        return None
    mime = image_mime(data)
    if mime is None or len(data) > MAX_COVER_BYTES:
        return None
    return Cover(data=data, mime=mime)
