"""Rich Text Format books (.rtf): plain text with striprtf, then the plain-text reader's chapter rules.

Every RTF paragraph (``\\par``) becomes a paragraph of its own; a manual line break (``\\line``) stays
inside its paragraph. Footnotes, headers, footers and pictures are not read (striprtf skips those
groups). Title, author, subject and creation date come from the ``{\\info ...}`` group when present.

Public API:
    read_rtf(path) -> Book
    rtf_to_plain(data) -> str
"""

from __future__ import annotations

import codecs
import dataclasses
import logging
import re
from pathlib import Path

from ..errors import BookError, UnsupportedFormatError
from ..model import Book, Metadata
from .common import clean_text
from .text import book_from_text

__all__ = ["read_rtf", "rtf_to_plain"]

log = logging.getLogger(__name__)

MAX_RTF_BYTES = 128 * 1024 * 1024
_CODEPAGE = re.compile(rb"\\ansicpg(\d{3,5})")
_LINE = re.compile(r"\\line(?![a-zA-Z])\s?")
_INFO_VALUE = r"\s*((?:[^{}\\]|\\[^{}]|\{[^{}]*\})*)\}"
_CREATED = re.compile(r"\\creatim\s*\\yr(\d{4})(?:\s*\\mo(\d{1,2}))?(?:\s*\\dy(\d{1,2}))?")
_LINE_SEPARATOR = "\u2028"


def read_rtf(path: Path) -> Book:
    """Read an RTF book into chapters (plain-text heading rules) with its \\info metadata."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_RTF_BYTES:
            raise BookError(f"{path.name} is too large for an RTF book ({size // (1024 * 1024)} MB)")
        data = path.read_bytes()
    except OSError as exc:
        raise BookError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    try:
        import striprtf  # noqa: F401  (used by rtf_to_plain)
    except ImportError as exc:
        raise UnsupportedFormatError(
            f"{path.name}: reading RTF needs the striprtf package (reinstall ebook2audio: pip install .)"
        ) from exc
    if not data.lstrip().startswith(b"{\\rtf"):
        raise BookError(f"{path.name} is not an RTF document (no {{\\rtf header)")
    source = data.decode(_encoding(data), errors="replace")
    plain = rtf_to_plain(data)
    book = book_from_text(plain)
    info = _info(source)
    metadata = book.metadata
    metadata = dataclasses.replace(
        metadata,
        title=info.title or metadata.title,
        authors=info.authors or metadata.authors,
        date=info.date or metadata.date,
        description=info.description or metadata.description,
        subjects=info.subjects or metadata.subjects,
    )
    return dataclasses.replace(book, metadata=metadata, source_format="rtf")


def _encoding(data: bytes) -> str:
    m = _CODEPAGE.search(data[:4096])
    if m:
        name = f"cp{int(m.group(1))}"
        try:
            codecs.lookup(name)
        except LookupError:
            return "cp1252"
        return name
    return "cp1252"


def rtf_to_plain(data: bytes) -> str:
    """RTF bytes -> plain text with a blank line between paragraphs."""
    from striprtf.striprtf import rtf_to_text

    encoding = _encoding(data)
    source = data.decode(encoding, errors="replace")
    source = _LINE.sub(r"\\u8232?", source)  # keep manual line breaks apart from paragraph ends
    try:
        text = rtf_to_text(source, encoding=encoding, errors="replace")
    except (ValueError, IndexError, LookupError, RecursionError) as exc:
        raise BookError(f"the RTF cannot be read ({type(exc).__name__}: {exc})") from exc
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n\n".join(line.replace(_LINE_SEPARATOR, " ") for line in lines)


def _info(source: str) -> Metadata:
    start = source.find("{\\info")
    if start < 0:
        return Metadata()
    group = source[start : start + 64 * 1024]

    def field(name: str) -> str:
        m = re.search(r"\{\\" + name + r"(?![a-z])" + _INFO_VALUE, group)
        return _decode_field(m.group(1)) if m else ""

    author = field("author")
    authors = tuple(a for a in (clean_text(x) for x in re.split(r";|\s+and\s+|&", author)) if a)
    date = ""
    created = _CREATED.search(group)
    if created:
        date = "-".join(
            part.zfill(2) if i else part for i, part in enumerate(p for p in created.groups() if p)
        )
    keywords = tuple(k for k in (clean_text(x) for x in re.split(r"[;,]", field("keywords"))) if k)
    subject = field("subject")
    return Metadata(
        title=field("title"),
        authors=authors,
        date=date,
        description=field("doccomm"),
        subjects=tuple(dict.fromkeys(([subject] if subject else []) + list(keywords))),
    )


def _decode_field(raw: str) -> str:
    from striprtf.striprtf import rtf_to_text

    try:
        return clean_text(rtf_to_text("{\\rtf1 " + raw + "}", errors="replace"))
    except (ValueError, IndexError, LookupError):
        return clean_text(raw)
