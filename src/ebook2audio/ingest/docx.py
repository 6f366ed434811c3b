"""Word documents (.docx), read with python-docx.

Chapters start at headings: the heading level that repeats (``Heading 1`` in a typical book), found from
the paragraph style, a style it is based on, or an outline level. Paragraphs styled ``Title`` and
``Subtitle`` are the book's title and byline: metadata, never chapter text. Tables are read row by row.
Metadata comes from the core properties; the cover is the first picture before the first chapter.

The package is checked through :mod:`ebook2audio.ingest.safety` (member sizes, zip bombs, zip slip,
XML entity declarations) before python-docx opens it.

Public API:
    read_docx(path) -> Book
    check_office_package(path) -> None
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..errors import BookError, UnsupportedFormatError
from ..model import Book, Cover, Metadata
from .common import MAX_COVER_BYTES, clean_text, has_words, image_mime, language_code
from .html import _Block, _chapters
from .safety import SafeZip, parse_xml

__all__ = ["check_office_package", "read_docx"]

log = logging.getLogger(__name__)

MAX_DOCX_BYTES = 256 * 1024 * 1024
_XML_SUFFIXES = (".xml", ".rels")
_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
_BYLINE = re.compile(r"^\s*(?:by|von|par|di|por|door|av|af)\s+(?P<who>.+)$", re.IGNORECASE)
_MAX_STYLE_DEPTH = 10
_TOC_STYLE = re.compile(r"^(?:toc \d|toc heading|table of figures)$")
# Core "author" values that name a program or an account, not the book's author.
PLACEHOLDER_AUTHORS = frozenset(
    {
        "python-docx", "administrator", "admin", "windows user", "microsoft office user", "user",
        "owner", "author", "unknown", "utilisateur", "benutzer", "usuario", "pandoc", "calibre",
    }
)  # fmt: skip


def check_office_package(path: Path) -> None:
    """Refuse a hostile zip package (bombs, zip slip, lying sizes) or XML part (entities, DTDs).

    Every member is read once through SafeZip (which never reads past a member's declared size) and
    every XML part is parsed with the safe parser, so that the library that opens the package next only
    ever meets data that passed these checks.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BookError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    if size > MAX_DOCX_BYTES:
        raise BookError(f"{path.name} is too large ({size // (1024 * 1024)} MB)")
    with SafeZip.open(path) as archive:
        for name in archive.names():
            if name.endswith("/"):
                continue
            data = archive.read(name)
            if name.lower().endswith(_XML_SUFFIXES) and data.strip():
                parse_xml(data, f"{path.name}: {name}")


def read_docx(path: Path) -> Book:
    """Read a .docx book: headings give chapters; Title/Subtitle and core properties give metadata."""
    path = Path(path)
    try:
        import docx
        from docx.opc.exceptions import PackageNotFoundError
    except ImportError as exc:
        raise UnsupportedFormatError(
            f"{path.name}: reading DOCX needs the python-docx package (reinstall ebook2audio: pip install .)"
        ) from exc
    check_office_package(path)

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError) as exc:
        raise BookError(f"{path.name} is not a readable Word document ({exc})") from exc

    warnings: list[str] = []
    blocks: list[_Block] = []
    titles: list[str] = []
    subtitles: list[str] = []
    for kind, text, level in _body(document):
        if kind == "title":
            titles.append(text)
        elif kind == "subtitle":
            subtitles.append(text)
        elif has_words(text):
            blocks.append(_Block(level, [text]))
    metadata = _metadata(document, titles, subtitles)
    chapters = _chapters(blocks, metadata.title, warnings)
    return Book(
        metadata=metadata,
        chapters=tuple(chapters),
        cover=_cover(document),
        source_format="docx",
        warnings=tuple(warnings),
    )


def _body(document: Any) -> Iterator[tuple[str, str, int]]:
    """(kind, text, heading level) for each paragraph and table row, in reading order."""
    from docx.table import Table

    for item in document.iter_inner_content():
        if isinstance(item, Table):
            for row in _table_rows(item):
                yield "text", row, 0
            continue
        text = clean_text(item.text)
        if not text:
            continue
        role = _style_role(item)
        if role == "toc":
            continue
        if role in ("title", "subtitle"):
            yield role, text, 0
        else:
            yield "text", text, _heading_level(item)


def _table_rows(table: Any) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell is listed once per grid column
                continue
            seen.add(id(cell._tc))
            text = clean_text(" ".join(p.text for p in cell.paragraphs))
            if text:
                cells.append(text)
        if cells:
            yield ", ".join(cells)


def _styles(paragraph: Any) -> Iterator[Any]:
    """The paragraph's style and the styles it is based on."""
    try:
        style = paragraph.style
    except (KeyError, ValueError):
        return
    for _ in range(_MAX_STYLE_DEPTH):
        if style is None:
            return
        yield style
        style = style.base_style


def _style_role(paragraph: Any) -> str:
    for style in _styles(paragraph):
        name = (style.name or "").casefold()
        if name in ("title", "subtitle"):
            return name
        if _TOC_STYLE.match(name):
            return "toc"  # a table of contents typed out as paragraphs ("TOC 1", "TOC Heading")
    return ""


def _heading_level(paragraph: Any) -> int:
    """1-6 for a heading (by style name or outline level), 0 for body text."""
    level = _outline_level(paragraph._p.pPr)
    if level is not None:
        return level
    for style in _styles(paragraph):
        m = _HEADING_STYLE.match(style.name or "")
        if m:
            return min(max(int(m.group(1)), 1), 6)
        level = _outline_level(style.element.pPr)
        if level is not None:
            return level
    return 0


def _outline_level(ppr: Any) -> int | None:
    """``w:outlineLvl`` 0-8 -> heading level 1-6; 9 (body text) -> 0; absent -> None."""
    if ppr is None:
        return None
    found = ppr.xpath("./w:outlineLvl/@w:val")
    if not found:
        return None
    try:
        value = int(found[0])
    except ValueError:
        return None
    return 0 if value >= 9 else min(value + 1, 6)


def _metadata(document: Any, titles: list[str], subtitles: list[str]) -> Metadata:
    core = document.core_properties

    def prop(name: str) -> str:
        try:
            value = getattr(core, name)
        except (ValueError, KeyError):  # a malformed date or value in core.xml
            return ""
        if isinstance(value, datetime | date):
            return value.date().isoformat() if isinstance(value, datetime) else value.isoformat()
        return clean_text(str(value)) if value else ""

    title = prop("title") or " ".join(titles)
    author = prop("author")
    if author.casefold() in PLACEHOLDER_AUTHORS:
        author = ""
    if not author:
        for line in subtitles:
            m = _BYLINE.match(line)
            if m:
                author = m.group("who")
                break
    authors = tuple(a for a in (clean_text(x) for x in re.split(r";|\s+and\s+|&", author)) if a)
    subjects = [prop("subject"), *re.split(r"[;,]", prop("keywords"))]
    return Metadata(
        title=clean_text(title),
        authors=authors,
        language=language_code(prop("language")),
        date=prop("created"),
        description=prop("comments"),
        identifiers=tuple(x for x in (prop("identifier"),) if x),
        subjects=tuple(dict.fromkeys(s for s in (clean_text(x) for x in subjects) if s)),
    )


def _cover(document: Any) -> Cover | None:
    """The first JPEG/PNG picture of the body, when it comes before the first heading."""
    part = document.part
    for paragraph in document.paragraphs:
        for rid in paragraph._p.xpath(".//a:blip/@r:embed"):
            try:
                blob = part.related_parts[rid].blob
            except (KeyError, AttributeError):
                continue
            mime = image_mime(blob)
            if mime and len(blob) <= MAX_COVER_BYTES:
                return Cover(data=blob, mime=mime)
        if _heading_level(paragraph) and clean_text(paragraph.text):
            return None  # pictures inside chapters are illustrations, not a cover
    return None
